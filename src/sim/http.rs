//! HTTP answers as the simulator's listeners give them: [`Answer`], what the CCE and IAM
//! request pipeline decided before it becomes a response (CCE's and the API gateway's
//! error bodies, `X-Request-Id`, `Retry-After`), and the admin API's JSON answers and
//! `{"error": …}` failures. A leaf: it uses no other simulator module, so the CCE server,
//! IAM's routes and both admin routers share it without depending on each other. Pure.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use serde_json::json;

/// What the pipeline decided, before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
    pub error_code: Option<String>,
    /// Headers beyond the usual ones (IAM's `X-Subject-Token`).
    pub extra_headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Answer {
        Answer {
            status,
            // Serializing our own model types cannot fail; an empty body would show it.
            body: serde_json::to_vec(value).unwrap_or_default(),
            retry_after: None,
            error_code: None,
            extra_headers: Vec::new(),
        }
    }

    /// 200 with `value` as JSON.
    pub fn ok(value: impl serde::Serialize) -> Answer {
        Answer::json(StatusCode::OK, &value)
    }

    /// CCE's own error body (§9.1).
    pub fn cce_error(status: StatusCode, code: &str, message: &str) -> Answer {
        Answer {
            error_code: Some(code.into()),
            ..Answer::json(status, &json!({"errorCode": code, "errorMessage": message}))
        }
    }

    /// The API gateway's error body (§9.1).
    pub fn gateway_error(
        status: StatusCode,
        code: &str,
        message: &str,
        request_id: &str,
    ) -> Answer {
        Answer {
            error_code: Some(code.into()),
            ..Answer::json(
                status,
                &json!({"error_code": code, "error_msg": message, "request_id": request_id}),
            )
        }
    }

    /// What the gateway answers for a path or method it does not route.
    pub fn unknown_api(request_id: &str) -> Answer {
        Answer::gateway_error(
            StatusCode::NOT_FOUND,
            "APIGW.0101",
            "The API does not exist or has not been published in the environment",
            request_id,
        )
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in self.extra_headers {
            if let Ok(mut v) = HeaderValue::from_str(&value) {
                v.set_sensitive(true);
                headers.insert(name, v);
            }
        }
        response
    }
}

/// A refused admin request: its status and why, answered as `{"error": …}`.
pub struct AdminError(pub StatusCode, pub String);

impl IntoResponse for AdminError {
    fn into_response(self) -> axum::response::Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

pub type AdminResult<T> = std::result::Result<T, AdminError>;

pub fn bad(msg: impl Into<String>) -> AdminError {
    AdminError(StatusCode::BAD_REQUEST, msg.into())
}

pub fn not_found(msg: impl Into<String>) -> AdminError {
    AdminError(StatusCode::NOT_FOUND, msg.into())
}

/// Parses a JSON or YAML body; an empty body reads as `{}`.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> AdminResult<T> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("body is not UTF-8"))?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_yaml::from_str(text).map_err(|e| bad(format!("invalid body: {e}")))
}

pub fn ok_json(value: impl serde::Serialize) -> axum::response::Response {
    axum::Json(value).into_response()
}
