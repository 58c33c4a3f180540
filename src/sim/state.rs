//! The simulated world: clusters and their upgrade workflows, and the CCE operations on
//! them (Show, List, Create, cancel, ShowCluster, ListClusters) with the real service's
//! rules — which cluster a path may name, one unfinished workflow per cluster, cancel
//! preconditions — plus the admin operations. Pure: every operation takes the current time,
//! so tests drive it with any clock. How one workflow moves along its timeline is
//! [`super::flow`]; a cluster's own life (appearing, upgrades without a workflow,
//! deletion) and its wire object are [`super::fleet`].

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use super::builtin;
use super::clock::{plus, scaled};
use super::diagnostics::{self as runs, RunContext, TaskRun};
use super::fleet::{Life, ListQuery, Looks, cluster_object};
use super::flow::{Advance, Flow, FlowView, blocks_cancel, new_wire};
use super::ids::derived_uuid;
use super::plan::{ClusterPlan, Plan, WorkflowPlan};
use super::scenario::DEFAULT_TASKS;
use super::timeline::Timeline;
use crate::cce::ApiFamily;
use crate::cce::diagnostics::cluster::{Cluster as ClusterAnswer, ClusterPhase, ClusterStatus};
use crate::cce::diagnostics::snapshot::SnapshotTaskList;
use crate::cce::diagnostics::{PreCheckTask, TaskList, TaskListStatus, UpgradeTask};
use crate::cce::model::{Phase, TaskState, TaskType, Workflow, WorkflowStatus};

/// Why an operation was refused, in the simulator's terms; `server` maps these to CCE's
/// status codes and error bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    ClusterNotFound(String),
    WorkflowNotFound(String),
    /// No pre-check, upgrade task or snapshot task of the cluster has the id.
    TaskNotFound(String),
    /// Body or parameters are wrong.
    InvalidRequest(String),
    /// A workflow that has not finished already exists for the cluster.
    ActiveWorkflowExists(String),
    /// Cancel preconditions (cce-api.md §5) not met.
    NotCancellable(String),
    /// Admin operations on ids that clash.
    Conflict(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::ClusterNotFound(m)
            | SimError::WorkflowNotFound(m)
            | SimError::TaskNotFound(m)
            | SimError::InvalidRequest(m)
            | SimError::ActiveWorkflowExists(m)
            | SimError::NotCancellable(m)
            | SimError::Conflict(m) => f.write_str(m),
        }
    }
}

/// Which cluster a CCE request addresses: API prefix, project and cluster from the path.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub cluster_type: ApiFamily,
    pub project_id: &'a str,
    pub cluster_id: &'a str,
}

#[derive(Debug, Clone)]
struct Cluster {
    project_id: String,
    cluster_type: ApiFamily,
    initial_version: String,
    name: String,
    category: Option<String>,
    labels: BTreeMap<String, String>,
    life: Life,
    /// Workflow ids in creation order.
    flows: Vec<String>,
}

/// A cluster as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    #[serde(rename = "projectID")]
    pub project_id: String,
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    #[serde(rename = "type")]
    pub cluster_type: ApiFamily,
    pub version: String,
    pub name: String,
    /// The phase ShowCluster answers now; absent while CCE does not know the cluster
    /// (not created yet, or deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub workflows: Vec<String>,
}

/// What a new workflow needs (API Create and admin create).
#[derive(Debug, Clone, Default)]
pub struct NewWorkflow {
    pub id: Option<String>,
    pub cluster_version: Option<String>,
    pub target_version: String,
    pub timeline: Option<Timeline>,
}

pub struct World {
    speed: f64,
    start: Timestamp,
    clusters: BTreeMap<String, Cluster>,
    flows: BTreeMap<String, Flow>,
    on_create: Timeline,
    api_created: u64,
}

fn view(flow: &Flow, clusters: &BTreeMap<String, Cluster>) -> FlowView {
    let cluster = clusters.get(&flow.cluster_id);
    flow.view(
        cluster.map(|c| c.project_id.as_str()).unwrap_or_default(),
        cluster.map(|c| c.cluster_type).unwrap_or_default(),
    )
}

