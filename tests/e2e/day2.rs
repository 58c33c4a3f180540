//! Day-2 operation end to end, against the real API server, the simulator and the real
//! binary: Autopilot clusters, serving only some namespaces (under RBAC that allows no
//! more), sharding a fleet between two instances by label, the alerting rules and the
//! dashboard against a real scrape, and the views a person reads during an upgrade.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::operator::Operator;
use common::sim::{Sim, copy};
use common::{cond, kubectl, reasons, text, wait_watch};

/// Creates a watch of a simulator workflow (cluster, workflow) through the account of the
/// Secret `cce`; `spec` and `labels` are merged into the defaults.
async fn watch(
    client: &kube::Client,
    ns: &str,
    name: &str,
    sim: &Sim,
    (cluster, workflow): (&str, &str),
    spec: Value,
    labels: Value,
) -> UpgradeWorkflowWatch {
    let account = common::sim_account(client, ns, sim, "cce").await;
    let mut full = json!({
        "accountRef": {"name": account},
        "clusterID": cluster,
        "upgradeWorkflowID": workflow,
        "pollInterval": "5s",
    });
    for (k, v) in spec.as_object().cloned().unwrap_or_default() {
        full[k] = v;
    }
    let watch: UpgradeWorkflowWatch = serde_json::from_value(json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": full,
    }))
    .expect("watch");
    Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &watch)
        .await
        .expect("create watch")
}

fn synced(w: &UpgradeWorkflowWatch) -> bool {
    cond(w, "Synced").is_some_and(|c| c.0 == "True")
}

fn condition_message(w: &UpgradeWorkflowWatch, type_: &str) -> String {
    w.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

// ------------------------------------------------------------------------ Autopilot

#[tokio::test]
async fn an_autopilot_watch_reaches_ready_through_the_autopilot_api_and_a_standard_one_gets_a_clear_not_found()
 {
    let ap = copy(Builtin::AutopilotSuccess, 0);
    let (client, ns) = common::setup("autopilot").await;
    let sim = Sim::https()
        .scenario(Builtin::AutopilotSuccess)
        .frozen()
        .start();
    let _op = Operator::start(&ns, &sim, &[]);
    watch(
        &client,
        &ns,
        "autopilot",
        &sim,
        (&ap.cluster, &ap.workflow),
        json!({"clusterType": "Autopilot"}),
        json!({}),
    )
    .await;
    // The same ids without clusterType: a Standard watch, asking under /api/v3/.
    watch(
        &client,
        &ns,
        "standard",
        &sim,
        (&ap.cluster, &ap.workflow),
        json!({}),
        json!({}),
    )
    .await;

    let state = sim.workflow(&ap.workflow).await;
    assert_eq!(state["clusterType"], "Autopilot", "{state}");
    common::play_to_end(&client, &ns, "autopilot", &sim, &ap.workflow).await;
    let state = sim.workflow(&ap.workflow).await;
    assert_eq!(state["clusterType"], "Autopilot", "{state}");
    let done = wait_watch(&client, &ns, "autopilot", 30, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    let status = done.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Success"));
    assert_eq!(status.progress.as_deref(), Some("4/4"));
    assert!(
        status.tasks.iter().all(|t| t.duration.is_some()),
        "{status:#?}"
    );
    let got = common::wait_events(&client, &ns, "autopilot", 10, |e| {
        e.last().is_some_and(|(r, _)| r == "UpgradeSucceeded")
    })
    .await;
    assert_eq!(common::count(&got, "WorkflowObserved"), 1, "{got:#?}");
    assert_eq!(common::count(&got, "TaskSucceeded"), 4, "{got:#?}");

    let standard = wait_watch(&client, &ns, "standard", 30, "WorkflowNotFound", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "WorkflowNotFound")
    })
    .await;
    assert_eq!(
        cond(&standard, "Stalled"),
        Some(("True".into(), "WorkflowNotFound".into()))
    );
    assert_eq!(
        cond(&standard, "Ready"),
        Some(("False".into(), "WorkflowNotFound".into()))
    );
    let message = condition_message(&standard, "Synced");
    assert!(
        message.contains("404")
            && message.contains("Standard API (/api/v3/)")
            && message.contains("clusterType: Autopilot"),
        "{message}"
    );
    assert_eq!(
        standard.status.as_ref().and_then(|s| s.phase.clone()),
        None,
        "nothing mirrored from a 404"
    );
    let warnings = common::events(&client, &ns, "standard").await;
    assert_eq!(reasons(&warnings), vec!["SyncFailed"], "{warnings:#?}");

    // What the simulator served: every Autopilot request under /autopilot/v3/ and answered,
    // every Standard one under /api/v3/ and refused.
    let workflow_path = format!(
        "projects/{}/clusters/{}/operation/upgradeworkflows/{}",
        builtin::PROJECT_ID,
        ap.cluster,
        ap.workflow
    );
    let autopilot_path = format!("/autopilot/v3/{workflow_path}");
    let standard_path = format!("/api/v3/{workflow_path}");
    let served = sim.requests_for(&ap.workflow).await;
    let on = |path: &str| -> Vec<&Value> { served.iter().filter(|r| r["path"] == path).collect() };
    let (autopilot, standard) = (on(&autopilot_path), on(&standard_path));
    assert_eq!(
        autopilot.len() + standard.len(),
        served.len(),
        "requests on other paths: {served:#?}"
    );
    assert!(autopilot.len() >= 5, "one per step at least: {served:#?}");
    assert!(autopilot.iter().all(|r| r["status"] == 200), "{served:#?}");
    assert!(!standard.is_empty(), "{served:#?}");
    assert!(standard.iter().all(|r| r["status"] == 404), "{served:#?}");
}

