//! The CRD as the real API server enforces and prints it.

use crate::common;

use kube::api::{Api, Patch, PatchParams};

use cce_upgrade_watch::crd::{
    AccountKind, CceAccount, ClusterCceAccount, ClusterType, UpgradeWorkflowWatch,
};
use cce_upgrade_watch::sim::builtin;
use common::{kubectl, kubectl_stdin, text};

fn watch_yaml(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: cce.upgradewatch.io/v1alpha1\nkind: UpgradeWorkflowWatch\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
    )
}

/// A valid spec for the seed example's cluster and workflow (Huawei's own ids).
fn good_spec() -> String {
    format!(
        "  accountRef: {{name: prod}}\n  clusterID: {}\n  upgradeWorkflowID: {}\n",
        builtin::SEED_CLUSTER_ID,
        builtin::SEED_WORKFLOW_ID
    )
}

fn account_yaml(kind: &str, ns: Option<&str>, name: &str, spec: &str) -> String {
    let namespace = ns
        .map(|ns| format!("  namespace: {ns}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: cce.upgradewatch.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n{namespace}spec:\n{spec}"
    )
}

#[tokio::test]
async fn committed_crd_applies_and_becomes_established() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let out = kubectl(&[
        "get",
        "crd",
        "upgradeworkflowwatches.cce.upgradewatch.io",
        "cceaccounts.cce.upgradewatch.io",
        "clustercceaccounts.cce.upgradewatch.io",
        "-o",
        "jsonpath={.items[*].status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(text(&out.stdout), "True True True", "{}", text(&out.stderr));
}

#[tokio::test]
async fn kubectl_get_prints_the_designed_columns() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, "printer-columns").await;
    let out = kubectl_stdin(
        &["apply", "-f", "-"],
        &watch_yaml(&ns, "seed", &good_spec()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let status = serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "status": {
            "upgradeWorkflowID": builtin::SEED_WORKFLOW_ID,
            "clusterName": "prod-eu",
            "phase": "Pending",
            "fromVersion": "v1.17.17-r0",
            "targetVersion": "v1.19.16-r80",
            "progress": "1/4",
            "currentTask": "Cluster",
            "tasks": [
                {"type": "PreCheck", "phase": "Success", "startTime": "2023-11-25T07:20:04Z",
                 "endTime": "2023-11-25T07:21:05Z", "duration": "1m1s"},
                {"type": "Snapshot"},
                {"type": "Cluster", "phase": "Failed", "startTime": "2023-11-25T07:49:30Z",
                 "endTime": "2023-11-25T07:58:35Z", "duration": "9m5s"},
                {"type": "PostCheck"}
            ],
            "taskDurations": "PreCheck 1m1s, Cluster 9m5s (Failed)",
            "lastChangeTime": "2023-11-25T07:58:40Z",
            "lastSyncTime": "2023-11-25T07:58:40Z",
            "message": "task Cluster failed",
            "conditions": [{"type": "Ready", "status": "False", "reason": "TaskFailed", "message": "ok",
                            "lastTransitionTime": "2023-11-25T07:58:40Z"},
                           {"type": "Synced", "status": "True", "reason": "Synced", "message": "ok",
                            "lastTransitionTime": "2023-11-25T07:58:40Z"}]
        }
    });
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(client.clone(), &ns);
    api.patch_status(
        "seed",
        &PatchParams::apply("e2e-tests").force(),
        &Patch::Apply(&status),
    )
    .await
    .expect("write status through the status subresource");

    for resource in ["upgradeworkflowwatches", "uww"] {
        let out = kubectl(&["get", resource, "-n", &ns]);
        let table = text(&out.stdout);
        let mut lines = table.lines();
        let header: Vec<&str> = lines
            .next()
            .expect("header")
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            header,
            [
                "NAME",
                "CLUSTER",
                "PHASE",
                "PROGRESS",
                "CURRENT TASK",
                "TARGET",
                "READY",
                "REASON",
                "SYNCED",
                "AGE"
            ],
            "{table}"
        );
        let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
        assert_eq!(
            row[..9],
            [
                "seed",
                "prod-eu",
                "Pending",
                "1/4",
                "Cluster",
                "v1.19.16-r80",
                "False",
                "TaskFailed",
                "True"
            ],
            "{table}"
        );
    }
    let out = kubectl(&["get", "uww", "-n", &ns, "-o", "wide"]);
    let table = text(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .expect("header")
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header[10..],
        [
            "CLUSTER ID",
            "ACCOUNT",
            "FROM",
            "WORKFLOW",
            "RUNNING FOR",
            "DURATIONS",
            "LAST CHANGE",
            "LAST SYNC",
            "MESSAGE"
        ],
        "{table}"
    );
    let row = table.lines().nth(1).expect("row");
    assert!(
        row.contains("v1.17.17-r0")
            && row.contains(builtin::SEED_WORKFLOW_ID)
            && row.contains(builtin::SEED_CLUSTER_ID)
            && row.trim_end().ends_with("task Cluster failed"),
        "{table}"
    );
    // No task is running: the Running For cell is empty; finished tasks show their time.
    let header_line = table.lines().next().expect("header");
    let at = |column: &str| header_line.find(column).expect("column");
    assert_eq!(
        row.get(at("RUNNING FOR")..at("DURATIONS")).map(str::trim),
        Some(""),
        "{table}"
    );
    assert_eq!(
        row.get(at("DURATIONS")..at("LAST CHANGE")).map(str::trim),
        Some("PreCheck 1m1s, Cluster 9m5s (Failed)"),
        "{table}"
    );
    // The category lists it too.
    let out = kubectl(&["get", "cce", "-n", &ns, "-o", "name"]);
    assert_eq!(
        text(&out.stdout).trim(),
        "upgradeworkflowwatch.cce.upgradewatch.io/seed"
    );
}

