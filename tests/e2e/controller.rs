//! The operator end to end: real API server, real simulator, the real binary.
//! Each test has its own namespace, simulator and operator (scoped to that namespace).

use crate::common;

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::operator::Operator;
use common::sim::{Sim, copy};
use common::{cond, events, kubectl, play_to_end, reasons, text, wait_converged, wait_watch};

#[tokio::test]
async fn success_scenario_reaches_ready_with_exactly_one_event_per_transition() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("success").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "up",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;

    let first = wait_watch(&client, &ns, "up", 30, "first status", |w| {
        w.status.as_ref().is_some_and(|s| s.phase.is_some())
    })
    .await;
    assert_eq!(
        first.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Init")
    );
    assert_eq!(
        cond(&first, "Reconciling"),
        Some(("True".into(), "NotStarted".into()))
    );
    assert_eq!(
        cond(&first, "Synced"),
        Some(("True".into(), "Synced".into()))
    );

    play_to_end(&client, &ns, "up", &sim, &success.workflow).await;
    let done = wait_watch(&client, &ns, "up", 30, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    let status = done.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Success"));
    assert_eq!(status.progress.as_deref(), Some("4/4"));
    assert_eq!(
        cond(&done, "Reconciling").map(|c| c.0),
        Some("False".into())
    );
    assert_eq!(cond(&done, "Stalled").map(|c| c.0), Some("False".into()));
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == done.metadata.generation)
    );

    let out = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        &ns,
        "uww/up",
        "--timeout=10s",
    ]);
    assert!(out.status.success(), "kubectl wait: {}", text(&out.stderr));

    // Let a few more polls pass: a finished, unchanged workflow must add nothing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let got = events(&client, &ns, "up").await;
    assert_eq!(reasons(&got), common::SUCCESS_EVENTS, "{got:#?}");
    assert!(
        got[1].1.contains("PreCheck")
            && got[4].1.contains("Snapshot")
            && got[6].1.contains("Cluster"),
        "{got:#?}"
    );
    // ShowCluster named the cluster once (the simulator names a cluster by its id).
    assert_eq!(
        status.cluster_name.as_deref(),
        Some(success.cluster.as_str())
    );

    // Access lost after the upgrade succeeded: Synced says so, Ready stays True, so a
    // gate that passed does not fail afterwards.
    let account = common::watch::sim_account_name(&sim, "cce");
    kubectl(&["delete", "cceaccount", &account, "-n", &ns, "--wait=false"]);
    let lost = wait_watch(&client, &ns, "up", 30, "Synced False", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        cond(&lost, "Synced"),
        Some(("False".into(), "AccountMissing".into()))
    );
    assert_eq!(
        cond(&lost, "Ready"),
        Some(("True".into(), "UpgradeSucceeded".into()))
    );
    assert_eq!(cond(&lost, "Stalled").map(|c| c.0), Some("False".into()));
    let message = lost.status.as_ref().and_then(|s| s.message.clone());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.starts_with("AccountMissing: ")),
        "{message:?}"
    );
    let out = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        &ns,
        "uww/up",
        "--timeout=5s",
    ]);
    assert!(out.status.success(), "kubectl wait: {}", text(&out.stderr));
}

