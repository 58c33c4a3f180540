//! ShowPreCheck and ListPreCheckTasks: what the pre-check of an upgrade found
//! (`…/operation/precheck/tasks[/{task_id}]`, kind `PreCheckTask`).

use serde::{Deserialize, Serialize};

use super::{Task, TaskList};
use crate::cce::model::{WorkflowSpec, open_enum};

open_enum!(
    /// Phase of a whole pre-check: `Error` means the check itself could not run.
    PreCheckPhase { Init, Running, Success, Failed, Error }
);

open_enum!(
    /// `Exception`: the user must fix it before upgrading. `Risk`: may be skipped once
    /// confirmed, by naming the item in the pre-check's `skippedCheckItemList`.
    CheckKind { Exception, Risk }
);

open_enum!(
    /// What part of the cluster an item checks; `ExecuteException` is the check failing to run.
    CheckGroup { LimitCheck, MasterCheck, NodeCheck, AddonCheck, ExecuteException }
);

open_enum!(
    /// How serious an item is.
    CheckLevel { Info, Warning, Fatal }
);

open_enum!(
    /// Phase of one check item, or of one group of them.
    CheckPhase { Init, Running, Success, Failed }
);

/// ShowPreCheck's answer, and each item of ListPreCheckTasks.
pub type PreCheckTask = Task<PreCheckSpec, PreCheckStatus>;

/// ListPreCheckTasks' answer.
pub type PreCheckTaskList = TaskList<PreCheckTask>;

/// The cluster and versions, as a workflow's spec names them, and the skipped items.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PreCheckSpec {
    #[serde(flatten)]
    pub versions: WorkflowSpec,
    #[serde(
        rename = "skippedCheckItemList",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub skipped_check_item_list: Option<Vec<SkippedCheckItem>>,
}

/// A check item the person who started the pre-check chose to skip.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SkippedCheckItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_selector: Option<ResourceSelector>,
}

/// Which resources a skip applies to, e.g. `node.uid In [..]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ResourceSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreCheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PreCheckPhase>,
    /// When the result stops being valid for starting the upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time_stamp: Option<String>,
    /// Usually the log of an error running the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_check_status: Option<CheckGroupStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon_check_status: Option<CheckGroupStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_check_status: Option<NodeCheckStatus>,
}

/// The cluster's or the add-ons' check items.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckGroupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<CheckPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_status: Option<Vec<CheckItem>>,
}

/// The check items of every node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeCheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<CheckPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_stage_status: Option<Vec<NodeStageStatus>>,
}

/// One node and its check items.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStageStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<NodeInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_status: Option<Vec<CheckItem>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The node's own status (`Active`, `Abnormal`, ...), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `master` (control plane) or `node`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
}

/// One check item (`PreCheckItemStatus`). `name` is what a skip names.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CheckKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<CheckGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<CheckLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<CheckPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_source: Option<RiskSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_codes: Option<Vec<String>>,
}

/// What an item found at fault.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RiskSource {
    #[serde(
        rename = "configurationRisks",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub configuration_risks: Option<Vec<ConfigurationRisk>>,
    #[serde(
        rename = "deprecatedAPIRisks",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub deprecated_api_risks: Option<Vec<DeprecatedApiRisk>>,
    #[serde(rename = "nodeRisks", default, skip_serializing_if = "Option::is_none")]
    pub node_risks: Option<Vec<NodeRisk>>,
    #[serde(
        rename = "addonRisks",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub addon_risks: Option<Vec<AddonRisk>>,
}

/// A configuration the upgrade would change.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationRisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_msg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A deprecated API still called, e.g. `/apis/policy/v1beta1/podsecuritypolicies`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeprecatedApiRisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NodeRisk {
    #[serde(rename = "NodeID", default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AddonRisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon_template_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// Where a check item was reported.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CheckScope<'a> {
    Cluster,
    Addon,
    /// A node, with its entry (name and uid) when CCE sent one.
    Node(Option<&'a NodeInfo>),
}

impl PreCheckTask {
    pub fn phase(&self) -> Option<&PreCheckPhase> {
        self.status.as_ref()?.phase.as_ref()
    }

    pub fn message(&self) -> Option<&str> {
        self.status.as_ref()?.message.as_deref()
    }

