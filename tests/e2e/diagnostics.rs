//! Why a task failed and how far it is, end to end against the real API server and the
//! simulator: pre-check findings in status, in the Stalled message and in exactly one
//! Warning Event; Cluster progress while it runs; nothing replayed by a restart; a denied
//! diagnostic API leaves the watch Synced.

use crate::common;

use std::time::Duration;

use kube::Client;

use cce_upgrade_watch::crd::{TaskStatus, UpgradeWorkflowWatch};
use cce_upgrade_watch::sim::builtin::Builtin;
use common::operator::Operator;
use common::sim::Sim;
use common::watch::steps_left;
use common::{cond, raw_events, wait_converged, wait_watch};

fn precheck(w: &UpgradeWorkflowWatch) -> Option<&TaskStatus> {
    w.status
        .as_ref()?
        .tasks
        .iter()
        .find(|t| t.task_type == "PreCheck")
}

fn condition_message(w: &UpgradeWorkflowWatch, type_: &str) -> String {
    w.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// A watch of the `precheck-fails` workflow, stepped until its pre-check failed and the
/// workflow waits (Pending); returns the workflow id.
async fn watch_failing_precheck(client: &Client, ns: &str, name: &str, sim: &Sim) -> String {
    let workflow = Builtin::PrecheckFails.workflow_id(0);
    let cluster = Builtin::PrecheckFails.cluster_id(0);
    common::sim_watch(
        client,
        ns,
        name,
        sim,
        &cluster,
        Some(&workflow),
        Some("cce"),
    )
    .await;
    step_until(client, ns, name, sim, &workflow, "Pending").await;
    workflow
}

/// Steps the workflow until its phase is `phase`, waiting for the watch to follow.
async fn step_until(client: &Client, ns: &str, name: &str, sim: &Sim, workflow: &str, phase: &str) {
    wait_converged(client, ns, name, sim, workflow, 30).await;
    while sim.workflow(workflow).await["workflow"]["status"]["phase"] != phase {
        assert!(
            steps_left(sim, workflow).await > 0,
            "the workflow never got to {phase}"
        );
        sim.step(workflow, 1).await;
        wait_converged(client, ns, name, sim, workflow, 30).await;
    }
}

/// Warning Events about the watch whose note names `text`.
async fn warnings_naming(client: &Client, ns: &str, name: &str, text: &str) -> Vec<String> {
    raw_events(client, ns, name)
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.note)
        .filter(|n| n.contains(text))
        .collect()
}

async fn served(sim: &Sim, route: &str) -> usize {
    sim.requests(&format!("route={route}&limit=100000"))
        .await
        .len()
}

#[tokio::test]
async fn a_failed_precheck_shows_its_findings_warns_once_and_recovers() {
    let (client, ns) = common::setup("precheck-fails").await;
    let sim = Sim::https()
        .scenario(Builtin::PrecheckFails)
        .frozen()
        .start();
    let mut operator = Operator::start(&ns, &sim, &[]);
    let workflow = watch_failing_precheck(&client, &ns, "pf", &sim).await;

    let w = wait_watch(&client, &ns, "pf", 30, "the pre-check's findings", |w| {
        precheck(w).is_some_and(|t| t.checks.is_some())
    })
    .await;
    let checks = precheck(&w).and_then(|t| t.checks.clone()).expect("checks");
    assert_eq!(checks.phase.as_deref(), Some("Failed"));
    let names: Vec<_> = checks
        .items
        .iter()
        .map(|f| (f.name.as_deref(), f.kind.as_deref(), f.subject.as_deref()))
        .collect();
    assert_eq!(
        names,
        vec![
            (Some("NodeReady"), Some("Exception"), Some("worker-2")),
            (
                Some("DeprecatedAPI"),
                Some("Risk"),
                Some("/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas")
            ),
        ],
        "blocking first: {checks:#?}"
    );
    assert_eq!(checks.items[0].error_codes, vec!["Node.0022"]);
    assert_eq!(cond(&w, "Stalled").map(|c| c.0).as_deref(), Some("True"));
    let stalled = condition_message(&w, "Stalled");
    assert!(
        stalled.contains("must fix: NodeReady on worker-2") && stalled.contains("DeprecatedAPI"),
        "{stalled}"
    );
    common::wait_events(&client, &ns, "pf", 30, |e| {
        e.iter().any(|(r, _)| r == "TaskFailed")
    })
    .await;
    let warned = warnings_naming(&client, &ns, "pf", "NodeReady").await;
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert_eq!(served(&sim, "show-precheck").await, 1, "read once");

    // A restarted operator finds the findings in status: nothing is read or published again.
    let before = raw_events(&client, &ns, "pf").await.len();
    operator.restart();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        raw_events(&client, &ns, "pf").await.len(),
        before,
        "a restart replays nothing"
    );
    assert_eq!(
        served(&sim, "show-precheck").await,
        1,
        "not read again after a restart"
    );

    // The node is fixed, the pre-check retried: the upgrade goes on and succeeds.
    common::play_to_end(&client, &ns, "pf", &sim, &workflow).await;
    let done = wait_watch(&client, &ns, "pf", 30, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        cond(&done, "Stalled").map(|c| c.0).as_deref(),
        Some("False")
    );
    let retried = precheck(&done).expect("pre-check");
    assert_eq!(
        retried.checks.as_ref().and_then(|c| c.phase.as_deref()),
        Some("Success")
    );
    assert!(retried.checks.as_ref().is_some_and(|c| c.items.is_empty()));
    assert_eq!(
        warnings_naming(&client, &ns, "pf", "NodeReady").await.len(),
        1
    );
}

