//! The CCE upgrade-workflow HTTP client: one connection pool for the whole process, calls
//! that each name their own target (endpoint, project, cluster, credentials), requests
//! signed exactly as sent, and every failure turned into a classified [`CceError`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use url::Url;

use super::clusters::ClusterList;
use super::credentials::Credentials;
use super::diagnostics::{
    Cluster, PreCheckTask, PreCheckTaskList, SnapshotTaskList, UpgradeTask, UpgradeTaskList,
};
use super::endpoint::EndpointPolicy;
use super::error::{ApiFailure, CceError, Secrets, parse_error_body, parse_retry_after, sanitize};
use super::family::ApiFamily;
use super::model::{CreateWorkflowRequest, UpdateWorkflowRequest, Workflow, WorkflowList};
use super::sign;

/// `cce-upgrade-watch/<version>`.
pub const USER_AGENT: &str = concat!("cce-upgrade-watch/", env!("CARGO_PKG_VERSION"));

/// A workflow answer is a few KiB and a pre-check of a large cluster a few hundred; anything
/// this large is not CCE talking.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Long enough to recognise an HTML error page, short enough for a condition message.
const EXCERPT_CHARS: usize = 120;
const MESSAGE_CHARS: usize = 300;
const ENCODED_AUTH_MESSAGE_CHARS: usize = 8192;
const REQUEST_ID_CHARS: usize = 128;

/// The current time; injectable so signatures and `Retry-After` dates are testable.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Settings fixed for the life of a [`CceClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub connect_timeout: Duration,
    /// Whole exchange: connect, send, and read the complete answer.
    pub request_timeout: Duration,
    /// Extra PEM CA certificates trusted on top of the built-in roots.
    pub ca_bundle: Option<PathBuf>,
    /// Where CCE calls may go.
    pub policy: EndpointPolicy,
    /// Where credentials may be exchanged (IAM and STS; see [`super::iam::Exchanger`]).
    pub iam_policy: EndpointPolicy,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            ca_bundle: None,
            policy: EndpointPolicy::cce(),
            iam_policy: EndpointPolicy::iam(),
            user_agent: USER_AGENT.to_string(),
        }
    }
}

impl ClientConfig {
    /// The default allow-lists plus `cce` and `iam` entries, with insecure endpoints
    /// allowed for both services or for neither.
    pub fn with_endpoints<S: AsRef<str>>(
        mut self,
        cce: &[S],
        iam: &[S],
        allow_insecure: bool,
    ) -> Result<Self, CceError> {
        self.policy = EndpointPolicy {
            allow_insecure,
            ..EndpointPolicy::cce().with_extra(cce)?
        };
        self.iam_policy = EndpointPolicy {
            allow_insecure,
            ..EndpointPolicy::iam().with_extra(iam)?
        };
        Ok(self)
    }

    /// Whether either service's checks are lifted (the metric and the start-up warning).
    pub fn allows_insecure_endpoints(&self) -> bool {
        self.policy.allow_insecure || self.iam_policy.allow_insecure
    }
}

/// Who and what a call is about. One client serves many targets.
#[derive(Debug, Clone)]
pub struct Target {
    /// From [`EndpointPolicy::resolve`]; checked against the policy again on every call.
    pub endpoint: Url,
    pub project_id: String,
    pub cluster_id: String,
    pub family: ApiFamily,
    pub credentials: Credentials,
}

/// A decoded answer and the request id CCE gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response<T> {
    pub body: T,
    pub request_id: Option<String>,
}

/// The CCE client. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct CceClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    clock: Clock,
}

impl fmt::Debug for CceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CceClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CceClient {
    pub fn new(config: ClientConfig) -> Result<Self, CceError> {
        let http = http_client(&config, !config.policy.allow_insecure)?;
        Ok(Self {
            http,
            config: Arc::new(config),
            clock: Arc::new(Timestamp::now),
        })
    }

