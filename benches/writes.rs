//! `make bench-writes` (`cargo bench --bench writes`): what one write of the operator costs
//! the control plane, and how many per second the plane sustains on this machine.
//!
//! A private control plane (`hack/control-plane.sh up` in its own state dir) gets the CRDs,
//! one CCEAccount with its labelled Secret, and `--watches` watches naming it; then, for
//! each kind of write the operator makes, `--concurrency` writers repeat it over those
//! watches for `--seconds`, one kind after the other:
//! - the status, as the operator writes it (server-side apply, forced, of the whole status);
//! - the same status as a JSON merge patch, for comparison;
//! - an Event of a task transition, built by the operator's own `event_for`.
//!
//! The status is the one the operator computes for CCE's documented example workflow (four
//! tasks), with a new `lastSyncTime` each write so every write changes the object. After 10 s
//! of status writes to warm the plane up, `--rounds` rounds of the three; printed per round and
//! kind: writes per second, and kube-apiserver's and etcd's CPU per write (from /proc).

#[path = "../tests/common/mod.rs"]
mod kit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;

use cce_upgrade_watch::cce::model::{SEED_EXAMPLE, Workflow};
use cce_upgrade_watch::crd::{CceAccount, UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use cce_upgrade_watch::reconciler::core::events::{event_for, transitions};
use cce_upgrade_watch::reconciler::core::status::{Observation, next_status};
use cce_upgrade_watch::sim::builtin;
use kit::plane::PrivatePlane;
use kit::procfs::{ProcStat, clock_ticks, proc_stat};

#[derive(Parser, Debug, Clone, Copy)]
struct Args {
    /// Watches the writes are spread over.
    #[arg(long, default_value_t = 200)]
    watches: usize,
    /// Writes in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long each kind of write runs in each round.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Rounds of all kinds, one after the other, so the plane's swings show as spread.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Ignored: `cargo bench` passes it to every benchmark.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    StatusApply,
    StatusMerge,
    Event,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::StatusApply => "status, server-side apply (the operator's)",
            Kind::StatusMerge => "status, JSON merge patch",
            Kind::Event => "Event of a task transition",
        }
    }
}

const NAMESPACE: &str = "default";
/// The CCEAccount every watch names.
const ACCOUNT: &str = "cce";

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let plane = PrivatePlane::up("cce-uw-writes-");
    runtime.block_on(measure(&args, &plane));
    plane.down();
}

