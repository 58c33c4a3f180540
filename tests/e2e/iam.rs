//! The simulator's IAM against the real API server: ServiceAccount tokens the API server
//! issued (TokenRequest) are verified with its own keys (`/openid/v1/jwks`), converted by
//! the rules and traded for temporary keys the simulator's CCE API accepts until they
//! expire on the scenario clock; every token IAM must refuse is refused with its message.

use crate::common;

use std::process::Command;
use std::time::Duration;

use cce_upgrade_watch::sim::iam::DOMAIN_ID;
use common::iam::{
    AUDIENCE, IamSetup, PROVIDER, USER, WATCHER, rule_for, sa_token, service_account, subject,
};
use serde_json::{Value, json};

fn message(answer: &Value) -> String {
    answer["error_msg"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_service_account_token_becomes_temporary_keys_the_cce_api_accepts_until_they_expire() {
    let IamSetup {
        client,
        ns,
        sim,
        iam: _files,
    } = IamSetup::start("iam-accepts", |l| l).await;
    let jwt = sa_token(&client, &ns, WATCHER, AUDIENCE, 600).await;
    let unscoped = sim.federate_with(PROVIDER, &jwt).await;
    assert_eq!(unscoped.status, 201, "{:?}", unscoped.body);
    let token = &unscoped.body["token"];
    assert_eq!(token["methods"], json!(["mapped"]));
    assert_eq!(token["user"]["name"], json!(USER));
    assert_eq!(
        token["user"]["OS-FEDERATION"]["identity_provider"]["id"],
        json!(PROVIDER)
    );
    let subject_token = unscoped.subject_token.expect("X-Subject-Token");
    assert!(!unscoped.body.to_string().contains(&subject_token));
    assert!(!unscoped.body.to_string().contains(&jwt));

    let keys = sim.security_token(&subject_token, 900).await;
    assert_eq!(keys.status, 201, "{:?}", keys.body);
    let access = keys.body["credential"]["access"]
        .as_str()
        .expect("access")
        .to_string();
    let (credentials, _) = sim.federated_keys(&jwt, 900).await;
    sim.show_with(credentials.clone())
        .await
        .expect("CCE accepts the temporary keys");

    let issued = sim.iam_issued().await;
    let listed = issued["credentials"].as_array().expect("credentials");
    assert_eq!(listed.len(), 2, "{issued}");
    assert!(listed.iter().any(|c| c["id"] == json!(access)));
    assert!(
        listed[0]["issuedTo"]
            .as_str()
            .is_some_and(|t| t.contains(&subject(&ns, WATCHER))),
        "{issued}"
    );
    for secret in [&jwt, &subject_token] {
        assert!(
            !issued.to_string().contains(secret.as_str()),
            "a secret is listed"
        );
    }

    // 900 scenario seconds later (IAM's clock moved on), the keys are refused.
    sim.iam_advance(901.0).await;
    let e = sim.show_with(credentials).await.expect_err("expired keys");
    let text = e.to_string();
    assert!(
        text.contains("401") && text.contains("security token expires"),
        "{text}"
    );
}

/// A token of the plane's shape (issuer, audience, subject, key id) signed with a key that
/// is not the API server's: an RSA key made with openssl, as the plane's own is.
fn forged(real: &str, claims: &Value) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = dir.path().join("key.pem");
    let der = dir.path().join("key.der");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            common::text(&out.stderr)
        );
    };
    run(&["genrsa", "-out", pem.to_str().expect("path"), "2048"]);
    run(&[
        "rsa",
        "-in",
        pem.to_str().expect("path"),
        "-outform",
        "DER",
        "-traditional",
        "-out",
        der.to_str().expect("path"),
    ]);
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&std::fs::read(&der).expect("read key"));
    let mut header = jsonwebtoken::decode_header(real).expect("the plane's header");
    header.typ = None;
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// The claims of a real token, readable without its key.
fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

