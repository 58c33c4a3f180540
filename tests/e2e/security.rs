//! Security properties end to end: where CCE calls may go, and whose credentials a watch
//! can use. (That no Secret value reaches a log is checked for every e2e test's operator
//! when it is dropped: see `tests/common/secrets.rs`.)

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cce_upgrade_watch::cce::ApiFamily;
use cce_upgrade_watch::cce::client::{CceClient, ClientConfig, Target};
use cce_upgrade_watch::cce::credentials::Credentials;
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::operator::Operator;
use common::sim::{Sim, copy};
use common::{cond, wait_watch};

/// A TCP listener that counts the connections it accepts (and drops them).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn plain_http_and_hosts_outside_the_allow_list_are_refused_before_any_connection() {
    let success = copy(Builtin::Success, 0);
    let (port, accepted) = counting_listener().await;
    let client = CceClient::new(ClientConfig::default()).expect("client with default policy");
    for endpoint in [
        format!("http://127.0.0.1:{port}"),
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
        "http://cce.ap-southeast-1.myhuaweicloud.com".to_string(),
        "https://cce.ap-southeast-1.myhuaweicloud.com.attacker.example".to_string(),
    ] {
        let refused = client
            .resolve_endpoint(None, Some(&endpoint))
            .expect_err(&endpoint);
        assert_eq!(refused.category(), "EndpointNotAllowed", "{endpoint}");
        // Even a target built around the resolver is checked again before sending.
        let target = Target {
            endpoint: url::Url::parse(&endpoint).expect("url"),
            project_id: builtin::PROJECT_ID.into(),
            cluster_id: success.cluster.clone(),
            family: ApiFamily::Standard,
            credentials: Credentials::Token("t0ken-never-sent".to_string().into()),
        };
        let err = client
            .show_workflow(&target, &success.workflow)
            .await
            .expect_err(&endpoint);
        assert_eq!(err.category(), "EndpointNotAllowed", "{endpoint}");
        assert!(!err.to_string().contains("t0ken-never-sent"));
    }
    // The public endpoint of a region passes.
    client
        .resolve_endpoint(Some("ap-southeast-1"), None)
        .expect("Huawei Cloud's own domain is allowed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
}

#[tokio::test]
async fn a_watch_naming_an_endpoint_outside_the_allow_list_never_reaches_it() {
    let success = copy(Builtin::Success, 0);
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, "outside-allow-list").await;
    common::builtin_secret(&client, &ns).await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    // The harness allows exactly 127.0.0.1; the same simulator as `localhost` is not allowed
    // (its certificate is valid for both names, so only the policy stands in the way).
    let op = Operator::start(&ns, &sim, &[]);
    let port = sim.url.rsplit(':').next().expect("port");
    let account = |name: &str, endpoint: String| {
        serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "CCEAccount",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"endpoint": endpoint, "projectID": builtin::PROJECT_ID,
                     "credentials": {"secretRef": {"name": "cce"}}}
        })
    };
    common::watch::apply_account(
        &client,
        account("elsewhere", format!("https://localhost:{port}")),
    )
    .await;
    common::watch::account_watch(
        &client,
        &ns,
        "elsewhere",
        &success.cluster,
        Some(&success.workflow),
        serde_json::json!({"name": "elsewhere"}),
    )
    .await;
    let refused = wait_watch(&client, &ns, "elsewhere", 30, "EndpointNotAllowed", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "EndpointNotAllowed")
    })
    .await;
    assert_eq!(cond(&refused, "Stalled").map(|c| c.0), Some("True".into()));
    // A plain-http endpoint does not even get past the API server.
    let plain: cce_upgrade_watch::crd::CceAccount =
        serde_json::from_value(account("plain", format!("http://127.0.0.1:{port}")))
            .expect("account");
    let rejected = kube::Api::namespaced(client.clone(), &ns)
        .create(&Default::default(), &plain)
        .await;
    assert!(rejected.is_err(), "an http:// endpoint was accepted");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(stats["total"], 0, "the simulator was called: {stats}");
    drop(op);
}

