//! Exactly one Event per transition, against the real API server, when the operator is
//! killed at random points of a burst of transitions and when two operators run at once
//! without leader election (a misconfiguration users make); a second instance's first
//! status never replaces the first one's observation.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use rand::Rng;

use cce_upgrade_watch::crd::{UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use cce_upgrade_watch::metrics::Metrics;
use cce_upgrade_watch::reconciler::apply::{FIELD_MANAGER, claim_first_sight};
use cce_upgrade_watch::reconciler::book::StatusBook;
use cce_upgrade_watch::reconciler::core::decide::{Rules, first_sight};
use cce_upgrade_watch::reconciler::core::schedule::PollPolicy;
use cce_upgrade_watch::reconciler::core::status::{Observation, next_status};
use cce_upgrade_watch::sim::builtin::Builtin;
use common::eventually::{KUBE_POLL, eventually};
use common::operator::Operator;
use common::sim::{Sim, copy};
use common::{cond, events, reasons};

/// Watches in the burst: each follows its own copy of the success scenario, so every step
/// of the simulator gives every watch a transition at the same moment.
const WATCHES: u64 = 40;

/// A CCE timeout that a loaded machine does not reach: these tests count Events, and a
/// timed-out read would add a true but unwanted SyncFailed/SyncRecovered pair.
const PATIENT: &[&str] = &["--cce-request-timeout", "15s"];

fn name(i: u64) -> String {
    format!("burst-{i}")
}

fn burst() -> Sim {
    let copies = WATCHES.to_string();
    Sim::https()
        .scenario(Builtin::Success)
        .args(&["--workflows", &copies])
        .frozen()
        .start()
}

async fn create_watches(client: &Client, ns: &str, sim: &Sim) {
    for i in 0..WATCHES {
        let ids = copy(Builtin::Success, i);
        common::sim_watch(
            client,
            ns,
            &name(i),
            sim,
            &ids.cluster,
            Some(&ids.workflow),
            Some("cce"),
        )
        .await;
    }
}

async fn wait_all_converged(client: &Client, ns: &str, sim: &Sim) {
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns);
    for i in 0..WATCHES {
        let ids = copy(Builtin::Success, i);
        let what = format!("watch {} converged and synced", name(i));
        eventually(&what, Duration::from_secs(90), KUBE_POLL, || async {
            let w = api.get(&name(i)).await.map_err(|e| e.to_string())?;
            common::converged(sim, &w, &ids.workflow).await?;
            match cond(&w, "Synced") {
                Some(c) if c.0 == "True" => Ok(()),
                synced => Err(format!("Synced {synced:?}")),
            }
        })
        .await;
    }
}

/// Steps every workflow once; false once the workflows are over.
async fn step_all(sim: &Sim) -> bool {
    let mut moved = false;
    for i in 0..WATCHES {
        let workflow = copy(Builtin::Success, i).workflow;
        if common::watch::steps_left(sim, &workflow).await > 0 {
            sim.step(&workflow, 1).await;
            moved = true;
        }
    }
    moved
}

/// Every watch has the success scenario's events, each exactly once and none twice.
async fn assert_each_transition_once(client: &Client, ns: &str) {
    for i in 0..WATCHES {
        let watch = name(i);
        common::wait_events(client, ns, &watch, 30, |e| {
            e.iter().any(|(r, _)| r == "UpgradeSucceeded")
        })
        .await;
    }
    // Give a late duplicate the time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..WATCHES {
        let watch = name(i);
        let got = events(client, ns, &watch).await;
        assert_eq!(reasons(&got), common::SUCCESS_EVENTS, "{watch}: {got:#?}");
        let mut seen = HashSet::new();
        for e in &got {
            assert!(seen.insert(e), "{watch}: {e:?} published twice: {got:#?}");
        }
    }
}

#[tokio::test]
async fn killing_the_operator_during_a_burst_loses_and_repeats_no_event() {
    let (client, ns) = common::setup("kill-burst").await;
    let sim = burst();
    let mut op = Operator::start(&ns, &sim, PATIENT);
    create_watches(&client, &ns, &sim).await;
    wait_all_converged(&client, &ns, &sim).await;
    let mut kills = 0;
    while step_all(&sim).await {
        // The watches poll every 5 s at their own phases, so for the next seconds the
        // operator is publishing and writing for one watch after another: kills at random
        // instants land between the two for some of them.
        let burst = std::time::Instant::now();
        while burst.elapsed() < Duration::from_secs(6) {
            let after = rand::rng().random_range(200..1_500);
            tokio::time::sleep(Duration::from_millis(after)).await;
            op.kill();
            kills += 1;
            op.restart();
        }
        wait_all_converged(&client, &ns, &sim).await;
    }
    assert!(kills >= 20, "only {kills} kills");
    assert_each_transition_once(&client, &ns).await;
}

