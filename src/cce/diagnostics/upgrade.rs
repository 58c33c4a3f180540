//! ShowUpgradeClusterTask and ListUpgradeClusterTasks: how far the Cluster task is
//! (`…/operation/upgrade/tasks[/{task_id}]`, kind `UpgradeTask`). CCE gives no failure
//! message here; the cluster's own reason is in ShowCluster.

use serde::{Deserialize, Serialize};

use super::{Task, TaskList, TaskStatus};

/// ShowUpgradeClusterTask's answer, and each item of ListUpgradeClusterTasks.
pub type UpgradeTask = Task<UpgradeTaskSpec, TaskStatus>;

/// ListUpgradeClusterTasks' answer.
pub type UpgradeTaskList = TaskList<UpgradeTask>;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeTaskSpec {
    /// The version upgraded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// Untyped in Huawei's SDK; kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::TaskState;

    #[test]
    fn an_upgrade_task_reads_its_phase_and_progress_however_they_are_sent() {
        let task: UpgradeTask = serde_json::from_str(
            r#"{"kind":"UpgradeTask","metadata":{"uid":"up-1"},
                "spec":{"version":"v1.28","targetVersion":"v1.29","items":{"any":[1]}},
                "status":{"phase":"Pause","progress":"45.00"}}"#,
        )
        .expect("parse");
        assert_eq!(task.uid(), Some("up-1"));
        assert_eq!(task.phase(), Some(&TaskState::Pause));
        assert_eq!(task.progress_percent(), Some(45));
        let numeric: UpgradeTask =
            serde_json::from_str(r#"{"status":{"phase":"running","progress":62.5}}"#).expect("n");
        assert_eq!(numeric.progress_percent(), Some(62));
        assert!(
            numeric
                .phase()
                .is_some_and(|p| p.means(&TaskState::Running))
        );
        let bare: UpgradeTask = serde_json::from_str("{}").expect("empty");
        assert_eq!((bare.phase(), bare.progress_percent()), (None, None));
    }

    #[test]
    fn a_list_finds_the_task_a_point_names() {
        let list: UpgradeTaskList = serde_json::from_str(
            r#"{"items":[{"metadata":{"uid":"a"}},{"metadata":{"uid":"b"},"status":{"phase":"Failed"}}]}"#,
        )
        .expect("parse");
        assert_eq!(
            list.find("b").and_then(UpgradeTask::phase),
            Some(&TaskState::Failed)
        );
        assert!(list.find("c").is_none());
    }
}
