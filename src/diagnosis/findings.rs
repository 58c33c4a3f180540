//! What CCE's diagnostic APIs say about a workflow's tasks, as bounded status: which reads a
//! workflow calls for ([`wanted`]), what each answer becomes ([`Told`]), how the answers sit
//! on the mirrored tasks ([`annotate`]), and the one-line summaries the Stalled condition
//! and the Warning Event carry. Pure: `diagnostics` does the reading.
//!
//! A finished task's diagnosis is read once: it is kept on the task in status, so neither
//! the next poll nor a restarted operator asks again. Only a running Cluster task is read
//! per poll, for its progress.

use crate::cce::diagnostics::{
    CheckItem, CheckKind, CheckLevel, CheckScope, Cluster, PreCheckTask, SnapshotTaskList,
    UpgradeTask, UpgradeTaskList,
};
use crate::cce::error::CceError;
use crate::cce::model::{TaskState, TaskType, Workflow};
use crate::crd::{
    CheckFinding, CheckReport, ClusterReport, TaskStatus, UpgradeWorkflowWatchStatus,
};

use crate::limits::{
    FINDING_MESSAGE_BYTES, MAX_DIAGNOSED_TASKS, MAX_ERROR_CODES, MAX_FIELD_BYTES, MAX_FINDINGS,
    MAX_SNAPSHOT_MESSAGES, MAX_TASKS, clean,
};

/// One read of a diagnostic API, about the task with this id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ask {
    /// ShowPreCheck (ListPreCheckTasks when CCE has no Show for it).
    PreCheck(String),
    /// ShowUpgradeClusterTask, while the Cluster task runs.
    Progress(String),
    /// ShowCluster, once a Cluster or Rollback task failed.
    Cluster(String),
    /// The snapshot task list, once a Snapshot task failed.
    Snapshot(String),
    /// ShowCluster for the cluster's name (by cluster id), until status holds it.
    ClusterName(String),
    /// ListUpgradeClusterTasks (by cluster id), while a followed cluster has no workflow:
    /// an upgrade started without one shows only there.
    UpgradeTasks(String),
}

impl Ask {
    pub fn task_id(&self) -> &str {
        match self {
            Self::PreCheck(id)
            | Self::Progress(id)
            | Self::Cluster(id)
            | Self::Snapshot(id)
            | Self::ClusterName(id)
            | Self::UpgradeTasks(id) => id,
        }
    }

    /// The CCE operation, as status and the metrics name it.
    pub fn api(&self) -> &'static str {
        match self {
            Self::PreCheck(_) => "ShowPreCheck",
            Self::Progress(_) => "ShowUpgradeClusterTask",
            Self::Cluster(_) | Self::ClusterName(_) => "ShowCluster",
            Self::Snapshot(_) => "ListClusterMasterSnapshotTasks",
            Self::UpgradeTasks(_) => "ListUpgradeClusterTasks",
        }
    }

    fn fits(&self, task: &TaskStatus) -> bool {
        let kind = task.kind();
        task.id.as_deref() == Some(self.task_id())
            && match self {
                Self::PreCheck(_) => kind == TaskType::PreCheck,
                Self::Progress(_) => kind == TaskType::Cluster,
                Self::Cluster(_) => matches!(kind, TaskType::Cluster | TaskType::Rollback),
                Self::Snapshot(_) => kind == TaskType::Snapshot,
                Self::ClusterName(_) | Self::UpgradeTasks(_) => false,
            }
    }
}

/// What a read gave, already bounded for status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Told {
    PreCheck(CheckReport),
    Progress {
        phase: Option<String>,
        percent: Option<u8>,
    },
    Cluster(ClusterReport),
    Snapshot(Vec<String>),
    /// The cluster's name, when CCE gave one.
    ClusterName(Option<String>),
    /// The cluster's newest upgrade task, when it has any.
    UpgradeTask(Option<Box<DirectUpgrade>>),
    /// CCE will not say (403, 404, an unreadable answer): the sentence status keeps.
    Unavailable(String),
}

