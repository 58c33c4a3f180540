//! The Helm chart end to end against the real local control plane: `helm lint`, renders
//! checked by a server-side dry run, a real `helm install`, and the operator running with
//! exactly the environment of the installed Deployment, authenticated as the chart's
//! ServiceAccount, through a simulated upgrade — which proves the chart's RBAC is enough —
//! while `kubectl auth can-i` proves it is not more. The people around it act with their
//! own permissions too (`--as`): a namespace's owner granting the operator one
//! ServiceAccount's token, users holding the built-in edit and view roles. There is no
//! kubelet: pods never run, so the operator runs as a child process of the test instead of
//! in its pod.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::sim::builtin::Builtin;
use common::commands::{LoopbackRegistry, hack, helm, ok};
use common::iam::{AUDIENCE, PlaneIam, rule_for, service_account};
use common::operator::Operator;
use common::sim::{Sim, copy};
use common::watch::{account_cond, wait_account};
use common::{cond, kubectl, kubectl_stdin, repo_path, text, wait_watch};

const CHART: &str = "charts/cce-upgrade-watch";

// ------------------------------------------------------------------ helpers

fn chart() -> String {
    repo_path(CHART).display().to_string()
}

fn non_default_values() -> String {
    repo_path("tests/fixtures/chart/non-default-values.yaml")
        .display()
        .to_string()
}

/// `helm template RELEASE CHART -n NS ARGS...`
fn render(release: &str, ns: &str, args: &[&str]) -> String {
    let chart = chart();
    let mut all = vec!["template", release, chart.as_str(), "--namespace", ns];
    all.extend_from_slice(args);
    ok(helm(&all), "helm template")
}

/// The objects of a multi-document YAML stream.
fn objects(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("parse rendered YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn summary(objs: &[Value]) -> Vec<String> {
    objs.iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str, ns: Option<&str>, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"].as_str() == ns
        })
        .unwrap_or_else(|| panic!("no {kind} {ns:?}/{name} in {:#?}", summary(objs)))
}

fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

/// The operator container's env as name -> value (valueFrom entries as their JSON).
fn env_of(deployment: &Value) -> BTreeMap<String, Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("env name").to_string();
            let value = e
                .get("value")
                .cloned()
                .unwrap_or_else(|| e["valueFrom"].clone());
            (name, value)
        })
        .collect()
}

/// Applies `yaml` with a server-side dry run and strict field validation: the API server
/// checks every object against its schema, admission and RBAC escalation rules, and
/// stores nothing.
fn server_dry_run(yaml: &str) -> String {
    let out = kubectl_stdin(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        yaml,
    );
    let stdout = ok(out.clone(), "kubectl apply --dry-run=server");
    assert!(
        !text(&out.stderr).contains("Warning"),
        "the dry run warned:\n{}",
        text(&out.stderr)
    );
    stdout
}

/// `objs` as one YAML stream (kubectl 1.29 reads no JSON documents between `---`).
fn yaml_stream<'a>(objs: impl Iterator<Item = &'a Value>) -> String {
    objs.map(|o| serde_yaml::to_string(o).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Server-side applies `yaml` with a dry run and strict field validation, for objects the
/// shared plane has already (the CRDs, applied by the test kit): a client-side apply would
/// warn about their missing last-applied annotation. Nothing is stored.
fn server_side_dry_run(yaml: &str) -> String {
    let out = kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager=chart-tests",
            "-f",
            "-",
        ],
        yaml,
    );
    let stdout = ok(out.clone(), "kubectl apply --server-side --dry-run=server");
    assert!(
        !text(&out.stderr).contains("Warning"),
        "the dry run warned:\n{}",
        text(&out.stderr)
    );
    stdout
}

/// Installs the stand-in ServiceMonitor CRD (the plane has no Prometheus Operator).
fn install_servicemonitor_crd() {
    let path = repo_path("tests/fixtures/chart/servicemonitor-crd.yaml");
    ok(
        kubectl(&["apply", "--server-side", "-f", &path.display().to_string()]),
        "apply ServiceMonitor CRD",
    );
    ok(
        kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/servicemonitors.monitoring.coreos.com",
            "--timeout=30s",
        ]),
        "ServiceMonitor CRD Established",
    );
}

async fn setup(test: &str) -> (Client, String) {
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, test).await;
    (client, ns)
}

fn fullname(release: &str) -> String {
    format!("{release}-cce-upgrade-watch")
}

