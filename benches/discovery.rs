//! `make bench-discovery` (`cargo bench --bench discovery -- --clusters N`): what one
//! UpgradeWatchSet costs and how fast it follows a project of N clusters, measured end to end
//! on this machine.
//!
//! What runs: a private control plane (`hack/control-plane.sh up` in its own
//! `CCE_UW_PLANE_DIR`, taken down at the end), the CCE simulator playing a scenario this
//! driver generates into `target/bench/` (below), the release operator watching the whole
//! cluster with the fleet benchmark's flags and `--set-list-interval` (the schema's minute
//! would make a run last an hour), one namespace with a CCEAccount, its labelled Secret and
//! one UpgradeWatchSet that picks every cluster (`maxWatches` ≥ N, the generated watches'
//! pollInterval from its template), and this driver, which follows the set and every watch
//! it generates with Kubernetes watches and reads the simulator's request log as it goes.
//!
//! The scenario, N clusters in one project (two files: the steady ones as `count` copies of
//! one template, the others one by one, so their times can be staggered):
//! - about 80 % steady: nothing happens to them;
//! - 5 % join: each appears in ListClusters at its own time during the changes;
//! - 5 % leave: each is Deleting from its own time and gone from ListClusters 30 s later;
//! - 5 % upgrade through a workflow (one short workflow each, created during the first half
//!   of the changes, 60 s long);
//! - 4 % upgrade without a workflow, from the start until their own time during the changes,
//!   and 1 % fail so (Error from then on).
//!
//! The changes begin `--lead` seconds after the simulator started, when the set has generated
//! the first watches, each has a status and has read CCE once (the first sync), and are
//! spread over `--spread` seconds. The window (the figures' "in the window") runs from the
//! first sync until the last change has settled and every watch of the first sync has lived
//! 5 minutes and two idle polls, so an idle cluster's second ListUpgradeClusterTasks read
//! falls inside the run (`--skip-idle-period` ends it once the changes settled).
//!
//! Figures (printed as a table, written as JSON to `target/bench/`):
//! - ListClusters requests per list interval in the window, against one per interval;
//! - the generated watches' creates and deletes (counted through the Kubernetes watch, by
//!   uid) ÷ the clusters that joined (every cluster of the scenario joins once: the first
//!   sync or later) and left, ClusterJoined and ClusterLeft Events ÷ the same, and whether
//!   each cluster listed at the end has exactly one watch;
//! - the set's status writes (each change of its status the Kubernetes watch saw) per pass
//!   (ListClusters request), and how many of them changed more than `lastListTime`;
//! - the API server's own request counts for Events, watches and the set's status
//!   (apiserver_request_total): Event creates answered AlreadyExists are the set's
//!   ClusterJoined Events published again;
//! - time from a cluster appearing in ListClusters to its watch existing, and from its
//!   disappearing to its watch being gone, p50/p99;
//! - the operator's peak RSS (VmHWM) and CPU, kube-apiserver's and etcd's CPU;
//! - the CCE requests the generated watches make: ListUpgradeWorkflows (each follows its
//!   cluster's newest workflow) ÷ one per watch and the period its cluster's state calls for
//!   in the window, and the gap between two reads of one watch ÷ that period; an idle
//!   cluster's ListUpgradeClusterTasks against one per 5 minutes; ShowCluster per watch; and
//!   every route's count by kind of cluster;
//! - the generated watches' status changes by kind of cluster and by field, and for the
//!   steady ones per ListUpgradeWorkflows read.

#[path = "../tests/common/mod.rs"]
mod kit;
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use cce_upgrade_watch::crd::set::{CLUSTER_ID_LABEL, MAX_WATCHES_LIMIT, SET_LABEL};
use cce_upgrade_watch::crd::{UpgradeWatchSet, UpgradeWatchSetStatus, UpgradeWorkflowWatch};
use cce_upgrade_watch::sim::builtin;
use cce_upgrade_watch::sim::fleet::DELETING_FOR;
use kit::eventually::within;
use kit::plane::PrivatePlane;
use kit::procfs::{ProcStat, clock_ticks, proc_stat};
use kit::sim::Sim;
use support::{
    Binary, Launch, Res, Served, drain_requests, lock, log, metric_sum, quantile, resolve_binary,
    scrape, secs, start_operator, wait_ready,
};

/// The namespace of the account, the set and its watches.
const NS: &str = "discovery";
/// The set's name.
const SET: &str = "discovery";
/// The Secret of the simulator's keys.
const SECRET: &str = "cce";
/// How long an idle cluster's upgrade task list is shared (src/reconciler/observe.rs): one
/// ListUpgradeClusterTasks per cluster per period while no task runs.
const IDLE_TASKS_PERIOD: f64 = 300.0;
/// The short workflow the workflow clusters go through (scenario seconds after creation).
const QUICK_TIMELINE: &str = "  quick:
    - {after: 5, task: PreCheck, status: Running}
    - {after: 15, task: PreCheck, status: Success, expireAfter: 3600}
    - {after: 20, task: Snapshot, status: Running}
    - {after: 25, task: Snapshot, status: Success}
    - {after: 30, task: Cluster, status: Running}
    - {after: 55, task: Cluster, status: Success}
    - {after: 57, task: PostCheck, status: Running}
    - {after: 60, task: PostCheck, status: Success}
";
/// Seconds the quick workflow takes.
const QUICK_SECONDS: f64 = 60.0;
/// An idle watch (its cluster has no workflow and no upgrade task) reads CCE every
/// max(pollInterval, this), src/reconciler/core/decide.rs.
const IDLE_POLL_FLOOR: f64 = 60.0;
/// The operator's --terminal-resync default: how often a watch whose upgrade succeeded
/// looks for a newer one.
const TERMINAL_RESYNC: f64 = 600.0;

#[derive(Parser, Debug, Clone)]
#[command(about = "Discovery benchmark of cce-upgrade-watch: one UpgradeWatchSet over N clusters")]
struct Args {
    /// Clusters in the scenario (every one is listed at some time; at most 2000).
    #[arg(long, default_value_t = 500)]
    clusters: usize,
    /// Seconds between two listings of the set (the operator's --set-list-interval).
    #[arg(long, default_value_t = 5)]
    list_interval: u64,
    /// pollInterval of every generated watch (the set's template), in seconds.
    #[arg(long, default_value_t = 30)]
    poll: u64,
    /// Seconds after the simulator's start at which the changes begin; default
    /// 60 + clusters / 10, room for the first sync.
    #[arg(long)]
    lead: Option<f64>,
    /// Seconds over which the joins, leaves and upgrades are spread.
    #[arg(long, default_value_t = 120.0)]
    spread: f64,
    /// End the window once the changes have settled, without waiting until every watch of
    /// the first sync has lived 5 minutes (then each idle cluster's task list is read once).
    #[arg(long)]
    skip_idle_period: bool,
    /// Operator reconcile concurrency (its --concurrency).
    #[arg(long, default_value_t = 64)]
    concurrency: u16,
    /// Where the JSON report, the scenario and the operator's log go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The operator binary: `release`, `static` or a path.
    #[arg(long = "operator-binary", default_value = "release")]
    operator_binary: String,
    /// Leave the control plane running (its directory is printed).
    #[arg(long)]
    keep_plane: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async {
        tokio::select! {
            code = measure(&args) => code,
            _ = tokio::signal::ctrl_c() => { eprintln!("interrupted"); 130 }
        }
    });
    // Children and the plane are stopped by their guards, dropped by now.
    std::process::exit(code);
}

