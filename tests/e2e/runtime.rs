//! The operator as a process: leader election, health and metrics, suspend, and the
//! start-up check for the CRD.

use crate::common;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, Patch, PatchParams};

use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::sim::builtin::Builtin;
use common::eventually::eventually;
use common::operator::Operator;
use common::plane::PrivatePlane;
use common::sim::{Sim, copy};
use common::sockets::free_port;
use common::{cond, wait_watch};

async fn lease_holder(client: &kube::Client, ns: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("cce-upgrade-watch")
        .await
        .ok()??;
    lease.spec?.holder_identity
}

/// Waits until `identity` (the operator `op`) holds the lease; the failure shows its log.
async fn took_the_lease(
    client: &kube::Client,
    ns: &str,
    op: &Operator,
    identity: &str,
    within: Duration,
) {
    let what = format!("{identity} holds the lease");
    eventually(&what, within, Duration::from_millis(200), || async {
        match lease_holder(client, ns).await {
            Some(holder) if holder == identity => Ok(()),
            holder => Err(format!(
                "holder {holder:?}; log of {identity}:\n{}",
                op.log_text()
            )),
        }
    })
    .await;
}

async fn reporting_instances(client: &kube::Client, ns: &str) -> Vec<String> {
    Api::<KubeEvent>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|e| e.reporting_instance)
        .collect()
}