#[tokio::test]
async fn the_cluster_task_shows_its_progress_and_publishes_no_event_per_percent() {
    let (client, ns) = common::setup("cluster-progress").await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--speed", "3"])
        .start();
    let _operator = Operator::start(&ns, &sim, &[]);
    let (cluster, workflow) = (
        Builtin::Success.cluster_id(0),
        Builtin::Success.workflow_id(0),
    );
    common::sim_watch(
        &client,
        &ns,
        "progress",
        &sim,
        &cluster,
        Some(&workflow),
        Some("cce"),
    )
    .await;
    let running = wait_watch(&client, &ns, "progress", 240, "Cluster under way", |w| {
        let current = w.status.as_ref().and_then(|s| s.current_task.as_deref());
        current.is_some_and(|c| {
            c.strip_prefix("Cluster ")
                .and_then(|p| p.strip_suffix('%'))
                .and_then(|p| p.parse::<u8>().ok())
                .is_some_and(|p| p > 0 && p < 100)
        })
    })
    .await;
    let task = running
        .status
        .as_ref()
        .and_then(|s| s.tasks.iter().find(|t| t.task_type == "Cluster"))
        .expect("Cluster task");
    assert_eq!(task.upgrade_task_phase.as_deref(), Some("Running"));
    assert!(task.percent.is_some_and(|p| p > 0 && p < 100), "{task:?}");
    wait_watch(&client, &ns, "progress", 240, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    let got = common::events(&client, &ns, "progress").await;
    assert_eq!(common::reasons(&got), common::SUCCESS_EVENTS, "{got:#?}");
}

#[tokio::test]
async fn a_denied_precheck_api_leaves_the_watch_synced_with_diagnostics_unavailable() {
    let (client, ns) = common::setup("precheck-denied").await;
    let sim = Sim::https()
        .scenario(Builtin::PrecheckFails)
        .args(&["--fault", "forbidden:route=show-precheck"])
        .frozen()
        .start();
    let _operator = Operator::start(&ns, &sim, &[]);
    watch_failing_precheck(&client, &ns, "denied", &sim).await;
    let w = wait_watch(&client, &ns, "denied", 30, "diagnostics unavailable", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "DiagnosticsUnavailable")
    })
    .await;
    assert_eq!(cond(&w, "Synced").map(|c| c.0).as_deref(), Some("True"));
    let synced = condition_message(&w, "Synced");
    assert!(
        synced.contains("diagnostics unavailable") && synced.contains("ShowPreCheck"),
        "{synced}"
    );
    assert_eq!(
        w.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    assert_eq!(cond(&w, "Stalled").map(|c| c.0).as_deref(), Some("True"));
    let asked = served(&sim, "show-precheck").await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        served(&sim, "show-precheck").await,
        asked,
        "said once, not asked per poll"
    );
    let events = common::events(&client, &ns, "denied").await;
    assert!(
        !common::reasons(&events).contains(&"SyncFailed"),
        "{events:#?}"
    );
}
