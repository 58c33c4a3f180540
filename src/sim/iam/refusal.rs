//! Why IAM refuses a request, and the answer it gives: Huawei's API error body
//! `{"error_code", "error_msg", "request_id"}`, the one shape both of the SDK's exception
//! handlers read (the core's and CCE's, which IAM's answers pass through when the SDK
//! federates for a CCE client). A malformed request has IAM's documented `IAM.0007`;
//! other refusals carry their HTTP status as the code, as the SDK reports an IAM answer
//! without one. The wording follows IAM's and Keystone's where known and is marked
//! inferred in the simulator's docs otherwise. No message ever contains a token. Pure.

use axum::http::StatusCode;
use serde_json::json;

/// Longest piece of caller input (a subject, a key id) quoted in a message.
const MAX_QUOTED: usize = 128;

/// `text` made safe to quote: printable characters only, cut to a bounded length.
pub fn quoted(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_QUOTED)
        .collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `X-Idp-Id`, a provider URN or a token's issuer names no configured provider.
    UnknownProvider(String),
    /// The body is not what the API takes (what is wrong, never the values).
    BadRequest(String),
    /// The body is larger than IAM reads.
    TooLarge,
    /// The id token is not a JWT of a supported algorithm.
    MalformedToken,
    /// Its signature does not verify with the provider's key.
    BadSignature,
    /// Its `kid` is not among the provider's keys, even after reading them again.
    UnknownKey(String),
    /// The provider's keys could not be read.
    KeysUnavailable,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    /// No conversion rule of the provider matches the subject.
    NoRule {
        provider: String,
        subject: String,
    },
    /// The unscoped token given to `securitytokens` is unknown.
    TokenInvalid,
    /// The unscoped token has expired.
    TokenExpired,
    /// `duration_seconds` outside what the API allows.
    Duration {
        min: u64,
        max: u64,
    },
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::UnknownProvider(_) => StatusCode::NOT_FOUND,
            Refusal::BadRequest(_) | Refusal::Duration { .. } => StatusCode::BAD_REQUEST,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::UnknownProvider(id) => {
                format!("Could not find identity provider: {}.", quoted(id))
            }
            Refusal::BadRequest(what) => format!("Invalid request body: {what}."),
            Refusal::TooLarge => "Request body is too large.".into(),
            Refusal::MalformedToken => "The id_token is not a valid JWT.".into(),
            Refusal::BadSignature => "The id_token signature verification failed.".into(),
            Refusal::UnknownKey(kid) => format!(
                "The id_token signing key {} is not among the identity provider's keys.",
                quoted(kid)
            ),
            Refusal::KeysUnavailable => {
                "The identity provider's signing keys could not be read.".into()
            }
            Refusal::WrongIssuer => {
                "The id_token issuer does not match the identity provider.".into()
            }
            Refusal::WrongAudience => {
                "The id_token audience does not match the identity provider's client ID.".into()
            }
            Refusal::Expired => "The id_token has expired.".into(),
            Refusal::NotYetValid => "The id_token is not yet valid.".into(),
            Refusal::NoRule { provider, subject } => format!(
                "Could not map any federated user properties to identity values: no identity \
                 conversion rule of identity provider {} matches subject {}.",
                quoted(provider),
                quoted(subject)
            ),
            Refusal::TokenInvalid => "The token is invalid.".into(),
            Refusal::TokenExpired => "The token has expired.".into(),
            Refusal::Duration { min, max } => {
                format!("duration_seconds must be between {min} and {max}.")
            }
        }
    }

    /// The answer body.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        json!({"error_code": self.code(), "error_msg": self.message(), "request_id": request_id})
    }

    pub fn code(&self) -> String {
        match self {
            Refusal::BadRequest(_) | Refusal::TooLarge => "IAM.0007".into(),
            _ => self.status().as_u16().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_iams_shape_and_quote_input_bounded() {
        let r = Refusal::NoRule {
            provider: "plane".into(),
            subject: "system:serviceaccount:a:b".into(),
        };
        let body = r.body("req-1");
        assert_eq!(body["error_code"], json!("401"));
        assert_eq!(body["request_id"], json!("req-1"));
        assert!(
            body["error_msg"]
                .as_str()
                .is_some_and(|m| m.contains("system:serviceaccount:a:b")),
            "{body}"
        );
        assert_eq!(Refusal::UnknownProvider("x".into()).status(), 404);
        assert_eq!(Refusal::TooLarge.status(), 413);
        assert_eq!(Refusal::Duration { min: 1, max: 2 }.code(), "400");
        assert_eq!(Refusal::BadRequest("x".into()).code(), "IAM.0007");
        let long = "k".repeat(10_000) + "\n";
        let m = Refusal::UnknownKey(long).message();
        assert!(m.len() < 400, "{m}");
        assert!(!m.contains('\n'));
        assert_eq!(quoted("a\u{7}b"), "a?b");
    }
}
