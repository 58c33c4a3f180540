//! The admin API, served on its own listener (never next to the CCE paths), for tests,
//! benchmarks and demos: inspect and move workflows, add clusters and workflows, set
//! faults, rotate credentials, and read counters and the request log. Bodies are JSON
//! (YAML is accepted too); errors are `{"error": "..."}`. I/O: HTTP handlers over the
//! shared [`Sim`]; what they do to it is in the pure modules.
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/_sim/health` | | `{"status":"ok"}` |
//! | GET | `/_sim/info` | | speed, start, onCreate timeline, scenarios, counts |
//! | GET | `/_sim/workflows` | | every workflow: `[{projectID, clusterType, clusterID, workflowID, timeline, visible, stepsLeft, nextStepAt?, workflow}]` |
//! | GET | `/_sim/workflows/{id}` | | one of those, 404 if unknown |
//! | POST | `/_sim/workflows` | `{clusterID, targetVersion, clusterVersion?, id?, timeline?}` | 201 + the workflow (no auth, same rules as Create) |
//! | POST | `/_sim/workflows/{id}/advance` | `{seconds}` (scenario s, may be negative) or `{steps}` or `{toEnd: true}` | the workflow |
//! | POST | `/_sim/advance` | same, for every workflow | `{"workflows": n}` |
//! | GET | `/_sim/clusters` | | `[{projectID, clusterID, type, version, name, phase?, workflows}]` (`phase` absent while CCE does not know the cluster) |
//! | POST | `/_sim/clusters` | `{id, version, type?, projectID?, name?, category?, labels?}` | 201 + the cluster, there from now on |
//! | GET | `/_sim/faults` | | `[{id, kind, route?, count?, …, setAt, fired}]` |
//! | POST | `/_sim/faults` | a fault spec or a list of them | 201 `{"ids": [...]}` |
//! | DELETE | `/_sim/faults` | | `{"removed": n}` |
//! | DELETE | `/_sim/faults/{id}` | | 204, 404 if unknown |
//! | GET | `/_sim/stats` | | `{total, byRoute, byStatus, byCredential, counts: [{route, status, credential, count}], logDropped}` |
//! | GET | `/_sim/requests?route=&workflowID=&taskID=&clusterID=&credential=&status=&since=&limit=` | | `{"requests": [{seq, time, unixMs, durationMs, method, path, route, projectID, clusterID, workflowID, taskID, status, errorCode, credential, requestId, fault}]}` |
//! | POST | `/_sim/reset` | | clears counters and the request log; `{"status":"ok"}` |
//! | GET | `/_sim/credentials` | | `[{kind, id, projectIDs}]` (no secrets) |
//! | PUT | `/_sim/credentials` | a credentials list (file format) | replaces all; the new list |
//! | POST | `/_sim/credentials` | a credentials list | adds or replaces those keys/tokens; the new list |
//! | DELETE | `/_sim/credentials/{id}` | | 204, 404 if unknown (id: access key or token fingerprint) |
//!
//! IAM's routes (`/_sim/iam…`) are listed in [`super::iam::admin`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{CredentialDef, CredentialStore};
use super::builtin;
use super::fault::FaultSpec;
use super::fleet::{check_category, check_name};
use super::flow::Advance;
use super::http::{AdminError, AdminResult as Result, bad, body, not_found, ok_json};
use super::iam;
use super::observe::Filter;
use super::plan::{ClusterPlan, Summary};
use super::server::Sim;
use super::state::{NewWorkflow, SimError};
use crate::cce::ApiFamily;

/// What the admin API knows beyond the shared state.
pub struct Admin {
    pub sim: Arc<Sim>,
    pub summaries: Vec<Summary>,
}

type Shared = State<Arc<Admin>>;

impl From<SimError> for AdminError {
    fn from(e: SimError) -> Self {
        let status = match e {
            SimError::ClusterNotFound(_)
            | SimError::WorkflowNotFound(_)
            | SimError::TaskNotFound(_) => StatusCode::NOT_FOUND,
            SimError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        AdminError(status, e.to_string())
    }
}

pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route(
            "/_sim/health",
            get(|| async { ok_json(json!({"status": "ok"})) }),
        )
        .route("/_sim/info", get(info))
        .route("/_sim/workflows", get(workflows).post(create_workflow))
        .route("/_sim/workflows/{id}", get(workflow))
        .route("/_sim/workflows/{id}/advance", post(advance_one))
        .route("/_sim/advance", post(advance_all))
        .route("/_sim/clusters", get(clusters).post(add_cluster))
        .route(
            "/_sim/faults",
            get(faults).post(add_faults).delete(clear_faults),
        )
        .route("/_sim/faults/{id}", delete(remove_fault))
        .route("/_sim/stats", get(stats))
        .route("/_sim/requests", get(requests))
        .route("/_sim/reset", post(reset))
        .route(
            "/_sim/credentials",
            get(credentials)
                .put(replace_credentials)
                .post(upsert_credentials),
        )
        .route("/_sim/credentials/{id}", delete(remove_credential))
        .merge(iam::admin::routes(Arc::clone(&admin.sim)))
        .fallback(|| async { not_found("no such admin route") })
        .with_state(admin)
}

async fn info(State(a): Shared) -> Response {
    let world = a.sim.world.lock();
    ok_json(json!({
        "speed": world.speed(),
        "start": world.start().to_string(),
        "onCreate": world.on_create().name,
        "workflows": world.workflow_count(),
        "clusters": world.cluster_count(),
        "scenarios": a.summaries,
    }))
}

async fn workflows(State(a): Shared) -> Response {
    let now = a.sim.clock.now();
    ok_json(a.sim.world.lock().dump(now))
}

async fn workflow(State(a): Shared, Path(id): Path<String>) -> Result<Response> {
    let now = a.sim.clock.now();
    let view = a.sim.world.lock().get(now, &id);
    view.map(ok_json)
        .ok_or_else(|| not_found(format!("workflow {id} not found")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    #[serde(rename = "clusterID")]
    cluster_id: String,
    target_version: String,
    #[serde(default)]
    cluster_version: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    timeline: Option<String>,
}

async fn create_workflow(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let req: CreateBody = body(&bytes)?;
    let timeline = match req.timeline.as_deref() {
        None => None,
        Some(name) => {
            Some(builtin::timeline(name).ok_or_else(|| bad(format!("unknown timeline {name}")))?)
        }
    };
    if req.id.as_deref().is_some_and(str::is_empty) {
        return Err(bad("id must not be empty"));
    }
    let now = a.sim.clock.now();
    let mut world = a.sim.world.lock();
    let created = world.create_workflow(
        now,
        &req.cluster_id,
        NewWorkflow {
            id: req.id,
            cluster_version: req.cluster_version,
            target_version: req.target_version,
            timeline,
        },
    )?;
    let id = created.uid().unwrap_or_default().to_string();
    let view = world.get(now, &id).ok_or_else(|| not_found(id))?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdvanceBody {
    seconds: Option<f64>,
    steps: Option<u64>,
    #[serde(default)]
    to_end: bool,
}

fn advance_of(bytes: &Bytes) -> Result<Advance> {
    let b: AdvanceBody = body(bytes)?;
    match (b.seconds, b.steps, b.to_end) {
        (Some(s), None, false) => Ok(Advance::Seconds(s)),
        (None, Some(n), false) => Ok(Advance::Steps(n)),
        (None, None, true) => Ok(Advance::ToEnd),
        _ => Err(bad("give exactly one of seconds, steps or toEnd: true")),
    }
}

async fn advance_one(State(a): Shared, Path(id): Path<String>, bytes: Bytes) -> Result<Response> {
    let by = advance_of(&bytes)?;
    let now = a.sim.clock.now();
    let mut world = a.sim.world.lock();
    world.advance(now, Some(&id), by)?;
    let view = world.get(now, &id).ok_or_else(|| not_found(id))?;
    Ok(ok_json(view))
}

async fn advance_all(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let by = advance_of(&bytes)?;
    let now = a.sim.clock.now();
    let n = a.sim.world.lock().advance(now, None, by)?;
    Ok(ok_json(json!({"workflows": n})))
}

async fn clusters(State(a): Shared) -> Response {
    let now = a.sim.clock.now();
    ok_json(a.sim.world.lock().cluster_views(now))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClusterBody {
    id: String,
    version: String,
    #[serde(rename = "type", default)]
    cluster_type: ApiFamily,
    #[serde(rename = "projectID", default)]
    project_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

async fn add_cluster(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let c: ClusterBody = body(&bytes)?;
    if c.id.is_empty() || c.version.is_empty() {
        return Err(bad("id and version are required"));
    }
    if let Some(name) = &c.name {
        check_name(name).map_err(bad)?;
    }
    check_category(c.category.as_deref(), c.cluster_type).map_err(bad)?;
    let plan = ClusterPlan {
        id: c.id.clone(),
        project_id: c.project_id.unwrap_or_else(|| builtin::PROJECT_ID.into()),
        cluster_type: c.cluster_type,
        version: c.version,
        name: c.name,
        category: c.category,
        labels: c.labels,
        ..ClusterPlan::default()
    };
    let now = a.sim.clock.now();
    let mut world = a.sim.world.lock();
    world.add_cluster_now(now, &plan)?;
    let view = world
        .cluster_views(now)
        .into_iter()
        .find(|v| v.cluster_id == c.id);
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

async fn faults(State(a): Shared) -> Response {
    let now = a.sim.clock.now();
    ok_json(a.sim.faults.lock().list(now))
}

async fn add_faults(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let specs = match body::<Value>(&bytes)? {
        Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<std::result::Result<Vec<FaultSpec>, _>>(),
        other => serde_json::from_value(other).map(|one| vec![one]),
    }
    .map_err(|e| bad(format!("invalid fault: {e}")))?;
    for spec in &specs {
        spec.validate().map_err(bad)?;
    }
    let now = a.sim.clock.now();
    let mut set = a.sim.faults.lock();
    let ids = specs
        .into_iter()
        .map(|s| set.add(s, now).map_err(bad))
        .collect::<Result<Vec<u64>>>()?;
    Ok((StatusCode::CREATED, axum::Json(json!({"ids": ids}))).into_response())
}

async fn clear_faults(State(a): Shared) -> Response {
    let now = a.sim.clock.now();
    let mut set = a.sim.faults.lock();
    let removed = set.list(now).len();
    set.clear();
    ok_json(json!({"removed": removed}))
}

async fn remove_fault(State(a): Shared, Path(id): Path<u64>) -> Result<StatusCode> {
    if a.sim.faults.lock().remove(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(format!("fault {id} not found")))
    }
}

async fn stats(State(a): Shared) -> Response {
    ok_json(a.sim.observer.lock().stats())
}

async fn requests(State(a): Shared, Query(filter): Query<Filter>) -> Response {
    ok_json(json!({"requests": a.sim.observer.lock().requests(&filter)}))
}

async fn reset(State(a): Shared) -> Response {
    a.sim.observer.lock().reset();
    ok_json(json!({"status": "ok"}))
}

fn credential_views(a: &Admin) -> Response {
    let store = a.sim.credentials.read();
    ok_json(store.views())
}

async fn credentials(State(a): Shared) -> Response {
    credential_views(&a)
}

async fn replace_credentials(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let defs: Vec<CredentialDef> = body(&bytes)?;
    let store = CredentialStore::from_defs(&defs).map_err(bad)?;
    *a.sim.credentials.write() = store;
    Ok(credential_views(&a))
}

async fn upsert_credentials(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let defs: Vec<CredentialDef> = body(&bytes)?;
    a.sim.credentials.write().upsert(&defs).map_err(bad)?;
    Ok(credential_views(&a))
}

async fn remove_credential(State(a): Shared, Path(id): Path<String>) -> Result<StatusCode> {
    let removed = a.sim.credentials.write().remove(&id);
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(format!("credential {id} not found")))
    }
}
