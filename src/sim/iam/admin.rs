//! IAM's part of the admin API (same listener, same conventions as
//! [`crate::sim::admin`]): what IAM is configured with, what it issued (never a secret),
//! and the hooks tests use to age or expire what it issued. I/O: HTTP handlers over the
//! shared [`Sim`].
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/_sim/iam` | | `{providers, rules, lifetimes, aheadSeconds}` |
//! | PUT | `/_sim/iam` | an IAM configuration (`--iam-config` format) | replaces it; the new one |
//! | POST | `/_sim/iam/rules` | a rule or a list of rules | appends them; the configuration |
//! | PUT | `/_sim/iam/lifetimes` | `{token?, credentialCap?, podIdentity?}` | replaces the lifetimes; the configuration |
//! | GET | `/_sim/iam/issued` | | `{"credentials": [{kind, id, projectIDs, expiresAt, issuedTo}], "tokens": [{id, user, provider, subject, expiresAt}]}` |
//! | POST | `/_sim/iam/advance` | `{seconds}` (scenario seconds, ≥ 0) | moves IAM's clock ahead: ID tokens age, every issued expiry comes closer; `{"aheadSeconds": s}` |
//! | POST | `/_sim/iam/expire` | `{accessKey?}` | expires that issued key now, or every issued key and token; `{"expired": n}` |
//! | DELETE | `/_sim/iam/keys` | | forgets the signing keys read, so the next token reads them again; 204 |

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{IamConfig, Lifetimes, RuleDef};
use crate::sim::http::{AdminResult as Result, bad, body, not_found, ok_json};
use crate::sim::server::Sim;

type Shared = State<Arc<Sim>>;

/// IAM's admin routes over `sim`, to merge into the admin router whatever its state.
pub fn routes<S>(sim: Arc<Sim>) -> Router<S> {
    Router::new()
        .route("/_sim/iam", get(show).put(replace))
        .route("/_sim/iam/rules", post(add_rules))
        .route("/_sim/iam/lifetimes", put(lifetimes))
        .route("/_sim/iam/issued", get(issued))
        .route("/_sim/iam/advance", post(advance))
        .route("/_sim/iam/expire", post(expire))
        .route("/_sim/iam/keys", delete(forget_keys))
        .with_state(sim)
}

fn view(sim: &Sim) -> Response {
    let config = sim.iam.config();
    ok_json(json!({
        "providers": config.providers,
        "rules": config.rules,
        "lifetimes": config.lifetimes,
        "aheadSeconds": sim.iam.ahead().as_secs_f64(),
    }))
}

async fn show(State(a): Shared) -> Response {
    view(&a)
}

async fn replace(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let config: IamConfig = body(&bytes)?;
    a.iam.replace(config).map_err(bad)?;
    Ok(view(&a))
}

async fn add_rules(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let rules = match body::<Value>(&bytes)? {
        Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<std::result::Result<Vec<RuleDef>, _>>(),
        one => serde_json::from_value(one).map(|r| vec![r]),
    }
    .map_err(|e| bad(format!("invalid rule: {e}")))?;
    a.iam.add_rules(rules).map_err(bad)?;
    Ok(view(&a))
}

async fn lifetimes(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let lifetimes: Lifetimes = body(&bytes)?;
    a.iam.set_lifetimes(lifetimes);
    Ok(view(&a))
}

async fn issued(State(a): Shared) -> Response {
    let credentials = a.credentials.read().issued_views();
    ok_json(json!({"credentials": credentials, "tokens": a.iam.token_views()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    seconds: f64,
}

async fn advance(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let AdvanceBody { seconds } = body(&bytes)?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(bad("seconds must be a number, zero or more"));
    }
    let by = a.iam.advance(seconds);
    a.credentials.write().shorten_issued(by);
    Ok(ok_json(
        json!({"aheadSeconds": a.iam.ahead().as_secs_f64()}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpireBody {
    #[serde(default)]
    access_key: Option<String>,
}

async fn expire(State(a): Shared, bytes: Bytes) -> Result<Response> {
    let ExpireBody { access_key } = body(&bytes)?;
    let now = a.clock.now();
    let expired = a
        .credentials
        .write()
        .expire_issued(access_key.as_deref(), now);
    if access_key.is_none() {
        a.iam.expire_tokens(now);
    } else if expired == 0 {
        return Err(not_found("no issued key with that access key"));
    }
    Ok(ok_json(json!({"expired": expired})))
}

async fn forget_keys(State(a): Shared) -> StatusCode {
    a.iam.forget_keys();
    StatusCode::NO_CONTENT
}
