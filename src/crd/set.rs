//! The `UpgradeWatchSet` custom resource: every CCE cluster of an account's project that a
//! selector picks gets one generated UpgradeWorkflowWatch in the set's namespace. Doc
//! comments here are what `kubectl explain` prints.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelectorRequirement, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crd::ClusterType;
use crate::crd::account::AccountRef;

/// The label naming the set that generated a watch.
pub const SET_LABEL: &str = "cce.upgradewatch.io/set";
/// The label naming the CCE cluster a generated watch follows.
pub const CLUSTER_ID_LABEL: &str = "cce.upgradewatch.io/cluster-id";
/// How often a set lists its clusters unless it says otherwise.
pub const DEFAULT_LIST_INTERVAL: &str = "5m";
/// The watches a set keeps unless it says otherwise.
pub const DEFAULT_MAX_WATCHES: u32 = 500;
/// The most watches any set may keep: the clusters one ListClusters answer is read for
/// (`limits::MAX_CLUSTERS`; the set's reconciler checks they agree).
pub const MAX_WATCHES_LIMIT: u32 = 2_000;
/// Versions listed in `status.versions`; the rest are counted.
pub const MAX_STATUS_VERSIONS: usize = 20;

/// Which clusters of a project to watch, through which account, and with what watch.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cce.upgradewatch.io",
    version = "v1alpha1",
    kind = "UpgradeWatchSet",
    plural = "upgradewatchsets",
    shortname = "uwset",
    category = "cce",
    namespaced,
    status = "UpgradeWatchSetStatus",
    doc = "UpgradeWatchSet keeps one UpgradeWorkflowWatch, in its own namespace, for every CCE cluster of its account's project that its clusterSelector picks: a watch is created when a cluster appears and deleted when it goes, and the status counts the clusters that are upgrading or failed and the versions they run.",
    printcolumn = r#"{"name":"Account","type":"string","description":"The account whose clusters the set lists","jsonPath":".spec.accountRef.name"}"#,
    printcolumn = r#"{"name":"Clusters","type":"integer","description":"Clusters the selector picks","jsonPath":".status.clusters"}"#,
    printcolumn = r#"{"name":"Upgrading","type":"integer","description":"Of them, Upgrading or RollingBack in CCE","jsonPath":".status.upgrading"}"#,
    printcolumn = r#"{"name":"Failed","type":"integer","description":"Of them, Error, Unavailable or RollbackFailed in CCE","jsonPath":".status.failed"}"#,
    printcolumn = r#"{"name":"Succeeded","type":"integer","description":"Of the watches, those whose upgrade succeeded","jsonPath":".status.succeeded"}"#,
    printcolumn = r#"{"name":"Watches","type":"integer","description":"Watches the set keeps","jsonPath":".status.watches"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","description":"Every cluster picked has its watch","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","description":"Time since the set was created","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","priority":1,"description":"The last listing of CCE's clusters succeeded","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Last List","type":"date","priority":1,"description":"Time since CCE's clusters were last listed","jsonPath":".status.lastListTime"}"#
)]
#[kube(
    validation = Rule::new("self.metadata.name.size() <= 63").message("a set's name is at most 63 characters: its watches carry it as a label")
)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeWatchSetSpec {
    /// The account whose endpoint, project and credentials list the clusters and serve the
    /// generated watches: a CCEAccount of this namespace, or a ClusterCCEAccount that lists
    /// this namespace (and, through its clusterIDs, the clusters it serves). Required.
    pub account_ref: AccountRef,

    /// Which of CCE's cluster lists to read: `Standard` (CCE and Turbo clusters,
    /// ListClusters) and `Autopilot` (ListAutopilotClusters), one or both. Unset: the
    /// account's clusterType, else Standard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    #[x_kube(validation = Rule::new("self.all(t, self.exists_one(u, u == t))").message("clusterTypes names each type once"))]
    pub cluster_types: Vec<ClusterType>,

    /// Which clusters get a watch: every condition set must hold. Unset or empty: every
    /// cluster the account serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<ClusterSelector>,

    /// What every generated watch carries besides what the set fills in (accountRef,
    /// clusterID, clusterType and the labels cce.upgradewatch.io/set and
    /// cce.upgradewatch.io/cluster-id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<WatchTemplate>,

    /// How often to list the project's clusters, as a duration such as `5m`. At least 1m,
    /// at most 24h. Unset: 5m. A change of the set's spec lists at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')").message("listInterval must be at least 1m"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')").message("listInterval must be at most 24h"))]
    pub list_interval: Option<String>,

    /// The most watches this set keeps, at most 2000. Unset: 500. Beyond it, the clusters
    /// first in name order keep their watches and the rest are counted in status.skipped;
    /// Ready says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2000))]
    pub max_watches: Option<u32>,
}