/// The rules for serving watches in a scope (the ClusterRole's, or each watched namespace's
/// Role): exactly the operator's calls there.
fn watch_rules() -> Vec<Value> {
    let group = "cce.upgradewatch.io";
    vec![
        json!({"apiGroups": [group], "resources": ["upgradeworkflowwatches"], "verbs": ["list", "watch"]}),
        json!({"apiGroups": [group], "resources": ["upgradeworkflowwatches/status"], "verbs": ["patch"]}),
        json!({"apiGroups": [group], "resources": ["cceaccounts"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": [group], "resources": ["cceaccounts/status"], "verbs": ["patch"]}),
        json!({"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}),
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}),
    ]
}

/// The operator's cluster-wide rules in either mode: ClusterCCEAccounts and the namespace
/// labels their conditions select.
fn cluster_rules() -> Vec<Value> {
    let group = "cce.upgradewatch.io";
    vec![
        json!({"apiGroups": [group], "resources": ["clustercceaccounts"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": [group], "resources": ["clustercceaccounts/status"], "verbs": ["patch"]}),
        json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}),
    ]
}

/// What serving UpgradeWatchSets adds (`watchSets.enabled`): the sets, their status, and
/// the watches they generate.
fn set_rules() -> Vec<Value> {
    let group = "cce.upgradewatch.io";
    vec![
        json!({"apiGroups": [group], "resources": ["upgradewatchsets"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": [group], "resources": ["upgradewatchsets/status"], "verbs": ["patch"]}),
        json!({"apiGroups": [group], "resources": ["upgradeworkflowwatches"], "verbs": ["create", "patch", "delete"]}),
    ]
}

/// The rules for serving a namespace: its watches, accounts and Secrets, and its sets.
fn namespace_rules() -> Vec<Value> {
    let mut rules = watch_rules();
    rules.extend(set_rules());
    rules
}

/// The CRDs the chart ships, by plural.
const CRD_PLURALS: [&str; 4] = [
    "upgradeworkflowwatches",
    "cceaccounts",
    "clustercceaccounts",
    "upgradewatchsets",
];

// ------------------------------------------------------------------ lint and values

#[test]
fn the_chart_passes_helm_lint_strict_with_default_and_non_default_values() {
    let chart = chart();
    ok(helm(&["lint", "--strict", &chart]), "helm lint (defaults)");
    ok(
        helm(&["lint", "--strict", &chart, "-f", &non_default_values()]),
        "helm lint (non-default values)",
    );
    ok(
        helm(&[
            "lint",
            "--strict",
            &chart,
            "--set",
            "replicaCount=3",
            "--set",
            "leaderElection.enabled=true",
            "--set",
            "rbac.create=false",
            "--set",
            "serviceAccount.create=false",
            "--set",
            "serviceAccount.name=existing",
            "--set",
            "caBundle.secret=cce-ca",
        ]),
        "helm lint (existing ServiceAccount, CA bundle from a Secret)",
    );
}

#[test]
fn the_values_schema_rejects_unknown_keys_and_malformed_settings() {
    let chart = chart();
    for (set, expect) in [
        ("operator.backoffBase=5 minutes", "backoffBase"),
        ("operator.logFormat=xml", "logFormat"),
        ("watchNamespaces[0]=Not_A_Namespace", "watchNamespaces"),
        ("replicaCount=two", "replicaCount"),
        ("operatr.concurrency=4", "operatr"),
        // The Kubernetes blocks are closed field by field, as the API server would be.
        ("resources.limits.memroy=1Gi", "memroy"),
        ("resources.requests.cpu=lots", "cpu"),
        ("securityContext.runAsUsr=1000", "runAsUsr"),
        ("podSecurityContext.seccompProfile.type=Permissive", "type"),
        ("livenessProbe.periodSecond=10", "periodSecond"),
        ("readinessProbe.timeoutSeconds=0", "timeoutSeconds"),
        (
            "networkPolicy.apiServerCIDRs[0]=kubernetes.default",
            "apiServerCIDRs",
        ),
        // Removed: no value grants the operator ServiceAccount tokens any more.
        ("workloadIdentity.enabled=true", "enabled"),
        // TOKEN_AUDIENCES is comma-separated: an audience cannot hold a comma.
        ("workloadIdentity.audiences[0]=a\\,b", "audiences"),
        (
            "rbac.aggregateToDefaultRoles=yes",
            "aggregateToDefaultRoles",
        ),
        ("crds.enabled=yes", "/crds/enabled"),
        ("crds.kep=true", "'kep' not allowed"),
        // A pull secret is a name, bare or as {name}.
        ("imagePullSecrets[0]=", "/imagePullSecrets/0"),
        (
            "global.imagePullSecrets[0].nam=default-secret",
            "'nam' not allowed",
        ),
        // The chart's own labels are refused rather than overridden, as are malformed ones.
        (
            "commonLabels.app\\.kubernetes\\.io/instance=other",
            "/commonLabels/app.kubernetes.io~1instance",
        ),
        ("commonLabels.bad key=x", "'bad key' not allowed"),
        ("commonLabels.team=a b", "/commonLabels/team"),
        (
            "deploymentAnnotations.replicas=2",
            "/deploymentAnnotations/replicas",
        ),
        ("revisionHistoryLimit=-1", "/revisionHistoryLimit"),
        ("strategy.type=BlueGreen", "/strategy/type"),
        (
            "strategy.rollingUpdate.maxSurge=lots",
            "/strategy/rollingUpdate/maxSurge",
        ),
        // The API server would refuse a Recreate strategy with rolling-update settings.
        (
            "strategy.type=Recreate,strategy.rollingUpdate.maxUnavailable=1",
            "/strategy/rollingUpdate",
        ),
        // No credentials in a proxy URL (they would be readable in the Deployment), and a
        // scheme is required.
        (
            "proxy.httpsProxy=http://user@proxy.internal:3128",
            "/proxy/httpsProxy",
        ),
        ("proxy.httpProxy=proxy.internal:3128", "/proxy/httpProxy"),
        ("proxy.noProxy[0]=a\\,b", "/proxy/noProxy/0"),
        (
            "proxy.htpsProxy=http://proxy.internal:3128",
            "'htpsProxy' not allowed",
        ),
        (
            "networkPolicy.proxyTo=192.168.0.50/32",
            "/networkPolicy/proxyTo",
        ),
        (
            "metrics.serviceMonitor.namespace=Monitoring",
            "/metrics/serviceMonitor/namespace",
        ),
        (
            "metrics.serviceMonitor.annotations.a=1",
            "/metrics/serviceMonitor/annotations/a",
        ),
        (
            "metrics.serviceMonitor.relabelings[0].sourceLabel=job",
            "'sourceLabel' not allowed",
        ),
        (
            "metrics.serviceMonitor.metricRelabelings[0].action=delete",
            "/metrics/serviceMonitor/metricRelabelings/0/action",
        ),
        // The overrun thresholds go into PromQL as they are: numbers, and durations of one
        // unit (the minimum in seconds).
        (
            "metrics.prometheusRule.taskOverrun.factor=three",
            "/metrics/prometheusRule/taskOverrun/factor",
        ),
        (
            "metrics.prometheusRule.taskOverrun.factor=0",
            "/metrics/prometheusRule/taskOverrun/factor",
        ),
        (
            "metrics.prometheusRule.taskOverrun.quantile=1",
            "/metrics/prometheusRule/taskOverrun/quantile",
        ),
        (
            "metrics.prometheusRule.taskOverrun.minimum=1h30m",
            "/metrics/prometheusRule/taskOverrun/minimum",
        ),
        (
            "metrics.prometheusRule.taskOverrun.minimum=3600",
            "/metrics/prometheusRule/taskOverrun/minimum",
        ),
        (
            "metrics.prometheusRule.taskOverrun.window=30 days",
            "/metrics/prometheusRule/taskOverrun/window",
        ),
        (
            "metrics.prometheusRule.taskOverrun.windw=30d",
            "'windw' not allowed",
        ),
    ] {
        let out = helm(&["template", "t", &chart, "--set", set]);
        assert!(!out.status.success(), "--set {set} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(expect), "--set {set}: {err}");
    }
    // Guard rails in the templates.
    let out = helm(&[
        "template",
        "t",
        &chart,
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=false",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("needs leaderElection.enabled"));
    for (sets, expect) in [
        (
            &["networkPolicy.enabled=true"][..],
            "needs networkPolicy.apiServerCIDRs",
        ),
        (
            &[
                "networkPolicy.enabled=true",
                "networkPolicy.apiServerCIDRs[0]=10.0.0.1/32",
            ][..],
            "needs networkPolicy.cloudCIDRs",
        ),
        // With a proxy, the policy must let the operator reach it.
        (
            &[
                "networkPolicy.enabled=true",
                "networkPolicy.apiServerCIDRs[0]=10.0.0.1/32",
                "networkPolicy.cloudCIDRs[0]=100.125.0.0/16",
                "proxy.httpsProxy=http://proxy.internal:3128",
            ][..],
            "needs networkPolicy.proxyTo",
        ),
    ] {
        let mut args = vec!["template", "t", chart.as_str()];
        for set in sets {
            args.extend(["--set", set]);
        }
        let out = helm(&args);
        assert!(!out.status.success(), "{sets:?} was accepted");
        assert!(text(&out.stderr).contains(expect), "{}", text(&out.stderr));
    }
    let out = helm(&[
        "template",
        "t",
        &chart,
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.service.enabled=false",
    ]);
    assert!(!out.status.success());
    // What the guard rails and the schema must still let through: a parent chart's own
    // globals, and a proxy in place of the cloud's addresses.
    let objs = objects(&ok(
        helm(&[
            "template",
            "t",
            &chart,
            "--set",
            "global.imageRegistry=registry.example.org",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.apiServerCIDRs[0]=10.0.0.1/32",
            "--set",
            "proxy.httpsProxy=https://proxy.internal",
            "--set-json",
            "networkPolicy.proxyTo=[{\"ipBlock\":{\"cidr\":\"192.168.0.50/32\"}}]",
        ]),
        "helm template with a proxy instead of cloudCIDRs",
    ));
    let policy = &find(
        &objs,
        "NetworkPolicy",
        Some("default"),
        "t-cce-upgrade-watch",
    )["spec"];
    assert_eq!(
        policy["egress"][2],
        json!({"to": [{"ipBlock": {"cidr": "192.168.0.50/32"}}],
               "ports": [{"protocol": "TCP", "port": 443}]}),
        "the proxy on its scheme's port: {policy:#}"
    );
    // Insecure endpoints take two values: one alone is refused, both render it.
    let insecure = [
        "template",
        "t",
        chart.as_str(),
        "--namespace",
        "ops",
        "--set",
        "operator.allowInsecureEndpoints=true",
    ];
    let out = helm(&insecure);
    assert!(
        !out.status.success(),
        "one value turned insecure endpoints on"
    );
    assert!(
        text(&out.stderr).contains("operator.iUnderstandInsecureEndpoints=true"),
        "{}",
        text(&out.stderr)
    );
    let mut consented = insecure.to_vec();
    consented.extend(["--set", "operator.iUnderstandInsecureEndpoints=true"]);
    let objs = objects(&ok(helm(&consented), "helm template, both values"));
    let env = env_of(find(
        &objs,
        "Deployment",
        Some("ops"),
        "t-cce-upgrade-watch",
    ));
    assert_eq!(env.get("ALLOW_INSECURE_ENDPOINTS"), Some(&json!("true")));
}

#[test]
fn values_yaml_documents_every_value() {
    let values =
        std::fs::read_to_string(repo_path(&format!("{CHART}/values.yaml"))).expect("values.yaml");
    let mut previous = "";
    let mut undocumented = Vec::new();
    for line in values.lines() {
        if let Some(name) = values_key(line) {
            let documented = line.contains(" # ") || previous.trim_start().starts_with('#');
            if !documented {
                undocumented.push(name.to_string());
            }
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    assert!(
        undocumented.is_empty(),
        "values without a comment: {undocumented:?}"
    );
}

/// The key a `values.yaml` line sets, if it sets one (list items and comments do not).
fn values_key(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let (name, _) = trimmed.split_once(':')?;
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then_some(name)
}

/// `(env var, default)` of every `run` flag, read from `cce-upgrade-watch run --help`.
fn run_flags() -> Vec<(String, Option<String>)> {
    let help = ok(
        Command::new(common::operator::binary())
            .args(["run", "--help"])
            .output()
            .expect("run --help"),
        "run --help",
    );
    let mut flags = Vec::new();
    for line in help.lines() {
        let Some(start) = line.find("[env: ") else {
            continue;
        };
        let env = &line[start + 6..];
        let env = env[..env.find('=').expect("env=")].to_string();
        let default = line.find("[default: ").map(|i| {
            let rest = &line[i + 10..];
            rest[..rest.find(']').expect("]")].to_string()
        });
        flags.push((env, default));
    }
    assert!(flags.len() >= 20, "parsed too few flags from:\n{help}");
    flags
}

#[test]
fn every_operator_flag_is_reachable_from_values_and_the_defaults_match_the_binary() {
    let flags = run_flags();

    // Non-default values: every flag's variable is set, with the value given.
    let objs = objects(&render(
        "t",
        "ops",
        &[
            "-f",
            &non_default_values(),
            "--set",
            "caBundle.key=bundle.pem",
        ],
    ));
    let env = env_of(find(
        &objs,
        "Deployment",
        Some("ops"),
        "t-cce-upgrade-watch",
    ));
    let missing: Vec<_> = flags
        .iter()
        .filter(|(name, _)| !env.contains_key(name))
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        missing.is_empty(),
        "flags not settable from values: {missing:?}"
    );
    for (name, value) in [
        ("LOG_FORMAT", "text"),
        ("ADMIN_LISTEN", "0.0.0.0:9090"),
        ("LEADER_ELECT", "true"),
        ("LEASE_NAME", "cce-upgrade-watch-platform"),
        ("LEASE_DURATION_SECONDS", "20"),
        ("TERMINAL_RESYNC", "15m"),
        ("BACKOFF_BASE", "2s"),
        ("BACKOFF_CAP", "2m"),
        ("PERMANENT_RETRY", "10m"),
        ("SYNC_HEARTBEAT", "2m"),
        ("CCE_RATE_LIMIT", "5"),
        ("CCE_RATE_BURST", "10"),
        ("CCE_REQUEST_TIMEOUT", "20s"),
        ("CCE_CONNECT_TIMEOUT", "5s"),
        ("CA_BUNDLE", "/etc/cce-upgrade-watch/ca/bundle.pem"),
        (
            "ALLOWED_CCE_ENDPOINTS",
            "cce.example.internal,*.cce.example.org:8443",
        ),
        ("ALLOWED_IAM_ENDPOINTS", "iam.example.internal"),
        ("ALLOW_INSECURE_ENDPOINTS", "false"),
        ("WATCH_NAMESPACES", "team-a,team-b"),
        ("LABEL_SELECTOR", "upgrade-watch=platform"),
        ("CONCURRENCY", "8"),
        (
            "HUAWEICLOUD_SDK_IAM_ENDPOINT",
            "https://iam.ap-southeast-1.myhuaweicloud.com",
        ),
        ("IAM_CREDENTIALS_DURATION", "2h"),
        ("TOKEN_AUDIENCES", "iam-client,other-iam-client"),
        ("NAMESPACE_RATE_SHARE", "0.25"),
        ("ACCOUNT_STATUS", "false"),
        ("CLUSTER_ACCOUNTS", "false"),
        ("WATCH_SETS", "false"),
        ("PER_WATCH_METRICS", "false"),
        ("RUST_LOG", "info,cce_upgrade_watch=debug"),
        ("TZ", "UTC"),
        // Not flags: reqwest, the CCE and IAM client, reads them itself.
        ("HTTP_PROXY", "http://proxy.example.internal"),
        ("HTTPS_PROXY", "http://proxy.example.internal:3128"),
        (
            "NO_PROXY",
            "cce.ap-southeast-1.myhuaweicloud.com,.example.internal,192.168.0.0/16",
        ),
    ] {
        assert_eq!(env.get(name), Some(&json!(value)), "{name}");
    }
    assert_eq!(
        env["POD_NAME"],
        json!({"fieldRef": {"fieldPath": "metadata.name"}})
    );
    assert_eq!(
        env["POD_NAMESPACE"],
        json!({"fieldRef": {"fieldPath": "metadata.namespace"}})
    );
    assert_eq!(
        env["POD_SERVICE_ACCOUNT"],
        json!({"fieldRef": {"fieldPath": "spec.serviceAccountName"}})
    );
    // The default-credentials Secret and the operator's own token are mounted, so their
    // rotation reaches the operator without a restart.
    let pod =
        &find(&objs, "Deployment", Some("ops"), "t-cce-upgrade-watch")["spec"]["template"]["spec"];
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}: {pod:#}"))
            .clone()
    };
    assert_eq!(
        volume("default-credentials")["secret"],
        json!({"secretName": "cce-default-credentials", "optional": true, "items": [
            {"key": "accessKey", "path": "accessKey"},
            {"key": "secretKey", "path": "secretKey"},
            {"key": "securityToken", "path": "securityToken"},
            {"key": "token", "path": "token"},
        ]})
    );
    assert_eq!(
        env["DEFAULT_CREDENTIALS_DIR"],
        json!("/var/run/secrets/cce-upgrade-watch/default-credentials")
    );
    assert_eq!(
        volume("identity-token")["projected"]["sources"],
        json!([{"serviceAccountToken": {"path": "token", "audience": "cce-upgrade-watch", "expirationSeconds": 7200}}])
    );
    assert_eq!(env["HUAWEICLOUD_SDK_IDP_ID"], json!("cluster-idp"));
    assert_eq!(
        env["HUAWEICLOUD_SDK_ID_TOKEN_FILE"],
        json!("/var/run/secrets/cce-upgrade-watch/identity/token")
    );
    let mounts = pod["containers"][0]["volumeMounts"]
        .as_array()
        .expect("mounts");
    for name in ["default-credentials", "identity-token"] {
        assert!(
            mounts
                .iter()
                .any(|m| m["name"] == name && m["readOnly"] == true),
            "{name} not mounted read-only: {mounts:#?}"
        );
    }
    assert!(
        !env.contains_key("CLOUD_SDK_SK"),
        "keys are files, not variables that need a restart to change"
    );

    // Default values: the same defaults as the binary, but for the deliberate differences.
    let objs = objects(&render("t", "ops", &[]));
    let env = env_of(find(
        &objs,
        "Deployment",
        Some("ops"),
        "t-cce-upgrade-watch",
    ));
    for (name, default) in &flags {
        let chart_value = env.get(name);
        match name.as_str() {
            // Structured logs in a cluster; text is the default for a terminal.
            "LOG_FORMAT" => assert_eq!(chart_value, Some(&json!("json"))),
            // One Lease per release.
            "LEASE_NAME" => assert_eq!(chart_value, Some(&json!("t-cce-upgrade-watch"))),
            // From the downward API.
            "POD_NAME" | "POD_NAMESPACE" | "POD_SERVICE_ACCOUNT" => {
                assert!(chart_value.is_some_and(|v| v.is_object()), "{name}")
            }
            _ => match default {
                Some(d) => assert_eq!(chart_value, Some(&json!(d)), "default of {name}"),
                // No default in the binary: the chart leaves it unset too.
                None if name != "ALLOW_INSECURE_ENDPOINTS" => {
                    assert_eq!(chart_value, None, "{name} should be unset by default")
                }
                None => assert_eq!(chart_value, Some(&json!("false"))),
            },
        }
    }
}

#[test]
fn the_configuration_reference_lists_every_flag_with_its_default() {
    let readme =
        std::fs::read_to_string(repo_path("docs/configuration.md")).expect("docs/configuration.md");
    for (env, default) in run_flags() {
        let row = readme
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("| `{env}` |")))
            .unwrap_or_else(|| {
                panic!("docs/configuration.md's configuration reference lacks {env}")
            });
        if let Some(d) = default {
            assert!(
                row.contains(&format!("`{d}`")),
                "docs/configuration.md gives another default for {env}: {row}"
            );
        }
    }
}

// ------------------------------------------------------------------ renders on the server

#[tokio::test]
async fn the_default_render_passes_a_server_dry_run_and_the_restricted_pod_security_profile() {
    let (_client, ns) = setup("chart-default-render").await;
    let yaml = render("dflt", &ns, &[]);
    let objs = objects(&yaml);
    let mut kinds: Vec<_> = objs
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or("?"))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ],
        "{:#?}",
        summary(&objs)
    );

    // Cluster-wide mode: one ClusterRole with exactly the operator's calls.
    let cluster_role = find(&objs, "ClusterRole", None, "dflt-cce-upgrade-watch");
    let mut rules = namespace_rules();
    rules.extend(cluster_rules());
    assert_eq!(cluster_role["rules"], Value::Array(rules));
    // Without sets, no right to create, change or delete a watch.
    let no_sets = objects(&render("dflt", &ns, &["--set", "watchSets.enabled=false"]));
    let mut rules = watch_rules();
    rules.extend(cluster_rules());
    assert_eq!(
        find(&no_sets, "ClusterRole", None, "dflt-cce-upgrade-watch")["rules"],
        Value::Array(rules)
    );
    // People: the built-in view, edit and admin roles gain watches and CCEAccounts, never
    // ClusterCCEAccounts.
    let view = find(&objs, "ClusterRole", None, "dflt-cce-upgrade-watch-view");
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    assert_eq!(
        view["rules"],
        json!([{"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradeworkflowwatches", "cceaccounts", "upgradewatchsets"],
                "verbs": ["get", "list", "watch"]}])
    );
    let edit = find(&objs, "ClusterRole", None, "dflt-cce-upgrade-watch-edit");
    for role in ["edit", "admin"] {
        assert_eq!(
            edit["metadata"]["labels"][format!("rbac.authorization.k8s.io/aggregate-to-{role}")],
            "true"
        );
    }
    assert_eq!(
        edit["rules"],
        json!([{"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradeworkflowwatches", "cceaccounts", "upgradewatchsets"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]}])
    );
    let off = objects(&render(
        "dflt",
        &ns,
        &["--set", "rbac.aggregateToDefaultRoles=false"],
    ));
    assert_eq!(
        of_kind(&off, "ClusterRole").len(),
        1,
        "{:#?}",
        summary(&off)
    );
    let lease_role = find(
        &objs,
        "Role",
        Some(&ns),
        "dflt-cce-upgrade-watch-leader-election",
    );
    assert_eq!(
        lease_role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["dflt-cce-upgrade-watch"], "verbs": ["get", "patch"]},
        ])
    );
    // Each rule carries its reason.
    let rbac = std::fs::read_to_string(repo_path(&format!("{CHART}/templates/rbac.yaml")))
        .expect("rbac.yaml");
    let helpers = std::fs::read_to_string(repo_path(&format!("{CHART}/templates/_helpers.tpl")))
        .expect("_helpers.tpl");
    for source in [&rbac, &helpers] {
        let lines: Vec<&str> = source.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("- apiGroups:") {
                assert!(
                    lines[i - 1].trim_start().starts_with('#'),
                    "rule without a reason comment: {line}"
                );
            }
        }
    }

    let deployment = find(&objs, "Deployment", Some(&ns), "dflt-cce-upgrade-watch");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"], json!(["run"]));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    // Kubernetes' own defaults but for the rollback history, which is explicit; nothing
    // pulls through a Secret or a proxy unless asked.
    assert_eq!(deployment["spec"]["revisionHistoryLimit"], 10);
    assert!(
        deployment["spec"].get("strategy").is_none(),
        "{deployment:#}"
    );
    assert!(deployment["metadata"].get("annotations").is_none());
    assert!(pod.get("imagePullSecrets").is_none(), "{pod:#}");
    let env = env_of(deployment);
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"] {
        assert!(!env.contains_key(proxy), "{proxy} set by default");
    }

    let applied = server_dry_run(&yaml);
    assert!(
        applied.contains("deployment.apps/dflt-cce-upgrade-watch created (server dry run)"),
        "{applied}"
    );

    // The CRDs are left out by default (crds.enabled); enabled, they are the committed
    // files, labelled as the release's and kept on uninstall (crds.keep).
    assert!(of_kind(&objs, "CustomResourceDefinition").is_empty());
    let crds = render("dflt", &ns, &["--set", "crds.enabled=true"]);
    let rendered = objects(&crds);
    let crd_objs: Vec<&Value> = of_kind(&rendered, "CustomResourceDefinition");
    assert_eq!(
        crd_objs.len(),
        CRD_PLURALS.len(),
        "{:#?}",
        summary(&rendered)
    );
    for plural in CRD_PLURALS {
        let name = format!("{plural}.cce.upgradewatch.io");
        let crd = find(&rendered, "CustomResourceDefinition", None, &name);
        let committed: Value = serde_yaml::from_str(
            &std::fs::read_to_string(repo_path(&format!("{CHART}/files/crds/{name}.yaml")))
                .expect("committed CRD"),
        )
        .expect("parse committed CRD");
        assert_eq!(
            crd["spec"], committed["spec"],
            "{name} renders as committed"
        );
        assert_eq!(
            crd["metadata"]["annotations"],
            json!({"helm.sh/resource-policy": "keep"}),
            "{name}"
        );
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/instance"],
            "dflt"
        );
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
    }
    // Everything else is as without them.
    assert_eq!(rendered.len(), objs.len() + CRD_PLURALS.len());
    let applied = server_side_dry_run(&yaml_stream(crd_objs.iter().copied()));
    for plural in CRD_PLURALS {
        assert!(
            applied.contains(&format!(
                "customresourcedefinition.apiextensions.k8s.io/{plural}.cce.upgradewatch.io serverside-applied (server dry run)"
            )),
            "{applied}"
        );
    }

    // The pod the Deployment would create, admitted in a namespace that enforces the
    // restricted Pod Security Standard.
    for mode in ["enforce", "warn"] {
        ok(
            kubectl(&[
                "label",
                "namespace",
                &ns,
                &format!("pod-security.kubernetes.io/{mode}=restricted"),
            ]),
            "label namespace",
        );
    }
    let pod_obj = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator", "namespace": ns,
                     "labels": deployment["spec"]["template"]["metadata"]["labels"]},
        "spec": pod,
    });
    let applied = server_dry_run(&pod_obj.to_string());
    assert!(
        applied.contains("pod/operator created (server dry run)"),
        "{applied}"
    );
}

