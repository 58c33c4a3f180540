//! `make bench` (`cargo bench --bench fleet -- --watches W --workflows D`): the operator's
//! cost and responsiveness for a fleet of watches, measured end to end on this machine.
//!
//! What runs: a private control plane (`hack/control-plane.sh up` in its own
//! `CCE_UW_PLANE_DIR`, taken down at the end), the CCE simulator playing a generated scenario
//! of D workflows, the release operator binary watching the whole cluster, and this driver,
//! which creates W watches (spread evenly over the workflows and over a few namespaces, each
//! namespace with one CCEAccount and its labelled Secret that all its watches name) and
//! follows every one of them with a Kubernetes watch.
//!
//! The run has three parts:
//! 1. setup: W - probes watches are created in parallel (the *burst*), then `probes` more
//!    one at a time on an otherwise idle plane; every workflow stays in Init meanwhile (the
//!    driver keeps pushing the simulator's timeline back until setup is done);
//! 2. the window: each workflow plays PreCheck, Snapshot, Cluster and PostCheck (8 steps,
//!    `--step-gap` apart, staggered across workflows) to Success;
//! 3. settle: two more poll periods, so late writes or duplicate events would be counted.
//!
//! Figures (printed as a table, written as JSON to `target/bench/`):
//! - operator peak RSS (VmHWM) and CPU seconds (utime + stime), also for the plane, and
//!   kube-apiserver's CPU per 1,000 watches;
//! - the operator's TCP connections to the API server (and to CCE), sampled every second;
//! - operator CPU per reconcile in the window;
//! - CCE requests ÷ their minimum in the window: one workflow read per workflow and poll
//!   period while it was active, plus the diagnostic reads its tasks call for (one per
//!   finished pre-check, one per poll period while its Cluster task ran);
//! - status writes (operator metric) ÷ status changes seen through the Kubernetes watch;
//! - Events ÷ the transitions the simulator's timeline implies for each watch;
//! - lag from a simulator step (its timestamp) to the watch showing it, p50/p99;
//! - watch creation to the first status that shows the workflow, p50/p99 (burst and idle);
//! - reconciles per second (operator metric) in the window.
//!
//! `--operator-binary` picks what runs as the operator: `release` (this build's glibc
//! binary), `static` (the musl binary of `hack/static-build.sh`, the one the image ships) or
//! a path. Given several times, the whole run is repeated for each and the tables are
//! printed side by side.

#[path = "../tests/common/mod.rs"]
mod kit;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use cce_upgrade_watch::cce::time as cce_time;
use cce_upgrade_watch::crd::{UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use cce_upgrade_watch::sim::{Route, builtin};
use kit::eventually::within;
use kit::plane::PrivatePlane;
use kit::procfs::{ProcStat, clock_ticks, proc_stat};
use kit::sim::Sim;
use support::{
    Binary, Launch, Res, Served, drain_requests, lock, log, metric_sum, quantile, resolve_binary,
    scrape, secs, socket_of, start_operator, wait_ready,
};
const LABEL: &str = "cce-uw-bench";
const TASKS: [&str; 4] = ["PreCheck", "Snapshot", "Cluster", "PostCheck"];
/// Steps of one workflow: each task starts, then succeeds.
const STEPS: usize = 2 * TASKS.len();

#[derive(Parser, Debug, Clone)]
#[command(about = "Fleet benchmark of cce-upgrade-watch against a private control plane")]
struct Args {
    /// Number of UpgradeWorkflowWatches.
    #[arg(long, default_value_t = 1000)]
    watches: usize,
    /// Number of distinct CCE workflows they watch (watches are spread evenly).
    #[arg(long, default_value_t = 200)]
    workflows: usize,
    /// Namespaces the watches are spread over.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// spec.pollInterval of every watch, in seconds.
    #[arg(long, default_value_t = 5)]
    poll: u64,
    /// Seconds between two steps of one workflow; default max(2 × poll, watches × 12 ms).
    /// Each watch sees 8 status changes and 11 Events, so the default asks the API server
    /// for under 200 writes per second: what kube-apiserver and etcd sustain on 2 shared
    /// cores next to the operator (at 10,000 watches and a 20 s gap they fell behind).
    #[arg(long)]
    step_gap: Option<f64>,
    /// Watches created one at a time on an idle plane after the burst.
    #[arg(long, default_value_t = 20)]
    probes: usize,
    /// Parallel creates during the burst.
    #[arg(long, default_value_t = 64)]
    create_concurrency: usize,
    /// Operator reconcile concurrency (its --concurrency).
    #[arg(long, default_value_t = 64)]
    concurrency: u16,
    /// Where the JSON report (and the operator's log) go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Run the operator under this command, e.g. `heaptrack -o target/bench/heap` (split on
    /// spaces; the operator's pid is then the wrapper's, so RSS and CPU include it).
    #[arg(long)]
    operator_wrapper: Option<String>,
    /// The operator binary: `release`, `static` or a path; repeat it to measure several,
    /// one whole run each, side by side.
    #[arg(long = "operator-binary", default_value = "release")]
    operator_binaries: Vec<String>,
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
            code = run_each(&args) => code,
            _ = tokio::signal::ctrl_c() => { eprintln!("interrupted"); 130 }
        }
    });
    // Children and the plane are stopped by their guards, dropped by now.
    std::process::exit(code);
}

