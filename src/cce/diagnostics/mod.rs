//! CCE's answers that say why an upgrade task failed and how far it is
//! (`docs/cce-diagnostics.md` in the shared docs): the pre-check's findings, the Cluster
//! upgrade task's progress, the cluster's own phase and reason, and the master snapshot
//! tasks. Same rules as the workflow model: every field optional, unknown fields ignored,
//! enum values this build does not know kept verbatim, fields whose JSON type CCE varies
//! read leniently.

pub mod cluster;
pub mod precheck;
pub mod snapshot;
pub mod upgrade;

use serde::{Deserialize, Serialize};

use super::lenient::{null_as_empty, string_or_number};
use super::model::TaskState;

pub use cluster::{Cluster, ClusterPhase};
pub use precheck::{CheckItem, CheckKind, CheckLevel, CheckScope, PreCheckTask, PreCheckTaskList};
pub use snapshot::{SnapshotTask, SnapshotTaskList};
pub use upgrade::{UpgradeTask, UpgradeTaskList};

/// A pre-check, upgrade or snapshot task: the three share their envelope and differ in
/// `spec` and `status` (see the aliases [`PreCheckTask`], [`UpgradeTask`], [`SnapshotTask`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task<Spec, Status> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TaskMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Spec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// The answer of a List call of those tasks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(
    rename_all = "camelCase",
    bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>")
)]
pub struct TaskList<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<T>,
    /// Only the snapshot task list carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskListStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskListStatus {
    /// When the newest master snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_backup_time: Option<String>,
}

/// How far an upgrade or snapshot task is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// Init, Queuing, Running, Pause, Success or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskState>,
    /// A percentage as text, e.g. `"45.00"`; see [`Task::progress_percent`].
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
}

impl<Spec, Status> Task<Spec, Status> {
    pub fn uid(&self) -> Option<&str> {
        self.metadata.as_ref()?.uid.as_deref()
    }
}

impl<Spec> Task<Spec, TaskStatus> {
    pub fn phase(&self) -> Option<&TaskState> {
        self.status.as_ref()?.phase.as_ref()
    }

    /// The progress as a whole percentage (0–100, rounded down), when CCE sent a number.
    pub fn progress_percent(&self) -> Option<u8> {
        progress_percent(self.status.as_ref()?.progress.as_deref())
    }
}

impl<Spec, Status> TaskList<Task<Spec, Status>> {
    /// The task a workflow point's `taskID` names.
    pub fn find(&self, task_id: &str) -> Option<&Task<Spec, Status>> {
        self.items.iter().find(|t| t.uid() == Some(task_id))
    }
}

/// `metadata` of a pre-check, upgrade or snapshot task: its `uid` is the `taskID` of the
/// workflow point that ran it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_timestamp: Option<String>,
}

/// `progress` as CCE writes it (`"45.00"`) as a whole percentage, rounded down and kept
/// within 0–100; `None` when absent or not a number.
pub fn progress_percent(progress: Option<&str>) -> Option<u8> {
    let value: f64 = progress?.trim().trim_end_matches('%').trim().parse().ok()?;
    if value.is_nan() || value < 0.0 {
        return None;
    }
    // Truncation is the rounding down intended; the cast saturates above 255.
    Some((value as u8).min(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_a_bounded_whole_percentage() {
        for (raw, want) in [
            (Some("45.00"), Some(45)),
            (Some("99.99"), Some(99)),
            (Some(" 7 "), Some(7)),
            (Some("12%"), Some(12)),
            (Some("100"), Some(100)),
            (Some("250.5"), Some(100)),
            (Some("1e300"), Some(100)),
            (Some("-3"), None),
            (Some("NaN"), None),
            (Some("soon"), None),
            (Some(""), None),
            (None, None),
        ] {
            assert_eq!(progress_percent(raw), want, "{raw:?}");
        }
    }
}
