//! The `UpgradeWorkflowWatch` custom resource: its spec, its status and the schema
//! rules the API server enforces. Doc comments here are what `kubectl explain` prints.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cce::model::{Phase, TaskState, TaskType};
use crate::crd::account::AccountRef;

/// Group of the custom resource.
pub const GROUP: &str = "cce.upgradewatch.io";
/// Shortest poll interval a watch may ask for.
pub const MIN_POLL_INTERVAL: &str = "5s";
/// Longest poll interval a watch may ask for; a longer one in an object stored before the
/// schema said so is read as this.
pub const MAX_POLL_INTERVAL: &str = "24h";
/// Poll interval used when a watch does not set one.
pub const DEFAULT_POLL_INTERVAL: &str = "30s";

/// Which CCE upgrade workflow to watch, through which account, and how often to look.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cce.upgradewatch.io",
    version = "v1alpha1",
    kind = "UpgradeWorkflowWatch",
    plural = "upgradeworkflowwatches",
    shortname = "uww",
    category = "cce",
    namespaced,
    status = "Box<UpgradeWorkflowWatchStatus>",
    doc = "UpgradeWorkflowWatch mirrors a Huawei Cloud CCE cluster upgrade workflow (its phase and each task's status) into its status, so kubectl, Argo CD, Flux or `kubectl wait` can follow and gate on the upgrade.",
    printcolumn = r#"{"name":"Cluster","type":"string","description":"The cluster's name in CCE","jsonPath":".status.clusterName"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","description":"The workflow's phase as CCE reports it: Init, Running, Pending (a task failed), Success, Cancel","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","description":"Succeeded tasks out of all","jsonPath":".status.progress"}"#,
    printcolumn = r#"{"name":"Current Task","type":"string","description":"The task running, queued or failed now, with a Cluster task's percent","jsonPath":".status.currentTask"}"#,
    printcolumn = r#"{"name":"Target","type":"string","description":"Cluster version the upgrade goes to","jsonPath":".status.targetVersion"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","description":"The Ready condition (kstatus): True once the upgrade has succeeded","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","description":"Why Ready is what it is: NoWorkflow (idle), Upgrading, TaskFailed, UpgradeSucceeded, or what keeps CCE from being read","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","description":"Whether the last read of CCE succeeded; its reason says why not","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","description":"Time since the watch was created","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Cluster ID","type":"string","priority":1,"description":"spec.clusterID","jsonPath":".spec.clusterID"}"#,
    printcolumn = r#"{"name":"Account","type":"string","priority":1,"description":"The account named in spec.accountRef","jsonPath":".spec.accountRef.name"}"#,
    printcolumn = r#"{"name":"From","type":"string","priority":1,"description":"Cluster version the upgrade starts from","jsonPath":".status.fromVersion"}"#,
    printcolumn = r#"{"name":"Workflow","type":"string","priority":1,"description":"The upgrade workflow watched","jsonPath":".status.upgradeWorkflowID"}"#,
    printcolumn = r#"{"name":"Running For","type":"date","priority":1,"description":"Time since the running task started","jsonPath":".status.tasks[?(@.phase==\"Running\")].startTime"}"#,
    printcolumn = r#"{"name":"Durations","type":"string","priority":1,"description":"How long each finished task took","jsonPath":".status.taskDurations"}"#,
    printcolumn = r#"{"name":"Last Change","type":"date","priority":1,"description":"Time since the workflow's phase or a task's phase last changed","jsonPath":".status.lastChangeTime"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","priority":1,"description":"Time since CCE was last read successfully","jsonPath":".status.lastSyncTime"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"description":"What to look at now","jsonPath":".status.message"}"#
)]
#[x_kube(validation = Rule::new("has(self.accountRef)").message("set accountRef: the CCEAccount of this namespace, or a ClusterCCEAccount that lists it, whose credentials serve this watch").field_path(".accountRef"))]
#[x_kube(validation = Rule::new("!has(self.region) && !has(self.endpoint) && !has(self.projectID) && !has(self.credentialsSecretRef) && !has(self.workloadIdentity)").message("region, endpoint, projectID, credentialsSecretRef and workloadIdentity are set on the account now (CCEAccount or ClusterCCEAccount): see the CHANGELOG"))]
#[serde(rename_all = "camelCase")]
pub struct UpgradeWorkflowWatchSpec {
    /// The account whose endpoint, project and credentials serve this watch: a CCEAccount of
    /// this namespace, or a ClusterCCEAccount that lists this namespace. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_ref: Option<AccountRef>,

    /// ID of the CCE cluster being upgraded.
    #[serde(rename = "clusterID")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    )]
    pub cluster_id: String,

