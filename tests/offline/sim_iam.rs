//! The simulator's IAM without a control plane: an identity provider whose P-256 key this
//! test makes and serves from loopback, tokens signed with it, and IAM's admin routes —
//! lifetimes, expiring keys, forgetting keys, validation. The same flows against the real
//! API server's keys are in `tests/e2e/iam.rs`.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cce_upgrade_watch::sim::builtin::{self, Builtin};
use cce_upgrade_watch::sim::iam::testkey::TestKey;
use common::sim::Sim;
use serde_json::{Value, json};

const ISSUER: &str = "https://issuer.test";
const CLIENT: &str = "cce";
const IDP: &str = "test-idp";
const SUBJECT: &str = "system:serviceaccount:team:app";

/// A key, the JWKS server that publishes it, and how often that was read.
struct Issuer {
    key: TestKey,
    url: String,
    reads: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start() -> Issuer {
        let key = TestKey::new("test-key").expect("key");
        let jwks = key.jwks();
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&reads);
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (counted, jwks) = (Arc::clone(&counted), jwks.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    axum::Json(jwks)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer {
            key,
            url,
            reads,
            _server: server,
        }
    }

    fn token(&self, kid: &str, exp_in: i64) -> String {
        let now = jiff::Timestamp::now().as_second();
        let claims = json!({"iss": ISSUER, "aud": [CLIENT], "sub": SUBJECT,
            "iat": now, "exp": now + exp_in});
        self.key.sign_as(kid, &claims).expect("sign")
    }

    fn good(&self) -> String {
        self.token(&self.key.kid, 600)
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

/// The simulator with IAM knowing `issuer` and one rule for [`SUBJECT`].
fn start(issuer: &Issuer, dir: &tempfile::TempDir, lifetimes: Value) -> Sim {
    let config = json!({
        "providers": [{"id": IDP, "issuer": ISSUER, "clientIds": [CLIENT],
            "jwks": {"url": issuer.url}}],
        "rules": [{"provider": IDP, "sub": "system:serviceaccount:team:*", "user": "team",
            "projectIDs": [builtin::PROJECT_ID]}],
        "lifetimes": lifetimes,
    });
    let path = dir.path().join("iam.json");
    std::fs::write(&path, config.to_string()).expect("write");
    Sim::http()
        .scenario(Builtin::Success)
        .args(&["--iam-config", &path.to_string_lossy()])
        .start()
}

fn iam_time(v: &Value) -> jiff::Timestamp {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

#[tokio::test]
async fn the_unscoped_token_lives_its_lifetime_and_keys_never_outlive_it() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(&issuer, &dir, json!({"token": "20m"}));
    assert!(
        sim.banner()
            .await
            .contains("iam: 1 identity providers, 1 conversion rules"),
        "{}",
        sim.banner().await
    );
    let unscoped = sim.federate_with(IDP, &issuer.good()).await;
    assert_eq!(unscoped.status, 201, "{:?}", unscoped.body);
    let token_expiry = iam_time(&unscoped.body["token"]["expires_at"]);
    let issued_at = iam_time(&unscoped.body["token"]["issued_at"]);
    assert_eq!(token_expiry.duration_since(issued_at).as_secs(), 1200);
    let token = unscoped.subject_token.expect("X-Subject-Token");
    // An hour asked for, twenty minutes of token left: the keys end with the token.
    let keys = sim.security_token(&token, 3600).await;
    assert_eq!(keys.status, 201, "{:?}", keys.body);
    assert_eq!(
        iam_time(&keys.body["credential"]["expires_at"]),
        token_expiry
    );
    let (credentials, access) = keys.temporary_keys();
    sim.show_with(credentials.clone()).await.expect("accepted");

    // Expiring one key by its access key: refused at once, the token still good.
    sim.iam_expire(Some(&access)).await;
    assert!(sim.show_with(credentials).await.is_err());
    assert_eq!(sim.security_token(&token, 900).await.status, 201);
    let (status, _) = sim
        .admin_post("/_sim/iam/expire", json!({"accessKey": "NOSUCHKEY"}))
        .await;
    assert_eq!(status, 404);
    // Expiring everything: the token too.
    sim.iam_expire(None).await;
    let a = sim.security_token(&token, 900).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.body["error_msg"], json!("The token has expired."));
    let issued = sim.iam_issued().await;
    let now = jiff::Timestamp::now();
    for c in issued["credentials"].as_array().expect("credentials") {
        assert!(iam_time(&c["expiresAt"]) <= now, "{c}");
    }
}

#[tokio::test]
async fn keys_are_read_when_needed_and_a_forged_kid_reads_nothing_more() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(&issuer, &dir, json!({}));
    assert_eq!(issuer.reads(), 0, "nothing is read before a token needs it");
    assert_eq!(sim.federate_with(IDP, &issuer.good()).await.status, 201);
    assert_eq!(sim.federate_with(IDP, &issuer.good()).await.status, 201);
    assert_eq!(issuer.reads(), 1);
    for kid in ["forged-1", "forged-2", "forged-3"] {
        let a = sim.federate_with(IDP, &issuer.token(kid, 600)).await;
        assert_eq!(a.status, 401, "{:?}", a.body);
    }
    assert_eq!(
        issuer.reads(),
        1,
        "unknown kids within the interval read nothing"
    );
    assert_eq!(sim.admin_delete("/_sim/iam/keys").await, 204);
    assert_eq!(sim.federate_with(IDP, &issuer.good()).await.status, 201);
    assert_eq!(issuer.reads(), 2, "forgotten keys are read again");
    let expired = issuer.token(&issuer.key.kid, -120);
    let a = sim.federate_with(IDP, &expired).await;
    assert_eq!(a.body["error_msg"], json!("The id_token has expired."));
}

#[tokio::test]
async fn the_admin_routes_refuse_bad_input_and_keep_what_was_there() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start(&issuer, &dir, json!({}));
    let before = sim.admin_get("/_sim/iam").await;
    for (method, path, body, says) in [
        (
            "PUT",
            "/_sim/iam",
            json!({"rules": [{"provider": "x", "sub": "s", "user": "u", "projectIDs": ["p"]}]}),
            "provider \"x\"",
        ),
        (
            "POST",
            "/_sim/iam/rules",
            json!({"provider": IDP, "sub": "s", "user": "u", "projectIDs": []}),
            "projectIDs",
        ),
        (
            "POST",
            "/_sim/iam/rules",
            json!({"provider": IDP}),
            "invalid rule",
        ),
        (
            "PUT",
            "/_sim/iam/lifetimes",
            json!({"token": "0s"}),
            "longer than zero",
        ),
        (
            "POST",
            "/_sim/iam/advance",
            json!({"seconds": -5}),
            "zero or more",
        ),
    ] {
        let (status, answer) = sim.admin(method, path, Some(body)).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(says)),
            "{answer}"
        );
    }
    assert_eq!(sim.admin_get("/_sim/iam").await, before);
    let added = sim
        .post(
            "/_sim/iam/rules",
            json!([{"provider": IDP, "sub": "other", "user": "o", "projectIDs": ["p"]}]),
        )
        .await;
    assert_eq!(added["rules"].as_array().map(Vec::len), Some(2));
    let shown = sim
        .put("/_sim/iam/lifetimes", json!({"credentialCap": "15m"}))
        .await;
    assert_eq!(shown["lifetimes"]["credentialCap"], json!("15m0s"));
}
