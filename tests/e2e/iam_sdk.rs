//! Conformance of the simulator's IAM with Huawei's official Python SDK (huaweicloudsdkcore
//! 3.1.219), unchanged: with a token the real API server issued for a ServiceAccount, the
//! SDK finds its credentials itself — its default chain through federation
//! (`HUAWEICLOUD_SDK_IDP_ID`, `HUAWEICLOUD_SDK_ID_TOKEN_FILE`, `HUAWEICLOUD_SDK_IAM_ENDPOINT`)
//! and through OIDC STS (`HUAWEICLOUD_OIDC_*`, `HUAWEICLOUD_SDK_STS_ENDPOINT`), and its CCE
//! pod-identity provider (`HC_CONTAINER_CREDENTIALS_FULL_URI`) — then reads a workflow with
//! the temporary keys, decoding what the project's client reads. A ServiceAccount no rule
//! maps surfaces in the SDK as IAM's 401.
//!
//! Needs the control plane and the venv of `hack/python-sdk.sh`; fails without either.

use crate::common;

use cce_upgrade_watch::sim::builtin::{self, Builtin};
use cce_upgrade_watch::sim::iam::DOMAIN_ID;
use common::iam::{AUDIENCE, IamSetup, PROVIDER, WATCHER, rule_for, sa_token, service_account};
use common::python_sdk::run_sdk;
use serde_json::{Value, json};

/// A file holding `token`, as a projected token volume would.
fn token_file(dir: &tempfile::TempDir, token: &str) -> String {
    let path = dir.path().join("token");
    std::fs::write(&path, token).expect("write token");
    path.to_string_lossy().into_owned()
}

/// One Show of the success scenario's workflow through the SDK with `provider` and `env`.
fn sdk_show(setup: &IamSetup, provider: &str, env: Value) -> Value {
    let b = Builtin::Success;
    let sim = &setup.sim;
    let calls = run_sdk(&json!({
        "endpoint": sim.url,
        "caBundle": sim.ca_bundle(),
        "projectID": builtin::PROJECT_ID,
        "provider": provider,
        "env": env,
        "calls": [{"op": "show", "clusterID": b.cluster_id(0), "workflowID": b.workflow_id(0)}],
    }));
    calls.into_iter().next().expect("one call")
}

/// The SDK decoded what the project's client reads, and signed with keys IAM issued `how`.
async fn read_like_the_project(setup: &IamSetup, theirs: &Value, how: &str) {
    assert_eq!(theirs["ok"], json!(true), "{theirs}");
    let b = Builtin::Success;
    let ours = setup
        .sim
        .client()
        .show_workflow(&setup.sim.builtin_target(b), &b.workflow_id(0))
        .await
        .expect("show");
    assert_eq!(
        theirs["decoded"],
        serde_json::to_value(ours.body).expect("json")
    );
    let shows = setup.sim.requests("route=show&status=200").await;
    let signer = shows[0]["credential"]
        .as_str()
        .expect("credential")
        .to_string();
    let issued = setup.sim.iam_issued().await;
    let key = issued["credentials"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == json!(signer)))
        .unwrap_or_else(|| {
            panic!("the SDK signed with {signer}, which IAM did not issue: {issued}")
        });
    assert!(
        key["issuedTo"].as_str().is_some_and(|t| t.contains(how)),
        "{key}"
    );
}

#[tokio::test]
async fn the_sdks_default_chain_federates_a_service_account_token_and_reads_a_workflow() {
    let setup = IamSetup::start("iam-sdk-federation", |l| l).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let jwt = sa_token(&setup.client, &setup.ns, WATCHER, AUDIENCE, 600).await;
    let env = |file: String| {
        json!({
            "HUAWEICLOUD_SDK_IDP_ID": PROVIDER,
            "HUAWEICLOUD_SDK_ID_TOKEN_FILE": file,
            "HUAWEICLOUD_SDK_IAM_ENDPOINT": setup.sim.iam_endpoint(),
            "HUAWEICLOUD_SDK_PROJECT_ID": builtin::PROJECT_ID,
        })
    };
    let theirs = sdk_show(&setup, "chain", env(token_file(&dir, &jwt)));
    read_like_the_project(&setup, &theirs, "federation").await;
    for route in ["iam-id-token", "iam-security-token"] {
        let served = setup.sim.requests(&format!("route={route}")).await;
        assert_eq!(served.len(), 1, "{route}: {served:?}");
        assert_eq!(served[0]["status"], json!(201), "{route}");
    }

    service_account(&setup.client, &setup.ns, "stranger").await;
    let stranger = sa_token(&setup.client, &setup.ns, "stranger", AUDIENCE, 600).await;
    let other = tempfile::tempdir().expect("tempdir");
    let refused = sdk_show(&setup, "chain", env(token_file(&other, &stranger)));
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert_eq!(refused["status"], json!(401), "{refused}");
    assert!(
        refused["errorMsg"]
            .as_str()
            .is_some_and(|m| m.contains("no identity conversion rule")),
        "{refused}"
    );
}

#[tokio::test]
async fn the_sdks_oidc_sts_provider_assumes_an_agency_and_reads_a_workflow() {
    let setup = IamSetup::start("iam-sdk-sts", |l| l).await;
    let mut rule = rule_for(&setup.ns, WATCHER);
    rule["agency"] = json!("cce-watch");
    setup.sim.add_iam_rule(&rule).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let jwt = sa_token(&setup.client, &setup.ns, WATCHER, AUDIENCE, 600).await;
    let theirs = sdk_show(
        &setup,
        "chain",
        json!({
            "HUAWEICLOUD_OIDC_PROVIDER_URN": format!("iam::{DOMAIN_ID}:identity-provider:{PROVIDER}"),
            "HUAWEICLOUD_OIDC_AGENCY_URN": format!("iam::{DOMAIN_ID}:agency:cce-watch"),
            "HUAWEICLOUD_OIDC_TOKEN_FILE": token_file(&dir, &jwt),
            "HUAWEICLOUD_SDK_STS_ENDPOINT": setup.sim.iam_endpoint(),
            "HUAWEICLOUD_SDK_PROJECT_ID": builtin::PROJECT_ID,
        }),
    );
    read_like_the_project(&setup, &theirs, "agency cce-watch").await;
    let served = setup.sim.requests("route=sts-assume-with-oidc").await;
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(served[0]["status"], json!(200));
}

#[tokio::test]
async fn the_sdks_pod_identity_provider_gets_keys_from_the_agent_and_reads_a_workflow() {
    let setup = IamSetup::start("iam-sdk-pod-identity", |l| l).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let jwt = sa_token(&setup.client, &setup.ns, WATCHER, AUDIENCE, 600).await;
    let theirs = sdk_show(
        &setup,
        "pod-identity",
        json!({
            "HC_CONTAINER_CREDENTIALS_FULL_URI": setup.sim.pod_identity_uri(),
            "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": token_file(&dir, &jwt),
            // The provider posts with `requests` and no CA of its own: requests' variable.
            "REQUESTS_CA_BUNDLE": setup.sim.ca_bundle(),
        }),
    );
    read_like_the_project(&setup, &theirs, "pod identity").await;
    let served = setup.sim.requests("route=pod-identity").await;
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(served[0]["status"], json!(200));
}