#[tokio::test]
async fn a_failed_cluster_task_stalls_with_one_warning_then_the_retry_succeeds() {
    let retry = copy(Builtin::ClusterFailsThenRetry, 0);
    let (client, ns) = common::setup("retry").await;
    let sim = Sim::https()
        .scenario(Builtin::ClusterFailsThenRetry)
        .frozen()
        .start();
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "retry",
        &sim,
        &retry.cluster,
        Some(&retry.workflow),
        Some("cce"),
    )
    .await;
    wait_converged(&client, &ns, "retry", &sim, &retry.workflow, 30).await;
    // PreCheck running, passed; Snapshot running, done; Cluster running; Cluster failed.
    for _ in 0..6 {
        sim.step(&retry.workflow, 1).await;
        wait_converged(&client, &ns, "retry", &sim, &retry.workflow, 30).await;
    }
    let failed = wait_watch(&client, &ns, "retry", 10, "Pending", |w| {
        w.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
    })
    .await;
    assert_eq!(
        cond(&failed, "Stalled"),
        Some(("True".into(), "TaskFailed".into()))
    );
    assert_eq!(cond(&failed, "Ready").map(|c| c.0), Some("False".into()));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got = events(&client, &ns, "retry").await;
    assert_eq!(
        reasons(&got).iter().filter(|r| **r == "TaskFailed").count(),
        1,
        "{got:#?}"
    );

    play_to_end(&client, &ns, "retry", &sim, &retry.workflow).await;
    let done = wait_watch(&client, &ns, "retry", 30, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(cond(&done, "Stalled").map(|c| c.0), Some("False".into()));
    let got = common::wait_events(&client, &ns, "retry", 10, |e| {
        e.last().is_some_and(|(r, _)| r == "UpgradeSucceeded")
    })
    .await;
    let r = reasons(&got);
    assert_eq!(
        r.iter().filter(|r| **r == "TaskFailed").count(),
        1,
        "{got:#?}"
    );
    assert_eq!(r.last(), Some(&"UpgradeSucceeded"), "{got:#?}");
    // The Cluster task started twice: first run and retry.
    let cluster_starts = got
        .iter()
        .filter(|(r, n)| r == "TaskStarted" && n.contains("Cluster"))
        .count();
    assert_eq!(cluster_starts, 2, "{got:#?}");
}

#[tokio::test]
async fn an_operator_restart_mid_upgrade_repeats_no_event() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("restart").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let mut op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "up",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    wait_converged(&client, &ns, "up", &sim, &success.workflow, 30).await;
    for _ in 0..3 {
        sim.step(&success.workflow, 1).await;
        wait_converged(&client, &ns, "up", &sim, &success.workflow, 30).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = events(&client, &ns, "up").await;
    let status_before = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns)
        .get("up")
        .await
        .expect("get")
        .status;

    op.restart();
    // Two full poll periods with the restarted operator and an unchanged workflow.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(op.running(), "operator exited: {}", op.log_text());
    let after = events(&client, &ns, "up").await;
    assert_eq!(before, after, "events after restart");
    let status_after = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns)
        .get("up")
        .await
        .expect("get")
        .status;
    assert_eq!(
        status_before.as_ref().map(|s| &s.tasks),
        status_after.as_ref().map(|s| &s.tasks)
    );
    assert_eq!(
        status_before.as_ref().map(|s| &s.conditions),
        status_after.as_ref().map(|s| &s.conditions)
    );

    // And it carries on from where it was.
    play_to_end(&client, &ns, "up", &sim, &success.workflow).await;
    let got = common::wait_events(&client, &ns, "up", 10, |e| {
        e.last().is_some_and(|(r, _)| r == "UpgradeSucceeded")
    })
    .await;
    assert_eq!(
        reasons(&got)
            .iter()
            .filter(|r| **r == "WorkflowObserved")
            .count(),
        1,
        "{got:#?}"
    );
    assert_eq!(reasons(&got).last(), Some(&"UpgradeSucceeded"));
}

#[tokio::test]
async fn an_outage_gives_one_sync_failed_keeps_tasks_and_recovers_once() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("outage").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "up",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    sim.step(&success.workflow, 2).await;
    let good = wait_converged(&client, &ns, "up", &sim, &success.workflow, 30).await;

    let ids = sim
        .post(
            "/_sim/faults",
            serde_json::json!({"kind": "error", "status": 500}),
        )
        .await;
    let failing = wait_watch(&client, &ns, "up", 30, "Synced=False", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        cond(&failing, "Synced").map(|c| c.1),
        Some("CceUnavailable".into())
    );
    assert_eq!(
        failing.status.as_ref().map(|s| &s.tasks),
        good.status.as_ref().map(|s| &s.tasks),
        "tasks kept"
    );
    // Several retries happen during the outage (backoff 1s..4s).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let served = sim.requests_for(&success.workflow).await;
    assert!(
        served.iter().filter(|r| r["status"] == 500).count() >= 3,
        "{served:#?}"
    );

    sim.delete("/_sim/faults").await;
    let _ = ids;
    sim.step(&success.workflow, 1).await;
    let back = wait_converged(&client, &ns, "up", &sim, &success.workflow, 30).await;
    assert_eq!(
        cond(&back, "Synced"),
        Some(("True".into(), "Synced".into()))
    );
    let got = common::wait_events(&client, &ns, "up", 10, |e| {
        common::count(e, "SyncRecovered") >= 1
    })
    .await;
    let r = reasons(&got);
    assert_eq!(
        r.iter().filter(|r| **r == "SyncFailed").count(),
        1,
        "{got:#?}"
    );
    assert_eq!(
        r.iter().filter(|r| **r == "SyncRecovered").count(),
        1,
        "{got:#?}"
    );
}

