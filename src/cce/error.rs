//! What can go wrong talking to CCE, classified once here: a bounded `category()` for
//! condition reasons and metric labels, `is_retryable()` for the requeue policy, and
//! `retry_after()` for throttling. Text from servers is sanitised and scrubbed of the
//! caller's secrets before it lands in an error.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::failure::Category;

/// Details of an HTTP error answer (cce-api.md §9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiFailure {
    pub status: u16,
    /// `error_code` (APIG) or `errorCode` (CCE), e.g. `APIGW.0301`, `CCE.01404001`.
    pub error_code: Option<String>,
    /// `error_msg` / `errorMessage`, with `message` appended as Huawei's SDK does.
    pub message: Option<String>,
    /// Present on IAM permission denials; decodable with IAM's decode API.
    pub encoded_authorization_message: Option<String>,
    /// `X-Request-Id` (or the body's `request_id` when the header is absent).
    pub request_id: Option<String>,
    /// From `Retry-After` (seconds or HTTP-date).
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.error_code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(encoded) = &self.encoded_authorization_message {
            write!(f, " (encoded authorization message: {encoded})")?;
        }
        if let Some(after) = self.retry_after {
            write!(f, " (retry after {}s)", after.as_secs())?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// An error from the CCE client. Display text never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CceError {
    /// The endpoint or region cannot be turned into a URL.
    #[error("invalid CCE endpoint: {reason}")]
    InvalidEndpoint { reason: String },
    /// The endpoint is a valid URL the endpoint policy refuses.
    #[error("endpoint {origin} is not allowed: {reason}")]
    EndpointNotAllowed { origin: String, reason: String },
    /// A local setting is unusable (CA bundle, ids, credentials).
    #[error("invalid CCE client configuration: {reason}")]
    InvalidConfig { reason: String },
    /// 401: bad signature, token, clock skew or locked access key.
    #[error("CCE rejected the credentials ({0})")]
    Unauthorized(ApiFailure),
    /// 403: the credentials lack permission for this project or cluster.
    #[error("CCE denied access ({0})")]
    Forbidden(ApiFailure),
    /// 404: no such project, cluster or workflow.
    #[error("CCE found no such resource ({0})")]
    NotFound(ApiFailure),
    /// 429: throttled by API Gateway or CCE.
    #[error("CCE throttled the request ({0})")]
    RateLimited(ApiFailure),
    /// 5xx.
    #[error("CCE is unavailable ({0})")]
    Server(ApiFailure),
    /// Any other 4xx.
    #[error("CCE refused the request ({0})")]
    Client(ApiFailure),
    /// No complete answer within the configured time.
    #[error("CCE request timed out while {stage} (after {}s)", after.as_secs_f32())]
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    /// Connecting, TLS or the connection failing mid-exchange.
    #[error("cannot reach CCE: {detail}")]
    Transport { detail: String },
    /// An answer that is not what the API defines (not JSON, wrong shape, unexpected status).
    #[error("CCE sent an invalid response (HTTP {status}{}): {reason}; body starts: {excerpt:?}",
        request_id.as_ref().map(|id| format!(", request id {id}")).unwrap_or_default())]
    InvalidResponse {
        status: u16,
        request_id: Option<String>,
        reason: String,
        excerpt: String,
    },
}

impl CceError {
    /// A bounded CamelCase name: usable as a condition reason, event reason or metric label.
    pub fn category(&self) -> Category {
        match self {
            Self::InvalidEndpoint { .. } => Category::InvalidEndpoint,
            Self::EndpointNotAllowed { .. } => Category::EndpointNotAllowed,
            Self::InvalidConfig { .. } => Category::InvalidConfig,
            Self::Unauthorized(_) => Category::Unauthorized,
            Self::Forbidden(_) => Category::Forbidden,
            Self::NotFound(_) => Category::NotFound,
            Self::RateLimited(_) => Category::RateLimited,
            Self::Server(_) => Category::CceUnavailable,
            Self::Client(_) => Category::BadRequest,
            Self::Timeout { .. } => Category::Timeout,
            Self::Transport { .. } => Category::Transport,
            Self::InvalidResponse { .. } => Category::InvalidResponse,
        }
    }

