//! The operator installed the way users install it, running as real Pods on a real node:
//! `make test-node` starts the plane with a node (`CCE_UW_NODE=1 hack/control-plane.sh up`:
//! kube-controller-manager, kube-scheduler, a kubelet with containerd and runc), imports the
//! image `make image` built into containerd, and runs this suite. Each test installs the chart
//! from an OCI registry on loopback into a namespace that enforces the `restricted` Pod
//! Security level, and follows a watch of the simulator to its end through the Pods.
//!
//! How the Pods reach the host (hack/node.sh): the Pod network is a bridge whose host address
//! is `CCE_UW_NODE_HOST_IP`; the simulator listens there (its certificate names it), and
//! socat forwards the same address at the API server's port to kube-apiserver on loopback.
//! There is no kube-proxy, so the chart's `extraEnv` sets KUBERNETES_SERVICE_HOST/PORT to
//! that address: the operator's in-cluster configuration then reads the API server with the
//! ServiceAccount token the kubelet projects, as in any cluster.
//!
//! Not part of `cargo test` (Cargo.toml: `test = false`): without the node every test here
//! fails, by design, rather than skipping.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use cce_upgrade_watch::sim::builtin::Builtin;
use common::commands::{LoopbackRegistry, hack, helm, ok};
use common::eventually::{KUBE_POLL, eventually};
use common::iam::{AUDIENCE, PROVIDER, PlaneIam, rule_for};
use common::sim::{Launch, Sim, SimTls, copy};
use common::watch::{account_watch, apply_account, steps_left, wait_converged};
use common::{SUCCESS_EVENTS, cond, events, kubectl, reasons, repo_path, text, wait_watch};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const RELEASE: &str = "cce-uw";
const NO_NODE: &str = "the node suite runs on the node of `make test-node` \
     (`CCE_UW_NODE=1 hack/control-plane.sh up`, then `eval \"$(hack/control-plane.sh env)\"`)";

// ------------------------------------------------------------------ the node

/// The node of `hack/node.sh`, as `hack/control-plane.sh env` describes it.
struct NodeEnv {
    name: String,
    /// The host's address on the Pod network: the simulator and the API server for Pods.
    host_ip: String,
    api_port: String,
    ctr: String,
    socket: String,
}

fn var(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set: {NO_NODE}"))
}

/// The node, checked to be registered and Ready; panics (fails the test) when it is not.
async fn ready_node(client: &Client) -> NodeEnv {
    let node = NodeEnv {
        name: var("CCE_UW_NODE_NAME"),
        host_ip: var("CCE_UW_NODE_HOST_IP"),
        api_port: var("CCE_UW_NODE_API_PORT"),
        ctr: var("CCE_UW_NODE_CTR"),
        socket: var("CCE_UW_NODE_CONTAINERD_SOCKET"),
    };
    let got = Api::<Node>::all(client.clone())
        .get(&node.name)
        .await
        .unwrap_or_else(|e| panic!("node {}: {e}: {NO_NODE}", node.name));
    let ready = got
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    assert!(ready, "node {} is not Ready: {NO_NODE}", node.name);
    node
}

// ------------------------------------------------------------------ commands

