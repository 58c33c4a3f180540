//! IAM's routes on the CCE listener, as Huawei's SDK calls them (`auth/internal.py` of
//! huaweicloudsdkcore): paths, headers, bodies and answers. The simulator's request
//! pipeline (faults, the request log) runs before these as before any CCE route. It knows
//! IAM and the credential store it issues into ([`Issuer`]), not the server around it.
//! Pure but for IAM's key reads (I/O, in [`super::jwks`]); the time is passed in.

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use parking_lot::RwLock;

use super::refusal::Refusal;
use super::{DOMAIN_ID, DOMAIN_NAME, Iam, Unscoped};
use crate::sim::auth::{CredentialStore, Issued, token_fingerprint};
use crate::sim::http::Answer;
use crate::sim::ids::derived_uuid;
use crate::sim::route::Route;

pub const ID_TOKEN_PATH: &str = "/v3.0/OS-AUTH/id-token/tokens";
pub const SECURITY_TOKENS_PATH: &str = "/v3.0/OS-CREDENTIAL/securitytokens";
pub const ASSUME_WITH_OIDC_PATH: &str = "/v5/agencies/assume-with-oidc";
/// The pod-identity agent's credentials path (`HC_CONTAINER_CREDENTIALS_FULL_URI`).
pub const POD_IDENTITY_PATH: &str = "/v1/pod-identity/credentials";

/// Largest IAM request body read (an ID token is a few KiB).
pub const MAX_IAM_BODY: usize = 64 * 1024;

/// The IAM route of a request, if it is one.
pub fn route(method: &Method, path: &str) -> Option<Route> {
    if method != Method::POST {
        return None;
    }
    match path {
        ID_TOKEN_PATH => Some(Route::IamIdToken),
        SECURITY_TOKENS_PATH => Some(Route::IamSecurityToken),
        ASSUME_WITH_OIDC_PATH => Some(Route::StsAssumeWithOidc),
        POD_IDENTITY_PATH => Some(Route::PodIdentity),
        _ => None,
    }
}

#[derive(Deserialize)]
struct IdTokenRequest {
    auth: IdTokenAuth,
}

#[derive(Deserialize)]
struct IdTokenAuth {
    id_token: IdTokenId,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize)]
struct IdTokenId {
    id: String,
}

#[derive(Deserialize)]
struct SecurityTokenRequest {
    auth: SecurityTokenAuth,
}

#[derive(Deserialize)]
struct SecurityTokenAuth {
    identity: SecurityTokenIdentity,
}

#[derive(Deserialize)]
struct SecurityTokenIdentity {
    methods: Vec<String>,
    #[serde(default)]
    token: Option<SecurityTokenToken>,
}

#[derive(Deserialize)]
struct SecurityTokenToken {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    duration_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct AssumeRequest {
    provider_urn: String,
    agency_urn: String,
    #[serde(default)]
    agency_session_name: Option<String>,
    id_token: String,
    #[serde(default)]
    duration_seconds: Option<u64>,
}

/// The body as `T`; what is wrong named without quoting any value (a value may be a token).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    if body.len() > MAX_IAM_BODY {
        return Err(Refusal::TooLarge);
    }
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let what = match e.classify() {
            serde_json::error::Category::Data
                if text.starts_with("missing field") || text.starts_with("unknown field") =>
            {
                text.split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }
            serde_json::error::Category::Data => "a field has the wrong type".to_string(),
            serde_json::error::Category::Eof => "the JSON ends early".to_string(),
            _ => "not JSON".to_string(),
        };
        Refusal::BadRequest(what)
    })
}

/// IAM's time format, `2023-06-28T08:56:33.710000Z`.
fn iam_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The answer to a body larger than [`MAX_IAM_BODY`].
pub fn too_large(request_id: &str) -> Answer {
    refused(&Refusal::TooLarge, request_id)
}

fn refused(r: &Refusal, request_id: &str) -> Answer {
    Answer {
        error_code: Some(r.code()),
        ..Answer::json(r.status(), &r.body(request_id))
    }
}