/// The reads `wf` calls for, given what `old` already holds: a finished pre-check, a failed
/// Cluster, Rollback or Snapshot task not yet diagnosed, and a running Cluster task's
/// progress. At most [`MAX_DIAGNOSED_TASKS`] tasks of a status carry a diagnosis, so a
/// hostile workflow can neither turn one poll into many requests nor grow the status.
pub fn wanted(wf: &Workflow, old: &UpgradeWorkflowWatchStatus) -> Vec<Ask> {
    let mut asks = Vec::new();
    let mut once = old
        .tasks
        .iter()
        .filter(|t| t.checks.is_some() || t.cluster.is_some() || !t.snapshot_messages.is_empty())
        .count();
    for point in wf.points().iter().take(MAX_TASKS) {
        let (Some(id), Some(kind), Some(state)) = (&point.task_id, &point.task_type, &point.status)
        else {
            continue;
        };
        let (kind, state) = (kind.canonical(), state.canonical());
        let before = old
            .tasks
            .iter()
            .find(|t| t.kind() == kind && t.id.as_deref() == Some(id.as_str()));
        let unavailable = |api: &str| {
            before
                .and_then(|t| t.diagnostics_unavailable_reason.as_deref())
                .is_some_and(|said| said.starts_with(api))
        };
        let ask = match (&kind, &state) {
            (TaskType::Cluster, TaskState::Running | TaskState::Pause) => {
                let ask = Ask::Progress(id.clone());
                if !unavailable(ask.api()) {
                    asks.push(ask);
                }
                continue;
            }
            (TaskType::PreCheck, TaskState::Success | TaskState::Failed)
                if before.is_none_or(|t| t.checks.is_none()) =>
            {
                Ask::PreCheck(id.clone())
            }
            (TaskType::Cluster | TaskType::Rollback, TaskState::Failed)
                if before.is_none_or(|t| t.cluster.is_none()) =>
            {
                Ask::Cluster(id.clone())
            }
            (TaskType::Snapshot, TaskState::Failed)
                if before.is_none_or(|t| t.snapshot_messages.is_empty()) =>
            {
                Ask::Snapshot(id.clone())
            }
            _ => continue,
        };
        if unavailable(ask.api()) || once >= MAX_DIAGNOSED_TASKS {
            continue;
        }
        once += 1;
        asks.push(ask);
    }
    asks
}

/// Whether `wf` has a task whose diagnosis changes by itself (a running Cluster task's
/// progress): then an unchanged workflow does not make an unchanged status.
pub fn reads_every_poll(wf: &Workflow) -> bool {
    wf.points().iter().any(|p| {
        p.task_type
            .as_ref()
            .is_some_and(|t| t.means(&TaskType::Cluster))
            && p.status
                .as_ref()
                .is_some_and(|s| s.means(&TaskState::Running) || s.means(&TaskState::Pause))
    })
}

/// A failed read as status says it, or `None` when it is worth trying again at the next
/// poll (throttled, CCE unavailable, a timeout).
pub fn unavailable(ask: &Ask, e: &CceError) -> Option<Told> {
    let why = match e {
        CceError::Forbidden(_) => "CCE denied the request (403): the account may not use this API",
        CceError::NotFound(_) => "CCE has no record of it (404)",
        CceError::InvalidResponse { .. } => "CCE's answer could not be read",
        _ => return None,
    };
    Some(Told::Unavailable(format!("{}: {why}", ask.api())))
}

/// `f` of a string from CCE, cleaned and bounded.
fn kept(raw: Option<&str>, max: usize) -> Option<String> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| clean(s, max).into_owned())
}