// ------------------------------------------------------------------------ scoping

/// A kubeconfig for the ServiceAccount `name` of `ns` (its token from the TokenRequest
/// API), on the same API server as the admin kubeconfig.
fn service_account_kubeconfig(ns: &str, name: &str, dir: &std::path::Path) -> PathBuf {
    let out = kubectl(&["create", "token", name, "-n", ns, "--duration", "2h"]);
    assert!(out.status.success(), "create token: {}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    let admin_path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&admin_path).expect("read kubeconfig"))
            .expect("parse kubeconfig");
    let cluster = &admin["clusters"][0]["cluster"];
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "plane", "cluster": {
            "server": cluster["server"].as_str().expect("server"),
            "certificate-authority-data": cluster["certificate-authority-data"].as_str().expect("CA"),
        }}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "plane", "user": name, "namespace": ns}}],
        "current-context": name,
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).expect("yaml")).expect("write");
    path
}

/// Grants the ServiceAccount what the operator needs, in namespace `ns` only.
async fn grant_operator_role(client: &kube::Client, ns: &str, sa_ns: &str, sa: &str) {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "cce-upgrade-watch", "namespace": ns},
        "rules": [
            {"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradeworkflowwatches"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradeworkflowwatches/status"],
             "verbs": ["get", "patch", "update"]},
            {"apiGroups": ["cce.upgradewatch.io"], "resources": ["cceaccounts"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["cce.upgradewatch.io"], "resources": ["cceaccounts/status"],
             "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
            {"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradewatchsets"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradewatchsets/status"],
             "verbs": ["patch"]},
            {"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradeworkflowwatches"],
             "verbs": ["create", "patch", "delete"]},
        ]
    }))
    .expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "cce-upgrade-watch", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cce-upgrade-watch"},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}],
    }))
    .expect("binding");
    let pp = PostParams::default();
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&pp, &role)
        .await
        .expect("create role");
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&pp, &binding)
        .await
        .expect("create role binding");
}

#[tokio::test]
async fn the_namespaces_flag_limits_watches_and_secrets_to_those_namespaces_under_rbac_for_only_those()
 {
    let success = copy(Builtin::Success, 0);
    let client = common::client().await;
    common::install_crd(&client).await;
    let mut spaces = Vec::new();
    for which in ["scope-a", "scope-b", "scope-c"] {
        let ns = common::namespace(&client, which).await;
        common::builtin_secret(&client, &ns).await;
        spaces.push(ns);
    }
    let (a, b, c) = (&spaces[0], &spaces[1], &spaces[2]);

    // The operator's identity may read watches and Secrets in a and b, and nowhere else.
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "scoped-operator", "namespace": a}}))
            .expect("sa");
    Api::<ServiceAccount>::namespaced(client.clone(), a)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create service account");
    for ns in [a, b] {
        grant_operator_role(&client, ns, a, "scoped-operator").await;
    }
    let who = format!("system:serviceaccount:{a}:scoped-operator");
    for (ns, expected) in [(a, "yes"), (b, "yes"), (c, "no")] {
        let out = kubectl(&["auth", "can-i", "list", "secrets", "-n", ns, "--as", &who]);
        assert_eq!(text(&out.stdout).trim(), expected, "can-i in {ns}");
    }
    let out = kubectl(&["auth", "can-i", "list", "secrets", "-A", "--as", &who]);
    assert_eq!(text(&out.stdout).trim(), "no", "can-i cluster-wide");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = service_account_kubeconfig(a, "scoped-operator", dir.path());
    // The same identity serving every namespace is refused at once: the RBAC really is
    // limited to a and b, and a refusal shows in the log.
    let cluster_wide = Command::new(common::operator::binary())
        .args([
            "run",
            "--leader-elect=false",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("run the operator cluster-wide");
    assert!(!cluster_wide.status.success(), "it ran cluster-wide");
    assert!(
        text(&cluster_wide.stderr).contains("forbidden"),
        "{}",
        text(&cluster_wide.stderr)
    );

    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    // No right beyond a and b: no ClusterCCEAccount, no namespace labels to read.
    let op = Operator::start_with_env(
        &format!("{a},{b}"),
        &sim,
        &["--cluster-accounts=false"],
        &[("KUBECONFIG", kubeconfig.to_str().expect("utf-8"))],
    );
    for ns in [a, b, c] {
        watch(
            &client,
            ns,
            "up",
            &sim,
            (&success.cluster, &success.workflow),
            json!({}),
            json!({}),
        )
        .await;
    }
    for ns in [a, b] {
        let w = wait_watch(
            &client,
            ns,
            "up",
            30,
            "synced in a served namespace",
            synced,
        )
        .await;
        assert_eq!(
            w.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Init")
        );
        let got = common::wait_events(&client, ns, "up", 10, |e| !e.is_empty()).await;
        assert_eq!(reasons(&got), vec!["WorkflowObserved"], "{got:#?}");
    }
    let ready = reqwest::get(format!("{}/readyz", op.admin_url()))
        .await
        .expect("readyz");
    assert!(
        ready.status().is_success(),
        "caches synced under namespace RBAC"
    );

    // Two more poll periods: the watch in c is never touched.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let untouched = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), c)
        .get("up")
        .await
        .expect("get");
    assert!(untouched.status.is_none(), "{:#?}", untouched.status);
    assert!(common::events(&client, c, "up").await.is_empty());
    // It never asked for anything outside a and b: RBAC would have refused it.
    // (Kubernetes says `... is forbidden: User ... cannot list ...` on every refusal.)
    let log = op.log_text();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{log}"
    );
    assert!(!log.contains(c.as_str()), "the log mentions {c}:\n{log}");
}