/// One whole run per operator binary, then their tables side by side; the exit code.
async fn run_each(args: &Args) -> i32 {
    let mut reports = Vec::new();
    let mut code = 0;
    for name in &args.operator_binaries {
        match resolve_binary(name) {
            Ok(binary) => {
                log(format!(
                    "operator binary {}: {} ({} allocator)",
                    binary.label,
                    binary.path.display(),
                    binary.allocator
                ));
                match run(args, &binary).await {
                    Ok(report) => reports.push(report),
                    Err(e) => {
                        eprintln!("bench of {} failed: {e}", binary.label);
                        code = 1;
                    }
                }
            }
            Err(e) => {
                eprintln!("operator binary {name}: {e}");
                code = 1;
            }
        }
    }
    print_tables(&reports);
    code
}

// ------------------------------------------------------------------ processes

/// The operator's TCP connections, sampled every second from its start to the end of the
/// window.
#[derive(Debug, Default)]
struct Connections {
    api_max: usize,
    api_max_in_window: usize,
    api_last: usize,
    cce_max: usize,
    samples: usize,
    in_window: bool,
}

fn sample_connections(
    pid: u32,
    api: std::net::SocketAddr,
    cce: std::net::SocketAddr,
    into: Arc<Mutex<Connections>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let (Ok(a), Ok(c)) = (
                kit::sockets::connections_to(pid, api),
                kit::sockets::connections_to(pid, cce),
            ) else {
                continue;
            };
            let mut k = lock(&into);
            k.api_max = k.api_max.max(a);
            if k.in_window {
                k.api_max_in_window = k.api_max_in_window.max(a);
            }
            k.api_last = a;
            k.cce_max = k.cce_max.max(c);
            k.samples += 1;
        }
    })
}

// ------------------------------------------------------------------ scenario

/// When a workflow's pre-check ended and its Cluster task ran, as the simulator played them.
#[derive(Clone, Default)]
struct TaskTimes {
    precheck_end: Option<Timestamp>,
    cluster: Option<(Timestamp, Timestamp)>,
}

fn workflow_id(i: usize) -> String {
    format!("b0000000-0000-4000-8000-{i:012}")
}

fn cluster_id(i: usize) -> String {
    format!("cb000000-0000-4000-8000-{i:012}")
}

/// D workflows in Init; workflow i plays its 8 steps from `lead + stagger_i`, `gap` apart,
/// stagger spreading the workflows evenly over one gap.
fn scenario_yaml(workflows: usize, lead: f64, gap: f64) -> String {
    let mut y = String::from("name: bench-fleet\nprojectID: ");
    y.push_str(builtin::PROJECT_ID);
    y.push_str("\nclusters:\n");
    for i in 0..workflows {
        y.push_str(&format!(
            "  - {{id: {}, version: {}}}\n",
            cluster_id(i),
            builtin::FROM_VERSION
        ));
    }
    y.push_str("workflows:\n");
    for i in 0..workflows {
        let stagger = gap * i as f64 / workflows as f64;
        y.push_str(&format!(
            "  - id: {}\n    clusterID: {}\n    targetVersion: {}\n    steps:\n",
            workflow_id(i),
            cluster_id(i),
            builtin::TO_VERSION
        ));
        for (k, task) in TASKS.iter().enumerate() {
            for (j, status) in ["Running", "Success"].iter().enumerate() {
                let at = lead + stagger + gap * (2 * k + j) as f64;
                y.push_str(&format!(
                    "      - {{at: {at:.3}, task: {task}, status: {status}}}\n"
                ));
            }
        }
    }
    y
}

/// Steps a status shows: 1 per task started, 2 per task finished.
fn progress(status: &UpgradeWorkflowWatchStatus) -> usize {
    status
        .tasks
        .iter()
        .map(|t| match t.phase.as_deref() {
            Some("Running") => 1,
            Some("Success") | Some("Failed") => 2,
            _ => 0,
        })
        .sum()
}

/// Events the operator owes for one watch that first saw the workflow at `from` steps and
/// then every step up to `to`: WorkflowObserved, one per task step, PhaseChanged
/// (Init → Running) with the first step, UpgradeSucceeded with the last.
fn expected_events(from: usize, to: usize) -> usize {
    1 + (from + 1..=to)
        .map(|k| 1 + usize::from(k == 1) + usize::from(k == STEPS))
        .sum::<usize>()
}

// ------------------------------------------------------------------ tracking

