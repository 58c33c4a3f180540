//! The CCE API as the simulator serves it (cce-api.md §5–§9): path and method routing,
//! the request pipeline (faults → authentication → project check → operation), and
//! answers in CCE's shapes — `errorCode`/`errorMessage` bodies from "CCE", `error_code`/
//! `error_msg` bodies from "the gateway", and an `X-Request-Id` on every answer. IAM's
//! routes (`super::iam::server`) share the listener and the pipeline up to the faults, then
//! go to IAM instead of authentication.
//!
//! Status codes follow the real service where the docs say (§5, §9) and are marked
//! inferred otherwise: unknown path or method → 404 `APIGW.0101`; authentication → 401
//! `APIGW.0301`; a project the credential does not own → 403 `CCE.01403001` [INFERRED];
//! unknown cluster or workflow, or a cluster under the other API prefix → 404
//! `CCE.01404001`; bad body or precondition → 400 `CCE.01400001`; throttling → 429
//! `APIGW.0308` with `Retry-After`.
//!
//! I/O: it reads request bodies and sleeps for injected latency; the decisions are in the
//! pure modules ([`super::fault`], [`super::auth`], [`super::state`]) and the answers'
//! shapes in [`super::http`].

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use parking_lot::{Mutex, RwLock};
use percent_encoding::percent_decode_str;

use super::auth::{CredentialStore, claimed_credential};
use super::clock::Clock;
use super::fault::{Action, FaultSet};
use super::fleet::ListQuery;
use super::http::Answer;
use super::iam::{self, Iam};
use super::observe::{Observer, RequestRecord, route_name};
use super::route::Route;
use super::state::{Scope, SimError, World};
use crate::cce::ApiFamily;
use crate::cce::clusters::{ClusterList, Items};
use crate::cce::model::WorkflowList;
use crate::cce::sign::{self, SignableRequest};

/// Largest request body read; CCE bodies are tiny.
pub const MAX_BODY: usize = 1 << 20;

/// Everything the listeners share.
pub struct Sim {
    pub world: Mutex<World>,
    pub credentials: RwLock<CredentialStore>,
    pub faults: Mutex<FaultSet>,
    pub observer: Mutex<Observer>,
    pub iam: Iam,
    pub clock: Arc<dyn Clock>,
    /// Makes request ids differ between runs.
    request_salt: u64,
}

impl Sim {
    pub fn new(
        world: World,
        credentials: CredentialStore,
        faults: FaultSet,
        iam: Iam,
        clock: Arc<dyn Clock>,
    ) -> Sim {
        let request_salt = clock.now().as_nanosecond() as u64;
        Sim {
            world: Mutex::new(world),
            credentials: RwLock::new(credentials),
            faults: Mutex::new(faults),
            observer: Mutex::new(Observer::default()),
            iam,
            clock,
            request_salt,
        }
    }

    fn request_id(&self, seq: u64) -> String {
        format!("{:016x}{:016x}", self.request_salt, seq)
    }
}

/// What below a cluster a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `operation/upgradeworkflows[/{id}]`.
    Workflows(Option<String>),
    /// `operation/precheck/tasks[/{id}]`.
    PreChecks(Option<String>),
    /// `operation/upgrade/tasks[/{id}]`.
    UpgradeTasks(Option<String>),
    /// The cluster itself.
    Cluster,
    /// `operation/snapshot/tasks`, under `v3.1`.
    Snapshots,
    /// The project's clusters (ListClusters): the path names no cluster.
    ClusterList,
}

/// A CCE request path, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath {
    pub cluster_type: ApiFamily,
    pub project_id: String,
    /// Empty for [`Resource::ClusterList`].
    pub cluster_id: String,
    pub resource: Resource,
}