async fn measure(args: &Args) -> i32 {
    let binary = match resolve_binary(&args.operator_binary) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("operator binary {}: {e}", args.operator_binary);
            return 1;
        }
    };
    match run(args, &binary).await {
        Ok((report, path)) => {
            print_table(&report, &path);
            0
        }
        Err(e) => {
            eprintln!("discovery bench failed: {e}");
            1
        }
    }
}

// ------------------------------------------------------------------ scenario

/// What happens to a cluster during the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Class {
    Steady,
    Joins,
    Leaves,
    Workflow,
    Direct,
    DirectFails,
}

impl Class {
    const ALL: [Class; 6] = [
        Class::Steady,
        Class::Joins,
        Class::Leaves,
        Class::Workflow,
        Class::Direct,
        Class::DirectFails,
    ];

    fn name(self) -> &'static str {
        match self {
            Class::Steady => "steady",
            Class::Joins => "joins",
            Class::Leaves => "leaves",
            Class::Workflow => "workflow",
            Class::Direct => "direct",
            Class::DirectFails => "direct-fails",
        }
    }

    /// The digit of the cluster ids of this class (`d1000000-0000-4000-800N-…`).
    fn digit(self) -> usize {
        Class::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }

    fn of_cluster(id: &str) -> Option<Class> {
        let rest = id.strip_prefix("d1000000-0000-4000-800")?;
        let digit: usize = rest.get(..1)?.parse().ok()?;
        Class::ALL.get(digit).copied()
    }
}

fn cluster_id(class: Class, i: usize) -> String {
    format!("d1000000-0000-4000-800{}-{i:012}", class.digit())
}

fn cluster_name(class: Class, i: usize) -> String {
    format!("{}-{i:04}", class.name())
}

fn workflow_id(i: usize) -> String {
    format!("e1000000-0000-4000-8003-{i:012}")
}

/// The scenario: how many clusters of each class, and when their changes happen (scenario
/// seconds after the simulator's start, which plays at speed 1).
struct Fleet {
    counts: BTreeMap<Class, usize>,
    lead: f64,
    spread: f64,
}

impl Fleet {
    fn new(clusters: usize, lead: f64, spread: f64) -> Fleet {
        let share = |percent: usize| (clusters * percent / 100).max(1);
        let mut counts = BTreeMap::new();
        counts.insert(Class::Joins, share(5));
        counts.insert(Class::Leaves, share(5));
        counts.insert(Class::Workflow, share(5));
        counts.insert(Class::Direct, share(4));
        counts.insert(Class::DirectFails, share(1));
        let others: usize = counts.values().sum();
        counts.insert(Class::Steady, clusters.saturating_sub(others).max(1));
        Fleet {
            counts,
            lead,
            spread,
        }
    }

    fn count(&self, class: Class) -> usize {
        self.counts.get(&class).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// The k-th of n instants spread evenly over `over` seconds from the lead, `at` (0 to
    /// 1) into its share.
    fn nth(&self, k: usize, n: usize, over: f64, at: f64) -> f64 {
        self.lead + over * (k as f64 + at) / n.max(1) as f64
    }

    /// When joining cluster k appears in ListClusters (never in the same pass as a leave).
    fn appears(&self, k: usize) -> f64 {
        self.nth(k, self.count(Class::Joins), self.spread, 0.75)
    }

    /// When leaving cluster k is gone from ListClusters (Deleting for DELETING_FOR before).
    fn gone(&self, k: usize) -> f64 {
        self.nth(k, self.count(Class::Leaves), self.spread, 0.25)
    }

    /// When workflow k is created.
    fn workflow_created(&self, k: usize) -> f64 {
        self.nth(k, self.count(Class::Workflow), self.spread / 2.0, 0.5)
    }

    /// When the upgrade without a workflow of cluster k of `class` ends.
    fn direct_ends(&self, class: Class, k: usize) -> f64 {
        self.nth(k, self.count(class), self.spread, 0.5)
    }

    /// How often the watch of cluster k of `class` reads ListUpgradeWorkflows, by stretch
    /// of scenario time: `poll` while a workflow or an upgrade task without one runs (a
    /// failed task waits for its retry at that pace too), every max(poll, 60 s) while the
    /// cluster is idle, every 600 s (`--terminal-resync`) after an upgrade succeeded
    /// (src/reconciler/core/decide.rs, schedule.rs).
    fn read_periods(&self, class: Class, k: usize, poll: f64) -> Vec<(f64, f64, f64)> {
        let (start, end) = (f64::NEG_INFINITY, f64::INFINITY);
        let idle = poll.max(IDLE_POLL_FLOOR);
        match class {
            Class::Steady | Class::Joins | Class::Leaves => vec![(start, end, idle)],
            Class::Direct => {
                let done = self.direct_ends(class, k);
                vec![(start, done, poll), (done, end, TERMINAL_RESYNC)]
            }
            Class::DirectFails => vec![(start, end, poll)],
            Class::Workflow => {
                let created = self.workflow_created(k);
                let done = created + QUICK_SECONDS;
                vec![
                    (start, created, idle),
                    (created, done, poll),
                    (done, end, TERMINAL_RESYNC),
                ]
            }
        }
    }

    /// When the last change happens.
    fn last_change(&self) -> f64 {
        let n = |c| self.count(c);
        [
            self.appears(n(Class::Joins) - 1),
            self.gone(n(Class::Leaves) - 1),
            self.workflow_created(n(Class::Workflow) - 1) + QUICK_SECONDS,
            self.direct_ends(Class::Direct, n(Class::Direct) - 1),
            self.direct_ends(Class::DirectFails, n(Class::DirectFails) - 1),
        ]
        .into_iter()
        .fold(self.lead, f64::max)
    }

    /// The steady clusters: `count` copies of one template.
    fn steady_yaml(&self) -> String {
        format!(
            "# Generated by benches/discovery.rs: the steady clusters of the discovery benchmark.\n\
             name: discovery-steady\n\
             count: {}\n\
             projectID: {}\n\
             clusters:\n\
             \x20 - id: \"d1000000-0000-4000-8000-{{i:12}}\"\n\
             \x20   name: \"steady-{{i:4}}\"\n\
             \x20   labels: {{bench: discovery, class: steady}}\n\
             \x20   version: {}\n",
            self.count(Class::Steady),
            builtin::PROJECT_ID,
            builtin::FROM_VERSION
        )
    }

    /// The clusters that change, one by one, and the workflows.
    fn changes_yaml(&self) -> String {
        let mut y = format!(
            "# Generated by benches/discovery.rs: the clusters of the discovery benchmark that\n\
             # join, leave or upgrade (scenario seconds; the changes begin at {:.0}).\n\
             name: discovery-changes\n\
             projectID: {}\n\
             timelines:\n{QUICK_TIMELINE}\
             clusters:\n",
            self.lead,
            builtin::PROJECT_ID
        );
        let head = |class: Class, i: usize| {
            format!(
                "  - {{id: {}, name: {}, labels: {{bench: discovery, class: {}}}, version: {}",
                cluster_id(class, i),
                cluster_name(class, i),
                class.name(),
                builtin::FROM_VERSION
            )
        };
        for i in 0..self.count(Class::Joins) {
            y += &format!(
                "{}, createdAt: {:.3}}}\n",
                head(Class::Joins, i),
                self.appears(i)
            );
        }
        for i in 0..self.count(Class::Leaves) {
            y += &format!(
                "{}, deletedAt: {:.3}}}\n",
                head(Class::Leaves, i),
                self.gone(i) - DELETING_FOR
            );
        }
        for i in 0..self.count(Class::Workflow) {
            y += &format!("{}}}\n", head(Class::Workflow, i));
        }
        for (class, result) in [
            (Class::Direct, ""),
            (Class::DirectFails, ", result: Failed"),
        ] {
            for i in 0..self.count(class) {
                y += &format!(
                    "{}, upgrades: [{{at: 0, takes: {:.3}, to: {}{result}}}]}}\n",
                    head(class, i),
                    self.direct_ends(class, i),
                    builtin::TO_VERSION
                );
            }
        }
        y += "workflows:\n";
        for i in 0..self.count(Class::Workflow) {
            y += &format!(
                "  - {{id: {}, clusterID: {}, targetVersion: {}, createdAt: {:.3}, timeline: quick}}\n",
                workflow_id(i),
                cluster_id(Class::Workflow, i),
                builtin::TO_VERSION,
                self.workflow_created(i)
            );
        }
        y
    }
}

// ------------------------------------------------------------------ tracking

/// One generated watch, by uid.
struct Generated {
    cluster: String,
    added: Timestamp,
    first_status: Option<Timestamp>,
    deleted: Option<Timestamp>,
    /// Its status as last seen.
    status: Value,
}

/// The status fields that differ between two statuses of a watch: top-level keys, and for
/// conditions each condition's type and field (`conditions[Synced].message`).
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (x, y) = (b.get(key), a.get(key));
        if x == y {
            continue;
        }
        if key != "conditions" {
            out.push(key.clone());
            continue;
        }
        let by_type = |v: Option<&Value>| -> BTreeMap<String, Value> {
            v.and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| (c["type"].as_str().unwrap_or("?").to_string(), c.clone()))
                .collect()
        };
        let (bx, by) = (by_type(x), by_type(y));
        let mut types: Vec<&String> = bx.keys().chain(by.keys()).collect();
        types.sort();
        types.dedup();
        for t in types {
            let (cx, cy) = (bx.get(t), by.get(t));
            if cx == cy {
                continue;
            }
            for field in changed_fields(cx.unwrap_or(&Value::Null), cy.unwrap_or(&Value::Null)) {
                out.push(format!("conditions[{t}].{field}"));
            }
        }
    }
    out
}

