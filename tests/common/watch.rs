//! UpgradeWorkflowWatches of simulator workflows: created, read, and waited for until they
//! show what the simulator holds.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, PostParams};

use cce_upgrade_watch::crd::{AccountStatus, CceAccount, ClusterCceAccount, UpgradeWorkflowWatch};
use cce_upgrade_watch::sim::builtin;

use super::eventually::{KUBE_POLL, eventually};
use super::sim::Sim;

/// The name of the CCEAccount [`sim_account`] makes for `sim` and the Secret `secret`.
pub fn sim_account_name(sim: &Sim, secret: &str) -> String {
    let port = sim
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    format!("{secret}-sim-{port}")
}

/// The CCEAccount of `ns` that reaches `sim` (its built-in project) with the marked Secret
/// `secret`, created unless it exists; its name.
pub async fn sim_account(client: &Client, ns: &str, sim: &Sim, secret: &str) -> String {
    let name = sim_account_name(sim, secret);
    let account: CceAccount = serde_json::from_value(serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "CCEAccount",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "endpoint": sim.url,
            "projectID": builtin::PROJECT_ID,
            "credentials": {"secretRef": {"name": secret}},
        },
    }))
    .expect("account");
    match Api::<CceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &account)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create CCEAccount {ns}/{name}: {e}"),
    }
    name
}

/// Creates `account` (a CCEAccount or ClusterCCEAccount as JSON); one that exists already
/// is replaced.
pub async fn apply_account(client: &Client, account: serde_json::Value) {
    let kind = account["kind"].as_str().expect("kind").to_string();
    let name = account["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let params = kube::api::PatchParams::apply("e2e-tests").force();
    let patch = kube::api::Patch::Apply(&account);
    let applied = match account["metadata"]["namespace"].as_str() {
        Some(ns) => Api::<CceAccount>::namespaced(client.clone(), ns)
            .patch(&name, &params, &patch)
            .await
            .map(drop),
        None => Api::<ClusterCceAccount>::all(client.clone())
            .patch(&name, &params, &patch)
            .await
            .map(drop),
    };
    applied.unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
}

/// A CCEAccount `name` of `ns` reaching `sim` with the workload identity of the
/// ServiceAccount `service_account` (the simulator's IAM provider).
pub async fn identity_account(
    client: &Client,
    ns: &str,
    sim: &Sim,
    name: &str,
    service_account: &str,
) {
    apply_account(
        client,
        serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1",
            "kind": "CCEAccount",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "endpoint": sim.url,
                "projectID": builtin::PROJECT_ID,
                "credentials": {"workloadIdentity": {
                    "serviceAccountName": service_account,
                    "identityProviderID": super::iam::PROVIDER,
                }},
            },
        }),
    )
    .await;
}

/// A ClusterCCEAccount `name` reaching `sim` with the operator's default credentials, for
/// the watches of `namespaces`.
pub async fn defaults_account(client: &Client, sim: &Sim, name: &str, namespaces: &[&str]) {
    apply_account(
        client,
        serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1",
            "kind": "ClusterCCEAccount",
            "metadata": {"name": name},
            "spec": {
                "endpoint": sim.url,
                "projectID": builtin::PROJECT_ID,
                "credentials": {"operatorDefaults": {}},
                "conditions": [{"namespaces": namespaces}],
            },
        }),
    )
    .await;
}