async fn measure(args: &Args, plane: &PrivatePlane) {
    let client = plane.client().await;
    kit::install_crd(&client).await;
    create_account(&client).await;
    let watches = create_watches(&client, args.watches).await;
    let status = example_status();
    let ticks = clock_ticks();
    let cpu = |component: &str| {
        plane
            .pid(component)
            .and_then(|pid| proc_stat(pid, ticks))
            .map(|s: ProcStat| s.cpu_seconds)
            .unwrap_or(f64::NAN)
    };

    // The plane's first minute includes its own start-up work: not counted.
    let warm_up = Args {
        seconds: 10,
        ..*args
    };
    run_kind(&warm_up, &client, &watches, &status, Kind::StatusApply, 0).await;

    println!(
        "{} watches, {} writes in flight, {} s per kind and round",
        args.watches, args.concurrency, args.seconds
    );
    println!(
        "| round | write | per second | kube-apiserver CPU per write | etcd CPU per write | failed |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let kinds = [Kind::StatusApply, Kind::StatusMerge, Kind::Event];
    for (round, kind) in (1..=args.rounds).flat_map(|r| kinds.map(|k| (r, k))) {
        let (apiserver, etcd) = (cpu("kube-apiserver"), cpu("etcd"));
        let started = Instant::now();
        let (done, failed) = run_kind(args, &client, &watches, &status, kind, round).await;
        let elapsed = started.elapsed().as_secs_f64();
        let per_write = |before: f64, after: f64| (after - before) * 1000.0 / done.max(1) as f64;
        println!(
            "| {round} | {} | {:.0} | {:.2} ms | {:.2} ms | {failed} |",
            kind.name(),
            done as f64 / elapsed,
            per_write(apiserver, cpu("kube-apiserver")),
            per_write(etcd, cpu("etcd")),
        );
        assert_eq!(failed, 0, "{} writes failed", kind.name());
    }
}

/// The account the watches name, with its labelled Secret, as a namespace would have them.
/// No operator runs here, so neither is read; they make the watches the ones a real
/// namespace holds.
async fn create_account(client: &Client) {
    kit::sim_secret(
        client,
        NAMESPACE,
        "cce",
        builtin::ACCESS_KEY,
        builtin::SECRET_KEY,
    )
    .await;
    kit::watch::apply_account(
        client,
        json!({
            "apiVersion": CceAccount::api_version(&()),
            "kind": CceAccount::kind(&()),
            "metadata": {"name": ACCOUNT, "namespace": NAMESPACE},
            "spec": {
                "region": "ap-southeast-1",
                "projectID": "0123456789abcdef0123456789abcdef",
                "credentials": {"secretRef": {"name": "cce"}}
            }
        }),
    )
    .await;
}

async fn create_watches(client: &Client, count: usize) -> Vec<UpgradeWorkflowWatch> {
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(client.clone(), NAMESPACE);
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let watch: UpgradeWorkflowWatch = serde_json::from_value(json!({
                    "apiVersion": UpgradeWorkflowWatch::api_version(&()),
                    "kind": UpgradeWorkflowWatch::kind(&()),
                    "metadata": {"name": format!("write-{i:05}")},
                    "spec": {
                        "accountRef": {"name": ACCOUNT},
                        "clusterID": "0f6b0bcb-6c3e-11ee-8d54-0255ac100b07",
                        "upgradeWorkflowID": "a3c2e2d4-7c7b-4b5e-9f3e-2d9b0c8d1e11"
                    }
                }))
                .expect("a valid watch");
                api.create(&PostParams::default(), &watch)
                    .await
                    .expect("create a watch")
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

fn example_status() -> UpgradeWorkflowWatchStatus {
    let example: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("CCE's example parses");
    next_status(
        &UpgradeWorkflowWatchStatus::default(),
        &Observation::Workflow(&example),
        Some(1),
        Timestamp::now(),
        Duration::from_secs(300),
    )
    .status
}

/// Runs one kind of write for `args.seconds`; returns how many succeeded and failed. Events
/// of different rounds have different names.
async fn run_kind(
    args: &Args,
    client: &Client,
    watches: &[UpgradeWorkflowWatch],
    status: &UpgradeWorkflowWatchStatus,
    kind: Kind,
    round: usize,
) -> (u64, u64) {
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(client.clone(), NAMESPACE);
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), NAMESPACE);
    let transition = transitions(&UpgradeWorkflowWatchStatus::default(), status)
        .into_iter()
        .next()
        .expect("the example status has transitions");
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (done, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    futures::stream::iter(0u64..)
        .take_while(|_| std::future::ready(Instant::now() < deadline))
        .for_each_concurrent(args.concurrency, |n| {
            let watch = &watches[n as usize % watches.len()];
            let (api, events, transition) = (&api, &events, &transition);
            let (done, failed) = (&done, &failed);
            async move {
                let name = watch.metadata.name.as_deref().unwrap_or_default();
                let mut status = status.clone();
                status.last_sync_time = Some(Timestamp::now().into());
                let body = json!({
                    "apiVersion": UpgradeWorkflowWatch::api_version(&()),
                    "kind": UpgradeWorkflowWatch::kind(&()),
                    "status": status,
                });
                let written = match kind {
                    Kind::StatusApply => {
                        let params = PatchParams::apply("cce-upgrade-watch").force();
                        api.patch_status(name, &params, &Patch::Apply(&body))
                            .await
                            .map(drop)
                    }
                    Kind::StatusMerge => api
                        .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
                        .await
                        .map(drop),
                    Kind::Event => {
                        let mut transition = transition.clone();
                        transition.occurrence = format!("write-{round}-{n}");
                        let event = event_for(
                            watch,
                            &transition,
                            Timestamp::now(),
                            "cce-upgrade-watch",
                            "bench",
                        );
                        events
                            .create(&PostParams::default(), &event)
                            .await
                            .map(drop)
                    }
                };
                match written {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("{}: {e}", kind.name());
                        }
                        0
                    }
                };
            }
        })
        .await;
    (done.into_inner(), failed.into_inner())
}