/// Status changes of the generated watches of one kind of cluster, and the fields each
/// changed (one count per change and field).
#[derive(Default, serde::Serialize)]
struct StatusChanges {
    changes: usize,
    fields: BTreeMap<String, usize>,
}

#[derive(Default)]
struct Watches {
    by_uid: HashMap<String, Generated>,
    /// Status changes after the first status, by kind of cluster.
    changes: BTreeMap<&'static str, StatusChanges>,
    /// Uids listed since the watch (re)started.
    listing: HashSet<String>,
    inits: u64,
    synced: bool,
}

impl Watches {
    fn apply(&mut self, w: &UpgradeWorkflowWatch, now: Timestamp) {
        let Some(uid) = w.uid() else { return };
        self.listing.insert(uid.clone());
        let g = self.by_uid.entry(uid).or_insert_with(|| Generated {
            cluster: w
                .labels()
                .get(CLUSTER_ID_LABEL)
                .cloned()
                .unwrap_or_default(),
            added: now,
            first_status: None,
            deleted: None,
            status: Value::Null,
        });
        if w.status.is_some() && g.first_status.is_none() {
            g.first_status = Some(now);
        }
        let status = serde_json::to_value(&w.status).unwrap_or_default();
        if status != g.status {
            if !g.status.is_null() {
                let class = Class::of_cluster(&g.cluster).map_or("-", Class::name);
                let c = self.changes.entry(class).or_default();
                c.changes += 1;
                for field in changed_fields(&g.status, &status) {
                    *c.fields.entry(field).or_default() += 1;
                }
            }
            g.status = status;
        }
    }

    fn alive(&self) -> impl Iterator<Item = &Generated> {
        self.by_uid.values().filter(|g| g.deleted.is_none())
    }
}

