//! The operator's custom resources: the watch (`watch`), the two account kinds a watch
//! names (`account`) and the set that generates a watch per cluster (`set`). Doc comments
//! in them are what `kubectl explain` prints.

pub mod account;
pub mod set;
mod watch;

pub use account::{AccountKind, AccountRef, AccountStatus, CceAccount, ClusterCceAccount};
pub use set::{UpgradeWatchSet, UpgradeWatchSetSpec, UpgradeWatchSetStatus};
pub use watch::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD of the operator, by plural: `make crd` writes each to `crds/<plural>.<group>.yaml`.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![
        UpgradeWorkflowWatch::crd(),
        CceAccount::crd(),
        ClusterCceAccount::crd(),
        UpgradeWatchSet::crd(),
    ]
}

/// The CRD named `plural` as YAML, exactly as committed under `crds/`; every CRD, one YAML
/// document each, when `plural` is `None`.
pub fn crd_yaml(plural: Option<&str>) -> Result<String, String> {
    let chosen: Vec<_> = definitions()
        .into_iter()
        .filter(|crd| plural.is_none_or(|p| crd.spec.names.plural == p))
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "no CRD named {}: one of upgradeworkflowwatches, cceaccounts, clustercceaccounts, upgradewatchsets",
            plural.unwrap_or_default()
        ));
    }
    let documents: Result<Vec<_>, _> = chosen.iter().map(serde_yaml::to_string).collect();
    Ok(documents.map_err(|e| e.to_string())?.join("---\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_kinds_have_their_names_scopes_and_columns() {
        let namespaced = CceAccount::crd();
        assert_eq!(namespaced.spec.names.kind, "CCEAccount");
        assert_eq!(namespaced.spec.scope, "Namespaced");
        let cluster = ClusterCceAccount::crd();
        assert_eq!(cluster.spec.names.kind, "ClusterCCEAccount");
        assert_eq!(cluster.spec.scope, "Cluster");
        for crd in [namespaced, cluster] {
            assert_eq!(crd.spec.group, GROUP);
            let columns: Vec<_> = crd.spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.as_str())
                .collect();
            assert_eq!(
                columns,
                [
                    "Project", "Region", "Watches", "Ready", "Reason", "Age", "Endpoint"
                ]
            );
        }
    }

    #[test]
    fn an_account_reads_flat_and_round_trips() {
        let yaml = r#"
apiVersion: cce.upgradewatch.io/v1alpha1
kind: ClusterCCEAccount
metadata: {name: shared}
spec:
  region: ap-southeast-1
  projectID: p-1
  credentials: {operatorDefaults: {}}
  conditions:
    - namespaces: [team-a]
    - namespaceSelector: {matchLabels: {cce-access: shared}}
  clusterIDs: [c-1]
"#;
        let account: ClusterCceAccount = serde_yaml::from_str(yaml).expect("account");
        assert_eq!(account.spec.target.project_id, "p-1");
        assert!(account.spec.credentials.operator_defaults.is_some());
        assert_eq!(account.spec.conditions.len(), 2);
        let back = serde_json::to_value(&account.spec).expect("json");
        assert_eq!(back["region"], "ap-southeast-1");
        assert_eq!(back["clusterIDs"][0], "c-1");
    }

    /// Every committed copy of each generated CRD, relative to the package root: the one
    /// `kubectl apply` users take, and the Helm chart's (`make crd` writes both).
    fn committed_copies(plural: &str) -> [String; 2] {
        let file = format!("{plural}.{GROUP}.yaml");
        [
            format!("crds/{file}"),
            format!("charts/cce-upgrade-watch/files/crds/{file}"),
        ]
    }

    #[test]
    fn committed_crds_match_the_types() {
        let root = env!("CARGO_MANIFEST_DIR");
        for crd in definitions() {
            let plural = &crd.spec.names.plural;
            let generated = crd_yaml(Some(plural)).expect("serialize CRD");
            for path in committed_copies(plural) {
                let committed = std::fs::read_to_string(format!("{root}/{path}"))
                    .unwrap_or_else(|e| panic!("read {path}: {e}"));
                assert!(
                    committed == generated,
                    "{path} is out of date with src/crd/: run `make crd` and commit the result"
                );
            }
        }
    }
}