    /// Whether the same call may succeed soon without anyone changing anything. Permanent
    /// errors still deserve a slow retry (permissions get granted, workflows get created),
    /// but never a fast one: APIG locks an access key after repeated 401s.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited(_) | Self::Server(_) | Self::Timeout { .. } | Self::Transport { .. }
        )
    }

    /// The server's requested wait, for 429 (and 503-style 5xx answers that send one).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(f) | Self::Server(f) => f.retry_after,
            _ => None,
        }
    }

    /// 403 or 404: for a diagnostic read (pre-check, upgrade task, cluster, snapshots), CCE
    /// saying the API is not granted to this account or knows no such task, which means
    /// "diagnostics unavailable" rather than a failed sync.
    pub fn is_denied_or_absent(&self) -> bool {
        matches!(self, Self::Forbidden(_) | Self::NotFound(_))
    }

    /// The HTTP error details, when CCE answered with an error status.
    pub fn api_failure(&self) -> Option<&ApiFailure> {
        match self {
            Self::Unauthorized(f)
            | Self::Forbidden(f)
            | Self::NotFound(f)
            | Self::RateLimited(f)
            | Self::Server(f)
            | Self::Client(f) => Some(f),
            _ => None,
        }
    }

    /// The request id CCE gave the failed call, to quote to Huawei support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::InvalidResponse { request_id, .. } => request_id.as_deref(),
            _ => self.api_failure()?.request_id.as_deref(),
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::InvalidResponse { status, .. } => Some(*status),
            _ => self.api_failure().map(|f| f.status),
        }
    }

    /// Classifies an HTTP error status.
    pub(crate) fn from_failure(failure: ApiFailure) -> Self {
        match failure.status {
            401 => Self::Unauthorized(failure),
            403 => Self::Forbidden(failure),
            404 => Self::NotFound(failure),
            429 => Self::RateLimited(failure),
            500..=599 => Self::Server(failure),
            _ => Self::Client(failure),
        }
    }
}

/// Reads an error body the way Huawei's CCE SDK handler does (cce-api.md §9.2), plus the
/// Keystone-style `{"error": {...}}` nesting IAM uses. Returns (code, message,
/// encoded_authorization_message, request_id); all `None` for a body that is not JSON.
pub(crate) fn parse_error_body(
    body: &[u8],
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let Ok(serde_json::Value::Object(root)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return (None, None, None, None);
    };
    let text = |obj: &serde_json::Map<String, serde_json::Value>, key: &str| match obj.get(key) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut code = text(&root, "error_code").or_else(|| text(&root, "errorCode"));
    let mut message = text(&root, "error_msg").or_else(|| text(&root, "errorMessage"));
    if let Some(extra) = text(&root, "message") {
        message = match message {
            None => Some(extra),
            Some(m) if m == extra => Some(m),
            Some(m) => Some(format!("{m}, {extra}")),
        };
    }
    if let Some(serde_json::Value::Object(nested)) = root.get("error") {
        code = code.or_else(|| text(nested, "code"));
        message = message.or_else(|| text(nested, "message"));
    }
    let encoded = text(&root, "encoded_authorization_message");
    let request_id = text(&root, "request_id");
    (code, message, encoded, request_id)
}

/// The longest wait a `Retry-After` header is taken to ask for: a larger number of seconds,
/// or a date further ahead, reads as this. It keeps every instant computed from the header
/// representable; the poll scheduler caps the wait further, at its backoff cap.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Parses `Retry-After`: delay-seconds or an HTTP-date (relative to `now`), at most
/// [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too many for u64 is still a number of seconds: a very long one.
        value
            .parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        let now = std::time::SystemTime::UNIX_EPOCH
            + Duration::try_from(now.duration_since(jiff::Timestamp::UNIX_EPOCH)).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The caller's secrets in each form an answer can echo them in: verbatim, escaped inside a
/// JSON string (with or without `\/`), or percent-encoded.
#[derive(Default)]
pub(crate) struct Secrets<'a> {
    forms: Vec<Cow<'a, str>>,
}