/// The pre-check's phase and message, and its most severe findings.
pub fn precheck_report(task: &PreCheckTask) -> CheckReport {
    let findings = task.findings();
    let items = findings
        .iter()
        .take(MAX_FINDINGS)
        .map(|(scope, item)| {
            // A node's check names the node by name; its risk source repeats its uid.
            let node = match scope {
                CheckScope::Node(Some(node)) => Some(node),
                _ => None,
            };
            let node_uid = node.and_then(|n| n.uid.as_deref());
            let mut subjects: Vec<&str> = node
                .and_then(|n| n.name.as_deref().or(n.uid.as_deref()))
                .into_iter()
                .collect();
            subjects.extend(item.subjects().into_iter().filter(|s| Some(*s) != node_uid));
            subjects.dedup();
            let subject = (!subjects.is_empty()).then(|| subjects.join(", "));
            CheckFinding {
                name: kept(item.name.as_deref(), MAX_FIELD_BYTES),
                kind: kept(item.kind.as_ref().map(|k| k.as_str()), MAX_FIELD_BYTES),
                group: kept(item.group.as_ref().map(|g| g.as_str()), MAX_FIELD_BYTES),
                level: kept(item.level.as_ref().map(|l| l.as_str()), MAX_FIELD_BYTES),
                message: kept(item.message.as_deref(), FINDING_MESSAGE_BYTES),
                error_codes: item
                    .error_codes
                    .iter()
                    .flatten()
                    .filter_map(|c| kept(Some(c), MAX_FIELD_BYTES))
                    .take(MAX_ERROR_CODES)
                    .collect(),
                subject: kept(subject.as_deref(), MAX_FIELD_BYTES),
            }
        })
        .collect();
    let more = findings.len().saturating_sub(MAX_FINDINGS);
    CheckReport {
        phase: kept(task.phase().map(|p| p.as_str()), MAX_FIELD_BYTES),
        message: kept(task.message(), FINDING_MESSAGE_BYTES),
        items,
        more_items: (more > 0).then(|| u32::try_from(more).unwrap_or(u32::MAX)),
    }
}

pub fn progress(task: &UpgradeTask) -> Told {
    Told::Progress {
        phase: kept(task.phase().map(|p| p.as_str()), MAX_FIELD_BYTES),
        percent: task.progress_percent(),
    }
}

/// CCE's upgrade task of a cluster upgraded without a workflow, bounded for status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectUpgrade {
    pub id: String,
    /// Init, Queuing, Running, Pause, Success, Failed, or a newer word as CCE sends it.
    pub phase: Option<TaskState>,
    pub percent: Option<u8>,
    pub from: Option<String>,
    pub target: Option<String>,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub completed: Option<String>,
}

/// The newest task of ListUpgradeClusterTasks (by creation time; CCE's order among those
/// without one), or none.
pub fn newest_upgrade_task(list: &UpgradeTaskList) -> Told {
    let newest = list
        .items
        .iter()
        .enumerate()
        .filter(|(_, task)| task.uid().is_some_and(|id| !id.trim().is_empty()))
        .max_by_key(|(index, task)| {
            let created = task
                .metadata
                .as_ref()
                .and_then(|m| m.creation_timestamp.as_deref())
                .and_then(crate::cce::time::parse);
            (created, std::cmp::Reverse(*index))
        })
        .map(|(_, task)| task);
    Told::UpgradeTask(newest.map(|task| {
        let meta = task.metadata.as_ref();
        let spec = task.spec.as_ref();
        Box::new(DirectUpgrade {
            id: clean(task.uid().unwrap_or_default().trim(), MAX_FIELD_BYTES).into_owned(),
            phase: task.phase().cloned(),
            percent: task.progress_percent(),
            from: kept(spec.and_then(|s| s.version.as_deref()), MAX_FIELD_BYTES),
            target: kept(
                spec.and_then(|s| s.target_version.as_deref()),
                MAX_FIELD_BYTES,
            ),
            created: kept(
                meta.and_then(|m| m.creation_timestamp.as_deref()),
                MAX_FIELD_BYTES,
            ),
            updated: kept(
                meta.and_then(|m| m.update_timestamp.as_deref()),
                MAX_FIELD_BYTES,
            ),
            completed: kept(
                task.status
                    .as_ref()
                    .and_then(|s| s.completion_time.as_deref()),
                MAX_FIELD_BYTES,
            ),
        })
    }))
}