#[tokio::test]
async fn the_api_server_rejects_bad_specs_naming_the_field() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, "bad-specs").await;
    let cases = [
        (
            "missing-cluster",
            "  accountRef: {name: prod}\n",
            "spec.clusterID",
        ),
        ("no-account", "  clusterID: c1\n", "set accountRef"),
        (
            "inline-credentials",
            "  accountRef: {name: prod}\n  clusterID: c1\n  credentialsSecretRef: {name: s}\n",
            "are set on the account now",
        ),
        (
            "inline-project",
            "  accountRef: {name: prod}\n  clusterID: c1\n  projectID: p1\n  region: ap-southeast-1\n",
            "are set on the account now",
        ),
        (
            "unknown-account-kind",
            "  accountRef: {kind: Account, name: prod}\n  clusterID: c1\n",
            "spec.accountRef.kind",
        ),
        (
            "account-namespace",
            "  accountRef: {name: prod, namespace: other}\n  clusterID: c1\n",
            "namespace",
        ),
        (
            "fast-poll",
            "  accountRef: {name: prod}\n  clusterID: c1\n  pollInterval: 2s\n",
            "spec.pollInterval",
        ),
        (
            "slow-poll",
            "  accountRef: {name: prod}\n  clusterID: c1\n  pollInterval: 25h\n",
            "at most 24h",
        ),
        (
            "bad-poll",
            "  accountRef: {name: prod}\n  clusterID: c1\n  pollInterval: often\n",
            "spec.pollInterval",
        ),
        (
            "bad-id",
            "  accountRef: {name: prod}\n  clusterID: \"a/../b\"\n",
            "spec.clusterID",
        ),
        (
            "unknown-field",
            "  accountRef: {name: prod}\n  clusterID: c1\n  colour: blue\n",
            "colour",
        ),
    ];
    for (name, spec, field) in cases {
        let out = kubectl_stdin(
            &["create", "--validate=strict", "-f", "-"],
            &watch_yaml(&ns, name, spec),
        );
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            stderr.contains(field),
            "{name}: error does not name {field}: {stderr}"
        );
    }
    let out = kubectl_stdin(
        &["create", "--validate=strict", "-f", "-"],
        &watch_yaml(&ns, "good", &good_spec()),
    );
    assert!(
        out.status.success(),
        "a good spec was refused: {}",
        text(&out.stderr)
    );
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(client.clone(), &ns);
    let stored = api.get("good").await.expect("get");
    assert_eq!(stored.spec.cluster_type, None, "the account's decides");
    let reference = stored.spec.account_ref.expect("accountRef kept");
    assert_eq!(
        (reference.kind, reference.name.as_str()),
        (AccountKind::Namespaced, "prod")
    );
}

