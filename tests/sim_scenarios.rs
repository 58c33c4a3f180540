//! The project's own CCE client against the simulator binary, one test per built-in
//! scenario (plus Create, Autopilot and scenario files): what the operator will see.

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use cce_upgrade_watch::cce::ApiFamily;
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
    let (status, _) = sim
        .admin_post(
            &format!("/_sim/workflows/{id}/advance"),
            json!({"toEnd": true}),
        )
        .await;
    assert_eq!(status, 200);
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
