//! ListClusterMasterSnapshotTasks (note `v3.1` in its path): the master snapshot tasks and
//! their sub-items, whose messages say why a Snapshot point failed. The item whose
//! `metadata.uid` is the Snapshot point's `taskID` is that point's task.

use serde::{Deserialize, Serialize};

use super::{Task, TaskList, TaskStatus};
use crate::cce::model::TaskState;

/// One master snapshot task.
pub type SnapshotTask = Task<SnapshotSpec, TaskStatus>;

/// ListClusterMasterSnapshotTasks' answer; its `status` holds `latestBackupTime`.
pub type SnapshotTaskList = TaskList<SnapshotTask>;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SnapshotSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<SnapshotItem>>,
}

/// One sub-task: `master-backup` (the EVS backup) or `master-backup-rollback`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Verbatim: the values are not identifiers Rust can name.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub item_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SnapshotTask {
    pub fn items(&self) -> &[SnapshotItem] {
        self.spec
            .as_ref()
            .and_then(|s| s.items.as_deref())
            .unwrap_or_default()
    }

    /// The sub-items that did not succeed and say why, in CCE's order.
    pub fn failure_messages(&self) -> impl Iterator<Item = (&SnapshotItem, &str)> {
        self.items().iter().filter_map(|item| {
            let failed = item
                .status
                .as_ref()
                .is_some_and(|s| s.means(&TaskState::Failed));
            let message = item.message.as_deref().filter(|m| !m.trim().is_empty())?;
            failed.then_some((item, message))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_snapshot_task_says_why_through_its_items() {
        let list: SnapshotTaskList = serde_json::from_str(
            r#"{"kind":"List","apiVersion":"v3.1","status":{"latestBackupTime":"2024-03-15 08:00:00 +0000 UTC"},
                "items":[{"metadata":{"uid":"snap-1"},
                  "spec":{"items":[
                    {"id":"i1","type":"master-backup","status":"Failed","message":"EVS quota exceeded"},
                    {"id":"i2","type":"master-backup","status":"failed","message":"  "},
                    {"id":"i3","type":"master-backup-rollback","status":"Success","message":"ok"}]},
                  "status":{"phase":"Failed","progress":"30","completionTime":"2024-03-15 08:05:00 +0000 UTC"}}]}"#,
        )
        .expect("parse");
        let task = list.find("snap-1").expect("found");
        assert_eq!(task.phase(), Some(&TaskState::Failed));
        let why: Vec<_> = task
            .failure_messages()
            .map(|(i, m)| (i.id.as_deref(), m))
            .collect();
        assert_eq!(why, [(Some("i1"), "EVS quota exceeded")]);
        assert!(list.find("snap-2").is_none());
        let empty: SnapshotTaskList = serde_json::from_str("{}").expect("empty");
        assert!(empty.items.is_empty());
    }
}