#[tokio::test]
async fn namespaced_mode_with_two_replicas_and_a_service_monitor_passes_a_server_dry_run() {
    let (client, ns) = setup("chart-namespaced-render").await;
    let team_a = common::namespace(&client, "chart-team-a").await;
    let team_b = common::namespace(&client, "chart-team-b").await;
    let monitoring = common::namespace(&client, "chart-monitoring").await;
    install_servicemonitor_crd();
    let watched = format!("watchNamespaces=[\"{team_a}\",\"{team_b}\"]");
    let monitor_ns = format!("metrics.serviceMonitor.namespace={monitoring}");
    let yaml = render(
        "nsd",
        &ns,
        &[
            "-f",
            &non_default_values(),
            "--set-json",
            &watched,
            "--set",
            "clusterAccounts.enabled=true",
            "--set",
            &monitor_ns,
        ],
    );
    let objs = objects(&yaml);
    // commonLabels on every object and on the Pods, never in a selector (which cannot
    // change); where podLabels name the same key, the Pods take theirs.
    let pod_template =
        &find(&objs, "Deployment", Some(&ns), "nsd-cce-upgrade-watch")["spec"]["template"];
    for obj in objs.iter().chain([pod_template]) {
        let labels = &obj["metadata"]["labels"];
        let team = if std::ptr::eq(obj, pod_template) {
            "platform"
        } else {
            "all-platform"
        };
        assert_eq!(labels["team"], team, "{obj:#}");
        assert_eq!(
            labels["example.com/cost-center"], "platform-1234",
            "{obj:#}"
        );
        assert_eq!(labels["app.kubernetes.io/instance"], "nsd", "{obj:#}");
    }
    // Without ClusterCCEAccounts, nothing cluster-wide at all, nor the release namespace's
    // Secrets.
    let confined = objects(&render(
        "nsd",
        &ns,
        &["-f", &non_default_values(), "--set-json", &watched],
    ));
    let cluster_wide: Vec<_> = summary(&confined)
        .into_iter()
        .filter(|o| o.starts_with("ClusterRole") || o.ends_with("-credentials"))
        .collect();
    assert!(cluster_wide.is_empty(), "{cluster_wide:#?}");

    // Roles in the watched namespaces instead of a ClusterRole for watches, accounts and
    // Secrets.
    let operator =
        json!([{"kind": "ServiceAccount", "name": "nsd-cce-upgrade-watch", "namespace": ns}]);
    // The non-default values turn sets off: no right to create, change or delete watches.
    for team in [&team_a, &team_b] {
        let role = find(&objs, "Role", Some(team), "nsd-cce-upgrade-watch");
        assert_eq!(role["rules"], Value::Array(watch_rules()), "{role:#}");
        let binding = find(&objs, "RoleBinding", Some(team), "nsd-cce-upgrade-watch");
        assert_eq!(binding["subjects"], operator);
    }
    // ClusterCCEAccounts keep their Secrets in the release namespace.
    let credentials = find(
        &objs,
        "Role",
        Some(&ns),
        "nsd-cce-upgrade-watch-credentials",
    );
    assert_eq!(
        credentials["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}])
    );
    assert_eq!(
        find(
            &objs,
            "RoleBinding",
            Some(&ns),
            "nsd-cce-upgrade-watch-credentials"
        )["subjects"],
        operator
    );
    // Cluster-wide only what is cluster-scoped (and no roles for people: the values turn
    // them off).
    let cluster_roles = of_kind(&objs, "ClusterRole");
    assert_eq!(cluster_roles.len(), 1, "{:#?}", summary(&objs));
    let cluster_role = find(&objs, "ClusterRole", None, "nsd-cce-upgrade-watch");
    assert_eq!(cluster_role["rules"], Value::Array(cluster_rules()));
    assert_eq!(
        find(&objs, "ClusterRoleBinding", None, "nsd-cce-upgrade-watch")["subjects"],
        operator
    );
    // Serving the release namespace too, its Role covers the credentials already.
    let served_too = objects(&render(
        "nsd",
        &ns,
        &[
            "--set-json",
            &format!("watchNamespaces=[\"{team_a}\",\"{ns}\"]"),
        ],
    ));
    assert!(
        !summary(&served_too)
            .iter()
            .any(|o| o.ends_with("-credentials")),
        "{:#?}",
        summary(&served_too)
    );
    assert!(
        find(
            &objs,
            "Role",
            Some(&ns),
            "nsd-cce-upgrade-watch-leader-election"
        )["rules"][1]["resourceNames"]
            == json!(["cce-upgrade-watch-platform"])
    );

    let pdb = find(
        &objs,
        "PodDisruptionBudget",
        Some(&ns),
        "nsd-cce-upgrade-watch",
    );
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let deployment = find(&objs, "Deployment", Some(&ns), "nsd-cce-upgrade-watch");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["revisionHistoryLimit"], 3);
    assert_eq!(
        deployment["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
    // Deployment and pod annotations each stay on their own object.
    assert_eq!(
        deployment["metadata"]["annotations"],
        json!({"example.com/rollout": "manual"})
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"],
        json!({"example.com/team": "platform"})
    );
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(
        selector,
        &json!({"app.kubernetes.io/name": "cce-upgrade-watch", "app.kubernetes.io/instance": "nsd"})
    );
    // The chart's pull secret and the parent's, each once.
    assert_eq!(
        deployment["spec"]["template"]["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}, {"name": "default-secret"}])
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/platform/cce-upgrade-watch@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    // The ServiceMonitor where Prometheus looks, scraping the release namespace's Service.
    let monitor = find(
        &objs,
        "ServiceMonitor",
        Some(&monitoring),
        "nsd-cce-upgrade-watch",
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([ns])
    );
    assert_eq!(
        monitor["metadata"]["annotations"],
        json!({"example.com/owner": "platform"})
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["relabelings"],
        json!([{"action": "replace", "targetLabel": "cluster", "replacement": "prod"}])
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["metricRelabelings"],
        json!([{"action": "drop", "sourceLabels": ["__name__"],
                "regex": "cce_upgrade_watch_task_duration_seconds_.*"}])
    );
    let service = find(&objs, "Service", Some(&ns), "nsd-cce-upgrade-watch-metrics");
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    for (k, v) in selector {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the metrics Service"
        );
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");

    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["args"],
        json!(["run", "--concurrency=6"])
    );
    // Extra volumes come after the chart's own (CA bundle, default credentials, token).
    assert_eq!(
        pod["containers"][0]["volumeMounts"][3],
        json!({"name": "scratch", "mountPath": "/scratch"})
    );
    assert_eq!(pod["volumes"][3]["name"], "scratch");

    // Ingress to the admin port from the monitoring namespace only; egress in three rules:
    // the API server, cluster DNS, CCE and IAM.
    let policy = &find(&objs, "NetworkPolicy", Some(&ns), "nsd-cce-upgrade-watch")["spec"];
    assert_eq!(policy["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["ingress"],
        json!([{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"protocol": "TCP", "port": 9090}],
        }])
    );
    assert_eq!(
        policy["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        policy["egress"],
        json!([
            {"to": [{"ipBlock": {"cidr": "192.168.0.10/32"}}, {"ipBlock": {"cidr": "192.168.0.11/32"}}],
             "ports": [{"protocol": "TCP", "port": 5443}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                     "podSelector": {"matchLabels": {"k8s-app": "coredns"}}}],
             "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            {"to": [{"ipBlock": {"cidr": "100.125.0.0/16"}}],
             "ports": [{"protocol": "TCP", "port": 443}]},
            // The proxy, on the ports of proxy.httpProxy (http's 80) and proxy.httpsProxy.
            {"to": [{"ipBlock": {"cidr": "192.168.0.50/32"}}],
             "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 3128}]},
        ])
    );

    // The CRDs rendered but not kept (crds.keep=false), with the common labels; applied
    // server-side, as the shared plane has them already.
    let crds: Vec<&Value> = of_kind(&objs, "CustomResourceDefinition");
    assert_eq!(crds.len(), CRD_PLURALS.len(), "{:#?}", summary(&objs));
    for crd in &crds {
        assert!(crd["metadata"].get("annotations").is_none(), "{crd:#}");
    }
    let applied = server_side_dry_run(&yaml_stream(crds.iter().copied()));
    assert_eq!(
        applied
            .matches("serverside-applied (server dry run)")
            .count(),
        CRD_PLURALS.len(),
        "{applied}"
    );
    let yaml = yaml_stream(
        objs.iter()
            .filter(|o| o["kind"] != "CustomResourceDefinition"),
    );

    let applied = server_dry_run(&yaml);
    assert!(
        applied.contains(
            "servicemonitor.monitoring.coreos.com/nsd-cce-upgrade-watch created (server dry run)"
        ),
        "{applied}"
    );
    assert!(
        applied.contains(
            "networkpolicy.networking.k8s.io/nsd-cce-upgrade-watch created (server dry run)"
        ),
        "{applied}"
    );
    assert!(
        applied
            .contains("poddisruptionbudget.policy/nsd-cce-upgrade-watch created (server dry run)"),
        "{applied}"
    );
}

// ------------------------------------------------------------------ NOTES.txt

/// The NOTES of a dry-run `helm install` (nothing is stored) with `args`.
fn notes(release: &str, ns: &str, args: &[&str]) -> String {
    let chart = chart();
    let mut all = vec![
        "install",
        release,
        chart.as_str(),
        "--namespace",
        ns,
        "--dry-run",
    ];
    all.extend_from_slice(args);
    let out = ok(helm(&all), "helm install --dry-run");
    out.split_once("\nNOTES:\n")
        .unwrap_or_else(|| panic!("no NOTES in:\n{out}"))
        .1
        .to_string()
}

/// What NOTES.txt gives to `kubectl apply -f - <<'EOF'`.
fn notes_manifest(notes: &str) -> String {
    let (_, rest) = notes
        .split_once("kubectl apply -f - <<'EOF'\n")
        .unwrap_or_else(|| panic!("no manifest to apply in the NOTES:\n{notes}"));
    let (body, _) = rest
        .split_once("\nEOF\n")
        .unwrap_or_else(|| panic!("the NOTES' manifest does not end:\n{notes}"));
    body.to_string()
}

/// The NOTES' kubectl commands that start with `prefix`, continuation lines joined, split
/// into arguments, with `"$VAR"` replaced by `vars`' value for VAR.
fn notes_commands(notes: &str, prefix: &str, vars: &[(&str, &str)]) -> Vec<Vec<String>> {
    notes
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|w| {
                    vars.iter().fold(w.to_string(), |w, (var, value)| {
                        w.replace(&format!("\"${var}\""), value)
                    })
                })
                .collect()
        })
        .collect()
}

