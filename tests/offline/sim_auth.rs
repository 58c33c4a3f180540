//! Authentication against the simulator binary, as API Gateway does it (cce-api.md §3.5):
//! the project's client with AK/SK, temporary keys and tokens; wrong secrets, stale dates,
//! tampered requests and foreign projects; key rotation through the admin API.

use crate::common;

use std::sync::Arc;

use cce_upgrade_watch::cce::ApiFamily;
use cce_upgrade_watch::cce::CceError;
use cce_upgrade_watch::cce::sign;
use cce_upgrade_watch::sim::auth::token_fingerprint;
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::sim::{Sim, aksk, aksk_with, temporary, token};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

fn unauthorized(
    result: Result<impl std::fmt::Debug, CceError>,
) -> cce_upgrade_watch::cce::error::ApiFailure {
    match result {
        Err(CceError::Unauthorized(f)) => {
            assert_eq!(f.status, 401);
            assert_eq!(f.error_code.as_deref(), Some("APIGW.0301"));
            assert!(f.request_id.as_deref().is_some_and(|id| id.len() == 32));
            f
        }
        other => panic!("expected 401 APIGW.0301, got {other:?}"),
    }
}

#[tokio::test]
async fn aksk_temporary_keys_and_tokens_all_authenticate_and_are_counted_without_secrets() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let b = Builtin::Success;
    for credentials in [aksk(), temporary(), token()] {
        let target = sim.target(ApiFamily::Standard, &b.cluster_id(0), credentials);
        client
            .show_workflow(&target, &b.workflow_id(0))
            .await
            .expect("show");
    }
    let stats = sim.admin_get("/_sim/stats").await;
    let by_credential = &stats["byCredential"];
    assert_eq!(by_credential[builtin::ACCESS_KEY], json!(1));
    assert_eq!(by_credential[builtin::TEMP_ACCESS_KEY], json!(1));
    assert_eq!(by_credential[token_fingerprint(builtin::TOKEN)], json!(1));
    let everything = format!(
        "{stats}{}{}",
        json!(sim.requests("").await),
        sim.admin_get("/_sim/credentials").await
    );
    for secret in [
        builtin::SECRET_KEY,
        builtin::TEMP_SECRET_KEY,
        builtin::SECURITY_TOKEN,
        builtin::TOKEN,
    ] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn wrong_secret_unknown_key_and_bad_token_are_401_apigw_0301() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let b = Builtin::Success;
    let id = b.workflow_id(0);
    let with = |c| sim.target(ApiFamily::Standard, &b.cluster_id(0), c);
    let f = unauthorized(
        client
            .show_workflow(&with(aksk_with(builtin::ACCESS_KEY, "wrong-secret")), &id)
            .await,
    );
    assert!(
        f.message
            .as_deref()
            .is_some_and(|m| m.contains("verify aksk signature fail")),
        "{f:?}"
    );
    let f = unauthorized(
        client
            .show_workflow(&with(aksk_with("NOSUCHAK", "no-such-secret")), &id)
            .await,
    );
    assert!(
        f.message
            .as_deref()
            .is_some_and(|m| m.contains("ak not exist")),
        "{f:?}"
    );
    unauthorized(
        client
            .show_workflow(
                &with(cce_upgrade_watch::cce::Credentials::Token(
                    "MIIforged".to_string().into(),
                )),
                &id,
            )
            .await,
    );
    // A temporary key whose security token is not the issued one.
    let forged = cce_upgrade_watch::cce::Credentials::AkSk {
        access_key: builtin::TEMP_ACCESS_KEY.into(),
        secret_key: builtin::TEMP_SECRET_KEY.to_string().into(),
        security_token: Some("forged".to_string().into()),
    };
    unauthorized(client.list_workflows(&with(forged)).await);
    let log = sim.requests("status=401").await;
    assert_eq!(log.len(), 4);
    assert_eq!(log[0]["credential"], json!(builtin::ACCESS_KEY));
}

#[tokio::test]
async fn x_sdk_date_may_be_off_by_less_than_fifteen_minutes() {
    let sim = Sim::start(&["--scenario", "success"]);
    let b = Builtin::Success;
    let target = sim.builtin_target(b);
    let id = b.workflow_id(0);
    let skewed = |minutes: i64| {
        sim.client().with_clock(Arc::new(move || {
            Timestamp::now() + SignedDuration::from_mins(minutes)
        }))
    };
    skewed(-14)
        .show_workflow(&target, &id)
        .await
        .expect("14 min behind");
    skewed(14)
        .show_workflow(&target, &id)
        .await
        .expect("14 min ahead");
    unauthorized(skewed(-16).show_workflow(&target, &id).await);
    unauthorized(skewed(16).show_workflow(&target, &id).await);
}

#[tokio::test]
async fn a_project_the_credential_does_not_own_is_forbidden_and_unknown_ids_are_not_found() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let b = Builtin::Success;
    let mut foreign = sim.builtin_target(b);
    foreign.project_id = "0bb2c0de5e1f4c0e8a5d5a5e00000002".into();
    match client.show_workflow(&foreign, &b.workflow_id(0)).await {
        Err(CceError::Forbidden(f)) => assert_eq!(f.error_code.as_deref(), Some("CCE.01403001")),
        other => panic!("foreign project: {other:?}"),
    }
    let target = sim.builtin_target(b);
    for result in [
        client.show_workflow(&target, "no-such-workflow").await,
        client
            .show_workflow(&target, &Builtin::Cancel.workflow_id(0))
            .await,
    ] {
        match result {
            Err(CceError::NotFound(f)) => {
                assert_eq!(f.error_code.as_deref(), Some("CCE.01404001"));
                assert!(f.request_id.is_some());
            }
            other => panic!("unknown workflow: {other:?}"),
        }
    }
    let no_cluster = sim.target(ApiFamily::Standard, "no-such-cluster", aksk());
    assert!(matches!(
        client.list_workflows(&no_cluster).await,
        Err(CceError::NotFound(_))
    ));
}