/// The upgrade task `told` names, if the read was made and found one.
pub fn told_upgrade_task(told: &[(Ask, Told)]) -> Option<&DirectUpgrade> {
    told.iter().find_map(|(_, answer)| match answer {
        Told::UpgradeTask(Some(task)) => Some(&**task),
        _ => None,
    })
}

/// The name a cluster's ShowCluster answer gives it, bounded.
pub fn cluster_name(cluster: &Cluster) -> Told {
    Told::ClusterName(kept(
        cluster.metadata.as_ref().and_then(|m| m.name.as_deref()),
        MAX_FIELD_BYTES,
    ))
}

/// The name `told` gives the cluster, if a read of it was made and answered.
pub fn told_cluster_name(told: &[(Ask, Told)]) -> Option<String> {
    told.iter().find_map(|(_, answer)| match answer {
        Told::ClusterName(name) => name.clone(),
        _ => None,
    })
}

pub fn cluster_report(cluster: &Cluster) -> ClusterReport {
    ClusterReport {
        phase: kept(cluster.phase().map(|p| p.as_str()), MAX_FIELD_BYTES),
        reason: kept(cluster.reason(), MAX_FIELD_BYTES),
        message: kept(cluster.message(), FINDING_MESSAGE_BYTES),
    }
}

/// The messages of the snapshot task's failed items; a sentence saying there are none, so
/// the task counts as diagnosed.
pub fn snapshot_messages(list: &SnapshotTaskList, ask: &Ask) -> Told {
    let Some(task) = list.find(ask.task_id()) else {
        return Told::Unavailable(format!("{}: CCE lists no such snapshot task", ask.api()));
    };
    let mut messages: Vec<String> = task
        .failure_messages()
        .filter_map(|(_, m)| kept(Some(m), FINDING_MESSAGE_BYTES))
        .take(MAX_SNAPSHOT_MESSAGES)
        .collect();
    if messages.is_empty() {
        messages.push("CCE gives no message for the failed snapshot".into());
    }
    Told::Snapshot(messages)
}

/// Lays the diagnoses on the freshly mirrored tasks: what `old` held for the same task (same
/// type and id) stays, fresh answers replace it, and the current task shows its progress
/// (`Cluster 45%`).
pub fn annotate(status: &mut UpgradeWorkflowWatchStatus, old: &[TaskStatus], told: &[(Ask, Told)]) {
    for task in &mut status.tasks {
        if task.id.is_none() {
            continue;
        }
        if let Some(before) = old
            .iter()
            .find(|t| t.task_type == task.task_type && t.id == task.id)
        {
            task.percent = before.percent;
            task.upgrade_task_phase
                .clone_from(&before.upgrade_task_phase);
            task.checks.clone_from(&before.checks);
            task.cluster.clone_from(&before.cluster);
            task.snapshot_messages.clone_from(&before.snapshot_messages);
            task.diagnostics_unavailable_reason
                .clone_from(&before.diagnostics_unavailable_reason);
        }
        let fresh: Vec<&(Ask, Told)> = told.iter().filter(|(ask, _)| ask.fits(task)).collect();
        for (ask, answer) in fresh {
            match answer.clone() {
                Told::PreCheck(report) => task.checks = Some(report),
                Told::Progress { phase, percent } => {
                    task.upgrade_task_phase = phase;
                    task.percent = percent.or(task.percent);
                }
                Told::Cluster(report) => task.cluster = Some(report),
                Told::Snapshot(messages) => task.snapshot_messages = messages,
                Told::ClusterName(_) | Told::UpgradeTask(_) => {}
                Told::Unavailable(said) => {
                    debug_assert!(said.starts_with(ask.api()));
                    task.diagnostics_unavailable_reason = Some(said);
                }
            }
        }
    }
    let shown = status.current_task.as_deref().and_then(|current| {
        let task = status.tasks.iter().find(|t| {
            t.task_type == current
                && matches!(t.state(), Some(TaskState::Running | TaskState::Pause))
        })?;
        Some(format!("{current} {}%", task.percent?))
    });
    if let Some(shown) = shown {
        status.current_task = Some(shown);
    }
}