#[tokio::test]
async fn tokens_iam_must_not_accept_are_refused_with_its_messages() {
    let IamSetup {
        client,
        ns,
        sim,
        iam: _files,
    } = IamSetup::start("iam-refuses", |l| l).await;
    let good = sa_token(&client, &ns, WATCHER, AUDIENCE, 600).await;

    let wrong_audience = sa_token(&client, &ns, WATCHER, "someone-else", 600).await;
    let a = sim.federate_with(PROVIDER, &wrong_audience).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert!(message(&a.body).contains("audience"), "{:?}", a.body);

    service_account(&client, &ns, "stranger").await;
    let stranger = sa_token(&client, &ns, "stranger", AUDIENCE, 600).await;
    let a = sim.federate_with(PROVIDER, &stranger).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    let m = message(&a.body);
    assert!(
        m.contains("no identity conversion rule") && m.contains(&subject(&ns, "stranger")),
        "{m}"
    );

    let a = sim.federate_with("no-such-provider", &good).await;
    assert_eq!(a.status, 404, "{:?}", a.body);
    assert!(message(&a.body).contains("no-such-provider"));

    let forged_token = forged(&good, &claims_of(&good));
    let a = sim.federate_with(PROVIDER, &forged_token).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert!(
        message(&a.body).contains("signature verification failed"),
        "{:?}",
        a.body
    );

    // The kid of a key the API server never had is not among its keys (the keys were read
    // less than 10 s ago, so IAM does not read them again for it).
    let mut header = jsonwebtoken::decode_header(&good).expect("header");
    header.kid = Some("rotated-away".into());
    let unknown_kid = {
        let parts: Vec<&str> = forged_token.split('.').collect();
        use base64::Engine;
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&header).expect("header json"));
        format!("{h}.{}.{}", parts[1], parts[2])
    };
    let a = sim.federate_with(PROVIDER, &unknown_kid).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert!(message(&a.body).contains("rotated-away"), "{:?}", a.body);

    for (body, status) in [
        (b"{not json".to_vec(), 400),
        (
            json!({"auth": {"id_token": {}}}).to_string().into_bytes(),
            400,
        ),
        (vec![b' '; 70 * 1024], 413),
    ] {
        let a = sim
            .iam_post_raw(
                "/v3.0/OS-AUTH/id-token/tokens",
                &[("X-Idp-Id", PROVIDER)],
                body,
            )
            .await;
        assert_eq!(a.status, status, "{:?}", a.body);
    }
    let a = sim.security_token("MIInot-a-token-iam-issued", 900).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    let unscoped = sim.federate_with(PROVIDER, &good).await;
    let token = unscoped.subject_token.expect("token");
    let a = sim.security_token(&token, 60).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    assert!(message(&a.body).contains("between 900 and 86400"));

    // The API server's minimum lifetime is 600 s: IAM's clock moves past it instead.
    sim.iam_advance(700.0).await;
    let a = sim.federate_with(PROVIDER, &good).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert!(message(&a.body).contains("expired"), "{:?}", a.body);

    // Nothing refused quoted a token back.
    let log = sim.requests("limit=1000").await;
    let text = serde_json::to_string(&log).expect("log");
    for secret in [&good, &wrong_audience, &stranger, &forged_token, &token] {
        assert!(!text.contains(secret.as_str()));
    }
}