#[tokio::test]
async fn a_429_retry_after_is_honoured_up_to_the_backoff_cap() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("throttle").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    // The kit's operator runs with --backoff-base 1s --backoff-cap 4s.
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "up",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    wait_converged(&client, &ns, "up", &sim, &success.workflow, 30).await;
    // A wait between the backoff and its cap is honoured; a far longer one (here the
    // largest the simulator can send) waits the cap, so the watch recovers with CCE.
    let mut gaps = Vec::new();
    for retry_after in [3, 86_400] {
        sim.post(
            "/_sim/faults",
            serde_json::json!({"kind": "throttle", "count": 1, "retryAfter": retry_after}),
        )
        .await;
        let limited = wait_watch(&client, &ns, "up", 30, "RateLimited", |w| {
            cond(w, "Synced").is_some_and(|c| c.1 == "RateLimited")
        })
        .await;
        assert_eq!(cond(&limited, "Stalled").map(|c| c.0), Some("False".into()));
        wait_watch(&client, &ns, "up", 30, "recovered", |w| {
            cond(w, "Synced").is_some_and(|c| c.0 == "True")
        })
        .await;
        let log = sim.requests_for(&success.workflow).await;
        let throttled = log
            .iter()
            .rposition(|r| r["status"] == 429)
            .expect("a 429 in the request log");
        let next = log.get(throttled + 1).expect("a request after the 429");
        gaps.push(
            next["unixMs"].as_f64().expect("unixMs")
                - log[throttled]["unixMs"].as_f64().expect("unixMs"),
        );
    }
    assert!(
        gaps[0] >= 3000.0,
        "next request {} ms after a 3 s Retry-After",
        gaps[0]
    );
    assert!(
        (3900.0..=6500.0).contains(&gaps[1]),
        "next request {} ms after a Retry-After far beyond the 4 s cap",
        gaps[1]
    );
}

#[tokio::test]
async fn an_unchanged_workflow_costs_no_writes_and_shared_workflows_one_request_per_poll() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("quiet").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let op = Operator::start(&ns, &sim, &[]);
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    for i in 0..50 {
        common::sim_watch(
            &client,
            &ns,
            &format!("w{i}"),
            &sim,
            &success.cluster,
            Some(&success.workflow),
            Some("cce"),
        )
        .await;
    }
    for i in 0..50 {
        wait_converged(&client, &ns, &format!("w{i}"), &sim, &success.workflow, 60).await;
    }
    // Let first-status writes and their jittered first polls settle.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let versions: Vec<String> = (0..50)
        .map(|i| format!("w{i}"))
        .map(|n| {
            let api = api.clone();
            async move {
                api.get(&n)
                    .await
                    .expect("get")
                    .metadata
                    .resource_version
                    .unwrap_or_default()
            }
        })
        .collect::<futures::future::JoinAll<_>>()
        .await;
    let events_before = events(&client, &ns, "w0").await.len();
    sim.post("/_sim/reset", serde_json::json!({})).await;

    // 20 poll periods of 5 s: an unchanged Init workflow.
    let window = Duration::from_secs(100);
    tokio::time::sleep(window).await;

    for (i, before) in versions.iter().enumerate() {
        let now = api
            .get(&format!("w{i}"))
            .await
            .expect("get")
            .metadata
            .resource_version
            .unwrap_or_default();
        assert_eq!(&now, before, "w{i} was written while nothing changed");
    }
    assert_eq!(
        events(&client, &ns, "w0").await.len(),
        events_before,
        "events while nothing changed"
    );
    let requests = sim.requests_for(&success.workflow).await.len() as f64;
    let periods = window.as_secs_f64() / 5.0;
    // One request per poll period for all 50 watches (jitter may add a little).
    assert!(
        requests <= periods * 1.3 && requests >= periods * 0.6,
        "{requests} requests in {periods} poll periods"
    );
    drop(op);
}

