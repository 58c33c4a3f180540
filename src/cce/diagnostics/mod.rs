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

pub use cluster::{Cluster, ClusterPhase};
pub use precheck::{CheckItem, CheckKind, CheckLevel, CheckScope, PreCheckTask, PreCheckTaskList};
pub use snapshot::{SnapshotTask, SnapshotTaskList};
pub use upgrade::{UpgradeTask, UpgradeTaskList};

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

/// Finds the task a workflow point names among a list's items.
fn by_uid<'a, T>(
    items: &'a [T],
    uid: &str,
    metadata: impl Fn(&T) -> Option<&TaskMetadata>,
) -> Option<&'a T> {
    items
        .iter()
        .find(|item| metadata(item).and_then(|m| m.uid.as_deref()) == Some(uid))
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