/// Both account kinds as the API server enforces them: one source of credentials, a
/// cluster account's namespace conditions, https endpoints, ids as CCE writes them.
#[tokio::test]
async fn the_api_server_rejects_bad_accounts_naming_the_field() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, "bad-accounts").await;
    let namespaced = [
        (
            "no-credentials",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {}\n",
            "set exactly one of secretRef and workloadIdentity",
        ),
        (
            "two-sources",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {secretRef: {name: s}, workloadIdentity: {serviceAccountName: sa, identityProviderID: idp}}\n",
            "set exactly one of secretRef and workloadIdentity",
        ),
        (
            "operator-defaults",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {operatorDefaults: {}}\n",
            "operatorDefaults",
        ),
        (
            "no-region",
            "  projectID: p1\n  credentials: {secretRef: {name: s}}\n",
            "set region",
        ),
        (
            "http-endpoint",
            "  endpoint: http://cce.example.com\n  projectID: p1\n  credentials: {secretRef: {name: s}}\n",
            "spec.endpoint",
        ),
        (
            "empty-project",
            "  region: ap-southeast-1\n  projectID: \"\"\n  credentials: {secretRef: {name: s}}\n",
            "spec.projectID",
        ),
        (
            "secret-namespace",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {secretRef: {name: s, namespace: other}}\n",
            "namespace",
        ),
        (
            "identity-namespace",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {workloadIdentity: {serviceAccountName: sa, namespace: other, identityProviderID: idp}}\n",
            "namespace",
        ),
    ];
    for (name, spec, field) in namespaced {
        let out = kubectl_stdin(
            &["create", "--validate=strict", "-f", "-"],
            &account_yaml("CCEAccount", Some(&ns), name, spec),
        );
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "CCEAccount {name} was accepted");
        assert!(
            stderr.contains(field),
            "CCEAccount {name}: error does not name {field}: {stderr}"
        );
    }
    let suffix = &ns[ns.len() - 8..];
    let cluster = [
        (
            "empty-condition",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {operatorDefaults: {}}\n  conditions: [{}]\n",
            "a condition names namespaces or has a namespaceSelector",
        ),
        (
            "bad-namespace-name",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {operatorDefaults: {}}\n  conditions: [{namespaces: [\"Team A\"]}]\n",
            "spec.conditions[0].namespaces[0]",
        ),
        (
            "bad-cluster-id",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {operatorDefaults: {}}\n  clusterIDs: [\"a/../b\"]\n",
            "spec.clusterIDs[0]",
        ),
        (
            "three-sources",
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {operatorDefaults: {}, secretRef: {name: s}}\n",
            "set exactly one of secretRef, workloadIdentity and operatorDefaults",
        ),
    ];
    for (name, spec, field) in cluster {
        let name = format!("{name}-{suffix}");
        let out = kubectl_stdin(
            &["create", "--validate=strict", "-f", "-"],
            &account_yaml("ClusterCCEAccount", None, &name, spec),
        );
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "ClusterCCEAccount {name} was accepted"
        );
        assert!(
            stderr.contains(field),
            "ClusterCCEAccount {name}: error does not name {field}: {stderr}"
        );
    }
    let good = [
        (
            "CCEAccount",
            Some(ns.as_str()),
            "keys".to_string(),
            "  region: ap-southeast-1\n  projectID: p1\n  clusterType: Autopilot\n  pollInterval: 1m\n  credentials: {secretRef: {name: s}}\n",
        ),
        (
            "CCEAccount",
            Some(ns.as_str()),
            "keyless".to_string(),
            "  endpoint: https://cce.example.internal:8443\n  projectID: p1\n  credentials: {workloadIdentity: {serviceAccountName: cce-reader, identityProviderID: cluster-idp}}\n",
        ),
        (
            "ClusterCCEAccount",
            None,
            format!("shared-{suffix}"),
            "  region: ap-southeast-1\n  projectID: p1\n  credentials: {operatorDefaults: {}}\n  conditions: [{namespaces: [team-a]}, {namespaceSelector: {matchLabels: {cce-access: shared}}}]\n  clusterIDs: [c-1]\n",
        ),
    ];
    for (kind, namespace, name, spec) in good {
        let out = kubectl_stdin(
            &["create", "--validate=strict", "-f", "-"],
            &account_yaml(kind, namespace, &name, spec),
        );
        assert!(
            out.status.success(),
            "{kind} {name} was refused: {}",
            text(&out.stderr)
        );
    }
    let keys = Api::<CceAccount>::namespaced(client.clone(), &ns)
        .get("keys")
        .await
        .expect("get");
    assert_eq!(keys.spec.target.cluster_type, Some(ClusterType::Autopilot));
    let shared = Api::<ClusterCceAccount>::all(client.clone())
        .get(&format!("shared-{suffix}"))
        .await
        .expect("get");
    assert_eq!(shared.spec.conditions.len(), 2);
    Api::<ClusterCceAccount>::all(client.clone())
        .delete(&format!("shared-{suffix}"), &Default::default())
        .await
        .expect("delete");
}

/// Every example of a watch, an account or a set is one the API server takes as written: the
/// examples are what users copy, and a field the schema no longer has would only show up
/// when they apply it.
#[tokio::test]
async fn the_examples_pass_the_api_servers_validation() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, "examples").await;
    let mut checked = Vec::new();
    let dir = common::repo_path("examples");
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let yaml = std::fs::read_to_string(&path).expect("read example");
        // The simulator's own files (scenarios, IAM) are not Kubernetes objects.
        if !yaml.contains("apiVersion: cce.upgradewatch.io/") {
            continue;
        }
        // A dry run: the test namespace stays empty, and a Role is checked for escalation
        // as it would be when a namespace owner creates it.
        let out = kubectl(&[
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-n",
            &ns,
            "-f",
            &path.to_string_lossy(),
        ]);
        assert!(
            out.status.success(),
            "examples/{name}: {}",
            text(&out.stderr)
        );
        checked.push(name);
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "cceaccount-secret.yaml",
            "cceaccount-workload-identity.yaml",
            "clustercceaccount-operator-defaults.yaml",
            "upgradewatchset.yaml",
            "watch-follow.yaml",
            "watch-region.yaml",
        ],
        "every example of a watch or an account is checked"
    );
}

