//! Who may use which account, decided from the objects alone: a ClusterCCEAccount's
//! namespace conditions and cluster list, and what a watch written before accounts must
//! change. Pure: the caller looks the objects up.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};

use crate::crd::UpgradeWorkflowWatchSpec;
use crate::crd::account::NamespaceCondition;

/// Whether a namespace named `namespace` with `labels` meets any of `conditions`. None
/// means no namespace; a selector that cannot be read admits nothing.
pub fn admits(
    conditions: &[NamespaceCondition],
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    conditions.iter().any(|condition| {
        condition.namespaces.iter().any(|n| n == namespace)
            || condition.namespace_selector.as_ref().is_some_and(|s| {
                Selector::try_from(s.clone()).is_ok_and(|selector| selector.matches(labels))
            })
    })
}

/// Whether an account restricted to `cluster_ids` (empty: none restricted) serves `cluster`.
pub fn serves_cluster(cluster_ids: &[String], cluster: &str) -> bool {
    cluster_ids.is_empty() || cluster_ids.iter().any(|id| id == cluster)
}

/// What a watch without an account must do, naming the fields it still carries from
/// before accounts.
pub fn without_account(spec: &UpgradeWorkflowWatchSpec) -> String {
    let legacy: Vec<&str> = [
        ("region", spec.region.is_some()),
        ("endpoint", spec.endpoint.is_some()),
        ("projectID", spec.project_id.is_some()),
        (
            "credentialsSecretRef",
            spec.credentials_secret_ref.is_some(),
        ),
        ("workloadIdentity", spec.workload_identity.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    if legacy.is_empty() {
        "the watch names no account: set spec.accountRef to a CCEAccount of this namespace or a ClusterCCEAccount that lists it".into()
    } else {
        format!(
            "the watch names no account and its {} are no longer read: create a CCEAccount in this namespace with them (a Secret must be labelled cce.upgradewatch.io/credentials=true), remove them from the watch and set spec.accountRef (CHANGELOG, \"Accounts\")",
            legacy.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_condition_admits_no_namespace() {
        assert!(!admits(&[], "team-a", &labels(&[("team", "a")])));
    }

    #[test]
    fn a_namespace_is_admitted_by_name_or_by_its_labels() {
        let conditions = vec![
            NamespaceCondition {
                namespaces: vec!["team-a".into()],
                ..Default::default()
            },
            NamespaceCondition {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(labels(&[("cce-access", "shared")])),
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "tier".into(),
                        operator: "NotIn".into(),
                        values: Some(vec!["sandbox".into()]),
                    }]),
                }),
                ..Default::default()
            },
        ];
        assert!(admits(&conditions, "team-a", &labels(&[])));
        assert!(admits(
            &conditions,
            "team-b",
            &labels(&[("cce-access", "shared")])
        ));
        assert!(!admits(
            &conditions,
            "team-b",
            &labels(&[("cce-access", "shared"), ("tier", "sandbox")])
        ));
        assert!(!admits(&conditions, "team-c", &labels(&[("team", "c")])));
        // A name is not a prefix: team-a-other is another namespace.
        assert!(!admits(&conditions, "team-a-other", &labels(&[])));
    }

    #[test]
    fn an_unreadable_selector_admits_nothing() {
        let conditions = vec![NamespaceCondition {
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "team".into(),
                    operator: "Sometimes".into(),
                    values: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }];
        assert!(!admits(&conditions, "team-a", &labels(&[("team", "a")])));
    }

    #[test]
    fn a_cluster_list_restricts_the_clusters_served() {
        assert!(serves_cluster(&[], "c-1"));
        assert!(serves_cluster(&["c-1".into()], "c-1"));
        assert!(!serves_cluster(&["c-1".into()], "c-2"));
    }

    #[test]
    fn a_watch_from_before_accounts_is_told_which_fields_to_move() {
        let spec: UpgradeWorkflowWatchSpec = serde_json::from_value(serde_json::json!({
            "clusterID": "c", "projectID": "p", "region": "ap-southeast-1",
            "credentialsSecretRef": {"name": "keys"}
        }))
        .expect("spec");
        let message = without_account(&spec);
        assert!(
            message.contains("region, projectID, credentialsSecretRef are no longer read"),
            "{message}"
        );
        assert!(message.contains("spec.accountRef"), "{message}");
        let bare: UpgradeWorkflowWatchSpec =
            serde_json::from_value(serde_json::json!({"clusterID": "c"})).expect("spec");
        assert!(without_account(&bare).starts_with("the watch names no account: set"));
    }
}
