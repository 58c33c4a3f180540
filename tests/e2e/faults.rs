//! Faults end to end: the control plane or CCE misbehaves mid-upgrade, and afterwards every
//! watch shows what the simulator holds and no event was lost or published twice.
//!
//! The kube-apiserver and etcd restarts run on a private control plane of their own (see
//! [`PrivatePlane`]): `make test` runs every test against one shared plane, and restarting
//! that would disturb every other test running at the time.

use crate::common;

use std::time::Duration;

use kube::Client;
use kube::api::Api;

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::sim::builtin::Builtin;
use common::eventually::{KUBE_POLL, eventually};
use common::operator::Operator;
use common::plane::PrivatePlane;
use common::sim::{CopyIds, Launch, Sim, SimTls, copy};
use common::sockets::{api_server, connections_to, free_port};
use common::{cond, events, reasons, wait_watch};

/// The two copies of the success scenario (`--workflows 2`).
fn copies() -> [CopyIds; 2] {
    [copy(Builtin::Success, 0), copy(Builtin::Success, 1)]
}

/// The watches and the copy each follows: `a` and `b` the first, `c` the second.
fn watches() -> [(&'static str, CopyIds); 3] {
    let [first, second] = copies();
    [
        ("a", copy(Builtin::Success, 0)),
        ("b", first),
        ("c", second),
    ]
}

async fn three_watches(client: &Client, ns: &str, sim: &Sim) {
    for (name, ids) in watches() {
        common::sim_watch(
            client,
            ns,
            name,
            sim,
            &ids.cluster,
            Some(&ids.workflow),
            Some("cce"),
        )
        .await;
    }
}

/// Waits until every watch shows its workflow as the simulator has it and says it is
/// synced again.
async fn wait_all_converged(client: &Client, ns: &str, sim: &Sim, secs: u64) {
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns);
    let within = Duration::from_secs(secs);
    let started = std::time::Instant::now();
    for (name, ids) in watches() {
        let what = format!("watch {name} converged and synced");
        let left = within.saturating_sub(started.elapsed());
        eventually(&what, left, KUBE_POLL, || async {
            let w = api.get(name).await.map_err(|e| e.to_string())?;
            common::converged(sim, &w, &ids.workflow).await?;
            match cond(&w, "Synced") {
                Some(c) if c.0 == "True" => Ok(()),
                synced => Err(format!("Synced {synced:?}")),
            }
        })
        .await;
    }
}

/// Steps both workflows `steps` times, waiting for every watch after each step.
async fn step_both(client: &Client, ns: &str, sim: &Sim, steps: u32) {
    for _ in 0..steps {
        for ids in copies() {
            sim.step(&ids.workflow, 1).await;
        }
        wait_all_converged(client, ns, sim, 60).await;
    }
}

/// Steps both workflows to their ends, waiting for every watch after each step.
async fn play_to_end(client: &Client, ns: &str, sim: &Sim) {
    loop {
        let mut moved = false;
        for ids in copies() {
            if common::watch::steps_left(sim, &ids.workflow).await > 0 {
                sim.step(&ids.workflow, 1).await;
                moved = true;
            }
        }
        if !moved {
            return;
        }
        wait_all_converged(client, ns, sim, 60).await;
    }
}

/// Each watch's events, once the last one arrived: the success sequence, `sync_outages`
/// SyncFailed/SyncRecovered pairs, and no (reason, note) twice.
async fn assert_events_exact(client: &Client, ns: &str, sync_outages: usize) {
    for (name, _) in watches() {
        common::wait_events(client, ns, name, 20, |e| {
            e.iter().any(|(r, _)| r == "UpgradeSucceeded")
                && common::count(e, "SyncRecovered") >= sync_outages
        })
        .await;
        // Give a duplicate the time to show up.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let got = events(client, ns, name).await;
        let without_sync: Vec<&str> = reasons(&got)
            .into_iter()
            .filter(|r| !r.starts_with("Sync"))
            .collect();
        assert_eq!(without_sync, common::SUCCESS_EVENTS, "{name}: {got:#?}");
        assert_eq!(
            common::count(&got, "SyncFailed"),
            sync_outages,
            "{name}: {got:#?}"
        );
        assert_eq!(
            common::count(&got, "SyncRecovered"),
            sync_outages,
            "{name}: {got:#?}"
        );
        let mut seen = std::collections::HashSet::new();
        for e in &got {
            assert!(
                seen.insert(e),
                "{name}: event {e:?} published twice: {got:#?}"
            );
        }
    }
}

/// Two copies of the success scenario, their clock frozen.
fn two_successes() -> Launch {
    Sim::https()
        .scenario(Builtin::Success)
        .args(&["--workflows", "2"])
        .frozen()
}

