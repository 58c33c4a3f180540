//! `cce-upgrade-watch run`: the operator process. Wires the watch and Secret caches, the
//! kube-rs Controller, leadership, the admin server and shutdown together.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, controller, predicates, watcher};
use kube::{Client, ResourceExt};
use tracing::{error, info, warn};

use super::apply::EventPublisher;
use super::book::StatusBook;
use super::fetch::{Fetcher, per_endpoint_share};
use super::identity::{ExchangeSettings, WorkloadIdentities};
use super::reconcile::{Context, error_policy, reconcile};
use super::schedule::PollPolicy;
use super::secrets::SecretCredentials;
use super::{defaults, relist, renewal};
use crate::cce::client::{CceClient, ClientConfig};
use crate::cce::endpoint::{EndpointArgs, INSECURE_WARNING};
use crate::cce::iam::Exchanger;
use crate::crd::UpgradeWorkflowWatch;
use crate::duration;
use crate::metrics::Metrics;
use crate::runtime::admin::{self, Readiness};
use crate::runtime::kube_client;
use crate::runtime::leader::{self, Leadership, LeaseConfig};
use crate::runtime::logging::{self, LogFormat};
use crate::runtime::shutdown;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// Elect a leader on a Lease so only one replica acts.
    #[arg(long, env = "LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "cce-upgrade-watch")]
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Identity in the Lease; defaults to the pod or host name.
    #[arg(long, env = "POD_NAME")]
    pub lease_identity: Option<String>,
    /// How long a Lease is valid without renewal, in seconds; a standby takes over after it.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Resync of finished upgrades (and search for newer workflows when following).
    #[arg(long, env = "TERMINAL_RESYNC", default_value = "10m", value_parser = duration::parse)]
    pub terminal_resync: Duration,
    /// First retry after a transient CCE error; doubles up to --backoff-cap.
    #[arg(long, env = "BACKOFF_BASE", default_value = "5s", value_parser = duration::parse)]
    pub backoff_base: Duration,
    #[arg(long, env = "BACKOFF_CAP", default_value = "5m", value_parser = duration::parse)]
    pub backoff_cap: Duration,
    /// Retry of errors a person must fix (credentials, permissions, missing workflow).
    #[arg(long, env = "PERMANENT_RETRY", default_value = "5m", value_parser = duration::parse)]
    pub permanent_retry: Duration,
    /// Longest time status.lastSyncTime may lag while nothing changes.
    #[arg(long, env = "SYNC_HEARTBEAT", default_value = "5m", value_parser = duration::parse)]
    pub sync_heartbeat: Duration,
    /// CCE requests per second per endpoint and project.
    #[arg(long, env = "CCE_RATE_LIMIT", default_value = "10")]
    pub cce_rate_limit: NonZeroU32,
    /// Burst allowed above --cce-rate-limit.
    #[arg(long, env = "CCE_RATE_BURST", default_value = "20")]
    pub cce_rate_burst: NonZeroU32,
    /// Timeout of one CCE request.
    #[arg(long, env = "CCE_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration::parse)]
    pub cce_request_timeout: Duration,
    #[arg(long, env = "CCE_CONNECT_TIMEOUT", default_value = "10s", value_parser = duration::parse)]
    pub cce_connect_timeout: Duration,
    /// Extra PEM CA certificates to trust for CCE endpoints.
    #[arg(long, env = "CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Serve only watches in these namespaces (and read Secrets only there).
    /// Repeatable or comma-separated; empty means every namespace.
    #[arg(long = "namespaces", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Serve only watches whose labels match this selector, so several instances can
    /// share a fleet (give each its own --lease-name).
    #[arg(long, env = "LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Watches reconciled in parallel. A reconcile mostly waits on the Kubernetes API
    /// (status write, events), so this bounds how many watches the operator keeps up with.
    #[arg(long, env = "CONCURRENCY", default_value_t = 64)]
    pub concurrency: u16,
    /// IAM endpoint for token exchanges: workload identities without `iamEndpoint` and the
    /// operator's own federated token. Empty means the watch's region's IAM, or
    /// https://iam.myhuaweicloud.com. Held to the IAM allow-list (--allowed-iam-endpoint).
    #[arg(long, env = "HUAWEICLOUD_SDK_IAM_ENDPOINT")]
    pub iam_endpoint: Option<url::Url>,
    /// Lifetime of the temporary keys asked of IAM (IAM accepts 15m to 24h); they are
    /// renewed before they expire.
    #[arg(long, env = "IAM_CREDENTIALS_DURATION", default_value = "1h", value_parser = iam_duration)]
    pub iam_credentials_duration: Duration,
    /// Directory holding the default-credentials Secret as a volume mounts it (files
    /// accessKey, secretKey, securityToken, token); read again when it changes.
    #[arg(long, env = "DEFAULT_CREDENTIALS_DIR")]
    pub default_credentials_dir: Option<PathBuf>,
}

