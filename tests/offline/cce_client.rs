//! The CCE client against an in-process HTTP server on 127.0.0.1: requests are checked with
//! the same `cce::sign` verifier the simulator uses, and every error class CCE or a proxy
//! can produce is mapped to its category.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cce_upgrade_watch::cce::ApiFamily;
use cce_upgrade_watch::cce::client::Clock;
use cce_upgrade_watch::cce::model::{CreateWorkflowRequest, Phase, SEED_EXAMPLE, Workflow};
use cce_upgrade_watch::cce::sign;
use cce_upgrade_watch::cce::{
    CceClient, CceError, ClientConfig, Credentials, EndpointPolicy, Target,
};
use url::Url;

pub(super) const AK: &str = "HPUATESTAK0001";
pub(super) const SK: &str = "sk-TOP-SECRET-0001";
pub(super) const SECURITY_TOKEN: &str = "st-TOP-SECRET-0002";
pub(super) const TOKEN: &str = "tok-TOP-SECRET-0003";
pub(super) const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const CLUSTER: &str = "5a8c7e1f-2b3d-11ef-8f2a-0255ac100b05";
const WORKFLOW: &str = "c271e39e-1a6e-4d3d-8fa8-2a36329c68d1";
const NOW: &str = "2024-03-15T08:15:30Z";

/// A request as the server received it.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Verifies the signature like the simulator will: from the received parts only.
    pub(super) fn check_signature(
        &self,
        sk: &str,
    ) -> Result<sign::ParsedAuthorization, sign::SignError> {
        let query = sign::decode_query(&self.query);
        let req = sign::SignableRequest {
            method: &self.method,
            path: &self.path,
            query: &query,
            headers: &self.headers,
            body: &self.body,
        };
        let parsed = sign::parse_authorization(
            self.header("authorization")
                .ok_or(sign::SignError::MalformedAuthorization)?,
        )?;
        sign::check(&req, &parsed, sk.as_bytes())?;
        Ok(parsed)
    }
}

pub(super) type Log = Arc<Mutex<Vec<Seen>>>;

/// Serves `handler` for every request on 127.0.0.1:0; returns its base URL and a log.
pub(super) async fn serve<F, Fut>(handler: F) -> (Url, Log)
where
    F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let log: Log = Arc::default();
    let seen_log = log.clone();
    let app = Router::new().fallback(move |req: Request| {
        let handler = handler.clone();
        let log = seen_log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("request body");
            let seen = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.to_vec(),
            };
            log.lock().expect("log").push(seen.clone());
            handler(seen).await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (Url::parse(&format!("http://{addr}/")).expect("url"), log)
}

pub(super) fn json(status: StatusCode, body: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-request-id", "req-42"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn fixed_clock() -> Clock {
    let now: jiff::Timestamp = NOW.parse().expect("now");
    Arc::new(move || now)
}

pub(super) fn client() -> CceClient {
    CceClient::new(ClientConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(500),
        policy: EndpointPolicy {
            allow_insecure: true,
            ..EndpointPolicy::default()
        },
        ..ClientConfig::default()
    })
    .expect("client")
    .with_clock(fixed_clock())
}

pub(super) fn aksk(security_token: Option<&str>) -> Credentials {
    Credentials::AkSk {
        access_key: AK.into(),
        secret_key: SK.to_string().into(),
        security_token: security_token.map(|t| t.to_string().into()),
    }
}

pub(super) fn target(endpoint: &Url, credentials: Credentials) -> Target {
    Target {
        endpoint: endpoint.clone(),
        project_id: PROJECT.into(),
        cluster_id: CLUSTER.into(),
        family: ApiFamily::Standard,
        credentials,
    }
}

/// A server that answers like CCE when the signature verifies, like APIG when not.
pub(super) async fn verifying_server(answer: &'static str, status: StatusCode) -> (Url, Log) {
    serve(move |seen: Seen| async move {
        match seen.check_signature(SK) {
            Ok(_) => json(status, answer),
            Err(e) => json(
                StatusCode::UNAUTHORIZED,
                &format!(
                    r#"{{"error_code":"APIGW.0301","error_msg":"verify aksk signature fail: {e}"}}"#
                ),
            ),
        }
    })
    .await
}

#[tokio::test]
async fn show_is_signed_exactly_as_sent_and_verifies_with_the_shared_verifier() {
    let (url, log) = verifying_server(SEED_EXAMPLE, StatusCode::OK).await;
    let answer = client()
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect("show");
    assert_eq!(answer.body.phase(), Some(&Phase::Pending));
    assert_eq!(answer.request_id.as_deref(), Some("req-42"));

    let seen = log.lock().expect("log")[0].clone();
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.path,
        format!(
            "/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/operation/upgradeworkflows/{WORKFLOW}"
        )
    );
    let parsed = seen.check_signature(SK).expect("verifies");
    assert_eq!(parsed.access, AK);
    assert_eq!(
        parsed.signed_headers.join(";"),
        "content-type;host;user-agent;x-project-id;x-sdk-date"
    );
    assert_eq!(seen.header("x-sdk-date"), Some("20240315T081530Z"));
    assert_eq!(seen.header("host"), Some(url.authority()));
    assert_eq!(seen.header("x-project-id"), Some(PROJECT));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.header("user-agent"),
        Some(concat!("cce-upgrade-watch/", env!("CARGO_PKG_VERSION")))
    );
    assert!(seen.check_signature("another secret").is_err());
}

