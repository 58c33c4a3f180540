//! Keyless credentials end to end: watches naming a ServiceAccount (spec.workloadIdentity)
//! whose tokens the real API server issues and the simulator's IAM verifies against the API
//! server's own signing keys, and the operator's default credentials from the SDK's chain
//! (its own federated token file, CCE pod identity, the mounted default-credentials Secret).
//! No token, temporary key or security token may appear in the operator's log (at trace),
//! in Events or in status.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Api;
use serde_json::{Value, json};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::iam::{AUDIENCE, PROVIDER, PlaneIam, rule_for, sa_token, service_account};
use common::operator::Operator;
use common::sim::{Sim, copy};
use common::{cond, events, raw_events, synced_message, wait_watch};

/// What the exchanged secrets look like: a JWT's header (`{"alg"`), the simulator's
/// unscoped IAM tokens and its security tokens. Secret keys travel with security tokens.
const SECRET_SHAPES: [&str; 3] = ["eyJhbGci", "MIIsim", "gQpjbi1ub3J0aC00"];

fn leaks(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| SECRET_SHAPES.iter().any(|s| l.contains(s)))
        .map(|l| l.chars().take(200).collect())
        .collect()
}

/// Neither the operator's log, nor the watch's Events, nor its status holds a token or key.
async fn assert_nothing_leaked(client: &kube::Client, ns: &str, name: &str, op: &Operator) {
    let log = op.log_text();
    assert!(
        log.lines().count() > 50,
        "the operator logged too little to judge"
    );
    let in_log = leaks(&log);
    assert!(in_log.is_empty(), "the log holds secrets:\n{in_log:#?}");
    let in_events: Vec<String> = raw_events(client, ns, name)
        .await
        .iter()
        .flat_map(|e| leaks(&serde_json::to_string(e).expect("event JSON")))
        .collect();
    assert!(in_events.is_empty(), "Events hold secrets: {in_events:#?}");
    let watch = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("get watch");
    let status = serde_json::to_string(&watch.status).expect("status JSON");
    assert!(leaks(&status).is_empty(), "status holds secrets: {status}");
}

/// A watch of `workflow` on `sim` through a CCEAccount (named after it) whose workload
/// identity is the ServiceAccount `account` of its namespace.
async fn identity_watch(
    client: &kube::Client,
    ns: &str,
    name: &str,
    sim: &Sim,
    ids: (&str, &str),
    account: &str,
) {
    common::watch::identity_account(client, ns, sim, name, account).await;
    common::watch::account_watch(client, ns, name, ids.0, Some(ids.1), json!({"name": name})).await;
}

/// The operator's flags for workload identity against `sim`: its IAM, and the audience
/// the simulator's provider registered.
fn identity_flags(sim: &Sim) -> [&str; 4] {
    [
        "--iam-endpoint",
        sim.iam_endpoint(),
        "--token-audience",
        AUDIENCE,
    ]
}

fn synced_reason(w: &UpgradeWorkflowWatch) -> Option<String> {
    cond(w, "Synced").map(|c| c.1)
}