/// A duration IAM accepts for temporary keys.
fn iam_duration(text: &str) -> Result<Duration, String> {
    let d = duration::parse(text)?;
    if (Duration::from_secs(900)..=Duration::from_secs(86_400)).contains(&d) {
        Ok(d)
    } else {
        Err("IAM issues temporary keys for 15m to 24h".into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect to Kubernetes: {0}")]
    Kube(#[source] kube::Error),
    #[error(
        "the UpgradeWorkflowWatch CRD is not installed in this cluster; install it with \
         `cce-upgrade-watch crd | kubectl apply -f -` (or the Helm chart) and start again"
    )]
    CrdMissing,
    #[error("cannot list UpgradeWorkflowWatches: {0}")]
    CrdCheck(#[source] kube::Error),
    #[error("invalid CCE client settings: {0}")]
    Cce(#[source] Box<crate::cce::error::CceError>),
    #[error("default credentials: {0}")]
    Defaults(String),
    #[error("leader election failed: {0}")]
    Lease(#[source] kube_lease_manager::LeaseManagerError),
    #[error("admin server on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    logging::init(args.log_format);
    let client = kube_client::infer().await.map_err(RunError::Kube)?;
    check_crd(&client, args.namespaces.first().map(String::as_str)).await?;

    let metrics = Metrics::new();
    let readiness = Readiness::default();
    let (addr, admin_server) = admin::serve(
        args.admin_listen,
        metrics.clone(),
        readiness.clone(),
        shutdown::signal(),
    )
    .await
    .map_err(|source| RunError::Admin {
        addr: args.admin_listen,
        source,
    })?;
    info!(%addr, "admin server listening");
    let admin_task = tokio::spawn(admin_server);

    let identity = args
        .lease_identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("cce-upgrade-watch-{}", std::process::id()));
    let (leadership, lease_changes) = if args.leader_elect {
        let config = LeaseConfig {
            name: args.lease_name.clone(),
            namespace: args.lease_namespace.clone(),
            identity: identity.clone(),
            duration_secs: args.lease_duration_seconds,
            grace_secs: (args.lease_duration_seconds / 3).max(1),
        };
        let election = leader::elect(client.clone(), &config)
            .await
            .map_err(RunError::Lease)?;
        (election.leadership.clone(), Some(election))
    } else {
        (Leadership::always(), None)
    };
    metrics.leader.set(i64::from(leadership.is_leader()));

    // One controller per scope: the whole cluster, or each namespace the operator serves.
    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    let secret_parts: Vec<_> = scopes
        .iter()
        .map(|scope| secret_metadata_stream(client.clone(), scope.as_deref()))
        .collect();
    let secret_stores: Vec<_> = secret_parts
        .iter()
        .map(|(store, _, _)| store.clone())
        .collect();
    let secrets_listed: Vec<_> = secret_parts
        .iter()
        .map(|(_, _, listed)| listed.clone())
        .collect();
    let (secrets_synced_tx, secrets_synced) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(build_context(
        &args,
        client.clone(),
        &identity,
        metrics.clone(),
        leadership.clone(),
        secret_stores.clone(),
        secrets_synced,
    )?);

    let mut reconcile_all = Vec::new();
    let mut watch_stores = Vec::new();
    let mut watches_listed = Vec::new();
    let mut controllers = Vec::new();
    for (scope, (_, secret_stream, _)) in scopes.iter().zip(secret_parts) {
        let (tx, rx) = futures::channel::mpsc::unbounded::<()>();
        reconcile_all.push(tx);
        let (store, listed, controller) = scoped_controller(
            &args,
            client.clone(),
            scope.as_deref(),
            secret_stream,
            rx,
            ctx.statuses.clone(),
        );
        watch_stores.push(store);
        watches_listed.push(listed);
        controllers.push(
            controller
                .run(reconcile, error_policy, ctx.clone())
                .for_each(|result| async move {
                    if let Err(e) = result {
                        match e {
                            controller::Error::ReconcilerFailed(..) => {}
                            other => warn!(error = %other, "controller"),
                        }
                    }
                }),
        );
    }

    let election_task = lease_changes.map(|election| {
        let ctx = ctx.clone();
        let metrics = metrics.clone();
        let on_change = move |leader: bool| {
            metrics.leader.set(i64::from(leader));
            ctx.forget_all();
            if !leader {
                // A standby serves no watch: its per-watch series would double-count
                // phases and age without end next to the new leader's.
                metrics.retain_watches(|_| false);
            }
            info!(leader, "leadership changed");
            if leader {
                for tx in &reconcile_all {
                    let _ = tx.unbounded_send(());
                }
            }
        };
        tokio::spawn(election.run(on_change, shutdown::signal()))
    });

    {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            for mut listed in secrets_listed {
                let _ = listed.wait_for(|done| *done).await;
            }
            let _ = secrets_synced_tx.send(true);
            for mut listed in watches_listed {
                let _ = listed.wait_for(|done| *done).await;
            }
            readiness.set_ready();
            info!("caches synced; ready");
        });
    }
    {
        let (ctx, stores) = (ctx.clone(), watch_stores.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                let all: Vec<_> = stores.iter().flat_map(|s| s.state()).collect();
                let live: HashSet<String> = all.iter().filter_map(|w| w.uid()).collect();
                let keys: HashSet<String> = all
                    .iter()
                    .map(|w| format!("{}/{}", w.namespace().unwrap_or_default(), w.name_any()))
                    .collect();
                ctx.retain(|uid| live.contains(uid));
                ctx.metrics.retain_watches(|key| keys.contains(key));
                ctx.fetcher.sweep(Duration::from_secs(3600));
                ctx.credentials.sweep();
            }
        });
    }

    info!(identity, leader = leadership.is_leader(), scopes = ?scopes, "controller starting");
    futures::future::join_all(controllers).await;
    info!("controller stopped");
    if let Some(task) = election_task {
        let _ = task.await;
        info!("lease released");
    }
    if let Err(e) = admin_task.await {
        error!(error = %e, "admin server task");
    }
    Ok(())
}