#[tokio::test]
async fn ids_needing_encoding_and_autopilot_paths_still_verify() {
    let (url, log) = verifying_server(SEED_EXAMPLE, StatusCode::OK).await;
    let mut target = target(&url, aksk(None));
    target.family = ApiFamily::Autopilot;
    target.cluster_id = "my cluster/x".into();
    client()
        .show_workflow(&target, "wf~测试")
        .await
        .expect("verifies");
    let seen = log.lock().expect("log")[0].clone();
    assert_eq!(
        seen.path,
        format!(
            "/autopilot/v3/projects/{PROJECT}/clusters/my%20cluster%2Fx/operation/upgradeworkflows/wf~%E6%B5%8B%E8%AF%95"
        )
    );
}

#[tokio::test]
async fn temporary_credentials_sign_the_security_token() {
    let (url, log) = verifying_server(SEED_EXAMPLE, StatusCode::OK).await;
    client()
        .show_workflow(&target(&url, aksk(Some(SECURITY_TOKEN))), WORKFLOW)
        .await
        .expect("show");
    let seen = log.lock().expect("log")[0].clone();
    let parsed = seen.check_signature(SK).expect("verifies");
    assert!(
        parsed
            .signed_headers
            .contains(&"x-security-token".to_string())
    );
    assert_eq!(seen.header("x-security-token"), Some(SECURITY_TOKEN));
}

#[tokio::test]
async fn token_mode_sends_x_auth_token_and_no_signature() {
    let (url, log) = serve(|_| async { json(StatusCode::OK, SEED_EXAMPLE) }).await;
    client()
        .show_workflow(
            &target(&url, Credentials::Token(TOKEN.to_string().into())),
            WORKFLOW,
        )
        .await
        .expect("show");
    let seen = log.lock().expect("log")[0].clone();
    assert_eq!(seen.header("x-auth-token"), Some(TOKEN));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("x-sdk-date"), None);
}

#[tokio::test]
async fn list_create_and_cancel_use_the_documented_methods_paths_and_bodies() {
    let list = format!(r#"{{"kind":"List","apiVersion":"v3","items":[{SEED_EXAMPLE}]}}"#);
    let list: &'static str = Box::leak(list.into_boxed_str());
    let (url, log) = serve(move |seen: Seen| async move {
        if seen.check_signature(SK).is_err() {
            return json(StatusCode::UNAUTHORIZED, r#"{"error_code":"APIGW.0301"}"#);
        }
        match seen.method.as_str() {
            "GET" => json(StatusCode::OK, list),
            "POST" => json(StatusCode::CREATED, SEED_EXAMPLE),
            _ => json(StatusCode::OK, SEED_EXAMPLE),
        }
    })
    .await;
    let client = client();
    let target = target(&url, aksk(None));
    let listed = client.list_workflows(&target).await.expect("list");
    assert_eq!(listed.body.items.len(), 1);
    let created = client
        .create_workflow(
            &target,
            &CreateWorkflowRequest::new(CLUSTER, "v1.28.3-r0", "v1.29.1-r0"),
        )
        .await
        .expect("create");
    assert_eq!(created.body.uid(), Some(WORKFLOW));
    client
        .cancel_workflow(&target, WORKFLOW)
        .await
        .expect("cancel");

    let seen = log.lock().expect("log").clone();
    let base = format!("/api/v3/projects/{PROJECT}/clusters/{CLUSTER}/operation/upgradeworkflows");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", base.as_str())
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("POST", base.as_str())
    );
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"kind":"WorkFlowTask","apiVersion":"v3","spec":{
            "clusterID":CLUSTER,"clusterVersion":"v1.28.3-r0","targetVersion":"v1.29.1-r0"}})
    );
    assert_eq!(seen[2].method, "PATCH");
    assert_eq!(seen[2].path, format!("{base}/{WORKFLOW}"));
    assert_eq!(seen[2].body, br#"{"status":{"phase":"Cancel"}}"#);
}

async fn error_for(response: fn() -> Response) -> CceError {
    let (url, _) = serve(move |_| async move { response() }).await;
    client()
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect_err("an error")
}

#[tokio::test]
async fn a_401_from_the_gateway_is_unauthorized_with_its_code_and_request_id() {
    let e = error_for(|| {
        json(
            StatusCode::UNAUTHORIZED,
            r#"{"error_msg":"Incorrect IAM authentication information: verify aksk signature fail","error_code":"APIGW.0301","request_id":"body-id"}"#,
        )
    })
    .await;
    assert_eq!(e.category(), "Unauthorized");
    assert!(!e.is_retryable());
    let f = e.api_failure().expect("api failure");
    assert_eq!(f.error_code.as_deref(), Some("APIGW.0301"));
    assert_eq!(e.request_id(), Some("req-42"));
    assert!(e.to_string().contains("verify aksk signature fail"), "{e}");
}

