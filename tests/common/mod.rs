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

pub mod argocd;
pub mod procs;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::ListParams;

/// A Secret with the simulator's built-in AK/SK (or others); its values are added to what
/// no operator log may contain.
pub async fn sim_secret(client: &Client, ns: &str, name: &str, ak: &str, sk: &str) {
    procs::forbid_in_logs(ak);
    procs::forbid_in_logs(sk);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"accessKey": ak, "secretKey": sk}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("e2e-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("apply secret");
}

/// Creates a watch of a simulator workflow (`None` follows the cluster).
pub async fn sim_watch(
    client: &Client,
    ns: &str,
    name: &str,
    sim: &procs::Sim,
    cluster: &str,
    workflow: Option<&str>,
    secret: Option<&str>,
) -> UpgradeWorkflowWatch {
    let mut spec = serde_json::json!({
        "endpoint": sim.url,
        "projectID": procs::PROJECT,
        "clusterID": cluster,
        "pollInterval": "5s",
    });
    if let Some(w) = workflow {
        spec["upgradeWorkflowID"] = w.into();
    }
    if let Some(s) = secret {
        spec["credentialsSecretRef"] = serde_json::json!({"name": s});
    }
    let watch: UpgradeWorkflowWatch = serde_json::from_value(serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .expect("watch");
    Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &watch)
        .await
        .expect("create watch")
}

/// Polls the watch until `done` holds, failing after `secs` with the last status seen.
pub async fn wait_watch(
    client: &Client,
    ns: &str,
    name: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&UpgradeWorkflowWatch) -> bool,
) -> UpgradeWorkflowWatch {
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let w = api.get(name).await.expect("get watch");
        if done(&w) {
            return w;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{what}: not reached within {secs}s; status: {}",
                serde_json::to_string_pretty(&w.status).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The condition `type_` of a watch as (status, reason).
pub fn cond(w: &UpgradeWorkflowWatch, type_: &str) -> Option<(String, String)> {
    w.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Events about one watch, oldest first, as (reason, note), each series counted once per
/// occurrence.
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let api = Api::<KubeEvent>::namespaced(client.clone(), ns);
    let mut list: Vec<KubeEvent> = api
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    let mut out = Vec::new();
    for e in list {
        let count = e.series.as_ref().map(|s| s.count).unwrap_or(1).max(1);
        for _ in 0..count {
            out.push((
                e.reason.clone().unwrap_or_default(),
                e.note.clone().unwrap_or_default(),
            ));
        }
    }
    out
}

pub fn reasons(events: &[(String, String)]) -> Vec<&str> {
    events.iter().map(|(r, _)| r.as_str()).collect()
}

/// Events about a watch once `done` holds for them (they are published just after the
/// status write that a test usually waits for); fails after `secs` showing what was there.
pub async fn wait_events(
    client: &Client,
    ns: &str,
    name: &str,
    secs: u64,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = events(client, ns, name).await;
        if done(&got) {
            return got;
        }
        if std::time::Instant::now() > deadline {
            panic!("events of {name} not as expected within {secs}s: {got:#?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn count(events: &[(String, String)], reason: &str) -> usize {
    events.iter().filter(|(r, _)| r == reason).count()
}

/// Whether the watch shows what the simulator holds for `workflow` now: the same workflow,
/// phase, and tasks (status and id).
pub async fn converged(sim: &procs::Sim, w: &UpgradeWorkflowWatch, workflow: &str) -> bool {
    let state = sim.get(&format!("/_sim/workflows/{workflow}")).await;
    let truth = &state["workflow"]["status"];
    let Some(status) = &w.status else {
        return false;
    };
    let points = truth["pointStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    truth["phase"].as_str() == status.phase.as_deref()
        && status.workflow_id.as_deref() == Some(workflow)
        && points.len() == status.tasks.len()
        && points.iter().zip(&status.tasks).all(|(p, t)| {
            p["status"].as_str() == t.status.as_deref() && p["taskID"].as_str() == t.id.as_deref()
        })
}

/// Waits until the watch shows the simulator's `workflow` as it is now.
pub async fn wait_converged(
    client: &Client,
    ns: &str,
    name: &str,
    sim: &procs::Sim,
    workflow: &str,
    secs: u64,
) -> UpgradeWorkflowWatch {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns);
    loop {
        let w = api.get(name).await.expect("get watch");
        if converged(sim, &w, workflow).await {
            return w;
        }
        if std::time::Instant::now() > deadline {
            let truth = sim.get(&format!("/_sim/workflows/{workflow}")).await;
            panic!(
                "watch {name} did not converge in {secs}s\nwatch: {}\nsimulator: {}",
                serde_json::to_string_pretty(&w.status).unwrap_or_default(),
                truth["workflow"]["status"]
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Events about one watch, oldest first, as the API server stores them.
pub async fn raw_events(client: &Client, ns: &str, name: &str) -> Vec<KubeEvent> {
    let api = Api::<KubeEvent>::namespaced(client.clone(), ns);
    let mut list: Vec<KubeEvent> = api
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    list
}

/// The events of a watch that saw the success scenario from its start.
pub const SUCCESS_EVENTS: &[&str] = &[
    "WorkflowObserved",
    "TaskStarted",
    "PhaseChanged",
    "TaskSucceeded",
    "TaskStarted",
    "TaskSucceeded",
    "TaskStarted",
    "TaskSucceeded",
    "TaskStarted",
    "TaskSucceeded",
    "UpgradeSucceeded",
];