/// What IAM's routes work on: IAM itself, and the credentials the CCE API accepts, where
/// the temporary keys IAM issues go.
pub struct Issuer<'a> {
    pub iam: &'a Iam,
    pub store: &'a RwLock<CredentialStore>,
}

/// One IAM request, routed and read.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub route: Route,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub request_id: &'a str,
    pub now: jiff::Timestamp,
}

/// Serves one IAM request; `credential` is set to what names the caller in the request log
/// (the issued access key, or the fingerprint of the token presented).
pub async fn serve(
    issuer: &Issuer<'_>,
    call: &Call<'_>,
    credential: &mut Option<String>,
) -> Answer {
    let Call {
        route,
        headers,
        body,
        request_id,
        now,
    } = *call;
    let result = match route {
        Route::IamIdToken => id_token(issuer, headers, body, now, credential).await,
        Route::IamSecurityToken => security_token(issuer, headers, body, now, credential),
        Route::StsAssumeWithOidc => assume(issuer, body, now, credential).await,
        Route::PodIdentity => pod_identity(issuer, headers, now, credential).await,
        _ => Err(Refusal::BadRequest("not an IAM route".into())),
    };
    result.unwrap_or_else(|r| {
        tracing::debug!(route = route.as_str(), status = r.status().as_u16(), reason = %r.message(), "IAM refused");
        refused(&r, request_id)
    })
}

async fn id_token(
    issuer: &Issuer<'_>,
    headers: &[(String, String)],
    body: &[u8],
    now: jiff::Timestamp,
    credential: &mut Option<String>,
) -> Result<Answer, Refusal> {
    let idp = header(headers, "x-idp-id")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Refusal::BadRequest("the X-Idp-Id header is missing".into()))?;
    let request: IdTokenRequest = parse(body)?;
    *credential = Some(token_fingerprint(&request.auth.id_token.id));
    if request.auth.scope.is_some() {
        return Err(Refusal::BadRequest(
            "auth.scope is not supported by the simulator: ask for an unscoped token".into(),
        ));
    }
    let Unscoped {
        token,
        federated,
        issued_at,
        expires_at,
    } = issuer
        .iam
        .federate(idp, &request.auth.id_token.id, now)
        .await?;
    *credential = Some(token_fingerprint(&token));
    let user = &federated.identity.user;
    let body = json!({"token": {
        "expires_at": iam_time(expires_at),
        "issued_at": iam_time(issued_at),
        "methods": ["mapped"],
        "user": {
            "domain": {"id": DOMAIN_ID, "name": DOMAIN_NAME},
            "id": derived_uuid(&format!("iam-user/{user}")).replace('-', ""),
            "name": user,
            "OS-FEDERATION": {
                "identity_provider": {"id": federated.provider},
                "protocol": {"id": "oidc"},
                "groups": [{"id": derived_uuid(&format!("iam-group/{user}")).replace('-', ""), "name": user}],
            },
        },
    }});
    Ok(Answer {
        extra_headers: vec![("x-subject-token", token)],
        ..Answer::json(StatusCode::CREATED, &body)
    })
}

fn security_token(
    issuer: &Issuer<'_>,
    headers: &[(String, String)],
    body: &[u8],
    now: jiff::Timestamp,
    credential: &mut Option<String>,
) -> Result<Answer, Refusal> {
    let request: SecurityTokenRequest = parse(body)?;
    let identity = request.auth.identity;
    if identity.methods != ["token"] {
        return Err(Refusal::BadRequest(
            "auth.identity.methods must be [\"token\"]".into(),
        ));
    }
    let (body_token, duration) = identity
        .token
        .map_or((None, None), |t| (t.id, t.duration_seconds));
    let token = body_token
        .or_else(|| header(headers, "x-auth-token").map(str::to_string))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Refusal::BadRequest("give auth.identity.token.id or X-Auth-Token".into()))?;
    *credential = Some(token_fingerprint(&token));
    let issued = issuer.iam.exchange(&token, duration, now)?;
    let answer = Answer::json(
        StatusCode::CREATED,
        &json!({"credential": {
            "access": issued.access_key,
            "secret": issued.secret_key,
            "securitytoken": issued.security_token,
            "expires_at": iam_time(issued.expires_at),
        }}),
    );
    accept(issuer, issued, now, credential);
    Ok(answer)
}