/// The issued credentials IAM lists (access keys and expiries, no secrets).
async fn issued(sim: &Sim) -> Vec<Value> {
    sim.iam_issued().await["credentials"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_watch_with_workload_identity_reaches_success_renewing_its_keys_without_a_sync_failure() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("identity-success").await;
    let iam = PlaneIam::new(&client).await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--speed", "5"])
        .iam(&iam)
        .start();
    // Two scenario minutes at speed 5: keys live 24 s of real time and the upgrade a
    // minute, so the operator has to renew them on the way, more than once.
    sim.iam_lifetimes(json!({"credentialCap": "2m"})).await;
    service_account(&client, &ns, "watcher").await;
    sim.add_iam_rule(&rule_for(&ns, "watcher")).await;
    let op = Operator::start(&ns, &sim, &identity_flags(&sim));
    identity_watch(
        &client,
        &ns,
        "keyless",
        &sim,
        (&success.cluster, &success.workflow),
        "watcher",
    )
    .await;

    // IAM lists the keys that have not expired: note every one seen until the upgrade ends.
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    let mut keys: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let done = loop {
        for c in issued(&sim).await {
            if let (Some(id), Some(expires)) = (
                c["id"].as_str(),
                c["expiresAt"].as_str().and_then(|t| t.parse().ok()),
            ) {
                keys.insert(id.to_string(), expires);
            }
        }
        let w = api.get("keyless").await.expect("get watch");
        if w.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Success") {
            break w;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Success within 180 s: {:#?}",
            w.status
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(cond(&done, "Ready").map(|c| c.0), Some("True".into()));
    let now = jiff::Timestamp::now();
    let expired = keys.values().filter(|at| **at < now).count();
    assert!(
        keys.len() >= 3 && expired >= 1,
        "the keys were not renewed through an expiry: {keys:#?}"
    );
    let reasons: Vec<String> = events(&client, &ns, "keyless")
        .await
        .into_iter()
        .map(|(reason, _)| reason)
        .collect();
    assert!(
        !reasons.iter().any(|r| r == "SyncFailed"),
        "a sync failed on the way: {reasons:?}"
    );
    // Every CCE call was signed with keys IAM issued to this ServiceAccount, and accepted.
    let calls = sim.requests_for(&success.workflow).await;
    assert!(!calls.is_empty());
    for call in &calls {
        let ak = call["credential"].as_str().unwrap_or_default();
        assert!(
            keys.contains_key(ak),
            "signed with {ak}, not an issued key: {call}"
        );
        assert_eq!(call["status"], 200, "a call was refused: {call}");
    }
    assert_nothing_leaked(&client, &ns, "keyless", &op).await;
}

#[tokio::test]
async fn a_service_account_no_conversion_rule_maps_is_unauthorized_with_iams_message() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("identity-no-rule").await;
    let iam = PlaneIam::new(&client).await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .frozen()
        .iam(&iam)
        .start();
    service_account(&client, &ns, "stranger").await;
    let op = Operator::start(&ns, &sim, &identity_flags(&sim));
    identity_watch(
        &client,
        &ns,
        "unmapped",
        &sim,
        (&success.cluster, &success.workflow),
        "stranger",
    )
    .await;
    let refused = wait_watch(&client, &ns, "unmapped", 60, "Unauthorized", |w| {
        synced_reason(w).as_deref() == Some("Unauthorized")
    })
    .await;
    assert_eq!(cond(&refused, "Stalled").map(|c| c.0), Some("True".into()));
    let message = synced_message(&refused);
    assert!(
        message.contains("IAM refused the token")
            && message.contains("no identity conversion rule")
            && message.contains(&format!("system:serviceaccount:{ns}:stranger")),
        "{message}"
    );
    // A refused token is not offered again in a tight loop: the operator's permanent retry
    // (5 s here) and the exchange's backoff space the attempts out.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let attempts = sim.requests("route=iam-id-token&limit=1000").await;
    assert!(
        (1..=4).contains(&attempts.len()),
        "{} exchanges in about 12 s: {attempts:#?}",
        attempts.len()
    );
    assert!(
        issued(&sim).await.is_empty(),
        "IAM issued keys to an unmapped subject"
    );
    assert_nothing_leaked(&client, &ns, "unmapped", &op).await;
}

#[tokio::test]
async fn a_missing_service_account_and_a_later_one_are_told_apart() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("identity-missing").await;
    let iam = PlaneIam::new(&client).await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .frozen()
        .iam(&iam)
        .start();
    let op = Operator::start(&ns, &sim, &identity_flags(&sim));
    identity_watch(
        &client,
        &ns,
        "ghost",
        &sim,
        (&success.cluster, &success.workflow),
        "ghost",
    )
    .await;
    let missing = wait_watch(&client, &ns, "ghost", 60, "ServiceAccountMissing", |w| {
        synced_reason(w).as_deref() == Some("ServiceAccountMissing")
    })
    .await;
    assert!(
        synced_message(&missing).contains(&format!("ServiceAccount {ns}/ghost")),
        "{}",
        synced_message(&missing)
    );
    assert_eq!(cond(&missing, "Stalled").map(|c| c.0), Some("True".into()));
    // Once it exists and IAM maps it, the watch syncs (after the slow retry).
    service_account(&client, &ns, "ghost").await;
    sim.add_iam_rule(&rule_for(&ns, "ghost")).await;
    wait_watch(&client, &ns, "ghost", 60, "Synced", |w| {
        synced_reason(w).as_deref() == Some("Synced")
    })
    .await;
    assert_nothing_leaked(&client, &ns, "ghost", &op).await;
}

/// What stands in the way of a renewal, and how it is undone.
#[derive(Clone, Copy)]
enum Disruption {
    /// IAM's securitytokens answer is not JSON.
    BrokenIamAnswer,
    /// The ServiceAccount is deleted (and later created again).
    ServiceAccountDeleted,
}

/// A renewal made impossible mid-run: the kept keys serve until they expire, then the watch
/// says why it cannot sync (`because`), keeps what it last mirrored, and recovers once the
/// disruption is undone.
async fn renewal_fails_then_recovers(test: &str, disruption: Disruption, because: &str) {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup(test).await;
    let iam = PlaneIam::new(&client).await;
    let sim = Sim::https().scenario(Builtin::Success).iam(&iam).start();
    sim.iam_lifetimes(json!({"credentialCap": "20s"})).await;
    service_account(&client, &ns, "watcher").await;
    sim.add_iam_rule(&rule_for(&ns, "watcher")).await;
    let op = Operator::start(&ns, &sim, &identity_flags(&sim));
    identity_watch(
        &client,
        &ns,
        "disrupted",
        &sim,
        (&success.cluster, &success.workflow),
        "watcher",
    )
    .await;
    let good = wait_watch(&client, &ns, "disrupted", 60, "Synced", |w| {
        synced_reason(w).as_deref() == Some("Synced")
    })
    .await;
    let accounts =
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &ns);
    match disruption {
        Disruption::BrokenIamAnswer => {
            sim.post(
                "/_sim/faults",
                json!({"kind": "malformed", "route": "iam-security-token"}),
            )
            .await;
        }
        Disruption::ServiceAccountDeleted => {
            accounts
                .delete("watcher", &Default::default())
                .await
                .expect("delete ServiceAccount");
        }
    }
    let expired = wait_watch(&client, &ns, "disrupted", 60, "CredentialsExpired", |w| {
        synced_reason(w).as_deref() == Some("CredentialsExpired")
    })
    .await;
    let message = synced_message(&expired);
    assert!(
        message.contains("could not be renewed") && message.contains(because),
        "{message}"
    );
    let (before, after) = (
        good.status.expect("status"),
        expired.status.expect("status"),
    );
    assert_eq!(
        (before.workflow_id, before.from_version),
        (after.workflow_id, after.from_version),
        "the last good status is kept"
    );
    assert!(!after.tasks.is_empty(), "tasks kept");
    match disruption {
        Disruption::BrokenIamAnswer => sim.delete("/_sim/faults").await,
        Disruption::ServiceAccountDeleted => service_account(&client, &ns, "watcher").await,
    }
    wait_watch(&client, &ns, "disrupted", 60, "Synced again", |w| {
        synced_reason(w).as_deref() == Some("Synced")
    })
    .await;
    assert_nothing_leaked(&client, &ns, "disrupted", &op).await;
}