#[tokio::test]
async fn a_403_surfaces_the_encoded_authorization_message() {
    let e = error_for(|| {
        json(
            StatusCode::FORBIDDEN,
            r#"{"error_code":"CCE.01403000","error_msg":"Forbidden","encoded_authorization_message":"ENC-abc123"}"#,
        )
    })
    .await;
    assert_eq!(e.category(), "Forbidden");
    assert_eq!(
        e.api_failure()
            .and_then(|f| f.encoded_authorization_message.as_deref()),
        Some("ENC-abc123")
    );
    assert!(e.to_string().contains("ENC-abc123"), "{e}");
}

#[tokio::test]
async fn a_404_from_cce_is_not_found_with_combined_messages() {
    let e = error_for(|| {
        json(
            StatusCode::NOT_FOUND,
            r#"{"errorCode":"CCE.01404001","errorMessage":"Resource not found","message":"upgrade workflow not exist"}"#,
        )
    })
    .await;
    assert_eq!(e.category(), "NotFound");
    let f = e.api_failure().expect("api failure");
    assert_eq!(f.error_code.as_deref(), Some("CCE.01404001"));
    assert_eq!(
        f.message.as_deref(),
        Some("Resource not found, upgrade workflow not exist")
    );
}

#[tokio::test]
async fn a_429_is_retryable_and_honours_retry_after_seconds_and_dates() {
    let e = error_for(|| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            r#"{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}"#,
        )
            .into_response()
    })
    .await;
    assert_eq!(e.category(), "RateLimited");
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

    let e = error_for(|| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "Fri, 15 Mar 2024 08:16:00 GMT")],
        )
            .into_response()
    })
    .await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn a_500_is_cce_unavailable_and_retryable() {
    let e = error_for(|| {
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"errorCode":"CCE.01500001","errorMessage":"internal error"}"#,
        )
    })
    .await;
    assert_eq!(e.category(), "CceUnavailable");
    assert!(e.is_retryable());
    assert_eq!(e.status(), Some(500));
}

#[tokio::test]
async fn an_html_error_page_from_a_proxy_keeps_a_short_excerpt() {
    let page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>".to_string()
        + &"x".repeat(5000)
        + "</body></html>";
    let page: &'static str = Box::leak(page.into_boxed_str());
    let (url, _) = serve(move |_| async move {
        (
            StatusCode::BAD_GATEWAY,
            [("content-type", "text/html")],
            page,
        )
            .into_response()
    })
    .await;
    let e = client()
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect_err("502");
    assert_eq!(e.category(), "CceUnavailable");
    let text = e.to_string();
    assert!(text.contains("502 Bad Gateway"), "{text}");
    assert!(
        text.len() < 400,
        "excerpt not bounded: {} chars",
        text.len()
    );
    assert!(!text.contains('\n'));
}

#[tokio::test]
async fn an_html_page_with_status_200_is_an_invalid_response() {
    let e = error_for(|| {
        (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<!DOCTYPE html><html><body>Please log in to the proxy</body></html>",
        )
            .into_response()
    })
    .await;
    assert_eq!(e.category(), "InvalidResponse");
    assert!(e.to_string().contains("not JSON"), "{e}");
    assert!(e.to_string().contains("Please log in"), "{e}");
}