/// A control-plane fault run against a private plane: `fault` breaks and heals it while
/// both workflows move on.
async fn survives_a_plane_fault(
    test: &str,
    fault: impl AsyncFnOnce(&PrivatePlane, &Sim, &Operator),
) {
    let plane = PrivatePlane::up("cce-uw-fault-plane-");
    let client = plane.client().await;
    let ns = common::setup_on(&client, test).await;
    let sim = two_successes().start();
    let mut op = Operator::start_on(Some(&plane.kubeconfig()), &ns, &sim, &[]);
    three_watches(&client, &ns, &sim).await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    step_both(&client, &ns, &sim, 3).await;

    fault(&plane, &sim, &op).await;

    let client = plane.client().await;
    wait_all_converged(&client, &ns, &sim, 90).await;
    assert!(op.running(), "operator exited: {}", op.log_text());
    // Reconnected, and still over one multiplexed connection.
    let server = api_server(&plane.kubeconfig());
    let pid = op.pid().expect("operator running");
    assert_eq!(
        connections_to(pid, server).expect("read the operator's sockets"),
        1,
        "connections to the API server after the fault"
    );
    play_to_end(&client, &ns, &sim).await;
    assert_events_exact(&client, &ns, 0).await;
    drop(op);
}

#[tokio::test]
async fn a_kube_apiserver_restart_mid_upgrade_loses_and_repeats_nothing() {
    let success = copy(Builtin::Success, 0);
    let second = copy(Builtin::Success, 1);
    survives_a_plane_fault("apiserver-restart", async |plane, sim, _| {
        plane.run("stop-apiserver");
        // CCE moves on while the operator cannot write.
        sim.step(&success.workflow, 1).await;
        sim.step(&second.workflow, 1).await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        sim.step(&success.workflow, 1).await;
        plane.run("start-apiserver");
    })
    .await;
}

#[tokio::test]
async fn an_etcd_restart_mid_upgrade_loses_and_repeats_nothing() {
    let success = copy(Builtin::Success, 0);
    let second = copy(Builtin::Success, 1);
    survives_a_plane_fault("etcd-restart", async |plane, sim, _| {
        plane.run("stop-etcd");
        sim.step(&success.workflow, 1).await;
        sim.step(&second.workflow, 1).await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        sim.step(&success.workflow, 1).await;
        plane.run("start-etcd");
    })
    .await;
}