/// Creates a watch of `cluster` (and `workflow`) polling every 5 s through `account`
/// (an accountRef as JSON).
pub async fn account_watch(
    client: &Client,
    ns: &str,
    name: &str,
    cluster: &str,
    workflow: Option<&str>,
    account: serde_json::Value,
) -> UpgradeWorkflowWatch {
    let mut spec = serde_json::json!({
        "clusterID": cluster,
        "pollInterval": "5s",
        "accountRef": account,
    });
    if let Some(w) = workflow {
        spec["upgradeWorkflowID"] = w.into();
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
        .unwrap_or_else(|e| panic!("create watch {ns}/{name}: {e}"))
}

/// A watch of a simulator workflow (`None` follows the cluster), polling every 5 s, through
/// the account [`sim_account`] makes for `secret` (none when `None`). It only names that
/// account: create it first, as [`sim_watch`] does.
pub fn sim_watch_object(
    ns: &str,
    name: &str,
    sim: &Sim,
    cluster: &str,
    workflow: Option<&str>,
    secret: Option<&str>,
) -> UpgradeWorkflowWatch {
    let mut spec = serde_json::json!({
        "clusterID": cluster,
        "pollInterval": "5s",
    });
    if let Some(w) = workflow {
        spec["upgradeWorkflowID"] = w.into();
    }
    if let Some(s) = secret {
        spec["accountRef"] = serde_json::json!({"name": sim_account_name(sim, s)});
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .expect("watch")
}

/// Creates [`sim_watch_object`], and its account first.
pub async fn sim_watch(
    client: &Client,
    ns: &str,
    name: &str,
    sim: &Sim,
    cluster: &str,
    workflow: Option<&str>,
    secret: Option<&str>,
) -> UpgradeWorkflowWatch {
    if let Some(s) = secret {
        sim_account(client, ns, sim, s).await;
    }
    Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &sim_watch_object(ns, name, sim, cluster, workflow, secret),
        )
        .await
        .expect("create watch")
}

/// Reads the watch until `done` holds, failing after `secs` with the last status seen.
pub async fn wait_watch(
    client: &Client,
    ns: &str,
    name: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&UpgradeWorkflowWatch) -> bool,
) -> UpgradeWorkflowWatch {
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns);
    eventually(what, Duration::from_secs(secs), KUBE_POLL, || async {
        let w = api.get(name).await.expect("get watch");
        if done(&w) {
            Ok(w)
        } else {
            Err(format!(
                "status {}",
                serde_json::to_string_pretty(&w.status).unwrap_or_default()
            ))
        }
    })
    .await
}

/// The condition `type_` of an account's status as (status, reason, message).
pub fn account_cond(
    status: Option<&AccountStatus>,
    type_: &str,
) -> Option<(String, String, String)> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Reads the CCEAccount until `done` holds, failing after `secs` with the last status seen.
pub async fn wait_account(
    client: &Client,
    ns: &str,
    name: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&CceAccount) -> bool,
) -> CceAccount {
    let api = Api::<CceAccount>::namespaced(client.clone(), ns);
    eventually(what, Duration::from_secs(secs), KUBE_POLL, || async {
        let a = api.get(name).await.expect("get account");
        if done(&a) {
            Ok(a)
        } else {
            Err(format!(
                "status {}",
                serde_json::to_string_pretty(&a.status).unwrap_or_default()
            ))
        }
    })
    .await
}

/// The message of a watch's Synced condition: what it says is wrong, if anything.
pub fn synced_message(w: &UpgradeWorkflowWatch) -> String {
    w.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
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

/// Whether the watch shows what the simulator holds for `workflow` now: the same workflow,
/// phase, and tasks (status and id). `Err` shows both sides.
pub async fn converged(sim: &Sim, w: &UpgradeWorkflowWatch, workflow: &str) -> Result<(), String> {
    let truth = &sim.workflow(workflow).await["workflow"]["status"];
    let points = truth["pointStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let same = w.status.as_ref().is_some_and(|status| {
        truth["phase"].as_str() == status.phase.as_deref()
            && status.workflow_id.as_deref() == Some(workflow)
            && points.len() == status.tasks.len()
            && points.iter().zip(&status.tasks).all(|(p, t)| {
                p["status"].as_str() == t.phase.as_deref()
                    && p["taskID"].as_str() == t.id.as_deref()
            })
    });
    if same {
        Ok(())
    } else {
        Err(format!(
            "\nwatch {}: {}\nsimulator: {truth}",
            w.metadata.name.as_deref().unwrap_or_default(),
            serde_json::to_string_pretty(&w.status).unwrap_or_default(),
        ))
    }
}

/// Waits until the watch shows the simulator's `workflow` as it is now.
pub async fn wait_converged(
    client: &Client,
    ns: &str,
    name: &str,
    sim: &Sim,
    workflow: &str,
    secs: u64,
) -> UpgradeWorkflowWatch {
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns);
    let what = format!("watch {name} converged on {workflow}");
    eventually(&what, Duration::from_secs(secs), KUBE_POLL, || async {
        let w = api.get(name).await.expect("get watch");
        converged(sim, &w, workflow).await.map(|()| w)
    })
    .await
}

/// Steps the workflow through the rest of its timeline, waiting for the watch to show
/// each step (and where it is before the first).
pub async fn play_to_end(client: &Client, ns: &str, name: &str, sim: &Sim, workflow: &str) {
    wait_converged(client, ns, name, sim, workflow, 30).await;
    while steps_left(sim, workflow).await > 0 {
        sim.step(workflow, 1).await;
        wait_converged(client, ns, name, sim, workflow, 30).await;
    }
}

/// Steps of its timeline the simulator has still to play for `workflow`.
pub async fn steps_left(sim: &Sim, workflow: &str) -> u64 {
    sim.workflow(workflow).await["stepsLeft"]
        .as_u64()
        .unwrap_or(0)
}