// ------------------------------------------------------------------------ sharding

#[tokio::test]
async fn two_shards_with_their_own_leases_serve_each_watch_exactly_once() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("shards").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let shard = |name: &str| {
        let identity = format!("operator-shard-{name}");
        let lease = format!("shard-{name}");
        let selector = format!("shard={name}");
        Operator::start(
            &ns,
            &sim,
            &[
                "--leader-elect=true",
                "--lease-name",
                &lease,
                "--lease-namespace",
                &ns,
                "--lease-identity",
                &identity,
                "--label-selector",
                &selector,
            ],
        )
    };
    let (op_a, op_b) = (shard("a"), shard("b"));
    let names_a = ["alpha-0", "alpha-1", "alpha-2"];
    let names_b = ["bravo-0", "bravo-1", "bravo-2"];
    for (names, label) in [(names_a, "a"), (names_b, "b")] {
        for name in names {
            watch(
                &client,
                &ns,
                name,
                &sim,
                (&success.cluster, &success.workflow),
                json!({}),
                json!({"shard": label}),
            )
            .await;
        }
    }
    watch(
        &client,
        &ns,
        "unsharded",
        &sim,
        (&success.cluster, &success.workflow),
        json!({}),
        json!({}),
    )
    .await;
    for name in names_a.iter().chain(&names_b) {
        wait_watch(&client, &ns, name, 60, "synced", synced).await;
    }

    // Each lease is held by its own instance: both lead, each over its own shard.
    let leases = Api::<Lease>::namespaced(client.clone(), &ns);
    for (lease, holder) in [
        ("shard-a", "operator-shard-a"),
        ("shard-b", "operator-shard-b"),
    ] {
        let l = leases.get(lease).await.expect("lease");
        assert_eq!(
            l.spec.and_then(|s| s.holder_identity).as_deref(),
            Some(holder)
        );
    }

    // Move one workflow step: every watch reports the task that started.
    sim.step(&success.workflow, 1).await;
    for name in names_a.iter().chain(&names_b) {
        common::wait_converged(&client, &ns, name, &sim, &success.workflow, 30).await;
        common::wait_events(&client, &ns, name, 10, |e| {
            common::count(e, "TaskStarted") == 1
        })
        .await;
    }
    // Let a few more polls pass, then look at who did what.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for (names, instance) in [(names_a, "operator-shard-a"), (names_b, "operator-shard-b")] {
        for name in names {
            let events = common::raw_events(&client, &ns, name).await;
            let reporters: BTreeSet<String> = events
                .iter()
                .map(|e| e.reporting_instance.clone().unwrap_or_default())
                .collect();
            assert_eq!(
                reporters,
                BTreeSet::from([instance.to_string()]),
                "{name}: {events:#?}"
            );
            let r: Vec<String> = events
                .iter()
                .map(|e| e.reason.clone().unwrap_or_default())
                .collect();
            assert_eq!(
                r,
                ["WorkflowObserved", "TaskStarted", "PhaseChanged"],
                "{name}: one event per transition, so one instance"
            );
        }
    }
    let unsharded = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns)
        .get("unsharded")
        .await
        .expect("get");
    assert!(unsharded.status.is_none(), "{:#?}", unsharded.status);
    assert!(
        common::raw_events(&client, &ns, "unsharded")
            .await
            .is_empty()
    );

    // Each log names only its own shard's watches; each instance counts only its own.
    for (op, mine, theirs) in [(&op_a, names_a, names_b), (&op_b, names_b, names_a)] {
        let log = op.log_text();
        for name in mine {
            assert!(log.contains(&format!("watch={name} ")), "{name} missing");
        }
        for name in theirs.iter().chain(&["unsharded"]) {
            assert!(!log.contains(&format!("watch={name} ")), "{name} served");
        }
        let metrics = scrape(op).await;
        let watches: f64 = metrics
            .samples
            .iter()
            .filter(|s| s.name == "cce_upgrade_watch_watches")
            .map(|s| s.value)
            .sum();
        assert_eq!(watches, 3.0, "watches counted by one instance");
        assert_eq!(metrics.value("cce_upgrade_watch_leader"), Some(1.0));
        let ready = reqwest::get(format!("{}/readyz", op.admin_url()))
            .await
            .expect("readyz");
        assert!(ready.status().is_success(), "/readyz: {}", ready.status());
    }
}

