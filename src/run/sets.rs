//! The UpgradeWatchSets' controllers, one per scope served, like the watches': a set is
//! reconciled when its spec changes (generation; its own status writes do not wake it) and
//! then every listInterval. Not started when the operator cannot list UpgradeWatchSets (an
//! older chart's CRDs, or RBAC without them, which is how an administrator turns sets
//! off): the watches are served all the same.

use std::sync::Arc;

use futures::{FutureExt as _, StreamExt as _};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, controller, predicates, watcher};
use tracing::{info, warn};

use crate::crd::UpgradeWatchSet;
use crate::reconciler::context::Context;
use crate::reconciler::sets::{SetContext, reconcile_set, set_error_policy};
use crate::run::RunArgs;
use crate::runtime::shutdown;

/// Sets reconciled at once per scope: each pass is one or two CCE requests and a few writes.
const CONCURRENCY: u16 = 4;

/// The set controllers of `scopes`, ready to be polled; none when sets cannot be listed.
pub(super) async fn controllers(
    args: &RunArgs,
    client: &Client,
    scopes: &[Option<String>],
    ctx: &Arc<Context>,
    identity: &str,
) -> Vec<futures::future::BoxFuture<'static, ()>> {
    if !args.watch_sets {
        info!("UpgradeWatchSets are not served (--watch-sets=false)");
        return Vec::new();
    }
    if !sets_listable(client, scopes.first().cloned().flatten()).await {
        return Vec::new();
    }
    let sctx = Arc::new(SetContext {
        ctx: ctx.clone(),
        controller: "cce-upgrade-watch".into(),
        instance: identity.to_string(),
        list_every: args.set_list_interval,
        announced: Default::default(),
    });
    scopes
        .iter()
        .map(|scope| {
            let api: Api<UpgradeWatchSet> = match scope {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let (store, writer) = kube::runtime::reflector::store();
            let sets = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect(writer)
                .applied_objects()
                .predicate_filter(predicates::generation, PredicateConfig::default());
            Controller::for_stream(sets, store)
                .with_config(controller::Config::default().concurrency(CONCURRENCY))
                .graceful_shutdown_on(shutdown::signal())
                .run(reconcile_set, set_error_policy, sctx.clone())
                .for_each(|result| async move {
                    match result {
                        Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                        Err(other) => warn!(error = %other, "set controller"),
                    }
                })
                .boxed()
        })
        .collect()
}

/// Whether UpgradeWatchSets can be listed (in the first namespace served, if scoped).
async fn sets_listable(client: &Client, namespace: Option<String>) -> bool {
    let api: Api<UpgradeWatchSet> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            info!(
                "the UpgradeWatchSet CRD is not installed: sets are not served (apply crds/ to serve them)"
            );
            false
        }
        Err(e) => {
            warn!(error = %e, "cannot list UpgradeWatchSets: sets are not served");
            false
        }
    }
}