/// Conditions on CCE's clusters, all of which must hold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSelector {
    /// Clusters by name (CCE's metadata.name), exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(length(min = 1, max = 128), regex(pattern = r"^[a-z][a-z0-9-]*$"))
    )]
    pub names: Vec<String>,

    /// Labels the cluster must carry in CCE (its metadata.labels), with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,

    /// Requirements on the cluster's CCE labels, as a Kubernetes label selector writes
    /// them: operator In, NotIn, Exists or DoesNotExist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(r, r.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])").message("matchExpressions operators are In, NotIn, Exists or DoesNotExist"))]
    pub match_expressions: Vec<LabelSelectorRequirement>,

    /// Cluster categories: `CCE` or `Turbo` (an Autopilot cluster is Turbo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub categories: Vec<ClusterCategory>,

    /// Versions the cluster may run, each a prefix such as `v1.28` or `v1.28.15`, compared
    /// part by part (`v1.28` picks v1.28.15-r10, not v1.280).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(regex(pattern = r"^v?[0-9]+\.[0-9]+(\.[0-9]+(-r[0-9]+)?)?$"))
    )]
    pub versions: Vec<String>,
}

/// A CCE cluster category.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterCategory {
    /// CCE standard clusters.
    #[serde(rename = "CCE")]
    Cce,
    /// CCE Turbo clusters (Autopilot clusters are Turbo too).
    Turbo,
}

impl ClusterCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cce => "CCE",
            Self::Turbo => "Turbo",
        }
    }
}

/// The part of each generated watch the set's author chooses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WatchTemplate {
    /// Labels and annotations of every generated watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,

    /// Fields of every generated watch's spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<TemplateSpec>,
}

/// Labels and annotations of the generated watches.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateMetadata {
    /// Labels of every generated watch; keys of cce.upgradewatch.io/ are the set's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('cce.upgradewatch.io/'))").message("labels under cce.upgradewatch.io/ are set by the operator"))]
    #[schemars(length(max = 32))]
    pub labels: BTreeMap<String, String>,

    /// Annotations of every generated watch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 32))]
    pub annotations: BTreeMap<String, String>,
}