#[tokio::test]
async fn a_broken_iam_answer_keeps_the_last_good_status_and_says_why() {
    renewal_fails_then_recovers(
        "identity-broken-iam",
        Disruption::BrokenIamAnswer,
        "IAM sent an invalid response",
    )
    .await;
}

#[tokio::test]
async fn a_service_account_deleted_mid_run_keeps_the_last_good_status_and_says_why() {
    renewal_fails_then_recovers(
        "identity-sa-deleted",
        Disruption::ServiceAccountDeleted,
        "does not exist",
    )
    .await;
}

/// A source of default credentials the operator is given through its environment: a
/// ServiceAccount token (of `account`, mapped by a rule with `agency` when given) is written
/// to a file, `env` names the variables from the simulator and that file.
struct DefaultSource {
    test: &'static str,
    agency: Option<&'static str>,
    env: fn(&Sim, &str) -> Vec<(&'static str, String)>,
    /// What the log says the source is.
    logged: &'static str,
}

/// A watch without credentials syncs with `source` as the operator's defaults; the log
/// names the source, never the token.
async fn defaults_serve(source: DefaultSource) {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup(source.test).await;
    let iam = PlaneIam::new(&client).await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .frozen()
        .iam(&iam)
        .start();
    service_account(&client, &ns, "operator").await;
    let mut rule = rule_for(&ns, "operator");
    if let Some(agency) = source.agency {
        rule["agency"] = agency.into();
    }
    sim.add_iam_rule(&rule).await;
    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    let token = sa_token(&client, &ns, "operator", AUDIENCE, 600).await;
    std::fs::write(&token_file, &token).expect("write token");
    let token_path = token_file.display().to_string();
    let env = (source.env)(&sim, &token_path);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let op = Operator::start_with_env(&ns, &sim, &[], &env);
    common::watch::defaults_account(&client, &sim, &ns, &[&ns]).await;
    common::watch::account_watch(
        &client,
        &ns,
        "defaults",
        &success.cluster,
        Some(&success.workflow),
        json!({"kind": "ClusterCCEAccount", "name": ns}),
    )
    .await;
    wait_watch(&client, &ns, "defaults", 60, "Synced", |w| {
        synced_reason(w).as_deref() == Some("Synced")
    })
    .await;
    let log = op.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("default credentials") && l.contains(source.logged)),
        "the log does not name the source {:?}",
        source.logged
    );
    assert!(
        !log.contains(&token),
        "the token file's content is in the log"
    );
    assert_nothing_leaked(&client, &ns, "defaults", &op).await;
}

