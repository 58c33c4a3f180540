//! ShowUpgradeClusterTask and ListUpgradeClusterTasks: how far the Cluster task is
//! (`…/operation/upgrade/tasks[/{task_id}]`, kind `UpgradeTask`). CCE gives no failure
//! message here; the cluster's own reason is in ShowCluster.

use serde::{Deserialize, Serialize};

use super::TaskMetadata;
use crate::cce::lenient::{null_as_empty, string_or_number};
use crate::cce::model::TaskState;

/// ShowUpgradeClusterTask's answer, and each item of ListUpgradeClusterTasks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeTask {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TaskMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<UpgradeTaskSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<UpgradeTaskStatus>,
}

/// ListUpgradeClusterTasks' answer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeTaskList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<UpgradeTask>,
}

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

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeTaskStatus {
    /// Init, Queuing, Running, Pause, Success or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskState>,
    /// A percentage as text, e.g. `"45.00"`; see [`UpgradeTask::progress_percent`].
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
}

impl UpgradeTask {
    pub fn uid(&self) -> Option<&str> {
        self.metadata.as_ref()?.uid.as_deref()
    }

    pub fn phase(&self) -> Option<&TaskState> {
        self.status.as_ref()?.phase.as_ref()
    }

    /// The progress as a whole percentage (0–100, rounded down), when CCE sent a number.
    pub fn progress_percent(&self) -> Option<u8> {
        super::progress_percent(self.status.as_ref()?.progress.as_deref())
    }
}

impl UpgradeTaskList {
    /// The upgrade task a workflow point's `taskID` names.
    pub fn find(&self, task_id: &str) -> Option<&UpgradeTask> {
        super::by_uid(&self.items, task_id, |t| t.metadata.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