// ------------------------------------------------------------------------ monitoring

/// One sample of a scrape.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape of the operator's /metrics.
#[derive(Debug)]
struct Scrape {
    text: String,
    /// Family name -> type, from the `# TYPE` lines (printed for every registered family,
    /// with or without samples).
    families: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut families = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                families.insert(name.to_string(), kind.trim().to_string());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap_or(f64::NAN),
            });
        }
        Scrape {
            text,
            families,
            samples,
        }
    }

    /// Sample names the families declare: counters end in `_total`, histograms give
    /// `_bucket`, `_sum` and `_count`.
    fn exported_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (family, kind) in &self.families {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{family}{suffix}"));
            }
        }
        names
    }

    fn value(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
    }
}

/// `a="x",b="y"` (the operator's label values hold no quotes or commas).
fn parse_labels(raw: &str) -> BTreeMap<String, String> {
    raw.split("\",")
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("label pair");
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

async fn scrape(op: &Operator) -> Scrape {
    let res = reqwest::get(format!("{}/metrics", op.admin_url()))
        .await
        .expect("scrape /metrics");
    assert!(res.status().is_success(), "/metrics: {}", res.status());
    Scrape::parse(res.text().await.expect("metrics text"))
}

/// The checker `hack/promql-check.sh` builds (Prometheus's rule loader, PromQL parser, rule
/// manager and engine).
pub(crate) fn promql_check() -> PathBuf {
    let script = common::repo_path("hack/promql-check.sh");
    let out = Command::new(&script)
        .arg("path")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bin = PathBuf::from(text(&out.stdout).trim());
    assert!(
        bin.is_file(),
        "the PromQL checker is not built at {}: run hack/promql-check.sh (`make test` does; \
         it builds github.com/prometheus/prometheus's parser from the Go module proxy)",
        bin.display()
    );
    bin
}

#[derive(Debug, serde::Deserialize)]
struct Report {
    expressions: Vec<Checked>,
}

#[derive(Debug, serde::Deserialize)]
struct Checked {
    #[serde(rename = "where")]
    place: String,
    metrics: Vec<String>,
    selectors: Vec<Selector>,
}

#[derive(Debug, serde::Deserialize)]
struct Selector {
    metric: String,
    labels: Vec<String>,
}

fn check(bin: &std::path::Path, mode: &str, file: &std::path::Path) -> Report {
    let out = Command::new(bin)
        .arg(mode)
        .arg(file)
        .output()
        .expect("run promql-check");
    assert!(
        out.status.success(),
        "{} does not load: {}",
        file.display(),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("checker report")
}

/// What the checker's `test` mode reports when every check passed.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RuleTests {
    pub tests: Vec<RuleTest>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RuleTest {
    pub alert_checks: usize,
    pub expr_checks: usize,
}

/// Runs the rule tests of `tests` (promtool's format) with the checker, against `rules`, or
/// against the file's own rule_files when `rules` is `None`: Prometheus's rule manager
/// evaluates them over the tests' series.
pub(crate) fn rule_tests(
    bin: &std::path::Path,
    tests: &std::path::Path,
    rules: Option<&std::path::Path>,
) -> Result<RuleTests, String> {
    let out = Command::new(bin)
        .arg("test")
        .arg(tests)
        .args(rules)
        .output()
        .expect("run promql-check test");
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout).expect("checker report"))
}

/// The alert names the runbook documents and the rule file must define.
const ALERTS: &[&str] = &[
    "CceUpgradeTaskFailed",
    "CceUpgradeWorkflowPending",
    "CceUpgradeTaskOverrunning",
    "CceUpgradeWatchNotSyncing",
    "CceApiRequestsFailing",
    "CceUpgradeWatchNoLeader",
    "CceUpgradeWatchKubernetesErrors",
];