impl ApiPath {
    /// `/{api|autopilot}/v3/projects/{p}/clusters[/{c}[/...]]` for the resources above, and
    /// `/{api|autopilot}/v3.1/projects/{p}/clusters/{c}/operation/snapshot/tasks`.
    pub fn parse(path: &str) -> Option<ApiPath> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
                .filter(|s| !s.is_empty())
        };
        let (cluster_type, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => (ApiFamily::Standard, *version, rest),
            ["autopilot", version, rest @ ..] => (ApiFamily::Autopilot, *version, rest),
            _ => return None,
        };
        if let ("v3", ["projects", project, "clusters"]) = (version, rest) {
            return Some(ApiPath {
                cluster_type,
                project_id: decode(project)?,
                cluster_id: String::new(),
                resource: Resource::ClusterList,
            });
        }
        let ["projects", project, "clusters", cluster, below @ ..] = rest else {
            return None;
        };
        let resource = match (version, below) {
            ("v3", []) => Resource::Cluster,
            ("v3", ["operation", "upgradeworkflows"]) => Resource::Workflows(None),
            ("v3", ["operation", "upgradeworkflows", id]) => Resource::Workflows(Some(decode(id)?)),
            ("v3", ["operation", "precheck", "tasks"]) => Resource::PreChecks(None),
            ("v3", ["operation", "precheck", "tasks", id]) => {
                Resource::PreChecks(Some(decode(id)?))
            }
            ("v3", ["operation", "upgrade", "tasks"]) => Resource::UpgradeTasks(None),
            ("v3", ["operation", "upgrade", "tasks", id]) => {
                Resource::UpgradeTasks(Some(decode(id)?))
            }
            ("v3.1", ["operation", "snapshot", "tasks"]) => Resource::Snapshots,
            _ => return None,
        };
        Some(ApiPath {
            cluster_type,
            project_id: decode(project)?,
            cluster_id: decode(cluster)?,
            resource,
        })
    }

    /// The workflow id in the path, if it names one.
    pub fn workflow_id(&self) -> Option<&str> {
        match &self.resource {
            Resource::Workflows(id) => id.as_deref(),
            _ => None,
        }
    }

    /// The pre-check or upgrade task id in the path, if it names one.
    pub fn task_id(&self) -> Option<&str> {
        match &self.resource {
            Resource::PreChecks(id) | Resource::UpgradeTasks(id) => id.as_deref(),
            _ => None,
        }
    }

    pub fn route(&self, method: &Method) -> Option<Route> {
        let get = method == Method::GET;
        match &self.resource {
            Resource::Workflows(id) => match (method, id.is_some()) {
                (&Method::GET, true) => Some(Route::Show),
                (&Method::GET, false) => Some(Route::List),
                (&Method::POST, false) => Some(Route::Create),
                (&Method::PATCH, true) => Some(Route::Cancel),
                _ => None,
            },
            Resource::PreChecks(Some(_)) if get => Some(Route::ShowPrecheck),
            Resource::PreChecks(None) if get => Some(Route::ListPrechecks),
            Resource::UpgradeTasks(Some(_)) if get => Some(Route::ShowUpgradeTask),
            Resource::UpgradeTasks(None) if get => Some(Route::ListUpgradeTasks),
            Resource::Cluster if get => Some(Route::ShowCluster),
            Resource::Snapshots if get => Some(Route::ListSnapshots),
            Resource::ClusterList if get => Some(Route::ListClusters),
            _ => None,
        }
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            cluster_type: self.cluster_type,
            project_id: &self.project_id,
            cluster_id: &self.cluster_id,
        }
    }
}

/// CCE's answer to a refused operation.
fn sim_error_answer(e: &SimError) -> Answer {
    let (status, code) = match e {
        SimError::ClusterNotFound(_)
        | SimError::WorkflowNotFound(_)
        | SimError::TaskNotFound(_) => (StatusCode::NOT_FOUND, "CCE.01404001"),
        SimError::InvalidRequest(_)
        | SimError::ActiveWorkflowExists(_)
        | SimError::NotCancellable(_) => (StatusCode::BAD_REQUEST, "CCE.01400001"),
        SimError::Conflict(_) => (StatusCode::CONFLICT, "CCE.01409001"),
    };
    Answer::cce_error(status, code, &e.to_string())
}

/// The outcome of one request: an answer, or a connection to drop.
pub enum Reply {
    Answer(Response<Body>),
    Reset,
}

