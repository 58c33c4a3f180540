//! The project's own CCE client against the simulator binary, one test per built-in
//! scenario (plus Create, Autopilot, scenario files and the diagnostic reads): what the
//! operator will see.

use crate::common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use cce_upgrade_watch::cce::ApiFamily;
use cce_upgrade_watch::cce::diagnostics::precheck::{CheckKind, CheckLevel};
use cce_upgrade_watch::cce::diagnostics::{CheckScope, ClusterPhase};
use cce_upgrade_watch::cce::model::{
    CreateWorkflowRequest, Phase, PointStatus, SEED_EXAMPLE, TaskState, TaskType, Workflow,
};
use cce_upgrade_watch::cce::time;
use cce_upgrade_watch::cce::{CceClient, CceError, Target};
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::eventually::{SIM_POLL, eventually};
use common::sim::{Sim, aksk};
use jiff::Timestamp;
use serde_json::json;

fn point(wf: &Workflow, task: TaskType) -> &PointStatus {
    wf.points()
        .iter()
        .find(|p| p.task_type.as_ref() == Some(&task))
        .expect("task present")
}

fn ts(raw: &Option<String>) -> Timestamp {
    time::parse(raw.as_deref().expect("timestamp present")).expect("CCE time format")
}

fn phase(wf: &Workflow) -> Phase {
    wf.phase().cloned().expect("phase")
}

async fn show(client: &CceClient, target: &Target, id: &str) -> Workflow {
    client.show_workflow(target, id).await.expect("show").body
}

/// Polls Show until `done`; returns every distinct phase seen, in order, and the last state.
async fn watch_until(
    client: &CceClient,
    target: &Target,
    id: &str,
    timeout: Duration,
    done: impl Fn(&Workflow) -> bool,
) -> (Vec<Phase>, Workflow) {
    let phases: RefCell<Vec<Phase>> = RefCell::default();
    let wf = eventually("the workflow done", timeout, SIM_POLL, || async {
        let wf = show(client, target, id).await;
        let p = phase(&wf);
        let mut phases = phases.borrow_mut();
        if phases.last() != Some(&p) {
            phases.push(p);
        }
        if done(&wf) {
            Ok(wf)
        } else {
            Err(format!("phases so far {phases:?}"))
        }
    })
    .await;
    (phases.into_inner(), wf)
}