#[tokio::test]
async fn changing_the_workflow_id_observes_the_new_workflow() {
    let success = copy(Builtin::Success, 0);
    let retry = copy(Builtin::ClusterFailsThenRetry, 0);
    let (client, ns) = common::setup("switch").await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .scenario(Builtin::ClusterFailsThenRetry)
        .frozen()
        .start();
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "w",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    let first = wait_converged(&client, &ns, "w", &sim, &success.workflow, 30).await;
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    let patch = serde_json::json!({"spec": {"clusterID": &retry.cluster, "upgradeWorkflowID": &retry.workflow}});
    api.patch("w", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch spec");
    let switched = wait_converged(&client, &ns, "w", &sim, &retry.workflow, 30).await;
    assert!(switched.metadata.generation > first.metadata.generation);
    let status = switched.status.as_ref().expect("status");
    assert_eq!(status.observed_generation, switched.metadata.generation);
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == switched.metadata.generation)
    );
    let got = events(&client, &ns, "w").await;
    assert_eq!(
        reasons(&got)
            .iter()
            .filter(|r| **r == "WorkflowObserved")
            .count(),
        2,
        "{got:#?}"
    );
}

#[tokio::test]
async fn rotated_keys_recover_without_restart_and_wrong_keys_never_reach_the_log() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("rotate").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let op = Operator::start(&ns, &sim, &[]);
    let wrong_secret = "wrongSecretKeyThatMustNeverBeLogged0000000";
    common::sim_secret(&client, &ns, "cce", builtin::ACCESS_KEY, wrong_secret).await;
    common::sim_watch(
        &client,
        &ns,
        "w",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    let denied = wait_watch(&client, &ns, "w", 30, "Unauthorized", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "Unauthorized")
    })
    .await;
    assert_eq!(cond(&denied, "Synced").map(|c| c.0), Some("False".into()));
    assert_eq!(
        cond(&denied, "Stalled"),
        Some(("True".into(), "Unauthorized".into()))
    );

    // The simulator gets new keys; the Secret follows; the operator picks it up by itself.
    let new_ak = "ROTATEDAK00000000002";
    let new_sk = "rotatedSK0000000000000000000000000000000002";
    sim.put(
        "/_sim/credentials",
        serde_json::json!([{"accessKey": new_ak, "secretKey": new_sk, "projectID": builtin::PROJECT_ID}]),
    )
    .await;
    common::sim_secret(&client, &ns, "cce", new_ak, new_sk).await;
    let ok = wait_watch(&client, &ns, "w", 20, "recovered after rotation", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        ok.status.as_ref().and_then(|s| s.workflow_id.as_deref()),
        Some(success.workflow.as_str())
    );

    let log = op.log_text();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "operator did not log at trace level"
    );
    for secret in [wrong_secret, new_sk, builtin::SECRET_KEY] {
        assert!(
            !log.contains(secret),
            "a secret key appears in the operator log"
        );
    }
    let events_text = format!("{:?}", events(&client, &ns, "w").await);
    assert!(!events_text.contains(wrong_secret) && !events_text.contains(new_sk));
}

#[tokio::test]
async fn follow_mode_picks_up_a_newer_workflow_with_one_event() {
    let idle = copy(Builtin::Idle, 0);
    let (client, ns) = common::setup("follow").await;
    let sim = Sim::https().scenario(Builtin::Idle).frozen().start();
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(&client, &ns, "f", &sim, &idle.cluster, None, Some("cce")).await;
    let empty = wait_watch(&client, &ns, "f", 30, "NoWorkflow", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "NoWorkflow")
    })
    .await;
    assert_eq!(
        empty.status.as_ref().and_then(|s| s.workflow_id.clone()),
        None
    );

    let created = sim
        .post(
            "/_sim/workflows",
            serde_json::json!({"clusterID": &idle.cluster, "targetVersion": "v1.31.1-r0"}),
        )
        .await;
    let id = created["metadata"]["uid"]
        .as_str()
        .or(created["workflow"]["metadata"]["uid"].as_str())
        .expect("new workflow id")
        .to_string();
    let seen = wait_watch(&client, &ns, "f", 30, "new workflow followed", |w| {
        w.status.as_ref().and_then(|s| s.workflow_id.as_deref()) == Some(id.as_str())
    })
    .await;
    assert_eq!(
        seen.status
            .as_ref()
            .and_then(|s| s.target_version.as_deref()),
        Some("v1.31.1-r0")
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let got = events(&client, &ns, "f").await;
    assert_eq!(reasons(&got), vec!["WorkflowObserved"], "{got:#?}");
}