#[tokio::test]
async fn the_alert_rules_and_dashboard_parse_as_promql_and_use_only_metrics_the_operator_exports() {
    let retry = copy(Builtin::ClusterFailsThenRetry, 0);
    let running = copy(Builtin::Success, 0);
    let bin = promql_check();
    let rules_file = common::repo_path("charts/cce-upgrade-watch/files/prometheus-rules.yaml");
    let dashboard_file = common::repo_path("charts/cce-upgrade-watch/files/grafana-dashboard.json");

    // The checker really parses: a broken expression and a broken template are refused.
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in [
        (
            "expr",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n",
        ),
        (
            "template",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations: {d: '{{ $labels.x'}\n",
        ),
    ] {
        let bad = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&bad, body).expect("write");
        let out = Command::new(&bin)
            .arg("rules")
            .arg(&bad)
            .output()
            .expect("run");
        assert!(!out.status.success(), "a broken {name} was accepted");
    }

    let rules = check(&bin, "rules", &rules_file);
    let dashboard = check(&bin, "dashboard", &dashboard_file);

    // The rule file's shape: the agreed alerts, each with severity, text and a runbook in
    // docs/operations.md under its own name.
    let runbook = std::fs::read_to_string(common::repo_path("docs/operations.md"))
        .expect("docs/operations.md");
    let file: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&rules_file).expect("read")).expect("yaml");
    let mut alerts = Vec::new();
    for group in file["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let alert = rule["alert"].as_str().expect("only alerting rules");
            alerts.push(alert.to_string());
            assert!(
                matches!(
                    rule["labels"]["severity"].as_str(),
                    Some("warning" | "critical")
                ),
                "{alert}: severity"
            );
            for key in ["summary", "description"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{alert}: {key}"
                );
            }
            // The chart adds runbook_url, where it knows the page's address.
            assert!(
                rule["annotations"]["runbook_url"].is_null(),
                "{alert}: runbook_url belongs to the chart"
            );
            assert!(
                runbook.lines().any(|l| l.trim() == format!("### {alert}")),
                "docs/operations.md has no `### {alert}` runbook"
            );
        }
    }
    assert_eq!(alerts, ALERTS);

    // The dashboard's shape: a datasource variable every panel uses, and the four topics.
    let board: Value =
        serde_json::from_str(&std::fs::read_to_string(&dashboard_file).expect("read dashboard"))
            .expect("the dashboard is JSON");
    assert_eq!(board["uid"], "cce-upgrade-watch");
    for panel in board["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "{title}"
            );
        }
    }
    let on_board: BTreeSet<&str> = dashboard
        .expressions
        .iter()
        .flat_map(|e| e.metrics.iter().map(String::as_str))
        .collect();
    for topic in [
        "cce_upgrade_watch_watches",
        "cce_upgrade_watch_upgrades",
        "cce_upgrade_watch_watch_info",
        "cce_upgrade_watch_task_started_timestamp_seconds",
        "cce_upgrade_watch_task_duration_seconds_bucket",
        "cce_upgrade_watch_cce_requests_total",
        "cce_upgrade_watch_cce_request_duration_seconds_bucket",
        "cce_upgrade_watch_last_sync_age_seconds",
    ] {
        assert!(on_board.contains(topic), "no panel shows {topic}");
    }

    // A real run that uses every metric the rules read: a task fails, CCE fails once, and
    // another upgrade has a task running.
    let (client, ns) = common::setup("monitoring").await;
    let sim = Sim::https()
        .scenario(Builtin::ClusterFailsThenRetry)
        .scenario(Builtin::Success)
        .frozen()
        .start();
    let op = Operator::start(&ns, &sim, &[]);
    watch(
        &client,
        &ns,
        "retry",
        &sim,
        (&retry.cluster, &retry.workflow),
        json!({}),
        json!({}),
    )
    .await;
    common::wait_converged(&client, &ns, "retry", &sim, &retry.workflow, 30).await;
    for _ in 0..6 {
        sim.step(&retry.workflow, 1).await;
        common::wait_converged(&client, &ns, "retry", &sim, &retry.workflow, 30).await;
    }
    common::wait_events(&client, &ns, "retry", 10, |e| {
        common::count(e, "TaskFailed") == 1
    })
    .await;
    sim.post(
        "/_sim/faults",
        json!({"kind": "error", "status": 500, "count": 1}),
    )
    .await;
    wait_watch(&client, &ns, "retry", 30, "Synced=False", |w| !synced(w)).await;
    wait_watch(&client, &ns, "retry", 30, "Synced again", synced).await;
    // Three steps into the success timeline: PreCheck succeeded, Snapshot runs.
    watch(
        &client,
        &ns,
        "running",
        &sim,
        (&running.cluster, &running.workflow),
        json!({}),
        json!({}),
    )
    .await;
    sim.step(&running.workflow, 3).await;
    let running_watch = wait_watch(&client, &ns, "running", 30, "Snapshot running", |w| {
        w.status.as_ref().is_some_and(|s| {
            s.tasks.iter().any(|t| {
                t.task_type == "Snapshot"
                    && t.phase.as_deref() == Some("Running")
                    && t.start_time.is_some()
            })
        })
    })
    .await;
    let scraped = scrape(&op).await;

    let exported = scraped.exported_names();
    for (what, report) in [("rules", &rules), ("dashboard", &dashboard)] {
        for e in &report.expressions {
            for metric in &e.metrics {
                assert!(
                    exported.contains(metric),
                    "{what}: {} reads {metric}, which the operator does not export; it exports {exported:#?}",
                    e.place
                );
            }
        }
    }
    // Every series the rules read exists after this run, with the labels they match on.
    for e in &rules.expressions {
        for selector in &e.selectors {
            let series: Vec<&Sample> = scraped
                .samples
                .iter()
                .filter(|s| s.name == selector.metric)
                .collect();
            assert!(
                !series.is_empty(),
                "{}: no {} series in the scrape:\n{}",
                e.place,
                selector.metric,
                scraped.text
            );
            for label in &selector.labels {
                assert!(
                    series.iter().any(|s| s.labels.contains_key(label)),
                    "{}: {} has no label {label}",
                    e.place,
                    selector.metric
                );
            }
        }
    }
    let failed = scraped.samples.iter().find(|s| {
        s.name == "cce_upgrade_watch_task_duration_seconds_count"
            && s.labels.get("result").map(String::as_str) == Some("Failed")
            && s.labels.get("task_type").map(String::as_str) == Some("Cluster")
    });
    assert_eq!(failed.map(|s| s.value), Some(1.0), "{}", scraped.text);
    // The alerts' per-watch series name the watch and its cluster.
    let of_watch = |name: &str| {
        scraped
            .samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.get("namespace") == Some(&ns)
                    && s.labels.get("name").map(String::as_str) == Some("retry")
            })
            .unwrap_or_else(|| panic!("no {name} for the watch:\n{}", scraped.text))
    };
    let failures = of_watch("cce_upgrade_watch_watch_task_failures_total");
    assert_eq!(failures.value, 1.0, "{}", scraped.text);
    assert_eq!(failures.labels.get("cluster_id"), Some(&retry.cluster));
    let phase = of_watch("cce_upgrade_watch_watch_phase");
    assert_eq!(
        phase.labels.get("phase").map(String::as_str),
        Some("Pending")
    );
    assert_eq!(phase.labels.get("cluster_id"), Some(&retry.cluster));
    assert!(
        scraped.samples.iter().any(|s| {
            s.name == "cce_upgrade_watch_cce_requests_total"
                && s.labels.get("outcome").map(String::as_str) == Some("CceUnavailable")
        }),
        "{}",
        scraped.text
    );
    assert_eq!(
        scraped
            .samples
            .iter()
            .find(|s| s.name == "cce_upgrade_watch_watches"
                && s.labels.get("phase").map(String::as_str) == Some("Pending"))
            .map(|s| s.value),
        Some(1.0)
    );

    // The fleet's view: both upgrades go from v1.28.15-r10 to v1.29.13-r0, one Pending, one
    // Running; each watch's info names its cluster and versions, as its status does.
    let upgrades: BTreeMap<String, f64> = scraped
        .samples
        .iter()
        .filter(|s| s.name == "cce_upgrade_watch_upgrades")
        .map(|s| {
            let l = &s.labels;
            (
                format!("{} {} {}", l["from"], l["target"], l["phase"]),
                s.value,
            )
        })
        .collect();
    assert_eq!(
        upgrades,
        BTreeMap::from([
            ("v1.28 v1.29 Pending".to_string(), 1.0),
            ("v1.28 v1.29 Running".to_string(), 1.0),
        ]),
        "{}",
        scraped.text
    );
    let status = running_watch.status.as_ref().expect("status");
    let info = scraped
        .samples
        .iter()
        .find(|s| {
            s.name == "cce_upgrade_watch_watch_info"
                && s.labels.get("name").map(String::as_str) == Some("running")
        })
        .unwrap_or_else(|| panic!("no watch_info for the running watch:\n{}", scraped.text));
    let cluster_name = status.cluster_name.clone().expect("clusterName");
    assert!(!cluster_name.is_empty());
    for (label, value) in [
        ("namespace", ns.as_str()),
        ("cluster_id", running.cluster.as_str()),
        ("cluster_name", cluster_name.as_str()),
        ("from", "v1.28"),
        ("target", "v1.29"),
        ("from_version", "v1.28.15-r10"),
        ("target_version", "v1.29.13-r0"),
    ] {
        assert_eq!(
            info.labels.get(label).map(String::as_str),
            Some(value),
            "{label}: {info:?}"
        );
    }
    // The running task's start is the status's, to the second.
    let snapshot = status
        .tasks
        .iter()
        .find(|t| t.task_type == "Snapshot")
        .expect("Snapshot task");
    let started = snapshot
        .start_time
        .as_ref()
        .expect("startTime")
        .0
        .as_second() as f64;
    let series: Vec<&Sample> = scraped
        .samples
        .iter()
        .filter(|s| s.name == "cce_upgrade_watch_task_started_timestamp_seconds")
        .collect();
    assert_eq!(series.len(), 1, "only the running task: {}", scraped.text);
    assert_eq!(
        series[0].labels.get("name").map(String::as_str),
        Some("running")
    );
    assert_eq!(
        series[0].labels.get("task_type").map(String::as_str),
        Some("Snapshot")
    );
    assert_eq!(series[0].value, started, "{}", scraped.text);
}

