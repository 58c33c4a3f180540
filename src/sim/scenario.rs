//! Scenarios: the YAML format a user writes, its validation, and its expansion into a
//! [`Plan`] — the concrete clusters, workflows, timelines and faults the simulator starts
//! with. Built-in scenarios ([`super::builtin`]) are values of the same format, so a file
//! and a built-in behave alike.
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
//!     version: v1.28.3-r0      # required: the cluster's current version
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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::fault::FaultSpec;
use super::timeline::{self, Step, StepDef, Timeline, parse_timeline};
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

/// A cluster to create at start.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPlan {
    pub id: String,
    pub project_id: String,
    pub cluster_type: ApiFamily,
    pub version: String,
}

/// A workflow to create at start (or `created_at` scenario seconds later).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowPlan {
    pub id: String,
    pub cluster_id: String,
    pub cluster_version: String,
    pub target_version: String,
    pub created_at: f64,
    pub tasks: Vec<TaskType>,
    pub timeline: Timeline,
    pub fixed: Option<Workflow>,
}

/// What one scenario contributed, for the start banner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub name: String,
    pub count: u64,
    pub clusters: Vec<ClusterSummary>,
    pub workflows: Vec<WorkflowSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    #[serde(rename = "projectID")]
    pub project_id: String,
    #[serde(rename = "type")]
    pub cluster_type: ApiFamily,
    /// The id as written, `{i}` included.
    pub id_template: String,
    /// The id of copy 0.
    pub first: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    pub id_template: String,
    pub first: String,
    pub timeline: String,
}

