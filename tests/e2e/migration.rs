//! Upgrading to accounts as the CHANGELOG tells users to: a watch written with the CRD of
//! the release before accounts (inline endpoint, project and Secret) keeps its fields after
//! the new CRDs are applied, is served by nobody (the operator's default credentials
//! included) and says what to do; an update that keeps the inline fields is refused; the
//! migrated watch is served. On a private plane: the shared one must keep the new CRD.

use crate::common;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::operator::Operator;
use common::plane::PrivatePlane;
use common::sim::{Sim, copy};
use common::{cond, synced_message, wait_watch};

/// The watch CRD as the last release before accounts shipped it.
const CRD_BEFORE_ACCOUNTS: &str = "tests/fixtures/crds/upgradeworkflowwatches-before-accounts.yaml";

#[tokio::test]
async fn a_watch_from_before_accounts_is_told_what_to_do_and_served_once_migrated() {
    let success = copy(Builtin::Success, 0);
    let plane = PrivatePlane::up("cce-uw-migration-plane-");
    let client = plane.client().await;
    let old: CustomResourceDefinition = serde_yaml::from_str(
        &std::fs::read_to_string(common::repo_path(CRD_BEFORE_ACCOUNTS)).expect("read"),
    )
    .expect("parse");
    common::plane::apply_crd(&client, &old).await;
    let ns = common::namespace(&client, "migration").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();

    // What a user had: an unlabelled Secret and a watch naming it inline.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "cce"},
        "stringData": {"accessKey": builtin::ACCESS_KEY, "secretKey": builtin::SECRET_KEY}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
    let legacy = json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": "legacy", "namespace": ns},
        "spec": {"endpoint": sim.url, "projectID": builtin::PROJECT_ID,
                 "clusterID": success.cluster, "upgradeWorkflowID": success.workflow,
                 "credentialsSecretRef": {"name": "cce"}, "pollInterval": "5s"}
    });
    let watches = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    watches
        .create(
            &PostParams::default(),
            &serde_json::from_value(legacy).expect("watch"),
        )
        .await
        .expect("create a watch with the old CRD");

    // The upgrade: the new CRDs first, then the operator (which holds default credentials).
    common::install_crd(&client).await;
    let _op = Operator::start_with_env(
        &ns,
        &sim,
        &[],
        &[
            ("KUBECONFIG", plane.kubeconfig().to_str().expect("utf-8")),
            ("CLOUD_SDK_AK", builtin::ACCESS_KEY),
            ("CLOUD_SDK_SK", builtin::SECRET_KEY),
        ],
    );
    let told = wait_watch(&client, &ns, "legacy", 30, "AccountMissing", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "AccountMissing")
    })
    .await;
    let message = synced_message(&told);
    assert!(
        message.contains("endpoint, projectID, credentialsSecretRef are no longer read")
            && message.contains("labelled cce.upgradewatch.io/credentials=true")
            && message.contains("spec.accountRef")
            && message.contains("CHANGELOG"),
        "{message}"
    );
    assert_eq!(
        told.spec.credentials_secret_ref.map(|r| r.name).as_deref(),
        Some("cce"),
        "the inline fields are kept for the user to move"
    );
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(stats["total"], 0, "the simulator was called: {stats}");

    // Adding an account while keeping the inline fields is refused, saying why.
    let half = watches
        .patch(
            "legacy",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"accountRef": {"name": "cce"}}})),
        )
        .await
        .expect_err("an update keeping the inline fields was accepted");
    assert!(
        half.to_string().contains("are set on the account now"),
        "{half}"
    );

    // The CHANGELOG's steps: label the Secret, create the account, move the watch to it.
    Api::<Secret>::namespaced(client.clone(), &ns)
        .patch(
            "cce",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"cce.upgradewatch.io/credentials": "true"}}}),
            ),
        )
        .await
        .expect("label the Secret");
    common::watch::apply_account(
        &client,
        json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "CCEAccount",
            "metadata": {"name": "cce", "namespace": ns},
            "spec": {"endpoint": sim.url, "projectID": builtin::PROJECT_ID,
                     "credentials": {"secretRef": {"name": "cce"}}}
        }),
    )
    .await;
    watches
        .patch(
            "legacy",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "accountRef": {"name": "cce"},
                "endpoint": null, "projectID": null, "credentialsSecretRef": null
            }})),
        )
        .await
        .expect("the migrated watch is accepted");
    let served = wait_watch(&client, &ns, "legacy", 30, "Synced", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        served.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Init")
    );
    assert!(!sim.requests_for(&success.workflow).await.is_empty());
    drop(_op);
    plane.down();
}