#[tokio::test]
async fn truncated_json_is_an_invalid_response() {
    let e = error_for(|| {
        json(
            StatusCode::OK,
            r#"{"kind":"WorkFlowTask","metadata":{"uid":"c271"#,
        )
    })
    .await;
    assert_eq!(e.category(), "InvalidResponse");
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_an_invalid_response() {
    let e = error_for(|| json(StatusCode::OK, r#"{"status":"Running"}"#)).await;
    assert_eq!(e.category(), "InvalidResponse");
    assert!(e.to_string().contains("expected shape"), "{e}");
    let e = error_for(|| json(StatusCode::OK, "")).await;
    assert!(e.to_string().contains("empty"), "{e}");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let e = error_for(|| {
        (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:9/elsewhere")],
        )
            .into_response()
    })
    .await;
    assert_eq!(e.category(), "InvalidResponse");
    assert_eq!(e.status(), Some(302));
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let (url, _) = serve(|_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        json(StatusCode::OK, SEED_EXAMPLE)
    })
    .await;
    let started = std::time::Instant::now();
    let e = client()
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect_err("timeout");
    assert_eq!(e.category(), "Timeout", "{e}");
    assert!(e.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_times_out() {
    let (url, _) = serve(|_| async {
        let stalled = futures::stream::once(async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, Infallible>(Bytes::from_static(b"{}"))
        });
        (StatusCode::OK, Body::from_stream(stalled)).into_response()
    })
    .await;
    let e = client()
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect_err("timeout");
    assert_eq!(e.category(), "Timeout", "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/")).expect("url");
    let e = client()
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect_err("refused");
    assert_eq!(e.category(), "Transport", "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
}

#[tokio::test]
async fn the_endpoint_policy_is_enforced_on_every_call() {
    let (url, log) = serve(|_| async { json(StatusCode::OK, SEED_EXAMPLE) }).await;
    let strict = CceClient::new(ClientConfig::default()).expect("client");
    let e = strict
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect_err("refused");
    assert_eq!(e.category(), "EndpointNotAllowed");
    assert!(log.lock().expect("log").is_empty(), "a request was sent");
}

#[tokio::test]
async fn no_secret_appears_in_errors_or_debug_output_even_when_echoed_back() {
    // A hostile or buggy server that reflects everything it received.
    let (url, _) = serve(|seen: Seen| async move {
        let everything = format!("{:?}", seen.headers).replace('"', "'");
        let token = seen
            .header("x-auth-token")
            .or(seen.header("x-security-token"))
            .unwrap_or_default()
            .to_string();
        json(
            StatusCode::BAD_REQUEST,
            &format!(
                r#"{{"error_code":"{token}","error_msg":"{everything}","message":"{token}"}}"#
            ),
        )
    })
    .await;
    let client = client();
    for credentials in [
        aksk(Some(SECURITY_TOKEN)),
        Credentials::Token(TOKEN.to_string().into()),
    ] {
        let target = target(&url, credentials);
        let e = client
            .show_workflow(&target, WORKFLOW)
            .await
            .expect_err("400");
        assert_eq!(e.category(), "BadRequest");
        let text = format!("{e} {e:?} {target:?} {client:?}");
        for secret in [SK, SECURITY_TOKEN, TOKEN] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
}

/// How a hostile server reflects the request's headers back.
#[derive(Clone, Copy, Debug)]
pub(super) enum Echo {
    /// 200 with the headers, then padding past the client's body limit.
    Oversized,
    /// 200 with the headers as plain text.
    NotJson,
    /// 200 with JSON of the wrong shape whose offending value is the headers.
    WrongShape,
    /// 500 with the headers as an HTML page.
    HttpError,
    /// 400 with the headers JSON-escaped (`\/` included) in CCE's error fields.
    JsonEscaped,
    /// 302 with the headers in the body and in `X-Request-Id`.
    Redirect,
    /// 200 with the headers, then a stall past the request timeout.
    TimeoutMidBody,
}

pub(super) fn echo_answer(echo: Echo, seen: &Seen) -> Response {
    use futures::StreamExt as _;
    // The credential headers first, so even a short excerpt of the start would show them.
    let mut headers = seen.headers.clone();
    headers.sort_by_key(|(name, _)| !name.starts_with("x-"));
    let everything = format!("{headers:?}");
    match echo {
        Echo::Oversized => {
            // In chunks, as a network delivers it: the echo arrives before the limit is hit.
            let padding = Bytes::from(" ".repeat(64 << 10));
            let chunks = std::iter::once(Bytes::from(everything))
                .chain(std::iter::repeat_n(padding, 80))
                .map(Ok::<_, Infallible>);
            (
                StatusCode::OK,
                Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        Echo::NotJson => (StatusCode::OK, everything).into_response(),
        Echo::WrongShape => {
            let body = serde_json::json!({ "metadata": { "uid": 1 }, "spec": everything });
            json(StatusCode::OK, &body.to_string())
        }
        Echo::HttpError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("<html><body>{everything}</body></html>"),
        )
            .into_response(),
        Echo::JsonEscaped => {
            let escaped = serde_json::to_string(&everything)
                .expect("json")
                .replace('/', "\\/");
            let body = format!(
                r#"{{"error_code":{escaped},"error_msg":{escaped},"message":{escaped},"encoded_authorization_message":{escaped},"request_id":{escaped}}}"#
            );
            json(StatusCode::BAD_REQUEST, &body)
        }
        Echo::Redirect => {
            let token = seen
                .header("x-auth-token")
                .or(seen.header("x-security-token"))
                .unwrap_or_default()
                .to_string();
            (StatusCode::FOUND, [("x-request-id", token)], everything).into_response()
        }
        Echo::TimeoutMidBody => {
            let first = Bytes::from(everything);
            let stalled = futures::stream::iter([Ok::<_, Infallible>(first)]).chain(
                futures::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Ok(Bytes::from_static(b"}"))
                }),
            );
            (StatusCode::OK, Body::from_stream(stalled)).into_response()
        }
    }
}

/// Secrets as long as real ones (security tokens and IAM tokens run to kilobytes) and with
/// the characters that escaping changes, so a cut or an escaped echo cannot hide them.
fn long_secret(tag: &str, len: usize) -> String {
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let body: String = alphabet.chars().cycle().skip(tag.len()).take(len).collect();
    format!("{tag}{body}")
}

#[tokio::test]
async fn no_error_path_lets_an_echoed_secret_through() {
    let secret_key = long_secret("skLONG", 40);
    let security_token = long_secret("stLONG", 2048);
    let iam_token = long_secret("tkLONG", 6000);
    let client = client();
    for echo in [
        Echo::Oversized,
        Echo::NotJson,
        Echo::WrongShape,
        Echo::HttpError,
        Echo::JsonEscaped,
        Echo::Redirect,
        Echo::TimeoutMidBody,
    ] {
        let (url, _) = serve(move |seen: Seen| async move { echo_answer(echo, &seen) }).await;
        for credentials in [
            Credentials::AkSk {
                access_key: AK.into(),
                secret_key: secret_key.clone().into(),
                security_token: Some(security_token.clone().into()),
            },
            Credentials::Token(iam_token.clone().into()),
        ] {
            let target = target(&url, credentials);
            let e = client
                .show_workflow(&target, WORKFLOW)
                .await
                .expect_err("an error");
            let text = format!("{e} {e:?}");
            for secret in [&secret_key, &security_token, &iam_token] {
                // Any 12 characters in a row of a secret count as a leak, not only all of it.
                let leaked = secret
                    .as_bytes()
                    .windows(12)
                    .find(|w| text.contains(std::str::from_utf8(w).expect("ascii")));
                assert!(
                    leaked.is_none(),
                    "{echo:?}: part of a secret leaked into {text}"
                );
            }
        }
    }
}

/// A hostile endpoint answering 200 with what the request carried (its credential headers,
/// whole and the signature alone) in the strings a watch mirrors: a pre-check item's message,
/// a workflow's fields, a snapshot task's message.
fn echoing_success(seen: &Seen) -> Response {
    let mut carried: Vec<String> = ["x-auth-token", "x-security-token", "authorization"]
        .iter()
        .filter_map(|name| seen.header(name).map(str::to_string))
        .collect();
    if let Some(authorization) = seen.header("authorization") {
        carried.extend(authorization.split("Signature=").nth(1).map(str::to_string));
        carried.extend(
            authorization
                .split("Access=")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .map(str::to_string),
        );
    }
    let said = format!("node not ready; request said {}", carried.join(" and "));
    let body = if seen.path.contains("/precheck/") {
        serde_json::json!({"metadata": {"uid": "pc-1"}, "status": {"phase": "Failed",
            "message": said, "clusterCheckStatus": {"phase": "Failed", "itemsStatus": [
                {"name": "NodeReady", "kind": "Exception", "level": "Fatal", "phase": "Failed",
                 "message": said}]}}})
    } else if seen.path.contains("/snapshot/") {
        serde_json::json!({"items": [{"metadata": {"uid": "snap-1"}, "spec": {"items": [
            {"id": "i1", "type": "master-backup", "status": "Failed", "message": said}]},
            "status": {"phase": "Failed"}}]})
    } else {
        serde_json::json!({"metadata": {"uid": WORKFLOW}, "spec": {"clusterID": CLUSTER,
            "targetVersion": said}, "status": {"phase": said, "pointStatuses": [
                {"taskType": "PreCheck", "taskID": said, "status": "Failed"}]}})
    };
    json(StatusCode::OK, &body.to_string())
}

#[tokio::test]
async fn a_successful_answer_echoing_the_requests_secrets_is_decoded_without_them() {
    let (url, log) = serve(|seen: Seen| async move { echoing_success(&seen) }).await;
    let client = client();
    for credentials in [
        aksk(Some(SECURITY_TOKEN)),
        Credentials::Token(TOKEN.to_string().into()),
    ] {
        let target = target(&url, credentials);
        let decoded = [
            format!(
                "{:?}",
                client
                    .show_workflow(&target, WORKFLOW)
                    .await
                    .expect("workflow")
            ),
            format!(
                "{:?}",
                client
                    .show_pre_check(&target, "pc-1")
                    .await
                    .expect("pre-check")
            ),
            format!(
                "{:?}",
                client
                    .list_snapshot_tasks(&target)
                    .await
                    .expect("snapshots")
            ),
        ];
        let sent = log.lock().expect("log").clone();
        let signatures: Vec<String> = sent
            .iter()
            .filter_map(|s| s.header("authorization"))
            .filter_map(|a| a.split("Signature=").nth(1).map(str::to_string))
            .collect();
        for text in &decoded {
            assert!(
                text.contains("node not ready; request said [REDACTED]"),
                "{text}"
            );
            for secret in [AK, SK, SECURITY_TOKEN, TOKEN] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            for signature in &signatures {
                assert!(!text.contains(signature.as_str()), "a signature in {text}");
            }
        }
    }
}

/// One answer a server may send: any status, any `Retry-After` and `X-Request-Id` bytes,
/// any body (raw bytes, or JSON in CCE's error shape holding arbitrary values).
#[derive(Clone, Debug)]
struct AnyAnswer {
    status: u16,
    retry_after: Vec<u8>,
    request_id: Vec<u8>,
    body: Vec<u8>,
}

fn any_answer() -> impl proptest::strategy::Strategy<Value = AnyAnswer> {
    use proptest::prelude::*;
    let header = prop_oneof![
        any::<Vec<u8>>(),
        any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        "[0-9]{15,40}".prop_map(String::into_bytes),
        Just(b"Fri, 31 Dec 9999 23:59:59 GMT".to_vec()),
    ];
    let body = prop_oneof![
        any::<Vec<u8>>(),
        (any::<String>(), any::<String>()).prop_map(|(code, msg)| {
            serde_json::json!({"error_code": code, "error_msg": msg})
                .to_string()
                .into_bytes()
        }),
        Just(SEED_EXAMPLE.as_bytes().to_vec()),
    ];
    (100u16..=599, header.clone(), header, body).prop_map(
        |(status, retry_after, request_id, body)| AnyAnswer {
            status,
            retry_after,
            request_id,
            body,
        },
    )
}

fn any_answer_response(a: &AnyAnswer) -> Response {
    let mut response = Response::new(Body::from(a.body.clone()));
    *response.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
    for (name, value) in [
        ("retry-after", &a.retry_after),
        ("x-request-id", &a.request_id),
    ] {
        if let Ok(value) = axum::http::HeaderValue::from_bytes(value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

#[test]
fn any_answer_is_read_without_panicking_and_bounded() {
    use proptest::test_runner::{Config, TestRunner};
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let answer: Arc<Mutex<Option<AnyAnswer>>> = Arc::default();
    let served = answer.clone();
    let (url, _) = runtime.block_on(serve(move |_| {
        let served = served.clone();
        async move {
            let current = served.lock().expect("answer").clone();
            current.map_or_else(
                || StatusCode::OK.into_response(),
                |a| any_answer_response(&a),
            )
        }
    }));
    let client = client();
    let target = target(&url, Credentials::Token(TOKEN.to_string().into()));
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&any_answer(), |a| {
            *answer.lock().expect("answer") = Some(a.clone());
            let result = runtime.block_on(client.show_workflow(&target, WORKFLOW));
            if let Err(e) = result {
                let text = e.to_string();
                proptest::prop_assert!(text.len() < 4096, "{} bytes: {text}", text.len());
                proptest::prop_assert!(!text.chars().any(char::is_control), "{text:?}");
                if let Some(wait) = e.retry_after() {
                    proptest::prop_assert!(wait <= cce_upgrade_watch::cce::error::MAX_RETRY_AFTER);
                }
            }
            Ok(())
        })
        .expect("every answer handled");
}

#[test]
fn the_section_8_example_round_trips_through_the_model() {
    let wf: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("parse");
    assert_eq!(
        serde_json::to_value(&wf).expect("serialize"),
        serde_json::from_str::<serde_json::Value>(SEED_EXAMPLE).expect("parse")
    );
}

/// Serves one fixed JSON answer over TLS with a fresh self-signed certificate for
/// 127.0.0.1; returns the base URL and the certificate as PEM.
async fn serve_tls(answer: &'static str) -> (Url, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that distrusts the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (Url::parse(&format!("https://{addr}/")).expect("url"), pem)
}

#[tokio::test]
async fn an_extra_ca_bundle_is_trusted_and_an_unknown_certificate_is_a_transport_error() {
    let (url, pem) = serve_tls(SEED_EXAMPLE).await;
    let bundle = std::env::temp_dir().join(format!(
        "cce-client-test-ca-{}-{}.pem",
        std::process::id(),
        url.port().unwrap_or_default()
    ));
    std::fs::write(&bundle, pem).expect("write bundle");
    // https with an explicitly allowed host: no insecure switch involved.
    let policy = EndpointPolicy::default()
        .with_extra(["127.0.0.1:*"])
        .expect("entry");
    let config = |ca_bundle| ClientConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        ca_bundle,
        policy: policy.clone(),
        ..ClientConfig::default()
    };

    let trusting = CceClient::new(config(Some(bundle.clone()))).expect("client");
    let answer = trusting
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect("TLS with the extra CA");
    assert_eq!(answer.body.uid(), Some(WORKFLOW));

    let distrusting = CceClient::new(config(None)).expect("client");
    let e = distrusting
        .show_workflow(&target(&url, aksk(None)), WORKFLOW)
        .await
        .expect_err("unknown issuer");
    assert_eq!(e.category(), "Transport", "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    let _ = std::fs::remove_file(bundle);
}

/// Each diagnostic read, called through the client, and the path Huawei's SDK gives it
/// below `/{api|autopilot}`.
#[derive(Clone, Copy, Debug)]
enum Diagnostic {
    ShowPreCheck,
    ListPreCheckTasks,
    ShowUpgradeClusterTask,
    ListUpgradeClusterTasks,
    ShowCluster,
    ListSnapshotTasks,
}

const DIAGNOSTICS: [Diagnostic; 6] = [
    Diagnostic::ShowPreCheck,
    Diagnostic::ListPreCheckTasks,
    Diagnostic::ShowUpgradeClusterTask,
    Diagnostic::ListUpgradeClusterTasks,
    Diagnostic::ShowCluster,
    Diagnostic::ListSnapshotTasks,
];

const TASK: &str = "8f0c3b9e-task/1";

impl Diagnostic {
    fn path(self) -> String {
        let task = "8f0c3b9e-task%2F1";
        let cluster = format!("projects/{PROJECT}/clusters/{CLUSTER}");
        match self {
            Self::ShowPreCheck => format!("/v3/{cluster}/operation/precheck/tasks/{task}"),
            Self::ListPreCheckTasks => format!("/v3/{cluster}/operation/precheck/tasks"),
            Self::ShowUpgradeClusterTask => format!("/v3/{cluster}/operation/upgrade/tasks/{task}"),
            Self::ListUpgradeClusterTasks => format!("/v3/{cluster}/operation/upgrade/tasks"),
            Self::ShowCluster => format!("/v3/{cluster}"),
            Self::ListSnapshotTasks => format!("/v3.1/{cluster}/operation/snapshot/tasks"),
        }
    }

    /// Calls it; the answer's request id, or the error.
    async fn call(self, client: &CceClient, target: &Target) -> Result<Option<String>, CceError> {
        Ok(match self {
            Self::ShowPreCheck => client.show_pre_check(target, TASK).await?.request_id,
            Self::ListPreCheckTasks => client.list_pre_check_tasks(target).await?.request_id,
            Self::ShowUpgradeClusterTask => {
                client
                    .show_upgrade_cluster_task(target, TASK)
                    .await?
                    .request_id
            }
            Self::ListUpgradeClusterTasks => {
                client.list_upgrade_cluster_tasks(target).await?.request_id
            }
            Self::ShowCluster => client.show_cluster(target).await?.request_id,
            Self::ListSnapshotTasks => client.list_snapshot_tasks(target).await?.request_id,
        })
    }
}

#[tokio::test]
async fn every_diagnostic_read_is_a_signed_get_of_the_documented_path_in_both_families() {
    let (url, log) = verifying_server(r#"{"kind":"Any","items":[]}"#, StatusCode::OK).await;
    let client = client();
    for family in [ApiFamily::Standard, ApiFamily::Autopilot] {
        let mut target = target(&url, aksk(Some(SECURITY_TOKEN)));
        target.family = family;
        for diagnostic in DIAGNOSTICS {
            let request_id = diagnostic
                .call(&client, &target)
                .await
                .unwrap_or_else(|e| panic!("{diagnostic:?} {family:?}: {e}"));
            assert_eq!(request_id.as_deref(), Some("req-42"));
            let seen = log.lock().expect("log").pop().expect("a request");
            assert_eq!(seen.method, "GET");
            assert_eq!(
                seen.path,
                format!("/{}{}", family.path_root(), diagnostic.path()),
                "{diagnostic:?}"
            );
            assert_eq!(seen.query, "");
            assert!(seen.body.is_empty());
            seen.check_signature(SK).expect("verifies");
        }
    }
}

#[tokio::test]
async fn diagnostic_answers_decode_into_their_models() {
    let (url, _) = serve(|seen: Seen| async move {
        let body = if seen.path.contains("/precheck/") {
            r#"{"kind":"PreCheckTask","metadata":{"uid":"pc"},"status":{"phase":"Failed",
                "nodeCheckStatus":{"nodeStageStatus":[{"nodeInfo":{"name":"worker-1"},
                "itemsStatus":[{"name":"NodeReady","kind":"Exception","phase":"Failed"}]}]}}}"#
        } else if seen.path.contains("/upgrade/") {
            r#"{"kind":"UpgradeTask","status":{"phase":"Running","progress":"45.00"}}"#
        } else if seen.path.contains("/snapshot/") {
            r#"{"items":[{"metadata":{"uid":"s1"},"spec":{"items":[{"status":"Failed","message":"quota"}]}}]}"#
        } else {
            r#"{"kind":"Cluster","status":{"phase":"RollbackFailed","reason":"UpgradeFailed","message":"etcd"}}"#
        };
        json(StatusCode::OK, body)
    })
    .await;
    let client = client();
    let target = target(&url, aksk(None));
    let pre = client
        .show_pre_check(&target, "pc")
        .await
        .expect("pre-check")
        .body;
    assert_eq!(pre.findings()[0].1.name.as_deref(), Some("NodeReady"));
    let up = client
        .show_upgrade_cluster_task(&target, "up")
        .await
        .expect("upgrade task")
        .body;
    assert_eq!(up.progress_percent(), Some(45));
    let snapshots = client
        .list_snapshot_tasks(&target)
        .await
        .expect("snapshots")
        .body;
    let task = snapshots.find("s1").expect("s1");
    assert_eq!(
        task.failure_messages().map(|(_, m)| m).collect::<Vec<_>>(),
        ["quota"]
    );
    let cluster = client.show_cluster(&target).await.expect("cluster").body;
    assert_eq!(cluster.reason(), Some("UpgradeFailed"));
}

#[tokio::test]
async fn a_403_or_404_from_a_diagnostic_read_says_unavailable_and_nothing_else_does() {
    let client = client();
    for (status, unavailable) in [
        (StatusCode::FORBIDDEN, true),
        (StatusCode::NOT_FOUND, true),
        (StatusCode::UNAUTHORIZED, false),
        (StatusCode::TOO_MANY_REQUESTS, false),
        (StatusCode::INTERNAL_SERVER_ERROR, false),
        (StatusCode::BAD_REQUEST, false),
    ] {
        let (url, _) = serve(move |_| async move {
            json(
                status,
                r#"{"errorCode":"CCE.01403000","errorMessage":"no"}"#,
            )
        })
        .await;
        let target = target(&url, aksk(None));
        for diagnostic in DIAGNOSTICS {
            let e = diagnostic
                .call(&client, &target)
                .await
                .expect_err("an error");
            assert_eq!(e.status(), Some(status.as_u16()));
            assert_eq!(
                e.is_denied_or_absent(),
                unavailable,
                "{status} {diagnostic:?}"
            );
        }
    }
    let (url, _) = serve(|_| async { json(StatusCode::OK, "<html>") }).await;
    let e = client
        .show_cluster(&target(&url, aksk(None)))
        .await
        .expect_err("not JSON");
    assert_eq!(e.category(), "InvalidResponse");
    assert!(!e.is_denied_or_absent());
}

#[tokio::test]
async fn a_pre_check_show_cannot_find_falls_back_to_the_list_matched_by_uid() {
    let (url, log) = serve(|seen: Seen| async move {
        if seen.path.ends_with("/precheck/tasks") {
            json(
                StatusCode::OK,
                r#"{"items":[{"metadata":{"uid":"other"}},{"metadata":{"uid":"pc-2"},"status":{"phase":"Success"}}]}"#,
            )
        } else {
            json(StatusCode::NOT_FOUND, r#"{"errorCode":"CCE.01404001"}"#)
        }
    })
    .await;
    let client = client();
    let target = target(&url, aksk(None));
    let found = client
        .pre_check_for_task(&target, "pc-2")
        .await
        .expect("from the list");
    assert_eq!(found.body.uid(), Some("pc-2"));
    assert_eq!(found.request_id.as_deref(), Some("req-42"));
    let paths: Vec<_> = log.lock().expect("log").drain(..).map(|s| s.path).collect();
    assert_eq!(paths.len(), 2);
    assert!(paths[0].ends_with("/precheck/tasks/pc-2") && paths[1].ends_with("/precheck/tasks"));

    let e = client
        .pre_check_for_task(&target, "gone")
        .await
        .expect_err("in neither");
    assert_eq!(e.category(), "NotFound");
    assert!(e.is_denied_or_absent());
}

#[tokio::test]
async fn a_pre_check_show_that_is_denied_does_not_try_the_list() {
    let (url, log) =
        serve(|_| async { json(StatusCode::FORBIDDEN, r#"{"error_code":"CCE.01403000"}"#) }).await;
    let e = client()
        .pre_check_for_task(&target(&url, aksk(None)), "pc")
        .await
        .expect_err("403");
    assert_eq!(e.category(), "Forbidden");
    assert_eq!(log.lock().expect("log").len(), 1);
}

#[tokio::test]
async fn a_huge_diagnostic_answer_is_refused_at_the_body_limit_without_leaking_secrets() {
    let client = client();
    let (url, _) = serve(|seen: Seen| async move { echo_answer(Echo::Oversized, &seen) }).await;
    let target = target(&url, aksk(Some(SECURITY_TOKEN)));
    for diagnostic in DIAGNOSTICS {
        let e = diagnostic
            .call(&client, &target)
            .await
            .expect_err("too large");
        assert_eq!(e.category(), "InvalidResponse", "{diagnostic:?}");
        let text = format!("{e} {e:?}");
        assert!(text.contains("larger than"), "{text}");
        for secret in [SK, SECURITY_TOKEN] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
}

#[tokio::test]
async fn a_diagnostic_answer_of_the_wrong_shape_is_an_invalid_response() {
    let (url, _) = serve(|_| async {
        json(
            StatusCode::OK,
            r#"{"status":{"nodeCheckStatus":{"nodeStageStatus":"not a list"}},"items":7}"#,
        )
    })
    .await;
    let client = client();
    let target = target(&url, aksk(None));
    for diagnostic in [
        Diagnostic::ShowPreCheck,
        Diagnostic::ListPreCheckTasks,
        Diagnostic::ListUpgradeClusterTasks,
        Diagnostic::ListSnapshotTasks,
    ] {
        let e = diagnostic
            .call(&client, &target)
            .await
            .expect_err("wrong shape");
        assert_eq!(e.category(), "InvalidResponse", "{diagnostic:?}");
        assert!(e.to_string().contains("expected shape"), "{e}");
    }
}
