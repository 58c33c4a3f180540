//! `cce-upgrade-watch run`: the operator process. Wires the watch caches (`caches`), the
//! account, namespace and Secret caches with the accounts' own controllers (`accounts`),
//! the reconcilers' context (`context`), what re-triggers a watch (`triggers`), the
//! UpgradeWatchSets' controllers (`sets`), the kube-rs Controllers, leadership, the admin
//! server and shutdown together. Nothing depends on this module.

mod accounts;
mod caches;
mod context;
mod sets;
mod triggers;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{FutureExt as _, StreamExt as _};
use kube::api::{Api, ListParams};
use kube::runtime::controller;
use kube::{Client, ResourceExt};
use tracing::{error, info, warn};

use crate::cce::endpoint::EndpointArgs;
use crate::crd::UpgradeWorkflowWatch;
use crate::duration;
use crate::metrics::Metrics;
use crate::reconciler::context::Context;
use crate::reconciler::reconcile::{error_policy, reconcile};
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
    /// Serve ClusterCCEAccounts: the operator then lists them, and the namespaces' labels,
    /// cluster-wide. False for an operator whose rights end at the namespaces it serves; a
    /// watch naming a ClusterCCEAccount is then refused.
    #[arg(long, env = "CLUSTER_ACCOUNTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub cluster_accounts: bool,
    /// Serve UpgradeWatchSets (the operator then creates, changes and deletes the watches
    /// they generate). False for an operator without those rights.
    #[arg(long, env = "WATCH_SETS", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_sets: bool,
    /// Write the accounts' status (Ready, Synced, how many watches name them). Default: true
    /// unless --label-selector is set, since instances that serve part of the watches would
    /// count differently and overwrite each other. A ClusterCCEAccount's status is written
    /// only by an instance serving every namespace.
    #[arg(long, env = "ACCOUNT_STATUS", action = clap::ArgAction::Set)]
    pub account_status: Option<bool>,
    /// Export the series of each watch (labelled by namespace and name); false keeps only the
    /// fleet's totals, for an operator shared by teams whose metrics readers may not learn
    /// each other's watches.
    #[arg(long, env = "PER_WATCH_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub per_watch_metrics: bool,
    /// The share (above 0, at most 1) of each endpoint's request rate, burst and requests in
    /// flight that the watches of one namespace may use while other namespaces use it too,
    /// so one namespace cannot exhaust a shared account for the others; 1 turns the limit
    /// off.
    #[arg(long, env = "NAMESPACE_RATE_SHARE", default_value_t = 0.5, value_parser = share)]
    pub namespace_rate_share: f64,
    /// Token audiences accounts' workload identities may ask for (IAM's client IDs), comma
    /// separated; the first is the default. Empty: workload identity is refused. A token the
    /// Kubernetes API server accepts is never sent, whatever its audience.
    #[arg(
        long = "token-audience",
        env = "TOKEN_AUDIENCES",
        value_delimiter = ','
    )]
    pub token_audiences: Vec<String>,
    /// The operator's namespace: where a ClusterCCEAccount's Secret and ServiceAccount live.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub operator_namespace: String,
    /// The operator's ServiceAccount, named in the Role a namespace's owner grants it for
    /// workload identity.
    #[arg(long, env = "POD_SERVICE_ACCOUNT", default_value = "cce-upgrade-watch")]
    pub operator_service_account: String,
    /// List every set's clusters this often instead of its listInterval: for tests and
    /// demos, whose sets cannot wait the minute the schema requires.
    #[arg(long, env = "SET_LIST_INTERVAL", hide = true, value_parser = duration::parse_positive)]
    pub set_list_interval: Option<Duration>,
}

/// A share above 0 and at most 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err("a share is a number above 0 and at most 1, such as 0.5".into()),
    }
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
        "the UpgradeWorkflowWatch CRD is not installed in this cluster; install the CRDs with \
         `cce-upgrade-watch crd | kubectl apply --server-side -f -` (or the Helm chart with \
         --set crds.enabled=true) and start again"
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

    let metrics = Metrics::with_watch_series(args.per_watch_metrics);
    let readiness = Readiness::default();
    let admin_task = start_admin(&args, &metrics, &readiness).await?;
    let identity = args
        .lease_identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("cce-upgrade-watch-{}", std::process::id()));
    let (leadership, election) = elect(&args, &client, &identity).await?;
    metrics.record_leadership(leadership.is_leader());

    // One controller per scope: the whole cluster, or each namespace the operator serves.
    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    let (changes_tx, changes) = futures::channel::mpsc::unbounded();
    let caches = accounts::Caches::start(&args, &client, &scopes);
    let (synced_tx, synced) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(
        context::build_context(
            &args,
            client.clone(),
            &identity,
            metrics.clone(),
            leadership.clone(),
            caches.accounts(&args, synced.clone()),
            caches.secret_stores(),
            synced,
        )
        .await?,
    );

    let mut served = Served::default();
    let mut routes = Vec::new();
    for scope in &scopes {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let store = served.add(&args, &client, scope.as_deref(), rx, &ctx);
        routes.push((store, tx));
    }
    let set_controllers = sets::controllers(&args, &client, &scopes, &ctx, &identity).await;
    let listed = caches.listed();
    caches.run(ctx.clone(), served.watch_stores.clone(), changes_tx);
    triggers::route(ctx.clone(), routes, changes);
    let election_task =
        election.map(|e| follow_leadership(e, &ctx, &metrics, served.reconcile_all));
    report_ready_when_listed(readiness, listed, synced_tx, served.watches_listed);
    sweep_forgotten_watches(ctx.clone(), served.watch_stores);

    info!(identity, leader = leadership.is_leader(), scopes = ?scopes, "controller starting");
    futures::future::join_all(served.controllers.into_iter().chain(set_controllers)).await;
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