/// The image `make image` wrote (target/image/oci), imported into the node's containerd as
/// `name`, for this machine's platform. Nothing is pulled: the Pods start from it.
fn import_image(node: &NodeEnv, name: &str) {
    let layout = repo_path("target/image/oci");
    assert!(
        layout.join("index.json").is_file(),
        "{} is missing: run `make image` first",
        layout.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("image.tar");
    hack(
        "node/name-layout.py",
        &[
            &layout.display().to_string(),
            name,
            &tar.display().to_string(),
        ],
    );
    let platform = format!(
        "linux/{}",
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
    );
    let out = Command::new(&node.ctr)
        .args([
            "--address",
            &node.socket,
            "-n",
            "k8s.io",
            "images",
            "import",
        ])
        .args(["--platform", &platform])
        .arg(&tar)
        .output()
        .expect("run ctr");
    ok(out, "ctr images import");
}

/// The image id (its config's digest) of this platform's image in target/image/oci: the id
/// the CRI reports for a container started from it.
fn platform_config_digest() -> String {
    let layout = repo_path("target/image/oci");
    let blob = |digest: &str| -> Value {
        let path = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&std::fs::read(&path).expect("read blob")).expect("blob JSON")
    };
    let top: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read index.json"))
            .expect("index.json");
    let index = blob(
        top["manifests"][0]["digest"]
            .as_str()
            .expect("index digest"),
    );
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let manifest = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no linux/{arch} image in {}", layout.display()));
    let manifest = blob(manifest["digest"].as_str().expect("manifest digest"));
    manifest["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string()
}

// ------------------------------------------------------------------ the release

/// One install of the chart on the node: a restricted namespace, the simulator reachable
/// from the Pods, the chart from the registry, the image imported. Uninstalled, and the
/// namespace deleted, when dropped; on a failure the Pods' state and logs are printed first.
struct Release {
    client: Client,
    node: NodeEnv,
    ns: String,
    sim: Sim,
    registry: LoopbackRegistry,
    chart: String,
    values: PathBuf,
    _dir: tempfile::TempDir,
}

impl Release {
    /// Installs the chart with `replicas` and the `--set` values `set`; the simulator plays
    /// the success scenario, frozen.
    async fn install(test: &str, replicas: u32, set: &[&str]) -> Release {
        Release::install_with(test, replicas, set, |sim| sim).await
    }

    /// [`Release::install`] with the simulator's launch amended by `launch` (more flags,
    /// IAM wired to the plane).
    async fn install_with(
        test: &str,
        replicas: u32,
        set: &[&str],
        launch: impl FnOnce(Launch) -> Launch,
    ) -> Release {
        let client = common::client().await;
        let node = ready_node(&client).await;
        common::install_crd(&client).await;
        let ns = restricted_namespace(&client, test).await;
        common::builtin_secret(&client, &ns).await;

        // The simulator at the host's address on the Pod network, with a certificate for it.
        let tls = SimTls::generate_for(&[&node.host_ip]);
        let sim = launch(
            Sim::https()
                .at(&format!("{}:0", node.host_ip), &tls)
                .scenario(Builtin::Success)
                .frozen(),
        )
        .start();
        let ca: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "sim-ca", "namespace": ns},
            "data": {"ca.crt": std::fs::read_to_string(&tls.ca).expect("read CA")},
        }))
        .expect("ConfigMap");
        Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &ca)
            .await
            .expect("create CA ConfigMap");

        // The chart as users get it: pushed to a registry, installed from there; its image
        // (the registry's reference) is the one `make image` built, imported, never pulled.
        let registry = LoopbackRegistry::start();
        hack("chart.sh", &["push", &registry.addr, "--plain-http"]);
        import_image(
            &node,
            &format!("{}/cce-upgrade-watch:{VERSION}", registry.addr),
        );
        let chart = format!("oci://{}/charts/cce-upgrade-watch", registry.addr);

        let dir = tempfile::tempdir().expect("tempdir");
        let values = dir.path().join("node-values.yaml");
        std::fs::write(
            &values,
            serde_json::to_string_pretty(&json!({
                // No kube-proxy: the API server for Pods is the host's address on the bridge.
                "extraEnv": [
                    {"name": "KUBERNETES_SERVICE_HOST", "value": node.host_ip},
                    {"name": "KUBERNETES_SERVICE_PORT", "value": node.api_port},
                ],
                // The simulator's port is random: any port of that one address. It is IAM
                // too, for the operator's own identity.
                "operator": {
                    "allowedCceEndpoints": [format!("{}:*", node.host_ip)],
                    "allowedIamEndpoints": [format!("{}:*", node.host_ip)],
                },
                "workloadIdentity": {"iamEndpoint": sim.url},
                "caBundle": {"configMap": "sim-ca"},
            }))
            .expect("values"),
        )
        .expect("write values");

        let release = Release {
            client,
            node,
            ns,
            sim,
            registry,
            chart,
            values,
            _dir: dir,
        };
        let replica_count = format!("replicaCount={replicas}");
        let mut args = vec!["install", RELEASE];
        args.extend(release.helm_common());
        args.extend(["--set", &replica_count]);
        for s in set {
            args.extend(["--set", s]);
        }
        ok(helm(&args), "helm install from the registry");
        release.wait_pods_ready(replicas as usize).await;
        release
    }

    /// The chart, version, namespace, registry and values every helm call here passes.
    fn helm_common(&self) -> Vec<&str> {
        vec![
            &self.chart,
            "--version",
            VERSION,
            "--plain-http",
            "-n",
            &self.ns,
            "-f",
            self.values.to_str().expect("values path"),
        ]
    }

    fn selector(&self) -> String {
        format!("app.kubernetes.io/instance={RELEASE}")
    }

    async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default().labels(&self.selector()))
            .await
            .expect("list pods")
            .items
    }

    /// Waits until exactly `n` Pods of the release run, all Ready (the chart's readiness
    /// probe), none restarted, none terminating; returns them.
    async fn wait_pods_ready(&self, n: usize) -> Vec<Pod> {
        let what = format!("{n} Ready operator Pods in {}", self.ns);
        eventually(&what, Duration::from_secs(120), KUBE_POLL, || async {
            let pods = self.pods().await;
            let ready: Vec<Pod> = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p))
                .cloned()
                .collect();
            if ready.len() == n && pods.len() == n {
                Ok(ready)
            } else {
                Err(pod_summary(&pods))
            }
        })
        .await
    }

    /// The Pod holding the release's Lease.
    async fn leader(&self) -> String {
        let lease = format!("{RELEASE}-cce-upgrade-watch");
        eventually("a leader", Duration::from_secs(60), KUBE_POLL, || async {
            let l = Api::<Lease>::namespaced(self.client.clone(), &self.ns)
                .get_opt(&lease)
                .await
                .expect("get lease");
            match l.and_then(|l| l.spec).and_then(|s| s.holder_identity) {
                Some(h) if !h.is_empty() => Ok(h),
                other => Err(format!("holder {other:?}")),
            }
        })
        .await
    }

    fn diagnostics(&self) {
        for args in [
            vec!["get", "pods,events", "-n", &self.ns, "-o", "wide"],
            vec![
                "logs",
                "-n",
                &self.ns,
                "-l",
                "app.kubernetes.io/name=cce-upgrade-watch",
                "--all-containers",
                "--prefix",
                "--tail=60",
            ],
        ] {
            let out = kubectl(&args);
            eprintln!(
                "---- kubectl {}\n{}{}",
                args.join(" "),
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.diagnostics();
        }
        let _ = helm(&["uninstall", RELEASE, "-n", &self.ns, "--wait"]);
        let _ = kubectl(&["delete", "namespace", &self.ns, "--wait=false"]);
    }
}