/// A new user's first hour, as NOTES.txt guides it: the credentials Secret its commands
/// create is labelled and holds the keys the account needs, and the account and watch it
/// prints go to a namespace the release serves, with labels its selector matches, and pass
/// a server-side dry run against the CRDs. It says where the CRDs come from and how to
/// check image pulls with the pull secrets in use.
#[tokio::test]
async fn the_notes_give_a_first_account_and_watch_that_pass_a_server_dry_run() {
    let (client, ns) = setup("chart-notes").await;

    // Cluster-wide with default values: all in the release namespace.
    let first = notes("notes", &ns, &[]);
    let manifest = notes_manifest(&first);
    let docs = objects(&manifest);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["CCEAccount", "UpgradeWorkflowWatch"], "{manifest}");
    let (account, watch) = (&docs[0], &docs[1]);
    for doc in &docs {
        assert_eq!(doc["metadata"]["namespace"], ns.as_str(), "{doc:#}");
    }
    let account_name = account["metadata"]["name"].as_str().expect("account name");
    assert_eq!(
        watch["spec"]["accountRef"],
        json!({"kind": "CCEAccount", "name": account_name})
    );
    // It follows the cluster (no workflow ID): an idle cluster shows NoWorkflow, as said.
    assert!(
        watch["spec"].get("upgradeWorkflowID").is_none(),
        "{watch:#}"
    );
    assert!(first.contains("reason NoWorkflow"), "{first}");
    assert!(
        first.contains("READY True, REASON CredentialsReady"),
        "{first}"
    );

    // The Secret commands, run with stand-in keys: the Secret the account names, labelled,
    // with the keys it reads.
    let secret = account["spec"]["credentials"]["secretRef"]["name"]
        .as_str()
        .expect("secretRef");
    let keys = [
        ("CLOUD_SDK_AK", "example-access-key-id"),
        ("CLOUD_SDK_SK", "example-secret-access-key"),
    ];
    let commands = notes_commands(&first, &format!("kubectl -n {ns} create secret"), &keys)
        .into_iter()
        .chain(notes_commands(
            &first,
            &format!("kubectl -n {ns} label secret"),
            &keys,
        ))
        .collect::<Vec<_>>();
    assert_eq!(commands.len(), 2, "{first}");
    for command in commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        ok(kubectl(&args), "the NOTES' Secret commands");
    }
    let created: Value = serde_json::from_str(&ok(
        kubectl(&["get", "secret", secret, "-n", &ns, "-o", "json"]),
        "get the Secret",
    ))
    .expect("Secret JSON");
    assert_eq!(
        created["metadata"]["labels"]["cce.upgradewatch.io/credentials"],
        "true"
    );
    let mut data: Vec<&str> = created["data"]
        .as_object()
        .expect("data")
        .keys()
        .map(String::as_str)
        .collect();
    data.sort();
    assert_eq!(data, ["accessKey", "secretKey"]);

    let applied = server_dry_run(&manifest);
    for created in [
        format!("cceaccount.cce.upgradewatch.io/{account_name} created (server dry run)"),
        format!(
            "upgradeworkflowwatch.cce.upgradewatch.io/{} created (server dry run)",
            watch["metadata"]["name"].as_str().expect("watch name")
        ),
    ] {
        assert!(applied.contains(&created), "{applied}");
    }

    // Pulls and CRDs, by default: no pull Secret, the CRDs left to the user.
    for said in [
        "pulled without a Secret",
        "ImagePullBackOff",
        "default-secret",
        "crds.enabled=false",
        "kubectl apply --server-side --force-conflicts -f cce-upgrade-watch/files/crds/",
    ] {
        assert!(first.contains(said), "NOTES without {said:?}:\n{first}");
    }

    // Namespaced, behind a label selector: the example goes to a served namespace, with the
    // selector's labels; the rest of the selector is named. The pull secrets and the CRDs'
    // fate follow the values.
    let team = common::namespace(&client, "chart-notes-team").await;
    let values = tempfile::NamedTempFile::new().expect("values file");
    std::fs::write(
        values.path(),
        format!(
            "watchNamespaces: [{team}]\nlabelSelector: upgrade-watch=platform,tier in (a,b)\n\
             imagePullSecrets: [{{name: regcred}}]\nglobal: {{imagePullSecrets: [default-secret]}}\n\
             crds: {{enabled: true}}\n"
        ),
    )
    .expect("write values");
    let values_path = values.path().display().to_string();
    // The shared plane's CRDs are the test kit's: --take-ownership lets the dry run render
    // them as the release's (a dry run takes nothing).
    let namespaced = notes("notes", &ns, &["-f", &values_path, "--take-ownership"]);
    let manifest = notes_manifest(&namespaced);
    let docs = objects(&manifest);
    for doc in &docs {
        assert_eq!(doc["metadata"]["namespace"], team.as_str(), "{doc:#}");
    }
    assert_eq!(
        docs[1]["metadata"]["labels"],
        json!({"upgrade-watch": "platform"})
    );
    for said in [
        "labels that also match tier in (a,b)",
        "pulled with the Secrets regcred, default-secret.",
        "This release installs the CRDs and upgrades them with the chart. They stay",
    ] {
        assert!(
            namespaced.contains(said),
            "NOTES without {said:?}:\n{namespaced}"
        );
    }
    let applied = server_dry_run(&manifest);
    assert_eq!(
        applied.matches("created (server dry run)").count(),
        2,
        "{applied}"
    );

    // CRDs that go with the release are announced as such.
    let unkept = notes(
        "notes",
        &ns,
        &[
            "--set",
            "crds.enabled=true",
            "--set",
            "crds.keep=false",
            "--take-ownership",
        ],
    );
    assert!(
        unkept.contains("WARNING: crds.keep=false: uninstalling the release"),
        "{unkept}"
    );
}

// ------------------------------------------------------------------ packaging

/// `make chart` (hack/chart.sh package) takes the helm on PATH when it is Helm 3, else the
/// cached one, says which, and says what to do when there is none.
#[test]
fn make_chart_uses_the_helm_on_path_else_the_cached_one_and_says_which() {
    let cached = std::env::var("CCE_UW_HELM").expect("CCE_UW_HELM (hack/control-plane.sh env)");
    // PATH without any helm, so that each case puts one there or not.
    let bare: Vec<String> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|dir| !dir.join("helm").exists())
        .map(|dir| dir.display().to_string())
        .collect();
    let bare = bare.join(":");
    let package = |path: &str, cache: Option<&std::path::Path>| {
        let out_dir = tempfile::tempdir().expect("chart output dir");
        let mut command = Command::new(repo_path("hack/chart.sh"));
        command
            .arg("package")
            .env_remove("CCE_UW_HELM")
            .env("PATH", path)
            .env("CCE_UW_CHART_OUT", out_dir.path());
        if let Some(cache) = cache {
            command.env("CCE_UW_CACHE", cache);
        }
        let out = command.output().expect("run hack/chart.sh");
        let packaged =
            out.status.success() && out_dir.path().join("cce-upgrade-watch-0.1.0.tgz").exists();
        (packaged, text(&out.stderr))
    };

    let own = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&cached, own.path().join("helm")).expect("symlink helm");
    let (packaged, said) = package(&format!("{}:{bare}", own.path().display()), None);
    assert!(packaged, "{said}");
    assert!(
        said.contains(&format!("from PATH ({}/helm)", own.path().display())),
        "{said}"
    );

    let (packaged, said) = package(&bare, None);
    assert!(packaged, "{said}");
    assert!(
        said.contains(&format!("cached by hack/control-plane.sh ({cached})")),
        "{said}"
    );

    // Not Helm 3: passed over for the cached one, with a word.
    let other = tempfile::tempdir().expect("tempdir");
    let fake = other.path().join("helm");
    std::fs::write(&fake, "#!/bin/sh\necho v4.0.0\n").expect("write fake helm");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (packaged, said) = package(&format!("{}:{bare}", other.path().display()), None);
    assert!(packaged, "{said}");
    assert!(said.contains("is not Helm 3 (version: v4.0.0)"), "{said}");
    assert!(said.contains("cached by hack/control-plane.sh"), "{said}");

    let empty_cache = tempfile::tempdir().expect("tempdir");
    let (packaged, said) = package(&bare, Some(empty_cache.path()));
    assert!(!packaged, "packaged without any helm: {said}");
    assert!(said.contains("no helm: install Helm 3"), "{said}");
}

// ------------------------------------------------------------------ helm install

#[test]
fn the_chart_readme_is_what_helm_docs_generates_from_values_yaml() {
    let generated = hack("chart.sh", &["docs-print"]);
    let committed = std::fs::read_to_string(repo_path(&format!("{CHART}/README.md")))
        .expect("the chart's README.md");
    pretty_assertions::assert_eq!(
        committed.trim_end(),
        generated.trim_end(),
        "{CHART}/README.md is out of date: run `make chart-docs`"
    );
}

/// The checks of chart-testing's `ct lint` (hack/chart-lint.sh): the chart passes them, and
/// each of them refuses a chart broken its way.
#[test]
fn the_chart_passes_the_checks_of_ct_lint_and_each_check_can_fail() {
    hack("chart-lint.sh", &[]);
    let chart_yaml =
        std::fs::read_to_string(repo_path(&format!("{CHART}/Chart.yaml"))).expect("Chart.yaml");
    let values_yaml =
        std::fs::read_to_string(repo_path(&format!("{CHART}/values.yaml"))).expect("values.yaml");
    let broken = [
        (
            "a version that is not SemVer (yamale)",
            chart_yaml.replace("\nversion: 0.1.0\n", "\nversion: \"0.1\"\n"),
            values_yaml.clone(),
            "version: '0.1' is not a regex match",
        ),
        (
            "no maintainers (yamale)",
            chart_yaml.replace(
                "maintainers:\n  - name: cce-upgrade-watch maintainers\n",
                "",
            ),
            values_yaml.clone(),
            "maintainers: Required field missing",
        ),
        (
            "trailing spaces in values.yaml (yamllint)",
            chart_yaml.clone(),
            values_yaml.replacen("\n", "   \n", 1),
            "(trailing-spaces)",
        ),
        (
            "a key twice in values.yaml (yamllint)",
            chart_yaml.clone(),
            format!("{values_yaml}\nreplicaCount: 1\nreplicaCount: 2\n"),
            "(key-duplicates)",
        ),
        (
            "an artifacthub.io/images annotation that is no list",
            chart_yaml.replace(
                "artifacthub.io/images: |\n",
                "artifacthub.io/images: |\n    not: a list\n  unused: |\n",
            ),
            values_yaml.clone(),
            "annotation artifacthub.io/images is not a YAML list",
        ),
    ];
    for (what, broken_chart, values, says) in broken {
        assert!(
            broken_chart != chart_yaml || values != values_yaml,
            "{what}: the fixture no longer breaks anything"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("cce-upgrade-watch");
        let status = Command::new("cp")
            .args(["-r", &chart(), &copy.display().to_string()])
            .status()
            .expect("cp");
        assert!(status.success());
        std::fs::write(copy.join("Chart.yaml"), broken_chart).expect("write Chart.yaml");
        std::fs::write(copy.join("values.yaml"), values).expect("write values.yaml");
        let out = Command::new(repo_path("hack/chart-lint.sh"))
            .arg(&copy)
            .output()
            .expect("run chart-lint.sh");
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !out.status.success() && said.contains(says),
            "chart-lint on a chart with {what}: {}, without {says:?}:\n{said}",
            out.status
        );
    }
}

/// Installs from an OCI registry on loopback (the name predates that: `make test-oldest`
/// selects the test by it).
#[tokio::test]
async fn helm_install_creates_the_operator_objects_and_the_crd_upgrade_path_works() {
    let (_client, ns) = setup("chart-install").await;
    let release = ns.clone();
    let full = fullname(&release);

    // The chart as users get it: packaged for a registry, pushed as an OCI artifact, and
    // installed from there.
    let registry = LoopbackRegistry::start();
    hack("chart.sh", &["push", &registry.addr, "--plain-http"]);
    let chart = format!("oci://{}/charts/cce-upgrade-watch", registry.addr);
    let meta: Value = serde_yaml::from_str(&ok(
        helm(&[
            "show",
            "chart",
            &chart,
            "--version",
            "0.1.0",
            "--plain-http",
        ]),
        "helm show chart",
    ))
    .expect("Chart.yaml");
    assert_eq!(meta["home"], meta["sources"][0], "{meta:#}");
    assert!(meta["home"].as_str().is_some_and(|h| h.contains("://")));
    let images: Value = serde_yaml::from_str(
        meta["annotations"]["artifacthub.io/images"]
            .as_str()
            .expect("artifacthub.io/images"),
    )
    .expect("images annotation");
    let image = format!("{}/cce-upgrade-watch:0.1.0", registry.addr);
    assert_eq!(images[0]["image"], image.as_str());
    ok(
        helm(&[
            "install",
            &release,
            &chart,
            "--version",
            "0.1.0",
            "--plain-http",
            "--namespace",
            &ns,
        ]),
        "helm install from the registry",
    );
    let deployed = ok(
        kubectl(&[
            "get",
            "-n",
            &ns,
            &format!("deployment/{full}"),
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]),
        "deployment image",
    );
    assert_eq!(
        deployed, image,
        "the packaged chart deploys the registry's image"
    );
    let status = ok(
        helm(&["status", &release, "--namespace", &ns, "-o", "json"]),
        "helm status",
    );
    let status: Value = serde_json::from_str(&status).expect("helm status JSON");
    assert_eq!(status["info"]["status"], "deployed");

    let names = ok(
        kubectl(&[
            "get",
            "-n",
            &ns,
            "deployment,serviceaccount,service,role,rolebinding",
            "-o",
            "name",
        ]),
        "kubectl get",
    );
    for expected in [
        format!("deployment.apps/{full}"),
        format!("serviceaccount/{full}"),
        format!("service/{full}-metrics"),
        format!("role.rbac.authorization.k8s.io/{full}-leader-election"),
        format!("rolebinding.rbac.authorization.k8s.io/{full}-leader-election"),
    ] {
        assert!(
            names.lines().any(|l| l == expected),
            "{expected} missing in:\n{names}"
        );
    }
    let cluster_wide = [
        format!("clusterrole/{full}"),
        format!("clusterrolebinding/{full}"),
        format!("clusterrole/{full}-view"),
        format!("clusterrole/{full}-edit"),
    ];
    let mut get = vec!["get"];
    get.extend(cluster_wide.iter().map(String::as_str));
    ok(kubectl(&get), "cluster-wide RBAC installed");
    for plural in CRD_PLURALS {
        ok(
            kubectl(&["get", "crd", &format!("{plural}.cce.upgradewatch.io")]),
            "CRD present",
        );
    }
    // By default (crds.enabled=false) the release holds no CRD: those of the shared plane
    // are the test kit's, as a user's would be their own.
    let manifest = ok(
        helm(&["get", "manifest", &release, "--namespace", &ns]),
        "helm get manifest",
    );
    assert!(
        !manifest.contains("kind: CustomResourceDefinition"),
        "{manifest}"
    );

    // The CRD upgrade path NOTES.txt gives with crds.enabled=false: the packaged chart's
    // files/crds/, applied before the upgrade. The package has no crds/ directory, which
    // Helm would install on its own.
    let pulled = tempfile::tempdir().expect("tempdir");
    let untar = pulled.path().display().to_string();
    ok(
        helm(&[
            "pull",
            &chart,
            "--version",
            "0.1.0",
            "--plain-http",
            "--untar",
            "--untardir",
            &untar,
        ]),
        "helm pull --untar",
    );
    let packaged = pulled.path().join("cce-upgrade-watch");
    assert!(!packaged.join("crds").exists(), "the package has a crds/");
    let crds = packaged.join("files/crds").display().to_string();
    let applied = ok(
        kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &crds]),
        "kubectl apply of the chart's files/crds/",
    );
    for plural in CRD_PLURALS {
        assert!(
            applied.contains(&format!("{plural}.cce.upgradewatch.io serverside-applied")),
            "{applied}"
        );
    }
    ok(
        helm(&[
            "upgrade",
            &release,
            &chart,
            "--version",
            "0.1.0",
            "--plain-http",
            "--namespace",
            &ns,
            "--set",
            "operator.concurrency=4",
        ]),
        "helm upgrade",
    );
    let env = ok(
        kubectl(&[
            "get",
            "-n",
            &ns,
            &format!("deployment/{full}"),
            "-o",
            "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"CONCURRENCY\")].value}",
        ]),
        "deployment env",
    );
    assert_eq!(env, "4");

    ok(
        helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
    for object in &cluster_wide {
        let gone = kubectl(&["get", object]);
        assert!(!gone.status.success(), "{object} left behind by uninstall");
    }
    for plural in CRD_PLURALS {
        ok(
            kubectl(&["get", "crd", &format!("{plural}.cce.upgradewatch.io")]),
            "the CRDs stay after uninstall",
        );
    }

    crds_owned_by_the_release(&chart, &crds);
}

