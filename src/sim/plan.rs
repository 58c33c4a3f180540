//! A scenario expanded into a [`Plan`]: the concrete clusters, workflows (with their
//! timelines resolved: the scenario's own, else the built-in ones) and faults the
//! simulator starts with, `count` copies of each with their ids made from the templates,
//! checked for clashes, and what each scenario contributed for the start banner. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::builtin;
use super::fault::FaultSpec;
use super::fleet::{UpgradePlan, check_category, check_name, parse_upgrades};
use super::ids::{expand_id, is_template};
use super::scenario::{
    ClusterDef, DEFAULT_PROJECT_ID, DEFAULT_TASKS, ScenarioError, ScenarioFile, WorkflowDef,
};
use super::timeline::{Step, Timeline, parse_timeline};
use crate::cce::ApiFamily;
use crate::cce::model::{TaskType, Workflow};

/// A cluster to create at start (or `created_at` scenario seconds later).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterPlan {
    pub id: String,
    pub project_id: String,
    pub cluster_type: ApiFamily,
    pub version: String,
    /// `metadata.name`; the id when `None`.
    pub name: Option<String>,
    /// `CCE` or `Turbo`; the family's default when `None`.
    pub category: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub created_at: f64,
    pub deleted_at: Option<f64>,
    /// Upgrades without a workflow.
    pub upgrades: Vec<UpgradePlan>,
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

fn err<T>(msg: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError(msg.into()))
}

impl ScenarioFile {
    /// Expands the scenario into concrete objects; `count` overrides the file's own.
    pub fn instantiate(&self, count: Option<u64>) -> Result<Plan, ScenarioError> {
        let name = self.name.clone().unwrap_or_else(|| "scenario".into());
        let ctx = |e: ScenarioError| ScenarioError(format!("scenario {name}: {}", e.0));
        self.expand(&name, count).map_err(ctx)
    }

    /// Validates everything copies share, then makes the copies.
    fn expand(&self, name: &str, count: Option<u64>) -> Result<Plan, ScenarioError> {
        let count = self.copies(count)?;
        let timelines = Timelines::of(self)?;
        let default_project = self
            .project_id
            .clone()
            .unwrap_or_else(|| DEFAULT_PROJECT_ID.to_string());
        check_id("projectID", &default_project)?;
        let mut plan = Plan {
            on_create: self
                .on_create
                .as_deref()
                .map(|t| timelines.get(t))
                .transpose()?,
            faults: self.faults.clone(),
            ..Plan::default()
        };
        for fault in &plan.faults {
            fault.validate().map_err(ScenarioError)?;
        }
        // Workflow timelines are resolved once; the copies share the steps.
        let shapes = self
            .workflows
            .iter()
            .map(|wf| Shape::of(wf, &timelines))
            .collect::<Result<Vec<_>, _>>()?;
        let mut summary = Summary {
            name: name.to_string(),
            count,
            clusters: Vec::new(),
            workflows: Vec::new(),
        };
        for i in 0..count {
            let here = self.cluster_copies(i, &default_project, &mut plan, &mut summary)?;
            for (wf, shape) in self.workflows.iter().zip(&shapes) {
                let copy = workflow_copy(wf, shape, i, &here)?;
                if i == 0 {
                    summary.workflows.push(WorkflowSummary {
                        id_template: wf.id.clone(),
                        first: copy.id.clone(),
                        timeline: copy.timeline.name.clone(),
                    });
                }
                plan.workflows.push(copy);
            }
        }
        plan.summaries.push(summary);
        plan.check_unique()?;
        Ok(plan)
    }

    /// How many copies to make; with more than one, every id must differ between them.
    fn copies(&self, count: Option<u64>) -> Result<u64, ScenarioError> {
        let count = count.or(self.count).unwrap_or(1);
        if count == 0 {
            return err("count must be at least 1");
        }
        if count > 1 {
            let ids = self.clusters.iter().map(|c| &c.id);
            if let Some(id) = ids
                .chain(self.workflows.iter().map(|w| &w.id))
                .find(|id| !is_template(id))
            {
                return err(format!(
                    "id {id:?} must contain {{i}} when the scenario is instantiated {count} times"
                ));
            }
        }
        Ok(count)
    }

    /// Copy `i` of every cluster, added to `plan`; returns them by id for the workflows.
    fn cluster_copies(
        &self,
        i: u64,
        default_project: &str,
        plan: &mut Plan,
        summary: &mut Summary,
    ) -> Result<BTreeMap<String, ClusterPlan>, ScenarioError> {
        let mut here = BTreeMap::new();
        for c in &self.clusters {
            let cluster = cluster_copy(c, i, default_project)?;
            if i == 0 {
                summary.clusters.push(ClusterSummary {
                    project_id: cluster.project_id.clone(),
                    cluster_type: cluster.cluster_type,
                    id_template: c.id.clone(),
                    first: cluster.id.clone(),
                });
            }
            here.insert(cluster.id.clone(), cluster.clone());
            plan.clusters.push(cluster);
        }
        Ok(here)
    }
}

/// The timelines a scenario's names refer to: its own, then the built-in ones.
struct Timelines(BTreeMap<String, Timeline>);

impl Timelines {
    fn of(file: &ScenarioFile) -> Result<Timelines, ScenarioError> {
        let mut own = BTreeMap::new();
        for (name, steps) in &file.timelines {
            let parsed = parse_timeline(name, steps);
            // A built-in scenario's file defines the very timeline it adds to the
            // built-ins; only a different one would hide it.
            if let Some(builtin) = builtin::timeline(name)
                && parsed.as_ref() != Ok(&builtin)
            {
                return err(format!("timeline {name:?} would hide the built-in one"));
            }
            own.insert(name.clone(), parsed.map_err(ScenarioError)?);
        }
        Ok(Timelines(own))
    }