/// The operator's own projected token, federated at IAM: `HUAWEICLOUD_SDK_IDP_ID` and
/// `HUAWEICLOUD_SDK_ID_TOKEN_FILE`.
#[tokio::test]
async fn the_operators_own_token_file_is_its_default_credentials() {
    defaults_serve(DefaultSource {
        test: "identity-operator",
        agency: None,
        env: |sim, token| {
            vec![
                ("HUAWEICLOUD_SDK_IDP_ID", PROVIDER.to_string()),
                ("HUAWEICLOUD_SDK_ID_TOKEN_FILE", token.to_string()),
                (
                    "HUAWEICLOUD_SDK_IAM_ENDPOINT",
                    sim.iam_endpoint().to_string(),
                ),
            ]
        },
        logged: "federation of the token file",
    })
    .await;
}

/// An agency assumed at STS with the token: the `HUAWEICLOUD_OIDC_*` variables.
#[tokio::test]
async fn an_agency_assumed_with_oidc_at_sts_is_the_default_credentials() {
    defaults_serve(DefaultSource {
        test: "identity-oidc-sts",
        agency: Some("cce-reader"),
        env: |sim, token| {
            vec![
                (
                    "HUAWEICLOUD_OIDC_PROVIDER_URN",
                    format!("iam::0970d7:identity-provider:{PROVIDER}"),
                ),
                (
                    "HUAWEICLOUD_OIDC_AGENCY_URN",
                    "iam::0970d7:agency:cce-reader".to_string(),
                ),
                ("HUAWEICLOUD_OIDC_TOKEN_FILE", token.to_string()),
                (
                    "HUAWEICLOUD_SDK_STS_ENDPOINT",
                    sim.iam_endpoint().to_string(),
                ),
            ]
        },
        logged: "OIDC STS at",
    })
    .await;
}

/// The SDK's credentials file (`HUAWEICLOUD_SDK_CREDENTIALS_FILE`), its `[basic]` profile
/// naming the identity provider, the token file and IAM.
#[tokio::test]
async fn the_sdks_credentials_file_with_a_federation_is_the_default_credentials() {
    defaults_serve(DefaultSource {
        test: "identity-profile",
        agency: None,
        env: |sim, token| {
            let path = format!("{token}.credentials");
            let profile = format!(
                "[basic]\nidp_id = {PROVIDER}\nid_token_file = {token}\niam_endpoint = {}\n",
                sim.iam_endpoint()
            );
            std::fs::write(&path, profile).expect("write the credentials file");
            vec![("HUAWEICLOUD_SDK_CREDENTIALS_FILE", path)]
        },
        logged: "the credentials file",
    })
    .await;
}

/// CCE pod identity: `HC_CONTAINER_CREDENTIALS_FULL_URI` and the agent's token file.
#[tokio::test]
async fn cce_pod_identity_serves_as_default_credentials() {
    defaults_serve(DefaultSource {
        test: "identity-pod",
        agency: None,
        env: |sim, token| {
            vec![
                ("HC_CONTAINER_CREDENTIALS_FULL_URI", sim.pod_identity_uri()),
                ("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", token.to_string()),
            ]
        },
        logged: "CCE pod identity",
    })
    .await;
}

/// The default-credentials Secret as the chart mounts it: rotating its files reaches the
/// running operator.
#[tokio::test]
async fn a_rotated_default_credentials_secret_takes_effect_without_a_restart() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("identity-rotation").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let dir = tempfile::tempdir().expect("dir");
    let write = |ak: &str, sk: &str| {
        // As the kubelet does: the new files appear whole.
        for (key, value) in [("accessKey", ak), ("secretKey", sk)] {
            let part = dir.path().join(format!(".{key}.new"));
            std::fs::write(&part, value).expect("write");
            std::fs::rename(&part, dir.path().join(key)).expect("rename");
        }
    };
    let wrong = "wrongSecretKey00000000000000000000000001";
    common::secrets::forbid_in_logs(wrong);
    write(builtin::ACCESS_KEY, wrong);
    let dir_path = dir.path().display().to_string();
    let mut op = Operator::start(&ns, &sim, &["--default-credentials-dir", &dir_path]);
    common::watch::defaults_account(&client, &sim, &ns, &[&ns]).await;
    common::watch::account_watch(
        &client,
        &ns,
        "rotated",
        &success.cluster,
        Some(&success.workflow),
        json!({"kind": "ClusterCCEAccount", "name": ns}),
    )
    .await;
    wait_watch(&client, &ns, "rotated", 60, "Unauthorized", |w| {
        synced_reason(w).as_deref() == Some("Unauthorized")
    })
    .await;
    let pid = op.pid();
    write(builtin::ACCESS_KEY, builtin::SECRET_KEY);
    wait_watch(&client, &ns, "rotated", 60, "Synced", |w| {
        synced_reason(w).as_deref() == Some("Synced")
    })
    .await;
    assert!(op.running() && op.pid() == pid, "the operator restarted");
    assert!(
        op.log_text()
            .contains("the default-credentials Secret mounted at")
    );
}
