//! An upgrade started without a workflow (Huawei's Terraform provider calls CCE's upgrade
//! API directly): the cluster's newest upgrade task, read as a workflow of one Cluster task
//! so status, conditions and Events say the same as for a workflow's Cluster task.

use crate::cce::model::{Metadata, Phase, PointStatus, TaskState, TaskType, Workflow};
use crate::cce::model::{WorkflowSpec, WorkflowStatus};
use crate::diagnosis::findings::{Ask, DirectUpgrade, Told};

/// The one-task workflow `task` amounts to. Its uid is the task's, so the status keys its
/// Events by it; the caller moves it to `upgradeTaskID`.
pub fn as_workflow(task: &DirectUpgrade, cluster_id: &str) -> Workflow {
    Workflow {
        kind: None,
        api_version: None,
        metadata: Some(Metadata {
            uid: Some(task.id.clone()),
            creation_timestamp: task.created.clone(),
            update_timestamp: task.updated.clone().or_else(|| task.completed.clone()),
            ..Metadata::default()
        }),
        spec: Some(WorkflowSpec {
            cluster_id: Some(cluster_id.to_string()),
            cluster_version: task.from.clone(),
            target_version: task.target.clone(),
        }),
        status: Some(WorkflowStatus {
            phase: Some(phase_of(task.phase.as_ref())),
            point_statuses: Some(vec![PointStatus {
                task_type: Some(TaskType::Cluster),
                task_id: Some(task.id.clone()),
                status: task.phase.clone(),
                start_time_stamp: task.created.clone(),
                end_time_stamp: task.completed.clone(),
                expire_time_stamp: None,
            }]),
            line_statuses: None,
        }),
    }
}

/// The workflow phase a lone upgrade task stands for: requested or running is Running, a
/// failure waits for a retry as a workflow's Pending does.
fn phase_of(state: Option<&TaskState>) -> Phase {
    match state.map(TaskState::canonical) {
        None
        | Some(TaskState::Init | TaskState::Queuing | TaskState::Running | TaskState::Pause) => {
            Phase::Running
        }
        Some(TaskState::Success) => Phase::Success,
        Some(TaskState::Failed) => Phase::Pending,
        Some(other) => Phase::from(other.as_str()),
    }
}

/// What the task's own list item already says about its progress, as the Cluster task's
/// progress read would: no second request for it.
pub fn progress_told(task: &DirectUpgrade) -> (Ask, Told) {
    (
        Ask::Progress(task.id.clone()),
        Told::Progress {
            phase: task.phase.as_ref().map(|p| p.as_str().to_string()),
            percent: task.percent,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(phase: Option<&str>) -> DirectUpgrade {
        DirectUpgrade {
            id: "up-1".into(),
            phase: phase.map(TaskState::from),
            percent: Some(40),
            from: Some("v1.28.15-r10".into()),
            target: Some("v1.29.13-r0".into()),
            created: Some("2026-01-02 03:04:05 +0000 UTC".into()),
            updated: None,
            completed: None,
        }
    }

    #[test]
    fn a_lone_upgrade_task_is_a_one_task_workflow_of_the_watched_cluster() {
        let wf = as_workflow(&task(Some("Running")), "c-1");
        assert_eq!(wf.uid(), Some("up-1"));
        assert_eq!(wf.phase(), Some(&Phase::Running));
        let spec = wf.spec.as_ref().expect("spec");
        assert_eq!(spec.cluster_id.as_deref(), Some("c-1"));
        assert_eq!(spec.cluster_version.as_deref(), Some("v1.28.15-r10"));
        let points = wf.points();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].task_type, Some(TaskType::Cluster));
        assert_eq!(points[0].status, Some(TaskState::Running));
    }

    #[test]
    fn the_tasks_state_maps_to_the_workflow_phase_the_conditions_read() {
        let phase = |state: Option<&str>| as_workflow(&task(state), "c").phase().cloned();
        assert_eq!(phase(Some("Queuing")), Some(Phase::Running));
        assert_eq!(phase(Some("pause")), Some(Phase::Running));
        assert_eq!(phase(Some("Success")), Some(Phase::Success));
        assert_eq!(phase(Some("Failed")), Some(Phase::Pending));
        assert_eq!(phase(None), Some(Phase::Running));
        assert_eq!(phase(Some("Frozen")), Some(Phase::from("Frozen")));
    }
}