/// A routed request: its head, decoded once.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    parts: &'a axum::http::request::Parts,
    headers: &'a [(String, String)],
    query: &'a [(String, String)],
    /// The CCE path; `None` for IAM's routes.
    api: Option<&'a ApiPath>,
    route: Route,
    request_id: &'a str,
}

impl<'a> Ctx<'a> {
    /// The request as `cce::sign` sees it, with `body`.
    fn signable(&self, body: &'a [u8]) -> SignableRequest<'a> {
        SignableRequest {
            method: self.parts.method.as_str(),
            path: self.parts.uri.path(),
            query: self.query,
            headers: self.headers,
            body,
        }
    }
}

/// Details the pipeline learns on the way, for the request log.
#[derive(Default)]
struct Seen {
    credential: Option<String>,
    workflow_id: Option<String>,
    fault: Option<String>,
}

/// Serves one CCE request and records it.
pub async fn serve_request<B>(sim: &Sim, req: Request<B>) -> Reply
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let started = Instant::now();
    let arrived = sim.clock.now();
    let seq = sim.observer.lock().next_seq();
    let request_id = sim.request_id(seq);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let api = ApiPath::parse(&path);
    let route = match &api {
        Some(a) => a.route(&parts.method),
        None => iam::server::route(&parts.method, &path),
    };
    let mut seen = Seen {
        workflow_id: api
            .as_ref()
            .and_then(ApiPath::workflow_id)
            .map(str::to_string),
        ..Seen::default()
    };
    let answer = match route {
        Some(route) => {
            let headers = header_list(&parts);
            let query = sign::decode_query(parts.uri.query().unwrap_or_default());
            let ctx = Ctx {
                parts: &parts,
                headers: &headers,
                query: &query,
                api: api.as_ref(),
                route,
                request_id: &request_id,
            };
            pipeline(sim, &ctx, Body::new(body), &mut seen).await
        }
        None => Some(Answer::unknown_api(&request_id)),
    };
    let record = RequestRecord {
        seq,
        time: arrived,
        unix_ms: arrived.as_microsecond() as f64 / 1000.0,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        method: parts.method.to_string(),
        path,
        route: route_name(route),
        project_id: api.as_ref().map(|a| a.project_id.clone()),
        cluster_id: api
            .as_ref()
            .map(|a| a.cluster_id.clone())
            .filter(|c| !c.is_empty()),
        workflow_id: seen.workflow_id,
        task_id: api.as_ref().and_then(ApiPath::task_id).map(str::to_string),
        status: answer.as_ref().map_or(0, |a| a.status.as_u16()),
        error_code: answer.as_ref().and_then(|a| a.error_code.clone()),
        credential: seen.credential,
        request_id: request_id.clone(),
        fault: seen.fault,
    };
    tracing::debug!(
        seq,
        route = %record.route,
        status = record.status,
        path = %record.path,
        "request"
    );
    sim.observer.lock().record(record);
    match answer {
        Some(a) => Reply::Answer(a.into_response(&request_id)),
        None => Reply::Reset,
    }
}