/// Lists watches once, in the first namespace served (if scoped), so an operator whose RBAC
/// covers only its namespaces passes the check.
async fn check_crd(client: &Client, namespace: Option<&str>) -> Result<(), RunError> {
    let api: Api<UpgradeWorkflowWatch> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(RunError::CrdMissing),
        Err(e) => Err(RunError::CrdCheck(e)),
    }
}

fn build_context(
    args: &RunArgs,
    client: Client,
    identity: &str,
    metrics: Metrics,
    leadership: Leadership,
    secrets: Vec<reflector::Store<kube::api::PartialObjectMeta<Secret>>>,
    secrets_synced: tokio::sync::watch::Receiver<bool>,
) -> Result<Context, RunError> {
    let config = args
        .endpoints
        .apply(ClientConfig {
            connect_timeout: args.cce_connect_timeout,
            request_timeout: args.cce_request_timeout,
            ca_bundle: args.ca_bundle.clone(),
            ..ClientConfig::default()
        })
        .map_err(|e| RunError::Cce(Box::new(e)))?;
    if config.allows_insecure_endpoints() {
        warn!("{INSECURE_WARNING}");
    }
    metrics.set_insecure_endpoints(config.allows_insecure_endpoints());
    let cce = CceClient::new(config).map_err(|e| RunError::Cce(Box::new(e)))?;
    let exchanger = Exchanger::new(cce.config().clone()).map_err(|e| RunError::Cce(Box::new(e)))?;
    let source = defaults::select(
        &|name| std::env::var(name).ok(),
        &defaults::ChainInputs {
            iam_endpoint: args.iam_endpoint.as_ref(),
            default_credentials_dir: args.default_credentials_dir.as_deref(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        },
    )
    .map_err(RunError::Defaults)?;
    match &source {
        Some(source) => info!(%source, "default credentials"),
        None => info!("no default credentials: watches must name a Secret or a workload identity"),
    }
    let duration_seconds =
        u32::try_from(args.iam_credentials_duration.as_secs()).unwrap_or(u32::MAX);
    let clock: renewal::Clock = Arc::new(jiff::Timestamp::now);
    let defaults =
        defaults::Defaults::new(source, exchanger.clone(), duration_seconds, clock.clone());
    let identities = WorkloadIdentities::new(
        client.clone(),
        exchanger,
        cce.config().iam_policy.clone(),
        ExchangeSettings {
            iam_endpoint: args.iam_endpoint.clone(),
            duration_seconds,
        },
        clock,
    );
    let secrets = SecretCredentials::new(
        client.clone(),
        secrets,
        defaults,
        identities,
        secrets_synced,
    );
    let recorder = EventPublisher::new(client.clone(), "cce-upgrade-watch", identity);
    let fetcher = Fetcher::new(
        cce,
        args.cce_rate_limit,
        args.cce_rate_burst,
        per_endpoint_share(usize::from(args.concurrency)),
        metrics.clone(),
    );
    let poll_policy = PollPolicy {
        terminal_resync: args.terminal_resync,
        backoff_base: args.backoff_base,
        backoff_cap: args.backoff_cap,
        permanent_retry: args.permanent_retry,
        ..PollPolicy::default()
    };
    Ok(Context::new(
        client,
        recorder,
        fetcher,
        secrets,
        poll_policy,
        args.sync_heartbeat,
        metrics,
        leadership,
    ))
}

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
type SecretMeta = kube::api::PartialObjectMeta<Secret>;

/// The metadata-only Secret watch of one scope, its store, and whether it has listed.
fn secret_metadata_stream(
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
    let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let stream = relist::in_place(events, reader.clone())
        .modify(|s| s.managed_fields_mut().clear())
        .reflect(writer)
        .inspect(listed_flag(flag))
        .touched_objects();
    (reader, stream, listed)
}

type WatchStore = reflector::Store<UpgradeWorkflowWatch>;

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
/// never trigger a poll), re-triggered by changes of the Secrets they name. Statuses go to
/// the book, the rest of each watch to the cache.
fn scoped_controller(
    args: &RunArgs,
    client: Client,
    scope: Option<&str>,
    secrets: impl futures::Stream<Item = Result<kube::api::PartialObjectMeta<Secret>, watcher::Error>>
    + Send
    + 'static,
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
    let by_secret = reader.clone();
    let controller = Controller::for_stream(stream, reader.clone())
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .watches_stream(secrets, move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            let name = secret.name_any();
            by_secret
                .state()
                .into_iter()
                .filter(|w| {
                    w.namespace().as_deref() == Some(namespace.as_str())
                        && w.spec
                            .credentials_secret_ref
                            .as_ref()
                            .is_some_and(|r| r.name == name)
                })
                .map(|w| ObjectRef::from_obj(&*w))
                .collect::<Vec<_>>()
        })
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
            "spec": {"projectID": "p", "clusterID": "c", "upgradeWorkflowID": "w",
                     "credentialsSecretRef": {"name": "cce"}}
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
