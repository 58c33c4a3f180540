//! Shared support for end-to-end tests against the real local control plane that
//! `make test` starts (`hack/control-plane.sh`). A test that cannot reach it fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, CustomResourceExt};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;

const NO_PLANE: &str = "no Kubernetes API server reachable: end-to-end tests run against the local \
     control plane; run them with `make test` (or `eval \"$(hack/control-plane.sh up)\"` first)";

/// A client for the plane named by KUBECONFIG; panics with directions when there is none.
pub async fn client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "{NO_PLANE} (KUBECONFIG is not set)"
    );
    let client = Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("{NO_PLANE}: {e}"));
    if let Err(e) = client.apiserver_version().await {
        panic!("{NO_PLANE}: {e}");
    }
    client
}

/// The committed CRD, applied and Established (idempotent across tests).
pub async fn install_crd(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let yaml = std::fs::read_to_string(repo_path(
        "crds/upgradeworkflowwatches.cce.upgradewatch.io.yaml",
    ))
    .expect("read committed CRD");
    let crd: CustomResourceDefinition = serde_yaml::from_str(&yaml).expect("parse committed CRD");
    let name = UpgradeWorkflowWatch::crd_name();
    api.patch(
        name,
        &PatchParams::apply("e2e-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(api, name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD Established within 30s")
    .expect("watch CRD");
}

/// A fresh namespace for one test. Without kube-controller-manager namespaces never finish
/// deleting, so they are left for `hack/control-plane.sh down` to discard.
pub async fn namespace(client: &Client, test: &str) -> String {
    let suffix: u32 = rand::random();
    let name = format!(
        "{}-{:08x}",
        test.replace('_', "-").chars().take(40).collect::<String>(),
        suffix
    );
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// kubectl from the control plane's cache (CCE_UW_KUBECTL), else from PATH.
pub fn kubectl(args: &[&str]) -> Output {
    let bin = std::env::var("CCE_UW_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"))
}

/// kubectl with `stdin` piped in.
pub fn kubectl_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let bin = std::env::var("CCE_UW_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("kubectl output")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs kubectl until it succeeds, for up to 30 s (discovery and OpenAPI lag behind a new CRD).
pub async fn kubectl_until_success(args: &[&str]) -> Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = kubectl(args);
        if out.status.success() || std::time::Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