#[tokio::test]
async fn a_watch_cannot_use_a_secret_of_another_namespace() {
    let success = copy(Builtin::Success, 0);
    let second = copy(Builtin::Success, 1);
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns_a = common::namespace(&client, "tenant-a").await;
    let ns_b = common::namespace(&client, "tenant-b").await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--workflows", "2"])
        .frozen()
        .start();
    // Tenant B's own keys, valid at the simulator.
    let (ak_b, sk_b) = (
        "TENANTBAK00000000001",
        "tenantBSecretKey000000000000000000000001",
    );
    sim.post(
        "/_sim/credentials",
        serde_json::json!([{"accessKey": ak_b, "secretKey": sk_b, "projectID": builtin::PROJECT_ID}]),
    )
    .await;
    common::sim_secret(&client, &ns_b, "keys-b", ak_b, sk_b).await;
    let op = Operator::start(&ns_a, &sim, &["--namespaces", &ns_b]);

    // A's watch names B's Secret; B's own watch shows the keys work.
    common::sim_watch(
        &client,
        &ns_a,
        "a",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("keys-b"),
    )
    .await;
    common::sim_watch(
        &client,
        &ns_b,
        "b",
        &sim,
        &second.cluster,
        Some(&second.workflow),
        Some("keys-b"),
    )
    .await;
    let a = wait_watch(&client, &ns_a, "a", 30, "CredentialsMissing", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "CredentialsMissing")
    })
    .await;
    let message = a
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains(&format!("{ns_a}/keys-b")), "{message}");
    wait_watch(&client, &ns_b, "b", 30, "B synced with its own keys", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "True")
    })
    .await;
    // Two poll periods more, then nothing was ever asked for A's workflow with B's keys.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let for_a = sim.requests_for(&success.workflow).await;
    assert!(
        for_a.iter().all(|r| r["credential"] != ak_b),
        "a request for tenant A's workflow was signed with tenant B's keys: {for_a:#?}"
    );
    assert!(for_a.is_empty(), "{for_a:#?}");
    assert!(!sim.requests_for(&second.workflow).await.is_empty());
    drop(op);
}

/// A hostile CCE that answers a pre-check with HTTP 200 and the request's `X-Auth-Token` in
/// its messages: the token reaches neither the watch's status, nor its Events, nor the
/// operator's log (checked at trace level, as every e2e operator's log is when dropped).
#[tokio::test]
async fn a_token_echoed_in_a_successful_answer_reaches_no_status_event_or_log() {
    let (client, ns) = common::setup("echoed-token").await;
    let token = builtin::TOKEN;
    let scenario = format!(
        r#"
name: echoed-token
clusters: [{{id: c-echo, version: v1.28.15-r10}}]
workflows:
  - id: f-echo
    clusterID: c-echo
    targetVersion: v1.29.13-r0
    steps:
      - {{after: 1, task: PreCheck, status: Running}}
      - after: 2
        task: PreCheck
        status: Failed
        message: "checked for X-Auth-Token {token}"
        checks:
          - {{name: NodeReady, node: worker-2, message: "worker-2 was asked with {token}"}}
"#
    );
    let sim = Sim::https().scenario_yaml(&scenario).start();
    let op = Operator::start(&ns, &sim, &[]);
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cce-token", "namespace": ns,
                     "labels": {"cce.upgradewatch.io/credentials": "true"}},
        "stringData": {"token": token}
    }))
    .expect("secret");
    kube::Api::namespaced(client.clone(), &ns)
        .create(&Default::default(), &secret)
        .await
        .expect("create secret");
    common::sim_watch(
        &client,
        &ns,
        "echo",
        &sim,
        "c-echo",
        Some("f-echo"),
        Some("cce-token"),
    )
    .await;

    let status_of = |w: &cce_upgrade_watch::crd::UpgradeWorkflowWatch| {
        serde_json::to_string(&w.status).expect("status JSON")
    };
    let failed = wait_watch(&client, &ns, "echo", 60, "the pre-check's findings", |w| {
        status_of(w).contains("worker-2 was asked with")
    })
    .await;
    let status = status_of(&failed);
    assert!(
        !status.contains(token),
        "the token is in the status: {status}"
    );
    assert!(
        status.contains("worker-2 was asked with [REDACTED]"),
        "{status}"
    );
    common::wait_events(&client, &ns, "echo", 30, |e| {
        e.iter().any(|(reason, _)| reason == "TaskFailed")
    })
    .await;
    let events = common::raw_events(&client, &ns, "echo").await;
    let events = serde_json::to_string(&events).expect("events JSON");
    assert!(
        events.contains("[REDACTED]"),
        "the Warning names no finding: {events}"
    );
    assert!(
        !events.contains(token),
        "the token is in an Event: {events}"
    );
    let log = op.log_text();
    assert!(log.contains("[REDACTED]"), "the log never saw the finding");
    assert!(!log.contains(token), "the token is in the operator's log");
}
