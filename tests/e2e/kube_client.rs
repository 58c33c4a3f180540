//! The operator's Kubernetes client (`runtime::kube_client`) against the real API server:
//! HTTP/2 with the plane's client certificate, HTTP/1.1 from a server that offers no h2,
//! a token file re-read as it rotates on disk (the path kube's in-cluster config takes for
//! the pod's ServiceAccount token), an exec plugin, and the operator holding one
//! connection to the API server for all its watches and requests.

use crate::common;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

use cce_upgrade_watch::runtime::kube_client::{self, Protocols};
use cce_upgrade_watch::sim::builtin::Builtin;
use common::eventually::{KUBE_POLL, eventually};
use common::operator::Operator;
use common::sim::{Sim, copy};
use common::sockets::{api_server, connections_to};

/// Our client for the kubeconfig at `path`.
async fn client_from(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    kube_client::from_config(config, Protocols::Http2AndHttp1).expect("client")
}

/// The HTTP version the server answered `GET /version` with.
async fn version_of(client: &Client) -> http::Version {
    let request = http::Request::get("/version")
        .body(Body::empty())
        .expect("request");
    client.send(request).await.expect("GET /version").version()
}

/// Who the API server takes `client` for.
async fn username(client: &Client) -> Result<String, String> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| e.to_string())?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .ok_or_else(|| "no username in the review".to_string())
}

fn shared_kubeconfig() -> std::path::PathBuf {
    std::env::var_os("KUBECONFIG")
        .expect("KUBECONFIG names the shared plane")
        .into()
}

/// [`common::plane::kubeconfig_with_user`], written into `dir`.
fn kubeconfig_with_user(dir: &Path, user: Value) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, common::plane::kubeconfig_with_user(user)).expect("write kubeconfig");
    path
}

/// A ServiceAccount `name` in `ns` and an hour's token for it.
async fn service_account_token(client: &Client, ns: &str, name: &str) -> String {
    let api = Api::<ServiceAccount>::namespaced(client.clone(), ns);
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("ServiceAccount");
    api.create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}})).expect("request");
    api.create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

/// Replaces `path` as the kubelet does a projected token: a new file renamed over it.
fn write_atomically(path: &Path, content: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).expect("write token");
    std::fs::rename(&tmp, path).expect("rename token");
}

#[tokio::test]
async fn the_planes_client_certificate_gets_http2() {
    let client = client_from(&shared_kubeconfig()).await;
    assert_eq!(version_of(&client).await, http::Version::HTTP_2);
    let who = username(&client).await.expect("review");
    assert!(!who.starts_with("system:serviceaccount:"), "{who}");
}

#[tokio::test]
async fn with_http2_disabled_the_planes_server_gets_http1() {
    let kc = Kubeconfig::read_from(shared_kubeconfig()).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    let client = kube_client::from_config(config, Protocols::Http1Only).expect("client");
    assert_eq!(version_of(&client).await, http::Version::HTTP_11);
    username(&client).await.expect("review over HTTP/1.1");
}

#[tokio::test]
async fn a_server_without_h2_gets_http1_and_a_custom_ca_is_trusted() {
    // The simulator serves HTTP/1.1 only, under a CA of its own.
    let sim = Sim::https().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sim", "cluster": {
            "server": sim.url,
            "certificate-authority": sim.ca_bundle(),
        }}],
        "users": [{"name": "none", "user": {}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "none"}}],
        "current-context": "sim",
    });
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig.to_string()).expect("write kubeconfig");
    let client = client_from(&path).await;
    assert_eq!(version_of(&client).await, http::Version::HTTP_11);
}

#[tokio::test]
async fn a_token_file_is_read_again_when_it_rotates() {
    let admin = common::client().await;
    let ns = common::namespace(&admin, "token-file").await;
    let first = service_account_token(&admin, &ns, "first").await;
    let second = service_account_token(&admin, &ns, "second").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    write_atomically(&token, &first);
    let client = client_from(&kubeconfig_with_user(
        dir.path(),
        json!({"tokenFile": token}),
    ))
    .await;
    assert_eq!(version_of(&client).await, http::Version::HTTP_2);
    assert_eq!(
        username(&client).await.expect("review"),
        format!("system:serviceaccount:{ns}:first")
    );

    write_atomically(&token, &second);
    // kube reads a token file again once a minute.
    let rotated = format!("system:serviceaccount:{ns}:second");
    eventually(
        "the client authenticates with the rotated token",
        Duration::from_secs(90),
        Duration::from_secs(2),
        || async {
            match username(&client).await {
                Ok(who) if who == rotated => Ok(()),
                Ok(who) => Err(who),
                Err(e) => Err(e),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn an_exec_plugin_token_authenticates() {
    let admin = common::client().await;
    let ns = common::namespace(&admin, "exec-plugin").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    write_atomically(&token, &service_account_token(&admin, &ns, "exec").await);
    let script = r#"printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat "$0")""#;
    let client = client_from(&kubeconfig_with_user(
        dir.path(),
        json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "sh",
            "args": ["-c", script, token],
            "interactiveMode": "Never",
        }}),
    ))
    .await;
    assert_eq!(version_of(&client).await, http::Version::HTTP_2);
    assert_eq!(
        username(&client).await.expect("review"),
        format!("system:serviceaccount:{ns}:exec")
    );
}

#[tokio::test]
async fn the_operator_holds_one_connection_to_the_api_server() {
    let (client, ns) = common::setup("one-connection").await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--workflows", "2"])
        .frozen()
        .start();
    let op = Operator::start(&ns, &sim, &[]);
    let watches: Vec<(String, u64)> = (0..12).map(|i| (format!("w{i}"), i % 2)).collect();
    for (name, copy_index) in &watches {
        let ids = copy(Builtin::Success, *copy_index);
        common::sim_watch(
            &client,
            &ns,
            name,
            &sim,
            &ids.cluster,
            Some(&ids.workflow),
            Some("cce"),
        )
        .await;
    }
    for (name, copy_index) in &watches {
        let ids = copy(Builtin::Success, *copy_index);
        common::wait_converged(&client, &ns, name, &sim, &ids.workflow, 60).await;
    }
    // Watches of watches, Secrets and Events, status writes and Event creates: with HTTP/1.1
    // each watch and each request in flight holds a connection of its own.
    let server = api_server(&shared_kubeconfig());
    let pid = op.pid().expect("operator running");
    for _ in 0..8 {
        let held = connections_to(pid, server).expect("read the operator's sockets");
        assert_eq!(held, 1, "connections to the API server:\n{}", op.log_text());
        tokio::time::sleep(KUBE_POLL * 4).await;
    }
}