#[tokio::test]
async fn bad_inputs_give_clear_conditions_and_no_crash_loop() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("bad-inputs").await;
    let weird = r#"
clusters:
  - id: c9000000-0000-4000-8000-000000000000
    version: v1.28.15-r10
workflows:
  - id: f9000000-0000-4000-8000-000000000000
    clusterID: c9000000-0000-4000-8000-000000000000
    fixed:
      kind: WorkFlowTask
      apiVersion: v3
      metadata: {creationTimestamp: "last tuesday"}
      spec: {clusterVersion: v1.28.15-r10, targetVersion: v1.29.13-r0}
      status:
        phase: Paused
        pointStatuses: [{taskType: PreCheck, status: Paused}]
"#;
    let sim = Sim::https()
        .scenario_yaml(weird)
        .scenario(Builtin::Success)
        .frozen()
        .start();
    let mut op = Operator::start(&ns, &sim, &[]);

    common::sim_watch(
        &client,
        &ns,
        "no-secret",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("missing"),
    )
    .await;
    common::watch::apply_account(
        &client,
        serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "CCEAccount",
            "metadata": {"name": "outside", "namespace": ns},
            "spec": {"endpoint": "https://cce.attacker.example:8443", "projectID": builtin::PROJECT_ID,
                     "credentials": {"secretRef": {"name": "cce"}}}
        }),
    )
    .await;
    common::watch::account_watch(
        &client,
        &ns,
        "outside",
        &success.cluster,
        None,
        serde_json::json!({"name": "outside"}),
    )
    .await;
    common::sim_watch(
        &client,
        &ns,
        "weird",
        &sim,
        "c9000000-0000-4000-8000-000000000000",
        Some("f9000000-0000-4000-8000-000000000000"),
        Some("cce"),
    )
    .await;

    let missing = wait_watch(&client, &ns, "no-secret", 30, "CredentialsMissing", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "CredentialsMissing")
    })
    .await;
    let message = missing
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"))
        .map(|c| c.message.clone());
    assert!(
        message.as_deref().is_some_and(|m| m.contains("missing")),
        "{message:?}"
    );
    let refused = wait_watch(&client, &ns, "outside", 30, "EndpointNotAllowed", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "EndpointNotAllowed")
    })
    .await;
    assert_eq!(cond(&refused, "Stalled").map(|c| c.0), Some("True".into()));
    let weird = wait_watch(&client, &ns, "weird", 30, "unknown phase mirrored", |w| {
        w.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Paused")
    })
    .await;
    assert_eq!(
        cond(&weird, "Ready").map(|c| c.1),
        Some("UnknownPhase".into())
    );
    let status = weird.status.as_ref().expect("status");
    assert_eq!(status.workflow_created_raw.as_deref(), Some("last tuesday"));
    assert_eq!(
        cond(&weird, "Synced"),
        Some(("True".into(), "UnparsedTimestamp".into()))
    );

    // The Secret appears: that watch recovers without anyone touching it.
    common::sim_secret(
        &client,
        &ns,
        "missing",
        builtin::ACCESS_KEY,
        builtin::SECRET_KEY,
    )
    .await;
    wait_watch(&client, &ns, "no-secret", 20, "recovered", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert!(op.running(), "operator exited: {}", op.log_text());
    // Nothing was ever sent to the host outside the allow-list: the simulator is the only
    // server, and the refused watch never produced a request there.
    assert!(!op.log_text().contains("panicked"));
}

