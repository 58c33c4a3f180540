//! ShowCluster: the cluster's own phase, reason and message, which say what a failed
//! Cluster or Rollback task left behind (`/{api|autopilot}/v3/projects/{p}/clusters/{c}`).
//! Only the fields that explain an upgrade are modelled.

use serde::{Deserialize, Serialize};

use crate::cce::model::open_enum;

open_enum!(
    /// The cluster's phase; `reason` and `message` are set whenever it is not Available.
    ClusterPhase {
        Available, Unavailable, ScalingUp, ScalingDown, Creating, Deleting, Upgrading,
        Resizing, RollingBack, RollbackFailed, Hibernating, Hibernation, Awaking, Empty, Error
    }
);

/// ShowCluster's answer (Standard and Autopilot alike).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ClusterMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ClusterSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClusterStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_timestamp: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClusterSpec {
    /// `VirtualMachine`, `ARM64`, ... verbatim.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub cluster_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClusterPhase>,
    #[serde(rename = "jobID", default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard clusters only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ClusterCondition>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub condition_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transit_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Cluster {
    pub fn phase(&self) -> Option<&ClusterPhase> {
        self.status.as_ref()?.phase.as_ref()
    }

    pub fn reason(&self) -> Option<&str> {
        self.status.as_ref()?.reason.as_deref()
    }

    pub fn message(&self) -> Option<&str> {
        self.status.as_ref()?.message.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_reads_its_phase_reason_and_message() {
        let cluster: Cluster = serde_json::from_str(
            r#"{"kind":"Cluster","apiVersion":"v3","metadata":{"name":"prod","uid":"c1"},
                "spec":{"type":"VirtualMachine","flavor":"cce.s2.small","version":"v1.28",
                        "hostNetwork":{"vpc":"v"}},
                "status":{"phase":"RollbackFailed","jobID":"j1","reason":"UpgradeFailed",
                          "message":"etcd did not come back","endpoints":[{"url":"https://x"}],
                          "conditions":[{"type":"Ready","status":"False","reason":"R"}]}}"#,
        )
        .expect("parse");
        assert_eq!(cluster.phase(), Some(&ClusterPhase::RollbackFailed));
        assert_eq!(cluster.reason(), Some("UpgradeFailed"));
        assert_eq!(cluster.message(), Some("etcd did not come back"));
        let odd: Cluster =
            serde_json::from_str(r#"{"status":{"phase":"upgrading"}}"#).expect("parse");
        assert!(
            odd.phase()
                .is_some_and(|p| p.means(&ClusterPhase::Upgrading))
        );
        assert_eq!(odd.phase().map(ClusterPhase::as_str), Some("upgrading"));
    }
}
