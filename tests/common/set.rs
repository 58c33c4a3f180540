//! UpgradeWatchSets: applied, read, and waited for; the watches a set generated, found by
//! its label.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::Value;

use cce_upgrade_watch::crd::set::SET_LABEL;
use cce_upgrade_watch::crd::{UpgradeWatchSet, UpgradeWorkflowWatch};

use super::eventually::{KUBE_POLL, eventually};

/// Applies the set `name` of `ns` with `spec` (replacing one that exists).
pub async fn apply_set(client: &Client, ns: &str, name: &str, spec: Value) {
    let set = serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWatchSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    });
    Api::<UpgradeWatchSet>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("e2e-tests").force(),
            &Patch::Apply(&set),
        )
        .await
        .unwrap_or_else(|e| panic!("apply UpgradeWatchSet {ns}/{name}: {e}"));
}

/// The watches labelled with the set `name`, by name.
pub async fn set_watches(client: &Client, ns: &str, name: &str) -> Vec<UpgradeWorkflowWatch> {
    let mut watches = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{SET_LABEL}={name}")))
        .await
        .expect("list the set's watches")
        .items;
    watches.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    watches
}

/// The condition `type_` of a set as (status, reason, message).
pub fn set_cond(set: &UpgradeWatchSet, type_: &str) -> Option<(String, String, String)> {
    set.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Reads the set until `done` holds, failing after `secs` with the last status seen.
pub async fn wait_set(
    client: &Client,
    ns: &str,
    name: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&UpgradeWatchSet) -> bool,
) -> UpgradeWatchSet {
    let api = Api::<UpgradeWatchSet>::namespaced(client.clone(), ns);
    eventually(what, Duration::from_secs(secs), KUBE_POLL, || async {
        let set = api.get(name).await.expect("get set");
        if done(&set) {
            Ok(set)
        } else {
            Err(format!(
                "status {}",
                serde_json::to_string_pretty(&set.status).unwrap_or_default()
            ))
        }
    })
    .await
}
