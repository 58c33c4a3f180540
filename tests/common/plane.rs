//! The Kubernetes control plane a test talks to: the shared one `make test` starts
//! (`hack/control-plane.sh`, named by KUBECONFIG), or a private one of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, CustomResourceExt};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;

use super::{repo_path, text};

const NO_PLANE: &str = "no Kubernetes API server reachable: end-to-end tests run against the local \
     control plane; run them with `make test` (or `eval \"$(hack/control-plane.sh up)\"` first)";

/// A client for the shared plane named by KUBECONFIG; panics with directions when there is none.
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

/// A client for the API server of `kubeconfig`, checked to answer.
pub async fn client_for(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    let client = Client::try_from(config).expect("client");
    client
        .apiserver_version()
        .await
        .unwrap_or_else(|e| panic!("API server of {} unreachable: {e}", kubeconfig.display()));
    client
}

/// A kubeconfig (as JSON) for the server and CA of the shared plane (KUBECONFIG's) with
/// `user` as its credentials: a token, a token file, an exec plugin.
pub fn kubeconfig_with_user(user: serde_json::Value) -> String {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let admin: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read kubeconfig"))
            .expect("parse kubeconfig");
    let cluster = &admin["clusters"][0]["cluster"];
    serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "plane", "cluster": {
            "server": cluster["server"],
            "certificate-authority-data": cluster["certificate-authority-data"],
        }}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "user", "context": {"cluster": "plane", "user": "user"}}],
        "current-context": "user",
    }))
    .expect("kubeconfig JSON")
}

/// The committed CRDs, applied and Established (idempotent across tests).
pub async fn install_crd(client: &Client) {
    for plural in [
        "upgradeworkflowwatches",
        "cceaccounts",
        "clustercceaccounts",
        "upgradewatchsets",
    ] {
        let file = format!("crds/{plural}.cce.upgradewatch.io.yaml");
        let yaml = std::fs::read_to_string(repo_path(&file)).expect("read committed CRD");
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&yaml).expect("parse committed CRD");
        apply_crd(client, &crd).await;
    }
}

