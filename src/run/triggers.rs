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
