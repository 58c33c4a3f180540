//! Temporary credentials without a stored key, obtained the way Huawei's SDK obtains them
//! (cce-credentials.md): an OpenID Connect token federated at IAM (an unscoped token from
//! `/v3.0/OS-AUTH/id-token/tokens`, then temporary keys from
//! `/v3.0/OS-CREDENTIAL/securitytokens`), an agency assumed at STS with the token
//! (`/v5/agencies/assume-with-oidc`), or CCE's pod identity agent. Answers are bounded like
//! CCE's, error text is scrubbed of every token and key involved, and the keys of an answer
//! that cannot be read never reach an error message.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::client::{ClientConfig, excerpt, failure, http_client, read_bounded};
use super::credentials::Credentials;
use super::error::{ApiFailure, CceError, Secrets};
use crate::failure::Category;

/// IAM's global endpoint, Huawei's SDK's default.
pub const DEFAULT_IAM_ENDPOINT: &str = "https://iam.myhuaweicloud.com";
/// STS's default endpoint in Huawei's SDK.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.cn-north-4.myhuaweicloud.com";
const ID_TOKEN_PATH: &str = "/v3.0/OS-AUTH/id-token/tokens";
const SECURITY_TOKENS_PATH: &str = "/v3.0/OS-CREDENTIAL/securitytokens";
const ASSUME_WITH_OIDC_PATH: &str = "/v5/agencies/assume-with-oidc";
const SUBJECT_TOKEN_HEADER: &str = "x-subject-token";

/// `https://iam.{region}.myhuaweicloud.com` (`.eu` for `eu-west-101`), as the SDK's table has.
pub fn region_iam_endpoint(region: &str) -> Result<Url, CceError> {
    let mut url = super::endpoint::region_endpoint(region)?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .replacen("cce.", "iam.", 1);
    url.set_host(Some(&host))
        .map_err(|e| CceError::InvalidEndpoint {
            reason: format!("region gives no valid IAM URL: {e}"),
        })?;
    Ok(url)
}

/// Temporary keys and when they stop working.
#[derive(Clone, Debug)]
pub struct Temporary {
    pub credentials: Credentials,
    pub expires_at: Timestamp,
}

/// What an assume-with-oidc call asks STS for.
#[derive(Clone, Debug)]
pub struct AgencyRequest {
    pub provider_urn: String,
    pub agency_urn: String,
    pub session_name: String,
    pub duration_seconds: u32,
}

/// Which service failed, for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
    PodIdentity,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Iam => "IAM",
            Self::Sts => "STS",
            Self::PodIdentity => "the pod identity agent",
        })
    }
}

/// Why no temporary credentials were had. Display text never contains a token or key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// 4xx: the token or identity is refused (wrong audience, no conversion rule, expired
    /// or unknown provider). A person must act.
    #[error("{service} refused the token ({failure})")]
    Refused {
        service: Service,
        failure: ApiFailure,
    },
    /// 429 or 5xx.
    #[error("{service} is unavailable ({failure})")]
    Unavailable {
        service: Service,
        failure: ApiFailure,
    },
    /// No answer: connection, TLS, timeout.
    #[error("cannot reach {service}: {detail}")]
    Unreachable { service: Service, detail: String },
    /// An answer that is not what the API defines.
    #[error("{service} sent an invalid response (HTTP {status}): {reason}")]
    InvalidResponse {
        service: Service,
        status: u16,
        reason: String,
    },
    /// The endpoint is not usable or not allowed.
    #[error("{service} endpoint: {reason}")]
    Endpoint { service: Service, reason: String },
}

impl ExchangeError {
    /// A bounded reason for conditions and metrics.
    pub fn category(&self) -> Category {
        match self {
            Self::Refused { .. } => Category::Unauthorized,
            Self::Unavailable { .. } | Self::Unreachable { .. } => Category::IamUnavailable,
            Self::InvalidResponse { .. } => Category::InvalidIamResponse,
            Self::Endpoint { .. } => Category::IamEndpointNotAllowed,
        }
    }

    /// Whether asking again soon, unchanged, may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::Unreachable { .. } | Self::InvalidResponse { .. }
        )
    }

    fn from_transport(service: Service, e: CceError) -> Self {
        match e {
            CceError::InvalidResponse { status, reason, .. } => Self::InvalidResponse {
                service,
                status,
                reason,
            },
            CceError::Timeout { stage, after } => Self::Unreachable {
                service,
                detail: format!("timed out while {stage} (after {}s)", after.as_secs_f32()),
            },
            CceError::Transport { detail } => Self::Unreachable { service, detail },
            CceError::InvalidEndpoint { reason }
            | CceError::InvalidConfig { reason }
            | CceError::EndpointNotAllowed { reason, .. } => Self::Endpoint { service, reason },
            other => Self::Unreachable {
                service,
                detail: other.to_string(),
            },
        }
    }
}