/// `crds.enabled` on a plane of its own (CRDs are cluster-wide; the shared plane's serve
/// every other test): a release switched to it takes over CRDs applied by hand the way the
/// chart's README says, upgrades them with the chart, keeps them when uninstalled
/// (`crds.keep`), and deletes them with `crds.keep=false`. `chart` is the registry's, `crds`
/// its files/crds/.
fn crds_owned_by_the_release(chart: &str, crds: &str) {
    let plane = common::plane::PrivatePlane::up("cce-uw-chart-crds-");
    let kubeconfig = plane.kubeconfig().display().to_string();
    let on_plane = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--kubeconfig".to_string(), kubeconfig.clone()]);
        all
    };
    let kubectl_p = |args: &[&str]| {
        let all = on_plane(args);
        kubectl(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let helm_p = |args: &[&str]| {
        let all = on_plane(args);
        helm(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let from_registry = ["--version", "0.1.0", "--plain-http"];
    let live_crd = |plural: &str| -> Value {
        serde_json::from_str(&ok(
            kubectl_p(&[
                "get",
                "crd",
                &format!("{plural}.cce.upgradewatch.io"),
                "-o",
                "json",
            ]),
            "get CRD",
        ))
        .expect("CRD JSON")
    };

    // A release of the default values, with the CRDs applied by hand as NOTES.txt says.
    ok(
        kubectl_p(&["apply", "--server-side", "--force-conflicts", "-f", crds]),
        "apply files/crds/",
    );
    let mut install = vec![
        "install",
        "owner",
        chart,
        "-n",
        "crd-owner",
        "--create-namespace",
    ];
    install.extend(from_registry);
    ok(helm_p(&install), "helm install (default values)");

    // Helm refuses CRDs it did not create...
    let mut enable = vec![
        "upgrade",
        "owner",
        chart,
        "-n",
        "crd-owner",
        "--reuse-values",
        "--set",
        "crds.enabled=true",
    ];
    enable.extend(from_registry);
    let refused = helm_p(&enable);
    assert!(!refused.status.success(), "Helm took over CRDs unasked");
    assert!(
        text(&refused.stderr).contains("invalid ownership metadata"),
        "{}",
        text(&refused.stderr)
    );
    // ...until they are marked as the release's, with the commands of the chart's README.
    let readme = std::fs::read_to_string(repo_path(&format!("{CHART}/README.md")))
        .expect("the chart's README.md");
    let adopt = readme
        .split("```sh\n")
        .filter_map(|block| block.split_once("```").map(|(code, _)| code))
        .find(|code| code.contains("meta.helm.sh/release-name"))
        .expect("the chart's README shows how to mark the CRDs as a release's")
        .replace("RELEASE", "owner")
        .replace("NAMESPACE", "crd-owner");
    let kubectl_bin = std::env::var("CCE_UW_KUBECTL").expect("CCE_UW_KUBECTL");
    let kubectl_dir = std::path::Path::new(&kubectl_bin)
        .parent()
        .expect("kubectl's directory");
    let path = format!(
        "{}:{}",
        kubectl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    ok(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &adopt])
            .env("KUBECONFIG", &kubeconfig)
            .env("PATH", path)
            .output()
            .expect("run bash"),
        "the README's commands marking the CRDs",
    );
    ok(helm_p(&enable), "helm upgrade --set crds.enabled=true");
    let manifest = ok(
        helm_p(&["get", "manifest", "owner", "-n", "crd-owner"]),
        "helm get manifest",
    );
    assert_eq!(
        manifest.matches("kind: CustomResourceDefinition").count(),
        CRD_PLURALS.len(),
        "{manifest}"
    );
    for plural in CRD_PLURALS {
        let crd = live_crd(plural);
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{plural}"
        );
        assert_eq!(
            crd["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "owner"
        );
    }

    // Upgraded with the chart, unlike crds/: a new label reaches them.
    let mut relabel = vec![
        "upgrade",
        "owner",
        chart,
        "-n",
        "crd-owner",
        "--reuse-values",
        "--set",
        "commonLabels.crd-revision=two",
    ];
    relabel.extend(from_registry);
    ok(helm_p(&relabel), "helm upgrade with a new common label");
    for plural in CRD_PLURALS {
        assert_eq!(
            live_crd(plural)["metadata"]["labels"]["crd-revision"],
            "two",
            "{plural} not upgraded with the chart"
        );
    }

    // Kept when the release goes.
    let uninstalled = ok(
        helm_p(&["uninstall", "owner", "-n", "crd-owner"]),
        "helm uninstall",
    );
    assert!(uninstalled.contains("resource policy"), "{uninstalled}");
    for plural in CRD_PLURALS {
        assert_eq!(live_crd(plural)["spec"]["group"], "cce.upgradewatch.io");
    }

    // Another release takes them over (--take-ownership, as NOTES.txt says); turned off,
    // crds.keep lets its uninstall delete them. (Taking over keeps the annotation it finds:
    // Helm removes only what its own last render had.)
    let mut take = vec![
        "install",
        "other",
        chart,
        "-n",
        "crd-other",
        "--create-namespace",
        "--set",
        "crds.enabled=true",
        "--take-ownership",
    ];
    take.extend(from_registry);
    ok(helm_p(&take), "helm install --take-ownership");
    let mut unkeep = vec![
        "upgrade",
        "other",
        chart,
        "-n",
        "crd-other",
        "--reuse-values",
        "--set",
        "crds.keep=false",
    ];
    unkeep.extend(from_registry);
    ok(helm_p(&unkeep), "helm upgrade --set crds.keep=false");
    for plural in CRD_PLURALS {
        let crd = live_crd(plural);
        assert_eq!(
            crd["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "other"
        );
        assert!(
            crd["metadata"]["annotations"]
                .get("helm.sh/resource-policy")
                .is_none(),
            "{plural}: {:#}",
            crd["metadata"]
        );
    }
    ok(
        helm_p(&["uninstall", "other", "-n", "crd-other"]),
        "helm uninstall",
    );
    for plural in CRD_PLURALS {
        let name = format!("crd/{plural}.cce.upgradewatch.io");
        ok(
            kubectl_p(&["wait", "--for=delete", &name, "--timeout=30s"]),
            "CRD deleted with crds.keep=false",
        );
    }
    plane.down();
}

// ------------------------------------------------------------------ the operator as the chart's ServiceAccount

/// The operator run as the chart's pod would run it: the installed Deployment's args and
/// environment (downward API values filled in), a token of the chart's ServiceAccount, and
/// nothing else from the test's environment. Two local differences: the admin server
/// listens on a free loopback port, and the CA bundle is the simulator's file.
struct ChartOperator {
    operator: Operator,
    /// Holds the ServiceAccount's kubeconfig.
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for ChartOperator {
    type Target = Operator;

    fn deref(&self) -> &Operator {
        &self.operator
    }
}

impl std::ops::DerefMut for ChartOperator {
    fn deref_mut(&mut self) -> &mut Operator {
        &mut self.operator
    }
}

impl ChartOperator {
    fn start(release_ns: &str, release: &str, pod_name: &str, sim: &Sim) -> ChartOperator {
        let dir = tempfile::tempdir().expect("tempdir");
        let full = fullname(release);
        let deployment: Value = serde_json::from_str(&ok(
            kubectl(&[
                "get",
                "-n",
                release_ns,
                &format!("deployment/{full}"),
                "-o",
                "json",
            ]),
            "get Deployment",
        ))
        .expect("Deployment JSON");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .expect("serviceAccountName");
        let args: Vec<String> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("arg").to_string())
            .collect();

        let mut env: Vec<(String, String)> = Vec::new();
        for e in container["env"].as_array().expect("env") {
            let name = e["name"].as_str().expect("name").to_string();
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else {
                match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.namespace") => release_ns.to_string(),
                    Some("metadata.name") => pod_name.to_string(),
                    Some("spec.serviceAccountName") => sa.to_string(),
                    other => panic!("unexpected env source for {name}: {other:?}"),
                }
            };
            env.push((name, value));
        }
        for (name, value) in [
            ("ADMIN_LISTEN", "127.0.0.1:0".to_string()),
            ("CA_BUNDLE", sim.ca_bundle().display().to_string()),
        ] {
            env.retain(|(n, _)| n != name);
            env.push((name.to_string(), value));
        }

        let kubeconfig = service_account_kubeconfig(dir.path(), release_ns, sa);
        env.push(("KUBECONFIG".into(), kubeconfig.display().to_string()));

        ChartOperator {
            operator: Operator::start_clean(release_ns, args, env),
            _dir: dir,
        }
    }

    /// No request of the operator was refused. At debug level (the chart's
    /// operator.logLevel here) the client logs every response's status code.
    fn assert_no_forbidden(&self) {
        let refused = self.refused();
        assert!(
            refused.is_empty(),
            "refused requests:\n{}",
            refused.join("\n")
        );
    }

    /// The log lines of refused requests (and of anything forbidden), once enough responses
    /// were logged to judge.
    fn refused(&self) -> Vec<String> {
        let log = self.log_text();
        let codes = log.matches("\"http.status_code\":").count();
        assert!(codes > 10, "too few responses logged to judge:\n{log}");
        log.lines()
            .filter(|l| {
                l.contains("\"http.status_code\":403")
                    || l.contains("\"http.status_code\":401")
                    || l.to_ascii_lowercase().contains("forbidden")
            })
            .map(String::from)
            .collect()
    }
}

/// A kubeconfig in `dir` for the plane's server and CA, authenticated only by a fresh token
/// of the ServiceAccount `ns/sa` (the API server's own audience, as a pod's token). The
/// token goes to the file only, never to the test's output.
fn service_account_kubeconfig(dir: &std::path::Path, ns: &str, sa: &str) -> std::path::PathBuf {
    let token = ok(
        kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"]),
        "kubectl create token",
    );
    let path = dir.join(format!("{ns}-{sa}.kubeconfig"));
    let kubeconfig = common::plane::kubeconfig_with_user(json!({"token": token.trim()}));
    std::fs::write(&path, kubeconfig).expect("kubeconfig");
    path
}

/// Installs the chart with settings for a quick local run (the simulator on 127.0.0.1,
/// short retries) plus `extra`.
fn install_for_operator(release: &str, ns: &str, extra: &[&str]) {
    let chart = chart();
    let mut args = vec![
        "install",
        release,
        chart.as_str(),
        "--namespace",
        ns,
        "--set-json",
        "operator.allowedCceEndpoints=[\"127.0.0.1:*\"]",
        "--set-json",
        "operator.allowedIamEndpoints=[\"127.0.0.1:*\"]",
        "--set",
        "operator.logLevel=debug",
        "--set",
        "operator.terminalResync=5s",
        "--set",
        "operator.backoffBase=1s",
        "--set",
        "operator.backoffCap=4s",
        "--set",
        "operator.permanentRetry=5s",
        "--set",
        "operator.cceRequestTimeout=2s",
    ];
    args.extend_from_slice(extra);
    ok(helm(&args), "helm install");
}

/// A watch labelled `labels` of `workflow`, polling every 5 s through the CCEAccount that
/// reaches `sim` with the marked Secret `cce` of `ns` (created unless it exists).
async fn create_watch(
    client: &Client,
    ns: &str,
    name: &str,
    sim: &Sim,
    cluster: &str,
    workflow: &str,
    labels: Value,
) {
    let account = common::sim_account(client, ns, sim, "cce").await;
    let watch: UpgradeWorkflowWatch = serde_json::from_value(json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "accountRef": {"kind": "CCEAccount", "name": account},
            "clusterID": cluster,
            "upgradeWorkflowID": workflow,
            "pollInterval": "5s",
        },
    }))
    .expect("watch");
    Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &watch)
        .await
        .expect("create watch");
}

/// `kubectl auth can-i VERB RESOURCE ARGS... --as SA` is `expected`.
fn assert_can(sa: &str, expected: bool, args: &[&str]) {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--as", sa]);
    let out = kubectl(&all);
    let answer = text(&out.stdout).trim().to_string();
    assert_eq!(
        answer,
        if expected { "yes" } else { "no" },
        "kubectl auth can-i {} --as {sa}: {}",
        args.join(" "),
        text(&out.stderr)
    );
}

fn live(ns: &str, name: &str) -> Value {
    serde_json::from_str(&ok(
        kubectl(&["get", "-n", ns, &format!("uww/{name}"), "-o", "json"]),
        "get watch",
    ))
    .expect("watch JSON")
}