impl World {
    /// Builds the world of a validated plan. `start` is the simulator's start.
    pub fn new(plan: &Plan, speed: f64, start: Timestamp) -> Result<World, SimError> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(SimError::InvalidRequest("speed must be > 0".into()));
        }
        let mut world = World {
            speed,
            start,
            clusters: BTreeMap::new(),
            flows: BTreeMap::new(),
            on_create: plan
                .on_create
                .clone()
                .or_else(|| builtin::timeline(builtin::DEFAULT_TIMELINE))
                .unwrap_or(Timeline {
                    name: "none".into(),
                    steps: Arc::from(Vec::new()),
                }),
            api_created: 0,
        };
        for c in &plan.clusters {
            world.add_cluster(c)?;
        }
        for w in &plan.workflows {
            let created = plus(start, scaled(speed, w.created_at));
            world.insert_flow(w, created)?;
        }
        Ok(world)
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn start(&self) -> Timestamp {
        self.start
    }

    pub fn on_create(&self) -> &Timeline {
        &self.on_create
    }

    /// Adds a cluster of the plan: it appears `created_at` scenario seconds after start.
    pub fn add_cluster(&mut self, c: &ClusterPlan) -> Result<(), SimError> {
        let life = Life::new(
            &c.id,
            &c.version,
            c.created_at,
            c.deleted_at,
            &c.upgrades,
            (self.start, self.speed),
        );
        self.insert_cluster(c, life)
    }

    /// Adds a cluster that exists from `now` on (admin API); its plan's times are ignored.
    pub fn add_cluster_now(&mut self, now: Timestamp, c: &ClusterPlan) -> Result<(), SimError> {
        self.insert_cluster(c, Life::from_now(now))
    }

    fn insert_cluster(&mut self, c: &ClusterPlan, life: Life) -> Result<(), SimError> {
        if self.clusters.contains_key(&c.id) {
            return Err(SimError::Conflict(format!("cluster {} exists", c.id)));
        }
        self.clusters.insert(
            c.id.clone(),
            Cluster {
                project_id: c.project_id.clone(),
                cluster_type: c.cluster_type,
                initial_version: c.version.clone(),
                name: c.name.clone().unwrap_or_else(|| c.id.clone()),
                category: c.category.clone(),
                labels: c.labels.clone(),
                life,
                flows: Vec::new(),
            },
        );
        Ok(())
    }

    fn insert_flow(&mut self, plan: &WorkflowPlan, created: Timestamp) -> Result<(), SimError> {
        if self.flows.contains_key(&plan.id) {
            return Err(SimError::Conflict(format!("workflow {} exists", plan.id)));
        }
        let Some(cluster) = self.clusters.get_mut(&plan.cluster_id) else {
            return Err(SimError::ClusterNotFound(format!(
                "cluster {} does not exist",
                plan.cluster_id
            )));
        };
        let wire = plan.fixed.clone().unwrap_or_else(|| {
            new_wire(
                &plan.id,
                &plan.cluster_id,
                &plan.cluster_version,
                &plan.target_version,
                &plan.tasks,
            )
        });
        cluster.flows.push(plan.id.clone());
        self.flows.insert(
            plan.id.clone(),
            Flow::new(plan, wire, created, self.start, self.speed),
        );
        Ok(())
    }

    /// The cluster the path names, if CCE knows it at `now` under that project and prefix.
    fn cluster_in(&self, now: Timestamp, scope: Scope<'_>) -> Result<&Cluster, SimError> {
        self.clusters
            .get(scope.cluster_id)
            .filter(|c| c.project_id == scope.project_id && c.cluster_type == scope.cluster_type)
            .filter(|c| c.life.present(now))
            .ok_or_else(|| {
                SimError::ClusterNotFound(format!(
                    "cluster {} not found in project {}",
                    scope.cluster_id, scope.project_id
                ))
            })
    }

    /// The cluster's version now: the target of its newest finished upgrade, through a
    /// workflow (newest by creation) or without one (newest by end), the later of the two.
    fn current_version(&mut self, now: Timestamp, cluster_id: &str) -> Option<String> {
        let cluster = self.clusters.get(cluster_id)?;
        let (ids, direct) = (cluster.flows.clone(), cluster.life.direct_version(now));
        let initial = cluster.initial_version.clone();
        let mut through_workflow = None;
        for id in ids.iter().rev() {
            if let Some(flow) = self.flows.get_mut(id) {
                flow.materialize(now, self.speed);
                if flow.visible && flow.phase() == Some(&Phase::Success) {
                    let target = flow.wire.spec.as_ref()?.target_version.clone()?;
                    through_workflow = Some((flow.created, target));
                    break;
                }
            }
        }
        let newest = match (through_workflow, direct) {
            (Some(w), Some(d)) => Some(if d.0 > w.0 { d } else { w }),
            (w, d) => w.or(d),
        };
        Some(newest.map_or(initial, |(_, version)| version))
    }

    fn flow_in(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        id: &str,
    ) -> Result<&mut Flow, SimError> {
        self.cluster_in(now, scope)?;
        let speed = self.speed;
        let not_found = || SimError::WorkflowNotFound(format!("upgrade workflow {id} not found"));
        let flow = self.flows.get_mut(id).ok_or_else(not_found)?;
        if flow.cluster_id != scope.cluster_id {
            return Err(not_found());
        }
        flow.materialize(now, speed);
        if !flow.visible {
            return Err(not_found());
        }
        Ok(flow)
    }

    /// ShowUpgradeWorkFlow.
    pub fn show(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        id: &str,
    ) -> Result<Workflow, SimError> {
        Ok(self.flow_in(now, scope, id)?.wire.clone())
    }

    /// ListUpgradeWorkFlows: the cluster's workflows in creation order.
    pub fn list(&mut self, now: Timestamp, scope: Scope<'_>) -> Result<Vec<Workflow>, SimError> {
        let ids = self.cluster_in(now, scope)?.flows.clone();
        let speed = self.speed;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(flow) = self.flows.get_mut(&id) {
                flow.materialize(now, speed);
                if flow.visible {
                    items.push(flow.wire.clone());
                }
            }
        }
        Ok(items)
    }

    /// CreateUpgradeWorkFlow with the request body as received.
    pub fn create(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        body: &serde_json::Value,
    ) -> Result<Workflow, SimError> {
        self.cluster_in(now, scope)?;
        let bad = |m: &str| Err(SimError::InvalidRequest(m.to_string()));
        let Some(obj) = body.as_object() else {
            return bad("request body must be a JSON object");
        };
        let text =
            |v: Option<&serde_json::Value>, name: &str| -> Result<Option<String>, SimError> {
                match v {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(SimError::InvalidRequest(format!("{name} must be a string"))),
                }
            };
        // Both are fixed values; the SDK leaves them out unless the caller sets them.
        if text(obj.get("kind"), "kind")?.is_some_and(|k| k != "WorkFlowTask") {
            return bad("kind must be WorkFlowTask");
        }
        if text(obj.get("apiVersion"), "apiVersion")?.is_some_and(|v| v != "v3") {
            return bad("apiVersion must be v3");
        }
        let Some(spec) = obj.get("spec").and_then(|s| s.as_object()) else {
            return bad("spec is required");
        };
        if let Some(cluster) = text(spec.get("clusterID"), "spec.clusterID")?
            && cluster != scope.cluster_id
        {
            return bad("spec.clusterID does not match the cluster in the URL");
        }
        let Some(target) =
            text(spec.get("targetVersion"), "spec.targetVersion")?.filter(|t| !t.trim().is_empty())
        else {
            return bad("spec.targetVersion is required");
        };
        let request = NewWorkflow {
            id: None,
            cluster_version: text(spec.get("clusterVersion"), "spec.clusterVersion")?,
            target_version: target,
            timeline: None,
        };
        self.create_workflow(now, scope.cluster_id, request)
    }

    /// Creates a workflow on a cluster (API Create after validation, and the admin API).
    pub fn create_workflow(
        &mut self,
        now: Timestamp,
        cluster_id: &str,
        request: NewWorkflow,
    ) -> Result<Workflow, SimError> {
        let current = self.current_version(now, cluster_id).ok_or_else(|| {
            SimError::ClusterNotFound(format!("cluster {cluster_id} does not exist"))
        })?;
        let from = request.cluster_version.unwrap_or_else(|| current.clone());
        if from != current {
            return Err(SimError::InvalidRequest(format!(
                "clusterVersion {from} is not the cluster's current version {current}"
            )));
        }
        if request.target_version == current {
            return Err(SimError::InvalidRequest(format!(
                "the cluster already runs {current}"
            )));
        }
        let ids = self
            .clusters
            .get(cluster_id)
            .map(|c| c.flows.clone())
            .unwrap_or_default();
        for id in ids {
            if let Some(flow) = self.flows.get_mut(&id) {
                flow.materialize(now, self.speed);
                if flow.is_active() {
                    return Err(SimError::ActiveWorkflowExists(format!(
                        "cluster {cluster_id} already has an unfinished upgrade workflow {id}"
                    )));
                }
            }
        }
        let id = match request.id {
            Some(id) => id,
            None => {
                // Deterministic, unlike CCE's random UUIDs, so benchmark runs repeat.
                self.api_created += 1;
                derived_uuid(&format!("created/{cluster_id}/{}", self.api_created))
            }
        };
        let timeline = request.timeline.unwrap_or_else(|| self.on_create.clone());
        let plan = WorkflowPlan {
            id: id.clone(),
            cluster_id: cluster_id.to_string(),
            cluster_version: from,
            target_version: request.target_version,
            created_at: 0.0,
            tasks: DEFAULT_TASKS.to_vec(),
            timeline,
            fixed: None,
        };
        self.insert_flow(&plan, now)?;
        let speed = self.speed;
        let flow = self
            .flows
            .get_mut(&id)
            .ok_or_else(|| SimError::WorkflowNotFound(id.clone()))?;
        flow.materialize(now, speed);
        Ok(flow.wire.clone())
    }

    /// UpgradeWorkFlowUpdate: only `{"status":{"phase":"Cancel"}}`, only when nothing runs.
    pub fn cancel(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<Workflow, SimError> {
        let flow = self.flow_in(now, scope, id)?;
        let phase = body
            .get("status")
            .and_then(|s| s.get("phase"))
            .and_then(|p| p.as_str());
        match phase {
            Some("Cancel") => {}
            Some(other) => {
                return Err(SimError::InvalidRequest(format!(
                    "only cancelling is supported: status.phase must be Cancel, not {other}"
                )));
            }
            None => {
                return Err(SimError::InvalidRequest(
                    "request body must be {\"status\":{\"phase\":\"Cancel\"}}".into(),
                ));
            }
        }
        if let Some(phase) = flow.phase()
            && matches!(phase, Phase::Running | Phase::Success | Phase::Cancel)
        {
            return Err(SimError::NotCancellable(format!(
                "upgrade workflow {id} cannot be cancelled in phase {phase}"
            )));
        }
        if let Some(p) = flow
            .wire
            .points()
            .iter()
            .find(|p| p.status.as_ref().is_some_and(blocks_cancel))
        {
            return Err(SimError::NotCancellable(format!(
                "upgrade workflow {id} cannot be cancelled while task {} is {}",
                p.task_type.as_ref().map(TaskType::as_str).unwrap_or("?"),
                p.status.as_ref().map(TaskState::as_str).unwrap_or("?"),
            )));
        }
        let at = now.max(flow.floor);
        flow.floor = at;
        flow.stamp(at);
        flow.wire
            .status
            .get_or_insert_with(WorkflowStatus::default)
            .phase = Some(Phase::Cancel);
        Ok(flow.wire.clone())
    }

    /// The visible workflows of the addressed cluster, in creation order, steps played.
    fn flows_of(&mut self, now: Timestamp, scope: Scope<'_>) -> Result<Vec<&Flow>, SimError> {
        let ids = self.cluster_in(now, scope)?.flows.clone();
        let speed = self.speed;
        for id in &ids {
            if let Some(flow) = self.flows.get_mut(id) {
                flow.materialize(now, speed);
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.flows.get(id))
            .filter(|f| f.visible)
            .collect())
    }

    /// The list of what `build` says about each run of `task` on the addressed cluster (only
    /// the run `only` names, when given), oldest first.
    fn task_list<T>(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        task: TaskType,
        only: Option<&str>,
        build: fn(&TaskRun, &RunContext<'_>) -> T,
    ) -> Result<TaskList<T>, SimError> {
        let api_version = match task {
            TaskType::Snapshot => "v3.1",
            _ => "v3",
        };
        let flows = self.flows_of(now, scope)?;
        let mut answers = Vec::new();
        for flow in flows {
            let spec = flow.wire.spec.as_ref();
            let ctx = RunContext {
                cluster_id: scope.cluster_id,
                from: spec
                    .and_then(|s| s.cluster_version.as_deref())
                    .unwrap_or_default(),
                to: spec
                    .and_then(|s| s.target_version.as_deref())
                    .unwrap_or_default(),
                now,
                origin: flow.origin,
            };
            answers.extend(
                flow.tasks
                    .iter()
                    .filter(|r| r.task == task && only.is_none_or(|id| id == r.task_id))
                    .map(|r| build(r, &ctx)),
            );
        }
        if task == TaskType::Cluster
            && let Some(cluster) = self.clusters.get(scope.cluster_id)
        {
            // Upgrades without a workflow have their upgrade task all the same.
            let direct = cluster
                .life
                .upgrade_tasks(now, scope.cluster_id, |run, ctx| {
                    (run.task_id.clone(), build(run, ctx))
                });
            answers.extend(
                direct
                    .into_iter()
                    .filter(|(id, _)| only.is_none_or(|only| only == id))
                    .map(|(_, answer)| answer),
            );
        }
        Ok(TaskList {
            kind: Some("List".into()),
            api_version: Some(api_version.into()),
            items: answers,
            status: None,
        })
    }

    fn one_task<T>(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        task: TaskType,
        id: &str,
        build: fn(&TaskRun, &RunContext<'_>) -> T,
    ) -> Result<T, SimError> {
        let what = match task {
            TaskType::PreCheck => "pre-check task",
            TaskType::Snapshot => "snapshot task",
            _ => "upgrade task",
        };
        self.task_list(now, scope, task, Some(id), build)?
            .items
            .pop()
            .ok_or_else(|| SimError::TaskNotFound(format!("{what} {id} not found")))
    }

    /// ShowPreCheck.
    pub fn show_pre_check(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        id: &str,
    ) -> Result<PreCheckTask, SimError> {
        self.one_task(now, scope, TaskType::PreCheck, id, runs::pre_check)
    }

    /// ListPreCheckTasks.
    pub fn list_pre_checks(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
    ) -> Result<TaskList<PreCheckTask>, SimError> {
        self.task_list(now, scope, TaskType::PreCheck, None, runs::pre_check)
    }

    /// ShowUpgradeClusterTask.
    pub fn show_upgrade_task(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
        id: &str,
    ) -> Result<UpgradeTask, SimError> {
        self.one_task(now, scope, TaskType::Cluster, id, runs::upgrade_task)
    }

    /// ListUpgradeClusterTasks.
    pub fn list_upgrade_tasks(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
    ) -> Result<TaskList<UpgradeTask>, SimError> {
        self.task_list(now, scope, TaskType::Cluster, None, runs::upgrade_task)
    }

    /// ListClusterMasterSnapshotTasks.
    pub fn list_snapshots(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
    ) -> Result<SnapshotTaskList, SimError> {
        let mut list = self.task_list(now, scope, TaskType::Snapshot, None, runs::snapshot_task)?;
        let latest_backup_time = list
            .items
            .iter()
            .filter(|t| t.phase().is_some_and(|p| p.means(&TaskState::Success)))
            .filter_map(|t| t.status.as_ref()?.completion_time.clone())
            .next_back();
        list.status = Some(TaskListStatus { latest_backup_time });
        Ok(list)
    }

    /// ShowCluster: the cluster object, as ListClusters lists it at the same instant.
    pub fn show_cluster(
        &mut self,
        now: Timestamp,
        scope: Scope<'_>,
    ) -> Result<ClusterAnswer, SimError> {
        self.cluster_in(now, scope)?;
        self.cluster_answer(now, scope.cluster_id, false)
            .ok_or_else(|| {
                SimError::ClusterNotFound(format!("cluster {} not found", scope.cluster_id))
            })
    }

    /// ListClusters (`family` Standard) and ListAutopilotClusters: the clusters of the
    /// project and family CCE knows at `now` that pass `query`, in id order.
    pub fn list_clusters(
        &mut self,
        now: Timestamp,
        family: ApiFamily,
        project_id: &str,
        query: &ListQuery,
    ) -> Vec<ClusterAnswer> {
        let ids: Vec<String> = self
            .clusters
            .iter()
            .filter(|(_, c)| c.project_id == project_id && c.cluster_type == family)
            .filter(|(_, c)| c.life.present(now))
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.cluster_answer(now, id, query.detail))
            .filter(|c| query.admits(c))
            .collect()
    }

    /// The cluster object of `id` at `now` (whether or not CCE knows it then).
    fn cluster_answer(&mut self, now: Timestamp, id: &str, detail: bool) -> Option<ClusterAnswer> {
        let version = self.current_version(now, id)?;
        let status = self.cluster_status(now, id)?;
        let c = self.clusters.get(id)?;
        let looks = Looks {
            id,
            name: &c.name,
            family: c.cluster_type,
            category: c.category.as_deref(),
            labels: &c.labels,
            created: c.life.appears,
            version: &version,
            status,
        };
        Some(cluster_object(looks, detail))
    }

    /// What the cluster's phase is at `now`: Deleting once its deletion started, else what
    /// the newest upgrade left it in (a workflow's by creation, one without a workflow by
    /// start), else Available.
    fn cluster_status(&mut self, now: Timestamp, id: &str) -> Option<ClusterStatus> {
        let cluster = self.clusters.get(id)?;
        if let Some(deleting) = cluster.life.deleting(now) {
            return Some(deleting);
        }
        let direct = cluster.life.direct_status(now);
        let ids = cluster.flows.clone();
        let speed = self.speed;
        let mut through_workflow = None;
        for flow_id in ids.iter().rev() {
            let Some(flow) = self.flows.get_mut(flow_id) else {
                continue;
            };
            flow.materialize(now, speed);
            if flow.visible
                && let Some(status) = &flow.cluster_status
            {
                through_workflow = Some((flow.created, status.clone()));
                break;
            }
        }
        let newest = match (through_workflow, direct) {
            (Some(w), Some(d)) => Some(if d.0 > w.0 { d } else { w }),
            (w, d) => w.or(d),
        };
        Some(newest.map_or(
            ClusterStatus {
                phase: Some(ClusterPhase::Available),
                ..ClusterStatus::default()
            },
            |(_, status)| status,
        ))
    }

    /// Every workflow (visible or not), ordered by id.
    pub fn dump(&mut self, now: Timestamp) -> Vec<FlowView> {
        let (speed, clusters) = (self.speed, &self.clusters);
        self.flows
            .values_mut()
            .map(|f| {
                f.materialize(now, speed);
                view(f, clusters)
            })
            .collect()
    }

    pub fn get(&mut self, now: Timestamp, id: &str) -> Option<FlowView> {
        let flow = self.flows.get_mut(id)?;
        flow.materialize(now, self.speed);
        Some(view(flow, &self.clusters))
    }

    pub fn cluster_views(&mut self, now: Timestamp) -> Vec<ClusterView> {
        let ids: Vec<String> = self.clusters.keys().cloned().collect();
        ids.into_iter()
            .filter_map(|id| {
                let version = self.current_version(now, &id)?;
                let phase = self
                    .cluster_status(now, &id)
                    .and_then(|s| s.phase)
                    .map(|p| p.as_str().to_string());
                let c = self.clusters.get(&id)?;
                Some(ClusterView {
                    project_id: c.project_id.clone(),
                    cluster_type: c.cluster_type,
                    version,
                    name: c.name.clone(),
                    phase: phase.filter(|_| c.life.present(now)),
                    workflows: c.flows.clone(),
                    cluster_id: id,
                })
            })
            .collect()
    }

    /// Moves one workflow (or, with `None`, all) along its timeline; returns how many moved.
    pub fn advance(
        &mut self,
        now: Timestamp,
        id: Option<&str>,
        by: Advance,
    ) -> Result<usize, SimError> {
        if let Advance::Seconds(s) = by
            && !s.is_finite()
        {
            return Err(SimError::InvalidRequest("seconds must be a number".into()));
        }
        let speed = self.speed;
        match id {
            Some(id) => {
                let flow = self.flows.get_mut(id).ok_or_else(|| {
                    SimError::WorkflowNotFound(format!("workflow {id} not found"))
                })?;
                flow.advance(now, by, speed);
                Ok(1)
            }
            None => {
                for flow in self.flows.values_mut() {
                    flow.advance(now, by, speed);
                }
                Ok(self.flows.len())
            }
        }
    }

    pub fn workflow_count(&self) -> usize {
        self.flows.len()
    }

    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::PointStatus;
    use crate::cce::time::format_go;
    use crate::sim::builtin::{self, Builtin, PROJECT_ID, TO_VERSION};
    use jiff::SignedDuration;
    use serde_json::json;

    fn t0() -> Timestamp {
        "2025-01-01T00:00:00Z".parse().expect("ts")
    }

    fn at(secs: f64) -> Timestamp {
        plus(t0(), SignedDuration::from_secs_f64(secs))
    }

    fn world(builtins: &[Builtin], speed: f64) -> World {
        let mut plan = Plan::default();
        for b in builtins {
            plan.merge(b.scenario().instantiate(None).expect("plan"))
                .expect("merge");
        }
        World::new(&plan, speed, t0()).expect("world")
    }

    fn scope(b: Builtin) -> (ApiFamily, String) {
        (b.cluster_type(), b.cluster_id(0))
    }

    fn show(w: &mut World, b: Builtin, secs: f64) -> Workflow {
        let (ty, cluster) = scope(b);
        let s = Scope {
            cluster_type: ty,
            project_id: PROJECT_ID,
            cluster_id: &cluster,
        };
        w.show(at(secs), s, &b.workflow_id(0)).expect("show")
    }

    fn summary(wf: &Workflow) -> (String, Vec<String>) {
        let phase = wf.phase().map(|p| p.to_string()).unwrap_or_default();
        let tasks = wf
            .points()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}",
                    p.task_type.as_ref().map(TaskType::as_str).unwrap_or("?"),
                    p.status.as_ref().map(TaskState::as_str).unwrap_or("-")
                )
            })
            .collect();
        (phase, tasks)
    }

    #[test]
    fn success_timeline_walks_every_task_to_success() {
        let mut w = world(&[Builtin::Success], 1.0);
        let expect = [
            (0.0, "Init", ["-", "-", "-", "-"]),
            (15.0, "Running", ["Running", "-", "-", "-"]),
            (60.0, "Running", ["Success", "-", "-", "-"]),
            (80.0, "Running", ["Success", "Running", "-", "-"]),
            (130.0, "Running", ["Success", "Success", "Running", "-"]),
            (250.0, "Running", ["Success", "Success", "Success", "-"]),
            (
                260.0,
                "Running",
                ["Success", "Success", "Success", "Running"],
            ),
            (
                300.0,
                "Success",
                ["Success", "Success", "Success", "Success"],
            ),
            (
                9999.0,
                "Success",
                ["Success", "Success", "Success", "Success"],
            ),
        ];
        for (secs, phase, statuses) in expect {
            let wf = show(&mut w, Builtin::Success, secs);
            let tasks: Vec<String> = ["PreCheck", "Snapshot", "Cluster", "PostCheck"]
                .iter()
                .zip(statuses)
                .map(|(t, s)| format!("{t}:{s}"))
                .collect();
            assert_eq!(summary(&wf), (phase.to_string(), tasks), "at {secs}s");
        }
    }

    #[test]
    fn timestamps_are_when_steps_were_due_even_when_read_late() {
        let mut w = world(&[Builtin::Success], 60.0);
        // Read once, long after the end: each step still carries its own due time.
        let wf = show(&mut w, Builtin::Success, 3600.0);
        let pre = &wf.points()[0];
        assert_eq!(
            pre.start_time_stamp.as_deref(),
            Some(format_go(at(0.25)).as_str())
        );
        assert_eq!(
            pre.end_time_stamp.as_deref(),
            Some(format_go(at(1.0)).as_str())
        );
        // The hour of validity is scaled too.
        assert_eq!(
            pre.expire_time_stamp.as_deref(),
            Some(format_go(at(61.0)).as_str())
        );
        let meta = wf.metadata.clone().expect("metadata");
        assert_eq!(meta.creation_timestamp, Some(format_go(t0())));
        assert_eq!(meta.update_timestamp, Some(format_go(at(5.0))));
        assert!(pre.task_id.as_deref().is_some_and(|id| id.len() == 36));
        // Not-started tasks carry only their type (cce-api.md §8).
        let fresh = show(&mut world(&[Builtin::Success], 60.0), Builtin::Success, 0.0);
        assert_eq!(
            fresh.points()[3],
            PointStatus {
                task_type: Some(TaskType::PostCheck),
                ..PointStatus::default()
            }
        );
    }

    #[test]
    fn failed_cluster_task_goes_pending_then_a_retry_gets_a_new_task() {
        let b = Builtin::ClusterFailsThenRetry;
        let mut w = world(&[b], 1.0);
        let running = show(&mut w, b, 200.0);
        let failed = show(&mut w, b, 220.0);
        assert_eq!(failed.phase(), Some(&Phase::Pending));
        assert_eq!(failed.points()[2].status, Some(TaskState::Failed));
        assert_eq!(failed.points()[2].task_id, running.points()[2].task_id);
        let retried = show(&mut w, b, 280.0);
        assert_eq!(retried.phase(), Some(&Phase::Running));
        assert_ne!(retried.points()[2].task_id, failed.points()[2].task_id);
        assert_eq!(retried.points()[2].end_time_stamp, None);
        assert_eq!(summary(&show(&mut w, b, 450.0)).0, "Success");
    }

    #[test]
    fn cancel_and_precheck_expiry_timelines_end_where_documented() {
        let mut w = world(&[Builtin::Cancel, Builtin::PrecheckExpires], 1.0);
        assert_eq!(summary(&show(&mut w, Builtin::Cancel, 110.0)).0, "Pending");
        assert_eq!(summary(&show(&mut w, Builtin::Cancel, 165.0)).0, "Cancel");
        let wf = show(&mut w, Builtin::PrecheckExpires, 1000.0);
        assert_eq!(summary(&wf).0, "Pending");
        let expire = wf.points()[0].expire_time_stamp.clone().expect("expire");
        let cluster_start = wf.points()[2].start_time_stamp.clone().expect("start");
        let parse = |s: &str| crate::cce::time::parse(s).expect("time");
        assert!(parse(&expire) < parse(&cluster_start));
        assert_eq!(wf.points()[1].status, None, "snapshot never ran");
    }

    #[test]
    fn seed_example_is_served_verbatim() {
        let mut w = world(&[Builtin::SeedExample], 60.0);
        let wf = show(&mut w, Builtin::SeedExample, 500.0);
        let original: serde_json::Value =
            serde_json::from_str(crate::cce::model::SEED_EXAMPLE).expect("json");
        assert_eq!(serde_json::to_value(&wf).expect("json"), original);
    }

    #[test]
    fn wrong_cluster_project_or_api_prefix_is_not_found() {
        let mut w = world(&[Builtin::Success, Builtin::AutopilotSuccess], 1.0);
        let wf = Builtin::Success.workflow_id(0);
        let c1 = Builtin::Success.cluster_id(0);
        let c5 = Builtin::AutopilotSuccess.cluster_id(0);
        let cases = [
            (ApiFamily::Autopilot, PROJECT_ID, c1.as_str(), wf.as_str()),
            (ApiFamily::Standard, "other", c1.as_str(), wf.as_str()),
            (ApiFamily::Standard, PROJECT_ID, "nope", wf.as_str()),
            (ApiFamily::Standard, PROJECT_ID, c1.as_str(), "nope"),
            (ApiFamily::Standard, PROJECT_ID, c5.as_str(), wf.as_str()),
        ];
        for (ty, project, cluster, id) in cases {
            let s = Scope {
                cluster_type: ty,
                project_id: project,
                cluster_id: cluster,
            };
            assert!(
                matches!(
                    w.show(at(1.0), s, id),
                    Err(SimError::ClusterNotFound(_) | SimError::WorkflowNotFound(_))
                ),
                "{ty:?} {project} {cluster} {id}"
            );
        }
        let s = Scope {
            cluster_type: ApiFamily::Autopilot,
            project_id: PROJECT_ID,
            cluster_id: &c5,
        };
        let id = Builtin::AutopilotSuccess.workflow_id(0);
        assert!(w.show(at(1.0), s, &id).is_ok());
        assert_eq!(w.list(at(1.0), s).expect("list").len(), 1);
    }

    #[test]
    fn create_validates_the_body_and_refuses_a_second_active_workflow() {
        let mut w = world(&[Builtin::Idle, Builtin::Success], 1.0);
        let idle = Builtin::Idle.cluster_id(0);
        let s = Scope {
            cluster_type: ApiFamily::Standard,
            project_id: PROJECT_ID,
            cluster_id: &idle,
        };
        let good = json!({"kind":"WorkFlowTask","apiVersion":"v3",
            "spec":{"clusterID": idle, "clusterVersion": builtin::FROM_VERSION, "targetVersion": TO_VERSION}});
        for bad in [
            json!([]),
            json!({"kind":"Task","apiVersion":"v3","spec":{"targetVersion":"v2"}}),
            json!({"kind":"WorkFlowTask","apiVersion":"v2","spec":{"targetVersion":"v2"}}),
            json!({"kind":"WorkFlowTask","apiVersion":"v3"}),
            json!({"kind":"WorkFlowTask","apiVersion":"v3","spec":{}}),
            json!({"kind":"WorkFlowTask","apiVersion":"v3","spec":{"targetVersion":5}}),
            json!({"kind":"WorkFlowTask","apiVersion":"v3","spec":{"clusterID":"x","targetVersion":"v2"}}),
            json!({"kind":"WorkFlowTask","apiVersion":"v3","spec":{"clusterVersion":"v0","targetVersion":"v2"}}),
            json!({"kind":"WorkFlowTask","apiVersion":"v3","spec":{"targetVersion": builtin::FROM_VERSION}}),
        ] {
            assert!(
                matches!(w.create(at(0.0), s, &bad), Err(SimError::InvalidRequest(_))),
                "{bad}"
            );
        }
        let created = w.create(at(10.0), s, &good).expect("create");
        assert_eq!(created.phase(), Some(&Phase::Init));
        assert_eq!(created.points().len(), 4);
        assert!(matches!(
            w.create(at(11.0), s, &good),
            Err(SimError::ActiveWorkflowExists(_))
        ));
        // The success timeline runs from the creation; then the cluster is upgraded and a
        // workflow from the new version may follow.
        let id = created.uid().expect("uid").to_string();
        assert_eq!(
            summary(&w.show(at(310.0), s, &id).expect("show")).0,
            "Success"
        );
        assert!(w.create(at(311.0), s, &good).is_err(), "old version now");
        let next =
            json!({"kind":"WorkFlowTask","apiVersion":"v3","spec":{"targetVersion":"v1.30.1-r0"}});
        let second = w.create(at(312.0), s, &next).expect("second");
        assert_eq!(
            second.spec.and_then(|s| s.cluster_version).as_deref(),
            Some(TO_VERSION)
        );
        assert_eq!(w.list(at(312.0), s).expect("list").len(), 2);
        // Ids are deterministic.
        let mut again = world(&[Builtin::Idle, Builtin::Success], 1.0);
        assert_eq!(
            again.create(at(10.0), s, &good).expect("create").uid(),
            Some(id.as_str())
        );
    }

    #[test]
    fn cancel_only_when_nothing_runs_and_only_to_cancel() {
        let b = Builtin::Cancel;
        let mut w = world(&[b], 1.0);
        let cluster = b.cluster_id(0);
        let id = b.workflow_id(0);
        let s = Scope {
            cluster_type: ApiFamily::Standard,
            project_id: PROJECT_ID,
            cluster_id: &cluster,
        };
        let cancel = json!({"status":{"phase":"Cancel"}});
        // Init with no task started: allowed by phase, but try while a task runs first.
        assert!(matches!(
            w.cancel(at(20.0), s, &id, &cancel),
            Err(SimError::NotCancellable(_))
        ));
        for bad in [
            json!({}),
            json!({"status":{"phase":"Success"}}),
            json!("Cancel"),
        ] {
            assert!(matches!(
                w.cancel(at(110.0), s, &id, &bad),
                Err(SimError::InvalidRequest(_))
            ));
        }
        let cancelled = w.cancel(at(110.0), s, &id, &cancel).expect("cancel");
        assert_eq!(cancelled.phase(), Some(&Phase::Cancel));
        assert_eq!(
            cancelled.metadata.and_then(|m| m.update_timestamp),
            Some(format_go(at(110.0)))
        );
        assert!(matches!(
            w.cancel(at(111.0), s, &id, &cancel),
            Err(SimError::NotCancellable(_))
        ));
        // Cancel is final: later steps do not play.
        assert_eq!(summary(&show(&mut w, b, 1000.0)).0, "Cancel");
    }

    #[test]
    fn advancing_plays_steps_now_and_negative_shifts_delay() {
        let b = Builtin::Success;
        let mut w = world(&[b], 1.0);
        let id = b.workflow_id(0);
        w.advance(at(1.0), Some(&id), Advance::Steps(2))
            .expect("advance");
        let wf = show(&mut w, b, 1.0);
        assert_eq!(wf.points()[0].status, Some(TaskState::Success));
        assert_eq!(wf.points()[0].end_time_stamp, Some(format_go(at(1.0))));
        w.advance(at(2.0), Some(&id), Advance::Seconds(-1000.0))
            .expect("delay");
        assert_eq!(show(&mut w, b, 500.0).points()[1].status, None);
        w.advance(at(3.0), None, Advance::ToEnd).expect("all");
        let done = show(&mut w, b, 3.0);
        assert_eq!(summary(&done).0, "Success");
        let end = |i: usize| {
            crate::cce::time::parse(
                done.points()[i]
                    .end_time_stamp
                    .as_deref()
                    .unwrap_or_default(),
            )
        };
        assert_eq!(end(3), Some(at(3.0)));
        assert!(end(2) < end(3), "spacing kept");
        assert!(w.advance(at(3.0), Some("nope"), Advance::ToEnd).is_err());
        let view = w.get(at(3.0), &id).expect("view");
        assert_eq!(view.steps_left, 0);
        assert_eq!(w.dump(at(3.0)).len(), 1);
    }

    #[test]
    fn workflows_created_later_appear_when_due_or_when_advanced() {
        let yaml = r#"
clusters: [{id: c, version: v1}]
workflows:
  - {id: early, clusterID: c, targetVersion: v2, timeline: cancel}
  - {id: late, clusterID: c, targetVersion: v3, createdAt: 600}
"#;
        let plan = crate::sim::scenario::ScenarioFile::from_yaml(yaml)
            .and_then(|f| f.instantiate(None))
            .expect("plan");
        let mut w = World::new(&plan, 10.0, t0()).expect("world");
        let s = Scope {
            cluster_type: ApiFamily::Standard,
            project_id: PROJECT_ID,
            cluster_id: "c",
        };
        assert_eq!(w.list(at(1.0), s).expect("list").len(), 1);
        assert!(w.show(at(1.0), s, "late").is_err());
        assert_eq!(w.list(at(60.0), s).expect("list").len(), 2);
        let late = w.show(at(60.0), s, "late").expect("late");
        assert_eq!(
            late.metadata.and_then(|m| m.creation_timestamp),
            Some(format_go(at(60.0)))
        );
        let mut w = World::new(&plan, 10.0, t0()).expect("world");
        w.advance(at(2.0), Some("late"), Advance::Steps(0))
            .expect("advance");
        assert!(w.show(at(2.0), s, "late").is_ok());
    }

    fn scope_of(cluster: &str, ty: ApiFamily) -> Scope<'_> {
        Scope {
            cluster_type: ty,
            project_id: PROJECT_ID,
            cluster_id: cluster,
        }
    }

    fn task_id(wf: &Workflow, task: TaskType) -> String {
        wf.points()
            .iter()
            .find(|p| p.task_type.as_ref() == Some(&task))
            .and_then(|p| p.task_id.clone())
            .expect("task id")
    }

    #[test]
    fn a_failed_pre_check_reports_its_findings_and_the_retry_is_a_clean_new_task() {
        let b = Builtin::PrecheckFails;
        let mut w = world(&[b], 1.0);
        let cluster = b.cluster_id(0);
        let s = scope_of(&cluster, ApiFamily::Standard);
        let failed = show(&mut w, b, 70.0);
        assert_eq!(failed.phase(), Some(&Phase::Pending));
        let first = task_id(&failed, TaskType::PreCheck);
        let pre = w.show_pre_check(at(70.0), s, &first).expect("show");
        assert_eq!(pre.uid(), Some(first.as_str()));
        assert_eq!(
            pre.phase(),
            Some(&crate::cce::diagnostics::precheck::PreCheckPhase::Failed)
        );
        let findings = pre.findings();
        let names: Vec<_> = findings
            .iter()
            .map(|(_, i)| i.name.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(names, ["NodeReady", "DeprecatedAPI"]);
        assert!(findings[0].1.is_blocking() && !findings[1].1.is_blocking());
        assert!(matches!(findings[0].0,
            crate::cce::diagnostics::CheckScope::Node(Some(n)) if n.name.as_deref() == Some("worker-2")));
        assert_eq!(
            findings[1].1.subjects(),
            ["/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas"]
        );
        let meta = pre.metadata.clone().expect("metadata");
        assert_eq!(meta.creation_timestamp, failed.points()[0].start_time_stamp);
        assert_eq!(meta.update_timestamp, failed.points()[0].end_time_stamp);

        let passed = show(&mut w, b, 170.0);
        let second = task_id(&passed, TaskType::PreCheck);
        assert_ne!(first, second);
        let retried = w.show_pre_check(at(170.0), s, &second).expect("second");
        assert!(retried.findings().is_empty());
        assert_eq!(
            retried
                .status
                .as_ref()
                .and_then(|s| s.expire_time_stamp.clone()),
            passed.points()[0].expire_time_stamp
        );
        let list = w.list_pre_checks(at(170.0), s).expect("list");
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.find(&first).map(|t| t.findings().len()), Some(2));
        assert!(matches!(
            w.show_pre_check(at(170.0), s, "nope"),
            Err(SimError::TaskNotFound(_))
        ));
        assert_eq!(summary(&show(&mut w, b, 1000.0)).0, "Success");
    }

    #[test]
    fn cluster_progress_advances_on_the_scenario_clock() {
        let b = Builtin::Success;
        let mut w = world(&[b], 1.0);
        let cluster = b.cluster_id(0);
        let s = scope_of(&cluster, ApiFamily::Standard);
        let wf = show(&mut w, b, 130.0);
        let id = task_id(&wf, TaskType::Cluster);
        let progress = |w: &mut World, secs: f64| {
            let task = w.show_upgrade_task(at(secs), s, &id).expect("task");
            (task.phase().cloned(), task.progress_percent())
        };
        assert_eq!(progress(&mut w, 120.0), (Some(TaskState::Running), Some(0)));
        assert_eq!(
            progress(&mut w, 180.0),
            (Some(TaskState::Running), Some(50))
        );
        assert_eq!(
            progress(&mut w, 210.0),
            (Some(TaskState::Running), Some(75))
        );
        assert_eq!(
            progress(&mut w, 250.0),
            (Some(TaskState::Success), Some(100))
        );
        let task = w.show_upgrade_task(at(250.0), s, &id).expect("task");
        let done = show(&mut w, b, 250.0);
        assert_eq!(
            task.status.and_then(|s| s.completion_time),
            done.points()[2].end_time_stamp
        );
        assert_eq!(
            w.list_upgrade_tasks(at(250.0), s)
                .expect("list")
                .items
                .len(),
            1
        );
        let cluster_now = w.show_cluster(at(310.0), s).expect("cluster");
        assert_eq!(cluster_now.phase(), Some(&ClusterPhase::Available));
        // The wire's short version and platformVersion say the workflow's target.
        assert_eq!(
            cluster_now.version().map(|v| v.to_string()).as_deref(),
            Some(TO_VERSION)
        );
        assert_eq!(
            cluster_now.spec.and_then(|s| s.version).as_deref(),
            Some("v1.29")
        );
    }

    #[test]
    fn a_paused_cluster_task_keeps_its_progress_until_it_continues() {
        let b = Builtin::ClusterPauses;
        let mut w = world(&[b], 1.0);
        let cluster = b.cluster_id(0);
        let s = scope_of(&cluster, ApiFamily::Standard);
        let id = task_id(&show(&mut w, b, 145.0), TaskType::Cluster);
        let at_secs = |w: &mut World, secs: f64| {
            let t = w.show_upgrade_task(at(secs), s, &id).expect("task");
            (t.phase().cloned(), t.progress_percent())
        };
        assert_eq!(at_secs(&mut w, 145.0), (Some(TaskState::Running), Some(20)));
        let paused = show(&mut w, b, 200.0);
        assert_eq!(paused.points()[2].status, Some(TaskState::Pause));
        assert_eq!(paused.phase(), Some(&Phase::Running));
        assert_eq!(
            paused.current_task().and_then(|p| p.task_type.clone()),
            Some(TaskType::Cluster)
        );
        assert_eq!(at_secs(&mut w, 200.0), (Some(TaskState::Pause), Some(40)));
        assert_eq!(at_secs(&mut w, 229.0), (Some(TaskState::Pause), Some(40)));
        let pausing = w.show_cluster(at(200.0), s).expect("cluster");
        assert_eq!(pausing.phase(), Some(&ClusterPhase::Upgrading));
        assert_eq!(pausing.reason(), Some("UpgradePaused"));
        assert_eq!(at_secs(&mut w, 275.0), (Some(TaskState::Running), Some(70)));
        assert_eq!(task_id(&show(&mut w, b, 400.0), TaskType::Cluster), id);
        assert_eq!(
            at_secs(&mut w, 400.0),
            (Some(TaskState::Success), Some(100))
        );
    }

    #[test]
    fn a_failed_cluster_task_leaves_the_cluster_with_a_reason_until_the_retry() {
        let b = Builtin::ClusterFailsThenRetry;
        let mut w = world(&[b], 1.0);
        let cluster = b.cluster_id(0);
        let s = scope_of(&cluster, ApiFamily::Standard);
        let failed = show(&mut w, b, 220.0);
        let id = task_id(&failed, TaskType::Cluster);
        let task = w.show_upgrade_task(at(220.0), s, &id).expect("task");
        assert_eq!(task.phase(), Some(&TaskState::Failed));
        assert_eq!(task.progress_percent(), Some(50));
        let c = w.show_cluster(at(220.0), s).expect("cluster");
        assert_eq!(c.phase(), Some(&ClusterPhase::Error));
        assert_eq!(c.reason(), Some("UpgradeFailed"));
        assert!(c.message().is_some_and(|m| m.contains("50%")), "{c:?}");
        assert_eq!(
            w.show_cluster(at(280.0), s).expect("cluster").phase(),
            Some(&ClusterPhase::Upgrading)
        );
        assert_eq!(
            w.list_upgrade_tasks(at(280.0), s)
                .expect("list")
                .items
                .len(),
            2
        );
    }

    #[test]
    fn snapshot_tasks_are_listed_under_the_snapshot_points_ids() {
        let b = Builtin::Cancel;
        let mut w = world(&[b, Builtin::AutopilotSuccess], 1.0);
        let cluster = b.cluster_id(0);
        let s = scope_of(&cluster, ApiFamily::Standard);
        let wf = show(&mut w, b, 110.0);
        let id = task_id(&wf, TaskType::Snapshot);
        let list = w.list_snapshots(at(110.0), s).expect("list");
        let task = list.find(&id).expect("listed");
        assert_eq!(task.phase(), Some(&TaskState::Failed));
        assert_eq!(task.failure_messages().count(), 1);
        assert_eq!(list.status.and_then(|s| s.latest_backup_time), None);

        let ap = Builtin::AutopilotSuccess;
        let ap_cluster = ap.cluster_id(0);
        let aps = scope_of(&ap_cluster, ApiFamily::Autopilot);
        let done = show(&mut w, ap, 400.0);
        let ap_list = w.list_snapshots(at(400.0), aps).expect("autopilot");
        assert_eq!(
            ap_list.status.and_then(|s| s.latest_backup_time),
            done.points()[1].end_time_stamp
        );
        let pre = task_id(&done, TaskType::PreCheck);
        assert!(w.show_pre_check(at(400.0), aps, &pre).is_ok());
        // The other prefix does not know the cluster.
        assert!(matches!(
            w.show_pre_check(at(400.0), scope_of(&ap_cluster, ApiFamily::Standard), &pre),
            Err(SimError::ClusterNotFound(_))
        ));
    }

    #[test]
    fn advancing_moves_diagnostic_times_with_the_workflow() {
        let b = Builtin::Success;
        let mut w = world(&[b], 1.0);
        let cluster = b.cluster_id(0);
        let s = scope_of(&cluster, ApiFamily::Standard);
        let id = b.workflow_id(0);
        w.advance(at(1.0), Some(&id), Advance::Steps(5))
            .expect("advance");
        let wf = show(&mut w, b, 1.0);
        let task = w
            .show_upgrade_task(at(1.0), s, &task_id(&wf, TaskType::Cluster))
            .expect("task");
        assert_eq!(task.progress_percent(), Some(0));
        assert_eq!(
            task.metadata.and_then(|m| m.creation_timestamp),
            wf.points()[2].start_time_stamp
        );
        let later = w
            .show_upgrade_task(at(61.0), s, &task_id(&wf, TaskType::Cluster))
            .expect("task");
        assert_eq!(later.progress_percent(), Some(50));
    }

    #[test]
    fn a_fixed_workflow_serves_the_tasks_its_points_name() {
        let mut w = world(&[Builtin::SeedExample], 60.0);
        let wf = show(&mut w, Builtin::SeedExample, 500.0);
        let s = scope_of(builtin::SEED_CLUSTER_ID, ApiFamily::Standard);
        for p in wf.points() {
            let (Some(kind), Some(id)) = (&p.task_type, &p.task_id) else {
                continue;
            };
            let found = match kind {
                TaskType::PreCheck => w
                    .show_pre_check(at(500.0), s, id)
                    .map(|t| t.uid().map(String::from)),
                TaskType::Cluster => w
                    .show_upgrade_task(at(500.0), s, id)
                    .map(|t| t.uid().map(String::from)),
                _ => continue,
            };
            assert_eq!(found.expect("served"), Some(id.clone()));
        }
        assert!(
            !w.list_pre_checks(at(500.0), s)
                .expect("list")
                .items
                .is_empty()
        );
    }

    mod fleet {
        use super::*;
        use crate::sim::builtin::{FLEET, FROM_VERSION};
        use crate::sim::fleet::ListQuery;

        /// `(name, phase, version)` of every cluster ListClusters lists at `secs`, each
        /// checked against ShowCluster at the same instant.
        fn listed(w: &mut World, secs: f64, family: ApiFamily) -> Vec<(String, String, String)> {
            let now = at(secs);
            let items = w.list_clusters(now, family, PROJECT_ID, &ListQuery::default());
            items
                .iter()
                .map(|c| {
                    let id = c.uid().expect("uid");
                    let shown = w.show_cluster(now, scope_of(id, family)).expect("show");
                    assert_eq!(&shown, c, "ShowCluster and ListClusters agree on {id}");
                    (
                        c.name().expect("name").to_string(),
                        c.phase()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                        c.version().map(|v| v.to_string()).unwrap_or_default(),
                    )
                })
                .collect()
        }

        fn row(name: &str, phase: &str, version: &str) -> (String, String, String) {
            (format!("{name}-00"), phase.into(), version.into())
        }

        #[test]
        fn the_fleet_lists_as_its_clusters_live() {
            let mut w = world(&[Builtin::Fleet], 1.0);
            let (from, to) = (FROM_VERSION, TO_VERSION);
            let standard = |w: &mut World, secs| listed(w, secs, ApiFamily::Standard);
            assert_eq!(
                standard(&mut w, 10.0),
                [
                    row("fleet-rolling", "Available", from),
                    row("fleet-steady", "Available", from),
                    row("fleet-direct", "Available", from),
                    row("fleet-broken", "Available", from),
                    row("fleet-retired", "Available", from),
                ]
            );
            assert_eq!(
                standard(&mut w, 100.0)[2..5],
                [
                    row("fleet-direct", "Upgrading", from),
                    row("fleet-broken", "Upgrading", from),
                    row("fleet-late", "Available", from),
                ]
            );
            let later = standard(&mut w, 160.0);
            assert_eq!(later[0], row("fleet-rolling", "Upgrading", from));
            assert_eq!(later[2], row("fleet-direct", "Available", to));
            assert_eq!(later[3], row("fleet-broken", "Error", from));
            assert_eq!(later[5], row("fleet-retired", "Deleting", from));
            // The version moves when the workflow succeeds, after its PostCheck (330).
            let end = standard(&mut w, 340.0);
            assert_eq!(end.len(), 5, "the retired cluster is gone: {end:?}");
            assert_eq!(end[0], row("fleet-rolling", "Available", to));
            assert_eq!(
                listed(&mut w, 340.0, ApiFamily::Autopilot),
                [row("fleet-autopilot", "Available", from)]
            );
            let gone = FLEET[5].cluster_id(0);
            let e = w
                .show_cluster(at(340.0), scope_of(&gone, ApiFamily::Standard))
                .expect_err("gone");
            assert!(matches!(e, SimError::ClusterNotFound(_)), "{e:?}");
        }

        #[test]
        fn an_upgrade_without_a_workflow_has_an_upgrade_task_and_no_workflow() {
            let mut w = world(&[Builtin::Fleet], 1.0);
            let direct = FLEET[2].cluster_id(0);
            let s = scope_of(&direct, ApiFamily::Standard);
            assert!(w.list(at(90.0), s).expect("workflows").is_empty());
            let tasks = w.list_upgrade_tasks(at(90.0), s).expect("tasks").items;
            assert_eq!(tasks.len(), 1);
            assert_eq!(tasks[0].phase(), Some(&TaskState::Running));
            assert_eq!(tasks[0].progress_percent(), Some(50));
            let id = tasks[0].uid().expect("uid").to_string();
            let done = w.show_upgrade_task(at(150.0), s, &id).expect("task");
            assert_eq!(done.phase(), Some(&TaskState::Success));
            let spec = done.spec.expect("spec");
            assert_eq!(
                (spec.version.as_deref(), spec.target_version.as_deref()),
                (Some(FROM_VERSION), Some(TO_VERSION))
            );
            let broken = FLEET[3].cluster_id(0);
            let s = scope_of(&broken, ApiFamily::Standard);
            let cluster = w.show_cluster(at(130.0), s).expect("cluster");
            assert_eq!(cluster.reason(), Some("UpgradeFailed"));
            let failed = w.list_upgrade_tasks(at(130.0), s).expect("tasks").items;
            assert_eq!(failed[0].phase(), Some(&TaskState::Failed));
        }

        #[test]
        fn the_list_is_per_project_and_family_and_filters_like_the_query() {
            let mut w = world(&[Builtin::Fleet, Builtin::Success], 1.0);
            let q = |pairs: &[(&str, &str)]| {
                let pairs: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                ListQuery::of(&pairs)
            };
            let names = |w: &mut World, project: &str, query: &ListQuery| -> Vec<String> {
                w.list_clusters(at(100.0), ApiFamily::Standard, project, query)
                    .iter()
                    .filter_map(|c| c.name().map(str::to_string))
                    .collect()
            };
            assert_eq!(
                names(&mut w, PROJECT_ID, &q(&[])).len(),
                7,
                "fleet and success"
            );
            assert!(names(&mut w, "another-project", &q(&[])).is_empty());
            assert_eq!(
                names(&mut w, PROJECT_ID, &q(&[("status", "Upgrading")])),
                ["fleet-direct-00", "fleet-broken-00"]
            );
            assert_eq!(
                names(&mut w, PROJECT_ID, &q(&[("version", "v1.29")])).len(),
                0
            );
            let detailed = w.list_clusters(
                at(100.0),
                ApiFamily::Standard,
                PROJECT_ID,
                &q(&[("detail", "true")]),
            );
            assert!(detailed.iter().all(|c| {
                c.metadata
                    .as_ref()
                    .is_some_and(|m| m.annotations.contains_key("totalNodesNumber"))
            }));
        }
    }
}