#[tokio::test]
async fn success_scenario_runs_precheck_snapshot_cluster_postcheck_in_about_five_seconds_at_speed_60()
 {
    let sim = Sim::start(&["--scenario", "success", "--speed", "60"]);
    let client = sim.client();
    let target = sim.builtin_target(Builtin::Success);
    let id = Builtin::Success.workflow_id(0);
    let started = Instant::now();
    let first = show(&client, &target, &id).await;
    assert_eq!(phase(&first), Phase::Init);
    assert!(
        first
            .points()
            .iter()
            .all(|p| p.status.is_none() && p.task_id.is_none())
    );
    let (phases, wf) = watch_until(&client, &target, &id, Duration::from_secs(20), |w| {
        w.phase() == Some(&Phase::Success)
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed > Duration::from_secs(3) && elapsed < Duration::from_secs(12),
        "{elapsed:?}"
    );
    assert_eq!(phases, [Phase::Init, Phase::Running, Phase::Success]);
    let order = [
        TaskType::PreCheck,
        TaskType::Snapshot,
        TaskType::Cluster,
        TaskType::PostCheck,
    ];
    let mut previous_end = ts(&wf.metadata.as_ref().expect("metadata").creation_timestamp);
    for task in order {
        let p = point(&wf, task.clone());
        assert_eq!(p.status, Some(TaskState::Success), "{task}");
        assert!(p.task_id.as_deref().is_some_and(|id| id.len() == 36));
        let (start, end) = (ts(&p.start_time_stamp), ts(&p.end_time_stamp));
        assert!(previous_end <= start && start < end, "{task} out of order");
        previous_end = end;
    }
    // The pre-check result stays valid an hour of scenario time: 60 s at speed 60.
    let pre = point(&wf, TaskType::PreCheck);
    let valid = ts(&pre.expire_time_stamp).duration_since(ts(&pre.end_time_stamp));
    assert_eq!(valid.as_secs(), 60);
    assert_eq!(
        wf.spec.as_ref().and_then(|s| s.target_version.as_deref()),
        Some(builtin::TO_VERSION)
    );
}

#[tokio::test]
async fn cluster_fails_then_retry_goes_pending_and_the_retry_is_a_new_task_that_succeeds() {
    let sim = Sim::start(&["--scenario", "cluster-fails-then-retry", "--speed", "120"]);
    let client = sim.client();
    let b = Builtin::ClusterFailsThenRetry;
    let target = sim.builtin_target(b);
    let id = b.workflow_id(0);
    let (_, pending) = watch_until(&client, &target, &id, Duration::from_secs(20), |w| {
        w.phase() == Some(&Phase::Pending)
    })
    .await;
    let failed = point(&pending, TaskType::Cluster).clone();
    assert_eq!(failed.status, Some(TaskState::Failed));
    assert!(failed.end_time_stamp.is_some());
    let (phases, done) = watch_until(&client, &target, &id, Duration::from_secs(20), |w| {
        w.phase() == Some(&Phase::Success)
    })
    .await;
    assert_eq!(phases.first(), Some(&Phase::Pending));
    assert!(phases.contains(&Phase::Running), "{phases:?}");
    let retried = point(&done, TaskType::Cluster);
    assert_eq!(retried.status, Some(TaskState::Success));
    assert_ne!(retried.task_id, failed.task_id, "a retry is a new task");
    assert!(ts(&retried.start_time_stamp) > ts(&failed.end_time_stamp));
}

#[tokio::test]
async fn cancel_is_refused_while_a_task_runs_and_accepted_once_the_workflow_is_pending() {
    let sim = Sim::start(&["--scenario", "cancel", "--speed", "60", "--workflows", "2"]);
    let client = sim.client();
    let b = Builtin::Cancel;
    let target = sim.builtin_target(b);
    let id = b.workflow_id(0);
    watch_until(&client, &target, &id, Duration::from_secs(10), |w| {
        w.phase() == Some(&Phase::Running)
    })
    .await;
    match client.cancel_workflow(&target, &id).await {
        Err(CceError::Client(f)) => {
            assert_eq!(f.status, 400);
            assert_eq!(f.error_code.as_deref(), Some("CCE.01400001"));
            assert!(f.request_id.is_some());
        }
        other => panic!("cancel while running: {other:?}"),
    }
    watch_until(&client, &target, &id, Duration::from_secs(10), |w| {
        w.phase() == Some(&Phase::Pending)
    })
    .await;
    let cancelled = client
        .cancel_workflow(&target, &id)
        .await
        .expect("cancel")
        .body;
    assert_eq!(phase(&cancelled), Phase::Cancel);
    assert_eq!(phase(&show(&client, &target, &id).await), Phase::Cancel);
    assert!(matches!(
        client.cancel_workflow(&target, &id).await,
        Err(CceError::Client(_))
    ));
    // The copy nobody cancels is cancelled by its timeline (165 s → 2.75 s).
    let other = sim.target(ApiFamily::Standard, &b.cluster_id(1), aksk());
    let (phases, _) = watch_until(
        &client,
        &other,
        &b.workflow_id(1),
        Duration::from_secs(10),
        |w| w.phase() == Some(&Phase::Cancel),
    )
    .await;
    assert_eq!(phases.last(), Some(&Phase::Cancel));
}

#[tokio::test]
async fn precheck_expires_before_the_cluster_task_starts() {
    let sim = Sim::start(&["--scenario", "precheck-expires", "--speed", "60"]);
    let client = sim.client();
    let b = Builtin::PrecheckExpires;
    let target = sim.builtin_target(b);
    let id = b.workflow_id(0);
    // Jump to the end instead of waiting the 5 s.
    to_end(&sim, &id).await;
    let wf = show(&client, &target, &id).await;
    assert_eq!(phase(&wf), Phase::Pending);
    let pre = point(&wf, TaskType::PreCheck);
    let cluster = point(&wf, TaskType::Cluster);
    assert_eq!(pre.status, Some(TaskState::Success));
    assert_eq!(cluster.status, Some(TaskState::Failed));
    assert!(ts(&pre.expire_time_stamp) <= ts(&cluster.start_time_stamp));
    assert_eq!(
        point(&wf, TaskType::Snapshot),
        &PointStatus {
            task_type: Some(TaskType::Snapshot),
            ..PointStatus::default()
        }
    );
}

#[tokio::test]
async fn seed_example_is_huaweis_example_exactly_and_never_changes() {
    let sim = Sim::start(&["--scenario", "seed-example", "--speed", "1000"]);
    let client = sim.client();
    let target = sim.builtin_target(Builtin::SeedExample);
    let expected: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("seed");
    let first = show(&client, &target, builtin::SEED_WORKFLOW_ID).await;
    assert_eq!(first, expected);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = client.list_workflows(&target).await.expect("list").body;
    assert_eq!(list.items, [expected]);
    assert_eq!(list.kind.as_deref(), Some("List"));
    assert_eq!(list.api_version.as_deref(), Some("v3"));
}

#[tokio::test]
async fn autopilot_clusters_answer_only_under_the_autopilot_prefix() {
    let sim = Sim::start(&["--scenario", "autopilot-success", "--scenario", "success"]);
    let client = sim.client();
    let ap = Builtin::AutopilotSuccess;
    let id = ap.workflow_id(0);
    let target = sim.builtin_target(ap);
    assert_eq!(target.family, ApiFamily::Autopilot);
    assert_eq!(show(&client, &target, &id).await.uid(), Some(id.as_str()));
    let wrong_prefix = sim.target(ApiFamily::Standard, &ap.cluster_id(0), aksk());
    assert!(matches!(
        client.show_workflow(&wrong_prefix, &id).await,
        Err(CceError::NotFound(_))
    ));
    let standard_as_autopilot = sim.target(
        ApiFamily::Autopilot,
        &Builtin::Success.cluster_id(0),
        aksk(),
    );
    assert!(matches!(
        client.list_workflows(&standard_as_autopilot).await,
        Err(CceError::NotFound(_))
    ));
    let paths: Vec<String> = sim
        .requests("route=show")
        .await
        .iter()
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(paths[0].starts_with("/autopilot/v3/projects/"), "{paths:?}");
}

#[tokio::test]
async fn create_starts_the_success_timeline_and_refuses_a_second_active_workflow() {
    let sim = Sim::start(&["--scenario", "idle", "--speed", "60"]);
    let client = sim.client();
    let b = Builtin::Idle;
    let target = sim.builtin_target(b);
    let cluster = b.cluster_id(0);
    let request = CreateWorkflowRequest::new(&cluster, builtin::FROM_VERSION, builtin::TO_VERSION);
    let created = client
        .create_workflow(&target, &request)
        .await
        .expect("create")
        .body;
    assert_eq!(phase(&created), Phase::Init);
    let id = created.uid().expect("uid").to_string();
    assert_eq!(created.points().len(), 4);
    match client.create_workflow(&target, &request).await {
        Err(CceError::Client(f)) => {
            assert_eq!(f.status, 400);
            assert_eq!(f.error_code.as_deref(), Some("CCE.01400001"));
        }
        other => panic!("second create: {other:?}"),
    }
    let (phases, _) = watch_until(&client, &target, &id, Duration::from_secs(15), |w| {
        w.phase() == Some(&Phase::Success)
    })
    .await;
    assert_eq!(phases.last(), Some(&Phase::Success));
    // The cluster now runs the target version: the next upgrade starts from there.
    let next = CreateWorkflowRequest::new(&cluster, builtin::TO_VERSION, "v1.30.1-r0");
    let second = client
        .create_workflow(&target, &next)
        .await
        .expect("next")
        .body;
    let list = client.list_workflows(&target).await.expect("list").body;
    let ids: Vec<_> = list.items.iter().filter_map(Workflow::uid).collect();
    assert_eq!(ids, [id.as_str(), second.uid().expect("uid")]);
    let created_log = sim.requests("route=create&status=201").await;
    assert_eq!(created_log.len(), 2);
    assert_eq!(created_log[0]["workflowID"], json!(id));
}

#[tokio::test]
async fn a_scenario_file_with_copies_custom_steps_and_unknown_values_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("scenario.yaml");
    std::fs::write(
        &file,
        r#"
name: nodepool
count: 3
clusters:
  - {id: "np-{i:3}", version: v1.27.3-r0}
timelines:
  odd:
    - {after: 0, task: PreCheck, status: Running}
    - {after: 0, task: NodePool, status: queue}
    - {after: 1, phase: Paused}
workflows:
  - {id: "npw-{i:3}", clusterID: "np-{i:3}", targetVersion: v1.28.3-r0,
     tasks: [PreCheck, NodePool], timeline: odd}
"#,
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let sim = Sim::start(&["--scenario", &path, "--speed", "10"]);
    let client = sim.client();
    let target = sim.target(ApiFamily::Standard, "np-002", aksk());
    let wf = show(&client, &target, "npw-002").await;
    assert_eq!(
        point(&wf, TaskType::Unknown("NodePool".into())).status,
        Some(TaskState::Unknown("queue".into()))
    );
    let later = eventually("Paused", Duration::from_secs(5), SIM_POLL, || async {
        let wf = show(&client, &target, "npw-002").await;
        match wf.phase() == Some(&Phase::Unknown("Paused".into())) {
            true => Ok(wf),
            false => Err(format!("{:?}", wf.phase())),
        }
    })
    .await;
    assert_eq!(later.points().len(), 2);
    assert!(sim.banner().await.contains("scenario nodepool x3"));
}

/// Moves a workflow `seconds` of scenario time on, through the admin API.
async fn advance(sim: &Sim, id: &str, seconds: f64) {
    let (status, body) = sim
        .admin_post(
            &format!("/_sim/workflows/{id}/advance"),
            json!({"seconds": seconds}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Plays every step of a workflow's timeline that is still to come.
async fn to_end(sim: &Sim, id: &str) {
    let (status, body) = sim
        .admin_post(
            &format!("/_sim/workflows/{id}/advance"),
            json!({"toEnd": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn task_id(wf: &Workflow, task: TaskType) -> String {
    point(wf, task).task_id.clone().expect("task id")
}

/// A simulator playing `b` on a frozen clock, with a client, the target and the workflow id.
fn frozen(b: Builtin) -> (Sim, CceClient, Target, String) {
    let sim = Sim::http().scenario(b).frozen().start();
    let client = sim.client();
    let target = sim.builtin_target(b);
    (sim, client, target, b.workflow_id(0))
}

#[tokio::test]
async fn precheck_fails_reports_a_blocking_node_and_a_risky_api_then_passes_when_run_again() {
    let (sim, client, target, id) = frozen(Builtin::PrecheckFails);
    advance(&sim, &id, 70.0).await;
    let failed = show(&client, &target, &id).await;
    assert_eq!(phase(&failed), Phase::Pending);
    assert_eq!(
        point(&failed, TaskType::PreCheck).status,
        Some(TaskState::Failed)
    );
    let first = task_id(&failed, TaskType::PreCheck);

    let pre = client
        .pre_check_for_task(&target, &first)
        .await
        .expect("ShowPreCheck")
        .body;
    assert_eq!(pre.uid(), Some(first.as_str()));
    assert_eq!(
        pre.message(),
        Some("2 check items did not pass: fix NodeReady first")
    );
    let findings = pre.findings();
    assert_eq!(findings.len(), 2, "{pre:?}");
    let (scope, blocking) = findings[0];
    assert_eq!(blocking.name.as_deref(), Some("NodeReady"));
    assert_eq!(blocking.kind, Some(CheckKind::Exception));
    assert!(blocking.is_blocking());
    assert!(matches!(scope, CheckScope::Node(Some(n)) if n.name.as_deref() == Some("worker-2")));
    assert_eq!(
        blocking.error_codes.as_deref(),
        Some(&["Node.0022".to_string()][..])
    );
    let (_, risk) = findings[1];
    assert_eq!(risk.kind, Some(CheckKind::Risk));
    assert_eq!(risk.level, Some(CheckLevel::Warning));
    assert_eq!(
        risk.subjects(),
        ["/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas"]
    );
    // The pre-check's own times are the point's.
    let meta = pre.metadata.clone().expect("metadata");
    let p = point(&failed, TaskType::PreCheck);
    assert_eq!(meta.creation_timestamp, p.start_time_stamp);
    assert_eq!(meta.update_timestamp, p.end_time_stamp);

    advance(&sim, &id, 100.0).await;
    let passed = show(&client, &target, &id).await;
    let second = task_id(&passed, TaskType::PreCheck);
    assert_ne!(second, first, "a pre-check run again is a new task");
    let again = client
        .show_pre_check(&target, &second)
        .await
        .expect("the second pre-check")
        .body;
    assert!(again.findings().is_empty(), "{again:?}");
    assert_eq!(
        again
            .status
            .as_ref()
            .and_then(|s| s.expire_time_stamp.clone()),
        point(&passed, TaskType::PreCheck).expire_time_stamp
    );
    let list = client
        .list_pre_check_tasks(&target)
        .await
        .expect("list")
        .body;
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.find(&first).map(|t| t.findings().len()), Some(2));

    to_end(&sim, &id).await;
    assert_eq!(phase(&show(&client, &target, &id).await), Phase::Success);
}

#[tokio::test]
async fn cluster_pauses_holds_its_progress_while_paused_and_continues_as_the_same_task() {
    let (sim, client, target, id) = frozen(Builtin::ClusterPauses);
    let progress = |task: &str| {
        let (client, target, task) = (client.clone(), target.clone(), task.to_string());
        async move {
            let t = client
                .show_upgrade_cluster_task(&target, &task)
                .await
                .expect("ShowUpgradeClusterTask")
                .body;
            (t.phase().cloned(), t.progress_percent())
        }
    };
    advance(&sim, &id, 145.0).await;
    let running = show(&client, &target, &id).await;
    let cluster_task = task_id(&running, TaskType::Cluster);
    assert_eq!(
        progress(&cluster_task).await,
        (Some(TaskState::Running), Some(20))
    );
    advance(&sim, &id, 55.0).await;
    let paused = show(&client, &target, &id).await;
    assert_eq!(
        point(&paused, TaskType::Cluster).status,
        Some(TaskState::Pause)
    );
    assert_eq!(phase(&paused), Phase::Running);
    assert_eq!(
        paused.current_task().and_then(|p| p.task_type.clone()),
        Some(TaskType::Cluster)
    );
    assert_eq!(
        progress(&cluster_task).await,
        (Some(TaskState::Pause), Some(40))
    );
    let cluster = client
        .show_cluster(&target)
        .await
        .expect("ShowCluster")
        .body;
    assert_eq!(cluster.phase(), Some(&ClusterPhase::Upgrading));
    assert_eq!(cluster.reason(), Some("UpgradePaused"));
    advance(&sim, &id, 25.0).await;
    assert_eq!(
        progress(&cluster_task).await,
        (Some(TaskState::Pause), Some(40)),
        "no progress while paused"
    );
    advance(&sim, &id, 50.0).await;
    assert_eq!(
        progress(&cluster_task).await,
        (Some(TaskState::Running), Some(70))
    );
    to_end(&sim, &id).await;
    let done = show(&client, &target, &id).await;
    assert_eq!(phase(&done), Phase::Success);
    assert_eq!(task_id(&done, TaskType::Cluster), cluster_task);
    assert_eq!(
        progress(&cluster_task).await,
        (Some(TaskState::Success), Some(100))
    );
    let tasks = client
        .list_upgrade_cluster_tasks(&target)
        .await
        .expect("list")
        .body;
    assert_eq!(tasks.items.len(), 1);
}

#[tokio::test]
async fn cluster_progress_rises_on_the_scenario_clock_while_the_task_runs() {
    let sim = Sim::start(&["--scenario", "success", "--speed", "60"]);
    let client = sim.client();
    let b = Builtin::Success;
    let target = sim.builtin_target(b);
    let id = b.workflow_id(0);
    let (_, running) = watch_until(&client, &target, &id, Duration::from_secs(20), |w| {
        point(w, TaskType::Cluster).status == Some(TaskState::Running)
    })
    .await;
    let cluster_task = task_id(&running, TaskType::Cluster);
    let seen: RefCell<Vec<u8>> = RefCell::default();
    eventually(
        "the Cluster task done",
        Duration::from_secs(20),
        SIM_POLL,
        || async {
            let t = client
                .show_upgrade_cluster_task(&target, &cluster_task)
                .await
                .expect("ShowUpgradeClusterTask")
                .body;
            let p = t.progress_percent().expect("a progress");
            let mut seen = seen.borrow_mut();
            if seen.last() != Some(&p) {
                seen.push(p);
            }
            match t.phase() {
                Some(TaskState::Success) => Ok(()),
                other => Err(format!("{other:?} at {seen:?}")),
            }
        },
    )
    .await;
    let seen = seen.into_inner();
    assert!(seen.is_sorted(), "progress went back: {seen:?}");
    assert_eq!(seen.last(), Some(&100));
    assert!(
        seen.iter().filter(|p| (1..100).contains(*p)).count() >= 3,
        "too few steps in between: {seen:?}"
    );
    let cluster = client
        .show_cluster(&target)
        .await
        .expect("ShowCluster")
        .body;
    assert!(
        cluster.phase() == Some(&ClusterPhase::Upgrading)
            || cluster.phase() == Some(&ClusterPhase::Available),
        "{cluster:?}"
    );
}

#[tokio::test]
async fn a_failed_cluster_task_leaves_the_clusters_reason_and_snapshots_are_listed() {
    let sim = Sim::http()
        .scenario(Builtin::ClusterFailsThenRetry)
        .scenario(Builtin::AutopilotSuccess)
        .frozen()
        .start();
    let client = sim.client();
    let b = Builtin::ClusterFailsThenRetry;
    let target = sim.builtin_target(b);
    let id = b.workflow_id(0);
    advance(&sim, &id, 220.0).await;
    let failed = show(&client, &target, &id).await;
    let task = client
        .show_upgrade_cluster_task(&target, &task_id(&failed, TaskType::Cluster))
        .await
        .expect("task")
        .body;
    assert_eq!(task.phase(), Some(&TaskState::Failed));
    assert_eq!(task.progress_percent(), Some(50));
    let cluster = client.show_cluster(&target).await.expect("cluster").body;
    assert_eq!(cluster.phase(), Some(&ClusterPhase::Error));
    assert_eq!(cluster.reason(), Some("UpgradeFailed"));
    assert!(
        cluster
            .message()
            .is_some_and(|m| m.contains(builtin::TO_VERSION) && m.contains("50%")),
        "{cluster:?}"
    );
    let snapshots = client
        .list_snapshot_tasks(&target)
        .await
        .expect("snapshots")
        .body;
    let snapshot = snapshots
        .find(&task_id(&failed, TaskType::Snapshot))
        .expect("the Snapshot point's task");
    assert_eq!(snapshot.phase(), Some(&TaskState::Success));
    assert_eq!(
        snapshots.status.and_then(|s| s.latest_backup_time),
        point(&failed, TaskType::Snapshot).end_time_stamp
    );

    // Autopilot: the same reads under /autopilot/.
    let ap = Builtin::AutopilotSuccess;
    let ap_target = sim.builtin_target(ap);
    advance(&sim, &ap.workflow_id(0), 400.0).await;
    let done = show(&client, &ap_target, &ap.workflow_id(0)).await;
    let pre = client
        .show_pre_check(&ap_target, &task_id(&done, TaskType::PreCheck))
        .await
        .expect("autopilot pre-check")
        .body;
    assert!(pre.findings().is_empty());
    let up = client
        .show_upgrade_cluster_task(&ap_target, &task_id(&done, TaskType::Cluster))
        .await
        .expect("autopilot upgrade task")
        .body;
    assert_eq!(up.progress_percent(), Some(100));
    let ap_cluster = client.show_cluster(&ap_target).await.expect("cluster").body;
    assert_eq!(ap_cluster.phase(), Some(&ClusterPhase::Available));
    let paths: Vec<String> = sim
        .requests("route=show-precheck")
        .await
        .iter()
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(paths[0].starts_with("/autopilot/v3/projects/"), "{paths:?}");
    assert!(
        sim.requests("route=list-snapshots").await[0]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/api/v3.1/")),
    );
    // A task id of the other cluster is not found here.
    assert!(matches!(
        client
            .show_pre_check(&target, &task_id(&done, TaskType::PreCheck))
            .await,
        Err(CceError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_scenario_file_scripts_check_items_and_the_clusters_reason() {
    let sim = Sim::http()
        .scenario_yaml(
            r#"
name: scripted
clusters: [{id: sc-1, version: v1.28.3-r0}]
workflows:
  - id: sw-1
    clusterID: sc-1
    targetVersion: v1.29.1-r0
    steps:
      - {after: 1, task: PreCheck, status: Running}
      - after: 2
        task: PreCheck
        status: Success
        checks:
          - {name: AddonVersion, kind: Risk, addon: coredns, message: too old}
          - {name: Filler, kind: Risk, level: Info, phase: Success, count: 3}
      - {after: 3, task: Cluster, status: Running}
      - after: 4
        task: Cluster
        status: Failed
        progress: 12
        cluster: {phase: Unavailable, reason: EtcdUnhealthy, message: etcd lost quorum}
"#,
        )
        .frozen()
        .start();
    let client = sim.client();
    let target = sim.target(ApiFamily::Standard, "sc-1", aksk());
    advance(&sim, "sw-1", 5.0).await;
    let wf = show(&client, &target, "sw-1").await;
    let pre = client
        .show_pre_check(&target, &task_id(&wf, TaskType::PreCheck))
        .await
        .expect("pre-check")
        .body;
    assert_eq!(pre.items().count(), 4);
    let findings = pre.findings();
    assert_eq!(findings.len(), 1, "only the failed item: {findings:?}");
    assert_eq!(findings[0].0, CheckScope::Addon);
    assert_eq!(findings[0].1.subjects(), ["coredns"]);
    let task = client
        .show_upgrade_cluster_task(&target, &task_id(&wf, TaskType::Cluster))
        .await
        .expect("task")
        .body;
    assert_eq!(task.progress_percent(), Some(12));
    let cluster = client.show_cluster(&target).await.expect("cluster").body;
    assert_eq!(
        (cluster.phase(), cluster.reason(), cluster.message()),
        (
            Some(&ClusterPhase::Unavailable),
            Some("EtcdUnhealthy"),
            Some("etcd lost quorum")
        )
    );
}