#[tokio::test]
async fn in_namespaced_mode_the_operator_with_the_chart_service_account_reaches_ready_and_can_do_no_more()
 {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = setup("chart-rbac-namespaced").await;
    let team = common::namespace(&client, "chart-rbac-team").await;
    let other = common::namespace(&client, "chart-rbac-other").await;
    let release = ns.clone();
    let full = fullname(&release);
    install_for_operator(
        &release,
        &ns,
        &["--set-json", &format!("watchNamespaces=[\"{team}\"]")],
    );
    common::builtin_secret(&client, &team).await;
    common::builtin_secret(&client, &other).await;

    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--speed", "30"])
        .start();
    let pod = format!("{full}-7d9f8b6c4-x2x9z");
    let op = ChartOperator::start(&ns, &release, &pod, &sim);
    create_watch(
        &client,
        &team,
        "up",
        &sim,
        &success.cluster,
        &success.workflow,
        json!({}),
    )
    .await;

    let done = wait_watch(&client, &team, "up", 90, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        done.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Success")
    );
    let events = common::wait_events(&client, &team, "up", 30, |e| {
        common::count(e, "UpgradeSucceeded") == 1
    })
    .await;
    assert_eq!(common::count(&events, "WorkflowObserved"), 1, "{events:#?}");

    // Ready, leader on the chart's Lease, and never refused.
    let admin = op.admin_url();
    let http = reqwest::Client::new();
    let readyz = http
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(readyz.status(), 200);
    let metrics = http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(metrics.contains("cce_upgrade_watch_leader 1"), "{metrics}");
    let holder = ok(
        kubectl(&[
            "get",
            "-n",
            &ns,
            &format!("lease/{full}"),
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]),
        "get Lease",
    );
    assert_eq!(holder, pod);
    op.assert_no_forbidden();

    // What GitOps sees: the Argo CD health check and the kubectl wait recipes.
    let (health, message) = common::argocd::health(&live(&team, "up"));
    assert_eq!(health, "Healthy", "{message}");
    ok(
        kubectl(&[
            "wait",
            "-n",
            &team,
            "uww/up",
            "--for=condition=Ready",
            "--timeout=10s",
        ]),
        "kubectl wait --for=condition=Ready",
    );
    ok(
        kubectl(&[
            "wait",
            "-n",
            &team,
            "uww/up",
            "--timeout=10s",
            "--for=jsonpath={.status.conditions[?(@.type==\"Reconciling\")].status}=False",
        ]),
        "the gate's first wait",
    );
    ok(
        kubectl(&[
            "wait",
            "-n",
            &team,
            "uww/up",
            "--for=condition=Ready",
            "--timeout=0s",
        ]),
        "the gate's check",
    );
    // The troubleshooting recipe: one event per transition, in order.
    let listed = ok(
        kubectl(&["events", "-n", &team, "--for", "uww/up"]),
        "kubectl events --for",
    );
    assert!(
        listed.contains("WorkflowObserved") && listed.contains("TaskSucceeded"),
        "{listed}"
    );

    // ...and no more than that.
    let sa = format!("system:serviceaccount:{ns}:{full}");
    let uww = "upgradeworkflowwatches.cce.upgradewatch.io";
    let account = "cceaccounts.cce.upgradewatch.io";
    let cluster_account = "clustercceaccounts.cce.upgradewatch.io";
    let events_res = "events.events.k8s.io";
    let lease = format!("leases.coordination.k8s.io/{full}");
    for args in [
        vec!["list", uww, "-n", &team],
        vec!["watch", uww, "-n", &team],
        vec!["patch", uww, "--subresource=status", "-n", &team],
        vec!["list", account, "-n", &team],
        vec!["watch", account, "-n", &team],
        vec!["patch", account, "--subresource=status", "-n", &team],
        vec!["create", events_res, "-n", &team],
        vec!["get", "secrets", "-n", &team],
        vec!["list", "secrets", "-n", &team],
        vec!["watch", "secrets", "-n", &team],
        // ClusterCCEAccounts: cluster-wide in namespaced mode too, with their Secrets in the
        // release namespace and the namespace labels their conditions select.
        vec!["list", cluster_account],
        vec!["watch", cluster_account],
        vec!["patch", cluster_account, "--subresource=status"],
        vec!["list", "namespaces"],
        vec!["watch", "namespaces"],
        vec!["get", "secrets", "-n", &ns],
        vec!["list", "secrets", "-n", &ns],
        vec!["watch", "secrets", "-n", &ns],
        vec!["get", &lease, "-n", &ns],
        vec!["patch", &lease, "-n", &ns],
        vec!["create", "leases.coordination.k8s.io", "-n", &ns],
    ] {
        assert_can(&sa, true, &args);
    }
    // The watches an UpgradeWatchSet generates: created, applied and deleted (the operator
    // changes only those a set labels and owns).
    for verb in ["create", "patch", "delete"] {
        assert_can(&sa, true, &[verb, uww, "-n", &team]);
        assert_can(&sa, false, &[verb, uww, "-n", &other]);
    }
    for args in [
        // Other specs are the users': no update of watches, nothing on accounts.
        vec!["update", uww, "-n", &team],
        vec!["get", uww, "-n", &team],
        vec!["update", uww, "--subresource=status", "-n", &team],
        vec!["create", account, "-n", &team],
        vec!["patch", account, "-n", &team],
        vec!["delete", account, "-n", &team],
        vec!["update", account, "--subresource=status", "-n", &team],
        vec!["create", cluster_account],
        vec!["patch", cluster_account],
        vec!["delete", cluster_account],
        vec!["update", cluster_account, "--subresource=status"],
        vec!["patch", "namespaces"],
        vec!["create", "namespaces"],
        // Nothing in namespaces it does not serve.
        vec!["list", uww, "-n", &other],
        vec!["list", uww, "--all-namespaces"],
        vec!["watch", uww, "-n", &other],
        vec!["patch", uww, "--subresource=status", "-n", &other],
        vec!["list", account, "-n", &other],
        vec!["list", account, "--all-namespaces"],
        vec!["patch", account, "--subresource=status", "-n", &other],
        vec!["create", events_res, "-n", &other],
        vec!["get", "secrets", "-n", &other],
        vec!["list", "secrets", "-n", &other],
        vec!["watch", "secrets", "-n", &other],
        vec!["list", "secrets", "--all-namespaces"],
        // No ServiceAccount tokens: a namespace's owner grants them one by one.
        vec![
            "create",
            "serviceaccounts",
            "--subresource=token",
            "-n",
            &team,
        ],
        // Secrets are only read.
        vec!["create", "secrets", "-n", &team],
        vec!["update", "secrets", "-n", &team],
        vec!["delete", "secrets", "-n", &team],
        // No workloads.
        vec!["create", "pods", "-n", &team],
        vec!["create", "pods", "-n", &ns],
        vec!["create", "deployments.apps", "-n", &ns],
        // Only its own Lease, and never update or delete it.
        vec!["update", &lease, "-n", &ns],
        vec!["delete", &lease, "-n", &ns],
        vec![
            "patch",
            "leases.coordination.k8s.io/someone-else",
            "-n",
            &ns,
        ],
        vec!["list", "leases.coordination.k8s.io", "-n", &ns],
        // No legacy core/v1 events, no RBAC.
        vec!["create", "events", "-n", &team],
        vec!["create", "roles.rbac.authorization.k8s.io", "-n", &team],
    ] {
        assert_can(&sa, false, &args);
    }
    ok(
        helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
}

// ------------------------------------------------------------------ the people around the operator

/// The verbs of every rule of every Role and ClusterRole in `objs`, by resource.
fn granted_resources(objs: &[Value]) -> Vec<String> {
    objs.iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .flat_map(|o| o["rules"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["resources"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(String::from))
        .collect()
}

/// `kubectl ARGS...` as `user` (impersonated by the plane's administrator).
fn kubectl_as(user: &str, args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    all.extend(["--as", user]);
    kubectl(&all)
}

/// The user who owns namespace `ns`: bound there to the built-in admin role, by the
/// cluster's administrator. The plane's built-in roles are aggregated first, as a
/// controller manager would have.
async fn namespace_owner(client: &Client, ns: &str) -> String {
    common::plane::aggregate_cluster_roles(client).await;
    let owner = format!("{ns}-owner");
    bind_user(ns, &owner, "admin");
    owner
}

/// A RoleBinding in `ns` of the ClusterRole `role` to `user`.
fn bind_user(ns: &str, user: &str, role: &str) {
    ok(
        kubectl(&[
            "create",
            "rolebinding",
            &format!("{user}-{role}"),
            "-n",
            ns,
            &format!("--clusterrole={role}"),
            &format!("--user={user}"),
        ]),
        "create RoleBinding",
    );
}

/// The namespace owner's grant, as NOTES.txt of `release` words it: its kubectl commands
/// run as `owner`, for the ServiceAccount `sa` of `ns`.
fn grant_token_as_notes_say(release: &str, release_ns: &str, owner: &str, ns: &str, sa: &str) {
    let notes = ok(
        helm(&["get", "notes", release, "--namespace", release_ns]),
        "helm get notes",
    );
    let joined = notes.replace("\\\n", " ");
    // The Role, then its RoleBinding.
    let commands: Vec<Vec<String>> = joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("kubectl -n NAMESPACE create role"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|w| w.replace("NAMESPACE", ns).replace("=SA", &format!("={sa}")))
                .collect()
        })
        .collect();
    assert_eq!(
        commands.len(),
        2,
        "NOTES.txt shows no Role and RoleBinding:\n{notes}"
    );
    for command in commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        ok(kubectl_as(owner, &args), "the namespace owner's grant");
    }
}

/// `kubectl create token` as the ServiceAccount whose kubeconfig is `kubeconfig`; whether
/// the API server issued one. The token itself is dropped unread.
fn mints_token(kubeconfig: &std::path::Path, ns: &str, sa: &str) -> Result<(), String> {
    let kubeconfig = kubeconfig.display().to_string();
    let out = kubectl(&[
        "--kubeconfig",
        &kubeconfig,
        "create",
        "token",
        sa,
        "-n",
        ns,
        "--audience",
        AUDIENCE,
    ]);
    if out.status.success() {
        assert!(!out.stdout.is_empty(), "a token request answered nothing");
        Ok(())
    } else {
        Err(text(&out.stderr))
    }
}

/// No value makes the chart grant the operator a ServiceAccount token, in any namespace or
/// mode: workload identity is the namespace owner's grant, one ServiceAccount at a time.
#[tokio::test]
async fn the_chart_grants_the_operator_no_service_account_tokens_in_either_mode() {
    let (client, ns) = setup("chart-no-tokens").await;
    let team = common::namespace(&client, "chart-no-tokens-team").await;
    let namespaced = common::namespace(&client, "chart-no-tokens-nsd").await;
    let watched = format!("watchNamespaces=[\"{team}\"]");
    for args in [
        vec![],
        vec!["-f", &non_default_values()],
        vec!["--set-json", &watched],
        vec!["--set-json", "workloadIdentity.audiences=[\"iam-client\"]"],
    ] {
        let objs = objects(&render("t", &ns, &args));
        let resources = granted_resources(&objs);
        assert!(
            !resources.iter().any(|r| r.starts_with("serviceaccounts")),
            "{args:?}: {resources:?}"
        );
    }

    install_for_operator(&ns, &ns, &[]);
    install_for_operator(&namespaced, &namespaced, &["--set-json", &watched]);
    service_account(&client, &team, "watcher").await;
    let dir = tempfile::tempdir().expect("tempdir");
    for release_ns in [&ns, &namespaced] {
        let full = fullname(release_ns);
        let sa = format!("system:serviceaccount:{release_ns}:{full}");
        for namespace in [team.as_str(), release_ns.as_str(), "kube-system"] {
            for resource in [
                "serviceaccounts",
                "serviceaccounts/watcher",
                &format!("serviceaccounts/{full}"),
            ] {
                assert_can(
                    &sa,
                    false,
                    &["create", resource, "--subresource=token", "-n", namespace],
                );
            }
        }
        assert_can(
            &sa,
            false,
            &[
                "create",
                "serviceaccounts",
                "--subresource=token",
                "--all-namespaces",
            ],
        );
        // And with its own token, the API server refuses it.
        let kubeconfig = service_account_kubeconfig(dir.path(), release_ns, &full);
        let refused = mints_token(&kubeconfig, &team, "watcher")
            .expect_err("the chart's operator minted a token without a grant");
        assert!(refused.contains("forbidden"), "{refused}");
    }
    for release_ns in [&ns, &namespaced] {
        ok(
            helm(&["uninstall", release_ns, "--namespace", release_ns]),
            "helm uninstall",
        );
    }
}

/// The namespace owner's Role (NOTES.txt's commands, run as the owner) lets the operator
/// request the token of exactly the ServiceAccount it names: not another of the namespace,
/// not that name elsewhere.
#[tokio::test]
async fn a_namespace_owners_role_lets_the_operator_mint_that_service_accounts_token_and_no_other() {
    let (client, ns) = setup("chart-token-grant").await;
    let team = common::namespace(&client, "chart-token-grant-team").await;
    let other = common::namespace(&client, "chart-token-grant-other").await;
    let release = ns.clone();
    let full = fullname(&release);
    install_for_operator(
        &release,
        &ns,
        &["--set-json", &format!("watchNamespaces=[\"{team}\"]")],
    );
    for namespace in [&team, &other] {
        for name in ["watcher", "bystander"] {
            service_account(&client, namespace, name).await;
        }
    }
    let owner = namespace_owner(&client, &team).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = service_account_kubeconfig(dir.path(), &ns, &full);
    assert!(mints_token(&kubeconfig, &team, "watcher").is_err());

    grant_token_as_notes_say(&release, &ns, &owner, &team, "watcher");

    let sa = format!("system:serviceaccount:{ns}:{full}");
    let token = |namespace: &str, name: &str| {
        vec![
            "create".to_string(),
            format!("serviceaccounts/{name}"),
            "--subresource=token".to_string(),
            "-n".to_string(),
            namespace.to_string(),
        ]
    };
    let can = |args: Vec<String>, expected: bool| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_can(&sa, expected, &args);
    };
    can(token(&team, "watcher"), true);
    can(token(&team, "bystander"), false);
    can(token(&other, "watcher"), false);
    // No more about ServiceAccounts than that one token.
    for verb in ["get", "list", "update", "delete"] {
        can(
            vec![
                verb.into(),
                "serviceaccounts/watcher".into(),
                "-n".into(),
                team.clone(),
            ],
            false,
        );
    }
    // The real requests, with the operator's own token.
    mints_token(&kubeconfig, &team, "watcher").expect("the granted token");
    for (namespace, name) in [(&team, "bystander"), (&other, "watcher")] {
        let refused =
            mints_token(&kubeconfig, namespace, name).expect_err("a token the owner did not grant");
        assert!(refused.contains("forbidden"), "{refused}");
    }
    // The owner of one namespace grants nothing in another.
    let elsewhere = kubectl_as(
        &owner,
        &[
            "-n",
            &other,
            "create",
            "role",
            "cce-upgrade-watch-token",
            "--verb=create",
            "--resource=serviceaccounts/token",
            "--resource-name=watcher",
        ],
    );
    assert!(!elsewhere.status.success());
    assert!(
        text(&elsewhere.stderr).contains("forbidden"),
        "{}",
        text(&elsewhere.stderr)
    );
    ok(
        helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
}