/// `/healthz`, `/readyz` and `/metrics`, served until shutdown.
async fn start_admin(
    args: &RunArgs,
    metrics: &Metrics,
    readiness: &Readiness,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, RunError> {
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
    Ok(tokio::spawn(admin_server))
}

/// The leadership this instance starts with, and the election to follow when enabled.
async fn elect(
    args: &RunArgs,
    client: &Client,
    identity: &str,
) -> Result<(Leadership, Option<leader::Election>), RunError> {
    if !args.leader_elect {
        return Ok((Leadership::always(), None));
    }
    let config = LeaseConfig {
        name: args.lease_name.clone(),
        namespace: args.lease_namespace.clone(),
        identity: identity.to_string(),
        duration_secs: args.lease_duration_seconds,
        grace_secs: (args.lease_duration_seconds / 3).max(1),
    };
    let election = leader::elect(client.clone(), &config)
        .await
        .map_err(RunError::Lease)?;
    Ok((election.leadership.clone(), Some(election)))
}

/// The controllers of every scope served, and what the rest of the process needs of them.
#[derive(Default)]
struct Served {
    reconcile_all: Vec<futures::channel::mpsc::UnboundedSender<()>>,
    watch_stores: Vec<caches::WatchStore>,
    watches_listed: Vec<tokio::sync::watch::Receiver<bool>>,
    controllers: Vec<futures::future::BoxFuture<'static, ()>>,
}

impl Served {
    /// Adds the controller of `scope`, reconciling also what `changed` names; returns its
    /// watch cache.
    fn add(
        &mut self,
        args: &RunArgs,
        client: &Client,
        scope: Option<&str>,
        changed: futures::channel::mpsc::UnboundedReceiver<
            kube::runtime::reflector::ObjectRef<UpgradeWorkflowWatch>,
        >,
        ctx: &Arc<Context>,
    ) -> caches::WatchStore {
        let (tx, rx) = futures::channel::mpsc::unbounded::<()>();
        self.reconcile_all.push(tx);
        let (store, listed, controller) = caches::scoped_controller(
            args,
            client.clone(),
            scope,
            changed,
            rx,
            ctx.statuses.clone(),
        );
        self.watch_stores.push(store.clone());
        self.watches_listed.push(listed);
        self.controllers.push(
            controller
                .run(reconcile, error_policy, ctx.clone())
                .for_each(|result| async move {
                    if let Err(e) = result {
                        match e {
                            controller::Error::ReconcilerFailed(..) => {}
                            other => warn!(error = %other, "controller"),
                        }
                    }
                })
                .boxed(),
        );
        store
    }
}

/// Follows the lease: a new leader forgets what it knew and reconciles every watch; a
/// standby drops its per-watch series.
fn follow_leadership(
    election: leader::Election,
    ctx: &Arc<Context>,
    metrics: &Metrics,
    reconcile_all: Vec<futures::channel::mpsc::UnboundedSender<()>>,
) -> tokio::task::JoinHandle<()> {
    let (ctx, metrics) = (ctx.clone(), metrics.clone());
    let on_change = move |leader: bool| {
        metrics.record_leadership(leader);
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
}

/// Ready once every cache has listed: the accounts, namespaces and Secrets first
/// (reconciles wait on them), then the watches.
fn report_ready_when_listed(
    readiness: Readiness,
    credentials_listed: Vec<tokio::sync::watch::Receiver<bool>>,
    credentials_synced: tokio::sync::watch::Sender<bool>,
    watches_listed: Vec<tokio::sync::watch::Receiver<bool>>,
) {
    tokio::spawn(async move {
        for mut listed in credentials_listed {
            let _ = listed.wait_for(|done| *done).await;
        }
        let _ = credentials_synced.send(true);
        for mut listed in watches_listed {
            let _ = listed.wait_for(|done| *done).await;
        }
        readiness.set_ready();
        info!("caches synced; ready");
    });
}

/// Every five minutes, forgets what is kept for watches that no longer exist.
fn sweep_forgotten_watches(ctx: Arc<Context>, stores: Vec<caches::WatchStore>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            let all: Vec<_> = stores.iter().flat_map(|s| s.state()).collect();
            let live: HashSet<String> = all.iter().filter_map(|w| w.uid()).collect();
            let keys: HashSet<String> = all.iter().map(|w| w.key()).collect();
            ctx.retain(|uid| live.contains(uid));
            ctx.metrics.retain_watches(|key| keys.contains(key));
            ctx.fetcher.sweep(Duration::from_secs(3600));
            ctx.credentials.sweep();
        }
    });
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