#[tokio::test]
async fn kubectl_explain_shows_user_facing_docs() {
    let client = common::client().await;
    common::install_crd(&client).await;
    // The API server publishes a new CRD's OpenAPI a little after it is Established.
    let out = common::kubectl_until_success(&["explain", "upgradeworkflowwatch.spec"]).await;
    // kubectl wraps descriptions; compare with whitespace collapsed.
    let doc = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for needle in [
        "Which CCE upgrade workflow to watch",
        "pollInterval",
        "At least 5s",
        "upgradeWorkflowID",
        "follows the cluster's",
    ] {
        assert!(doc.contains(needle), "{needle} missing in: {doc}");
    }
    let out =
        common::kubectl_until_success(&["explain", "cceaccount.spec.credentials.workloadIdentity"])
            .await;
    let doc = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "A ServiceAccount of this namespace whose tokens IAM trusts",
        "a Role (docs/accounts.md, \"Workload identity\")",
        "system:serviceaccount:<namespace>:<name>",
        "X-Idp-Id",
        "one the operator's administrator allowed",
    ] {
        assert!(doc.contains(needle), "{needle} missing in: {doc}");
    }
    let out =
        common::kubectl_until_success(&["explain", "clustercceaccount.spec.conditions"]).await;
    let doc = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in ["namespaceSelector", "Empty: no namespace may"] {
        assert!(doc.contains(needle), "{needle} missing in: {doc}");
    }
    let out = kubectl(&["explain", "upgradeworkflowwatch.spec.accountRef"]);
    let doc = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        doc.contains("ClusterCCEAccount that lists this namespace"),
        "{doc}"
    );
    let out = kubectl(&["explain", "uww"]);
    assert!(
        text(&out.stdout).contains("mirrors a Huawei Cloud CCE cluster upgrade workflow"),
        "{}",
        text(&out.stdout)
    );
}

