//! Which watches to reconcile when something they depend on changes: their account, the
//! marked Secret behind it, or their namespace's labels (a ClusterCCEAccount's selector may
//! now match, or no longer).

use std::sync::Arc;

use futures::StreamExt as _;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use kube::runtime::reflector::ObjectRef;

use crate::crd::{AccountKind, UpgradeWorkflowWatch};
use crate::credentials::accounts::{AccountName, Accounts, Source};
use crate::reconciler::context::Context;
use crate::run::caches::WatchStore;

/// Something watches depend on that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Change {
    Account(AccountName),
    Secret { namespace: String, name: String },
    Namespace(String),
}

/// Sends each scope's controller the watches a change concerns, for as long as changes come.
pub(super) fn route(
    ctx: Arc<Context>,
    scopes: Vec<(WatchStore, UnboundedSender<ObjectRef<UpgradeWorkflowWatch>>)>,
    mut changes: UnboundedReceiver<Change>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(change) = changes.next().await {
            for (store, controller) in &scopes {
                for watch in store.state() {
                    if concerns(&change, &watch, &ctx.accounts) {
                        let _ = controller.unbounded_send(ObjectRef::from_obj(&*watch));
                    }
                }
            }
        }
    })
}

/// Whether `change` may change what `watch` is served with.
fn concerns(change: &Change, watch: &UpgradeWorkflowWatch, accounts: &Accounts) -> bool {
    let Some(reference) = &watch.spec.account_ref else {
        return false;
    };
    let namespace = watch.metadata.namespace.as_deref().unwrap_or_default();
    match change {
        Change::Account(account) => {
            account.kind == reference.kind
                && account.name == reference.name
                && (account.kind == AccountKind::Cluster
                    || account.namespace.as_deref() == Some(namespace))
        }
        Change::Secret {
            namespace: secret_namespace,
            name,
        } => accounts.serve_now(watch).is_ok_and(|served| {
            served.source
                == Source::Secret {
                    namespace: secret_namespace.clone(),
                    name: name.clone(),
                }
        }),
        Change::Namespace(changed) => {
            reference.kind == AccountKind::Cluster && changed == namespace
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};

    use crate::crd::CceAccount;

    fn watch(ns: &str, account: serde_json::Value) -> UpgradeWorkflowWatch {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "UpgradeWorkflowWatch",
            "metadata": {"name": "w", "namespace": ns},
            "spec": {"clusterID": "c", "accountRef": account}
        }))
        .expect("watch")
    }

    fn accounts() -> Accounts {
        let (namespaced, mut writer) = reflector::store::<CceAccount>();
        let account: CceAccount = serde_json::from_value(serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "CCEAccount",
            "metadata": {"name": "prod", "namespace": "team-a"},
            "spec": {"region": "ap-southeast-1", "projectID": "p",
                     "credentials": {"secretRef": {"name": "keys"}}}
        }))
        .expect("account");
        writer.apply_watcher_event(&watcher::Event::Apply(account));
        Accounts {
            namespaced: vec![namespaced],
            cluster: reflector::store().0,
            namespaces: reflector::store().0,
            operator_namespace: "operator".into(),
            cluster_accounts: true,
            synced: tokio::sync::watch::channel(true).1,
        }
    }

    #[test]
    fn a_change_wakes_the_watches_it_concerns_and_no_other() {
        let accounts = accounts();
        let own = watch("team-a", serde_json::json!({"name": "prod"}));
        let elsewhere = watch("team-b", serde_json::json!({"name": "prod"}));
        let shared = watch(
            "team-b",
            serde_json::json!({"kind": "ClusterCCEAccount", "name": "prod"}),
        );
        let account = |kind, namespace: Option<&str>| {
            Change::Account(AccountName {
                kind,
                namespace: namespace.map(str::to_string),
                name: "prod".into(),
            })
        };
        let prod_a = account(AccountKind::Namespaced, Some("team-a"));
        assert!(concerns(&prod_a, &own, &accounts));
        assert!(!concerns(&prod_a, &elsewhere, &accounts));
        assert!(!concerns(&prod_a, &shared, &accounts));
        let cluster = account(AccountKind::Cluster, None);
        assert!(concerns(&cluster, &shared, &accounts));
        assert!(!concerns(&cluster, &own, &accounts));

        let keys = |namespace: &str| Change::Secret {
            namespace: namespace.into(),
            name: "keys".into(),
        };
        assert!(concerns(&keys("team-a"), &own, &accounts));
        assert!(!concerns(&keys("team-b"), &own, &accounts));
        assert!(!concerns(&keys("team-b"), &elsewhere, &accounts));

        let labelled = Change::Namespace("team-b".into());
        assert!(concerns(&labelled, &shared, &accounts));
        assert!(!concerns(&labelled, &elsewhere, &accounts));
        assert!(!concerns(
            &Change::Namespace("team-a".into()),
            &own,
            &accounts
        ));
    }
}