/// The watch spec fields a set may fix for all its watches.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Each watch's pollInterval, as a duration such as `1m`. At least 5s, at most 24h.
    /// Unset: the account's, else 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5s')").message("pollInterval must be at least 5s"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')").message("pollInterval must be at most 24h"))]
    pub poll_interval: Option<String>,

    /// Stop every generated watch polling CCE while true; the set still lists clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// What the set last found in CCE and keeps in the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeWatchSetStatus {
    /// The spec generation this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Clusters the selector picks among those the account serves, as last listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<u32>,

    /// Of them, clusters CCE shows Upgrading or RollingBack (with or without a workflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrading: Option<u32>,

    /// Of them, clusters CCE shows Error, Unavailable or RollbackFailed (a failed upgrade
    /// leaves a cluster in Error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u32>,

    /// Of the watches this set keeps, those whose upgrade succeeded (Ready True: the
    /// workflow, or the upgrade task without one, they follow ended in Success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<u32>,

    /// Watches this set keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<u32>,

    /// Clusters left without a watch: beyond maxWatches, not among the account's
    /// clusterIDs, unreadable in CCE's answer, or beyond the 2000 clusters one answer is
    /// read for. The Ready condition says which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u32>,

    /// How many clusters the selector picks run each Kubernetes version (vA.B), most
    /// clusters first, at most 20.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub versions: Vec<VersionCount>,

    /// Versions beyond the 20 listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_versions: Option<u32>,

    /// When the clusters were last listed successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_list_time: Option<Time>,

    /// Ready: every cluster picked has its watch (False when some are skipped, or the
    /// account may not serve the set). Synced: the last listing of CCE succeeded; False
    /// with CCE's reason (Forbidden, CceUnavailable, InvalidResponse, ...) when not, in
    /// which case the watches are left as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Clusters of one version.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VersionCount {
    /// The Kubernetes version, `vA.B`, or what CCE sent when it is not a version.
    pub version: String,
    /// Clusters running it.
    pub clusters: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn the_set_has_its_designed_names_and_columns() {
        let crd = UpgradeWatchSet::crd();
        assert_eq!(crd.spec.names.kind, "UpgradeWatchSet");
        assert_eq!(crd.spec.names.plural, "upgradewatchsets");
        assert_eq!(crd.spec.names.short_names, Some(vec!["uwset".to_string()]));
        assert_eq!(crd.spec.names.categories, Some(vec!["cce".to_string()]));
        assert_eq!(crd.spec.scope, "Namespaced");
        let columns: Vec<_> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .filter(|c| c.priority.unwrap_or(0) == 0)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            [
                "Account",
                "Clusters",
                "Upgrading",
                "Failed",
                "Succeeded",
                "Watches",
                "Ready",
                "Age"
            ]
        );
    }

    /// Every field of the schema, nested ones included, says what it is for: that is what
    /// `kubectl explain upgradewatchset.spec...` prints.
    #[test]
    fn every_field_has_explain_text() {
        fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
            let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
                if let Some(items) = schema.get("items") {
                    walk(&format!("{path}[]"), items, missing);
                }
                return;
            };
            for (name, field) in properties {
                let here = format!("{path}.{name}");
                let described = field
                    .get("description")
                    .and_then(|d| d.as_str())
                    .is_some_and(|d| !d.trim().is_empty());
                // The kinds Kubernetes defines describe themselves in its own docs.
                let foreign = path.contains("matchExpressions") || path.contains("conditions");
                if !described && !foreign && here != ".metadata" {
                    missing.push(here.clone());
                }
                walk(&here, field, missing);
            }
        }
        let crd = UpgradeWatchSet::crd();
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema"),
        )
        .expect("json");
        let mut missing = Vec::new();
        walk("", &schema, &mut missing);
        assert!(
            missing.is_empty(),
            "fields without explain text: {missing:?}"
        );
    }

    #[test]
    fn a_set_reads_and_round_trips() {
        let yaml = r#"
apiVersion: cce.upgradewatch.io/v1alpha1
kind: UpgradeWatchSet
metadata: {name: prod, namespace: team-a}
spec:
  accountRef: {kind: ClusterCCEAccount, name: shared}
  clusterTypes: [Standard, Autopilot]
  clusterSelector:
    names: [web-01]
    matchLabels: {env: prod}
    matchExpressions: [{key: tier, operator: NotIn, values: [sandbox]}]
    categories: [CCE, Turbo]
    versions: [v1.28]
  template:
    metadata: {labels: {team: a}, annotations: {owner: ops}}
    spec: {pollInterval: 1m, suspend: false}
  listInterval: 10m
  maxWatches: 50
"#;
        let set: UpgradeWatchSet = serde_yaml::from_str(yaml).expect("set");
        let selector = set.spec.cluster_selector.as_ref().expect("selector");
        assert_eq!(
            selector.categories,
            [ClusterCategory::Cce, ClusterCategory::Turbo]
        );
        assert_eq!(set.spec.cluster_types.len(), 2);
        let back = serde_json::to_value(&set.spec).expect("json");
        assert_eq!(back["clusterSelector"]["categories"][0], "CCE");
        assert_eq!(back["template"]["spec"]["pollInterval"], "1m");
        assert_eq!(back["maxWatches"], 50);
        let bare: UpgradeWatchSetSpec =
            serde_json::from_value(serde_json::json!({"accountRef": {"name": "cce"}}))
                .expect("bare");
        assert_eq!(bare.cluster_selector, None);
        assert!(bare.cluster_types.is_empty());
    }
}