#[tokio::test]
async fn keys_rotate_at_run_time_through_the_admin_api() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let b = Builtin::Success;
    let id = b.workflow_id(0);
    let old = sim.builtin_target(b);
    client
        .show_workflow(&old, &id)
        .await
        .expect("old key works");
    let (status, listed) = sim
        .admin_put(
            "/_sim/credentials",
            json!([
                {"accessKey": builtin::ACCESS_KEY, "secretKey": "rotated-secret", "projectID": builtin::PROJECT_ID},
                {"token": "MIInew-token", "projectID": builtin::PROJECT_ID},
            ]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert!(!listed.to_string().contains("rotated-secret"));
    unauthorized(client.show_workflow(&old, &id).await);
    let new = sim.target(
        ApiFamily::Standard,
        &b.cluster_id(0),
        aksk_with(builtin::ACCESS_KEY, "rotated-secret"),
    );
    client
        .show_workflow(&new, &id)
        .await
        .expect("new key works");
    unauthorized(
        client
            .show_workflow(
                &sim.target(ApiFamily::Standard, &b.cluster_id(0), token()),
                &id,
            )
            .await,
    );
    // Adding keeps the others; deleting revokes.
    let (status, _) = sim
        .admin_post(
            "/_sim/credentials",
            json!([{"accessKey": "SECONDAK", "secretKey": "s2", "projectID": builtin::PROJECT_ID}]),
        )
        .await;
    assert_eq!(status, 200);
    client.show_workflow(&new, &id).await.expect("still works");
    assert_eq!(
        sim.admin_delete(&format!("/_sim/credentials/{}", builtin::ACCESS_KEY))
            .await,
        204
    );
    unauthorized(client.show_workflow(&new, &id).await);
    let (status, body) = sim
        .admin_put("/_sim/credentials", json!([{"accessKey": "A"}]))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_credentials_file_replaces_the_builtin_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("credentials.yaml");
    std::fs::write(
        &file,
        format!(
            "- accessKey: FILEAK\n  secretKey: file-secret\n  projectID: {p}\n\
             - token: file-token\n  projectID: {p}\n",
            p = builtin::PROJECT_ID
        ),
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let sim = Sim::start(&["--scenario", "success", "--credentials", &path]);
    let client = sim.client();
    let b = Builtin::Success;
    let id = b.workflow_id(0);
    unauthorized(client.show_workflow(&sim.builtin_target(b), &id).await);
    let mut target = sim.builtin_target(b);
    target.credentials = aksk_with("FILEAK", "file-secret");
    client.show_workflow(&target, &id).await.expect("file key");
    let banner = sim.banner().await;
    assert!(banner.contains("credentials: 2 entries from"), "{banner}");
    assert!(!banner.contains("file-secret") && !banner.contains(builtin::SECRET_KEY));
}

/// Signs a request with `cce::sign` and sends it with reqwest, changing it afterwards.
async fn send_signed(
    url: &str,
    signed_query: &str,
    sent_path: &str,
    sent_query: &str,
) -> (u16, String) {
    let host = url.trim_start_matches("http://").to_string();
    let b = Builtin::Success;
    let path = format!(
        "/api/v3/projects/{}/clusters/{}/operation/upgradeworkflows/{}",
        builtin::PROJECT_ID,
        b.cluster_id(0),
        b.workflow_id(0)
    );
    let mut headers = vec![
        ("Host".to_string(), host),
        ("X-Sdk-Date".to_string(), sign::sdk_date(Timestamp::now())),
    ];
    let query = sign::decode_query(signed_query);
    let req = sign::SignableRequest {
        method: "GET",
        path: &path,
        query: &query,
        headers: &headers,
        body: b"",
    };
    let signed =
        sign::sign(builtin::ACCESS_KEY, builtin::SECRET_KEY.as_bytes(), &req).expect("sign");
    headers.push(("Authorization".to_string(), signed.authorization));
    let sent_path = if sent_path.is_empty() {
        path
    } else {
        sent_path.to_string()
    };
    let mut request = reqwest::Client::new().get(format!("{url}{sent_path}?{sent_query}"));
    for (k, v) in headers.iter().filter(|(k, _)| k != "Host") {
        request = request.header(k, v);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn the_server_recanonicalises_the_received_query_and_rejects_tampering() {
    let sim = Sim::start(&["--scenario", "success"]);
    // Same pairs, another order and encoding: still the signed request.
    let (status, body) = send_signed(&sim.url, "b=2&a=x y", "", "a=x%20y&b=2").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send_signed(&sim.url, "b=2&a=1", "", "a=1&b=3").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("APIGW.0301"));
    let other = format!(
        "/api/v3/projects/{}/clusters/{}/operation/upgradeworkflows/{}",
        builtin::PROJECT_ID,
        Builtin::Success.cluster_id(0),
        "another-workflow"
    );
    let (status, _) = send_signed(&sim.url, "", &other, "").await;
    assert_eq!(status, 401);
}