impl<'a> Secrets<'a> {
    pub(crate) fn new(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms: Vec<Cow<'a, str>> = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            let json = serde_json::to_string(secret).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            let json_slashes = json.replace('/', "\\/");
            let percent = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
            forms.push(Cow::Borrowed(secret));
            forms.extend([json, json_slashes, percent].map(Cow::Owned));
        }
        // Longest first, so that a secret containing another is replaced whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Secrets { forms }
    }

    /// Bytes of the longest form: how far past a cut a secret may reach.
    pub(crate) fn longest(&self) -> usize {
        self.forms.first().map_or(0, |f| f.len())
    }

    /// Whether a string decoded from `body` could hold a secret: the body has one in some
    /// form, or a JSON escape that could spell one. Without either, every decoded string is
    /// a piece of the raw text, which holds none.
    pub(crate) fn may_be_in(&self, body: &[u8]) -> bool {
        if self.forms.is_empty() {
            return false;
        }
        match std::str::from_utf8(body) {
            Ok(text) => text.contains('\\') || self.forms.iter().any(|f| text.contains(f.as_ref())),
            Err(_) => true,
        }
    }

    /// Scrubs every string of a decoded answer, object keys included.
    pub(crate) fn scrub_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(text) => {
                if self.forms.iter().any(|f| text.contains(f.as_ref())) {
                    *text = self.scrub(text);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.scrub_json(item)),
            Value::Object(map) => {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, mut item)| {
                        self.scrub_json(&mut item);
                        (self.scrub(&key), item)
                    })
                    .collect();
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for form in &self.forms {
            if text.contains(form.as_ref()) {
                text = text.replace(form.as_ref(), "[REDACTED]");
            }
        }
        text
    }
}