/// The query of the dashboard panel titled `title` (its first), with `$namespace` matching
/// every namespace, as YAML's double-quoted string.
fn panel_query(board: &Value, title: &str) -> String {
    let panel = board["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title}"));
    let expr = panel["targets"][0]["expr"].as_str().expect("expr");
    serde_json::to_string(&expr.replace("$namespace", ".*")).expect("quoted")
}

#[test]
fn the_dashboards_cluster_and_version_tables_show_each_watch_and_each_version_pair() {
    let bin = promql_check();
    let board: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path(
            "charts/cce-upgrade-watch/files/grafana-dashboard.json",
        ))
        .expect("read dashboard"),
    )
    .expect("dashboard JSON");
    let by_cluster = panel_query(&board, "Upgrades by cluster");
    let by_version = panel_query(&board, "Upgrades by version");
    // Two watches as the operator exports them: one upgrading with its Cluster task running
    // for 10 minutes, one with no workflow yet; each a row, the second with no task (NaN,
    // which the panel shows as -). Two version pairs, one in two phases.
    let tests = format!(
        r#"evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'cce_upgrade_watch_watch_info{{namespace="a",name="prod",cluster_id="c-1",cluster_name="prod-cce",from="v1.28",target="v1.29",from_version="v1.28.15-r10",target_version="v1.29.13-r0",job="op"}}'
        values: '1+0x10'
      - series: 'cce_upgrade_watch_watch_info{{namespace="b",name="idle",cluster_id="c-2",cluster_name="idle-cce",from="other",target="other",from_version="",target_version="",job="op"}}'
        values: '1+0x10'
      - series: 'cce_upgrade_watch_watch_phase{{namespace="a",name="prod",cluster_id="c-1",phase="Running",job="op"}}'
        values: '1+0x10'
      - series: 'cce_upgrade_watch_watch_phase{{namespace="b",name="idle",cluster_id="c-2",phase="None",job="op"}}'
        values: '1+0x10'
      - series: 'cce_upgrade_watch_task_started_timestamp_seconds{{namespace="a",name="prod",task_type="Cluster",job="op"}}'
        values: '0+0x10'
      - series: 'cce_upgrade_watch_upgrades{{from="v1.28",target="v1.29",phase="Running",job="op"}}'
        values: '3+0x10'
      - series: 'cce_upgrade_watch_upgrades{{from="v1.28",target="v1.29",phase="Success",job="op"}}'
        values: '5+0x10'
      - series: 'cce_upgrade_watch_upgrades{{from="v1.29",target="v1.30",phase="Pending",job="op"}}'
        values: '1+0x10'
    promql_expr_test:
      - expr: {by_cluster}
        eval_time: 10m
        exp_samples:
          - labels: '{{cluster_name="prod-cce",cluster_id="c-1",namespace="a",name="prod",phase="Running",from_version="v1.28.15-r10",target_version="v1.29.13-r0",task_type="Cluster",upgrade="v1.28.15-r10 → v1.29.13-r0"}}'
            value: 600
          - labels: '{{cluster_name="idle-cce",cluster_id="c-2",namespace="b",name="idle",phase="None",upgrade=" → "}}'
            value: .nan
      - expr: {by_version}
        eval_time: 10m
        exp_samples:
          - labels: '{{from="v1.28",target="v1.29",phase="Running",upgrade="v1.28 → v1.29"}}'
            value: 3
          - labels: '{{from="v1.28",target="v1.29",phase="Success",upgrade="v1.28 → v1.29"}}'
            value: 5
          - labels: '{{from="v1.29",target="v1.30",phase="Pending",upgrade="v1.29 → v1.30"}}'
            value: 1
"#
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard.yaml");
    std::fs::write(&file, &tests).expect("write");
    let rules = common::repo_path("charts/cce-upgrade-watch/files/prometheus-rules.yaml");
    let report = rule_tests(&bin, &file, Some(&rules)).unwrap_or_else(|e| panic!("{e}\n{tests}"));
    assert_eq!(report.tests[0].expr_checks, 2, "{report:?}");
}