/// The operator skips recomputing a status while CCE's answer stays the same; a pre-check
/// result that expires meanwhile changes the status by the clock alone, and must still be
/// reported, once.
#[tokio::test]
async fn a_precheck_result_expiring_while_cce_says_nothing_new_is_reported_once() {
    let (client, ns) = common::setup("expiry").await;
    let scenario = r#"
name: expiry-by-the-clock
clusters: [{id: c-expiry, version: v1.28.15-r10}]
workflows:
  - id: f-expiry
    clusterID: c-expiry
    targetVersion: v1.29.13-r0
    steps:
      - {after: 1, task: PreCheck, status: Running}
      - {after: 3, task: PreCheck, status: Success, expireAfter: 15}
      - {after: 3600, task: Cluster, status: Running}
"#;
    let sim = Sim::https().scenario_yaml(scenario).start();
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "w",
        &sim,
        "c-expiry",
        Some("f-expiry"),
        Some("cce"),
    )
    .await;

    let passed = wait_watch(&client, &ns, "w", 30, "pre-check passed", |w| {
        w.status.as_ref().is_some_and(|s| {
            s.tasks
                .iter()
                .any(|t| t.task_type == "PreCheck" && t.phase.as_deref() == Some("Success"))
        })
    })
    .await;
    let precheck = |w: &UpgradeWorkflowWatch| {
        w.status
            .as_ref()
            .and_then(|s| s.tasks.iter().find(|t| t.task_type == "PreCheck").cloned())
            .expect("a PreCheck task")
    };
    assert_eq!(precheck(&passed).result_expired, None, "expired too early");

    // From here on CCE answers the same thing; only the clock moves.
    let expired = wait_watch(&client, &ns, "w", 40, "pre-check result expired", |w| {
        precheck(w).result_expired == Some(true)
    })
    .await;
    let cluster_started = expired
        .status
        .as_ref()
        .and_then(|s| s.tasks.iter().find(|t| t.task_type == "Cluster"))
        .and_then(|t| t.start_time.as_ref());
    assert!(
        cluster_started.is_none(),
        "the Cluster task started: {cluster_started:?}"
    );
    let expiry = precheck(&expired).expire_time.expect("expireTime").0;
    let seen = jiff::Timestamp::now();
    assert!(
        seen.duration_since(expiry).as_secs_f64() < 5.0 + 5.0,
        "expiry at {expiry} seen only at {seen}"
    );

    // Settle, then count: exactly one PreCheckExpired.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let found = events(&client, &ns, "w").await;
    assert_eq!(
        reasons(&found)
            .iter()
            .filter(|r| **r == "PreCheckExpired")
            .count(),
        1,
        "{found:?}"
    );
}

#[tokio::test]
async fn a_workflow_first_seen_after_its_task_failed_warns_as_a_task_failure() {
    let retry = copy(Builtin::ClusterFailsThenRetry, 0);
    let (client, ns) = common::setup("late-failure").await;
    let sim = Sim::https()
        .scenario(Builtin::ClusterFailsThenRetry)
        .frozen()
        .start();
    // The upgrade fails before anyone watches it.
    for _ in 0..20 {
        if sim.workflow(&retry.workflow).await["workflow"]["status"]["phase"] == "Pending" {
            break;
        }
        sim.step(&retry.workflow, 1).await;
    }
    assert_eq!(
        sim.workflow(&retry.workflow).await["workflow"]["status"]["phase"],
        "Pending"
    );
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "late",
        &sim,
        &retry.cluster,
        Some(&retry.workflow),
        Some("cce"),
    )
    .await;
    let stalled = wait_watch(&client, &ns, "late", 30, "Stalled", |w| {
        cond(w, "Stalled").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        cond(&stalled, "Ready"),
        Some(("False".into(), "TaskFailed".into()))
    );
    let warned = || async {
        common::raw_events(&client, &ns, "late")
            .await
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    common::eventually::eventually(
        "the TaskFailed Warning",
        Duration::from_secs(20),
        Duration::from_millis(500),
        || async {
            match warned().await.is_empty() {
                true => Err("no Warning yet"),
                false => Ok(()),
            }
        },
    )
    .await;
    // A few more polls: the failure is published once.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let warnings = warned().await;
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].0, "TaskFailed");
    assert!(warnings[0].1.contains("task Cluster"), "{warnings:#?}");
    let got = events(&client, &ns, "late").await;
    assert_eq!(
        reasons(&got)[..2],
        ["WorkflowObserved", "TaskFailed"],
        "{got:#?}"
    );
}
