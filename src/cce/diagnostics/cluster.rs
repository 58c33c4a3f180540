//! The cluster object CCE returns from ShowCluster and, one per cluster, from ListClusters
//! (`/{api|autopilot}/v3/projects/{p}/clusters[/{c}]`, cce-clusters.md §1.4): what names the
//! cluster, its category and version, and its phase, reason and message, which say what a
//! failed Cluster or Rollback task left behind. Keys are spelled per field, as the SDK
//! serialises them (`SecurityGroup`, `jobID`, `subnetID`); only what the operator reads and
//! the fields every answer carries are modelled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cce::lenient::text_map;
use crate::cce::model::open_enum;
use crate::cce::version::ClusterVersion;

open_enum!(
    /// The cluster's phase; `reason` and `message` are set whenever it is not Available.
    ClusterPhase {
        Available, Unavailable, ScalingUp, ScalingDown, Creating, Deleting, Upgrading,
        Resizing, RollingBack, RollbackFailed, Hibernating, Hibernation, Awaking, Empty, Error
    }
);

/// ShowCluster's answer and ListClusters' item (Standard and Autopilot alike).
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
    /// The cluster's name: lower case, digits and `-`, 4–128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The cluster's ID, which every per-cluster path takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The display name (the name when none was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Set by CCE (feature switches the console reads); values that are not text are left
    /// out.
    #[serde(
        default,
        deserialize_with = "text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Node and add-on figures when listed with `detail=true`.
    #[serde(
        default,
        deserialize_with = "text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_timestamp: Option<String>,
    /// IANA time zone; Standard clusters only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClusterSpec {
    /// `CCE` or `Turbo`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `VirtualMachine`, `ARM64`, ... verbatim: the masters' architecture, not the category.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub cluster_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    /// `vA.B` since 1.21, `vA.B.C-rN` before (see [`Cluster::version`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `cce.C.N`: CCE's iteration within `version`.
    #[serde(
        rename = "platformVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub platform_version: Option<String>,
    /// `vA.B.C-rN`, deprecated, Standard clusters only.
    #[serde(
        rename = "legacyVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_version: Option<String>,
    #[serde(
        rename = "hostNetwork",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_network: Option<HostNetwork>,
    #[serde(
        rename = "containerNetwork",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_network: Option<ContainerNetwork>,
    /// Turbo and Autopilot clusters.
    #[serde(
        rename = "eniNetwork",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub eni_network: Option<EniNetwork>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HostNetwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Capital S, as CCE spells it.
    #[serde(
        rename = "SecurityGroup",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub security_group: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ContainerNetwork {
    /// `overlay_l2`, `vpc-router` or `eni`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EniNetwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<EniSubnet>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EniSubnet {
    #[serde(rename = "subnetID", default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
}

/// Where the cluster's API server is reached.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClusterEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `Internal` or `External`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<ClusterEndpoint>>,
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

    pub fn uid(&self) -> Option<&str> {
        self.metadata.as_ref()?.uid.as_deref()
    }

    pub fn name(&self) -> Option<&str> {
        self.metadata.as_ref()?.name.as_deref()
    }

    /// The most the cluster says of its version (`legacyVersion`, else `version` with
    /// `platformVersion`), for comparing it with a workflow's versions.
    pub fn version(&self) -> Option<ClusterVersion> {
        let spec = self.spec.as_ref()?;
        ClusterVersion::of_cluster(
            spec.version.as_deref(),
            spec.platform_version.as_deref(),
            spec.legacy_version.as_deref(),
        )
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