/// Workload identity end to end with the operator as the chart's ServiceAccount: the
/// account and its watch say TokenRequestNotGranted, naming the Role the owner must write,
/// until the owner writes it; then the watch syncs through IAM's temporary keys and the
/// upgrade reaches Ready.
#[tokio::test]
async fn a_workload_identity_account_is_refused_its_token_until_the_namespace_owner_grants_it() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = setup("chart-identity").await;
    let team = common::namespace(&client, "chart-identity-team").await;
    let release = ns.clone();
    let full = fullname(&release);
    let iam = PlaneIam::new(&client).await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--speed", "30"])
        .iam(&iam)
        .start();
    service_account(&client, &team, "watcher").await;
    sim.add_iam_rule(&rule_for(&team, "watcher")).await;
    install_for_operator(
        &release,
        &ns,
        &[
            "--set-json",
            &format!("watchNamespaces=[\"{team}\"]"),
            "--set-json",
            &format!("workloadIdentity.audiences=[\"{AUDIENCE}\"]"),
            "--set",
            &format!("workloadIdentity.iamEndpoint={}", sim.iam_endpoint()),
        ],
    );
    let op = ChartOperator::start(&ns, &release, &format!("{full}-6b7c9d8f5-k3j8m"), &sim);
    common::watch::identity_account(&client, &team, &sim, "keyless", "watcher").await;
    common::watch::account_watch(
        &client,
        &team,
        "keyless",
        &success.cluster,
        Some(&success.workflow),
        json!({"kind": "CCEAccount", "name": "keyless"}),
    )
    .await;

    // Refused, and told whose grant is missing: the Role of NOTES.txt, for the operator's
    // ServiceAccount as the downward API named it.
    let refused = wait_watch(
        &client,
        &team,
        "keyless",
        60,
        "TokenRequestNotGranted",
        |w| cond(w, "Synced").is_some_and(|c| c.0 == "False" && c.1 == "TokenRequestNotGranted"),
    )
    .await;
    let message = refused
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    for needle in [
        format!("ServiceAccount {team}/watcher"),
        "serviceaccounts/token".to_string(),
        "resourceNames [watcher]".to_string(),
        format!("ServiceAccount {ns}/{full}"),
    ] {
        assert!(message.contains(&needle), "{needle:?} not in {message:?}");
    }
    let account = wait_account(&client, &team, "keyless", 60, "account refused", |a| {
        account_cond(a.status.as_ref(), "Ready")
            .is_some_and(|c| c.0 == "False" && c.1 == "TokenRequestNotGranted")
    })
    .await;
    let said = account_cond(account.status.as_ref(), "Ready").map(|c| c.2);
    assert!(
        said.as_deref()
            .is_some_and(|m| m.contains(&format!("ServiceAccount {ns}/{full}"))),
        "{said:?}"
    );
    assert!(
        sim.requests_for(&success.workflow).await.is_empty(),
        "CCE was called without credentials"
    );

    let owner = namespace_owner(&client, &team).await;
    let granted = jiff::Timestamp::now();
    grant_token_as_notes_say(&release, &ns, &owner, &team, "watcher");

    wait_watch(&client, &team, "keyless", 60, "Synced", |w| {
        cond(w, "Synced").is_some_and(|c| c.0 == "True")
    })
    .await;
    let done = wait_watch(&client, &team, "keyless", 90, "Ready", |w| {
        cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        done.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Success")
    );
    // The account's own check runs every minute: it turns Ready on its own, counting the
    // watch.
    wait_account(&client, &team, "keyless", 90, "account Ready", |a| {
        account_cond(a.status.as_ref(), "Ready").is_some_and(|c| c.0 == "True")
            && a.status.as_ref().and_then(|s| s.watches) == Some(1)
    })
    .await;
    // Every CCE call was signed with keys IAM issued for the ServiceAccount's token.
    let issued: Vec<String> = sim.iam_issued().await["credentials"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["id"].as_str().map(String::from))
        .collect();
    let calls = sim.requests_for(&success.workflow).await;
    assert!(!calls.is_empty());
    for call in &calls {
        let ak = call["credential"].as_str().unwrap_or_default();
        assert!(
            issued.iter().any(|k| k == ak),
            "signed with {ak}, not an issued key"
        );
    }
    // The only refusals were the requests for this token before the grant, and the API
    // server's refusal of each token minted for IAM (the operator's check that the
    // audience is not the API server's own, with that token).
    let refused = op.refused();
    assert!(
        !refused.is_empty(),
        "the refused token requests were not logged"
    );
    let unexpected: Vec<&String> = refused
        .iter()
        .filter(|l| {
            let line: Value = serde_json::from_str(l).unwrap_or_default();
            let before = line["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t < granted);
            let this_token = l.contains(&team)
                && l.contains("serviceaccounts")
                && l.contains("watcher")
                && l.contains("token");
            let audience_check = l.contains("\"http.status_code\":401")
                && l.contains("/apis/authentication.k8s.io/v1/selfsubjectreviews");
            !((before && this_token) || audience_check)
        })
        .collect();
    assert!(unexpected.is_empty(), "refused requests:\n{unexpected:#?}");
    let log = op.log_text();
    assert!(
        !log.contains("eyJhbGci"),
        "a token reached the operator's log"
    );
    ok(
        helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
}

/// The aggregated roles, as users meet them: the built-in edit role in a namespace manages
/// its watches and CCEAccounts, view reads them, and neither reaches ClusterCCEAccounts
/// (administrators only) or the status the operator writes.
#[tokio::test]
async fn users_of_the_built_in_edit_and_view_roles_manage_and_read_watches_and_accounts_but_not_cluster_accounts()
 {
    let (client, ns) = setup("chart-people").await;
    let team = common::namespace(&client, "chart-people-team").await;
    let other = common::namespace(&client, "chart-people-other").await;
    let release = ns.clone();
    install_for_operator(
        &release,
        &ns,
        &["--set-json", &format!("watchNamespaces=[\"{team}\"]")],
    );
    common::plane::aggregate_cluster_roles(&client).await;
    let (editor, viewer, admin) = (
        format!("{team}-editor"),
        format!("{team}-viewer"),
        format!("{team}-admin"),
    );
    bind_user(&team, &editor, "edit");
    bind_user(&team, &viewer, "view");
    bind_user(&team, &admin, "admin");

    let account = json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "CCEAccount",
        "metadata": {"name": "prod", "namespace": team},
        "spec": {"region": "ap-southeast-1", "projectID": "0123456789abcdef0123456789abcdef",
                 "credentials": {"secretRef": {"name": "cce"}}},
    });
    let watch = json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": "prod-upgrade", "namespace": team},
        "spec": {"accountRef": {"kind": "CCEAccount", "name": "prod"},
                 "clusterID": "b4b9e60f-8aa2-11ee-af09-0255ac10004f"},
    });
    let cluster_account = json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "ClusterCCEAccount",
        "metadata": {"name": format!("{team}-shared")},
        "spec": {"region": "ap-southeast-1", "projectID": "0123456789abcdef0123456789abcdef",
                 "credentials": {"operatorDefaults": {}},
                 "conditions": [{"namespaces": [team]}]},
    });
    let as_user = |user: &str, verb: &[&str], object: &Value| {
        let mut args = verb.to_vec();
        args.extend(["-f", "-", "--as", user]);
        kubectl_stdin(&args, &object.to_string())
    };

    // The editor creates, changes and deletes the namespace's own.
    for object in [&account, &watch] {
        ok(as_user(&editor, &["create"], object), "create as an editor");
    }
    ok(
        kubectl_as(
            &editor,
            &["-n", &team, "label", "uww/prod-upgrade", "team=platform"],
        ),
        "label a watch as an editor",
    );
    let forbidden = |out: std::process::Output, what: &str| {
        assert!(!out.status.success(), "{what} was allowed");
        assert!(
            text(&out.stderr).contains("forbidden"),
            "{what}: {}",
            text(&out.stderr)
        );
    };
    // Neither the shared accounts nor anything of another namespace.
    forbidden(
        as_user(&editor, &["create"], &cluster_account),
        "a ClusterCCEAccount by an editor",
    );
    forbidden(
        as_user(&admin, &["create"], &cluster_account),
        "a ClusterCCEAccount by a namespace admin",
    );
    let mut elsewhere = watch.clone();
    elsewhere["metadata"]["namespace"] = json!(other);
    forbidden(
        as_user(&editor, &["create"], &elsewhere),
        "a watch of another namespace",
    );

    // The viewer reads them, and changes nothing.
    let listed = ok(
        kubectl_as(
            &viewer,
            &[
                "-n",
                &team,
                "get",
                "cceaccounts,upgradeworkflowwatches",
                "-o",
                "name",
            ],
        ),
        "list as a viewer",
    );
    for name in [
        "cceaccount.cce.upgradewatch.io/prod",
        "upgradeworkflowwatch.cce.upgradewatch.io/prod-upgrade",
    ] {
        assert!(listed.lines().any(|l| l == name), "{name} not in {listed}");
    }
    forbidden(
        kubectl_as(&viewer, &["-n", &team, "delete", "uww/prod-upgrade"]),
        "a delete by a viewer",
    );
    let mut second = account.clone();
    second["metadata"]["name"] = json!("staging");
    forbidden(
        as_user(&viewer, &["create"], &second),
        "an account by a viewer",
    );
    forbidden(
        kubectl_as(&viewer, &["get", "clustercceaccounts"]),
        "listing ClusterCCEAccounts as a viewer",
    );

    let uww = "upgradeworkflowwatches.cce.upgradewatch.io";
    let accounts = "cceaccounts.cce.upgradewatch.io";
    let cluster_accounts = "clustercceaccounts.cce.upgradewatch.io";
    for user in [&editor, &admin] {
        for resource in [uww, accounts] {
            for verb in [
                "get",
                "list",
                "watch",
                "create",
                "update",
                "patch",
                "delete",
                "deletecollection",
            ] {
                assert_can(user, true, &[verb, resource, "-n", &team]);
            }
            // The status is the operator's.
            assert_can(
                user,
                false,
                &["patch", resource, "--subresource=status", "-n", &team],
            );
            assert_can(user, false, &["create", resource, "-n", &other]);
        }
    }
    for resource in [uww, accounts] {
        for verb in ["get", "list", "watch"] {
            assert_can(&viewer, true, &[verb, resource, "-n", &team]);
        }
        for verb in ["create", "update", "patch", "delete"] {
            assert_can(&viewer, false, &[verb, resource, "-n", &team]);
        }
    }
    for user in [&editor, &viewer, &admin] {
        for verb in ["get", "list", "create", "patch", "delete"] {
            assert_can(user, false, &[verb, cluster_accounts]);
        }
    }
    ok(
        kubectl_as(
            &editor,
            &["-n", &team, "delete", "uww/prod-upgrade", "cceaccount/prod"],
        ),
        "delete as an editor",
    );
    ok(
        helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
}

/// Artifact Hub's view of the chart: every CRD the chart ships is listed, and each example
/// is an object those CRDs accept.
#[tokio::test]
async fn chart_yaml_lists_every_crd_and_its_examples_pass_a_server_dry_run() {
    let (_client, ns) = setup("chart-crd-examples").await;
    let chart: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_path(&format!("{CHART}/Chart.yaml"))).expect("Chart.yaml"),
    )
    .expect("Chart.yaml YAML");
    let annotation = |key: &str| -> Vec<Value> {
        serde_yaml::from_str(chart["annotations"][key].as_str().expect(key)).expect(key)
    };
    let mut listed: Vec<String> = annotation("artifacthub.io/crds")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect();
    listed.sort();
    let mut shipped: Vec<String> = std::fs::read_dir(repo_path(&format!("{CHART}/files/crds")))
        .expect("files/crds/")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".yaml")
                .to_string()
        })
        .collect();
    shipped.sort();
    assert_eq!(listed, shipped);

    let mut examples = annotation("artifacthub.io/crdsExamples");
    let kinds: Vec<&str> = examples.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["CCEAccount", "ClusterCCEAccount", "UpgradeWorkflowWatch"]
    );
    for example in &mut examples {
        // In this test's namespace, or named after it when cluster-scoped.
        if example["metadata"]["namespace"].is_string() {
            example["metadata"]["namespace"] = json!(ns);
        } else {
            let name = example["metadata"]["name"].as_str().expect("name");
            example["metadata"]["name"] = json!(format!("{ns}-{name}"));
        }
        let applied = server_dry_run(&example.to_string());
        assert!(applied.contains("created (server dry run)"), "{applied}");
    }
}