/// Everything the simulator starts with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub clusters: Vec<ClusterPlan>,
    pub workflows: Vec<WorkflowPlan>,
    pub on_create: Option<Timeline>,
    pub faults: Vec<FaultSpec>,
    pub summaries: Vec<Summary>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError(msg.into()))
}

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

    /// Expands the scenario into concrete objects; `count` overrides the file's own.
    pub fn instantiate(&self, count: Option<u64>) -> Result<Plan, ScenarioError> {
        let name = self.name.clone().unwrap_or_else(|| "scenario".into());
        let ctx = |e: ScenarioError| ScenarioError(format!("scenario {name}: {}", e.0));
        self.instantiate_inner(&name, count).map_err(ctx)
    }

    fn instantiate_inner(&self, name: &str, count: Option<u64>) -> Result<Plan, ScenarioError> {
        let count = count.or(self.count).unwrap_or(1);
        if count == 0 {
            return err("count must be at least 1");
        }
        let templated = |id: &str| id.contains("{i");
        if count > 1 {
            for id in self
                .clusters
                .iter()
                .map(|c| &c.id)
                .chain(self.workflows.iter().map(|w| &w.id))
            {
                if !templated(id) {
                    return err(format!(
                        "id {id:?} must contain {{i}} when the scenario is instantiated {count} times"
                    ));
                }
            }
        }
        let mut timelines = BTreeMap::new();
        for (tl_name, steps) in &self.timelines {
            if timeline::builtin(tl_name).is_some() {
                return err(format!("timeline {tl_name:?} would hide the built-in one"));
            }
            timelines.insert(
                tl_name.clone(),
                parse_timeline(tl_name, steps).map_err(ScenarioError)?,
            );
        }
        let lookup = |tl_name: &str| -> Result<Timeline, ScenarioError> {
            match timelines.get(tl_name) {
                Some(t) => Ok(Timeline::clone(t)),
                None => timeline::builtin(tl_name).ok_or_else(|| {
                    ScenarioError(format!(
                        "unknown timeline {tl_name:?} (built-in: {})",
                        timeline::BUILTIN.join(", ")
                    ))
                }),
            }
        };
        let default_project = self
            .project_id
            .clone()
            .unwrap_or_else(|| DEFAULT_PROJECT_ID.to_string());
        check_id("projectID", &default_project)?;

        let mut plan = Plan {
            on_create: self.on_create.as_deref().map(lookup).transpose()?,
            faults: self.faults.clone(),
            ..Plan::default()
        };
        for fault in &plan.faults {
            fault.validate().map_err(ScenarioError)?;
        }
        // Workflow timelines are resolved once; the copies share the steps.
        let mut workflow_timelines = Vec::new();
        for wf in &self.workflows {
            let timeline = match (&wf.timeline, &wf.steps, &wf.fixed) {
                (Some(_), Some(_), _) => {
                    return err(format!(
                        "workflow {}: set timeline or steps, not both",
                        wf.id
                    ));
                }
                (_, _, Some(_)) if wf.timeline.is_some() || wf.steps.is_some() => {
                    return err(format!(
                        "workflow {}: a fixed workflow has no timeline",
                        wf.id
                    ));
                }
                (_, _, Some(_)) => Timeline {
                    name: "fixed".into(),
                    steps: Arc::from(Vec::new()),
                },
                (Some(tl), None, None) => lookup(tl)?,
                (None, Some(steps), None) => {
                    parse_timeline(&format!("{} steps", wf.id), steps).map_err(ScenarioError)?
                }
                (None, None, None) => lookup("success")?,
            };
            let tasks = match &wf.tasks {
                None => DEFAULT_TASKS.to_vec(),
                Some(names) if names.is_empty() => {
                    return err(format!("workflow {}: tasks must not be empty", wf.id));
                }
                Some(names) => names.iter().map(|n| TaskType::from(n.as_str())).collect(),
            };
            if !wf.created_at.is_finite() || wf.created_at < 0.0 {
                return err(format!("workflow {}: createdAt must be >= 0", wf.id));
            }
            workflow_timelines.push((timeline, tasks));
        }

        let mut summary = Summary {
            name: name.to_string(),
            count,
            clusters: Vec::new(),
            workflows: Vec::new(),
        };
        for i in 0..count {
            let mut here = BTreeMap::new();
            for c in &self.clusters {
                let id = expand_id(&c.id, i)?;
                check_id("cluster id", &id)?;
                let project_id = c
                    .project_id
                    .clone()
                    .unwrap_or_else(|| default_project.clone());
                check_id("projectID", &project_id)?;
                if c.version.trim().is_empty() {
                    return err(format!("cluster {id}: version is required"));
                }
                let cluster = ClusterPlan {
                    id: id.clone(),
                    project_id,
                    cluster_type: c.cluster_type,
                    version: c.version.clone(),
                };
                if i == 0 {
                    summary.clusters.push(ClusterSummary {
                        project_id: cluster.project_id.clone(),
                        cluster_type: cluster.cluster_type,
                        id_template: c.id.clone(),
                        first: id.clone(),
                    });
                }
                here.insert(id, cluster.clone());
                plan.clusters.push(cluster);
            }
            for (wf, (timeline, tasks)) in self.workflows.iter().zip(&workflow_timelines) {
                let id = expand_id(&wf.id, i)?;
                check_id("workflow id", &id)?;
                let cluster_id = expand_id(&wf.cluster_id, i)?;
                let Some(cluster) = here.get(&cluster_id) else {
                    return err(format!(
                        "workflow {id}: cluster {cluster_id} is not a cluster of this scenario"
                    ));
                };
                let cluster_version = wf
                    .cluster_version
                    .clone()
                    .unwrap_or_else(|| cluster.version.clone());
                let fixed = wf.fixed.clone().map(|mut w| {
                    w.metadata.get_or_insert_with(Default::default).uid = Some(id.clone());
                    w.spec.get_or_insert_with(Default::default).cluster_id =
                        Some(cluster_id.clone());
                    w
                });
                let target_version = match (&wf.target_version, &fixed) {
                    (Some(t), _) if !t.trim().is_empty() => t.clone(),
                    (_, Some(f)) => f
                        .spec
                        .as_ref()
                        .and_then(|s| s.target_version.clone())
                        .unwrap_or_default(),
                    _ => return err(format!("workflow {id}: targetVersion is required")),
                };
                let timeline = Timeline {
                    name: timeline.name.clone(),
                    steps: expand_task_ids(&timeline.steps, i)?,
                };
                if i == 0 {
                    summary.workflows.push(WorkflowSummary {
                        id_template: wf.id.clone(),
                        first: id.clone(),
                        timeline: timeline.name.clone(),
                    });
                }
                plan.workflows.push(WorkflowPlan {
                    id,
                    cluster_id,
                    cluster_version,
                    target_version,
                    created_at: wf.created_at,
                    tasks: tasks.clone(),
                    timeline,
                    fixed,
                });
            }
        }
        plan.summaries.push(summary);
        plan.check_unique()?;
        Ok(plan)
    }
}