#[test]
fn the_task_overrun_alert_fires_past_its_threshold_and_not_below_on_prometheus_own_engine() {
    let bin = promql_check();
    let tests = common::repo_path("hack/promql-check/tests/overrun.yaml");
    // Every alert_rule_test of the file ran and passed.
    let file: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&tests).expect("read")).expect("yaml");
    let expected: usize = file["tests"]
        .as_sequence()
        .expect("tests")
        .iter()
        .map(|t| t["alert_rule_test"].as_sequence().map_or(0, Vec::len))
        .sum();
    assert!(expected >= 4, "{expected}");
    let report = rule_tests(&bin, &tests, None).unwrap_or_else(|e| panic!("{e}"));
    let ran: usize = report.tests.iter().map(|t| t.alert_checks).sum();
    assert_eq!(ran, expected, "{report:?}");

    // The checker really compares: the Cluster task said to fire a minute early, before
    // its `for` is over, is a failure that names the alert and the time.
    let text = std::fs::read_to_string(&tests).expect("read");
    let early = text.replace("      - eval_time: 1h42m\n", "      - eval_time: 1h41m\n");
    assert_ne!(early, text);
    let dir = tempfile::tempdir().expect("tempdir");
    let moved = dir.path().join("overrun.yaml");
    std::fs::write(&moved, early).expect("write");
    let rules = common::repo_path("charts/cce-upgrade-watch/files/prometheus-rules.yaml");
    let err = rule_tests(&bin, &moved, Some(&rules)).expect_err("a wrong expectation passed");
    assert!(
        err.contains("alert CceUpgradeTaskOverrunning at 1h41m"),
        "{err}"
    );
}

// ------------------------------------------------------------------------ what people read

