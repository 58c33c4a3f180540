//! The caches behind accounts, and the accounts' own controllers: namespaced accounts per
//! scope served, cluster-scoped accounts, the namespaces' labels, and the marked Secrets of
//! every scope and of the operator's namespace. Each change is also reported (as a
//! [`Change`]) so the watches depending on it are reconciled.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, controller, predicates, watcher};
use kube::{Client, ResourceExt};
use tracing::warn;

use crate::crd::{AccountKind, CceAccount, ClusterCceAccount};
use crate::credentials::accounts::{AccountName, Accounts};
use crate::reconciler::accounts::{
    AccountContext, account_error_policy, reconcile_cluster, reconcile_namespaced,
};
use crate::reconciler::context::Context;
use crate::run::RunArgs;
use crate::run::caches::{self, SecretMeta, WatchStore};
use crate::run::triggers::Change;
use crate::runtime::shutdown;

type Listed = tokio::sync::watch::Receiver<bool>;
type Events<K> = BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;
type Changes = futures::channel::mpsc::UnboundedSender<Change>;
type SecretCache = (
    Store<SecretMeta>,
    BoxStream<'static, Result<SecretMeta, watcher::Error>>,
    Listed,
);

/// One cache: its store, the stream that fills it, and whether it has listed.
struct Cache<K: kube::Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    events: Events<K>,
    listed: Listed,
}

impl<K> Cache<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    fn of(api: Api<K>) -> Self {
        let (store, events, listed) = caches::object_stream(api);
        Self {
            store,
            events: events.boxed(),
            listed,
        }
    }
}

pub(super) struct Caches {
    namespaced: Vec<Cache<CceAccount>>,
    /// Cluster accounts and namespaces' labels, when ClusterCCEAccounts are served.
    cluster: Option<(
        Cache<ClusterCceAccount>,
        Cache<PartialObjectMeta<Namespace>>,
    )>,
    /// Marked Secrets: their metadata is enough to know when to read one again.
    secrets: Vec<SecretCache>,
    concurrency: u16,
    /// Whether this instance writes the status of CCEAccounts, and of ClusterCCEAccounts.
    writes: (bool, bool),
}

impl Caches {
    /// The caches of `scopes`; their streams run once [`Caches::run`] is called.
    pub(super) fn start(args: &RunArgs, client: &Client, scopes: &[Option<String>]) -> Self {
        let namespaced = scopes
            .iter()
            .map(|scope| {
                Cache::of(match scope {
                    Some(ns) => Api::<CceAccount>::namespaced(client.clone(), ns),
                    None => Api::all(client.clone()),
                })
            })
            .collect();
        // A ClusterCCEAccount's Secret lives in the operator's namespace, served or not.
        let mut secret_scopes: Vec<Option<&str>> = scopes.iter().map(Option::as_deref).collect();
        if args.cluster_accounts
            && !scopes.contains(&None)
            && !scopes.contains(&Some(args.operator_namespace.clone()))
        {
            secret_scopes.push(Some(&args.operator_namespace));
        }
        let secrets = secret_scopes
            .into_iter()
            .map(|scope| {
                let (store, events, listed) = caches::secret_metadata_stream(client.clone(), scope);
                (store, events.boxed(), listed)
            })
            .collect();
        let cluster = args.cluster_accounts.then(|| {
            (
                Cache::of(Api::all(client.clone())),
                Cache::of(Api::all(client.clone())),
            )
        });
        // Writers that see different sets of watches would overwrite each other's counts.
        let writes = args.account_status.unwrap_or(args.label_selector.is_none());
        Self {
            namespaced,
            cluster,
            secrets,
            concurrency: args.concurrency.clamp(1, 16),
            writes: (writes, writes && scopes == [None]),
        }
    }

    /// The accounts as reconciles look them up.
    pub(super) fn accounts(&self, args: &RunArgs, synced: Listed) -> Accounts {
        let (cluster, namespaces) = match &self.cluster {
            Some((accounts, namespaces)) => (accounts.store.clone(), namespaces.store.clone()),
            None => (reflector::store().0, reflector::store().0),
        };
        Accounts {
            namespaced: self.namespaced.iter().map(|c| c.store.clone()).collect(),
            cluster,
            namespaces,
            operator_namespace: args.operator_namespace.clone(),
            cluster_accounts: args.cluster_accounts,
            synced,
        }
    }

    pub(super) fn secret_stores(&self) -> Vec<Store<SecretMeta>> {
        self.secrets.iter().map(|(s, _, _)| s.clone()).collect()
    }