#[tokio::test]
async fn with_two_replicas_only_the_leader_acts_and_the_standby_takes_over() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("leader").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let lease = [
        "--leader-elect=true",
        "--lease-namespace",
        &ns,
        "--lease-duration-seconds",
        "4",
    ];
    let mut one = Operator::start(
        &ns,
        &sim,
        &[&lease[..], &["--lease-identity", "one"]].concat(),
    );
    // Let `one` win first, so the test knows whom to stop.
    took_the_lease(&client, &ns, &one, "one", Duration::from_secs(20)).await;
    let mut two = Operator::start(
        &ns,
        &sim,
        &[&lease[..], &["--lease-identity", "two"]].concat(),
    );
    common::sim_watch(
        &client,
        &ns,
        "up",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    wait_watch(&client, &ns, "up", 30, "first status", |w| {
        w.status.as_ref().is_some_and(|s| s.phase.is_some())
    })
    .await;
    sim.step(&success.workflow, 2).await;
    wait_watch(&client, &ns, "up", 30, "PreCheck done", |w| {
        w.status
            .as_ref()
            .is_some_and(|s| s.tasks.first().and_then(|t| t.phase.as_deref()) == Some("Success"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let instances = reporting_instances(&client, &ns).await;
    assert!(
        !instances.is_empty() && instances.iter().all(|i| i == "one"),
        "{instances:?}"
    );
    let before = common::events(&client, &ns, "up").await;

    one.stop();
    let stopped = std::time::Instant::now();
    took_the_lease(&client, &ns, &two, "two", Duration::from_secs(8)).await;
    let took = stopped.elapsed();
    assert!(
        took <= Duration::from_secs(4),
        "take-over took {took:?}, longer than the lease"
    );

    sim.step(&success.workflow, 1).await;
    wait_watch(
        &client,
        &ns,
        "up",
        30,
        "Snapshot running after take-over",
        |w| {
            w.status
                .as_ref()
                .is_some_and(|s| s.tasks.get(1).and_then(|t| t.phase.as_deref()) == Some("Running"))
        },
    )
    .await;
    let after = common::wait_events(&client, &ns, "up", 10, |e| e.len() == before.len() + 1).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "earlier events changed or repeated"
    );
    assert_eq!(after.last().map(|e| e.0.as_str()), Some("TaskStarted"));
    let instances = reporting_instances(&client, &ns).await;
    assert_eq!(
        instances.iter().filter(|i| *i == "two").count(),
        1,
        "{instances:?}"
    );
    assert!(two.running());
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("admin").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let op = Operator::start(&ns, &sim, &["--admin-listen", &listen]);
    common::sim_watch(
        &client,
        &ns,
        "up",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    wait_watch(&client, &ns, "up", 30, "first status", |w| {
        w.status.as_ref().is_some_and(|s| s.phase.is_some())
    })
    .await;

    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let healthz = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), 200);
    let readyz = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(readyz.status(), 200, "{}", op.log_text());
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for needle in [
        "cce_upgrade_watch_reconciles_total{result=\"synced\"}",
        "cce_upgrade_watch_cce_requests_total{operation=\"show\",outcome=\"ok\"}",
        "cce_upgrade_watch_cce_request_duration_seconds_bucket",
        "cce_upgrade_watch_watches{phase=\"Init\"} 1",
        "cce_upgrade_watch_leader 1",
        "cce_upgrade_watch_status_writes_total",
        &format!("cce_upgrade_watch_last_sync_age_seconds{{namespace=\"{ns}\",name=\"up\"}}"),
        &format!(
            "cce_upgrade_watch_watch_phase{{namespace=\"{ns}\",name=\"up\",cluster_id=\"{}\",phase=\"Init\"}} 1",
            success.cluster
        ),
        &format!(
            "cce_upgrade_watch_watch_task_failures_total{{namespace=\"{ns}\",name=\"up\",cluster_id=\"{}\"}} 0",
            success.cluster
        ),
        &format!(
            "cce_upgrade_watch_build_info{{version=\"{}\",revision=\"",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(metrics.contains(needle), "{needle} missing in:\n{metrics}");
    }
    // What every scrape of any operator is expected to have, with values that make sense
    // for a process started seconds ago.
    let value = |start: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(start)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {start} in:\n{metrics}"))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(
        now - started < 600.0 && started <= now + 1.0,
        "{started} vs {now}"
    );
    let synced = value(&format!(
        "cce_upgrade_watch_last_sync_timestamp_seconds{{namespace=\"{ns}\",name=\"up\"}}"
    ));
    assert!(synced >= started.floor() && synced <= now + 1.0, "{synced}");
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_virtual_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("process_cpu_seconds_total") >= 0.0);
}

#[tokio::test]
async fn suspend_stops_polling_and_resuming_takes_effect_at_once() {
    let success = copy(Builtin::Success, 0);
    let (client, ns) = common::setup("suspend").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let _op = Operator::start(&ns, &sim, &[]);
    common::sim_watch(
        &client,
        &ns,
        "up",
        &sim,
        &success.cluster,
        Some(&success.workflow),
        Some("cce"),
    )
    .await;
    wait_watch(&client, &ns, "up", 30, "first status", |w| {
        w.status.as_ref().is_some_and(|s| s.phase.is_some())
    })
    .await;
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    let suspend = |on: bool| serde_json::json!({"spec": {"suspend": on}});
    api.patch("up", &PatchParams::default(), &Patch::Merge(&suspend(true)))
        .await
        .expect("suspend");
    let suspended = wait_watch(&client, &ns, "up", 15, "Suspended", |w| {
        cond(w, "Synced").is_some_and(|c| c.1 == "Suspended")
    })
    .await;
    assert_eq!(
        suspended.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Init"),
        "status kept"
    );
    let seen = sim.requests_for(&success.workflow).await.len();
    sim.step(&success.workflow, 2).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        sim.requests_for(&success.workflow).await.len(),
        seen,
        "polled while suspended"
    );
    let events = common::events(&client, &ns, "up").await;
    assert!(
        !events.iter().any(|(r, _)| r == "SyncFailed"),
        "suspend is not an outage: {events:?}"
    );

    let resumed_at = std::time::Instant::now();
    api.patch(
        "up",
        &PatchParams::default(),
        &Patch::Merge(&suspend(false)),
    )
    .await
    .expect("resume");
    wait_watch(&client, &ns, "up", 10, "resumed", |w| {
        w.status
            .as_ref()
            .is_some_and(|s| s.tasks.first().and_then(|t| t.phase.as_deref()) == Some("Success"))
    })
    .await;
    assert!(
        resumed_at.elapsed() < Duration::from_secs(5),
        "resume waited for a timer"
    );
}

#[tokio::test]
async fn without_the_crd_the_operator_exits_saying_how_to_install_it() {
    // A private plane: the shared one has the CRD installed.
    let plane = PrivatePlane::up("cce-uw-no-crd-plane-");
    let out = std::process::Command::new(common::operator::binary())
        .args([
            "run",
            "--leader-elect=false",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", plane.kubeconfig())
        .output()
        .expect("run operator");
    plane.down();
    assert!(!out.status.success());
    let stderr = common::text(&out.stderr);
    assert!(
        stderr.contains("CRD is not installed")
            && stderr.contains("cce-upgrade-watch crd | kubectl apply --server-side -f -"),
        "{stderr}"
    );
}