/// The exchange client: the CCE client's settings (timeouts, CA bundle, answer cap) with
/// the IAM endpoint allow-list, one connection pool.
#[derive(Clone)]
pub struct Exchanger {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for Exchanger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchanger")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Exchanger {
    /// Plain http is possible at all only because the pod identity agent listens on a
    /// node-local address; IAM and STS endpoints still go through the IAM allow-list.
    pub fn new(config: ClientConfig) -> Result<Self, CceError> {
        Ok(Self {
            http: http_client(&config, false)?,
            config: Arc::new(config),
        })
    }

    /// Federation with an OpenID Connect token (`FederalAccessor` in Huawei's SDK):
    /// an unscoped token for `id_token`, then temporary keys valid `duration_seconds`.
    pub async fn federate(
        &self,
        iam: &Url,
        identity_provider: &str,
        id_token: &SecretString,
        duration_seconds: u32,
    ) -> Result<Temporary, ExchangeError> {
        let service = Service::Iam;
        self.check(service, iam)?;
        let body = json!({"auth": {"id_token": {"id": id_token.expose_secret()}}});
        let secrets = [id_token.expose_secret()];
        let answer = self
            .post(
                service,
                &at(iam, ID_TOKEN_PATH),
                &[("X-Idp-Id", identity_provider)],
                &body,
                &secrets,
            )
            .await?;
        let subject = answer
            .headers
            .get(SUBJECT_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ExchangeError::InvalidResponse {
                service,
                status: answer.status,
                reason: "the answer has no X-Subject-Token header".into(),
            })?;
        let subject = SecretString::from(subject.to_string());
        let body = json!({"auth": {"identity": {
            "methods": ["token"],
            "token": {"id": subject.expose_secret(), "duration_seconds": duration_seconds}
        }}});
        let secrets = [id_token.expose_secret(), subject.expose_secret()];
        let answer = self
            .post(
                service,
                &at(iam, SECURITY_TOKENS_PATH),
                &[],
                &body,
                &secrets,
            )
            .await?;
        temporary(service, answer.status, &answer.body)
    }

    /// AssumeAgencyWithOIDC at STS (`OidcStsAccessor` in Huawei's SDK).
    pub async fn assume_with_oidc(
        &self,
        sts: &Url,
        request: &AgencyRequest,
        id_token: &SecretString,
    ) -> Result<Temporary, ExchangeError> {
        let service = Service::Sts;
        self.check(service, sts)?;
        let body = json!({
            "provider_urn": request.provider_urn,
            "agency_urn": request.agency_urn,
            "agency_session_name": request.session_name,
            "id_token": id_token.expose_secret(),
            "duration_seconds": request.duration_seconds,
        });
        let answer = self
            .post(
                service,
                &at(sts, ASSUME_WITH_OIDC_PATH),
                &[],
                &body,
                &[id_token.expose_secret()],
            )
            .await?;
        temporary(service, answer.status, &answer.body)
    }

    /// CCE pod identity (`PodIdentityAccessor`): `POST {uri}` with the agent's token as
    /// `Authorization` and `{}` as body. The URI comes from the operator's environment,
    /// never from a watch, so it is not held to the endpoint policy.
    pub async fn pod_identity(
        &self,
        uri: &Url,
        authorization: &SecretString,
    ) -> Result<Temporary, ExchangeError> {
        let service = Service::PodIdentity;
        let answer = self
            .post(
                service,
                uri,
                &[("Authorization", authorization.expose_secret())],
                &json!({}),
                &[authorization.expose_secret()],
            )
            .await?;
        temporary(service, answer.status, &answer.body)
    }

    fn check(&self, service: Service, url: &Url) -> Result<(), ExchangeError> {
        self.config
            .iam_policy
            .check(url)
            .map_err(|e| ExchangeError::from_transport(service, e))
    }