/// Faults, then the real work; `None` means reset the connection.
async fn pipeline(sim: &Sim, ctx: &Ctx<'_>, body: Body, seen: &mut Seen) -> Option<Answer> {
    seen.credential = claimed_credential(&ctx.signable(&[]));
    let request_id = ctx.request_id;
    let decision = sim.faults.lock().decide(ctx.route, sim.clock.now());
    seen.fault = decision.label();
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let answer = match decision.action {
        Some(Action::Reset) => return None,
        Some(Action::Throttle { retry_after }) => Answer {
            retry_after: Some(retry_after),
            ..Answer::gateway_error(
                StatusCode::TOO_MANY_REQUESTS,
                "APIGW.0308",
                "The throttling threshold has been reached: policy user over ratelimit",
                request_id,
            )
        },
        Some(Action::Error { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            match status.as_u16() {
                502 => {
                    Answer::gateway_error(status, "APIGW.0202", "Backend unavailable", request_id)
                }
                504 => Answer::gateway_error(status, "APIGW.0203", "Backend timeout", request_id),
                code => Answer::cce_error(
                    status,
                    &format!("CCE.01{code}001"),
                    "Internal server error (injected by the simulator)",
                ),
            }
        }
        Some(Action::Forbidden) => Answer::cce_error(
            StatusCode::FORBIDDEN,
            "CCE.01403000",
            "the account has not been granted this API (injected by the simulator)",
        ),
        Some(Action::NotFound) => Answer::cce_error(
            StatusCode::NOT_FOUND,
            "CCE.01404001",
            "the resource does not exist (injected by the simulator)",
        ),
        Some(Action::Malformed | Action::Oversized { .. }) | None => {
            operate(sim, ctx, body, seen).await
        }
    };
    if let Some(Action::Oversized { bytes }) = decision.action {
        // Trailing whitespace keeps the answer valid JSON: only its size is wrong.
        let mut body = answer.body;
        let size = usize::try_from(bytes).unwrap_or(usize::MAX);
        body.resize(size.max(body.len()), b' ');
        return Some(Answer { body, ..answer });
    }
    if decision.action == Some(Action::Malformed) {
        // A body cut in half, labelled a success: what a broken proxy or a dropped
        // connection mid-body looks like to a client.
        let half = answer.body.len() / 2;
        return Some(Answer {
            status: StatusCode::OK,
            body: answer.body[..half.max(1).min(answer.body.len())].to_vec(),
            retry_after: None,
            error_code: None,
            extra_headers: Vec::new(),
        });
    }
    Some(answer)
}

fn header_list(parts: &axum::http::request::Parts) -> Vec<(String, String)> {
    parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Authentication, the project check and the operation itself; IAM's routes go to IAM.
async fn operate(sim: &Sim, ctx: &Ctx<'_>, body: Body, seen: &mut Seen) -> Answer {
    let Some(api) = ctx.api else {
        return to_iam(sim, ctx, body, seen).await;
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Answer::cce_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "CCE.01400001",
            "request body is too large or could not be read",
        );
    };
    let now = sim.clock.now();
    if let Err(refused) = admit(sim, ctx, api, &bytes, now, seen) {
        return refused;
    }
    let body_json = match request_json(ctx, &bytes) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let mut world = sim.world.lock();
    serve_cce(&mut world, now, ctx, api, &body_json, seen).unwrap_or_else(|e| sim_error_answer(&e))
}

/// An IAM route: its body, then IAM, which issues into the simulator's credentials.
async fn to_iam(sim: &Sim, ctx: &Ctx<'_>, body: Body, seen: &mut Seen) -> Answer {
    match axum::body::to_bytes(body, iam::server::MAX_IAM_BODY).await {
        Ok(bytes) => {
            let issuer = iam::server::Issuer {
                iam: &sim.iam,
                store: &sim.credentials,
            };
            let call = iam::server::Call {
                route: ctx.route,
                headers: ctx.headers,
                body: &bytes,
                request_id: ctx.request_id,
                now: sim.clock.now(),
            };
            iam::server::serve(&issuer, &call, &mut seen.credential).await
        }
        Err(_) => iam::server::too_large(ctx.request_id),
    }
}

/// Authentication, then whether the credential may act in the path's project; the refusal
/// as the gateway or CCE gives it.
fn admit(
    sim: &Sim,
    ctx: &Ctx<'_>,
    api: &ApiPath,
    bytes: &[u8],
    now: jiff::Timestamp,
    seen: &mut Seen,
) -> Result<(), Answer> {
    let received = ctx.signable(bytes);
    let identity = {
        let store = sim.credentials.read();
        store.authenticate(&received, now)
    };
    let identity = match identity {
        Ok(id) => id,
        Err(failure) => {
            seen.credential = failure.label.or(seen.credential.take());
            return Err(Answer::gateway_error(
                StatusCode::UNAUTHORIZED,
                "APIGW.0301",
                &failure.message,
                ctx.request_id,
            ));
        }
    };
    seen.credential = Some(identity.label.clone());
    let header_project = received.header("x-project-id");
    if !identity.projects.contains(&api.project_id)
        || header_project.is_some_and(|p| p != api.project_id)
    {
        return Err(Answer::cce_error(
            StatusCode::FORBIDDEN,
            "CCE.01403001",
            &format!(
                "the credential is not authorized for project {}",
                api.project_id
            ),
        ));
    }
    Ok(())
}

/// The JSON body of Create and cancel (`Null` for the reads), or CCE's refusal.
fn request_json(ctx: &Ctx<'_>, bytes: &[u8]) -> Result<serde_json::Value, Answer> {
    if !matches!(ctx.route, Route::Create | Route::Cancel) {
        return Ok(serde_json::Value::Null);
    }
    let json_type = ctx
        .parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_type {
        return Err(Answer::cce_error(
            StatusCode::BAD_REQUEST,
            "CCE.01400001",
            "Content-Type must be application/json",
        ));
    }
    serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| {
        Answer::cce_error(
            StatusCode::BAD_REQUEST,
            "CCE.01400001",
            &format!("request body is not valid JSON: {e}"),
        )
    })
}