/// What Flux makes of a watch on a real API server before and after the operator's first
/// status, with Flux's own packages (tests/flux-health). A status sent with the create is
/// dropped (status subresource), so the watch starts without one: kstatus, Flux's
/// default, calls that Current; the recipe docs/gitops.md recommends does not.
#[tokio::test]
async fn a_new_watch_has_no_status_and_only_the_documented_flux_recipe_waits_for_one() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, "flux-health").await;
    let claimed = "status:\n  observedGeneration: 1\n  conditions:\n  - {type: Reconciling, status: \"True\", reason: Created, message: m, lastTransitionTime: \"2025-01-01T00:00:00Z\"}\n";
    let out = kubectl_stdin(
        &["create", "-o", "json", "-f", "-"],
        &format!("{}{claimed}", watch_yaml(&ns, "fresh", &good_spec())),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("created watch");
    assert!(
        created.get("status").is_none(),
        "the API server kept a status sent with the create: {created}"
    );
    let live = |name: &str| -> serde_json::Value {
        let out = kubectl(&["get", "-n", &ns, "uww", name, "-o", "json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("watch JSON")
    };
    let fresh = live("fresh");
    assert!(fresh.get("status").is_none(), "{fresh}");
    let verdict = common::flux::flux(&fresh);
    assert_eq!(
        verdict.kstatus, "Current",
        "kstatus on a watch without status"
    );
    assert_eq!(verdict.exprs, "Unknown", "{}", verdict.message);

    // The operator's first status (it has not heard from CCE yet): in progress for both.
    let first = serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {"type": "Reconciling", "status": "True", "reason": "Observing",
                 "message": "waiting for the first answer from CCE", "observedGeneration": 1,
                 "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "Ready", "status": "False", "reason": "Observing", "message": "",
                 "observedGeneration": 1, "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]
        }
    });
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(client.clone(), &ns);
    api.patch_status(
        "fresh",
        &PatchParams::apply("e2e-tests").force(),
        &Patch::Apply(&first),
    )
    .await
    .expect("patch status");
    let verdict = common::flux::flux(&live("fresh"));
    assert_eq!(
        (verdict.kstatus.as_str(), verdict.exprs.as_str()),
        ("InProgress", "InProgress"),
        "{}",
        verdict.message
    );
}

/// The plane is the Kubernetes version the run asked for (CCE_UW_K8S_VERSION, exported by
/// `hack/control-plane.sh env`), server and kubectl alike: a matrix run that silently
/// used the default binaries would prove nothing.
#[tokio::test]
async fn the_plane_runs_the_kubernetes_version_the_run_asked_for() {
    let client = common::client().await;
    let wanted = std::env::var("CCE_UW_K8S_VERSION")
        .expect("CCE_UW_K8S_VERSION is set by `hack/control-plane.sh env`");
    let server = client.apiserver_version().await.expect("/version");
    assert_eq!(server.git_version, wanted);
    let out = kubectl(&["version", "--client", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let client_version: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("kubectl version JSON");
    assert_eq!(
        client_version["clientVersion"]["gitVersion"],
        wanted.as_str()
    );
}