    /// Replaces the clock used for X-Sdk-Date and `Retry-After` dates.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// [`EndpointPolicy::resolve`] with this client's policy.
    pub fn resolve_endpoint(
        &self,
        region: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<Url, CceError> {
        self.config.policy.resolve(region, endpoint)
    }

    /// ShowUpgradeWorkFlow.
    pub async fn show_workflow(
        &self,
        target: &Target,
        workflow_id: &str,
    ) -> Result<Response<Workflow>, CceError> {
        let path = cluster_path(target, V3, WORKFLOWS, Some(("workflow id", workflow_id)))?;
        self.call(target, Method::GET, &path, Vec::new()).await
    }

    /// ListUpgradeWorkFlows, in CCE's order (see [`WorkflowList::newest_first`]).
    pub async fn list_workflows(
        &self,
        target: &Target,
    ) -> Result<Response<WorkflowList>, CceError> {
        let path = cluster_path(target, V3, WORKFLOWS, None)?;
        self.call(target, Method::GET, &path, Vec::new()).await
    }

    /// CreateUpgradeWorkFlow.
    pub async fn create_workflow(
        &self,
        target: &Target,
        request: &CreateWorkflowRequest,
    ) -> Result<Response<Workflow>, CceError> {
        let path = cluster_path(target, V3, WORKFLOWS, None)?;
        self.call(target, Method::POST, &path, to_json(request)?)
            .await
    }

    /// UpgradeWorkFlowUpdate with `{"status":{"phase":"Cancel"}}`, the only update CCE allows.
    pub async fn cancel_workflow(
        &self,
        target: &Target,
        workflow_id: &str,
    ) -> Result<Response<Workflow>, CceError> {
        let path = cluster_path(target, V3, WORKFLOWS, Some(("workflow id", workflow_id)))?;
        let body = to_json(&UpdateWorkflowRequest::cancel())?;
        self.call(target, Method::PATCH, &path, body).await
    }

    /// ShowPreCheck: the findings of the pre-check a PreCheck point's `taskID` names.
    /// Diagnostic reads (this and the five below) fail like the workflow reads;
    /// [`CceError::is_denied_or_absent`] tells the 403/404 that mean "diagnostics unavailable".
    pub async fn show_pre_check(
        &self,
        target: &Target,
        task_id: &str,
    ) -> Result<Response<PreCheckTask>, CceError> {
        let path = cluster_path(target, V3, PRE_CHECKS, Some(("task id", task_id)))?;
        self.get(target, &path).await
    }

    /// ListPreCheckTasks: every pre-check of the cluster (see [`PreCheckTaskList::find`]).
    pub async fn list_pre_check_tasks(
        &self,
        target: &Target,
    ) -> Result<Response<PreCheckTaskList>, CceError> {
        let path = cluster_path(target, V3, PRE_CHECKS, None)?;
        self.get(target, &path).await
    }

    /// The pre-check a PreCheck point's `taskID` names: ShowPreCheck, and when that answers
    /// 404, ListPreCheckTasks matched by uid (two requests then). A list without the task
    /// returns ShowPreCheck's 404.
    pub async fn pre_check_for_task(
        &self,
        target: &Target,
        task_id: &str,
    ) -> Result<Response<PreCheckTask>, CceError> {
        match self.show_pre_check(target, task_id).await {
            Err(not_found @ CceError::NotFound(_)) => {
                let list = self.list_pre_check_tasks(target).await?;
                match list.body.find(task_id) {
                    Some(task) => Ok(Response {
                        body: task.clone(),
                        request_id: list.request_id,
                    }),
                    None => Err(not_found),
                }
            }
            other => other,
        }
    }

    /// ShowUpgradeClusterTask: phase and progress of the task a Cluster point's `taskID` names.
    pub async fn show_upgrade_cluster_task(
        &self,
        target: &Target,
        task_id: &str,
    ) -> Result<Response<UpgradeTask>, CceError> {
        let path = cluster_path(target, V3, UPGRADE_TASKS, Some(("task id", task_id)))?;
        self.get(target, &path).await
    }

    /// ListUpgradeClusterTasks: every upgrade task of the cluster.
    pub async fn list_upgrade_cluster_tasks(
        &self,
        target: &Target,
    ) -> Result<Response<UpgradeTaskList>, CceError> {
        let path = cluster_path(target, V3, UPGRADE_TASKS, None)?;
        self.get(target, &path).await
    }

    /// ShowCluster: the cluster's phase, reason and message.
    pub async fn show_cluster(&self, target: &Target) -> Result<Response<Cluster>, CceError> {
        let path = cluster_path(target, V3, "", None)?;
        self.get(target, &path).await
    }

    /// ListClusters, or ListAutopilotClusters for the Autopilot family: every cluster of
    /// the target's project in one answer (CCE does not page it), kept up to
    /// [`crate::limits::MAX_CLUSTERS`] with the rest counted. `target.cluster_id` is not
    /// part of the call and may be empty. Filters are applied by the caller: CCE's `version`
    /// filter is undocumented and its `type` is the architecture, not the category.
    pub async fn list_clusters(&self, target: &Target) -> Result<Response<ClusterList>, CceError> {
        let path = project_path(target, V3, "/clusters")?;
        self.get(target, &path).await
    }

    /// ListClusterMasterSnapshotTasks (a `v3.1` path): the master snapshot tasks, the one a
    /// Snapshot point's `taskID` names among them (see [`SnapshotTaskList::find`]).
    pub async fn list_snapshot_tasks(
        &self,
        target: &Target,
    ) -> Result<Response<SnapshotTaskList>, CceError> {
        let path = cluster_path(target, V3_1, SNAPSHOT_TASKS, None)?;
        self.get(target, &path).await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        target: &Target,
        path: &str,
    ) -> Result<Response<T>, CceError> {
        self.call(target, Method::GET, path, Vec::new()).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        target: &Target,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Response<T>, CceError> {
        self.config.policy.check(&target.endpoint)?;
        let mut url = target.endpoint.clone();
        url.set_path(path);
        url.set_query(None);
        let headers = self.headers(target, &method, &url, &body)?;
        let carried = carried_secrets(&target.credentials, &headers);
        let secrets = Secrets::new(carried.iter().map(String::as_str));

        let sent = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e, "waiting for the answer", &secrets))?;
        let status = sent.status();
        let request_id = sent
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| sanitize(v, REQUEST_ID_CHARS, &secrets))
            .filter(|v| !v.is_empty());
        let retry_after = sent
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, (self.clock)()));
        let bytes = self.read_body(sent, status, &request_id, &secrets).await?;

        if status.is_success() {
            return decode(status, request_id, &bytes, &secrets);
        }
        if status.is_client_error() || status.is_server_error() {
            return Err(CceError::from_failure(failure(
                status,
                request_id,
                retry_after,
                &bytes,
                &secrets,
            )));
        }
        Err(CceError::InvalidResponse {
            status: status.as_u16(),
            request_id,
            reason: "unexpected HTTP status (redirects are not followed)".into(),
            excerpt: excerpt(&bytes, &secrets),
        })
    }

    /// Exactly the headers sent; with AK/SK all of them but Authorization are signed, as
    /// Huawei's SDK does (User-Agent included).
    fn headers(
        &self,
        target: &Target,
        method: &Method,
        url: &Url,
        body: &[u8],
    ) -> Result<HeaderMap, CceError> {
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => {
                return Err(CceError::InvalidEndpoint {
                    reason: "the endpoint has no host".into(),
                });
            }
        };
        let mut headers: Vec<(String, String)> = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Host".into(), host),
            ("User-Agent".into(), self.config.user_agent.clone()),
        ];
        match &target.credentials {
            Credentials::Token(token) => {
                headers.push(("X-Auth-Token".into(), token.expose_secret().to_string()));
            }
            Credentials::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                headers.push(("X-Project-Id".into(), target.project_id.clone()));
                headers.push((sign::SDK_DATE_HEADER.into(), sign::sdk_date((self.clock)())));
                if let Some(token) = security_token {
                    headers.push(("X-Security-Token".into(), token.expose_secret().to_string()));
                }
                let signable = sign::SignableRequest {
                    method: method.as_str(),
                    path: url.path(),
                    query: &[],
                    headers: &headers,
                    body,
                };
                let signed =
                    sign::sign(access_key, secret_key.expose_secret().as_bytes(), &signable)
                        .map_err(|e| CceError::InvalidConfig {
                            reason: format!("cannot sign the request: {e}"),
                        })?;
                headers.push(("Authorization".into(), signed.authorization));
            }
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header_name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| CceError::InvalidConfig {
                    reason: format!("invalid header name {name}"),
                })?;
            // The error names the header, never its value (it may be a credential).
            let mut header_value =
                HeaderValue::from_str(&value).map_err(|_| CceError::InvalidConfig {
                    reason: format!("the {name} header would contain characters HTTP forbids"),
                })?;
            if matches!(
                name.as_str(),
                "X-Auth-Token" | "X-Security-Token" | "Authorization"
            ) {
                header_value.set_sensitive(true);
            }
            map.insert(header_name, header_value);
        }
        Ok(map)
    }

    async fn read_body(
        &self,
        response: reqwest::Response,
        status: StatusCode,
        request_id: &Option<String>,
        secrets: &Secrets<'_>,
    ) -> Result<Vec<u8>, CceError> {
        read_bounded(&self.config, response, status, request_id, secrets).await
    }

    fn transport_error(
        &self,
        e: &reqwest::Error,
        stage: &'static str,
        secrets: &Secrets<'_>,
    ) -> CceError {
        transport_error(&self.config, e, stage, secrets)
    }
}