    /// One POST; a 2xx answer is returned, anything else classified.
    async fn post(
        &self,
        service: Service,
        url: &Url,
        headers: &[(&str, &str)],
        body: &Value,
        secrets: &[&str],
    ) -> Result<Answer, ExchangeError> {
        let secrets = Secrets::new(secrets.iter().copied());
        let mut map = HeaderMap::new();
        map.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        if let Ok(agent) = HeaderValue::from_str(&self.config.user_agent) {
            map.insert(reqwest::header::USER_AGENT, agent);
        }
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ExchangeError::Endpoint {
                    service,
                    reason: format!("invalid header name {name}"),
                }
            })?;
            // The error names the header, never its value (it may be a token).
            let mut value = HeaderValue::from_str(value).map_err(|_| ExchangeError::Endpoint {
                service,
                reason: format!("the {name} header would contain characters HTTP forbids"),
            })?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        let sent = self
            .http
            .post(url.clone())
            .headers(map)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                ExchangeError::from_transport(
                    service,
                    super::client::transport_error(
                        &self.config,
                        &e,
                        "waiting for the answer",
                        &secrets,
                    ),
                )
            })?;
        let status = sent.status();
        let headers = sent.headers().clone();
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| super::error::sanitize(v, 128, &secrets));
        let bytes = read_bounded(&self.config, sent, status, &request_id, &secrets)
            .await
            .map_err(|e| ExchangeError::from_transport(service, e))?;
        if status.is_success() {
            return Ok(Answer {
                status: status.as_u16(),
                headers,
                body: bytes,
            });
        }
        let failure = failure(status, request_id, None, &bytes, &secrets);
        Err(classify(service, status, failure, &bytes, &secrets))
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn at(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(path);
    url.set_query(None);
    url
}

fn classify(
    service: Service,
    status: StatusCode,
    failure: ApiFailure,
    bytes: &[u8],
    secrets: &Secrets<'_>,
) -> ExchangeError {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ExchangeError::Unavailable { service, failure }
    } else if status.is_client_error() {
        ExchangeError::Refused { service, failure }
    } else {
        ExchangeError::InvalidResponse {
            service,
            status: status.as_u16(),
            reason: format!(
                "unexpected HTTP status (redirects are not followed); body starts: {:?}",
                excerpt(bytes, secrets)
            ),
        }
    }
}

/// Reads temporary keys as Huawei's SDK does (`StsAccessor._process_credential`): under
/// `credential` or `credentials`, or at the top; each field under any of its spellings.
/// The reasons name fields only: the answer holds the keys.
pub fn temporary(service: Service, status: u16, body: &[u8]) -> Result<Temporary, ExchangeError> {
    let invalid = |reason: String| ExchangeError::InvalidResponse {
        service,
        status,
        reason,
    };
    let root: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(match e.classify() {
            serde_json::error::Category::Eof => "the JSON is truncated".into(),
            _ => "the body is not JSON".into(),
        })
    })?;
    let object = root
        .get("credential")
        .or_else(|| root.get("credentials"))
        .unwrap_or(&root);
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| object.get(*n).and_then(Value::as_str))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let access = field(&["access", "accessKeyId", "access_key_id"])
        .ok_or_else(|| invalid("the answer has no access key (credential.access)".into()))?;
    let secret = field(&["secret", "secretAccessKey", "secret_access_key"])
        .ok_or_else(|| invalid("the answer has no secret key (credential.secret)".into()))?;
    let security_token = field(&["securitytoken", "securityToken", "security_token"]);
    let expires = field(&["expires_at", "expiration"])
        .ok_or_else(|| invalid("the answer has no expiry (credential.expires_at)".into()))?;
    let expires_at = parse_expiry(expires).ok_or_else(|| {
        invalid("credential.expires_at is not a time like 2024-05-10T08:00:00.000000Z".into())
    })?;
    let credentials = Credentials::temporary(access, secret, security_token)
        .map_err(|e| invalid(format!("the temporary keys are unusable: {e}")))?;
    Ok(Temporary {
        credentials,
        expires_at,
    })
}