/// Cells of a kubectl table row by column header (columns are at least 3 spaces apart).
fn columns(table: &str) -> BTreeMap<String, String> {
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    let row = lines.next().expect("row");
    let starts: Vec<usize> = header
        .match_indices(|c: char| c != ' ')
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || header[..i].ends_with("   "))
        .collect();
    let mut out = BTreeMap::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied();
        let cell = |line: &str| {
            let s = line.get(start..).unwrap_or("");
            match end {
                Some(e) => s.get(..e - start).unwrap_or(s),
                None => s,
            }
            .trim()
            .to_string()
        };
        out.insert(cell(header), cell(row));
    }
    out
}

/// Seconds in a kubectl age such as `45s`, `2m3s` or `5m`.
fn age_secs(age: &str) -> Option<u64> {
    let (mut total, mut n) = (0, String::new());
    for c in age.chars() {
        match c {
            '0'..='9' => n.push(c),
            's' | 'm' | 'h' => {
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    _ => 3600,
                };
                total += n.parse::<u64>().ok()? * unit;
                n.clear();
            }
            _ => return None,
        }
    }
    n.is_empty().then_some(total)
}

#[tokio::test]
async fn get_and_kubectl_show_each_task_duration_the_running_task_and_the_last_change() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("views").await;
    // Real time, 150 s into the success timeline: PreCheck ran 15-60 s, Snapshot 75-105 s,
    // Cluster started at 120 s and runs until 240 s.
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--speed", "1"])
        .start();
    sim.post(
        &format!("/_sim/workflows/{}/advance", success.workflow),
        json!({"seconds": 150}),
    )
    .await;
    let _op = Operator::start(&ns, &sim, &[]);
    watch(
        &client,
        &ns,
        "prod-upgrade",
        &sim,
        (&success.cluster, &success.workflow),
        json!({}),
        json!({}),
    )
    .await;
    // The current task shows the Cluster task's progress, as CCE's upgrade task reports it.
    let cluster_with_progress = |current: &str| {
        current
            .strip_prefix("Cluster ")
            .and_then(|p| p.strip_suffix('%'))
            .is_some_and(|p| p.parse::<u8>().is_ok())
    };
    let w = wait_watch(&client, &ns, "prod-upgrade", 30, "Cluster running", |w| {
        w.status
            .as_ref()
            .and_then(|s| s.current_task.as_deref())
            .is_some_and(cluster_with_progress)
    })
    .await;
    let status = w.status.as_ref().expect("status");
    let durations: Vec<Option<&str>> = status.tasks.iter().map(|t| t.duration.as_deref()).collect();
    assert_eq!(durations, [Some("45s"), Some("30s"), None, None]);
    assert_eq!(
        status.task_durations.as_deref(),
        Some("PreCheck 45s, Snapshot 30s")
    );
    assert!(status.last_change_time.is_some(), "{status:#?}");

    let out = kubectl(&["get", "uww", "-n", &ns, "-o", "wide"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wide = text(&out.stdout);
    println!("$ kubectl get uww -o wide\n{wide}");
    let row = columns(&wide);
    assert_eq!(row["PHASE"], "Running", "{wide}");
    assert!(cluster_with_progress(&row["CURRENT TASK"]), "{wide}");
    assert_eq!(row["DURATIONS"], "PreCheck 45s, Snapshot 30s", "{wide}");
    let running = age_secs(&row["RUNNING FOR"]).unwrap_or_else(|| panic!("{wide}"));
    assert!((30..120).contains(&running), "{wide}");
    let changed = age_secs(&row["LAST CHANGE"]).unwrap_or_else(|| panic!("{wide}"));
    assert!(changed < 60, "{wide}");

    let out = Command::new(common::operator::binary())
        .args([
            "get",
            "--endpoint",
            &sim.url,
            "--project-id",
            builtin::PROJECT_ID,
        ])
        .args([
            "--cluster-id",
            &success.cluster,
            "--workflow-id",
            &success.workflow,
        ])
        .args(["--allowed-cce-endpoint", "127.0.0.1:*", "-o", "table"])
        .arg("--ca-bundle")
        .arg(sim.ca_bundle())
        .env("CLOUD_SDK_AK", builtin::ACCESS_KEY)
        .env("CLOUD_SDK_SK", builtin::SECRET_KEY)
        .output()
        .expect("run get");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    println!("$ cce-upgrade-watch get -o table\n{table}");
    let squeezed: Vec<String> = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let line = |prefix: &str| {
        squeezed
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in\n{table}"))
            .clone()
    };
    assert!(
        line("Current task").starts_with("Current task Cluster, running for "),
        "{table}"
    );
    assert!(line("Last change").ends_with(" ago)"), "{table}");
    assert!(line("PreCheck Success").contains(" 45s "), "{table}");
    assert!(line("Snapshot Success").contains(" 30s "), "{table}");
    assert!(line("Cluster Running").contains(" so far "), "{table}");
    assert!(line("Cluster task").ends_with("% done"), "{table}");
    assert!(
        line("PostCheck").starts_with("PostCheck - - - - -"),
        "{table}"
    );
}