#[derive(Default)]
struct Track {
    created: Option<Timestamp>,
    probe: bool,
    first_any: Option<Timestamp>,
    first_workflow: Option<Timestamp>,
    first_progress: Option<usize>,
    /// When each progress level was first seen.
    seen: [Option<Timestamp>; STEPS + 1],
    status: Option<Box<UpgradeWorkflowWatchStatus>>,
    changes: u64,
}

#[derive(Default)]
struct Tracker {
    watches: HashMap<String, Track>,
    restarts: u64,
    /// The watch listed once: changes from now on are all seen.
    synced: bool,
}

impl Tracker {
    fn observe(&mut self, w: &UpgradeWorkflowWatch, now: Timestamp) {
        let key = format!("{}/{}", w.namespace().unwrap_or_default(), w.name_any());
        let t = self.watches.entry(key).or_default();
        if t.status == w.status {
            return;
        }
        t.changes += 1;
        t.status = w.status.clone();
        let Some(status) = &w.status else { return };
        t.first_any.get_or_insert(now);
        if status.workflow_id.is_some() {
            t.first_workflow.get_or_insert(now);
            let p = progress(status);
            t.first_progress.get_or_insert(p);
            for slot in t.seen.iter_mut().take(p + 1) {
                slot.get_or_insert(now);
            }
        }
    }
}

