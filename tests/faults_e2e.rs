//! Faults end to end: the control plane or CCE misbehaves mid-upgrade, and afterwards every
//! watch shows what the simulator holds and no event was lost or published twice.
//!
//! The kube-apiserver and etcd restarts run on a private control plane of their own (see
//! [`PrivatePlane`]): `make test` runs every test against one shared plane, and restarting
//! that would disturb every other test running at the time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube::Client;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use common::procs::{ACCESS_KEY, Operator, SECRET_KEY, Sim, SimTls};
use common::{cond, events, reasons, wait_watch};

/// A frozen simulator clock: workflows move only when a test steps them.
const FROZEN: &[&str] = &["--speed", "0.0001"];
const CLUSTER: &str = "c1000000-0000-4000-8000-000000000000";
const WORKFLOW: &str = "f1000000-0000-4000-8000-000000000000";
/// A second copy of the success scenario (`--workflows 2`).
const CLUSTER_2: &str = "c1000000-0000-4000-8000-000000000001";
const WORKFLOW_2: &str = "f1000000-0000-4000-8000-000000000001";

/// A control plane of one test's own, in its own state dir, taken down when dropped.
struct PrivatePlane {
    dir: tempfile::TempDir,
}

impl PrivatePlane {
    fn up() -> PrivatePlane {
        let dir = tempfile::Builder::new()
            .prefix("cce-uw-fault-plane-")
            .tempdir()
            .expect("tempdir");
        let plane = PrivatePlane { dir };
        plane.run("up");
        plane
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// `hack/control-plane.sh <command>` for this plane; panics when it fails.
    fn run(&self, command: &str) {
        let out = Command::new(common::repo_path("hack/control-plane.sh"))
            .arg(command)
            .env("CCE_UW_PLANE_DIR", self.dir.path())
            .output()
            .expect("run hack/control-plane.sh");
        assert!(
            out.status.success(),
            "hack/control-plane.sh {command} failed: {}",
            common::text(&out.stderr)
        );
    }

    async fn client(&self) -> Client {
        client_for(&self.kubeconfig()).await
    }
}

impl Drop for PrivatePlane {
    fn drop(&mut self) {
        let _ = Command::new(common::repo_path("hack/control-plane.sh"))
            .arg("down")
            .env("CCE_UW_PLANE_DIR", self.dir.path())
            .output();
    }
}

async fn client_for(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    let client = Client::try_from(config).expect("client");
    client
        .apiserver_version()
        .await
        .expect("private control plane reachable");
    client
}

async fn setup(client: &Client, test: &str) -> String {
    common::install_crd(client).await;
    let ns = common::namespace(client, test).await;
    common::sim_secret(client, &ns, "cce", ACCESS_KEY, SECRET_KEY).await;
    ns
}

/// Watches `a` and `b` on the first workflow, `c` on the second.
async fn three_watches(client: &Client, ns: &str, sim: &Sim) {
    for (name, cluster, workflow) in [
        ("a", CLUSTER, WORKFLOW),
        ("b", CLUSTER, WORKFLOW),
        ("c", CLUSTER_2, WORKFLOW_2),
    ] {
        common::sim_watch(client, ns, name, sim, cluster, Some(workflow), Some("cce")).await;
    }
}

const WATCHES: [(&str, &str); 3] = [("a", WORKFLOW), ("b", WORKFLOW), ("c", WORKFLOW_2)];

/// Whether the watch shows the simulator's workflow and says it is synced again.
async fn converged(sim: &Sim, w: &UpgradeWorkflowWatch, workflow: &str) -> bool {
    common::converged(sim, w, workflow).await && cond(w, "Synced").is_some_and(|c| c.0 == "True")
}

/// Waits until every watch shows its workflow as the simulator has it.
async fn wait_all_converged(client: &Client, ns: &str, sim: &Sim, secs: u64) {
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    for (name, workflow) in WATCHES {
        loop {
            let w = api.get(name).await;
            if let Ok(w) = &w
                && converged(sim, w, workflow).await
            {
                break;
            }
            if std::time::Instant::now() > deadline {
                let truth = sim.get(&format!("/_sim/workflows/{workflow}")).await;
                panic!(
                    "watch {name} did not converge in {secs}s\nwatch: {}\nsimulator: {}",
                    w.map(|w| serde_json::to_string_pretty(&w.status).unwrap_or_default())
                        .unwrap_or_else(|e| e.to_string()),
                    truth["workflow"]["status"]
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Steps both workflows `steps` times, waiting for every watch after each step.
async fn step_both(client: &Client, ns: &str, sim: &Sim, steps: u32) {
    for _ in 0..steps {
        sim.step(WORKFLOW, 1).await;
        sim.step(WORKFLOW_2, 1).await;
        wait_all_converged(client, ns, sim, 60).await;
    }
}

/// Steps both workflows to their ends, waiting for every watch after each step.
async fn play_to_end(client: &Client, ns: &str, sim: &Sim) {
    loop {
        let mut moved = false;
        for workflow in [WORKFLOW, WORKFLOW_2] {
            let state = sim.get(&format!("/_sim/workflows/{workflow}")).await;
            if state["stepsLeft"].as_u64().unwrap_or(0) > 0 {
                sim.step(workflow, 1).await;
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
    for (name, _) in WATCHES {
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

fn success_sim() -> Sim {
    Sim::start(&[&["--scenario", "success", "--workflows", "2"], FROZEN].concat())
}

/// A control-plane fault run against a private plane: `fault` breaks and heals it while
/// both workflows move on.
async fn survives_a_plane_fault(test: &str, fault: impl AsyncFnOnce(&PrivatePlane, &Sim)) {
    let plane = PrivatePlane::up();
    let client = plane.client().await;
    let ns = setup(&client, test).await;
    let sim = success_sim();
    let mut op = Operator::start_on(Some(&plane.kubeconfig()), &ns, &sim, &[]);
    three_watches(&client, &ns, &sim).await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    step_both(&client, &ns, &sim, 3).await;

    fault(&plane, &sim).await;

    let client = plane.client().await;
    wait_all_converged(&client, &ns, &sim, 90).await;
    assert!(op.running(), "operator exited: {}", op.log_text());
    play_to_end(&client, &ns, &sim).await;
    assert_events_exact(&client, &ns, 0).await;
    drop(op);
}

#[tokio::test]
async fn a_kube_apiserver_restart_mid_upgrade_loses_and_repeats_nothing() {
    survives_a_plane_fault("apiserver-restart", async |plane, sim| {
        plane.run("stop-apiserver");
        // CCE moves on while the operator cannot write.
        sim.step(WORKFLOW, 1).await;
        sim.step(WORKFLOW_2, 1).await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        sim.step(WORKFLOW, 1).await;
        plane.run("start-apiserver");
    })
    .await;
}

#[tokio::test]
async fn an_etcd_restart_mid_upgrade_loses_and_repeats_nothing() {
    survives_a_plane_fault("etcd-restart", async |plane, sim| {
        plane.run("stop-etcd");
        sim.step(WORKFLOW, 1).await;
        sim.step(WORKFLOW_2, 1).await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        sim.step(WORKFLOW, 1).await;
        plane.run("start-etcd");
    })
    .await;
}

#[tokio::test]
async fn a_simulator_down_for_a_minute_gives_one_outage_and_full_recovery() {
    let client = common::client().await;
    let ns = setup(&client, "sim-down").await;
    let tls = SimTls::generate();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let args: Vec<&str> = [&["--scenario", "success", "--workflows", "2"], FROZEN].concat();
    let sim = Sim::start_at(&listen, &tls, &args);
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
    let with_fault = [args.as_slice(), &["--fault", "error:status=503"]].concat();
    let sim = Sim::start_at(&listen, &tls, &with_fault);
    sim.step(WORKFLOW, 4).await;
    sim.step(WORKFLOW_2, 4).await;
    sim.delete("/_sim/faults").await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    play_to_end(&client, &ns, &sim).await;
    assert_events_exact(&client, &ns, 1).await;
    drop(op);
}

/// A CCE fault for a while: status keeps the tasks and says why, then everything recovers.
async fn survives_a_cce_fault(test: &str, fault: serde_json::Value, reason: &str) {
    let client = common::client().await;
    let ns = setup(&client, test).await;
    let sim = success_sim();
    let op = Operator::start(&ns, &sim, &[]);
    three_watches(&client, &ns, &sim).await;
    wait_all_converged(&client, &ns, &sim, 60).await;
    step_both(&client, &ns, &sim, 2).await;
    let before = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns)
        .get("a")
        .await
        .expect("get");

    sim.post("/_sim/faults", fault).await;
    sim.step(WORKFLOW, 1).await;
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
    sim.step(WORKFLOW_2, 1).await;
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