/// Whether a finding blocks the upgrade, by the model's rule for check items.
pub fn is_blocking(finding: &CheckFinding) -> bool {
    CheckItem {
        kind: finding.kind.as_deref().map(CheckKind::from),
        level: finding.level.as_deref().map(CheckLevel::from),
        ..CheckItem::default()
    }
    .is_blocking()
}

/// What CCE said about a task, in one line: the blocking items first, then the risks, or
/// the cluster's reason, or the snapshot's messages. `None` when nothing was said.
pub fn task_summary(task: &TaskStatus) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(checks) = &task.checks {
        let describe = |f: &CheckFinding| {
            let mut s = f.name.clone().unwrap_or_else(|| "an unnamed item".into());
            if let Some(subject) = &f.subject {
                s.push_str(&format!(" on {subject}"));
            }
            let mut detail = f.error_codes.join(", ");
            if let Some(message) = &f.message {
                if !detail.is_empty() {
                    detail.push_str(": ");
                }
                detail.push_str(message);
            }
            if !detail.is_empty() {
                s.push_str(&format!(" ({detail})"));
            }
            s
        };
        let blocking: Vec<String> = checks
            .items
            .iter()
            .filter(|f| {
                f.kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("Exception"))
            })
            .map(describe)
            .collect();
        let others: Vec<String> = checks
            .items
            .iter()
            .filter(|f| {
                !f.kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("Exception"))
            })
            .map(describe)
            .collect();
        if !blocking.is_empty() {
            parts.push(format!("must fix: {}", blocking.join("; ")));
        }
        if !others.is_empty() {
            parts.push(format!("risks that may be skipped: {}", others.join("; ")));
        }
        if let Some(more) = checks.more_items {
            parts.push(format!("{more} more items"));
        }
        if parts.is_empty()
            && task.state() == Some(TaskState::Failed)
            && let Some(message) = &checks.message
        {
            parts.push(format!("pre-check: {message}"));
        }
    }
    if let Some(cluster) = &task.cluster {
        let said: Vec<&str> = [&cluster.phase, &cluster.reason, &cluster.message]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !said.is_empty() {
            parts.push(format!("cluster {}", said.join(": ")));
        }
    }
    if !task.snapshot_messages.is_empty() {
        parts.push(format!("snapshot: {}", task.snapshot_messages.join("; ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The failed tasks and what CCE said about them, for the Stalled message.
pub fn blocking_summary(status: &UpgradeWorkflowWatchStatus) -> Option<String> {
    let lines: Vec<String> = status
        .tasks
        .iter()
        .filter(|t| t.state() == Some(TaskState::Failed))
        .filter_map(|t| {
            let summary = task_summary(t)?;
            let id =
                t.id.as_deref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default();
            Some(format!("task {}{id} failed: {summary}", t.task_type))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// The diagnoses CCE would not give, for the Synced message.
pub fn unavailable_summary(status: &UpgradeWorkflowWatchStatus) -> Option<String> {
    let lines: Vec<String> = status
        .tasks
        .iter()
        .filter_map(|t| {
            let said = t.diagnostics_unavailable_reason.as_deref()?;
            let id = t.id.as_deref().unwrap_or("-");
            Some(format!("{} {id}: {said}", t.task_type))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(points: serde_json::Value) -> Workflow {
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "w1"},
            "status": {"phase": "Running", "pointStatuses": points}
        }))
        .expect("workflow")
    }

    fn precheck(items: serde_json::Value, nodes: serde_json::Value) -> PreCheckTask {
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "p1"},
            "status": {
                "phase": "Failed",
                "message": "2 check items did not pass",
                "clusterCheckStatus": {"phase": "Failed", "itemsStatus": items},
                "nodeCheckStatus": {"phase": "Failed", "nodeStageStatus": nodes}
            }
        }))
        .expect("pre-check")
    }

    fn the_precheck_fails_scenario() -> PreCheckTask {
        precheck(
            serde_json::json!([{
                "name": "DeprecatedAPI", "kind": "Risk", "group": "LimitCheck",
                "level": "Warning", "phase": "Failed", "errorCodes": ["Cluster.0120"],
                "message": "a deprecated API is still in use",
                "riskSource": {"deprecatedAPIRisks": [
                    {"url": "/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas"}]}
            }, {"name": "Passing", "phase": "Success", "kind": "Exception", "level": "Fatal"}]),
            serde_json::json!([{
                "nodeInfo": {"uid": "n2", "name": "worker-2", "status": "Abnormal"},
                "itemsStatus": [{
                    "name": "NodeReady", "kind": "Exception", "group": "NodeCheck",
                    "level": "Fatal", "phase": "Failed", "errorCodes": ["Node.0022"],
                    "message": "node worker-2 is NotReady",
                    "riskSource": {"nodeRisks": [{"NodeID": "n2"}]}
                }]
            }]),
        )
    }

    #[test]
    fn a_failed_precheck_becomes_its_findings_blocking_first() {
        let report = precheck_report(&the_precheck_fails_scenario());
        assert_eq!(report.phase.as_deref(), Some("Failed"));
        assert_eq!(report.items.len(), 2, "the passing item is not a finding");
        let node = &report.items[0];
        assert_eq!(node.name.as_deref(), Some("NodeReady"));
        assert_eq!(node.kind.as_deref(), Some("Exception"));
        assert_eq!(node.group.as_deref(), Some("NodeCheck"));
        assert_eq!(node.level.as_deref(), Some("Fatal"));
        assert_eq!(node.subject.as_deref(), Some("worker-2"));
        assert_eq!(node.error_codes, vec!["Node.0022"]);
        let api = &report.items[1];
        assert_eq!(api.kind.as_deref(), Some("Risk"));
        assert_eq!(
            api.subject.as_deref(),
            Some("/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas")
        );
        assert_eq!(report.more_items, None);

        let task = TaskStatus {
            task_type: "PreCheck".into(),
            id: Some("p1".into()),
            phase: Some("Failed".into()),
            checks: Some(report),
            ..Default::default()
        };
        let summary = task_summary(&task).expect("summary");
        assert!(
            summary.starts_with(
                "must fix: NodeReady on worker-2 (Node.0022: node worker-2 is NotReady); \
                 risks that may be skipped: DeprecatedAPI on /apis/"
            ),
            "{summary}"
        );
    }

    #[test]
    fn a_huge_precheck_keeps_the_most_severe_items_and_counts_the_rest() {
        let items: Vec<serde_json::Value> = (0..500)
            .map(|i| {
                serde_json::json!({
                    "name": format!("Item{i}"), "phase": "Failed",
                    "kind": if i == 499 { "Exception" } else { "Risk" },
                    "level": "Warning", "message": "x".repeat(10_000),
                    "errorCodes": vec!["E"; 50]
                })
            })
            .collect();
        let report = precheck_report(&precheck(serde_json::json!(items), serde_json::json!([])));
        assert_eq!(report.items.len(), MAX_FINDINGS);
        assert_eq!(
            report.items[0].name.as_deref(),
            Some("Item499"),
            "blocking first"
        );
        assert_eq!(report.more_items, Some(490));
        assert!(report.items.iter().all(|f| {
            f.message
                .as_ref()
                .is_some_and(|m| m.len() <= FINDING_MESSAGE_BYTES)
                && f.error_codes.len() <= MAX_ERROR_CODES
        }));
    }

    #[test]
    fn a_finished_task_is_read_once_and_a_running_cluster_every_poll() {
        let wf = workflow(serde_json::json!([
            {"taskType": "PreCheck", "taskID": "p1", "status": "failed"},
            {"taskType": "Cluster", "taskID": "c1", "status": "Running"},
            {"taskType": "Snapshot", "taskID": "s1", "status": "Failed"},
            {"taskType": "PostCheck"}
        ]));
        let asks = wanted(&wf, &Default::default());
        assert_eq!(
            asks,
            vec![
                Ask::PreCheck("p1".into()),
                Ask::Progress("c1".into()),
                Ask::Snapshot("s1".into())
            ],
            "known states in any case count"
        );
        let mut status = UpgradeWorkflowWatchStatus {
            tasks: vec![
                TaskStatus {
                    task_type: "PreCheck".into(),
                    id: Some("p1".into()),
                    phase: Some("failed".into()),
                    ..Default::default()
                },
                TaskStatus {
                    task_type: "Cluster".into(),
                    id: Some("c1".into()),
                    phase: Some("Running".into()),
                    ..Default::default()
                },
                TaskStatus {
                    task_type: "Snapshot".into(),
                    id: Some("s1".into()),
                    phase: Some("Failed".into()),
                    ..Default::default()
                },
            ],
            current_task: Some("Cluster".into()),
            ..Default::default()
        };
        let told = vec![
            (
                Ask::PreCheck("p1".into()),
                Told::PreCheck(precheck_report(&the_precheck_fails_scenario())),
            ),
            (
                Ask::Progress("c1".into()),
                Told::Progress {
                    phase: Some("Running".into()),
                    percent: Some(45),
                },
            ),
            (
                Ask::Snapshot("s1".into()),
                Told::Unavailable("ListClusterMasterSnapshotTasks: CCE denied".into()),
            ),
        ];
        let old = status.clone();
        annotate(&mut status, &old.tasks, &told);
        assert_eq!(status.current_task.as_deref(), Some("Cluster 45%"));
        assert_eq!(status.tasks[1].percent, Some(45));
        assert_eq!(
            wanted(&wf, &status),
            vec![Ask::Progress("c1".into())],
            "diagnosed and unavailable tasks are not asked again"
        );
        let retried = workflow(serde_json::json!([
            {"taskType": "PreCheck", "taskID": "p2", "status": "Success"}
        ]));
        assert_eq!(wanted(&retried, &status), vec![Ask::PreCheck("p2".into())]);
        assert!(unavailable_summary(&status).is_some_and(|s| s.contains("Snapshot s1")));
    }

    #[test]
    fn a_mirror_keeps_what_was_diagnosed_for_the_same_task_only() {
        let old = vec![TaskStatus {
            task_type: "Cluster".into(),
            id: Some("c1".into()),
            phase: Some("Failed".into()),
            percent: Some(50),
            cluster: Some(ClusterReport {
                phase: Some("Error".into()),
                reason: Some("UpgradeFailed".into()),
                message: Some("failed at 50%".into()),
            }),
            ..Default::default()
        }];
        let mut status = UpgradeWorkflowWatchStatus {
            tasks: vec![TaskStatus {
                id: Some("c1".into()),
                ..old[0].clone()
            }],
            ..Default::default()
        };
        status.tasks[0].cluster = None;
        annotate(&mut status, &old, &[]);
        assert_eq!(status.tasks[0].cluster, old[0].cluster);
        assert!(blocking_summary(&status).is_some_and(
            |s| s == "task Cluster (c1) failed: cluster Error: UpgradeFailed: failed at 50%"
        ));
        let mut retried = UpgradeWorkflowWatchStatus {
            tasks: vec![TaskStatus {
                task_type: "Cluster".into(),
                id: Some("c2".into()),
                phase: Some("Running".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        annotate(&mut retried, &old, &[]);
        assert_eq!(retried.tasks[0].cluster, None);
        assert_eq!(retried.tasks[0].percent, None);
    }

    #[test]
    fn only_denials_absences_and_garbage_make_diagnostics_unavailable() {
        use crate::cce::error::ApiFailure;
        let ask = Ask::PreCheck("p1".into());
        let failure = |status| ApiFailure {
            status,
            ..Default::default()
        };
        assert!(matches!(
            unavailable(&ask, &CceError::Forbidden(failure(403))),
            Some(Told::Unavailable(s)) if s.starts_with("ShowPreCheck: CCE denied")
        ));
        assert!(unavailable(&ask, &CceError::NotFound(failure(404))).is_some());
        assert!(unavailable(&ask, &CceError::Server(failure(503))).is_none());
    }
}