fn pod_ready(p: &Pod) -> bool {
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let restarts: i32 = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0);
    assert_eq!(
        restarts,
        0,
        "pod {} restarted",
        p.metadata.name.as_deref().unwrap_or_default()
    );
    ready
}

fn pod_summary(pods: &[Pod]) -> String {
    pods.iter()
        .map(|p| {
            format!(
                "{} phase {:?} ready {} deleting {}",
                p.metadata.name.as_deref().unwrap_or_default(),
                p.status.as_ref().and_then(|s| s.phase.clone()),
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
                p.metadata.deletion_timestamp.is_some(),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A fresh namespace for `test` that enforces the `restricted` Pod Security level: the API
/// server refuses any Pod of the chart that is not restricted.
async fn restricted_namespace(client: &Client, test: &str) -> String {
    let name = format!(
        "node-{}-{:08x}",
        test.replace('_', "-"),
        rand::random::<u32>()
    );
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }},
    }))
    .expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// Steps the workflow one step and waits until the watch shows it.
async fn step(r: &Release, workflow: &str) {
    r.sim.step(workflow, 1).await;
    wait_converged(&r.client, &r.ns, "up", &r.sim, workflow, 60).await;
}

async fn success_watch(r: &Release) -> String {
    let success = copy(Builtin::Success, 0);
    common::sim_watch(
        &r.client,
        &r.ns,
        "up",
        &r.sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    wait_converged(&r.client, &r.ns, "up", &r.sim, &success.workflow, 60).await;
    success.workflow
}

/// The end of a success watch: Ready, and each transition's Event exactly once.
async fn ends_ready_with_one_event_per_transition(r: &Release, workflow: &str) {
    while steps_left(&r.sim, workflow).await > 0 {
        step(r, workflow).await;
    }
    let done = wait_watch(&r.client, &r.ns, "up", 60, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        done.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Success")
    );
    let got = common::wait_events(&r.client, &r.ns, "up", 30, |e| {
        e.len() >= SUCCESS_EVENTS.len()
    })
    .await;
    // Nothing more arrives late.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got_after = events(&r.client, &r.ns, "up").await;
    assert_eq!(got, got_after, "Events kept coming after the end");
    assert_eq!(reasons(&got), SUCCESS_EVENTS, "events: {got:#?}");
}

// ------------------------------------------------------------------ tests

/// The chart from the registry, its image from `make image`: the Pod starts on the node in a
/// restricted namespace, is Ready through the chart's probes, reads the API server with the
/// kubelet-projected ServiceAccount token, and a watch reaches Ready with one Event per
/// transition.
#[tokio::test]
async fn the_chart_runs_on_the_node_and_a_watch_reaches_ready_with_one_event_per_transition() {
    let r = Release::install("chart", 1, &[]).await;
    let pods = r.wait_pods_ready(1).await;
    let pod = &pods[0];
    let pod_name = pod.metadata.name.clone().expect("pod name");
    let spec = pod.spec.as_ref().expect("pod spec");
    assert_eq!(spec.node_name.as_deref(), Some(r.node.name.as_str()));

    // The image is the one imported: the registry never had it, so nothing was pulled.
    let image_ref = format!("{}/cce-upgrade-watch:{VERSION}", r.registry.addr);
    assert_eq!(
        spec.containers[0].image.as_deref(),
        Some(image_ref.as_str())
    );
    let status = pod.status.as_ref().expect("pod status");
    let cs = &status
        .container_statuses
        .as_ref()
        .expect("container statuses")[0];
    let config = platform_config_digest();
    assert!(
        cs.image_id.ends_with(&config),
        "the container runs image {} but make image built {config} for this platform",
        cs.image_id
    );

    // Its credentials are the token the kubelet projects (the ServiceAccount admission
    // plugin's kube-api-access volume), for the chart's ServiceAccount.
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some(format!("{RELEASE}-cce-upgrade-watch").as_str())
    );
    let projected = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .any(|s| s.service_account_token.is_some());
    assert!(
        projected,
        "no projected ServiceAccount token volume: {spec:#?}"
    );
    // With that token it took the Lease (its identity is the Pod's name).
    assert_eq!(r.leader().await, pod_name);

    let workflow = success_watch(&r).await;
    let first = wait_watch(&r.client, &r.ns, "up", 30, "first status", |w| {
        w.status.as_ref().is_some_and(|s| s.phase.is_some())
    })
    .await;
    assert_eq!(
        cond(&first, "Synced"),
        Some(("True".into(), "Synced".into()))
    );
    ends_ready_with_one_event_per_transition(&r, &workflow).await;

    // The Events name the Pod that published them.
    let raw = common::events::raw_events(&r.client, &r.ns, "up").await;
    assert!(
        raw.iter().all(
            |e| e.reporting_instance.as_deref() == Some(pod_name.as_str())
                || e.reporting_instance.is_none()
        ),
        "events from another instance: {:?}",
        raw.iter()
            .map(|e| e.reporting_instance.clone())
            .collect::<Vec<_>>()
    );
    // Still the same Pod, never restarted.
    let again = r.wait_pods_ready(1).await;
    assert_eq!(again[0].metadata.name.as_deref(), Some(pod_name.as_str()));
}