/// Makes server-supplied text safe for one log line or condition message: no control
/// characters, collapsed whitespace, bounded length, and none of `secrets` verbatim.
pub(crate) fn sanitize(raw: &str, max_chars: usize, secrets: &Secrets<'_>) -> String {
    let text = secrets.scrub(raw);
    let collapsed = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if collapsed.chars().count() <= max_chars {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16) -> ApiFailure {
        ApiFailure {
            status,
            ..ApiFailure::default()
        }
    }

    #[test]
    fn statuses_map_to_bounded_categories() {
        let cases = [
            (400, "BadRequest", false),
            (401, "Unauthorized", false),
            (403, "Forbidden", false),
            (404, "NotFound", false),
            (409, "BadRequest", false),
            (429, "RateLimited", true),
            (500, "CceUnavailable", true),
            (503, "CceUnavailable", true),
        ];
        for (status, category, retryable) in cases {
            let e = CceError::from_failure(failure(status));
            assert_eq!(e.category().as_str(), category, "{status}");
            assert_eq!(e.is_retryable(), retryable, "{status}");
            assert_eq!(
                e.is_denied_or_absent(),
                matches!(status, 403 | 404),
                "{status}"
            );
        }
    }

    #[test]
    fn error_bodies_combine_like_the_sdk() {
        let apig = br#"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail","request_id":"r1"}"#;
        assert_eq!(
            parse_error_body(apig),
            (
                Some("APIGW.0301".into()),
                Some("Incorrect IAM authentication information: verify aksk signature fail".into()),
                None,
                Some("r1".into())
            )
        );
        let cce =
            br#"{"errorCode":"CCE.01404001","errorMessage":"not found","message":"workflow x"}"#;
        let (code, message, _, _) = parse_error_body(cce);
        assert_eq!(code.as_deref(), Some("CCE.01404001"));
        assert_eq!(message.as_deref(), Some("not found, workflow x"));
        let only_message = br#"{"kind":"Status","message":"gone","code":410}"#;
        assert_eq!(parse_error_body(only_message).1.as_deref(), Some("gone"));
        let keystone = br#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#;
        let (code, message, _, _) = parse_error_body(keystone);
        assert_eq!(code.as_deref(), Some("401"));
        assert!(message.is_some());
        let denied = br#"{"error_code":"CCE.01403000","error_msg":"denied","encoded_authorization_message":"ENC123"}"#;
        assert_eq!(parse_error_body(denied).2.as_deref(), Some("ENC123"));
        assert_eq!(parse_error_body(b"<html>").0, None);
        assert_eq!(parse_error_body(b"[1,2]").0, None);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:28:00Z".parse().expect("ts");
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retry_after_is_capped_however_far_it_points() {
        let now: jiff::Timestamp = "2015-10-21T07:28:00Z".parse().expect("ts");
        for far in [
            "3601",
            "18446744073709551615",
            "99999999999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(far, now), Some(MAX_RETRY_AFTER), "{far}");
        }
    }

    #[test]
    fn sanitize_bounds_flattens_and_scrubs() {
        let none = Secrets::default();
        assert_eq!(sanitize("a\n\tb\u{7}  c", 50, &none), "a b c");
        assert_eq!(sanitize("abcdef", 3, &none), "abc…");
        let secrets = Secrets::new(["SECRET1", "SECRET2", ""]);
        assert_eq!(
            sanitize("token=SECRET1 sk=SECRET2", 100, &secrets),
            "token=[REDACTED] sk=[REDACTED]"
        );
    }

    #[test]
    fn secrets_are_scrubbed_in_every_form_an_echo_can_take() {
        let secret = "ab/c+d=e\"f";
        let secrets = Secrets::new([secret]);
        for echoed in [
            secret.to_string(),
            serde_json::to_string(secret).expect("json"),
            serde_json::to_string(secret)
                .expect("json")
                .replace('/', "\\/"),
            "ab%2Fc%2Bd%3De%22f".to_string(),
        ] {
            let clean = sanitize(&format!("x {echoed} y"), 200, &secrets);
            assert!(
                !clean.contains("ab/c") && !clean.contains("ab\\/c"),
                "{clean}"
            );
            assert!(!clean.contains("%2Bd"), "{clean}");
        }
    }

    #[test]
    fn display_is_one_line_with_code_message_and_request_id() {
        let e = CceError::Unauthorized(ApiFailure {
            status: 401,
            error_code: Some("APIGW.0301".into()),
            message: Some("verify aksk signature fail".into()),
            request_id: Some("req-1".into()),
            ..ApiFailure::default()
        });
        assert_eq!(
            e.to_string(),
            "CCE rejected the credentials (HTTP 401 APIGW.0301: verify aksk signature fail [request id req-1])"
        );
        assert_eq!(e.request_id(), Some("req-1"));
        assert_eq!(e.status(), Some(401));
    }
}

/// Whatever an error answer holds, reading it never panics and never lets a secret through.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Error bodies in the shapes CCE, APIG and IAM use, with fields of any type.
    fn error_body() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            any::<String>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(serde_json::json!({"code": "IAM.0001", "message": "nested"})),
        ];
        let key = prop::sample::select(vec![
            "error_code",
            "errorCode",
            "error_msg",
            "errorMessage",
            "message",
            "error",
            "encoded_authorization_message",
            "request_id",
        ]);
        prop_oneof![
            prop::collection::btree_map(key, value, 0..6)
                .prop_map(|m| serde_json::to_vec(&m).unwrap_or_default()),
            any::<Vec<u8>>(),
        ]
    }

    proptest! {
        #[test]
        fn any_error_body_is_read_without_panicking(body in error_body()) {
            let _ = parse_error_body(&body);
        }

        #[test]
        fn retry_after_of_any_value_is_read_without_panicking(raw in any::<String>(), secs in any::<u64>()) {
            let now = jiff::Timestamp::now();
            let _ = parse_retry_after(&raw, now);
            prop_assert_eq!(
                parse_retry_after(&secs.to_string(), now),
                Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
            );
        }

        #[test]
        fn sanitized_text_never_contains_a_secret(
            raw in any::<String>(),
            secret in "[A-Za-z0-9+/=_-]{4,40}",
            max in 1usize..400,
        ) {
            let text = format!("{raw}{secret}{raw}");
            let clean = sanitize(&text, max, &Secrets::new([secret.as_str()]));
            prop_assert!(!clean.contains(&secret));
            prop_assert!(clean.chars().count() <= max + 1);
            prop_assert!(!clean.chars().any(char::is_control));
        }
    }
}