    /// Kind of CCE cluster: `Standard` or `Autopilot`. Unset: the account's, else Standard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_type: Option<ClusterType>,

    /// ID of the upgrade workflow to watch. When absent, the watch follows the cluster's
    /// newest upgrade workflow and switches to a newer one when it is created.
    #[serde(
        rename = "upgradeWorkflowID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    )]
    pub upgrade_workflow_id: Option<String>,

    /// How often to poll CCE while the upgrade is active, as a duration such as `30s` or
    /// `2m`. At least 5s, at most 24h. Unset: the account's, else 30s. Finished upgrades are
    /// checked far less often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5s')").message("pollInterval must be at least 5s"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')").message("pollInterval must be at most 24h"))]
    pub poll_interval: Option<String>,

    /// Stop polling CCE while true. Status keeps the last observed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// Removed: set on the account. Kept so that a watch written before accounts is told
    /// what to do in its Synced condition rather than silently served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub region: Option<String>,

    /// Removed: set on the account (see region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub endpoint: Option<String>,

    /// Removed: set on the account (see region).
    #[serde(rename = "projectID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub project_id: Option<String>,

    /// Removed: an account's credentials.secretRef, with the Secret labelled
    /// cce.upgradewatch.io/credentials=true (see region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// Removed: an account's credentials.workloadIdentity (see region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub workload_identity: Option<std::collections::BTreeMap<String, String>>,
}

impl UpgradeWorkflowWatch {
    /// `namespace/name`: the one key of a watch in logs and per-watch metrics.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }
}

/// Kind of CCE cluster: the CCE client's API family, spelled once.
pub use crate::cce::ApiFamily as ClusterType;

/// Reference to a Secret of the account's namespace (the operator's, for a
/// ClusterCCEAccount).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}

/// Observed state of the upgrade workflow, as last read from CCE.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeWorkflowWatchStatus {
    /// The spec generation this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// ID of the upgrade workflow actually watched: `spec.upgradeWorkflowID`, or the
    /// cluster's newest one when the spec names none.
    #[serde(
        rename = "upgradeWorkflowID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workflow_id: Option<String>,

    /// Set when the cluster is upgraded without a workflow (Huawei's Terraform provider calls
    /// CCE's upgrade API directly): the ID of CCE's upgrade task the watch follows, as a
    /// workflow of one Cluster task. `upgradeWorkflowID` is then empty.
    #[serde(
        rename = "upgradeTaskID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upgrade_task_id: Option<String>,

    /// The cluster's name in CCE, read once for `spec.clusterID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,

    /// Workflow phase as CCE reports it: Init (no task started), Running, Pending (a task
    /// failed; waiting for a retry or a decision), Success or Cancel. Values CCE adds later
    /// are shown as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,

    /// Cluster version the upgrade starts from, as the workflow names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,

    /// Cluster version the upgrade goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,

    /// The workflow's tasks in CCE's order. A task that has not been created yet has only a type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub tasks: Vec<TaskStatus>,

    /// Edges of the workflow's task graph: a task runs after the task it comes from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub lines: Vec<TaskLine>,

    /// Succeeded tasks out of all tasks, for example `2/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,

    /// The task running, queued or failed right now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_task: Option<String>,

    /// How long each finished task took, in CCE's order, for example
    /// `PreCheck 1m0s, Snapshot 45s, Cluster 9m5s (Failed)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_durations: Option<String>,

    /// When the upgrade last moved as far as the operator saw: the workflow's phase or a
    /// task's status changed, or another workflow was observed. Sync errors do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_time: Option<Time>,

    /// When CCE created the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_created: Option<Time>,

    /// CCE's creation time as sent, kept only when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_created_raw: Option<String>,

    /// When CCE last updated the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_updated: Option<Time>,

    /// CCE's update time as sent, kept only when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_updated_raw: Option<String>,

    /// When the operator last read the workflow from CCE successfully. Refreshed at most
    /// every few minutes while nothing changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// What to look at now, in one line: why CCE cannot be read when it cannot, else what
    /// the upgrade needs or where it is. The `Message` column of `kubectl get -o wide`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Ready (the upgrade succeeded; stays True once it did, whatever syncing does
    /// afterwards), Reconciling (it is in progress), Stalled (it needs a person: a task
    /// failed, it was cancelled, or access is denied) and Synced (the last CCE call
    /// succeeded; its reason says why not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One task (a point of the workflow graph).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// Task type: PreCheck, Snapshot, Cluster (the upgrade itself), PostCheck, Rollback,
    /// or a newer type as CCE names it.
    #[serde(rename = "type")]
    pub task_type: String,

    /// CCE task ID, once the task exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,

    /// The task's phase in the workflow: Init, Queuing, Running, Success or Failed (or a
    /// newer value as CCE sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,

    /// When the task started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    /// Start time as CCE sent it, kept only when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time_raw: Option<String>,

    /// When the task ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,

    /// End time as CCE sent it, kept only when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time_raw: Option<String>,

    /// When the result of a pre-check expires; the upgrade must start before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<Time>,

    /// Expiry time as CCE sent it, kept only when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time_raw: Option<String>,

    /// How long the task took, once it ended, for example `9m5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,

    /// True when this pre-check's result expired before the Cluster task started: CCE
    /// needs a new pre-check before the upgrade can go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_expired: Option<bool>,

    /// How far a Cluster task is, in percent, as CCE's upgrade task last reported it (read
    /// at the poll interval while the task runs or is paused; kept once it ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub percent: Option<u8>,

    /// Phase of CCE's upgrade task behind a Cluster task (Init, Queuing, Running, Pause,
    /// Success, Failed), as CCE sends it; it can say Pause while `phase` says Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_task_phase: Option<String>,

    /// What a finished pre-check found (CCE's ShowPreCheck): the items that did not pass,
    /// most severe first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<CheckReport>,

    /// The cluster's own word when a Cluster or Rollback task failed (CCE's ShowCluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,

    /// Messages of the failed items of a failed Snapshot task (CCE's snapshot task list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub snapshot_messages: Vec<String>,

    /// Why CCE would not tell more about this task, when it would not (the account may
    /// not use that API, or CCE has no such record, or its answer was unreadable): the task
    /// is mirrored all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics_unavailable_reason: Option<String>,
}