#[tokio::test]
async fn temporary_keys_expire_on_the_scenario_clock() {
    // At 60 scenario seconds per second, a 15-minute credential capped to 2 minutes lasts
    // two real seconds.
    let IamSetup {
        client,
        ns,
        sim,
        iam: _files,
    } = IamSetup::start("iam-scenario-clock", |l| l.args(&["--speed", "60"])).await;
    sim.iam_lifetimes(json!({"credentialCap": "2m"})).await;
    let jwt = sa_token(&client, &ns, WATCHER, AUDIENCE, 600).await;
    let (credentials, access) = sim.federated_keys(&jwt, 900).await;
    sim.show_with(credentials.clone())
        .await
        .expect("accepted while valid");
    let issued = sim.iam_issued().await;
    let entry = issued["credentials"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == json!(access)))
        .cloned()
        .expect("listed");
    let expires: jiff::Timestamp = entry["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .parse()
        .expect("ts");
    let left = jiff::Timestamp::now().duration_until(expires);
    assert!(
        left > jiff::SignedDuration::ZERO && left <= jiff::SignedDuration::from_secs(2),
        "{left:?}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = sim.show_with(credentials).await.expect_err("expired");
    assert!(e.to_string().contains("security token expires"), "{e}");
    let logged = sim.requests("status=401").await;
    assert_eq!(
        logged.last().map(|r| r["credential"].clone()),
        Some(json!(access))
    );
}

#[tokio::test]
async fn sts_and_the_pod_identity_agent_verify_the_token_like_iam_and_answer_temporary_keys() {
    let IamSetup {
        client,
        ns,
        sim,
        iam: _files,
    } = IamSetup::start("iam-sts-pod-identity", |l| l).await;
    let mut rule = rule_for(&ns, WATCHER);
    rule["agency"] = json!("ops");
    sim.add_iam_rule(&rule).await;
    let jwt = sa_token(&client, &ns, WATCHER, AUDIENCE, 600).await;
    let assume = |agency: &str, provider: &str, duration: u64| {
        json!({
            "provider_urn": format!("iam::{DOMAIN_ID}:identity-provider:{provider}"),
            "agency_urn": format!("iam::{DOMAIN_ID}:agency:{agency}"),
            "agency_session_name": "e2e",
            "id_token": jwt,
            "duration_seconds": duration,
        })
    };
    let path = "/v5/agencies/assume-with-oidc";
    let a = sim.iam_post(path, &[], assume("ops", PROVIDER, 3600)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    sim.show_with(a.temporary_keys().0)
        .await
        .expect("CCE accepts STS keys");
    for (body, status, says) in [
        (
            assume("elsewhere", PROVIDER, 3600),
            401,
            "no identity conversion rule",
        ),
        (
            assume("ops", "no-such-provider", 3600),
            404,
            "no-such-provider",
        ),
        (assume("ops", PROVIDER, 60), 400, "between 900 and 43200"),
        (
            json!({"provider_urn": "plane", "agency_urn": "x", "id_token": jwt}),
            400,
            "URN",
        ),
    ] {
        let a = sim.iam_post(path, &[], body).await;
        assert_eq!(a.status, status, "{:?}", a.body);
        assert!(message(&a.body).contains(says), "{:?}", a.body);
    }

    let agent = "/v1/pod-identity/credentials";
    let a = sim
        .iam_post(agent, &[("Authorization", &jwt)], json!({}))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    sim.show_with(a.temporary_keys().0)
        .await
        .expect("CCE accepts pod-identity keys");
    let other = sa_token(&client, &ns, WATCHER, "not-the-client-id", 600).await;
    let a = sim
        .iam_post(agent, &[("Authorization", &other)], json!({}))
        .await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert!(message(&a.body).contains("audience"));
    let a = sim.iam_post(agent, &[], json!({})).await;
    assert_eq!(a.status, 400, "{:?}", a.body);

    // IAM's routes take the simulator's faults like CCE's: a truncated answer.
    sim.post(
        "/_sim/faults",
        json!({"kind": "malformed", "route": "iam-id-token", "count": 1}),
    )
    .await;
    let a = sim.federate_with(PROVIDER, &jwt).await;
    assert_eq!(a.status, 200);
    assert!(a.body.is_string(), "not JSON any more: {:?}", a.body);
    assert!(a.subject_token.is_none());
    let issued = sim.iam_issued().await;
    assert_eq!(
        issued["credentials"].as_array().map(Vec::len),
        Some(2),
        "{issued}"
    );
}

#[tokio::test]
async fn signing_keys_iam_cannot_read_refuse_every_token_without_saying_more() {
    let IamSetup {
        client,
        ns,
        sim,
        iam: files,
    } = IamSetup::start("iam-jwks-unreadable", |l| l).await;
    let jwt = sa_token(&client, &ns, WATCHER, AUDIENCE, 600).await;
    // The same provider, its keys read without the reader's token: the API server says 401.
    let mut config = sim.admin_get("/_sim/iam").await;
    config["providers"][0]["jwks"]["tokenFile"] = json!("/nonexistent/reader.token");
    let replaced = json!({"providers": config["providers"], "rules": config["rules"]});
    sim.put("/_sim/iam", replaced).await;
    let a = sim.federate_with(PROVIDER, &jwt).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(
        message(&a.body),
        "The identity provider's signing keys could not be read."
    );
    // Pointed back at readable keys (a new configuration reads them again), it accepts.
    let mut config = sim.admin_get("/_sim/iam").await;
    config["providers"][0]["jwks"]["url"] = json!(files.jwks_url);
    config["providers"][0]["jwks"]["tokenFile"] = json!(files.token_file);
    let restored = json!({"providers": config["providers"], "rules": config["rules"]});
    sim.put("/_sim/iam", restored).await;
    assert_eq!(sim.federate_with(PROVIDER, &jwt).await.status, 201);
}