/// Two replicas: the leader's Pod is deleted mid-upgrade, the other Pod takes over, and no
/// transition loses or repeats its Event.
#[tokio::test]
async fn two_replicas_the_leaders_pod_deleted_mid_upgrade_no_event_lost_or_repeated() {
    let r = Release::install("failover", 2, &[]).await;
    let workflow = success_watch(&r).await;
    step(&r, &workflow).await;
    step(&r, &workflow).await;
    let leader = r.leader().await;

    let started = Instant::now();
    ok(
        kubectl(&["delete", "pod", "-n", &r.ns, &leader, "--wait=false"]),
        "delete the leader's Pod",
    );
    let new_leader = eventually(
        "another Pod leads",
        Duration::from_secs(90),
        KUBE_POLL,
        || async {
            let l = r.leader().await;
            if l != leader { Ok(l) } else { Err(l) }
        },
    )
    .await;
    eprintln!(
        "leadership moved from {leader} to {new_leader} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // The transitions while and after leadership moves.
    ends_ready_with_one_event_per_transition(&r, &workflow).await;
    // The Deployment replaced the deleted Pod.
    let pods = r.wait_pods_ready(2).await;
    assert!(
        pods.iter()
            .all(|p| p.metadata.name.as_deref() != Some(leader.as_str()))
    );
}

/// `helm upgrade` to a changed value rolls the Pod mid-upgrade; the new Pod goes on where
/// the old one stopped, with no Event lost or repeated.
#[tokio::test]
async fn helm_upgrade_rolls_the_pods_mid_upgrade_with_no_event_lost_or_repeated() {
    let r = Release::install("upgrade", 1, &[]).await;
    let before = r.wait_pods_ready(1).await[0]
        .metadata
        .name
        .clone()
        .expect("pod name");
    let workflow = success_watch(&r).await;
    step(&r, &workflow).await;

    let mut args = vec!["upgrade", RELEASE];
    args.extend(r.helm_common());
    args.extend(["--set", "operator.logLevel=debug"]);
    ok(helm(&args), "helm upgrade");
    let after = eventually(
        "the rolled Pod Ready",
        Duration::from_secs(120),
        KUBE_POLL,
        || async {
            let pods = r.pods().await;
            match pods.as_slice() {
                [p] if p.metadata.name.as_deref() != Some(before.as_str()) && pod_ready(p) => {
                    Ok(p.clone())
                }
                _ => Err(pod_summary(&pods)),
            }
        },
    )
    .await;
    let env = &after.spec.as_ref().expect("spec").containers[0].env;
    assert!(
        env.iter()
            .flatten()
            .any(|e| e.name == "RUST_LOG" && e.value.as_deref() == Some("debug")),
        "the new Pod does not have the changed value"
    );
    assert_eq!(r.leader().await, after.metadata.name.clone().expect("name"));
    ends_ready_with_one_event_per_transition(&r, &workflow).await;
}

/// `helm uninstall` removes every object of the release and its Pods, and leaves what
/// README says it leaves: the CRD, and with it the watches.
#[tokio::test]
async fn helm_uninstall_leaves_only_the_crd_and_the_watches() {
    let r = Release::install("uninstall", 1, &[]).await;
    let workflow = success_watch(&r).await;
    ok(
        helm(&["uninstall", RELEASE, "-n", &r.ns, "--wait"]),
        "helm uninstall",
    );
    eventually(
        "the release's Pods gone",
        Duration::from_secs(60),
        KUBE_POLL,
        || async {
            let pods = r.pods().await;
            if pods.is_empty() {
                Ok(())
            } else {
                Err(pod_summary(&pods))
            }
        },
    )
    .await;
    // Nothing labelled as the release's is left in its namespace or cluster-wide.
    let kinds = "deployments,replicasets,services,serviceaccounts,roles,rolebindings,\
         configmaps,secrets,poddisruptionbudgets,networkpolicies,leases";
    let left = ok(
        kubectl(&["get", kinds, "-n", &r.ns, "-l", &r.selector(), "-o", "name"]),
        "list the release's objects",
    );
    assert_eq!(left.trim(), "", "left in the namespace after uninstall");
    let cluster = ok(
        kubectl(&[
            "get",
            "clusterroles,clusterrolebindings",
            "-l",
            &r.selector(),
            "-o",
            "name",
        ]),
        "list the release's cluster objects",
    );
    assert_eq!(
        cluster.trim(),
        "",
        "cluster-wide objects left after uninstall"
    );
    // The CRD and the watch stay.
    ok(
        kubectl(&["get", "crd", "upgradeworkflowwatches.cce.upgradewatch.io"]),
        "the CRD after uninstall",
    );
    let w = wait_watch(
        &r.client,
        &r.ns,
        "up",
        5,
        "the watch after uninstall",
        |_| true,
    )
    .await;
    assert_eq!(
        w.status.as_ref().and_then(|s| s.workflow_id.as_deref()),
        Some(workflow.as_str())
    );
}

/// The container's peak memory as its memory cgroup counts it (cgroup v1's
/// memory.max_usage_in_bytes, v2's memory.peak), found under the node's cgroup root by the
/// container's id.
fn peak_memory(container_id: &str) -> u64 {
    let id = container_id
        .rsplit("://")
        .next()
        .expect("container id")
        .to_string();
    let root = var("CCE_UW_NODE_CGROUP");
    for (base, file) in [
        ("/sys/fs/cgroup/memory", "memory.max_usage_in_bytes"),
        ("/sys/fs/cgroup", "memory.peak"),
    ] {
        let mut stack = vec![PathBuf::from(format!("{base}{root}"))];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                if !path.is_dir() {
                    continue;
                }
                if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains(&id))
                {
                    let text = std::fs::read_to_string(path.join(file))
                        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", path.display()));
                    return text.trim().parse().expect("peak memory");
                }
                stack.push(path);
            }
        }
    }
    panic!("no memory cgroup for container {id} under {root}")
}