async fn follow_watches(client: Client, tracker: Arc<Mutex<Tracker>>) {
    let api: Api<UpgradeWorkflowWatch> = Api::all(client);
    let config = watcher::Config::default().labels(LABEL);
    let mut stream = watcher(api, config).boxed();
    let mut inits = 0u64;
    while let Some(event) = stream.next().await {
        let now = Timestamp::now();
        match event {
            Ok(watcher::Event::Apply(w) | watcher::Event::InitApply(w)) => {
                lock(&tracker).observe(&w, now);
            }
            Ok(watcher::Event::Init) => {
                inits += 1;
                if inits > 1 {
                    lock(&tracker).restarts += 1;
                }
            }
            Ok(watcher::Event::InitDone) => lock(&tracker).synced = true,
            Ok(watcher::Event::Delete(_)) => {}
            Err(e) => {
                log(format!("watch of the watches: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

// ------------------------------------------------------------------ kube helpers

/// Namespace `bench-{n}` with the marked Secret `cce` of the simulator's built-in keys.
async fn setup_namespace(client: &Client, n: usize) {
    let ns = format!("bench-{n}");
    kit::namespace::create_namespace(client, &ns).await;
    kit::sim_secret(client, &ns, "cce", builtin::ACCESS_KEY, builtin::SECRET_KEY).await;
}

/// The CCEAccount of namespace `bench-{n}` that reaches `sim` with its Secret `cce`, as a
/// team would run it: every watch of the namespace names it, so the run measures the
/// account lookup and the shared credentials its watches go through.
async fn setup_account(client: &Client, n: usize, sim: &Sim) {
    kit::sim_account(client, &format!("bench-{n}"), sim, "cce").await;
}

/// Watch `name` of one of the scenario's workflows through its namespace's CCEAccount,
/// labelled for the driver's follower.
fn watch_object(
    ns: &str,
    name: &str,
    sim: &Sim,
    workflow: usize,
    poll: u64,
) -> UpgradeWorkflowWatch {
    let mut watch = kit::watch::sim_watch_object(
        ns,
        name,
        sim,
        &cluster_id(workflow),
        Some(&workflow_id(workflow)),
        Some("cce"),
    );
    watch.metadata.labels = Some([(LABEL.to_string(), "1".to_string())].into());
    watch.spec.poll_interval = Some(format!("{poll}s"));
    watch
}

/// Creates watch `i`, retrying while the API server is overloaded; returns when it exists.
async fn create_watch(
    client: &Client,
    args: &Args,
    sim: &Sim,
    i: usize,
) -> Res<(String, Timestamp)> {
    let ns = format!("bench-{}", i % args.namespaces);
    let name = format!("w{i:05}");
    let obj = watch_object(&ns, &name, sim, i % args.workflows, args.poll);
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    for attempt in 0.. {
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => return Ok((format!("{ns}/{name}"), Timestamp::now())),
            Err(e) if attempt < 20 => {
                log(format!("create {ns}/{name}: {e}; retrying"));
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
            Err(e) => return Err(format!("create {ns}/{name}: {e}")),
        }
    }
    unreachable!()
}

// ------------------------------------------------------------------ the run

async fn run(args: &Args, binary: &Binary) -> Res<(Value, PathBuf)> {
    if args.workflows == 0 || args.watches < args.workflows || args.namespaces == 0 {
        return Err("need watches >= workflows >= 1 and namespaces >= 1".into());
    }
    let probes = args.probes.min(args.watches / 10);
    let gap = args
        .step_gap
        .unwrap_or_else(|| (2.0 * args.poll as f64).max(args.watches as f64 * 0.012));
    let out_dir = if args.out.is_absolute() {
        args.out.clone()
    } else {
        kit::repo_path("").join(&args.out)
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let ticks = clock_ticks();
    let http = reqwest::Client::new();
    log(format!(
        "{} watches over {} workflows in {} namespaces, pollInterval {}s, step gap {gap}s, {} probes",
        args.watches, args.workflows, args.namespaces, args.poll, probes
    ));

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
    for n in 0..args.namespaces {
        setup_namespace(&client, n).await;
    }

    // The timeline starts `lead` seconds after the simulator; setup pushes it back as needed.
    let lead = 30.0;
    let sim = Sim::https()
        .scenario_yaml(&scenario_yaml(args.workflows, lead, gap))
        .start();
    let sim_started = Timestamp::now();
    // The account names the simulator's endpoint, known only once it listens.
    for n in 0..args.namespaces {
        setup_account(&client, n, &sim).await;
    }
    let hold = {
        let (http, admin) = (http.clone(), sim.admin.clone());
        tokio::spawn(async move {
            // Every 5 s, delay every step still to come by 5 s: nothing moves during setup.
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let _ = http
                    .post(format!("{admin}/_sim/advance"))
                    .json(&json!({"seconds": -5.0}))
                    .send()
                    .await;
            }
        })
    };

    // The release binary's files keep the names they always had.
    let suffix = match binary.label.as_str() {
        "release" => String::new(),
        label => format!("-{label}"),
    };
    let log_file = out_dir.join(format!(
        "operator-{}-{}{suffix}.log",
        args.watches, args.workflows
    ));
    // Enough CCE request budget for D workflows every poll period, with room for retries.
    let launch = Launch {
        binary: &binary.path,
        wrapper: args.operator_wrapper.as_deref(),
        cce_rate: (2 * args.workflows).div_ceil(args.poll as usize).max(10),
        concurrency: args.concurrency,
        extra: &[],
    };
    let mut operator = start_operator(&launch, &plane, &sim, &log_file)?;
    let op_pid = operator.child.id();
    let connections = Arc::new(Mutex::new(Connections::default()));
    let sampler = sample_connections(
        op_pid,
        kit::sockets::api_server(&plane.kubeconfig()),
        socket_of(&sim.url)?,
        connections.clone(),
    );
    // Ready once its caches synced.
    let ready_within = if args.operator_wrapper.is_some() {
        300
    } else {
        60
    };
    wait_ready(&mut operator, &http, ready_within, &log_file).await?;
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let follower = tokio::spawn(follow_watches(client.clone(), tracker.clone()));
    within(
        "the follower listed the watches",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async {
            if lock(&tracker).synced {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .await?;

    // 1. The burst.
    let burst = args.watches - probes;
    log(format!(
        "creating {burst} watches, {} at a time",
        args.create_concurrency
    ));
    let t_burst = Instant::now();
    let created: Vec<(String, Timestamp)> = futures::stream::iter(0..burst)
        .map(|i| create_watch(&client, args, &sim, i))
        .buffer_unordered(args.create_concurrency)
        .try_collect()
        .await?;
    let burst_secs = t_burst.elapsed().as_secs_f64();
    {
        let mut t = lock(&tracker);
        for (key, at) in &created {
            t.watches.entry(key.clone()).or_default().created = Some(*at);
        }
    }
    log(format!(
        "created {burst} watches in {burst_secs:.1} s ({:.0}/s); waiting for their first status",
        burst as f64 / burst_secs
    ));
    within(
        "every burst watch has a status",
        Duration::from_secs(120 + args.watches as u64 / 20),
        Duration::from_millis(200),
        || async {
            let missing = lock(&tracker)
                .watches
                .values()
                .filter(|t| t.first_workflow.is_none())
                .count();
            match missing {
                0 => Ok(()),
                n => Err(format!("{n} watches without one")),
            }
        },
    )
    .await?;
    log(format!(
        "every burst watch has its first status {:.1} s after the burst began",
        t_burst.elapsed().as_secs_f64()
    ));

    // 2. Probes on an idle plane: one at a time, each waited for.
    tokio::time::sleep(Duration::from_secs(args.poll)).await;
    for i in burst..args.watches {
        let (key, at) = create_watch(&client, args, &sim, i).await?;
        {
            let mut t = lock(&tracker);
            let track = t.watches.entry(key.clone()).or_default();
            track.created = Some(at);
            track.probe = true;
        }
        within(
            &format!("probe {key} has a status"),
            Duration::from_secs(30),
            Duration::from_millis(20),
            || async {
                let first = lock(&tracker)
                    .watches
                    .get(&key)
                    .and_then(|t| t.first_workflow);
                first.map(|_| ()).ok_or("no status")
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 3. The window: the timeline plays from about `lead` seconds from now.
    hold.abort();
    let info = sim.admin_get("/_sim/workflows").await;
    let first_step = info
        .as_array()
        .and_then(|a| {
            a.iter()
                .filter_map(|w| w["nextStepAt"].as_str())
                .min()
                .map(str::to_string)
        })
        .and_then(|s| s.parse::<Timestamp>().ok())
        .ok_or("simulator has no step to come")?;
    let window_start = Timestamp::now();
    let stat_start = proc_stat(op_pid, ticks).unwrap_or_default();
    let apiserver_pid = plane.pid("kube-apiserver");
    let apiserver_start = apiserver_pid.and_then(|pid| proc_stat(pid, ticks));
    lock(&connections).in_window = true;
    let metrics_start = scrape(&http, &operator.metrics_url).await?;
    let mut requests = Vec::new();
    let mut since = 0u64;
    drain_requests(&sim, &mut since, &mut requests).await;
    let requests_before = requests.len();
    log(format!(
        "setup done {:.0} s after the simulator started; first step in {:.0} s; then {} steps per workflow, {gap} s apart",
        secs(sim_started, window_start),
        secs(window_start, first_step),
        STEPS
    ));

    let mut peak_rss_sampled: f64 = 0.0;
    let end_deadline = Instant::now()
        + Duration::from_secs_f64(
            secs(window_start, first_step) + gap * (STEPS as f64 + 1.0) + 300.0,
        );
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drain_requests(&sim, &mut since, &mut requests).await;
        if let Some(s) = proc_stat(op_pid, ticks) {
            peak_rss_sampled = peak_rss_sampled.max(s.rss_mib);
        }
        let (done, total) = {
            let t = lock(&tracker);
            (
                t.watches
                    .values()
                    .filter(|w| w.seen[STEPS].is_some())
                    .count(),
                t.watches.len(),
            )
        };
        log(format!("{done}/{total} watches show Success"));
        if done == total {
            break;
        }
        if Instant::now() > end_deadline {
            log("not every watch reached Success in time; reporting what was seen");
            break;
        }
    }
    let window_end = Timestamp::now();
    let stat_end = proc_stat(op_pid, ticks).unwrap_or_default();
    let apiserver_end = apiserver_pid.and_then(|pid| proc_stat(pid, ticks));
    sampler.abort();
    let metrics_end = scrape(&http, &operator.metrics_url).await?;
    // Settle: late writes or duplicate events would show up now.
    tokio::time::sleep(Duration::from_secs(2 * args.poll)).await;
    drain_requests(&sim, &mut since, &mut requests).await;
    let final_stat = proc_stat(op_pid, ticks).unwrap_or_default();
    let metrics_final = scrape(&http, &operator.metrics_url).await?;
    let plane_stats: BTreeMap<&str, ProcStat> = ["kube-apiserver", "etcd"]
        .into_iter()
        .filter_map(|c| Some((c, proc_stat(plane.pid(c)?, ticks)?)))
        .collect();
    let sim_stats = sim.admin_get("/_sim/stats").await;
    let truth = sim.admin_get("/_sim/workflows").await;

    // Events, per watch.
    let mut events_per_watch: HashMap<String, usize> = HashMap::new();
    let mut events_total = 0usize;
    for n in 0..args.namespaces {
        let ns = format!("bench-{n}");
        let list = Api::<KubeEvent>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("list events: {e}"))?;
        for e in list.items {
            if e.reporting_controller.as_deref() != Some("cce-upgrade-watch") {
                continue;
            }
            let count = kit::events::occurrences(&e);
            let name = e.regarding.and_then(|r| r.name).unwrap_or_default();
            *events_per_watch.entry(format!("{ns}/{name}")).or_default() += count;
            events_total += count;
        }
    }
    follower.abort();
    drop(operator);
    drop(sim);

    // Step instants per workflow, from the simulator's final state.
    let mut step_times: HashMap<String, Vec<Timestamp>> = HashMap::new();
    let mut finished_at: HashMap<String, Timestamp> = HashMap::new();
    let mut runs: HashMap<String, TaskTimes> = HashMap::new();
    for w in truth.as_array().cloned().unwrap_or_default() {
        let id = w["workflowID"].as_str().unwrap_or_default().to_string();
        let mut times: Vec<Timestamp> = Vec::new();
        let mut run = TaskTimes::default();
        for p in w["workflow"]["status"]["pointStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let at = |key: &str| p[key].as_str().and_then(cce_time::parse);
            for key in ["startTimeStamp", "endTimeStamp"] {
                if let Some(t) = at(key) {
                    times.push(t);
                }
            }
            match p["taskType"].as_str() {
                Some("PreCheck") => run.precheck_end = at("endTimeStamp"),
                Some("Cluster") => {
                    run.cluster = at("startTimeStamp").zip(at("endTimeStamp"));
                }
                _ => {}
            }
        }
        runs.insert(id.clone(), run);
        times.sort();
        if w["workflow"]["status"]["phase"] == "Success"
            && let Some(last) = times.last()
        {
            finished_at.insert(id.clone(), *last);
        }
        step_times.insert(id, times);
    }

    // Lags, first statuses, changes, expected events.
    let tracker = lock(&tracker);
    let mut lags = Vec::new();
    let (mut first_burst, mut first_probe) = (Vec::new(), Vec::new());
    let (mut changes, mut expected, mut surplus, mut deficit) = (0u64, 0usize, 0usize, 0usize);
    for (key, t) in &tracker.watches {
        changes += t.changes;
        let index: usize = key
            .rsplit('w')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let wf = workflow_id(index % args.workflows);
        if let (Some(c), Some(f)) = (t.created, t.first_workflow) {
            if t.probe {
                &mut first_probe
            } else {
                &mut first_burst
            }
            .push(secs(c, f));
        }
        let times = step_times.get(&wf).cloned().unwrap_or_default();
        if let Some(first) = t.first_workflow {
            for (k, due) in times.iter().enumerate() {
                if *due <= first {
                    continue;
                }
                if let Some(seen) = t.seen.get(k + 1).copied().flatten() {
                    lags.push(secs(*due, seen));
                }
            }
        }
        let from = t.first_progress.unwrap_or(0);
        let owed = expected_events(from, times.len().max(from));
        expected += owed;
        let got = events_per_watch.get(key).copied().unwrap_or(0);
        surplus += got.saturating_sub(owed);
        deficit += owed.saturating_sub(got);
    }
    let lag_steps = lags.len();
    let missed_steps: usize = tracker
        .watches
        .iter()
        .map(|(key, t)| {
            let index: usize = key
                .rsplit('w')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let n = step_times
                .get(&workflow_id(index % args.workflows))
                .map_or(0, Vec::len);
            (1..=n).filter(|k| t.seen[*k].is_none()).count()
        })
        .sum();

    // CCE requests per workflow and poll period while it was active inside the window.
    let (ws, we) = (
        window_start.as_millisecond() as f64,
        window_end.as_millisecond() as f64,
    );
    let active_end = |id: &str| {
        finished_at
            .get(id)
            .map_or(we, |t| (t.as_millisecond() as f64).min(we))
    };
    let (mut active_periods, mut diagnostic_minimum) = (0.0, 0.0);
    for i in 0..args.workflows {
        let id = workflow_id(i);
        let end = active_end(&id);
        active_periods += ((end - ws) / 1000.0).max(0.0) / args.poll as f64;
        let run = runs.get(&id).cloned().unwrap_or_default();
        let inside = |t: Timestamp| (ws..=end).contains(&(t.as_millisecond() as f64));
        if run.precheck_end.is_some_and(inside) {
            diagnostic_minimum += 1.0;
        }
        if let Some((start, stop)) = run.cluster {
            let from = (start.as_millisecond() as f64).max(ws);
            let to = (stop.as_millisecond() as f64).min(end);
            diagnostic_minimum += ((to - from) / 1000.0).max(0.0) / args.poll as f64;
        }
    }
    let by_cluster: HashMap<String, String> = (0..args.workflows)
        .map(|i| (cluster_id(i), workflow_id(i)))
        .collect();
    let in_window: Vec<&Served> = requests[requests_before..]
        .iter()
        .filter(|r| r.unix_ms >= ws)
        .filter(|r| {
            r.workflow_of(&by_cluster)
                .is_some_and(|id| r.unix_ms <= active_end(&id))
        })
        .collect();
    let diagnostic_in_window = in_window
        .iter()
        .filter(|r| Route::parse(&r.route).is_some_and(|route| !route.is_workflow()))
        .count();
    let failed_requests = requests.iter().filter(|r| r.status != 200).count();

    let writes = metric_sum(&metrics_final, "cce_upgrade_watch_status_writes_total");
    let reconciles_window = metric_sum(&metrics_end, "cce_upgrade_watch_reconciles_total")
        - metric_sum(&metrics_start, "cce_upgrade_watch_reconciles_total");
    let window_secs = secs(window_start, window_end);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let cpu_in_window = stat_end.cpu_seconds - stat_start.cpu_seconds;
    let thousands = args.watches as f64 / 1000.0;
    let apiserver_window = match (apiserver_start, apiserver_end) {
        (Some(a), Some(b)) => Some(b.cpu_seconds - a.cpu_seconds),
        _ => None,
    };
    let connections = lock(&connections);
    let report = json!({
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "binary": {
            "label": binary.label, "path": binary.path, "allocator": binary.allocator,
        },
        "params": {
            "watches": args.watches, "workflows": args.workflows, "namespaces": args.namespaces,
            "pollIntervalSeconds": args.poll, "stepGapSeconds": gap, "stepsPerWorkflow": STEPS,
            "probes": probes, "createConcurrency": args.create_concurrency,
            "operatorConcurrency": args.concurrency,
            "cceRateLimit": (2 * args.workflows).div_ceil(args.poll as usize).max(10),
        },
        "setup": {
            "burstCreateSeconds": burst_secs,
            "windowSeconds": window_secs,
        },
        "operator": {
            "peakRssMiB": final_stat.peak_rss_mib,
            "rssMiBAtEnd": final_stat.rss_mib,
            "peakRssSampledInWindowMiB": peak_rss_sampled,
            "cpuSeconds": final_stat.cpu_seconds,
            "cpuSecondsInWindow": cpu_in_window,
            "cpuMsPerReconcileInWindow": 1000.0 * ratio(cpu_in_window, reconciles_window),
            "reconcilesPerSecondInWindow": reconciles_window / window_secs,
            "reconcilesTotal": metric_sum(&metrics_final, "cce_upgrade_watch_reconciles_total"),
            "statusWrites": writes,
            "eventsPublished": metric_sum(&metrics_final, "cce_upgrade_watch_events_total"),
        },
        "plane": plane_stats,
        "apiserverCpuSecondsPer1000Watches": {
            "wholeRun": plane_stats.get("kube-apiserver").map(|s| s.cpu_seconds / thousands),
            "window": apiserver_window.map(|s| s / thousands),
        },
        "connections": {
            "apiServerMax": connections.api_max,
            "apiServerMaxInWindow": connections.api_max_in_window,
            "apiServerAtWindowEnd": connections.api_last,
            "cceMax": connections.cce_max,
            "samples": connections.samples,
        },
        "cce": {
            "requestsInWindow": in_window.len(),
            "minimumInWindow": active_periods + diagnostic_minimum,
            "requestRatio": ratio(in_window.len() as f64, active_periods + diagnostic_minimum),
            "workflowRequestsInWindow": in_window.len() - diagnostic_in_window,
            "activePollPeriods": active_periods,
            "workflowRequestRatio": ratio(
                (in_window.len() - diagnostic_in_window) as f64,
                active_periods,
            ),
            "diagnosticRequestsInWindow": diagnostic_in_window,
            "diagnosticMinimum": diagnostic_minimum,
            "requestsTotal": sim_stats["total"],
            "non200": failed_requests,
        },
        "writes": {
            "statusWrites": writes,
            "statusChangesSeen": changes,
            "ratio": ratio(writes, changes as f64),
            "watchRestarts": tracker.restarts,
        },
        "events": {
            "events": events_total,
            "expectedTransitions": expected,
            "ratio": ratio(events_total as f64, expected as f64),
            "surplus": surplus,
            "missing": deficit,
        },
        "lagSeconds": {
            "p50": quantile(&mut lags.clone(), 0.5),
            "p99": quantile(&mut lags.clone(), 0.99),
            "max": quantile(&mut lags, 1.0),
            "steps": lag_steps,
            "stepsNeverSeen": missed_steps,
        },
        "firstStatusSeconds": {
            "burst": {"p50": quantile(&mut first_burst.clone(), 0.5), "p99": quantile(&mut first_burst.clone(), 0.99), "n": first_burst.len()},
            "idle": {"p50": quantile(&mut first_probe.clone(), 0.5), "p99": quantile(&mut first_probe.clone(), 0.99), "n": first_probe.len()},
        },
    });
    drop(tracker);
    drop(connections);

    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let path = out_dir.join(format!(
        "fleet-{}x{}{suffix}-{stamp}.json",
        args.watches, args.workflows
    ));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let _ = std::fs::copy(
        &path,
        out_dir.join(format!(
            "fleet-{}x{}{suffix}.json",
            args.watches, args.workflows
        )),
    );
    drop(plane);
    Ok((report, path))
}

/// The figures of one report as (figure, measured, target).
fn rows(r: &Value) -> Vec<(String, String, &'static str)> {
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    vec![
        (
            "operator peak RSS (VmHWM)".into(),
            format!("{} MiB", f(&r["operator"]["peakRssMiB"])),
            "≤ 48 MiB",
        ),
        (
            "operator CPU, whole run".into(),
            format!("{} s", f(&r["operator"]["cpuSeconds"])),
            "",
        ),
        (
            "operator CPU, window".into(),
            format!(
                "{} s in {} s",
                f(&r["operator"]["cpuSecondsInWindow"]),
                f(&r["setup"]["windowSeconds"])
            ),
            "",
        ),
        (
            "operator CPU per reconcile (window)".into(),
            format!("{} ms", f(&r["operator"]["cpuMsPerReconcileInWindow"])),
            "",
        ),
        (
            "API server connections, max (window)".into(),
            format!(
                "{} ({}; {} samples)",
                r["connections"]["apiServerMax"],
                r["connections"]["apiServerMaxInWindow"],
                r["connections"]["samples"]
            ),
            "≤ 4",
        ),
        (
            "CCE connections, max".into(),
            r["connections"]["cceMax"].to_string(),
            "",
        ),
        (
            "kube-apiserver CPU per 1,000 watches".into(),
            format!(
                "{} s (window {} s)",
                f(&r["apiserverCpuSecondsPer1000Watches"]["wholeRun"]),
                f(&r["apiserverCpuSecondsPer1000Watches"]["window"])
            ),
            "",
        ),
        (
            "kube-apiserver / etcd CPU".into(),
            format!(
                "{} s / {} s",
                f(&r["plane"]["kube-apiserver"]["cpu_seconds"]),
                f(&r["plane"]["etcd"]["cpu_seconds"])
            ),
            "",
        ),
        (
            "CCE requests ÷ minimum".into(),
            format!(
                "{} ({} / {})",
                f(&r["cce"]["requestRatio"]),
                r["cce"]["requestsInWindow"],
                f(&r["cce"]["minimumInWindow"])
            ),
            "≤ 1.05",
        ),
        (
            "  of which diagnostic reads".into(),
            format!(
                "{} / {}",
                r["cce"]["diagnosticRequestsInWindow"],
                f(&r["cce"]["diagnosticMinimum"])
            ),
            "",
        ),
        (
            "status writes ÷ status changes".into(),
            format!(
                "{} ({} / {})",
                f(&r["writes"]["ratio"]),
                r["writes"]["statusWrites"],
                r["writes"]["statusChangesSeen"]
            ),
            "1.00",
        ),
        (
            "events ÷ transitions".into(),
            format!(
                "{} ({} / {}, +{} -{})",
                f(&r["events"]["ratio"]),
                r["events"]["events"],
                r["events"]["expectedTransitions"],
                r["events"]["surplus"],
                r["events"]["missing"]
            ),
            "1.00",
        ),
        (
            "CCE change → status lag p50 / p99".into(),
            format!(
                "{} s / {} s (max {}, {} steps, {} unseen)",
                f(&r["lagSeconds"]["p50"]),
                f(&r["lagSeconds"]["p99"]),
                f(&r["lagSeconds"]["max"]),
                r["lagSeconds"]["steps"],
                r["lagSeconds"]["stepsNeverSeen"]
            ),
            "p99 ≤ poll + 2 s",
        ),
        (
            "first status, burst p50 / p99".into(),
            format!(
                "{} s / {} s (n={}, burst {} s)",
                f(&r["firstStatusSeconds"]["burst"]["p50"]),
                f(&r["firstStatusSeconds"]["burst"]["p99"]),
                r["firstStatusSeconds"]["burst"]["n"],
                f(&r["setup"]["burstCreateSeconds"])
            ),
            "",
        ),
        (
            "first status, idle plane p50 / p99".into(),
            format!(
                "{} s / {} s (n={})",
                f(&r["firstStatusSeconds"]["idle"]["p50"]),
                f(&r["firstStatusSeconds"]["idle"]["p99"]),
                r["firstStatusSeconds"]["idle"]["n"]
            ),
            "p99 ≤ 2 s",
        ),
        (
            "reconciles per second (window)".into(),
            f(&r["operator"]["reconcilesPerSecondInWindow"]),
            "",
        ),
    ]
}

/// One table with a column per report (operator binary).
fn print_tables(reports: &[(Value, PathBuf)]) {
    let Some((first, _)) = reports.first() else {
        return;
    };
    let p = &first["params"];
    let columns: Vec<Vec<(String, String, &str)>> = reports.iter().map(|(r, _)| rows(r)).collect();
    let heads: Vec<String> = reports
        .iter()
        .map(|(r, _)| {
            format!(
                "{} ({})",
                r["binary"]["label"].as_str().unwrap_or("?"),
                r["binary"]["allocator"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let w0 = columns[0]
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = columns
        .iter()
        .zip(&heads)
        .map(|(c, h)| {
            c.iter()
                .map(|r| r.1.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nfleet: {} watches over {} workflows, pollInterval {}s, {} cores",
        p["watches"], p["workflows"], p["pollIntervalSeconds"], first["machine"]["cores"]
    );
    let mut line = format!("| {:w0$} |", "figure");
    for (h, w) in heads.iter().zip(&widths) {
        line += &format!(" {h:w$} |");
    }
    let _ = writeln!(out, "{line} target |");
    let mut line = format!("| {} |", "-".repeat(w0));
    for w in &widths {
        line += &format!(" {} |", "-".repeat(*w));
    }
    let _ = writeln!(out, "{line} --- |");
    for (k, (name, _, target)) in columns[0].iter().enumerate() {
        let mut line = format!("| {name:w0$} |");
        for (c, w) in columns.iter().zip(&widths) {
            line += &format!(" {:w$} |", c[k].1);
        }
        let _ = writeln!(out, "{line} {target} |");
    }
    for (_, path) in reports {
        let _ = writeln!(out, "JSON: {}", path.display());
    }
}