/// IAM writes `2024-05-10T08:00:00.000000Z`; a timestamp without zone is UTC, as the SDK
/// reads it.
fn parse_expiry(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok().or_else(|| {
        text.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-EXCHANGED-SECRET";
    const SECURITY_TOKEN: &str = "st-EXCHANGED-SECURITY-TOKEN";

    fn parse(body: &str) -> Result<Temporary, ExchangeError> {
        temporary(Service::Iam, 201, body.as_bytes())
    }

    #[test]
    fn iams_credential_answer_gives_temporary_keys_and_their_expiry() {
        let t = parse(&format!(
            r#"{{"credential": {{"access": "TMPAK", "secret": "{SECRET}", "securitytoken": "{SECURITY_TOKEN}", "expires_at": "2024-05-10T08:00:00.000000Z"}}}}"#
        ))
        .expect("valid");
        assert_eq!(
            t.expires_at,
            "2024-05-10T08:00:00Z".parse::<Timestamp>().expect("ts")
        );
        assert_eq!(t.credentials.mode(), "temporary-aksk");
        assert_eq!(
            t.credentials.secrets(),
            vec![SECRET, SECURITY_TOKEN],
            "secret key, then security token"
        );
    }

    #[test]
    fn the_sdks_other_spellings_are_read_too() {
        let pod = parse(&format!(
            r#"{{"accessKeyId": "TMPAK", "secretAccessKey": "{SECRET}", "securityToken": "{SECURITY_TOKEN}", "expiration": "2024-05-10T08:00:00.000000"}}"#
        ))
        .expect("pod identity shape");
        assert_eq!(
            pod.expires_at,
            "2024-05-10T08:00:00Z".parse::<Timestamp>().expect("ts")
        );
        let sts = parse(&format!(
            r#"{{"credentials": {{"access_key_id": "TMPAK", "secret_access_key": "{SECRET}", "security_token": "{SECURITY_TOKEN}", "expires_at": "2024-05-10T08:00:00Z"}}}}"#
        ))
        .expect("sts shape");
        assert_eq!(sts.credentials.mode(), "temporary-aksk");
    }

    #[test]
    fn a_broken_answer_is_refused_naming_fields_never_values() {
        let cases = [
            ("{\"credential\": {\"access\": \"TMPAK\"", "truncated"),
            ("<html>oops</html>", "not JSON"),
            (
                &format!(
                    r#"{{"credential": {{"access": "TMPAK", "secret": "{SECRET}", "expires_at": "2024-05-10T08:00:00Z"}}}}"#
                ),
                "",
            ),
            (
                &format!(
                    r#"{{"credential": {{"secret": "{SECRET}", "securitytoken": "{SECURITY_TOKEN}", "expires_at": "x"}}}}"#
                ),
                "no access key",
            ),
            (
                &format!(
                    r#"{{"credential": {{"access": "TMPAK", "secret": "{SECRET}", "securitytoken": "{SECURITY_TOKEN}", "expires_at": "tomorrow"}}}}"#
                ),
                "expires_at is not a time",
            ),
            (
                &format!(
                    r#"{{"credential": {{"access": "TMPAK", "secret": "{SECRET} x", "expires_at": "2024-05-10T08:00:00Z"}}}}"#
                ),
                "secret contains spaces",
            ),
        ];
        for (body, reason) in cases {
            let result = parse(body);
            if reason.is_empty() {
                // Keys without a security token are still keys.
                assert!(result.is_ok(), "{body}");
                continue;
            }
            let e = result.expect_err(body);
            let text = format!("{e} {e:?}");
            assert!(text.contains(reason), "{text}");
            assert!(!text.contains("EXCHANGED"), "{text}");
            assert_eq!(e.category(), "InvalidIamResponse");
            assert!(e.is_retryable());
        }
    }

    #[test]
    fn region_endpoints_follow_the_sdks_table() {
        assert_eq!(
            region_iam_endpoint("ap-southeast-1").expect("url").as_str(),
            "https://iam.ap-southeast-1.myhuaweicloud.com/"
        );
        assert_eq!(
            region_iam_endpoint("eu-west-101").expect("url").as_str(),
            "https://iam.eu-west-101.myhuaweicloud.eu/"
        );
    }

    #[test]
    fn refusals_are_unauthorized_and_permanent_outages_are_not() {
        let failure = ApiFailure {
            status: 400,
            message: Some("the token's audience is not the provider's client id".into()),
            ..Default::default()
        };
        let refused = classify(
            Service::Iam,
            StatusCode::BAD_REQUEST,
            failure.clone(),
            b"",
            &Secrets::default(),
        );
        assert_eq!(refused.category(), "Unauthorized");
        assert!(!refused.is_retryable());
        assert!(refused.to_string().contains("audience"), "{refused}");
        let down = classify(
            Service::Iam,
            StatusCode::SERVICE_UNAVAILABLE,
            failure,
            b"",
            &Secrets::default(),
        );
        assert_eq!(down.category(), "IamUnavailable");
        assert!(down.is_retryable());
    }

    mod exchange {
        use std::sync::Mutex;

        use axum::Router;
        use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
        use axum::response::IntoResponse;
        use axum::routing::post;

        use super::*;
        use crate::cce::EndpointPolicy;

        const JWT: &str = "eyJ.SERVICE-ACCOUNT-JWT.sig";
        const SUBJECT: &str = "MII-UNSCOPED-SUBJECT-TOKEN";

        /// An IAM on loopback: `refuse` answers the id-token call with a 400 that quotes
        /// the token back; `huge` answers it with more than the answer cap.
        async fn iam(mode: &'static str) -> (Url, Arc<Mutex<Vec<(String, Value)>>>) {
            let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
            let record = |path: &'static str, seen: Arc<Mutex<Vec<(String, Value)>>>| {
                move |headers: AxumHeaders, body: String| {
                    let seen = seen.clone();
                    async move {
                        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        let idp = headers
                            .get("x-idp-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        seen.lock()
                            .expect("lock")
                            .push((format!("{path} {idp}"), json));
                        match (path, mode) {
                            ("id-token", "refuse") => (
                                AxumStatus::BAD_REQUEST,
                                format!(r#"{{"error": {{"code": 400, "message": "no conversion rule matches token {JWT}"}}}}"#),
                            )
                                .into_response(),
                            ("id-token", "huge") => {
                                (AxumStatus::CREATED, "x".repeat(5 << 20)).into_response()
                            }
                            ("id-token", _) => (
                                AxumStatus::CREATED,
                                [("X-Subject-Token", SUBJECT)],
                                "{\"token\": {}}",
                            )
                                .into_response(),
                            _ => (
                                AxumStatus::CREATED,
                                format!(r#"{{"credential": {{"access": "TMPAK", "secret": "{SECRET}", "securitytoken": "{SECURITY_TOKEN}", "expires_at": "2030-01-01T00:00:00.000000Z"}}}}"#),
                            )
                                .into_response(),
                        }
                    }
                }
            };
            let app = Router::new()
                .route(ID_TOKEN_PATH, post(record("id-token", seen.clone())))
                .route(
                    SECURITY_TOKENS_PATH,
                    post(record("securitytokens", seen.clone())),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            (Url::parse(&format!("http://{addr}")).expect("url"), seen)
        }

        fn exchanger() -> Exchanger {
            Exchanger::new(ClientConfig {
                iam_policy: EndpointPolicy {
                    allow_insecure: true,
                    ..EndpointPolicy::iam()
                },
                ..ClientConfig::default()
            })
            .expect("client")
        }

        #[tokio::test]
        async fn federation_sends_the_sdks_two_requests_and_returns_the_keys() {
            let (url, seen) = iam("ok").await;
            let t = exchanger()
                .federate(&url, "cluster-idp", &SecretString::from(JWT), 3600)
                .await
                .expect("exchanged");
            assert_eq!(t.credentials.secrets(), vec![SECRET, SECURITY_TOKEN]);
            let seen = seen.lock().expect("lock").clone();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[0].0, "id-token cluster-idp");
            assert_eq!(seen[0].1, json!({"auth": {"id_token": {"id": JWT}}}));
            assert_eq!(seen[1].0, "securitytokens ");
            assert_eq!(
                seen[1].1,
                json!({"auth": {"identity": {"methods": ["token"],
                    "token": {"id": SUBJECT, "duration_seconds": 3600}}}})
            );
        }

        #[tokio::test]
        async fn a_refusal_carries_iams_message_without_the_token() {
            let (url, _) = iam("refuse").await;
            let e = exchanger()
                .federate(&url, "cluster-idp", &SecretString::from(JWT), 3600)
                .await
                .expect_err("refused");
            assert_eq!(e.category(), "Unauthorized");
            let text = format!("{e} {e:?}");
            assert!(text.contains("no conversion rule matches token"), "{text}");
            assert!(!text.contains("SERVICE-ACCOUNT-JWT"), "{text}");
        }

        #[tokio::test]
        async fn an_answer_past_the_cap_is_refused() {
            let (url, _) = iam("huge").await;
            let e = exchanger()
                .federate(&url, "cluster-idp", &SecretString::from(JWT), 3600)
                .await
                .expect_err("too large");
            assert_eq!(e.category(), "InvalidIamResponse");
            assert!(e.to_string().contains("larger than"), "{e}");
        }

        #[tokio::test]
        async fn an_endpoint_outside_the_policy_is_never_called() {
            let e = Exchanger::new(ClientConfig::default())
                .expect("client")
                .federate(
                    &Url::parse("https://iam.example.com").expect("url"),
                    "idp",
                    &SecretString::from(JWT),
                    3600,
                )
                .await
                .expect_err("refused");
            assert_eq!(e.category(), "IamEndpointNotAllowed");
        }
    }
}