/// 1,000 watches over 200 simulator workflows, inside the chart's default memory limit:
/// every watch gets its first status, then each workflow's upgrade plays to its end; the
/// container never restarts and its peak memory (from its cgroup) stays under the limit.
/// The operator's own identity on the node (`workloadIdentity.operator`): the kubelet
/// projects a token of the chart's ServiceAccount with IAM's audience, the operator
/// federates it at the simulator's IAM (which verifies it against this plane's keys), and a
/// ClusterCCEAccount with `operatorDefaults` that lists the namespace serves its watch with
/// the keys IAM issued to that ServiceAccount. A watch of a namespace the account does not
/// list is refused.
#[tokio::test]
async fn the_operators_projected_token_serves_a_cluster_account_and_only_where_it_lists() {
    let client = common::client().await;
    let iam = PlaneIam::new(&client).await;
    let provider = format!("workloadIdentity.operator.identityProviderID={PROVIDER}");
    let audience = format!("workloadIdentity.operator.audience={AUDIENCE}");
    let r = Release::install_with(
        "identity",
        1,
        &[
            "workloadIdentity.operator.enabled=true",
            &provider,
            &audience,
        ],
        |sim| sim.iam(&iam),
    )
    .await;
    let chart_account = format!("{RELEASE}-cce-upgrade-watch");
    r.sim.add_iam_rule(&rule_for(&r.ns, &chart_account)).await;
    let pods = r.wait_pods_ready(1).await;
    let spec = pods[0].spec.as_ref().expect("pod spec");
    let projected_for_iam = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.service_account_token.as_ref())
        .any(|t| t.audience.as_deref() == Some(AUDIENCE));
    assert!(projected_for_iam, "no token projected for IAM: {spec:#?}");

    let success = copy(Builtin::Success, 0);
    let account = r.ns.clone();
    apply_account(
        &r.client,
        json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "ClusterCCEAccount",
            "metadata": {"name": account},
            "spec": {"endpoint": r.sim.url, "projectID": cce_upgrade_watch::sim::builtin::PROJECT_ID,
                     "credentials": {"operatorDefaults": {}},
                     "conditions": [{"namespaces": [r.ns]}]}
        }),
    )
    .await;
    let reference = json!({"kind": "ClusterCCEAccount", "name": account});
    account_watch(
        &r.client,
        &r.ns,
        "up",
        &success.cluster,
        Some(&success.workflow),
        reference.clone(),
    )
    .await;
    wait_converged(&r.client, &r.ns, "up", &r.sim, &success.workflow, 90).await;
    let issued = r.sim.iam_issued().await;
    let keys: Vec<String> = issued["credentials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    assert!(!keys.is_empty(), "IAM issued nothing: {issued}");
    let calls = r.sim.requests_for(&success.workflow).await;
    assert!(!calls.is_empty());
    for call in &calls {
        let ak = call["credential"].as_str().unwrap_or_default();
        assert!(
            keys.iter().any(|k| k == ak),
            "signed with {ak}, not a key IAM issued to the chart's ServiceAccount"
        );
    }

    // Another namespace the account does not list: refused, with no request for it.
    let other = common::namespace(&r.client, "identity-unlisted").await;
    account_watch(
        &r.client,
        &other,
        "up",
        &success.cluster,
        Some(&success.workflow),
        reference,
    )
    .await;
    // The release serves every namespace (the chart's default): the refusal is the account's.
    wait_watch(&r.client, &other, "up", 60, "AccountNotAllowed", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "AccountNotAllowed")
    })
    .await;
    Api::<cce_upgrade_watch::crd::ClusterCceAccount>::all(r.client.clone())
        .delete(&account, &Default::default())
        .await
        .expect("delete the account");
}