    /// Every cache's listed flag.
    pub(super) fn listed(&self) -> Vec<Listed> {
        let accounts = self.namespaced.iter().map(|c| c.listed.clone());
        let secrets = self.secrets.iter().map(|(_, _, l)| l.clone());
        let cluster = self
            .cluster
            .iter()
            .flat_map(|(a, n)| [a.listed.clone(), n.listed.clone()]);
        accounts.chain(secrets).chain(cluster).collect()
    }

    /// Runs every stream until shutdown: the accounts through their controllers, the
    /// namespaces and Secrets drained, each change reported on `changes`.
    pub(super) fn run(self, ctx: Arc<Context>, watches: Vec<WatchStore>, changes: Changes) {
        let actx = Arc::new(AccountContext::new(ctx, watches));
        let config = controller::Config::default().concurrency(self.concurrency);
        let (write_namespaced, write_cluster) = self.writes;
        for cache in self.namespaced {
            let events = reporting(cache.events, generation, namespaced_change, changes.clone());
            if write_namespaced {
                let controller = Controller::for_stream(by_generation(events), cache.store)
                    .with_config(config.clone())
                    .graceful_shutdown_on(shutdown::signal())
                    .run(reconcile_namespaced, account_error_policy, actx.clone());
                tokio::spawn(drain(controller));
            } else {
                tokio::spawn(events.for_each(|_| async {}));
            }
        }
        if let Some((accounts, namespaces)) = self.cluster {
            let events = reporting(accounts.events, generation, cluster_change, changes.clone());
            if write_cluster {
                let controller = Controller::for_stream(by_generation(events), accounts.store)
                    .with_config(config)
                    .graceful_shutdown_on(shutdown::signal())
                    .run(reconcile_cluster, account_error_policy, actx);
                tokio::spawn(drain(controller));
            } else {
                tokio::spawn(events.for_each(|_| async {}));
            }
            let labels = reporting(namespaces.events, labels, namespace_change, changes.clone());
            tokio::spawn(labels.for_each(|_| async {}));
        }
        for (_, events, _) in self.secrets {
            let tx = changes.clone();
            tokio::spawn(events.for_each(move |event| {
                if let Ok(secret) = event {
                    let _ = tx.unbounded_send(Change::Secret {
                        namespace: secret.namespace().unwrap_or_default(),
                        name: secret.name_any(),
                    });
                }
                async {}
            }));
        }
    }
}

/// Reports on `changes` what of `events` concerns watches: an object whose `fingerprint`
/// changed (an account's spec, a namespace's labels) or that was deleted. A status the
/// operator wrote, or a re-list of unchanged objects, concerns none, so it does not wake
/// every watch of an account.
fn reporting<K>(
    events: Events<K>,
    fingerprint: fn(&K) -> u64,
    change: fn(&K) -> Change,
    changes: Changes,
) -> Events<K>
where
    K: kube::Resource<DynamicType = ()> + Send + 'static,
{
    let mut seen: HashMap<ObjectRef<K>, u64> = HashMap::new();
    events
        .inspect(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    let now = fingerprint(o);
                    (seen.insert(ObjectRef::from_obj(o), now) != Some(now)).then_some(o)
                }
                Ok(watcher::Event::Delete(o)) => {
                    seen.remove(&ObjectRef::from_obj(o));
                    Some(o)
                }
                _ => None,
            };
            if let Some(object) = changed {
                let _ = changes.unbounded_send(change(object));
            }
        })
        .boxed()
}

/// The accounts whose spec changed (or that are new): their own status writes do not
/// reconcile them again; they are checked again on a timer.
fn by_generation<K>(
    events: Events<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    events
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default())
}

fn generation<K: kube::Resource>(object: &K) -> u64 {
    object.meta().generation.unwrap_or_default() as u64
}

fn labels(namespace: &PartialObjectMeta<Namespace>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    namespace.metadata.labels.hash(&mut hasher);
    hasher.finish()
}

fn namespaced_change(account: &CceAccount) -> Change {
    Change::Account(AccountName {
        kind: AccountKind::Namespaced,
        namespace: account.namespace(),
        name: account.name_any(),
    })
}

fn cluster_change(account: &ClusterCceAccount) -> Change {
    Change::Account(AccountName {
        kind: AccountKind::Cluster,
        namespace: None,
        name: account.name_any(),
    })
}

fn namespace_change(namespace: &PartialObjectMeta<Namespace>) -> Change {
    Change::Namespace(namespace.name_any())
}

/// Polls a controller to its end, logging what is not a failed reconcile.
fn drain<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    results: impl futures::Stream<Item = Result<T, E>> + Send + 'static,
) -> futures::future::BoxFuture<'static, ()> {
    results
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "account controller");
            }
        })
        .boxed()
}