impl Plan {
    /// Adds another scenario's objects; ids must stay unique and only one may set `onCreate`.
    pub fn merge(&mut self, other: Plan) -> Result<(), ScenarioError> {
        if let Some(tl) = other.on_create {
            if let Some(mine) = &self.on_create
                && mine != &tl
            {
                return err(format!(
                    "two scenarios set onCreate ({} and {})",
                    mine.name, tl.name
                ));
            }
            self.on_create = Some(tl);
        }
        self.clusters.extend(other.clusters);
        self.workflows.extend(other.workflows);
        self.faults.extend(other.faults);
        self.summaries.extend(other.summaries);
        self.check_unique()
    }

    fn check_unique(&self) -> Result<(), ScenarioError> {
        let mut seen = BTreeSet::new();
        for c in &self.clusters {
            if !seen.insert(c.id.as_str()) {
                return err(format!("cluster id {} is used twice", c.id));
            }
        }
        let mut seen = BTreeSet::new();
        for w in &self.workflows {
            if !seen.insert(w.id.as_str()) {
                return err(format!("workflow id {} is used twice", w.id));
            }
        }
        Ok(())
    }
}

/// Ids travel in URL paths; an empty one cannot be addressed and control characters
/// would only confuse logs.
fn check_id(what: &str, id: &str) -> Result<(), ScenarioError> {
    if id.is_empty()
        || id.len() > 128
        || id.chars().any(char::is_control)
        || id == "."
        || id == ".."
    {
        return err(format!("{what} {id:?} is not usable in a URL path"));
    }
    Ok(())
}