/// The CCE operation the route names, on the world.
fn serve_cce(
    world: &mut World,
    now: jiff::Timestamp,
    ctx: &Ctx<'_>,
    api: &ApiPath,
    body_json: &serde_json::Value,
    seen: &mut Seen,
) -> Result<Answer, SimError> {
    let scope = api.scope();
    let workflow_id = api.workflow_id().unwrap_or_default();
    let id = api.task_id().unwrap_or_default();
    match ctx.route {
        Route::Show => world
            .show(now, scope, workflow_id)
            .map(|w| Answer::json(StatusCode::OK, &w)),
        Route::List => world.list(now, scope).map(|items| {
            let list = WorkflowList {
                kind: Some("List".into()),
                api_version: Some("v3".into()),
                items,
            };
            Answer::json(StatusCode::OK, &list)
        }),
        Route::Create => world.create(now, scope, body_json).map(|w| {
            seen.workflow_id = w.uid().map(str::to_string);
            Answer::json(StatusCode::CREATED, &w)
        }),
        Route::Cancel => world
            .cancel(now, scope, workflow_id, body_json)
            .map(|w| Answer::json(StatusCode::OK, &w)),
        Route::ShowPrecheck => world.show_pre_check(now, scope, id).map(Answer::ok),
        Route::ListPrechecks => world.list_pre_checks(now, scope).map(Answer::ok),
        Route::ShowUpgradeTask => world.show_upgrade_task(now, scope, id).map(Answer::ok),
        Route::ListUpgradeTasks => world.list_upgrade_tasks(now, scope).map(Answer::ok),
        Route::ShowCluster => world.show_cluster(now, scope).map(Answer::ok),
        Route::ListSnapshots => world.list_snapshots(now, scope).map(Answer::ok),
        Route::ListClusters => {
            let query = ListQuery::of(ctx.query);
            let items = world.list_clusters(now, api.cluster_type, &api.project_id, &query);
            Ok(Answer::ok(ClusterList {
                kind: Some("Cluster".into()),
                api_version: Some("v3".into()),
                items: Items {
                    kept: items,
                    ..Items::default()
                },
            }))
        }
        // A CCE path never routes to IAM (`ApiPath::route`); answered as an unknown API.
        Route::IamIdToken
        | Route::IamSecurityToken
        | Route::StsAssumeWithOidc
        | Route::PodIdentity => Ok(Answer::unknown_api(ctx.request_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_for_both_prefixes_and_decode_ids() {
        let p =
            ApiPath::parse("/api/v3/projects/p1/clusters/c%201/operation/upgradeworkflows/w%2F1")
                .expect("parse");
        assert_eq!(p.cluster_type, ApiFamily::Standard);
        assert_eq!(p.project_id, "p1");
        assert_eq!(p.cluster_id, "c 1");
        assert_eq!(p.workflow_id(), Some("w/1"));
        assert_eq!(p.route(&Method::GET), Some(Route::Show));
        assert_eq!(p.route(&Method::PATCH), Some(Route::Cancel));
        assert_eq!(p.route(&Method::POST), None);
        assert_eq!(p.route(&Method::DELETE), None);
        let p = ApiPath::parse("/autopilot/v3/projects/p/clusters/c/operation/upgradeworkflows")
            .expect("parse");
        assert_eq!(p.cluster_type, ApiFamily::Autopilot);
        assert_eq!(p.route(&Method::GET), Some(Route::List));
        assert_eq!(p.route(&Method::POST), Some(Route::Create));
        assert_eq!(p.route(&Method::PATCH), None);
        for bad in [
            "",
            "/",
            "/api/v2/projects/p/clusters/c/operation/upgradeworkflows",
            "/api/v3/projects//clusters/c/operation/upgradeworkflows",
            "/api/v3/projects/p/clusters/c/operation/upgradeworkflows/",
            "/api/v3/projects/p/clusters/c/operation/upgradeworkflows/w/x",
            "/api/v3/projects/p/clusters/c/upgradeworkflows",
            "/prefix/api/v3/projects/p/clusters/c/operation/upgradeworkflows",
            "/api/v3/projects/%FF/clusters/c/operation/upgradeworkflows",
            "/api/v3/projects/p/clusters/c/",
            "/api/v3/projects/p/clusters/c/operation/snapshot/tasks",
            "/api/v3.1/projects/p/clusters/c/operation/precheck/tasks",
            "/api/v3.1/projects/p/clusters/c",
            "/api/v3/projects/p/clusters/c/operation/precheck/tasks/",
            "/api/v3/projects/p/clusters/c/operation/upgrade/tasks/t/x",
            "/api/v3/projects/p/clusters/",
            "/api/v3.1/projects/p/clusters",
            "/api/v3/projects//clusters",
            "/api/v3/projects/p",
        ] {
            assert_eq!(ApiPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_project_s_clusters_are_listed_under_both_prefixes_and_only_read() {
        for (path, family) in [
            ("/api/v3/projects/p%201/clusters", ApiFamily::Standard),
            (
                "/autopilot/v3/projects/p%201/clusters",
                ApiFamily::Autopilot,
            ),
        ] {
            let p = ApiPath::parse(path).expect(path);
            assert_eq!(
                (p.cluster_type, p.project_id.as_str(), &p.resource),
                (family, "p 1", &Resource::ClusterList)
            );
            assert_eq!(p.route(&Method::GET), Some(Route::ListClusters));
            for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
                assert_eq!(p.route(&method), None, "{method} {path}");
            }
        }
    }

    #[test]
    fn diagnostic_paths_parse_for_both_prefixes_and_are_read_only() {
        let cases = [
            ("v3", "", Resource::Cluster, Route::ShowCluster),
            (
                "v3",
                "/operation/precheck/tasks/t%2F1",
                Resource::PreChecks(Some("t/1".into())),
                Route::ShowPrecheck,
            ),
            (
                "v3",
                "/operation/precheck/tasks",
                Resource::PreChecks(None),
                Route::ListPrechecks,
            ),
            (
                "v3",
                "/operation/upgrade/tasks/u1",
                Resource::UpgradeTasks(Some("u1".into())),
                Route::ShowUpgradeTask,
            ),
            (
                "v3",
                "/operation/upgrade/tasks",
                Resource::UpgradeTasks(None),
                Route::ListUpgradeTasks,
            ),
            (
                "v3.1",
                "/operation/snapshot/tasks",
                Resource::Snapshots,
                Route::ListSnapshots,
            ),
        ];
        for root in ["api", "autopilot"] {
            for (version, below, resource, route) in &cases {
                let path = format!("/{root}/{version}/projects/p/clusters/c{below}");
                let p = ApiPath::parse(&path).expect(&path);
                assert_eq!(&p.resource, resource, "{path}");
                assert_eq!(p.route(&Method::GET), Some(*route), "{path}");
                assert_eq!(p.workflow_id(), None);
                assert_eq!(
                    p.task_id().is_some(),
                    below.ends_with("/t%2F1") || below.ends_with("/u1")
                );
                for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
                    assert_eq!(p.route(&method), None, "{method} {path}");
                }
            }
        }
    }
}