async fn follow_watches(client: Client, into: Arc<Mutex<Watches>>) {
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(client, NS);
    let config = watcher::Config::default().labels(&format!("{SET_LABEL}={SET}"));
    let mut stream = watcher(api, config).boxed();
    while let Some(event) = stream.next().await {
        let now = Timestamp::now();
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                log(format!("watch of the generated watches: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut t = lock(&into);
        match event {
            watcher::Event::Init => {
                t.inits += 1;
                t.listing.clear();
            }
            watcher::Event::InitApply(w) | watcher::Event::Apply(w) => t.apply(&w, now),
            watcher::Event::InitDone => {
                // After a restart, what the new list lacks was deleted meanwhile.
                if t.synced {
                    let listing = std::mem::take(&mut t.listing);
                    for (uid, g) in t.by_uid.iter_mut() {
                        if g.deleted.is_none() && !listing.contains(uid) {
                            g.deleted = Some(now);
                        }
                    }
                    t.listing = listing;
                }
                t.synced = true;
            }
            watcher::Event::Delete(w) => {
                if let Some(g) = w.uid().and_then(|uid| t.by_uid.get_mut(&uid)) {
                    g.deleted.get_or_insert(now);
                }
            }
        }
    }
}

/// The set's status as the Kubernetes watch saw it change.
#[derive(Default)]
struct SetTrack {
    status: Option<UpgradeWatchSetStatus>,
    summary: Option<Value>,
    /// Each status write: when it was seen, and whether it changed more than lastListTime.
    writes: Vec<(Timestamp, bool)>,
    synced: bool,
}

/// A set's status without `lastListTime`: what a reader learns from a write.
fn summary(status: &UpgradeWatchSetStatus) -> Value {
    let mut s = status.clone();
    s.last_list_time = None;
    serde_json::to_value(s).unwrap_or_default()
}

async fn follow_set(client: Client, into: Arc<Mutex<SetTrack>>) {
    let api: Api<UpgradeWatchSet> = Api::namespaced(client, NS);
    let config = watcher::Config::default().fields(&format!("metadata.name={SET}"));
    let mut stream = watcher(api, config).boxed();
    while let Some(event) = stream.next().await {
        let now = Timestamp::now();
        match event {
            Ok(watcher::Event::InitApply(s) | watcher::Event::Apply(s)) => {
                let mut t = lock(&into);
                if s.status != t.status {
                    if let Some(status) = &s.status {
                        let next = summary(status);
                        let changed = t.summary.as_ref() != Some(&next);
                        t.writes.push((now, changed));
                        t.summary = Some(next);
                    }
                    t.status = s.status.clone();
                }
            }
            Ok(watcher::Event::InitDone) => lock(&into).synced = true,
            Ok(_) => {}
            Err(e) => {
                log(format!("watch of the set: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

// ------------------------------------------------------------------ the API server's counts

/// `apiserver_request_total` for the resources the set and its watches write, by
/// (resource, subresource, verb, code).
type RequestCounts = BTreeMap<(String, String, String, String), f64>;

async fn apiserver_requests(client: &Client) -> Res<RequestCounts> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client
        .request_text(request)
        .await
        .map_err(|e| format!("kube-apiserver /metrics: {e}"))?;
    let mut out = RequestCounts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |key: &str| {
            labels
                .split("\",")
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let resource = label("resource");
        if !matches!(
            resource.as_str(),
            "events" | "upgradeworkflowwatches" | "upgradewatchsets"
        ) {
            continue;
        }
        *out.entry((resource, label("subresource"), label("verb"), label("code")))
            .or_default() += value;
    }
    Ok(out)
}

/// What changed between two readings, as JSON rows.
fn request_delta(before: &RequestCounts, after: &RequestCounts) -> Vec<Value> {
    after
        .iter()
        .filter_map(|(key, v)| {
            let d = v - before.get(key).copied().unwrap_or(0.0);
            (d > 0.0).then(|| {
                json!({"resource": key.0, "subresource": key.1, "verb": key.2, "code": key.3,
                       "count": d})
            })
        })
        .collect()
}

fn delta_of(rows: &[Value], resource: &str, subresource: &str, verbs: &[&str], code: &str) -> f64 {
    rows.iter()
        .filter(|r| r["resource"] == resource && r["subresource"] == subresource)
        .filter(|r| verbs.iter().any(|v| r["verb"] == *v))
        .filter(|r| code.is_empty() || r["code"] == code)
        .filter_map(|r| r["count"].as_f64())
        .sum()
}

// ------------------------------------------------------------------ the run

/// The 1, 5 and 15 minute load averages, as `uptime` prints them.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The copy index a cluster id ends with.
fn index_of(cluster: &str) -> usize {
    cluster
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn run(args: &Args, binary: &Binary) -> Res<(Value, PathBuf)> {
    if args.clusters < 10 || args.clusters > MAX_WATCHES_LIMIT as usize {
        return Err(format!(
            "--clusters must be 10 to {MAX_WATCHES_LIMIT} (one set keeps at most that many watches)"
        ));
    }
    if args.list_interval == 0 || args.poll < 5 {
        return Err("--list-interval must be at least 1 and --poll at least 5".into());
    }
    let lead = args.lead.unwrap_or(60.0 + args.clusters as f64 / 10.0);
    let fleet = Fleet::new(args.clusters, lead, args.spread);
    let n = fleet.total();
    let interval = args.list_interval as f64;
    let poll = args.poll as f64;
    let out_dir = if args.out.is_absolute() {
        args.out.clone()
    } else {
        kit::repo_path("").join(&args.out)
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let ticks = clock_ticks();
    let http = reqwest::Client::new();
    let counts: BTreeMap<&str, usize> = Class::ALL
        .iter()
        .map(|c| (c.name(), fleet.count(*c)))
        .collect();
    log(format!(
        "{n} clusters {counts:?}; set lists every {interval} s, watches poll every {poll} s; \
         changes from {lead:.0} s over {:.0} s",
        args.spread
    ));
    let load_before = load_average();

    // The scenario, kept in target/bench/ next to the report.
    let steady_file = out_dir.join(format!("discovery-{n}-steady.yaml"));
    let changes_file = out_dir.join(format!("discovery-{n}-changes.yaml"));
    std::fs::write(&steady_file, fleet.steady_yaml()).map_err(|e| e.to_string())?;
    std::fs::write(&changes_file, fleet.changes_yaml()).map_err(|e| e.to_string())?;

    log("control plane: starting");
    let mut plane = PrivatePlane::up("cce-uw-bench-plane-");
    if args.keep_plane {
        plane.keep_running();
        log(format!(
            "control plane kept: CCE_UW_PLANE_DIR={} hack/control-plane.sh down",
            plane.dir().display()
        ));
    }
    let client = plane.client().await;
    kit::install_crd(&client).await;
    kit::namespace::create_namespace(&client, NS).await;
    kit::sim_secret(
        &client,
        NS,
        SECRET,
        builtin::ACCESS_KEY,
        builtin::SECRET_KEY,
    )
    .await;

    let path_str = |p: &Path| p.to_string_lossy().into_owned();
    let (steady_arg, changes_arg) = (path_str(&steady_file), path_str(&changes_file));
    let sim = Sim::https()
        .args(&["--scenario", &steady_arg, "--scenario", &changes_arg])
        .start();
    let info = sim.admin_get("/_sim/info").await;
    let sim_start: Timestamp = info["start"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("the simulator's start is unreadable: {info}"))?;
    let at = |scenario_secs: f64| {
        sim_start
            .checked_add(jiff::SignedDuration::from_secs_f64(scenario_secs))
            .unwrap_or(sim_start)
    };
    let account = kit::sim_account(&client, NS, &sim, SECRET).await;
    let requests_at_start = apiserver_requests(&client).await?;

    let log_file = out_dir.join(format!("operator-discovery-{n}.log"));
    let list_every = format!("{}s", args.list_interval);
    let extra = ["--set-list-interval", list_every.as_str()];
    // The fleet benchmark's budget, for N watches each reading once per poll.
    let cce_rate = (2 * n).div_ceil(args.poll as usize).max(10);
    let launch = Launch {
        binary: &binary.path,
        wrapper: None,
        cce_rate,
        concurrency: args.concurrency,
        extra: &extra,
    };
    let mut operator = start_operator(&launch, &plane, &sim, &log_file)?;
    let op_pid = operator.child.id();
    wait_ready(&mut operator, &http, 60, &log_file).await?;

    let watches = Arc::new(Mutex::new(Watches::default()));
    let set_track = Arc::new(Mutex::new(SetTrack::default()));
    let followers = [
        tokio::spawn(follow_watches(client.clone(), watches.clone())),
        tokio::spawn(follow_set(client.clone(), set_track.clone())),
    ];
    within(
        "the followers listed",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async {
            match lock(&watches).synced && lock(&set_track).synced {
                true => Ok(()),
                false => Err("not yet"),
            }
        },
    )
    .await?;

    // The set: every cluster, each watch polling every `poll` seconds.
    let set_created = Timestamp::now();
    kit::set::apply_set(
        &client,
        NS,
        SET,
        json!({
            "accountRef": {"name": account},
            "maxWatches": n.min(MAX_WATCHES_LIMIT as usize),
            "template": {"spec": {"pollInterval": format!("{}s", args.poll)}},
        }),
    )
    .await;
    let initial = n - fleet.count(Class::Joins);
    log(format!(
        "set applied {:.1} s after the simulator started; waiting for {initial} watches and their first status",
        secs(sim_start, set_created)
    ));
    let mut requests: Vec<Served> = Vec::new();
    let mut since = 0u64;
    let first_sync_by = Instant::now() + Duration::from_secs(180 + n as u64 / 5);
    let mut peak_rss_sampled: f64 = 0.0;
    // The first sync is done once every watch has a status and has read its cluster's
    // workflows once.
    let mut first_read: HashMap<String, f64> = HashMap::new();
    let mut first_read_seen = 0usize;
    loop {
        drain_requests(&sim, &mut since, &mut requests).await;
        for r in &requests[first_read_seen..] {
            if r.route == "list"
                && let Some(c) = &r.cluster
            {
                first_read.entry(c.clone()).or_insert(r.unix_ms);
            }
        }
        first_read_seen = requests.len();
        let (existing, with_status) = {
            let t = lock(&watches);
            (
                t.alive().count(),
                t.alive().filter(|g| g.first_status.is_some()).count(),
            )
        };
        if with_status >= initial && first_read.len() >= initial {
            break;
        }
        if Instant::now() > first_sync_by {
            return Err(format!(
                "the first sync did not finish: {existing} watches, {with_status} with a status, {} read CCE, of {initial}",
                first_read.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(s) = proc_stat(op_pid, ticks) {
            peak_rss_sampled = peak_rss_sampled.max(s.rss_mib);
        }
    }
    let window_start = Timestamp::now();
    let last_first_read = first_read.values().fold(0.0f64, |a, b| a.max(*b));
    let first_sync_read = (last_first_read - set_created.as_millisecond() as f64) / 1000.0;
    let (first_sync_created, first_sync_status, last_initial_added) = {
        let t = lock(&watches);
        let added: Vec<Timestamp> = t.by_uid.values().map(|g| g.added).collect();
        let status: Vec<Timestamp> = t.by_uid.values().filter_map(|g| g.first_status).collect();
        let last = added.iter().max().copied().unwrap_or(window_start);
        (
            secs(set_created, last),
            secs(
                set_created,
                status.iter().max().copied().unwrap_or(window_start),
            ),
            last,
        )
    };
    let overran = secs(at(lead), window_start);
    log(format!(
        "first sync: {initial} watches in {first_sync_created:.1} s, each with a status {first_sync_status:.1} s after the set was applied{}",
        if overran > 0.0 {
            format!("; {overran:.0} s past the lead (the first changes fell into the first sync)")
        } else {
            format!("; the changes begin in {:.0} s", -overran)
        }
    ));
    let stat_start = proc_stat(op_pid, ticks).unwrap_or_default();
    let apiserver_pid = plane.pid("kube-apiserver");
    let apiserver_start = apiserver_pid.and_then(|pid| proc_stat(pid, ticks));
    drain_requests(&sim, &mut since, &mut requests).await;

    // The window: until the changes settled and every first-sync watch lived 5 minutes.
    let settle = 2.0 * interval + 10.0;
    let changes_end = at(fleet.last_change() + settle);
    let idle_end = last_initial_added
        .checked_add(jiff::SignedDuration::from_secs_f64(
            IDLE_TASKS_PERIOD + 2.0 * poll.max(IDLE_POLL_FLOOR),
        ))
        .unwrap_or(changes_end);
    let window_end_due = match args.skip_idle_period {
        true => changes_end,
        false => changes_end.max(idle_end),
    };
    let give_up = window_end_due
        .checked_add(jiff::SignedDuration::from_secs(120))
        .unwrap_or(window_end_due);
    let joiners: Vec<(String, Timestamp)> = (0..fleet.count(Class::Joins))
        .map(|k| (cluster_id(Class::Joins, k), at(fleet.appears(k))))
        .collect();
    let leavers: Vec<(String, Timestamp)> = (0..fleet.count(Class::Leaves))
        .map(|k| (cluster_id(Class::Leaves, k), at(fleet.gone(k))))
        .collect();
    log(format!(
        "window: until {:.0} s from now",
        secs(Timestamp::now(), window_end_due)
    ));
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drain_requests(&sim, &mut since, &mut requests).await;
        if let Some(s) = proc_stat(op_pid, ticks) {
            peak_rss_sampled = peak_rss_sampled.max(s.rss_mib);
        }
        let now = Timestamp::now();
        let (joined, left, alive) = {
            let t = lock(&watches);
            let has = |id: &str| t.by_uid.values().any(|g| g.cluster == id);
            let gone = |id: &str| {
                t.by_uid
                    .values()
                    .filter(|g| g.cluster == id)
                    .all(|g| g.deleted.is_some())
            };
            (
                joiners.iter().filter(|(id, _)| has(id)).count(),
                leavers.iter().filter(|(id, _)| has(id) && gone(id)).count(),
                t.alive().count(),
            )
        };
        log(format!(
            "{alive} watches; joined {joined}/{}, left {left}/{}",
            joiners.len(),
            leavers.len()
        ));
        let settled = joined == joiners.len() && left == leavers.len();
        if now >= window_end_due && settled {
            break;
        }
        if now >= give_up {
            log("not every cluster joined or left in time; reporting what was seen");
            break;
        }
    }
    let window_end = Timestamp::now();
    let stat_end = proc_stat(op_pid, ticks).unwrap_or_default();
    let apiserver_end = apiserver_pid.and_then(|pid| proc_stat(pid, ticks));
    let requests_at_end = apiserver_requests(&client).await?;
    // Settle: a watch or an Event published again would show up now.
    tokio::time::sleep(Duration::from_secs_f64(2.0 * interval + 2.0)).await;
    drain_requests(&sim, &mut since, &mut requests).await;
    let final_stat = proc_stat(op_pid, ticks).unwrap_or_default();
    let metrics_final = scrape(&http, &operator.metrics_url).await?;
    let plane_stats: BTreeMap<&str, ProcStat> = ["kube-apiserver", "etcd"]
        .into_iter()
        .filter_map(|c| Some((c, proc_stat(plane.pid(c)?, ticks)?)))
        .collect();
    let requests_final = apiserver_requests(&client).await?;
    let listed_at_end: Vec<Value> = sim
        .admin_get("/_sim/clusters")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sim_stats = sim.admin_get("/_sim/stats").await;

    // The set's Events.
    let events = Api::<KubeEvent>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list events: {e}"))?
        .items;
    let (mut joined_events, mut left_events, mut watch_events) = (0usize, 0usize, 0usize);
    for e in &events {
        if e.reporting_controller.as_deref() != Some("cce-upgrade-watch") {
            continue;
        }
        let regarding = e.regarding.as_ref();
        let about_set = regarding.and_then(|r| r.kind.as_deref()) == Some("UpgradeWatchSet")
            && regarding.and_then(|r| r.name.as_deref()) == Some(SET);
        let n = kit::events::occurrences(e);
        match (about_set, e.reason.as_deref()) {
            (true, Some("ClusterJoined")) => joined_events += n,
            (true, Some("ClusterLeft")) => left_events += n,
            (false, _) => watch_events += n,
            _ => {}
        }
    }
    for f in followers {
        f.abort();
    }
    drop(operator);
    drop(sim);

    // ---------------------------------------------------------- figures
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let ms = |t: Timestamp| t.as_millisecond() as f64;
    let (ws, we) = (ms(window_start), ms(window_end));
    let window_secs = secs(window_start, window_end);
    let after_set: Vec<&Served> = requests
        .iter()
        .filter(|r| r.unix_ms >= ms(set_created))
        .collect();
    let in_window = |r: &&&Served| (ws..=we).contains(&r.unix_ms);

    // ListClusters per list interval.
    let lists: Vec<f64> = after_set
        .iter()
        .filter(|r| r.route == "list-clusters")
        .map(|r| r.unix_ms)
        .collect();
    let lists_in_window = lists.iter().filter(|t| (ws..=we).contains(*t)).count();
    let list_minimum = window_secs / interval;
    let mut list_gaps: Vec<f64> = lists.windows(2).map(|w| (w[1] - w[0]) / 1000.0).collect();

    // Creates, deletes and the one watch per cluster.
    let t = lock(&watches);
    let set_status = lock(&set_track);
    let creates = t.by_uid.len();
    let deletes = t.by_uid.values().filter(|g| g.deleted.is_some()).count();
    let creates_in_window = t.by_uid.values().filter(|g| ms(g.added) >= ws).count();
    let listed: HashSet<String> = listed_at_end
        .iter()
        .filter(|c| c["phase"].is_string())
        .filter_map(|c| c["clusterID"].as_str().map(str::to_string))
        .collect();
    let mut alive_per_cluster: HashMap<&str, usize> = HashMap::new();
    for g in t.alive() {
        *alive_per_cluster.entry(g.cluster.as_str()).or_default() += 1;
    }
    let missing = listed
        .iter()
        .filter(|id| !alive_per_cluster.contains_key(id.as_str()))
        .count();
    let duplicated = alive_per_cluster.values().filter(|n| **n > 1).count();
    let extra = alive_per_cluster
        .keys()
        .filter(|id| !listed.contains(**id))
        .count();

    // Appear → watch, gone → no watch.
    let join_lags: Vec<f64> = joiners
        .iter()
        .filter_map(|(id, appears)| {
            let added = t
                .by_uid
                .values()
                .filter(|g| g.cluster == *id)
                .map(|g| g.added)
                .min()?;
            Some(secs(*appears, added))
        })
        .collect();
    let leave_lags: Vec<f64> = leavers
        .iter()
        .filter_map(|(id, gone)| {
            let deleted = t
                .by_uid
                .values()
                .filter(|g| g.cluster == *id)
                .map(|g| g.deleted)
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .max()?;
            Some(secs(*gone, deleted))
        })
        .collect();

    // The set's status writes.
    let passes = lists.len();
    let writes = set_status.writes.len();
    let summary_changes = set_status.writes.iter().filter(|w| w.1).count();
    let writes_in_window = set_status
        .writes
        .iter()
        .filter(|w| (ws..=we).contains(&ms(w.0)))
        .count();
    let summary_changes_in_window = set_status
        .writes
        .iter()
        .filter(|w| w.1 && (ws..=we).contains(&ms(w.0)))
        .count();
    // A pass: its ListClusters request to the status write that ends it.
    let mut pass_secs: Vec<f64> = set_status
        .writes
        .iter()
        .filter_map(|(at, _)| {
            let list = lists.iter().rev().find(|l| **l <= ms(*at))?;
            Some((ms(*at) - list) / 1000.0)
        })
        .collect();

    // The API server's counts, window and whole run.
    let window_requests = request_delta(&requests_at_start, &requests_at_end);
    let run_requests = request_delta(&requests_at_start, &requests_final);
    let event_posts = |code: &str| delta_of(&run_requests, "events", "", &["POST"], code);
    let watch_creates_seen_by_server = delta_of(
        &run_requests,
        "upgradeworkflowwatches",
        "",
        &["POST"],
        "201",
    );
    let watch_deletes_seen_by_server = delta_of(
        &run_requests,
        "upgradeworkflowwatches",
        "",
        &["DELETE"],
        "200",
    );
    let set_status_patches = delta_of(
        &run_requests,
        "upgradewatchsets",
        "status",
        &["PATCH", "APPLY"],
        "",
    );

    // CCE requests of the generated watches, by route and kind of cluster.
    let mut by_route: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in &after_set {
        let class = r
            .cluster
            .as_deref()
            .and_then(Class::of_cluster)
            .map_or("-", Class::name);
        *by_route
            .entry(r.route.clone())
            .or_default()
            .entry(class.to_string())
            .or_default() += 1;
    }
    let route_total = |route: &str| by_route.get(route).map_or(0, |m| m.values().sum::<usize>());
    // ListUpgradeWorkflows: one per watch and the period its cluster's state calls for,
    // while the watch exists, in the window.
    let scenario_ms = |scenario_secs: f64| ms(sim_start) + scenario_secs * 1000.0;
    let workflow_minimum: f64 = t
        .by_uid
        .values()
        .filter_map(|g| {
            let class = Class::of_cluster(&g.cluster)?;
            let from = ms(g.added).max(ws);
            let to = g.deleted.map_or(we, |d| ms(d).min(we));
            let reads = fleet
                .read_periods(class, index_of(&g.cluster), poll)
                .into_iter()
                .map(|(a, b, period)| {
                    let (a, b) = (scenario_ms(a).max(from), scenario_ms(b).min(to));
                    ((b - a) / 1000.0).max(0.0) / period
                })
                .sum::<f64>();
            Some(reads)
        })
        .sum();
    let workflow_reads = after_set
        .iter()
        .filter(in_window)
        .filter(|r| r.route == "list")
        .count();
    // The same without the window's edges: each gap between two reads of one cluster ÷ the
    // period its state called for at the first of them.
    let mut reads_of: HashMap<&str, Vec<f64>> = HashMap::new();
    for r in after_set.iter().filter(in_window) {
        if r.route == "list"
            && let Some(c) = r.cluster.as_deref()
        {
            reads_of.entry(c).or_default().push(r.unix_ms);
        }
    }
    let mut gap_ratios: Vec<f64> = Vec::new();
    for (cluster, reads) in &reads_of {
        let Some(class) = Class::of_cluster(cluster) else {
            continue;
        };
        let periods = fleet.read_periods(class, index_of(cluster), poll);
        for w in reads.windows(2) {
            let at = (w[0] - ms(sim_start)) / 1000.0;
            if let Some((_, _, period)) = periods.iter().find(|(a, b, _)| (*a..*b).contains(&at)) {
                gap_ratios.push((w[1] - w[0]) / 1000.0 / period);
            }
        }
    }
    let early_reads = gap_ratios.iter().filter(|g| **g < 0.9).count();
    // An idle cluster's ListUpgradeClusterTasks, over each watch's life (steady, joining and
    // leaving clusters never run a task): at most 1 + floor(life / 5 min) each.
    let end_ms = ms(window_end);
    let idle: Vec<&Generated> = t
        .by_uid
        .values()
        .filter(|g| {
            matches!(
                Class::of_cluster(&g.cluster),
                Some(Class::Steady | Class::Joins | Class::Leaves)
            )
        })
        .collect();
    let idle_allowed: f64 = idle
        .iter()
        .map(|g| {
            let life = (g.deleted.map_or(end_ms, ms).min(end_ms) - ms(g.added)) / 1000.0;
            1.0 + (life.max(0.0) / IDLE_TASKS_PERIOD).floor()
        })
        .sum();
    let mut tasks_per_cluster: HashMap<&str, Vec<f64>> = HashMap::new();
    for r in &after_set {
        if r.route == "list-upgrade-tasks"
            && r.unix_ms <= end_ms
            && let Some(c) = r.cluster.as_deref()
            && matches!(
                Class::of_cluster(c),
                Some(Class::Steady | Class::Joins | Class::Leaves)
            )
        {
            tasks_per_cluster.entry(c).or_default().push(r.unix_ms);
        }
    }
    let idle_reads: usize = tasks_per_cluster.values().map(Vec::len).sum();
    let mut idle_gaps: Vec<f64> = tasks_per_cluster
        .values()
        .flat_map(|v| v.windows(2).map(|w| (w[1] - w[0]) / 1000.0))
        .collect();
    let clusters_with_two_reads = tasks_per_cluster.values().filter(|v| v.len() >= 2).count();

    let cpu_window = stat_end.cpu_seconds - stat_start.cpu_seconds;
    let apiserver_window = match (apiserver_start, apiserver_end) {
        (Some(a), Some(b)) => Some(b.cpu_seconds - a.cpu_seconds),
        _ => None,
    };
    let load_after = load_average();
    let q = |v: &mut Vec<f64>, p: f64| quantile(v, p);
    let joins_expected = n;
    let leaves_expected = fleet.count(Class::Leaves);
    let report = json!({
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "loadavgBefore": load_before, "loadavgAfter": load_after,
        },
        "binary": {"label": binary.label, "path": binary.path, "allocator": binary.allocator},
        "params": {
            "clusters": n, "classes": counts, "listIntervalSeconds": interval,
            "pollIntervalSeconds": poll, "leadSeconds": lead, "spreadSeconds": args.spread,
            "operatorConcurrency": args.concurrency, "cceRateLimit": cce_rate,
            "scenario": [steady_file, changes_file],
        },
        "setup": {
            "setAppliedAfterSimStartSeconds": secs(sim_start, set_created),
            "initialClusters": initial,
            "firstSyncWatchesCreatedSeconds": first_sync_created,
            "firstSyncWatchesWithStatusSeconds": first_sync_status,
            "firstSyncCceReadSeconds": first_sync_read,
            "firstSyncPastLeadSeconds": overran.max(0.0),
            "windowSeconds": window_secs,
        },
        "listClusters": {
            "requestsInWindow": lists_in_window,
            "minimumInWindow": list_minimum,
            "ratio": ratio(lists_in_window as f64, list_minimum),
            "requestsAfterSetApplied": passes,
            "gapSeconds": {"p50": q(&mut list_gaps.clone(), 0.5), "max": q(&mut list_gaps, 1.0)},
            "passSeconds": {"p50": q(&mut pass_secs.clone(), 0.5), "p99": q(&mut pass_secs.clone(), 0.99), "max": q(&mut pass_secs, 1.0)},
        },
        "membership": {
            "joins": joins_expected,
            "leaves": leaves_expected,
            "creates": creates,
            "createsInWindow": creates_in_window,
            "joinsInWindow": fleet.count(Class::Joins),
            "deletes": deletes,
            "createRatio": ratio(creates as f64, joins_expected as f64),
            "deleteRatio": ratio(deletes as f64, leaves_expected as f64),
            "clusterJoinedEvents": joined_events,
            "clusterLeftEvents": left_events,
            "joinedEventRatio": ratio(joined_events as f64, joins_expected as f64),
            "leftEventRatio": ratio(left_events as f64, leaves_expected as f64),
            "listedAtEnd": listed.len(),
            "watchesAtEnd": t.alive().count(),
            "listedWithoutWatch": missing,
            "clustersWithSeveralWatches": duplicated,
            "watchesOfUnlistedClusters": extra,
            "watchRestarts": t.inits.saturating_sub(1),
        },
        "latencySeconds": {
            "appearToWatch": {"p50": q(&mut join_lags.clone(), 0.5), "p99": q(&mut join_lags.clone(), 0.99), "max": q(&mut join_lags.clone(), 1.0), "n": join_lags.len()},
            "goneToNoWatch": {"p50": q(&mut leave_lags.clone(), 0.5), "p99": q(&mut leave_lags.clone(), 0.99), "max": q(&mut leave_lags.clone(), 1.0), "n": leave_lags.len()},
        },
        "setStatus": {
            "writes": writes,
            "passes": passes,
            "writesPerPass": ratio(writes as f64, passes as f64),
            "writesChangingMoreThanLastListTime": summary_changes,
            "writesPerSummaryChange": ratio(writes as f64, summary_changes as f64),
            "writesInWindow": writes_in_window,
            "summaryChangesInWindow": summary_changes_in_window,
            "statusPatchesSeenByApiServer": set_status_patches,
        },
        "apiServer": {
            "eventCreates201": event_posts("201"),
            "eventCreates409": event_posts("409"),
            "watchCreates201": watch_creates_seen_by_server,
            "watchDeletes200": watch_deletes_seen_by_server,
            "window": window_requests,
            "wholeRun": run_requests,
        },
        "operator": {
            "peakRssMiB": final_stat.peak_rss_mib,
            "rssMiBAtEnd": final_stat.rss_mib,
            "peakRssSampledMiB": peak_rss_sampled,
            "cpuSeconds": final_stat.cpu_seconds,
            "cpuSecondsInWindow": cpu_window,
            "cpuShareOfOneCoreInWindow": ratio(cpu_window, window_secs),
            "reconcilesTotal": metric_sum(&metrics_final, "cce_upgrade_watch_reconciles_total"),
            "watchStatusWrites": metric_sum(&metrics_final, "cce_upgrade_watch_status_writes_total"),
            "watchEventsPublished": metric_sum(&metrics_final, "cce_upgrade_watch_events_total"),
            "watchEventsStored": watch_events,
            "watchStatusChangesByClass": &t.changes,
        },
        "plane": plane_stats,
        "apiserverCpuSecondsInWindow": apiserver_window,
        "cce": {
            "byRouteAndClass": by_route,
            "workflowReadsInWindow": workflow_reads,
            "workflowReadMinimumInWindow": workflow_minimum,
            "workflowReadRatio": ratio(workflow_reads as f64, workflow_minimum),
            "workflowReadGapPerPeriod": {
                "p50": q(&mut gap_ratios.clone(), 0.5), "min": q(&mut gap_ratios.clone(), 0.0),
                "gaps": gap_ratios.len(), "under0.9": early_reads,
            },
            "idleTaskReads": idle_reads,
            "idleTaskReadsAllowed": idle_allowed,
            "idleTaskReadRatio": ratio(idle_reads as f64, idle_allowed),
            "idleClustersReadTwice": clusters_with_two_reads,
            "idleWatches": idle.len(),
            "idleTaskReadGapSeconds": {"min": q(&mut idle_gaps.clone(), 0.0), "p50": q(&mut idle_gaps.clone(), 0.5), "max": q(&mut idle_gaps, 1.0)},
            "steadyStatusChangesPerRead": ratio(
                t.changes.get("steady").map_or(0, |c| c.changes) as f64,
                by_route
                    .get("list")
                    .and_then(|m| m.get("steady"))
                    .copied()
                    .unwrap_or(0) as f64,
            ),
            "showClusterReads": route_total("show-cluster"),
            "showClusterPerWatch": ratio(route_total("show-cluster") as f64, creates as f64),
            "requestsTotal": sim_stats["total"],
            "non200": requests.iter().filter(|r| r.status != 200).count(),
        },
    });
    drop(t);
    drop(set_status);

    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let path = out_dir.join(format!("discovery-{n}-{stamp}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let _ = std::fs::copy(&path, out_dir.join(format!("discovery-{n}.json")));
    drop(plane);
    Ok((report, path))
}

/// The figures as (figure, measured, target).
fn rows(r: &Value) -> Vec<(String, String, String)> {
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    let f0 = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.0}"));
    let p = &r["params"];
    let m = &r["membership"];
    let l = &r["listClusters"];
    let s = &r["setStatus"];
    let c = &r["cce"];
    let lat = &r["latencySeconds"];
    let routes = c["byRouteAndClass"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(route, classes)| {
                    let n: u64 = classes
                        .as_object()
                        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
                    format!("{route} {n}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    vec![
        (
            "ListClusters per list interval (window)".into(),
            format!(
                "{} ({} / {})",
                f(&l["ratio"]),
                l["requestsInWindow"],
                f(&l["minimumInWindow"])
            ),
            "1.00".into(),
        ),
        (
            "  gap between lists p50 / max; pass p50 / max".into(),
            format!(
                "{} s / {} s; {} s / {} s",
                f(&l["gapSeconds"]["p50"]),
                f(&l["gapSeconds"]["max"]),
                f(&l["passSeconds"]["p50"]),
                f(&l["passSeconds"]["max"])
            ),
            "".into(),
        ),
        (
            "watch creates ÷ clusters joined".into(),
            format!(
                "{} ({} / {}; {} in the window)",
                f(&m["createRatio"]),
                m["creates"],
                m["joins"],
                m["createsInWindow"]
            ),
            "1.00".into(),
        ),
        (
            "watch deletes ÷ clusters left".into(),
            format!(
                "{} ({} / {})",
                f(&m["deleteRatio"]),
                m["deletes"],
                m["leaves"]
            ),
            "1.00".into(),
        ),
        (
            "ClusterJoined / ClusterLeft Events ÷ the same".into(),
            format!(
                "{} / {} ({} / {})",
                f(&m["joinedEventRatio"]),
                f(&m["leftEventRatio"]),
                m["clusterJoinedEvents"],
                m["clusterLeftEvents"]
            ),
            "1.00".into(),
        ),
        (
            "one watch per listed cluster at the end".into(),
            format!(
                "{} listed, {} watches: {} without, {} with several, {} extra",
                m["listedAtEnd"],
                m["watchesAtEnd"],
                m["listedWithoutWatch"],
                m["clustersWithSeveralWatches"],
                m["watchesOfUnlistedClusters"]
            ),
            "0 / 0 / 0".into(),
        ),
        (
            "set status writes ÷ passes".into(),
            format!(
                "{} ({} / {}; {} changed more than lastListTime)",
                f(&s["writesPerPass"]),
                s["writes"],
                s["passes"],
                s["writesChangingMoreThanLastListTime"]
            ),
            "changes only".into(),
        ),
        (
            "Event creates answered AlreadyExists".into(),
            format!(
                "{} (of {} Event creates)",
                f0(&r["apiServer"]["eventCreates409"]),
                f0(&(r["apiServer"]["eventCreates201"].as_f64().unwrap_or(0.0)
                    + r["apiServer"]["eventCreates409"].as_f64().unwrap_or(0.0))
                .into())
            ),
            "0".into(),
        ),
        (
            "appear → watch exists p50 / p99".into(),
            format!(
                "{} s / {} s (max {}, n={})",
                f(&lat["appearToWatch"]["p50"]),
                f(&lat["appearToWatch"]["p99"]),
                f(&lat["appearToWatch"]["max"]),
                lat["appearToWatch"]["n"]
            ),
            format!("≤ {} s + a pass", p["listIntervalSeconds"]),
        ),
        (
            "gone → watch deleted p50 / p99".into(),
            format!(
                "{} s / {} s (max {}, n={})",
                f(&lat["goneToNoWatch"]["p50"]),
                f(&lat["goneToNoWatch"]["p99"]),
                f(&lat["goneToNoWatch"]["max"]),
                lat["goneToNoWatch"]["n"]
            ),
            format!("≤ {} s + a pass", p["listIntervalSeconds"]),
        ),
        (
            "first sync: watches created / with a status / read CCE".into(),
            format!(
                "{} in {} s / {} s / {} s",
                r["setup"]["initialClusters"],
                f(&r["setup"]["firstSyncWatchesCreatedSeconds"]),
                f(&r["setup"]["firstSyncWatchesWithStatusSeconds"]),
                f(&r["setup"]["firstSyncCceReadSeconds"])
            ),
            "".into(),
        ),
        (
            "operator peak RSS (VmHWM)".into(),
            format!(
                "{} MiB (at the end {} MiB)",
                f(&r["operator"]["peakRssMiB"]),
                f(&r["operator"]["rssMiBAtEnd"])
            ),
            "".into(),
        ),
        (
            "operator CPU, whole run / window".into(),
            format!(
                "{} s / {} s in {} s",
                f(&r["operator"]["cpuSeconds"]),
                f(&r["operator"]["cpuSecondsInWindow"]),
                f(&r["setup"]["windowSeconds"])
            ),
            "".into(),
        ),
        (
            "kube-apiserver / etcd CPU, whole run".into(),
            format!(
                "{} s / {} s",
                f(&r["plane"]["kube-apiserver"]["cpu_seconds"]),
                f(&r["plane"]["etcd"]["cpu_seconds"])
            ),
            "".into(),
        ),
        (
            "ListUpgradeWorkflows ÷ one per watch and period (window)".into(),
            format!(
                "{} ({} / {})",
                f(&c["workflowReadRatio"]),
                c["workflowReadsInWindow"],
                f(&c["workflowReadMinimumInWindow"])
            ),
            "≤ 1.05".into(),
        ),
        (
            "  gap between one watch's reads ÷ its period p50 / min".into(),
            format!(
                "{} / {} ({} gaps, {} under 0.9)",
                f(&c["workflowReadGapPerPeriod"]["p50"]),
                f(&c["workflowReadGapPerPeriod"]["min"]),
                c["workflowReadGapPerPeriod"]["gaps"],
                c["workflowReadGapPerPeriod"]["under0.9"]
            ),
            "≥ 1.00".into(),
        ),
        (
            "idle ListUpgradeClusterTasks ÷ 1 + one per 5 min".into(),
            format!(
                "{} ({} / {}; gap min {} s, {} of {} read twice)",
                f(&c["idleTaskReadRatio"]),
                c["idleTaskReads"],
                f0(&c["idleTaskReadsAllowed"]),
                f0(&c["idleTaskReadGapSeconds"]["min"]),
                c["idleClustersReadTwice"],
                c["idleWatches"]
            ),
            "≤ 1.00, gap ≥ 300 s".into(),
        ),
        (
            "steady watches' status changes per read".into(),
            format!(
                "{} ({})",
                f(&c["steadyStatusChangesPerRead"]),
                r["operator"]["watchStatusChangesByClass"]["steady"]["fields"]
                    .as_object()
                    .map(|o| {
                        let mut v: Vec<(&String, u64)> = o
                            .iter()
                            .map(|(k, n)| (k, n.as_u64().unwrap_or(0)))
                            .collect();
                        v.sort_by_key(|b| std::cmp::Reverse(b.1));
                        v.iter()
                            .take(3)
                            .map(|(k, n)| format!("{k} {n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            ),
            "".into(),
        ),
        (
            "ShowCluster reads per watch created".into(),
            format!(
                "{} ({})",
                f(&c["showClusterPerWatch"]),
                c["showClusterReads"]
            ),
            "".into(),
        ),
        ("CCE requests by route".into(), routes, "".into()),
    ]
}

fn print_table(r: &Value, path: &Path) {
    let p = &r["params"];
    let rows = rows(r);
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\ndiscovery: one set over {} clusters, listInterval {}s, pollInterval {}s, {} cores (load {} before, {} after)",
        p["clusters"],
        p["listIntervalSeconds"],
        p["pollIntervalSeconds"],
        r["machine"]["cores"],
        r["machine"]["loadavgBefore"].as_str().unwrap_or("?"),
        r["machine"]["loadavgAfter"].as_str().unwrap_or("?")
    );
    let _ = writeln!(out, "| {:w0$} | {:w1$} | target |", "figure", "measured");
    let _ = writeln!(out, "| {} | {} | --- |", "-".repeat(w0), "-".repeat(w1));
    for (name, value, target) in rows {
        let _ = writeln!(out, "| {name:w0$} | {value:w1$} | {target} |");
    }
    let _ = writeln!(out, "JSON: {}", path.display());
}