/// The findings of a pre-check, bounded: the most severe items, and how many more there were.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Phase of the pre-check as CCE reports it: Init, Running, Success, Failed or Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,

    /// The pre-check's own message (often the log of an error while it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Items that did not pass, most severe (blocking) first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub items: Vec<CheckFinding>,

    /// Items that did not pass beyond those listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_items: Option<u32>,
}

/// One check item that did not pass.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckFinding {
    /// The item's name, as a skip (for example Terraform's `skipped_check_item_list`) names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// `Exception`: it must be fixed before the upgrade goes on. `Risk`: it may be skipped
    /// once someone has confirmed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,

    /// LimitCheck, MasterCheck, NodeCheck, AddonCheck or ExecuteException.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,

    /// Info, Warning or Fatal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,

    /// What CCE says about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// CCE's error codes for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub error_codes: Vec<String>,

    /// What it is about: a node, an add-on, a deprecated API's URL, a configuration file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The cluster's phase, reason and message as CCE's ShowCluster gave them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    /// For example Available, Upgrading, RollingBack, RollbackFailed, Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An edge of the workflow graph.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskLine {
    /// Task type the edge starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Task type the edge leads to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A critical edge that has not run yet prevents cancelling the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
}

/// The mirrored strings read back as CCE's values; unknown ones stay as they are.
impl UpgradeWorkflowWatchStatus {
    /// The phase as this operator acts on it: known values in any case are recognised.
    pub fn workflow_phase(&self) -> Option<Phase> {
        self.phase.as_deref().map(|p| Phase::from(p).canonical())
    }
}

impl TaskStatus {
    pub fn kind(&self) -> TaskType {
        TaskType::from(self.task_type.as_str()).canonical()
    }

    pub fn state(&self) -> Option<TaskState> {
        self.phase
            .as_deref()
            .map(|s| TaskState::from(s).canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn crd_has_designed_names_and_columns() {
        let crd = UpgradeWorkflowWatch::crd();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.short_names, Some(vec!["uww".to_string()]));
        assert_eq!(crd.spec.names.categories, Some(vec!["cce".to_string()]));
        let version = &crd.spec.versions[0];
        let columns: Vec<_> = version
            .additional_printer_columns
            .as_ref()
            .expect("printer columns")
            .iter()
            .map(|c| (c.name.as_str(), c.priority.unwrap_or(0)))
            .collect();
        assert_eq!(
            columns,
            vec![
                ("Cluster", 0),
                ("Phase", 0),
                ("Progress", 0),
                ("Current Task", 0),
                ("Target", 0),
                ("Ready", 0),
                ("Reason", 0),
                ("Synced", 0),
                ("Age", 0),
                ("Cluster ID", 1),
                ("Account", 1),
                ("From", 1),
                ("Workflow", 1),
                ("Running For", 1),
                ("Durations", 1),
                ("Last Change", 1),
                ("Last Sync", 1),
                ("Message", 1),
            ]
        );
    }
}