#[tokio::test]
async fn a_thousand_watches_run_inside_the_default_memory_limit_without_a_restart() {
    const WATCHES: u64 = 1000;
    const WORKFLOWS: u64 = 200;
    let workflows = WORKFLOWS.to_string();
    // Enough CCE request budget for 200 workflows polled every 5 s.
    let r = Release::install_with(
        "fleet",
        1,
        &["operator.cceRateLimit=100", "operator.cceRateBurst=200"],
        |sim| sim.args(&["--workflows", &workflows]),
    )
    .await;
    let pod = r.wait_pods_ready(1).await.remove(0);
    let pod_name = pod.metadata.name.clone().expect("pod name");
    let limit = pod.spec.as_ref().expect("spec").containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| q.0.clone())
        .expect("the chart's memory limit");
    assert_eq!(limit, "256Mi", "not the chart's default limit");
    let limit_bytes: u64 = 256 * 1024 * 1024;

    let api =
        Api::<cce_upgrade_watch::crd::UpgradeWorkflowWatch>::namespaced(r.client.clone(), &r.ns);
    // One account for the fleet, as a team would have.
    common::sim_account(&r.client, &r.ns, &r.sim, "cce").await;
    let started = Instant::now();
    for i in 0..WATCHES {
        let ids = copy(Builtin::Success, i % WORKFLOWS);
        let w = common::watch::sim_watch_object(
            &r.ns,
            &format!("w{i:04}"),
            &r.sim,
            &ids.cluster,
            Some(&ids.workflow),
            Some("cce"),
        );
        api.create(&PostParams::default(), &w)
            .await
            .expect("create watch");
    }
    let created = started.elapsed();
    let with_status = |phase: &'static str| {
        let api = api.clone();
        move || {
            let api = api.clone();
            async move {
                let list = api
                    .list(&ListParams::default())
                    .await
                    .expect("list watches");
                let n = list
                    .items
                    .iter()
                    .filter(|w| {
                        w.status
                            .as_ref()
                            .and_then(|s| s.phase.as_deref())
                            .is_some_and(|p| p == phase)
                    })
                    .count() as u64;
                if n == WATCHES {
                    Ok(())
                } else {
                    Err(format!("{n} of {WATCHES} in {phase}"))
                }
            }
        }
    };
    eventually(
        "every watch's first status",
        Duration::from_secs(300),
        Duration::from_secs(2),
        with_status("Init"),
    )
    .await;
    let first = started.elapsed();
    // Every workflow plays its upgrade to the end.
    for i in 0..WORKFLOWS {
        let ids = copy(Builtin::Success, i);
        let left = steps_left(&r.sim, &ids.workflow).await;
        r.sim.step(&ids.workflow, left as u32).await;
    }
    eventually(
        "every watch Success",
        Duration::from_secs(300),
        Duration::from_secs(2),
        with_status("Success"),
    )
    .await;
    let done = started.elapsed();

    let pods = r.wait_pods_ready(1).await;
    assert_eq!(pods[0].metadata.name.as_deref(), Some(pod_name.as_str()));
    let cs = &pods[0]
        .status
        .as_ref()
        .expect("status")
        .container_statuses
        .as_ref()
        .expect("cs")[0];
    assert_eq!(cs.restart_count, 0);
    let peak = peak_memory(cs.container_id.as_deref().expect("container id"));
    eprintln!(
        "{WATCHES} watches over {WORKFLOWS} workflows: created in {:.1}s, all first statuses at \
         {:.1}s, all Success at {:.1}s; the container's peak memory (cgroup) {:.1} MiB of the \
         chart's {limit} limit",
        created.as_secs_f64(),
        first.as_secs_f64(),
        done.as_secs_f64(),
        peak as f64 / (1024.0 * 1024.0)
    );
    assert!(peak < limit_bytes, "peak {peak} bytes reached the limit");
}