async fn assume(
    issuer: &Issuer<'_>,
    body: &[u8],
    now: jiff::Timestamp,
    credential: &mut Option<String>,
) -> Result<Answer, Refusal> {
    let r: AssumeRequest = parse(body)?;
    *credential = Some(token_fingerprint(&r.id_token));
    let session = r.agency_session_name.unwrap_or_default();
    let issued = issuer
        .iam
        .assume(
            &r.provider_urn,
            &r.agency_urn,
            &session,
            &r.id_token,
            r.duration_seconds,
            now,
        )
        .await?;
    let answer = Answer::json(StatusCode::OK, &sts_credentials(&issued));
    accept(issuer, issued, now, credential);
    Ok(answer)
}

async fn pod_identity(
    issuer: &Issuer<'_>,
    headers: &[(String, String)],
    now: jiff::Timestamp,
    credential: &mut Option<String>,
) -> Result<Answer, Refusal> {
    let token = header(headers, "authorization")
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Refusal::BadRequest("the Authorization header is missing".into()))?;
    *credential = Some(token_fingerprint(token));
    let issued = issuer.iam.pod_identity(token, now).await?;
    let answer = Answer::json(StatusCode::OK, &sts_credentials(&issued));
    accept(issuer, issued, now, credential);
    Ok(answer)
}

/// STS's credentials object, which the pod-identity agent answers too.
fn sts_credentials(issued: &Issued) -> Value {
    json!({"credentials": {
        "access_key_id": issued.access_key,
        "secret_access_key": issued.secret_key,
        "security_token": issued.security_token,
        "expiration": iam_time(issued.expires_at),
    }})
}

/// Makes `issued` accepted by the CCE API.
fn accept(
    issuer: &Issuer<'_>,
    issued: Issued,
    now: jiff::Timestamp,
    credential: &mut Option<String>,
) {
    *credential = Some(issued.access_key.clone());
    issuer.store.write().issue(issued, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_posts_to_the_sdks_paths_are_iam_routes() {
        assert_eq!(route(&Method::POST, ID_TOKEN_PATH), Some(Route::IamIdToken));
        assert_eq!(
            route(&Method::POST, SECURITY_TOKENS_PATH),
            Some(Route::IamSecurityToken)
        );
        assert_eq!(
            route(&Method::POST, ASSUME_WITH_OIDC_PATH),
            Some(Route::StsAssumeWithOidc)
        );
        assert_eq!(
            route(&Method::POST, POD_IDENTITY_PATH),
            Some(Route::PodIdentity)
        );
        assert_eq!(route(&Method::GET, ID_TOKEN_PATH), None);
        assert_eq!(route(&Method::POST, "/v3/auth/tokens"), None);
    }

    #[test]
    fn bad_bodies_are_named_without_quoting_values() {
        let secret = "eyJhbGciOiJSUzI1NiJ9.secret-payload.sig";
        let cases = [
            (
                json!({"auth": {"id_token": {"id": 5}}}).to_string(),
                "wrong type",
            ),
            (json!({"auth": {}}).to_string(), "missing field `id_token`"),
            (
                format!("{{\"auth\": {{\"id_token\": {{\"id\": \"{secret}\""),
                "ends early",
            ),
            (format!("{secret} not json"), "not JSON"),
        ];
        for (body, says) in cases {
            let Err(Refusal::BadRequest(what)) = parse::<IdTokenRequest>(body.as_bytes()) else {
                panic!("{body} accepted");
            };
            assert!(what.contains(says), "{body}: {what}");
            assert!(!what.contains("secret"), "{what}");
        }
        let huge = vec![b' '; MAX_IAM_BODY + 1];
        assert_eq!(
            parse::<IdTokenRequest>(&huge).err(),
            Some(Refusal::TooLarge)
        );
    }

    #[test]
    fn times_have_iams_format() {
        let t: jiff::Timestamp = "2023-06-28T08:56:33.71Z".parse().expect("ts");
        assert_eq!(iam_time(t), "2023-06-28T08:56:33.710000Z");
    }
}