    /// Every check item in CCE's order, cluster items first, then add-ons, then nodes.
    pub fn items(&self) -> impl Iterator<Item = (CheckScope<'_>, &CheckItem)> {
        fn group<'a>(
            g: Option<&'a CheckGroupStatus>,
            scope: CheckScope<'a>,
        ) -> impl Iterator<Item = (CheckScope<'a>, &'a CheckItem)> {
            g.and_then(|g| g.items_status.as_deref())
                .unwrap_or_default()
                .iter()
                .map(move |item| (scope, item))
        }
        let status = self.status.as_ref();
        let cluster = group(
            status.and_then(|s| s.cluster_check_status.as_ref()),
            CheckScope::Cluster,
        );
        let addon = group(
            status.and_then(|s| s.addon_check_status.as_ref()),
            CheckScope::Addon,
        );
        let nodes = status
            .and_then(|s| s.node_check_status.as_ref())
            .and_then(|n| n.node_stage_status.as_deref())
            .unwrap_or_default()
            .iter()
            .flat_map(|stage| {
                let scope = CheckScope::Node(stage.node_info.as_ref());
                stage
                    .items_status
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(move |item| (scope, item))
            });
        cluster.chain(addon).chain(nodes)
    }

    /// The items a person must read: those that did not pass, most severe first (CCE's
    /// order among equals).
    pub fn findings(&self) -> Vec<(CheckScope<'_>, &CheckItem)> {
        let mut found: Vec<_> = self.items().filter(|(_, item)| item.is_finding()).collect();
        found.sort_by_key(|(_, item)| std::cmp::Reverse(item.severity()));
        found
    }
}

impl CheckItem {
    /// Whether the item did not pass: it failed, or CCE gave no usable phase for an item of
    /// kind Exception or Risk, or of level Warning or Fatal.
    pub fn is_finding(&self) -> bool {
        match self.phase.as_ref().map(CheckPhase::canonical) {
            Some(CheckPhase::Failed) => true,
            Some(CheckPhase::Success | CheckPhase::Init | CheckPhase::Running) => false,
            Some(CheckPhase::Unknown(_)) | None => {
                self.kind.is_some()
                    || self.level.as_ref().is_some_and(|l| {
                        l.means(&CheckLevel::Warning) || l.means(&CheckLevel::Fatal)
                    })
            }
        }
    }

    /// Whether the upgrade cannot go on until someone fixes this: kind Exception, or a
    /// Fatal item of no known kind.
    pub fn is_blocking(&self) -> bool {
        match self.kind.as_ref().map(CheckKind::canonical) {
            Some(CheckKind::Exception) => true,
            Some(CheckKind::Risk) => false,
            Some(CheckKind::Unknown(_)) | None => self
                .level
                .as_ref()
                .is_some_and(|l| l.means(&CheckLevel::Fatal)),
        }
    }

    /// An order for showing the most important items first: blocking before skippable,
    /// then Fatal, Warning, Info, unknown levels.
    pub fn severity(&self) -> u8 {
        let level = match self.level.as_ref().map(CheckLevel::canonical) {
            Some(CheckLevel::Fatal) => 3,
            Some(CheckLevel::Warning) => 2,
            Some(CheckLevel::Info) => 1,
            Some(CheckLevel::Unknown(_)) | None => 0,
        };
        if self.is_blocking() { 4 + level } else { level }
    }