/// Deleting an UpgradeWatchSet deletes the watches it generated through their owner
/// reference, by the node's kube-controller-manager (its garbage collector), and nothing
/// else: a person's watch of the same cluster stays. The operator runs beside the plane
/// here (no image needed): the part under test is Kubernetes' own, which the e2e plane
/// lacks.
#[tokio::test]
async fn deleting_a_set_deletes_its_watches_through_the_garbage_collector() {
    use cce_upgrade_watch::crd::{UpgradeWatchSet, UpgradeWorkflowWatch};
    use cce_upgrade_watch::sim::builtin::FLEET;
    use common::set::{apply_set, set_watches};

    let client = common::client().await;
    ready_node(&client).await;
    let ns = common::setup_on(&client, "set-deletion").await;
    let sim = Sim::https().scenario(Builtin::Fleet).frozen().start();
    let account = common::sim_account(&client, &ns, &sim, "cce").await;
    let mine: UpgradeWorkflowWatch = serde_json::from_value(json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": "mine", "namespace": ns},
        "spec": {"clusterID": FLEET[1].cluster_id(0), "accountRef": {"name": account}},
    }))
    .expect("watch");
    let watches = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    watches
        .create(&PostParams::default(), &mine)
        .await
        .expect("a person's watch");
    let _op = common::operator::Operator::start(&ns, &sim, &["--set-list-interval", "1s"]);
    apply_set(
        &client,
        &ns,
        "fleet",
        json!({"accountRef": {"name": account}}),
    )
    .await;
    eventually(
        "the set's five watches",
        Duration::from_secs(60),
        KUBE_POLL,
        || async {
            let n = set_watches(&client, &ns, "fleet").await.len();
            if n == 5 { Ok(()) } else { Err(n) }
        },
    )
    .await;
    Api::<UpgradeWatchSet>::namespaced(client.clone(), &ns)
        .delete("fleet", &Default::default())
        .await
        .expect("delete the set");
    eventually(
        "the set's watches collected",
        Duration::from_secs(60),
        KUBE_POLL,
        || async {
            let left: Vec<String> = set_watches(&client, &ns, "fleet")
                .await
                .iter()
                .filter_map(|w| w.metadata.name.clone())
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;
    let kept = watches.get("mine").await.expect("the person's watch stays");
    assert_eq!(kept.metadata.owner_references, None);
}