/// How long a test lets the API server's watch carry one instance's status write to the
/// other instance before CCE changes again.
const PROPAGATION: Duration = Duration::from_secs(2);

#[tokio::test]
async fn two_operators_without_leader_election_publish_each_event_once() {
    let (client, ns) = common::setup("two-operators").await;
    let sim = burst();
    let _first = Operator::start(&ns, &sim, PATIENT);
    create_watches(&client, &ns, &sim).await;
    wait_all_converged(&client, &ns, &sim).await;
    // The second instance joins watches that already have a status, as when a second
    // replica is started without leader election.
    let _second = Operator::start(&ns, &sim, PATIENT);
    // A step re-dates the workflow's whole history (every time moves back by the step),
    // which real CCE never does: an instance whose cache still held the status before the
    // other's write would see the same run of a task under another start time and name its
    // Event differently. Real CCE never re-dates a run, so there the other instance names
    // it the same; here each step waits until the watch has carried the last write across.
    tokio::time::sleep(PROPAGATION).await;
    while step_all(&sim).await {
        wait_all_converged(&client, &ns, &sim).await;
        tokio::time::sleep(PROPAGATION).await;
    }
    assert_each_transition_once(&client, &ns).await;
}

fn bare_watch(ns: &str, name: &str) -> UpgradeWorkflowWatch {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"accountRef": {"name": "a"}, "clusterID": "c"},
    }))
    .expect("watch")
}

/// Without leader election, a second instance may read a new watch (no status yet) just
/// before the first one writes its first observation. Its first-sight status must then not
/// replace that observation, or the next transitions would be diffed against an empty status
/// and folded into a WorkflowObserved that was published already.
#[tokio::test]
async fn a_first_sight_status_never_replaces_one_another_instance_wrote() {
    let (client, ns) = common::setup("first-sight").await;
    let api = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), &ns);
    let rules = Rules {
        policy: PollPolicy::default(),
        heartbeat: Duration::from_secs(300),
    };
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
    let metrics = Metrics::new();

    // The instance read the watch while it had no status...
    let stale = api
        .create(&PostParams::default(), &bare_watch(&ns, "raced"))
        .await
        .expect("create");
    let book = StatusBook::new();
    book.absorb(&mut stale.clone());
    let generation = stale.meta().generation;
    let first = first_sight(
        &book.status_of(&stale.uid().expect("uid")),
        generation,
        now,
        &rules,
    )
    .expect("an empty status gets a first sight");

    // ...and the other instance wrote its first observation in the meantime.
    let workflow = serde_json::from_value(serde_json::json!({
        "metadata": {"uid": "w1"},
        "status": {"phase": "Running", "pointStatuses": [
            {"taskType": "PreCheck", "taskID": "p1", "status": "Running"}]}
    }))
    .expect("workflow");
    let observed: UpgradeWorkflowWatchStatus = next_status(
        &Default::default(),
        &Observation::Workflow(&workflow),
        generation,
        now,
        rules.heartbeat,
    )
    .status;
    let patch = serde_json::json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "status": observed,
    });
    api.patch_status(
        "raced",
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("the other instance's write");

    let uid = stale.uid().expect("uid");
    let kept = claim_first_sight(&api, &stale, &uid, &book, &metrics, &first)
        .await
        .expect("claim");
    assert_eq!(
        kept, observed,
        "the reconcile goes on from the other's observation"
    );
    assert_eq!(book.status_of(&uid), observed);
    let stored = api.get_status("raced").await.expect("get");
    assert_eq!(
        stored.status.as_deref(),
        Some(&observed),
        "the first observation is still stored"
    );

    // A watch whose status is really empty gets its first sight.
    let fresh = api
        .create(&PostParams::default(), &bare_watch(&ns, "fresh"))
        .await
        .expect("create");
    let book = StatusBook::new();
    book.absorb(&mut fresh.clone());
    let uid = fresh.uid().expect("uid");
    let kept = claim_first_sight(&api, &fresh, &uid, &book, &metrics, &first)
        .await
        .expect("claim");
    assert_eq!(kept, first);
    let stored = api.get_status("fresh").await.expect("get");
    assert_eq!(stored.status.as_deref(), Some(&first));
}