    /// What the item is about, as CCE names it: node ids, add-ons, deprecated API URLs and
    /// configuration files, in that order.
    pub fn subjects(&self) -> Vec<&str> {
        let Some(risks) = &self.risk_source else {
            return Vec::new();
        };
        let mut out = Vec::new();
        fn strs(v: Option<&str>) -> Option<&str> {
            v.filter(|s| !s.is_empty())
        }
        out.extend(
            risks
                .node_risks
                .iter()
                .flatten()
                .filter_map(|r| strs(r.node_id.as_deref())),
        );
        out.extend(risks.addon_risks.iter().flatten().filter_map(|r| {
            strs(r.addon_template_name.as_deref()).or_else(|| strs(r.alias.as_deref()))
        }));
        out.extend(
            risks
                .deprecated_api_risks
                .iter()
                .flatten()
                .filter_map(|r| strs(r.url.as_deref())),
        );
        out.extend(risks.configuration_risks.iter().flatten().filter_map(|r| {
            strs(r.source_file.as_deref())
                .or_else(|| strs(r.package.as_deref()))
                .or_else(|| strs(r.field.as_deref()))
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed pre-check in the shape Huawei's SDK documents, with the casing and types
    /// CCE has been seen to vary.
    const FAILED: &str = r#"{
      "kind": "PreCheckTask", "apiVersion": "v3",
      "metadata": {"uid": "pc-1", "creationTimestamp": "2024-03-15 08:00:00.1 +0000 UTC"},
      "spec": {"clusterID": "c1", "clusterVersion": "v1.28", "targetVersion": "v1.29",
               "skippedCheckItemList": [{"name": "NodeKernel", "resourceSelector":
                   {"key": "node.uid", "values": ["n9"], "operator": "In"}}]},
      "status": {
        "phase": "Failed", "expireTimeStamp": "2024-03-15 09:00:00 +0000 UTC",
        "message": "1 item must be fixed",
        "clusterCheckStatus": {"phase": "Failed", "itemsStatus": [
          {"name": "DeprecatedAPI", "kind": "Risk", "group": "LimitCheck", "level": "Warning",
           "phase": "Failed", "message": "deprecated API in use", "errorCodes": ["CCE.01"],
           "riskSource": {"deprecatedAPIRisks": [
              {"url": "/apis/policy/v1beta1/podsecuritypolicies", "userAgent": "kubectl"}]}},
          {"name": "ClusterStatus", "kind": "Exception", "phase": "Success"}]},
        "addonCheckStatus": {"phase": "success", "itemsStatus": null},
        "nodeCheckStatus": {"phase": "Failed", "nodeStageStatus": [
          {"nodeInfo": {"uid": "n1", "name": "worker-1", "status": "Abnormal", "nodeType": "node"},
           "itemsStatus": [
             {"name": "NodeReady", "kind": "Exception", "group": "NodeCheck", "level": "Fatal",
              "phase": "failed", "message": "node not ready",
              "riskSource": {"nodeRisks": [{"NodeID": "n1"}]}},
             {"name": "NodeFuture", "kind": "Hazard", "group": "NewCheck", "level": "Severe",
              "phase": "Skipped"}]}]}
      }
    }"#;

    #[test]
    fn a_failed_pre_check_reads_with_every_finding_most_severe_first() {
        let task: PreCheckTask = serde_json::from_str(FAILED).expect("parse");
        assert_eq!(task.uid(), Some("pc-1"));
        assert_eq!(task.phase(), Some(&PreCheckPhase::Failed));
        assert_eq!(task.message(), Some("1 item must be fixed"));
        assert_eq!(task.items().count(), 4);
        let findings = task.findings();
        let names: Vec<_> = findings
            .iter()
            .map(|(_, i)| i.name.as_deref().unwrap_or("?"))
            .collect();
        assert_eq!(names, ["NodeReady", "DeprecatedAPI", "NodeFuture"]);
        let (scope, node_ready) = findings[0];
        assert!(
            matches!(scope, CheckScope::Node(Some(n)) if n.name.as_deref() == Some("worker-1"))
        );
        assert!(node_ready.is_blocking());
        assert_eq!(node_ready.subjects(), ["n1"]);
        let (scope, deprecated) = findings[1];
        assert_eq!(scope, CheckScope::Cluster);
        assert!(!deprecated.is_blocking());
        assert_eq!(deprecated.kind, Some(CheckKind::Risk));
        assert_eq!(
            deprecated.subjects(),
            ["/apis/policy/v1beta1/podsecuritypolicies"]
        );
        assert_eq!(
            deprecated.error_codes.as_deref(),
            Some(&["CCE.01".to_string()][..])
        );
    }

    #[test]
    fn unknown_values_are_kept_verbatim_and_known_ones_recognised_in_any_case() {
        let task: PreCheckTask = serde_json::from_str(FAILED).expect("parse");
        let future = task
            .items()
            .map(|(_, i)| i)
            .find(|i| i.name.as_deref() == Some("NodeFuture"))
            .expect("item");
        assert_eq!(future.kind, Some(CheckKind::Unknown("Hazard".into())));
        assert_eq!(future.group, Some(CheckGroup::Unknown("NewCheck".into())));
        assert_eq!(
            future.phase.as_ref().map(CheckPhase::as_str),
            Some("Skipped")
        );
        let status = task.status.as_ref().expect("status");
        let addon = status
            .addon_check_status
            .as_ref()
            .and_then(|a| a.phase.as_ref());
        assert_eq!(addon, Some(&CheckPhase::Unknown("success".into())));
        assert!(addon.is_some_and(|p| p.means(&CheckPhase::Success)));
        let back = serde_json::to_string(&task).expect("serialize");
        for raw in [
            "\"Hazard\"",
            "\"NewCheck\"",
            "\"Severe\"",
            "\"failed\"",
            "\"success\"",
        ] {
            assert!(back.contains(raw), "{raw} lost in {back}");
        }
    }

    #[test]
    fn missing_fields_are_never_fatal() {
        for json in [
            "{}",
            r#"{"status":{}}"#,
            r#"{"status":{"nodeCheckStatus":{"nodeStageStatus":[{}]}}}"#,
            r#"{"status":{"clusterCheckStatus":{"itemsStatus":[{}]}}}"#,
        ] {
            let task: PreCheckTask = serde_json::from_str(json).expect(json);
            assert!(task.findings().is_empty(), "{json}");
        }
        let list: PreCheckTaskList = serde_json::from_str(r#"{"items":null}"#).expect("null");
        assert!(list.items.is_empty());
    }

    #[test]
    fn an_item_without_a_phase_is_a_finding_when_its_kind_or_level_says_so() {
        let item = |json: &str| serde_json::from_str::<CheckItem>(json).expect(json);
        assert!(item(r#"{"kind":"Risk"}"#).is_finding());
        assert!(item(r#"{"level":"fatal"}"#).is_finding());
        assert!(item(r#"{"level":"fatal"}"#).is_blocking());
        assert!(!item(r#"{"level":"Info"}"#).is_finding());
        assert!(!item(r#"{"kind":"Exception","phase":"Running"}"#).is_finding());
        assert!(
            item(r#"{"kind":"Exception","level":"Info"}"#).severity()
                > item(r#"{"kind":"Risk","level":"Fatal"}"#).severity()
        );
    }

    #[test]
    fn a_list_finds_the_pre_check_a_point_names() {
        let list: PreCheckTaskList = serde_json::from_str(&format!(
            r#"{{"kind":"List","items":[{{"metadata":{{"uid":"other"}}}},{FAILED}]}}"#
        ))
        .expect("parse");
        assert_eq!(list.find("pc-1").and_then(PreCheckTask::uid), Some("pc-1"));
        assert!(list.find("absent").is_none());
    }
}

/// Whatever items a pre-check holds, findings are exactly the items that did not pass, in
/// an order that never puts a less severe item first.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn text(known: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
        let mut choices: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        choices.extend(known.iter().map(|s| s.to_lowercase()));
        choices.push("Other".into());
        prop::option::of(prop::sample::select(choices))
    }

    fn item() -> impl Strategy<Value = serde_json::Value> {
        (
            text(&["Exception", "Risk"]),
            text(&["Info", "Warning", "Fatal"]),
            text(&["Init", "Running", "Success", "Failed"]),
            prop::option::of("[a-z]{1,8}"),
        )
            .prop_map(|(kind, level, phase, node)| {
                let mut item =
                    serde_json::json!({"name": "x", "kind": kind, "level": level, "phase": phase});
                if let Some(node) = node {
                    item["riskSource"] = serde_json::json!({"nodeRisks": [{"NodeID": node}]});
                }
                item
            })
    }

    proptest! {
        #[test]
        fn findings_are_the_items_that_did_not_pass_most_severe_first(
            cluster in prop::collection::vec(item(), 0..12),
            nodes in prop::collection::vec(prop::collection::vec(item(), 0..6), 0..4),
        ) {
            let stages: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(n, items)| serde_json::json!({"nodeInfo": {"name": format!("n{n}")}, "itemsStatus": items}))
                .collect();
            let task: PreCheckTask = serde_json::from_value(serde_json::json!({"status": {
                "clusterCheckStatus": {"itemsStatus": cluster},
                "nodeCheckStatus": {"nodeStageStatus": stages},
            }}))
            .expect("any items parse");
            let findings = task.findings();
            let expected = task.items().filter(|(_, i)| i.is_finding()).count();
            prop_assert_eq!(findings.len(), expected);
            prop_assert!(findings.windows(2).all(|w| w[0].1.severity() >= w[1].1.severity()));
            for (_, item) in &findings {
                prop_assert!(!item.phase.as_ref().is_some_and(|p| p.means(&CheckPhase::Success)));
                prop_assert!(item.subjects().len() <= 1);
            }
        }
    }
}
