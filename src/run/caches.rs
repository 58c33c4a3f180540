//! The caches a controller reads: the watches of one scope (paged, with the metadata no
//! reconcile reads dropped, re-listed in place), the accounts, the namespaces' labels and
//! the metadata of marked Secrets, each with a flag that turns true once it has listed; and
//! the kube-rs Controller over the watches.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, controller, predicates, watcher};
use kube::{Client, ResourceExt};

use crate::crd::UpgradeWorkflowWatch;
use crate::crd::account::{CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE};
use crate::reconciler::book::StatusBook;
use crate::run::RunArgs;
use crate::runtime::relist;
use crate::runtime::shutdown;

/// Turns `true` once a watcher stream has listed everything (its first `InitDone`).
/// Readiness waits on these rather than on `Store::wait_until_ready`: that future wakes only
/// the task that polled it last, and the controller waits on its store too, so a second
/// waiter could sleep forever (it did: `/readyz` stayed 503 while watches were served).
fn listed_flag<K>(
    flag: tokio::sync::watch::Sender<bool>,
) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) {
    move |event| {
        if matches!(event, Ok(watcher::Event::InitDone)) {
            flag.send_replace(true);
        }
    }
}

/// A Secret without its data.
pub(super) type SecretMeta = kube::api::PartialObjectMeta<Secret>;

/// The metadata-only watch of the marked Secrets of one scope (the API server filters on the
/// label: no other Secret ever reaches the operator), its store, and whether it has listed.
pub(super) fn secret_metadata_stream(
    client: Client,
    scope: Option<&str>,
) -> (
    reflector::Store<SecretMeta>,
    impl futures::Stream<Item = Result<SecretMeta, watcher::Error>> + Send + 'static,
    tokio::sync::watch::Receiver<bool>,
) {
    let api = match scope {
        Some(ns) => Api::<SecretMeta>::namespaced(client, ns),
        None => Api::all(client),
    };
    let (reader, writer) = reflector::store();
    let (flag, listed) = tokio::sync::watch::channel(false);
    let marked = format!("{CREDENTIALS_LABEL}={CREDENTIALS_LABEL_VALUE}");
    let events = watcher(
        api,
        watcher::Config::default().any_semantic().labels(&marked),
    )
    .default_backoff();
    let stream = relist::in_place(events, reader.clone())
        .modify(|s| s.managed_fields_mut().clear())
        .reflect(writer)
        .inspect(listed_flag(flag))
        .touched_objects();
    (reader, stream, listed)
}

/// The watch of a small kind (accounts, namespaces' metadata), its store, its events, and
/// whether it has listed.
pub(super) fn object_stream<K>(
    api: Api<K>,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    tokio::sync::watch::Receiver<bool>,
)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let (flag, listed) = tokio::sync::watch::channel(false);
    let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let stream = relist::in_place(events, reader.clone())
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(writer)
        .inspect(listed_flag(flag));
    (reader, stream, listed)
}

pub(super) type WatchStore = reflector::Store<UpgradeWorkflowWatch>;

/// Watches listed per request when the watch is (re)listed. Each page is decoded whole, with
/// the managedFields and status the cache then drops; small pages keep a re-list after an
/// expired watch small (and [`relist::in_place`] keeps it from copying the cache). The most-recent list semantic is the one the
/// API server paginates on every version (a list at resourceVersion 0 is answered whole by
/// older ones).
const RELIST_PAGE: u32 = 100;

/// How the watches are listed and watched: pages of [`RELIST_PAGE`], most recent, filtered
/// on the user's label selector.
fn watch_config(label_selector: Option<&str>) -> watcher::Config {
    let config = watcher::Config::default().page_size(RELIST_PAGE);
    match label_selector {
        Some(selector) => config.labels(selector),
        None => config,
    }
}

/// The cache holds every watch for the life of the process, so it keeps only what the
/// operator reads. managedFields are most of an object's size once its status is written;
/// labels and annotations (a GitOps tool's last-applied copy of the whole object, say) are
/// matched by the API server, never here.
fn drop_unread_metadata(watch: &mut UpgradeWorkflowWatch) {
    let meta = &mut watch.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
}

/// The controller of one scope: watches (filtered on generation, so our own status writes
/// never trigger a poll), re-triggered by `changed` (their account, its Secret or their
/// namespace changed). Statuses go to the book, the rest of each watch to the cache.
pub(super) fn scoped_controller(
    args: &RunArgs,
    client: Client,
    scope: Option<&str>,
    changed: impl futures::Stream<Item = ObjectRef<UpgradeWorkflowWatch>> + Send + 'static,
    reconcile_all: futures::channel::mpsc::UnboundedReceiver<()>,
    statuses: Arc<StatusBook>,
) -> (
    WatchStore,
    tokio::sync::watch::Receiver<bool>,
    Controller<UpgradeWorkflowWatch>,
) {
    let api: Api<UpgradeWorkflowWatch> = match scope {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let config = watch_config(args.label_selector.as_deref());
    let (reader, writer) = reflector::store();
    let (flag, listed) = tokio::sync::watch::channel(false);
    let events = watcher(api, config).default_backoff();
    let stream = relist::in_place(events, reader.clone())
        .map_ok(move |mut event| {
            statuses.follow(&mut event);
            event
        })
        .modify(drop_unread_metadata)
        .reflect(writer)
        .inspect(listed_flag(flag))
        .applied_objects()
        .predicate_filter(
            predicates::generation,
            PredicateConfig::default().ttl(Duration::from_secs(7 * 24 * 3600)),
        );
    let controller = Controller::for_stream(stream, reader.clone())
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .reconcile_on(changed)
        .reconcile_all_on(reconcile_all)
        .graceful_shutdown_on(shutdown::signal());
    (reader, listed, controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_listed_in_small_pages_that_every_api_server_paginates() {
        let config = watch_config(Some("team=a"));
        assert_eq!(config.page_size, Some(RELIST_PAGE));
        assert_eq!(config.list_semantic, watcher::ListSemantic::MostRecent);
        assert_eq!(config.label_selector.as_deref(), Some("team=a"));
        assert_eq!(watch_config(None).label_selector, None);
    }

    #[test]
    fn the_cache_keeps_what_reconciles_read_and_drops_the_rest_of_the_metadata() {
        let mut watch: UpgradeWorkflowWatch = serde_json::from_value(serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1",
            "kind": "UpgradeWorkflowWatch",
            "metadata": {
                "name": "prod", "namespace": "team-a", "uid": "u-1",
                "generation": 3, "resourceVersion": "42",
                "labels": {"app": "x"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-0"}],
                "finalizers": ["example.com/keep"],
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"clusterID": "c", "upgradeWorkflowID": "w",
                     "accountRef": {"name": "cce"}}
        }))
        .expect("a valid watch");
        let spec_before = serde_json::to_value(&watch.spec).expect("spec");

        drop_unread_metadata(&mut watch);

        let meta = &watch.metadata;
        assert_eq!(
            (meta.labels.as_ref(), meta.annotations.as_ref()),
            (None, None)
        );
        assert_eq!(meta.owner_references, None);
        assert_eq!(meta.finalizers, None);
        assert_eq!(meta.managed_fields, None);
        assert_eq!(
            (
                meta.name.as_deref(),
                meta.namespace.as_deref(),
                meta.uid.as_deref(),
                meta.generation,
                meta.resource_version.as_deref()
            ),
            (
                Some("prod"),
                Some("team-a"),
                Some("u-1"),
                Some(3),
                Some("42")
            )
        );
        assert_eq!(
            serde_json::to_value(&watch.spec).expect("spec"),
            spec_before
        );
    }
}