#[tokio::test]
async fn cluster_wide_the_operator_with_the_chart_service_account_reports_a_failed_task_as_stalled()
{
    let retry = copy(Builtin::ClusterFailsThenRetry, 0);
    let (client, ns) = setup("chart-rbac-cluster").await;
    let team = common::namespace(&client, "chart-rbac-cluster-team").await;
    let release = ns.clone();
    let full = fullname(&release);
    // Cluster-wide: the label selector keeps this operator to this test's watch.
    let selector = format!("cce-uw-test={ns}");
    install_for_operator(
        &release,
        &ns,
        &["--set", &format!("labelSelector={selector}")],
    );
    common::builtin_secret(&client, &team).await;

    let sim = Sim::https()
        .scenario(Builtin::ClusterFailsThenRetry)
        .frozen()
        .start();
    let op = ChartOperator::start(&ns, &release, &format!("{full}-5c8d7f9b8-q4w7p"), &sim);
    create_watch(
        &client,
        &team,
        "retry",
        &sim,
        &retry.cluster,
        &retry.workflow,
        json!({"cce-uw-test": ns}),
    )
    .await;
    wait_watch(&client, &team, "retry", 60, "first status", |w| {
        w.status.as_ref().is_some_and(|s| s.phase.is_some())
    })
    .await;
    let (health, message) = common::argocd::health(&live(&team, "retry"));
    assert_eq!(health, "Progressing", "{message}");

    // Step until CCE reports the failed Cluster task (phase Pending).
    for _ in 0..20 {
        let state = sim.workflow(&retry.workflow).await;
        if state["workflow"]["status"]["phase"] == "Pending" {
            break;
        }
        sim.step(&retry.workflow, 1).await;
    }
    let stalled = wait_watch(&client, &team, "retry", 60, "Stalled", |w| {
        cond(w, "Stalled").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        cond(&stalled, "Stalled").map(|c| c.1),
        Some("TaskFailed".into())
    );

    // Fail fast: the Stalled wait returns, and the gate's check fails.
    ok(
        kubectl(&[
            "wait",
            "-n",
            &team,
            "uww/retry",
            "--for=condition=Stalled",
            "--timeout=10s",
        ]),
        "kubectl wait --for=condition=Stalled",
    );
    ok(
        kubectl(&[
            "wait",
            "-n",
            &team,
            "uww/retry",
            "--timeout=10s",
            "--for=jsonpath={.status.conditions[?(@.type==\"Reconciling\")].status}=False",
        ]),
        "the gate's first wait",
    );
    let gate = kubectl(&[
        "wait",
        "-n",
        &team,
        "uww/retry",
        "--for=condition=Ready",
        "--timeout=0s",
    ]);
    assert!(!gate.status.success(), "the gate passed a stalled upgrade");
    let (health, message) = common::argocd::health(&live(&team, "retry"));
    assert_eq!(health, "Degraded", "{message}");
    assert!(message.starts_with("TaskFailed: "), "{message}");
    let events = common::wait_events(&client, &team, "retry", 30, |e| {
        common::count(e, "TaskFailed") == 1
    })
    .await;
    assert!(
        common::count(&events, "WorkflowObserved") == 1,
        "{events:#?}"
    );
    op.assert_no_forbidden();

    let sa = format!("system:serviceaccount:{ns}:{full}");
    let uww = "upgradeworkflowwatches.cce.upgradewatch.io";
    let account = "cceaccounts.cce.upgradewatch.io";
    let cluster_account = "clustercceaccounts.cce.upgradewatch.io";
    for args in [
        vec!["list", uww, "--all-namespaces"],
        vec!["patch", uww, "--subresource=status", "-n", &team],
        vec!["list", account, "--all-namespaces"],
        vec!["patch", account, "--subresource=status", "-n", &team],
        vec!["list", cluster_account],
        vec!["patch", cluster_account, "--subresource=status"],
        vec!["watch", "namespaces"],
        vec!["get", "secrets", "-n", &team],
        vec!["create", "events.events.k8s.io", "-n", &team],
    ] {
        assert_can(&sa, true, &args);
    }
    for verb in ["create", "patch", "delete"] {
        assert_can(&sa, true, &[verb, uww, "-n", &team]);
    }
    for args in [
        vec!["update", uww, "-n", &team],
        vec!["patch", account, "-n", &team],
        vec!["create", cluster_account],
        vec![
            "create",
            "serviceaccounts",
            "--subresource=token",
            "-n",
            &team,
        ],
        vec!["create", "pods", "-n", &team],
        vec!["create", "secrets", "-n", &team],
        vec!["delete", "secrets", "-n", &team],
        vec![
            "update",
            &format!("leases.coordination.k8s.io/{full}"),
            "-n",
            &ns,
        ],
        vec![
            "get",
            "leases.coordination.k8s.io/kube-controller-manager",
            "-n",
            "kube-system",
        ],
    ] {
        assert_can(&sa, false, &args);
    }
    ok(
        helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
}

#[tokio::test]
async fn without_the_charts_rbac_the_operator_is_refused_and_the_log_check_notices() {
    // The control for the tests above: the same run with no RBAC at all.
    let (_client, ns) = setup("chart-rbac-none").await;
    let release = ns.clone();
    install_for_operator(&release, &ns, &["--set", "rbac.create=false"]);
    let sim = Sim::https().scenario(Builtin::Success).start();
    let mut op = ChartOperator::start(&ns, &release, "no-rbac", &sim);
    let status = op
        .exit_within(Duration::from_secs(30))
        .expect("the operator should stop");
    assert!(!status.success());
    let log = op.log_text();
    assert!(log.contains("\"http.status_code\":403"), "{log}");
    let caught = std::panic::catch_unwind(|| op.assert_no_forbidden());
    assert!(caught.is_err(), "assert_no_forbidden missed a 403");
    ok(
        helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
}

#[tokio::test]
async fn the_opt_in_alert_rules_and_dashboard_ship_the_checked_files_and_pass_a_server_dry_run() {
    let (_client, ns) = setup("chart-monitoring").await;
    let path = repo_path("tests/fixtures/chart/prometheusrule-crd.yaml");
    ok(
        kubectl(&["apply", "--server-side", "-f", &path.display().to_string()]),
        "apply PrometheusRule CRD",
    );
    ok(
        kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/prometheusrules.monitoring.coreos.com",
            "--timeout=30s",
        ]),
        "PrometheusRule CRD Established",
    );
    // Off by default.
    let default = objects(&render("mon", &ns, &[]));
    assert!(of_kind(&default, "PrometheusRule").is_empty());
    assert!(
        !summary(&default).iter().any(|o| o.contains("dashboard")),
        "{:#?}",
        summary(&default)
    );

    let yaml = render(
        "mon",
        &ns,
        &[
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "metrics.prometheusRule.labels.release=kube-prometheus",
            "--set",
            "metrics.grafanaDashboard.enabled=true",
        ],
    );
    let objs = objects(&yaml);
    let rule = find(&objs, "PrometheusRule", Some(&ns), "mon-cce-upgrade-watch");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus");
    let rules_file: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_path(
            "charts/cce-upgrade-watch/files/prometheus-rules.yaml",
        ))
        .expect("rules file"),
    )
    .expect("rules YAML");
    assert_eq!(
        rule["spec"], rules_file,
        "the PrometheusRule carries the checked rules file, without runbook_url: the chart \
         in the checkout has no home to find docs/operations.md under"
    );

    // As packaged, the chart's home is the project's address, and the runbooks are there.
    let home = "https://forge.example.org/acme/cce-upgrade-watch";
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(repo_path("hack/chart.sh"))
        .arg("package")
        .env("PROJECT_URL", home)
        .env("CCE_UW_CHART_OUT", out_dir.path())
        .output()
        .expect("run chart.sh package");
    let tgz = ok(out, "chart.sh package").trim().to_string();
    let packaged = objects(&ok(
        helm(&[
            "template",
            "mon",
            &repo_path(&tgz).display().to_string(),
            "-n",
            &ns,
            "--set",
            "metrics.prometheusRule.enabled=true",
        ]),
        "helm template (packaged)",
    ));
    let packaged = find(
        &packaged,
        "PrometheusRule",
        Some(&ns),
        "mon-cce-upgrade-watch",
    );
    for group in packaged["spec"]["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let alert = rule["alert"].as_str().expect("alert");
            assert_eq!(
                rule["annotations"]["runbook_url"],
                format!(
                    "{home}/blob/main/docs/operations.md#{}",
                    alert.to_lowercase()
                )
                .as_str()
            );
        }
    }

    // Groups turn off one by one, take extra labels (a group's over everyone's, a rule's
    // own over both) and move their runbooks.
    let tuned = objects(&render(
        "mon",
        &ns,
        &[
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "metrics.prometheusRule.groups.operator.enabled=false",
            "--set",
            "metrics.prometheusRule.additionalRuleLabels.team=platform",
            "--set",
            "metrics.prometheusRule.additionalRuleLabels.env=prod",
            "--set",
            "metrics.prometheusRule.additionalRuleLabels.severity=info",
            "--set",
            "metrics.prometheusRule.groups.upgrades.additionalRuleLabels.team=upgrades",
            "--set",
            "metrics.prometheusRule.runbookBaseURL=https://docs.example.com/ops.html",
        ],
    ));
    let tuned = find(&tuned, "PrometheusRule", Some(&ns), "mon-cce-upgrade-watch");
    let groups = tuned["spec"]["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0]["name"], "cce-upgrade-watch.upgrades");
    let shipped = &rules_file["groups"][0]["rules"];
    for (rule, original) in groups[0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .zip(shipped.as_array().expect("file rules"))
    {
        let alert = rule["alert"].as_str().expect("alert");
        assert_eq!(rule["labels"]["team"], "upgrades", "{alert}");
        assert_eq!(rule["labels"]["env"], "prod", "{alert}");
        assert_eq!(
            rule["labels"]["severity"], original["labels"]["severity"],
            "{alert}"
        );
        assert_eq!(
            rule["annotations"]["runbook_url"],
            format!("https://docs.example.com/ops.html#{}", alert.to_lowercase()).as_str()
        );
        assert_eq!(rule["expr"], original["expr"], "{alert}");
    }

    // CceUpgradeTaskOverrunning takes its thresholds from values: the four marked numbers
    // change and nothing else, and Prometheus's rule manager fires the rendered rule at the
    // new thresholds.
    let overrun_rule = |spec: &Value| -> Value {
        spec["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_array().expect("rules"))
            .find(|r| r["alert"] == "CceUpgradeTaskOverrunning")
            .cloned()
            .unwrap_or(Value::Null)
    };
    let retuned = objects(&render(
        "mon",
        &ns,
        &[
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set-json",
            "metrics.prometheusRule.taskOverrun.factor=2",
            "--set-json",
            "metrics.prometheusRule.taskOverrun.quantile=0.5",
            "--set",
            "metrics.prometheusRule.taskOverrun.minimum=30m",
            "--set",
            "metrics.prometheusRule.taskOverrun.window=2h",
        ],
    ));
    let retuned = find(
        &retuned,
        "PrometheusRule",
        Some(&ns),
        "mon-cce-upgrade-watch",
    );
    let mut expected = overrun_rule(&rules_file);
    let mut expr = expected["expr"].as_str().expect("expr").to_string();
    for (from, to) in [
        (
            "> 3600 # taskOverrun.minimum",
            "> 1800 # taskOverrun.minimum",
        ),
        ("3 # taskOverrun.factor", "2 # taskOverrun.factor"),
        ("0.9, # taskOverrun.quantile", "0.5, # taskOverrun.quantile"),
        ("[30d] # taskOverrun.window", "[2h] # taskOverrun.window"),
    ] {
        assert_eq!(expr.matches(from).count(), 1, "{from} in {expr}");
        expr = expr.replace(from, to);
    }
    expected["expr"] = Value::from(expr);
    assert_eq!(overrun_rule(&retuned["spec"]), expected);

    let dir = tempfile::tempdir().expect("tempdir");
    let rendered_rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rendered_rules,
        serde_yaml::to_string(&retuned["spec"]).expect("rules YAML"),
    )
    .expect("write rules");
    // A Cluster task with ten successful ones in (960s, 1920s]: their median is 1440s, twice
    // that 48 minutes (the file's thresholds would give 1h31m12s). A Snapshot task without
    // history: the 30-minute minimum. Each fires 10 minutes after it passes.
    let tests = dir.path().join("overrun.yaml");
    let firing = |watch: &str, task: &str| {
        format!(
            "          - labels: 'ALERTS{{alertname=\"CceUpgradeTaskOverrunning\",alertstate=\"firing\",\
             cluster_id=\"c-{watch}\",cluster_name=\"{watch}\",name=\"{watch}\",namespace=\"ops\",\
             severity=\"warning\",task_type=\"{task}\"}}'\n            value: 1\n"
        )
    };
    let at = |time: &str, alerts: &[String]| {
        let samples = if alerts.is_empty() {
            "        exp_samples: []\n".to_string()
        } else {
            format!("        exp_samples:\n{}", alerts.concat())
        };
        format!(
            "      - expr: 'ALERTS{{alertname=\"CceUpgradeTaskOverrunning\",alertstate=\"firing\"}}'\n\
             \x20       eval_time: {time}\n{samples}"
        )
    };
    let (prod, stage) = (firing("prod", "Cluster"), firing("stage", "Snapshot"));
    let mut synthetic =
        String::from("evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n");
    for (series, values) in [
        (
            "cce_upgrade_watch_task_started_timestamp_seconds{namespace=\"ops\",name=\"prod\",task_type=\"Cluster\"}",
            "0+0x70",
        ),
        (
            "cce_upgrade_watch_task_started_timestamp_seconds{namespace=\"ops\",name=\"stage\",task_type=\"Snapshot\"}",
            "0+0x70",
        ),
        (
            "cce_upgrade_watch_watch_info{namespace=\"ops\",name=\"prod\",cluster_id=\"c-prod\",cluster_name=\"prod\"}",
            "1+0x70",
        ),
        (
            "cce_upgrade_watch_watch_info{namespace=\"ops\",name=\"stage\",cluster_id=\"c-stage\",cluster_name=\"stage\"}",
            "1+0x70",
        ),
        (
            "cce_upgrade_watch_task_duration_seconds_bucket{task_type=\"Cluster\",result=\"Success\",le=\"960\"}",
            "0+0x70",
        ),
        (
            "cce_upgrade_watch_task_duration_seconds_bucket{task_type=\"Cluster\",result=\"Success\",le=\"1920\"}",
            "0 10+0x69",
        ),
        (
            "cce_upgrade_watch_task_duration_seconds_bucket{task_type=\"Cluster\",result=\"Success\",le=\"+Inf\"}",
            "0 10+0x69",
        ),
    ] {
        synthetic.push_str(&format!(
            "      - series: '{series}'\n        values: '{values}'\n"
        ));
    }
    synthetic.push_str("    promql_expr_test:\n");
    for (time, alerts) in [
        ("40m", vec![]),
        ("41m", vec![stage.clone()]),
        ("58m", vec![stage.clone()]),
        ("59m", vec![prod, stage]),
    ] {
        synthetic.push_str(&at(time, &alerts));
    }
    std::fs::write(&tests, &synthetic).expect("write tests");
    let bin = crate::day2::promql_check();
    let report = crate::day2::rule_tests(&bin, &tests, Some(&rendered_rules))
        .unwrap_or_else(|e| panic!("{e}\n{synthetic}"));
    assert_eq!(report.tests.len(), 1, "{report:?}");
    assert_eq!(report.tests[0].expr_checks, 4, "{report:?}");
    // The same series against the file's thresholds: nothing fires yet at 59 minutes.
    let shipped_rules = repo_path("charts/cce-upgrade-watch/files/prometheus-rules.yaml");
    let err = crate::day2::rule_tests(&bin, &tests, Some(&shipped_rules))
        .expect_err("the file's thresholds fired as early");
    assert!(err.contains("at 41m"), "{err}");

    // The alert can be left out alone.
    let without = objects(&render(
        "mon",
        &ns,
        &[
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "metrics.prometheusRule.taskOverrun.enabled=false",
        ],
    ));
    let without = find(
        &without,
        "PrometheusRule",
        Some(&ns),
        "mon-cce-upgrade-watch",
    );
    let alerts = |spec: &Value| -> Vec<String> {
        spec["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_array().expect("rules"))
            .map(|r| r["alert"].as_str().expect("alert").to_string())
            .collect()
    };
    let mut all = alerts(&rules_file);
    all.retain(|a| a != "CceUpgradeTaskOverrunning");
    assert_eq!(alerts(&without["spec"]), all);

    let dashboard = find(
        &objs,
        "ConfigMap",
        Some(&ns),
        "mon-cce-upgrade-watch-dashboard",
    );
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(
        dashboard["data"]["cce-upgrade-watch.json"]
            .as_str()
            .expect("dashboard data"),
    )
    .expect("dashboard JSON in the ConfigMap");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path(
            "charts/cce-upgrade-watch/files/grafana-dashboard.json",
        ))
        .expect("dashboard file"),
    )
    .expect("dashboard file JSON");
    assert_eq!(shipped, file);

    let docs: Vec<String> = yaml
        .split("\n---")
        .filter(|d| d.contains("kind: PrometheusRule") || d.contains("grafana_dashboard"))
        .map(String::from)
        .collect();
    assert_eq!(docs.len(), 2, "{docs:#?}");
    let applied = server_dry_run(&docs.join("\n---\n"));
    assert!(
        applied.contains("prometheusrule.monitoring.coreos.com/mon-cce-upgrade-watch"),
        "{applied}"
    );
    assert!(
        applied.contains("configmap/mon-cce-upgrade-watch-dashboard"),
        "{applied}"
    );
}

#[test]
fn the_overrun_values_need_every_marker_in_the_rules_file() {
    // A copy of the chart whose rules file lost one marked number: the render fails and
    // names it, rather than shipping the rule without the value.
    let dir = tempfile::tempdir().expect("tempdir");
    ok(
        Command::new("cp")
            .arg("-R")
            .arg(repo_path(CHART))
            .arg(dir.path())
            .output()
            .expect("cp"),
        "copy the chart",
    );
    let copy = dir.path().join("cce-upgrade-watch");
    let rules = copy.join("files/prometheus-rules.yaml");
    let shipped = std::fs::read_to_string(&rules).expect("read rules");
    let unmarked = shipped.replace(" # taskOverrun.quantile", "");
    assert_ne!(unmarked, shipped);
    std::fs::write(&rules, unmarked).expect("write rules");
    let out = helm(&[
        "template",
        "t",
        &copy.display().to_string(),
        "--set",
        "metrics.prometheusRule.enabled=true",
    ]);
    assert!(!out.status.success(), "rendered without the marker");
    let err = text(&out.stderr);
    assert!(
        err.contains("CceUpgradeTaskOverrunning has no # taskOverrun.quantile"),
        "{err}"
    );
}