/// One CRD applied and Established: until then the API server answers its resources
/// with a bare 404.
pub async fn apply_crd(client: &Client, crd: &CustomResourceDefinition) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("a CRD has a name");
    api.patch(
        &name,
        &PatchParams::apply("e2e-tests").force(),
        &Patch::Apply(crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD Established within 30s")
    .expect("watch CRD");
}

/// What kube-controller-manager's clusterrole-aggregation controller does, for a plane
/// without a controller manager (hack/control-plane.sh starts none without a node): every
/// ClusterRole with an aggregationRule (the built-in view, edit and admin among them) gets
/// the rules of the ClusterRoles its selectors match, taken in name order and each rule
/// once, repeated until nothing changes (edit aggregates view, admin aggregates edit). Each
/// write names the resourceVersion its union was computed from, so two tests aggregating at
/// once never put back a union without the other's roles; a real controller, where there is
/// one, writes the same rules.
pub async fn aggregate_cluster_roles(client: &Client) {
    let api: Api<ClusterRole> = Api::all(client.clone());
    for _ in 0..20 {
        let mut roles = api
            .list(&ListParams::default())
            .await
            .expect("list ClusterRoles")
            .items;
        roles.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut settled = true;
        for role in &roles {
            let Some(aggregation) = &role.aggregation_rule else {
                continue;
            };
            let mut rules: Vec<PolicyRule> = Vec::new();
            for selector in aggregation.cluster_role_selectors.iter().flatten() {
                assert!(
                    selector
                        .match_expressions
                        .as_ref()
                        .is_none_or(Vec::is_empty),
                    "aggregate_cluster_roles matches labels only: {selector:?}"
                );
                let wanted = selector.match_labels.clone().unwrap_or_default();
                let matched = roles.iter().filter(|other| {
                    other.metadata.name != role.metadata.name
                        && wanted.iter().all(|(k, v)| {
                            other.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v)
                        })
                });
                for rule in matched.flat_map(|other| other.rules.iter().flatten()) {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
            if rules == role.rules.clone().unwrap_or_default() {
                continue;
            }
            settled = false;
            let name = role.metadata.name.clone().expect("ClusterRole name");
            let mut aggregated = role.clone();
            aggregated.rules = Some(rules);
            match api
                .replace(&name, &PostParams::default(), &aggregated)
                .await
            {
                Ok(_) => {}
                // Someone wrote it since the list: the next pass starts from theirs.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("aggregate ClusterRole {name}: {e}"),
            }
        }
        if settled {
            return;
        }
    }
    panic!("the ClusterRoles' aggregation did not settle in 20 passes");
}

/// A control plane of one test's (or the benchmark's) own, in its own state dir, taken down
/// when dropped: for what would disturb other tests on the shared plane (restarting it,
/// running without the CRD).
pub struct PrivatePlane {
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl PrivatePlane {
    /// `hack/control-plane.sh up` in a new state dir named `prefix…`.
    pub fn up(prefix: &str) -> PrivatePlane {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        let plane = PrivatePlane {
            dir: Some(dir),
            keep: false,
        };
        plane.run("up");
        plane
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("plane is up").path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir().join("kubeconfig")
    }

    pub async fn client(&self) -> Client {
        client_for(&self.kubeconfig()).await
    }

    /// `hack/control-plane.sh <command>` for this plane; panics when it fails.
    pub fn run(&self, command: &str) {
        let out = self.script(command);
        assert!(
            out.status.success(),
            "hack/control-plane.sh {command} failed: {}",
            text(&out.stderr)
        );
    }

    /// The pid of one of the plane's processes (`kube-apiserver`, `etcd`).
    pub fn pid(&self, component: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir().join(format!("{component}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Moves etcd past every revision the API server has served and compacts its history
    /// up to there (through etcd's HTTP gateway, with a key outside the API server's
    /// prefix), so a watch resumed from any resourceVersion seen so far is answered with
    /// "too old resource version" and the watcher has to list again.
    pub async fn compact_etcd(&self) {
        let ports = std::fs::read_to_string(self.dir().join("ports.env")).expect("ports.env");
        let port = ports
            .lines()
            .find_map(|l| l.strip_prefix("ETCD_PORT="))
            .expect("ETCD_PORT in ports.env");
        let http = reqwest::Client::new();
        let url = |path: &str| format!("http://127.0.0.1:{port}/v3/kv/{path}");
        // "cce-uw-tests/compaction", base64 as the gateway wants keys and values.
        let put: serde_json::Value = http
            .post(url("put"))
            .json(&serde_json::json!({"key": "Y2NlLXV3LXRlc3RzL2NvbXBhY3Rpb24=", "value": "MQ=="}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("etcd put")
            .json()
            .await
            .expect("etcd put answer");
        let revision = put["header"]["revision"].clone();
        assert!(revision.is_string(), "etcd gave no revision: {put}");
        http.post(url("compaction"))
            .json(&serde_json::json!({"revision": revision, "physical": true}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("etcd compaction");
    }

    /// Takes the plane down now; panics when that fails.
    pub fn down(mut self) {
        self.run("down");
        self.dir = None;
    }

    /// Leaves the plane running when dropped, for a look afterwards.
    pub fn keep_running(&mut self) {
        self.keep = true;
    }

    fn script(&self, command: &str) -> Output {
        Command::new(repo_path("hack/control-plane.sh"))
            .arg(command)
            .env("CCE_UW_PLANE_DIR", self.dir())
            .output()
            .expect("run hack/control-plane.sh")
    }
}

impl Drop for PrivatePlane {
    fn drop(&mut self) {
        if self.dir.is_none() {
            return;
        }
        if self.keep {
            let _ = self.dir.take().map(tempfile::TempDir::keep);
        } else {
            let _ = self.script("down");
        }
    }
}
