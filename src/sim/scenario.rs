//! Scenarios as written: the YAML format a user writes and the built-in scenarios are
//! written in (`scenarios/*.yaml`, listed in [`super::builtin`]), so a file and a built-in
//! behave alike. Their expansion into the objects the simulator starts with is
//! [`super::plan`]. Pure.
//!
//! Format (every key optional unless marked):
//!
//! ```yaml
//! name: my-scenario            # shown in the start banner
//! count: 3                     # instantiate everything 3 times; ids then need `{i}`
//! projectID: 0aa1…             # default project of the clusters (default: the built-in one)
//! clusters:
//!   - id: "c-{i:4}"            # required; `{i}` = copy index 0…count-1, `{i:4}` zero-padded
//!     type: Standard           # or Autopilot (served under /autopilot/v3/)
//!     projectID: …             # overrides the scenario's
//!     version: v1.28.3-r0      # required: the cluster's current version (vA.B.C-rN; the
//!                              # wire shows vA.B + platformVersion cce.C.N, as CCE does)
//!     name: "web-{i:2}"        # metadata.name (default: the id)
//!     category: Turbo          # CCE (default) or Turbo; Autopilot clusters are Turbo
//!     labels: {env: prod}      # metadata.labels
//!     createdAt: 30            # appears this many seconds after start (default 0)
//!     deletedAt: 300           # Deleting from then, gone 30 seconds later
//!     upgrades:                # upgrades without a workflow (as Huawei's Terraform
//!       - at: 60               # provider runs them): Upgrading from `at`, with an
//!         takes: 120           # upgrade task ListUpgradeClusterTasks reports,
//!         to: v1.29.13-r0      # then Available at `to`, or Error (UpgradeFailed)
//!         result: Failed       # with `result: Failed` (default Success)
//! timelines:                   # named timelines for `timeline:` and `onCreate:`
//!   slow:
//!     - {after: 60, task: PreCheck, status: Running}
//! workflows:
//!   - id: "wf-{i:4}"           # required
//!     clusterID: "c-{i:4}"     # required, a cluster of this scenario
//!     targetVersion: v1.29.1-r0   # required unless `fixed`
//!     clusterVersion: …        # default: the cluster's version
//!     createdAt: 0             # seconds after start at which the workflow appears
//!     tasks: [PreCheck, Snapshot, Cluster, PostCheck]   # the default; lines chain them
//!     timeline: success        # a built-in or `timelines` name (default: success), or:
//!     steps:                   # an inline timeline
//!       - after: 15            # seconds after the workflow's creation, or
//!         at: 15               # seconds after the simulator's start (one of the two)
//!         task: PreCheck       # with `status`: the task's new status
//!         status: Running      # Init | Queuing | Running | Pause | Success | Failed | any text
//!         taskID: …            # optional fixed task id (else derived from the ids)
//!         expireAfter: 3600    # on Success: expireTimeStamp this many seconds later
//!         phase: Pending       # optional explicit workflow phase (else derived)
//!         progress: 40         # the task's progress (0–100) at this step (else: 100 on
//!                              # Success, else where it had got to)
//!         message: …           # the pre-check's status.message, the snapshot item's message
//!         checks:              # PreCheck only: the items ShowPreCheck reports from now on
//!           - name: NodeReady  # required; what a skip would name
//!             kind: Exception  # Exception (default) | Risk
//!             group: NodeCheck # default: NodeCheck with node, AddonCheck with addon, else LimitCheck
//!             level: Fatal     # default: Fatal for Exception, else Warning
//!             phase: Failed    # default Failed
//!             message: …
//!             errorCodes: [Node.0022]
//!             node: worker-2   # reported under this node (and as its nodeRisks)
//!             addon: coredns   # an add-on risk
//!             deprecatedAPI: /apis/…   # a deprecated API risk
//!             count: 1         # repeat the item (numbered), for answers of any size
//!         cluster:             # what ShowCluster says from now on (else derived from the
//!           phase: Error       # Cluster/Rollback tasks: Upgrading, Available, Error +
//!           reason: …          # UpgradeFailed, RollingBack, RollbackFailed)
//!           message: …
//!     fixed: {…}               # a complete UpgradeWorkFlow object served as is (no steps);
//!                              # its uid and clusterID are replaced by id and clusterID
//! onCreate: success            # timeline of workflows created through the API
//! faults:                      # faults active from the start, as in the admin API
//!   - {kind: throttle, route: show, count: 2, retryAfter: 1}
//! ```
//!
//! All offsets are scenario seconds: the simulator divides them by `--speed`.
//!
//! Every PreCheck, Snapshot and Cluster task a workflow runs is served by the diagnostic
//! APIs under the point's `taskID` (ShowPreCheck, ShowUpgradeClusterTask, the snapshot task
//! list), with the point's times; a pre-check without `checks` reports one passing item per
//! group (a failing cluster item if it failed). See [`super::diagnostics`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::fault::FaultSpec;
use super::timeline::StepDef;
use crate::cce::ApiFamily;
use crate::cce::model::{TaskType, Workflow};

/// The project of a scenario that names none; every built-in scenario lives there too.
pub const DEFAULT_PROJECT_ID: &str = "0aa1c0de5e1f4c0e8a5d5a5e00000001";
/// A scenario as written in YAML.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(rename = "projectID", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterDef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timelines: BTreeMap<String, Vec<StepDef>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<WorkflowDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_create: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterDef {
    pub id: String,
    #[serde(rename = "type", default)]
    pub cluster_type: ApiFamily,
    #[serde(rename = "projectID", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgrades: Vec<UpgradeDef>,
}

/// An upgrade without a workflow, as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeDef {
    /// Scenario seconds after start.
    pub at: f64,
    /// Scenario seconds it runs.
    pub takes: f64,
    pub to: String,
    /// `Success` (default) or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowDef {
    pub id: String,
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    #[serde(default)]
    pub created_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepDef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<Workflow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// Tasks of a workflow when a scenario does not list them, in CCE's order (§8).
pub const DEFAULT_TASKS: [TaskType; 4] = [
    TaskType::PreCheck,
    TaskType::Snapshot,
    TaskType::Cluster,
    TaskType::PostCheck,
];

impl ScenarioFile {
    pub fn from_yaml(text: &str) -> Result<Self, ScenarioError> {
        serde_yaml::from_str(text).map_err(|e| ScenarioError(format!("invalid scenario: {e}")))
    }
}