    fn get(&self, name: &str) -> Result<Timeline, ScenarioError> {
        match self.0.get(name) {
            Some(t) => Ok(Timeline::clone(t)),
            None => builtin::timeline(name).ok_or_else(|| {
                ScenarioError(format!(
                    "unknown timeline {name:?} (built-in: {})",
                    builtin::timeline_names().join(", ")
                ))
            }),
        }
    }
}

/// What every copy of a workflow shares: its timeline and its tasks.
struct Shape {
    timeline: Timeline,
    tasks: Vec<TaskType>,
}

impl Shape {
    fn of(wf: &WorkflowDef, timelines: &Timelines) -> Result<Shape, ScenarioError> {
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
            (Some(tl), None, None) => timelines.get(tl)?,
            (None, Some(steps), None) => {
                parse_timeline(&format!("{} steps", wf.id), steps).map_err(ScenarioError)?
            }
            (None, None, None) => timelines.get(builtin::DEFAULT_TIMELINE)?,
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
        Ok(Shape { timeline, tasks })
    }
}

fn expand(template: &str, i: u64) -> Result<String, ScenarioError> {
    expand_id(template, i).map_err(ScenarioError)
}

/// Copy `i` of a cluster.
fn cluster_copy(
    c: &ClusterDef,
    i: u64,
    default_project: &str,
) -> Result<ClusterPlan, ScenarioError> {
    let id = expand(&c.id, i)?;
    check_id("cluster id", &id)?;
    let project_id = c
        .project_id
        .clone()
        .unwrap_or_else(|| default_project.to_string());
    check_id("projectID", &project_id)?;
    if c.version.trim().is_empty() {
        return err(format!("cluster {id}: version is required"));
    }
    let here = |e: String| ScenarioError(format!("cluster {id}: {e}"));
    let name = c.name.as_deref().map(|n| expand(n, i)).transpose()?;
    if let Some(name) = &name {
        check_name(name).map_err(here)?;
    }
    check_category(c.category.as_deref(), c.cluster_type).map_err(here)?;
    let created_at = c.created_at.unwrap_or(0.0);
    if !(created_at.is_finite() && created_at >= 0.0) {
        return err(format!("cluster {id}: createdAt must be >= 0"));
    }
    if c.deleted_at
        .is_some_and(|d| !(d.is_finite() && d > created_at))
    {
        return err(format!("cluster {id}: deletedAt must come after createdAt"));
    }
    Ok(ClusterPlan {
        upgrades: parse_upgrades(&c.upgrades, created_at).map_err(here)?,
        id,
        project_id,
        cluster_type: c.cluster_type,
        version: c.version.clone(),
        name,
        category: c.category.clone(),
        labels: c.labels.clone(),
        created_at,
        deleted_at: c.deleted_at,
    })
}

/// Copy `i` of a workflow, on copy `i` of its cluster (`here`).
fn workflow_copy(
    wf: &WorkflowDef,
    shape: &Shape,
    i: u64,
    here: &BTreeMap<String, ClusterPlan>,
) -> Result<WorkflowPlan, ScenarioError> {
    let id = expand(&wf.id, i)?;
    check_id("workflow id", &id)?;
    let cluster_id = expand(&wf.cluster_id, i)?;
    let Some(cluster) = here.get(&cluster_id) else {
        return err(format!(
            "workflow {id}: cluster {cluster_id} is not a cluster of this scenario"
        ));
    };
    if !cluster.upgrades.is_empty() {
        return err(format!(
            "workflow {id}: cluster {cluster_id} upgrades without a workflow (its upgrades); give it none or no workflow"
        ));
    }
    let cluster_version = wf
        .cluster_version
        .clone()
        .unwrap_or_else(|| cluster.version.clone());
    let fixed = wf.fixed.clone().map(|mut w| {
        w.metadata.get_or_insert_with(Default::default).uid = Some(id.clone());
        w.spec.get_or_insert_with(Default::default).cluster_id = Some(cluster_id.clone());
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
        name: shape.timeline.name.clone(),
        steps: expand_task_ids(&shape.timeline.steps, i)?,
    };
    Ok(WorkflowPlan {
        id,
        cluster_id,
        cluster_version,
        target_version,
        created_at: wf.created_at,
        tasks: shape.tasks.clone(),
        timeline,
        fixed,
    })
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
            change.task_id = Some(expand(id, index)?);
        }
        out.push(step);
    }
    Ok(Arc::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::timeline::Offset;

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
            ("clusters: [{id: c, version: v1, name: Web}]", "lower case"),
            (
                "clusters: [{id: c, type: Autopilot, version: v1, category: CCE}]",
                "an Autopilot cluster is Turbo",
            ),
            (
                "clusters: [{id: c, version: v1, createdAt: 5, deletedAt: 5}]",
                "deletedAt must come after createdAt",
            ),
            (
                "clusters: [{id: c, version: v1, upgrades: [{at: 1, takes: 0, to: v1.29.1-r0}]}]",
                "takes must be > 0",
            ),
            (
                "clusters: [{id: c, version: v1, upgrades: [{at: 1, takes: 5, to: v1.29.1-r0}]}]\nworkflows: [{id: w, clusterID: c, targetVersion: v2}]",
                "upgrades without a workflow",
            ),
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