/// The API server expires the operator's watch: while kube-apiserver is down, etcd moves on
/// and compacts its history, so the operator's watch resumes from a resourceVersion the API
/// server no longer has and it lists every watch again, updating its cache in place. Every
/// watch goes on being served, with no Event lost or repeated.
#[tokio::test]
async fn a_watch_expired_by_compaction_is_listed_again_and_every_watch_is_still_served() {
    let success = copy(Builtin::Success, 0);
    survives_a_plane_fault("relist", async |plane, sim, op| {
        plane.run("stop-apiserver");
        plane.compact_etcd().await;
        sim.step(&success.workflow, 1).await;
        plane.run("start-apiserver");
        eventually(
            "the operator's watch expired (too old resource version)",
            Duration::from_secs(60),
            KUBE_POLL,
            || async {
                let log = op.log_text();
                log.contains("too old resource version")
                    .then_some(())
                    .ok_or("not yet")
            },
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_simulator_down_for_a_minute_gives_one_outage_and_full_recovery() {
    let success = copy(Builtin::Success, 0);
    let second = copy(Builtin::Success, 1);
    let client = common::client().await;
    let ns = common::setup_on(&client, "sim-down").await;
    let tls = SimTls::generate();
    // The new simulator comes back at this address a minute later.
    let listen = format!("127.0.0.1:{}", free_port());
    let sim = two_successes().at(&listen, &tls).start();
    let op = Operator::start(&ns, &sim, &[]);
    three_watches(&client, &ns, &sim).await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    step_both(&client, &ns, &sim, 3).await;

    drop(sim);
    let down = wait_watch(&client, &ns, "a", 30, "Synced=False", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        down.status.as_ref().map(|s| s.tasks.len()),
        Some(4),
        "tasks kept while CCE is away"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;

    // The same address and certificate; every request fails until the new simulator has
    // caught up with where the old one was (plus one step CCE made meanwhile).
    let sim = two_successes()
        .at(&listen, &tls)
        .args(&["--fault", "error:status=503"])
        .start();
    sim.step(&success.workflow, 4).await;
    sim.step(&second.workflow, 4).await;
    sim.delete("/_sim/faults").await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    play_to_end(&client, &ns, &sim).await;
    assert_events_exact(&client, &ns, 1).await;
    drop(op);
}

/// A CCE fault for a while: status keeps the tasks and says why, then everything recovers.
async fn survives_a_cce_fault(test: &str, fault: serde_json::Value, reason: &str) {
    let success = copy(Builtin::Success, 0);
    let second = copy(Builtin::Success, 1);
    let client = common::client().await;
    let ns = common::setup_on(&client, test).await;
    let sim = two_successes().start();
    let op = Operator::start(&ns, &sim, &[]);
    three_watches(&client, &ns, &sim).await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    step_both(&client, &ns, &sim, 2).await;
    let before = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns)
        .get("a")
        .await
        .expect("get");

    sim.post("/_sim/faults", fault).await;
    sim.step(&success.workflow, 1).await;
    let failing = wait_watch(&client, &ns, "a", 30, reason, |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "False" && c.1 == reason)
    })
    .await;
    assert_eq!(
        failing.status.as_ref().map(|s| &s.tasks),
        before.status.as_ref().map(|s| &s.tasks),
        "tasks kept during the fault"
    );
    // A few retries under the fault.
    tokio::time::sleep(Duration::from_secs(8)).await;
    sim.delete("/_sim/faults").await;
    sim.step(&second.workflow, 1).await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    play_to_end(&client, &ns, &sim).await;
    assert_events_exact(&client, &ns, 1).await;
    drop(op);
}

#[tokio::test]
async fn cce_slower_than_the_request_timeout_times_out_then_recovers() {
    // The harness gives the operator a 2 s request timeout.
    survives_a_cce_fault(
        "cce-slow",
        serde_json::json!({"kind": "latency", "latencyMs": 3500}),
        "Timeout",
    )
    .await;
}

#[tokio::test]
async fn malformed_cce_answers_are_reported_then_recovered_from() {
    survives_a_cce_fault(
        "cce-malformed",
        serde_json::json!({"kind": "malformed"}),
        "InvalidResponse",
    )
    .await;
}

#[tokio::test]
async fn a_slow_endpoint_cannot_starve_the_watches_of_another() {
    let client = common::client().await;
    let ns = common::setup_on(&client, "fairness").await;
    let tls = SimTls::generate();
    let slow_watches = 64;
    let slow = Sim::https()
        .at("127.0.0.1:0", &tls)
        .scenario(Builtin::Success)
        .args(&["--workflows", &slow_watches.to_string()])
        .frozen()
        .start();
    let healthy = Sim::https()
        .at("127.0.0.1:0", &tls)
        .scenario(Builtin::Success)
        .frozen()
        .start();
    // Every answer of the slow endpoint takes just under the 2 s request timeout.
    slow.post(
        "/_sim/faults",
        serde_json::json!({"kind": "latency", "latencyMs": 1900}),
    )
    .await;
    // Four reconcilers: the slow endpoint's watches alone would keep them all busy, and a
    // watch behind them in the queue would wait for tens of seconds.
    let op = Operator::start(&ns, &slow, &["--concurrency", "4"]);
    for i in 0..slow_watches {
        let ids = copy(Builtin::Success, i);
        common::sim_watch(
            &client,
            &ns,
            &format!("slow-{i}"),
            &slow,
            &ids.cluster,
            Some(&ids.workflow),
            Some("cce"),
        )
        .await;
    }
    let ids = copy(Builtin::Success, 0);
    common::sim_watch(
        &client,
        &ns,
        "healthy",
        &healthy,
        &ids.cluster,
        Some(&ids.workflow),
        Some("cce"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(45)).await;
    let polls: Vec<f64> = healthy
        .requests_for(&ids.workflow)
        .await
        .iter()
        .filter_map(|r| r["unixMs"].as_f64())
        .collect();
    // Past the start, the healthy watch is polled every 5 s (jitter stretches that by up to
    // a tenth), as if the slow endpoint were not there.
    let gaps: Vec<f64> = polls.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.len() >= 6,
        "only {} polls of the healthy watch",
        polls.len()
    );
    let longest = gaps.iter().copied().fold(0.0, f64::max);
    assert!(
        longest <= 7_000.0,
        "a poll came {longest} ms after the one before: {gaps:?}"
    );
    // The slow endpoint's watches were turned away rather than queued behind its reads.
    let metrics = reqwest::get(format!("{}/metrics", op.admin_url()))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics");
    let deferred = metrics
        .lines()
        .find(|l| l.starts_with("cce_upgrade_watch_reconciles_total{result=\"deferred\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(deferred > 0.0, "no reconcile was deferred:\n{metrics}");
}