/// The HTTP client of `config`: its timeouts and CA bundle, no redirects (like the SDK; and
/// a redirect must never carry a signed request or a token elsewhere).
pub(crate) fn http_client(
    config: &ClientConfig,
    https_only: bool,
) -> Result<reqwest::Client, CceError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(https_only);
    if let Some(path) = &config.ca_bundle {
        for cert in read_ca_bundle(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| CceError::InvalidConfig {
        reason: format!(
            "cannot build the HTTP client: {}",
            error_chain(&e, &Secrets::default())
        ),
    })
}

/// The whole body, refused once it grows past the answer cap.
pub(crate) async fn read_bounded(
    config: &ClientConfig,
    mut response: reqwest::Response,
    status: StatusCode,
    request_id: &Option<String>,
    secrets: &Secrets<'_>,
) -> Result<Vec<u8>, CceError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(config, &e, "reading the answer", secrets))?
    {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(CceError::InvalidResponse {
                status: status.as_u16(),
                request_id: request_id.clone(),
                reason: format!("the body is larger than {} MiB", MAX_BODY_BYTES >> 20),
                excerpt: excerpt(&bytes, secrets),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

pub(crate) fn transport_error(
    config: &ClientConfig,
    e: &reqwest::Error,
    stage: &'static str,
    secrets: &Secrets<'_>,
) -> CceError {
    if e.is_timeout() {
        let (stage, after) = if e.is_connect() {
            ("connecting", config.connect_timeout)
        } else {
            (stage, config.request_timeout)
        };
        return CceError::Timeout { stage, after };
    }
    let what = if e.is_connect() {
        "connection failed"
    } else {
        "the exchange failed"
    };
    CceError::Transport {
        detail: format!("{what}: {}", error_chain(e, secrets)),
    }
}

const V3: &str = "v3";
const V3_1: &str = "v3.1";
const WORKFLOWS: &str = "/operation/upgradeworkflows";
const PRE_CHECKS: &str = "/operation/precheck/tasks";
const UPGRADE_TASKS: &str = "/operation/upgrade/tasks";
const SNAPSHOT_TASKS: &str = "/operation/snapshot/tasks";

/// One path segment: an id percent-encoded with nothing but unreserved characters left as
/// is, refused when empty (`what` names it).
fn segment(what: &str, id: &str) -> Result<String, CceError> {
    if id.is_empty() {
        Err(CceError::InvalidConfig {
            reason: format!("the {what} is empty"),
        })
    } else {
        Ok(sign::encode_component(id))
    }
}

/// `/{api|autopilot}/{version}/projects/{p}{below}`.
fn project_path(target: &Target, version: &str, below: &str) -> Result<String, CceError> {
    let prefix = target.family.path_root();
    Ok(format!(
        "/{prefix}/{version}/projects/{}{below}",
        segment("project id", &target.project_id)?
    ))
}

/// `/{api|autopilot}/{version}/projects/{p}/clusters/{c}{below}[/{id}]`; `id` is (what it
/// names, the id).
fn cluster_path(
    target: &Target,
    version: &str,
    below: &str,
    id: Option<(&str, &str)>,
) -> Result<String, CceError> {
    let cluster = format!(
        "/clusters/{}{below}",
        segment("cluster id", &target.cluster_id)?
    );
    let mut path = project_path(target, version, &cluster)?;
    if let Some((what, id)) = id {
        path.push('/');
        path.push_str(&segment(what, id)?);
    }
    Ok(path)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CceError> {
    serde_json::to_vec(value).map_err(|e| CceError::InvalidConfig {
        reason: format!("cannot encode the request body: {e}"),
    })
}

fn decode<T: DeserializeOwned>(
    status: StatusCode,
    request_id: Option<String>,
    bytes: &[u8],
    secrets: &Secrets<'_>,
) -> Result<Response<T>, CceError> {
    let invalid = |reason: String| CceError::InvalidResponse {
        status: status.as_u16(),
        request_id: request_id.clone(),
        reason,
        excerpt: excerpt(bytes, secrets),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the body is empty".into()));
    }
    match scrubbed::<T>(bytes, secrets) {
        Ok(body) => Ok(Response { body, request_id }),
        Err(e) => Err(invalid(match e.classify() {
            serde_json::error::Category::Eof => "the JSON is truncated".into(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                "the body is not JSON".into()
            }
            serde_json::error::Category::Data => format!(
                "the JSON does not have the expected shape: {}",
                sanitize(&e.to_string(), MESSAGE_CHARS, secrets)
            ),
        })),
    }
}

/// A successful answer decoded with none of the request's secrets in any of its strings:
/// everything decoded from it ends up in a status, an Event or a log line. The strings are
/// scrubbed after JSON unescaping, since a hostile server can spell a secret with `\u`
/// escapes that no search of the raw text finds; answers that cannot hold one (no escape,
/// no secret verbatim: the usual case) skip the detour through a `Value`.
fn scrubbed<T: DeserializeOwned>(bytes: &[u8], secrets: &Secrets<'_>) -> serde_json::Result<T> {
    if !secrets.may_be_in(bytes) {
        return serde_json::from_slice(bytes);
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
    secrets.scrub_json(&mut value);
    serde_json::from_value(value)
}

/// Every secret a request carried, as an answer could echo it: the credentials' secret
/// parts, the access key, and the signed headers as sent (the signature differs with each
/// request, so only the headers know it).
fn carried_secrets(credentials: &Credentials, headers: &HeaderMap) -> Vec<String> {
    let mut carried: Vec<String> = credentials
        .secrets()
        .into_iter()
        .map(str::to_string)
        .collect();
    if let Credentials::AkSk { access_key, .. } = credentials {
        carried.push(access_key.clone());
    }
    for name in ["x-auth-token", "x-security-token", "authorization"] {
        let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        carried.push(value.to_string());
        if let Some((_, signature)) = value.split_once("Signature=") {
            carried.extend(signature.split(',').next().map(|s| s.trim().to_string()));
        }
    }
    carried
}

pub(crate) fn failure(
    status: StatusCode,
    header_request_id: Option<String>,
    retry_after: Option<Duration>,
    bytes: &[u8],
    secrets: &Secrets<'_>,
) -> ApiFailure {
    let (code, message, encoded, body_request_id) = parse_error_body(bytes);
    let clean = |s: String, max: usize| Some(sanitize(&s, max, secrets)).filter(|s| !s.is_empty());
    let message = match message {
        Some(m) => clean(m, MESSAGE_CHARS),
        None if serde_json::from_slice::<serde_json::Value>(bytes).is_err()
            && !bytes.is_empty() =>
        {
            Some(format!("non-JSON body: {:?}", excerpt(bytes, secrets)))
        }
        None => None,
    };
    ApiFailure {
        status: status.as_u16(),
        error_code: code.and_then(|c| clean(c, MESSAGE_CHARS)),
        message,
        encoded_authorization_message: encoded.and_then(|e| clean(e, ENCODED_AUTH_MESSAGE_CHARS)),
        request_id: header_request_id
            .or_else(|| body_request_id.and_then(|r| clean(r, REQUEST_ID_CHARS))),
        retry_after,
    }
}

/// The start of an answer for a message. Scrubbed before it is cut, over enough bytes that a
/// secret starting inside the excerpt is replaced whole rather than leaving its first part.
pub(crate) fn excerpt(bytes: &[u8], secrets: &Secrets<'_>) -> String {
    let head = &bytes[..bytes.len().min(EXCERPT_CHARS * 4 + secrets.longest())];
    sanitize(&String::from_utf8_lossy(head), EXCERPT_CHARS, secrets)
}

fn read_ca_bundle(path: &PathBuf) -> Result<Vec<reqwest::Certificate>, CceError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| CceError::InvalidConfig {
        reason: format!("cannot read the CA bundle {shown}: {e}"),
    })?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| CceError::InvalidConfig {
            reason: format!(
                "the CA bundle {shown} is not PEM: {}",
                error_chain(&e, &Secrets::default())
            ),
        })?;
    if certs.is_empty() {
        return Err(CceError::InvalidConfig {
            reason: format!("the CA bundle {shown} holds no certificate"),
        });
    }
    Ok(certs)
}

/// The causes of an error, outermost first, without reqwest's "for url (...)" wrapper.
fn error_chain(e: &(dyn std::error::Error + 'static), secrets: &Secrets<'_>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = e.source();
    while let Some(cause) = current {
        let text = cause.to_string();
        // hyper-util's "client error (Connect)" wrapper only repeats what follows.
        let is_wrapper = text.starts_with("client error (");
        if !is_wrapper && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = cause.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    sanitize(&parts.join(": "), MESSAGE_CHARS, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(family: ApiFamily, project: &str, cluster: &str) -> Target {
        Target {
            endpoint: Url::parse("https://cce.cn-north-4.myhuaweicloud.com/").expect("url"),
            project_id: project.into(),
            cluster_id: cluster.into(),
            family,
            credentials: Credentials::Token("t".to_string().into()),
        }
    }

    #[test]
    fn paths_follow_the_cluster_type_and_encode_ids_like_the_sdk() {
        let standard = target(ApiFamily::Standard, "p1", "my cluster/x");
        assert_eq!(
            cluster_path(&standard, V3, WORKFLOWS, Some(("workflow id", "wf~测试"))).expect("path"),
            "/api/v3/projects/p1/clusters/my%20cluster%2Fx/operation/upgradeworkflows/wf~%E6%B5%8B%E8%AF%95"
        );
        let autopilot = target(ApiFamily::Autopilot, "p1", "c1");
        assert_eq!(
            cluster_path(&autopilot, V3, WORKFLOWS, None).expect("path"),
            "/autopilot/v3/projects/p1/clusters/c1/operation/upgradeworkflows"
        );
        assert_eq!(
            cluster_path(&autopilot, V3_1, SNAPSHOT_TASKS, None).expect("path"),
            "/autopilot/v3.1/projects/p1/clusters/c1/operation/snapshot/tasks"
        );
        assert_eq!(
            cluster_path(&standard, V3, "", None).expect("path"),
            "/api/v3/projects/p1/clusters/my%20cluster%2Fx"
        );
        let unnamed = target(ApiFamily::Autopilot, "p 1", "");
        assert_eq!(
            project_path(&unnamed, V3, "/clusters").expect("path"),
            "/autopilot/v3/projects/p%201/clusters"
        );
    }

    #[test]
    fn empty_ids_are_refused_before_anything_is_sent() {
        let e = cluster_path(&target(ApiFamily::Standard, "", "c"), V3, WORKFLOWS, None)
            .expect_err("empty");
        assert_eq!(e.category(), "InvalidConfig");
        let e = cluster_path(
            &target(ApiFamily::Standard, "p", "c"),
            V3,
            PRE_CHECKS,
            Some(("task id", "")),
        )
        .expect_err("empty");
        assert!(e.to_string().contains("task id"));
    }

    #[test]
    fn a_missing_or_empty_ca_bundle_is_a_config_error() {
        let missing = ClientConfig {
            ca_bundle: Some("/nonexistent/ca.pem".into()),
            ..ClientConfig::default()
        };
        assert_eq!(
            CceClient::new(missing).expect_err("missing").category(),
            "InvalidConfig"
        );
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = CceClient::new(ClientConfig {
            ca_bundle: Some(empty),
            ..ClientConfig::default()
        })
        .expect_err("empty");
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    mod echoed {
        use super::*;

        const AK: &str = "HPUAECHOEDAK000001";
        const SK: &str = "sk-ECHOED-secret/key+1";
        const SECURITY_TOKEN: &str = "st-ECHOED-security/token+2";
        const TOKEN: &str = "tok-ECHOED-iam/token+3";

        fn aksk() -> Credentials {
            Credentials::AkSk {
                access_key: AK.into(),
                secret_key: SK.to_string().into(),
                security_token: Some(SECURITY_TOKEN.to_string().into()),
            }
        }

        /// The headers a request of `credentials` carries, signed as sent.
        fn sent(credentials: Credentials) -> (Credentials, HeaderMap) {
            let client = CceClient::new(ClientConfig::default()).expect("client");
            let mut target = target(ApiFamily::Standard, "p1", "c1");
            target.credentials = credentials;
            let url = target.endpoint.join("/api/v3/x").expect("url");
            let headers = client
                .headers(&target, &Method::GET, &url, &[])
                .expect("headers");
            (target.credentials, headers)
        }

        /// What a request of `credentials` with `headers` sent that a hostile server could
        /// echo (written out here rather than taken from [`carried_secrets`], which is
        /// under test).
        fn echoes(credentials: &Credentials, headers: &HeaderMap) -> Vec<String> {
            let mut values: Vec<String> = match credentials {
                Credentials::AkSk { .. } => vec![AK.into(), SK.into(), SECURITY_TOKEN.into()],
                Credentials::Token(_) => vec![TOKEN.into()],
            };
            values.extend(
                headers
                    .iter()
                    .filter(|(_, v)| v.is_sensitive())
                    .filter_map(|(_, v)| v.to_str().ok().map(str::to_string)),
            );
            values
        }

        fn unicode_escaped(text: &str) -> String {
            text.chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect()
        }

        fn percent(text: &str) -> String {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        }

        /// `template` with every echo put where `{}` is, in every form (verbatim, JSON `\u`
        /// escapes that no search of the raw text finds, percent-encoded), one answer each.
        fn answers(template: &str, echoes: &[String]) -> Vec<String> {
            echoes
                .iter()
                .flat_map(|e| {
                    let json = serde_json::to_string(e).expect("json");
                    [
                        json.clone(),
                        json.replace('/', "\\/"),
                        format!("\"{}\"", unicode_escaped(e)),
                        format!("\"said {} twice {}\"", percent(e), unicode_escaped(e)),
                    ]
                })
                .map(|value| template.replace("{}", &value))
                .collect()
        }

        fn assert_clean(text: &str, echoes: &[String]) {
            for secret in echoes {
                assert!(!text.contains(secret), "{secret} in {text}");
                assert!(!text.contains(&percent(secret)), "{secret} in {text}");
            }
            assert!(text.contains("[REDACTED]"), "{text}");
        }

        /// Decodes each answer as CCE's client does and returns its Debug text.
        fn decoded<T: DeserializeOwned + fmt::Debug>(
            template: &str,
            credentials: Credentials,
        ) -> Vec<(String, Vec<String>)> {
            let (credentials, headers) = sent(credentials);
            let echoes = echoes(&credentials, &headers);
            let carried = carried_secrets(&credentials, &headers);
            let secrets = Secrets::new(carried.iter().map(String::as_str));
            answers(template, &echoes)
                .into_iter()
                .map(|body| {
                    let answer = decode::<T>(StatusCode::OK, None, body.as_bytes(), &secrets)
                        .unwrap_or_else(|e| panic!("{body}: {e}"));
                    (format!("{:?}", answer.body), echoes.clone())
                })
                .collect()
        }

        fn check<T: DeserializeOwned + fmt::Debug>(template: &str) {
            for credentials in [aksk(), Credentials::Token(TOKEN.to_string().into())] {
                for (text, echoes) in decoded::<T>(template, credentials) {
                    assert_clean(&text, &echoes);
                }
            }
        }

        #[test]
        fn a_pre_check_item_message_echoing_the_request_is_scrubbed() {
            check::<PreCheckTask>(
                r#"{"metadata":{"uid":"pc-1"},"status":{"phase":"Failed","message":{},
                    "clusterCheckStatus":{"phase":"Failed","itemsStatus":[
                      {"name":"NodeReady","kind":"Exception","level":"Fatal","phase":"Failed",
                       "message":{}}]}}}"#,
            );
        }

        #[test]
        fn a_workflow_field_echoing_the_request_is_scrubbed() {
            check::<Workflow>(
                r#"{"metadata":{"uid":"wf-1"},"spec":{"clusterID":"c1","targetVersion":{}},
                    "status":{"phase":{},"pointStatuses":[{"taskType":"PreCheck","taskID":{}}]}}"#,
            );
            check::<WorkflowList>(r#"{"items":[{"metadata":{"uid":{}}}]}"#);
        }

        #[test]
        fn a_task_message_echoing_the_request_is_scrubbed() {
            check::<SnapshotTaskList>(
                r#"{"items":[{"metadata":{"uid":"snap-1"},"spec":{"items":[
                    {"id":"i1","type":"master-backup","status":"Failed","message":{}}]},
                    "status":{"phase":"Failed"}}]}"#,
            );
            check::<Cluster>(r#"{"status":{"phase":"Unavailable","reason":{},"message":{}}}"#);
            check::<ClusterList>(
                r#"{"items":[{"metadata":{"uid":"c1","labels":{"echo":{}}},
                    "status":{"phase":"Error","message":{}}}]}"#,
            );
            check::<UpgradeTask>(r#"{"metadata":{"uid":"up-1"},"spec":{"items":{{}:{}}}}"#);
        }

        #[test]
        fn the_signature_and_access_key_count_among_the_carried_secrets() {
            let (credentials, headers) = sent(aksk());
            let carried = carried_secrets(&credentials, &headers);
            let authorization = headers["authorization"].to_str().expect("ascii");
            let signature = authorization.split("Signature=").nth(1).expect("signed");
            for want in [AK, SK, SECURITY_TOKEN, authorization, signature] {
                assert!(carried.iter().any(|c| c == want), "{want} not carried");
            }
        }

        #[test]
        fn an_answer_that_cannot_hold_a_secret_is_decoded_as_it_is() {
            let secrets = Secrets::new([TOKEN]);
            assert!(!secrets.may_be_in(br#"{"metadata":{"uid":"wf-1"}}"#));
            assert!(secrets.may_be_in(br#"{"metadata":{"uid":"wf\u002d1"}}"#));
            assert!(secrets.may_be_in(format!(r#"{{"x":"{TOKEN}"}}"#).as_bytes()));
            let plain: Response<Workflow> = decode(
                StatusCode::OK,
                None,
                br#"{"metadata":{"uid":"wf-1"},"spec":{"targetVersion":"v1.29"}}"#,
                &secrets,
            )
            .expect("decoded");
            assert_eq!(plain.body.uid(), Some("wf-1"));
        }
    }
}