/// Replaces `{i}` by `index` and `{i:W}` by `index` zero-padded to `W` digits.
pub fn expand_id(template: &str, index: u64) -> Result<String, ScenarioError> {
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(pos) = rest.find("{i") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 2..];
        let Some(close) = tail.find('}') else {
            return err(format!("unclosed placeholder in {template:?}"));
        };
        match &tail[..close] {
            "" => out.push_str(&index.to_string()),
            spec => {
                let width = spec
                    .strip_prefix(':')
                    .and_then(|w| w.parse::<usize>().ok())
                    .filter(|w| (1..=32).contains(w));
                let Some(width) = width else {
                    return err(format!(
                        "placeholder {{i{spec}}} in {template:?}: use {{i}} or {{i:WIDTH}}"
                    ));
                };
                out.push_str(&format!("{index:0width$}"));
            }
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_task_ids(steps: &Arc<[Step]>, index: u64) -> Result<Arc<[Step]>, ScenarioError> {
    if !steps
        .iter()
        .any(|s| s.task.as_ref().is_some_and(|t| t.task_id.is_some()))
    {
        return Ok(Arc::clone(steps));
    }
    let mut out = Vec::with_capacity(steps.len());
    for step in steps.iter() {
        let mut step = step.clone();
        if let Some(change) = &mut step.task
            && let Some(id) = &change.task_id
        {
            change.task_id = Some(expand_id(id, index)?);
        }
        out.push(step);
    }
    Ok(Arc::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::timeline::Offset;

    #[test]
    fn ids_expand_with_and_without_padding() {
        assert_eq!(expand_id("wf-{i}", 7).expect("ok"), "wf-7");
        assert_eq!(
            expand_id("f1000000-0000-4000-8000-{i:12}", 42).expect("ok"),
            "f1000000-0000-4000-8000-000000000042"
        );
        assert_eq!(expand_id("a{i}b{i:3}", 5).expect("ok"), "a5b005");
        assert_eq!(expand_id("plain", 5).expect("ok"), "plain");
        assert!(expand_id("x{i", 1).is_err());
        assert!(expand_id("x{id}", 1).is_err());
        assert!(expand_id("x{i:0}", 1).is_err());
        assert!(expand_id("x{i:99}", 1).is_err());
    }

    const FILE: &str = r#"
name: two-clusters
count: 2
projectID: p1
clusters:
  - {id: "c-{i:3}", version: v1.28.3-r0}
  - {id: "ap-{i:3}", type: Autopilot, projectID: p2, version: v1.29.1-r0}
timelines:
  quick:
    - {after: 1, task: PreCheck, status: Running, taskID: "t-{i}"}
    - {after: 2, task: PreCheck, status: Success, expireAfter: 60}
    - {at: 3, phase: Success}
workflows:
  - {id: "w-{i:3}", clusterID: "c-{i:3}", targetVersion: v1.29.1-r0, timeline: quick}
  - id: "apw-{i:3}"
    clusterID: "ap-{i:3}"
    targetVersion: v1.30.1-r0
    createdAt: 30
    tasks: [PreCheck, Cluster, NodePool]
    steps: [{after: 5, task: NodePool, status: queue}]
onCreate: quick
faults:
  - {kind: throttle, route: show, count: 2}
"#;

    #[test]
    fn a_file_expands_into_distinct_objects_per_copy() {
        let file = ScenarioFile::from_yaml(FILE).expect("parse");
        let plan = file.instantiate(None).expect("instantiate");
        let ids: Vec<_> = plan.workflows.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["w-000", "apw-000", "w-001", "apw-001"]);
        assert_eq!(plan.clusters.len(), 4);
        assert_eq!(plan.clusters[1].cluster_type, ApiFamily::Autopilot);
        assert_eq!(plan.clusters[1].project_id, "p2");
        assert_eq!(plan.clusters[0].project_id, "p1");
        assert_eq!(plan.workflows[0].cluster_version, "v1.28.3-r0");
        assert_eq!(plan.workflows[1].created_at, 30.0);
        assert_eq!(
            plan.workflows[1].tasks,
            [
                TaskType::PreCheck,
                TaskType::Cluster,
                TaskType::Unknown("NodePool".into())
            ]
        );
        let first = plan.workflows[2].timeline.steps[0]
            .task
            .clone()
            .expect("task");
        assert_eq!(first.task_id.as_deref(), Some("t-1"));
        assert_eq!(
            plan.workflows[2].timeline.steps[2].offset,
            Offset::AfterStart(3.0)
        );
        assert_eq!(
            plan.on_create.as_ref().map(|t| t.name.as_str()),
            Some("quick")
        );
        assert_eq!(plan.faults.len(), 1);
        let bigger = file.instantiate(Some(5)).expect("instantiate");
        assert_eq!(bigger.workflows.len(), 10);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let cases = [
            (
                "count: 2\nclusters: [{id: c, version: v1}]",
                "must contain {i}",
            ),
            (
                "clusters: [{id: c, version: v1}]\nworkflows: [{id: w, clusterID: x, targetVersion: v2}]",
                "not a cluster of this scenario",
            ),
            (
                "clusters: [{id: c, version: v1}]\nworkflows: [{id: w, clusterID: c}]",
                "targetVersion is required",
            ),
            (
                "clusters: [{id: c, version: v1}]\nworkflows: [{id: w, clusterID: c, targetVersion: v2, timeline: nope}]",
                "unknown timeline",
            ),
            (
                "clusters: [{id: c, version: v1}]\nworkflows: [{id: w, clusterID: c, targetVersion: v2, steps: [{task: Cluster, status: Running}]}]",
                "set after",
            ),
            (
                "clusters: [{id: c, version: v1}]\nworkflows: [{id: w, clusterID: c, targetVersion: v2, steps: [{after: -1, phase: Init}]}]",
                ">= 0",
            ),
            (
                "clusters: [{id: c, version: v1}]\nworkflows: [{id: w, clusterID: c, targetVersion: v2, steps: [{after: 1, task: Cluster}]}]",
                "go together",
            ),
            (
                "clusters: [{id: c, version: v1}, {id: c, version: v1}]",
                "used twice",
            ),
            ("clusters: [{id: \"\", version: v1}]", "not usable"),
            ("timelines: {success: []}", "hide the built-in"),
            ("count: 0", "at least 1"),
            ("bogus: 1", "unknown field"),
        ];
        for (yaml, want) in cases {
            let got = ScenarioFile::from_yaml(yaml).and_then(|f| f.instantiate(None));
            match got {
                Ok(_) => panic!("{yaml:?} was accepted"),
                Err(e) => assert!(e.0.contains(want), "{yaml:?}: {e} lacks {want:?}"),
            }
        }
    }

    #[test]
    fn the_example_file_in_the_repository_is_valid() {
        let text = include_str!("../../examples/sim-scenario.yaml");
        let plan = ScenarioFile::from_yaml(text)
            .and_then(|f| f.instantiate(None))
            .expect("examples/sim-scenario.yaml");
        assert_eq!(plan.workflows.len(), 4);
        assert_eq!(plan.workflows[3].id, "example-autopilot-workflow-01");
        assert_eq!(plan.faults.len(), 1);
    }

    #[test]
    fn merging_refuses_duplicate_ids() {
        let one = ScenarioFile::from_yaml("clusters: [{id: c, version: v1}]")
            .and_then(|f| f.instantiate(None))
            .expect("ok");
        let mut plan = one.clone();
        assert!(plan.merge(one).is_err());
    }
}
