//! One reconcile of one watch, in three steps: `observe` reads the credentials and CCE's
//! answer (shared with other watches of the same workflow), `decide` computes the next
//! status, its Events and the next poll as a pure function, and `apply` publishes the
//! Events and then writes the status, only when it changed. A new watch first gets a
//! status saying the operator saw it, written only over a status that is still empty.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{error, warn};

use crate::crd::{UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use crate::metrics::{TaskSeen, WatchUpgrade};
use crate::reconciler::apply::{apply, claim_first_sight};
use crate::reconciler::context::{Context, Error, now_whole_seconds};
use crate::reconciler::core::decide::{
    Decision, Outcome, Requeue, Watch as DecideWatch, decide, first_sight, unchanged,
};
use crate::reconciler::core::schedule::poll_interval;
use crate::reconciler::observe::{diagnose, observe};

/// One reconcile, with a panic in it caught: it fails this watch's reconcile (retried with
/// backoff, counted as `result="panic"`) and the process goes on serving every other watch.
pub async fn reconcile(
    watch: Arc<UpgradeWorkflowWatch>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let name = watch.name_any();
    let result = caught(reconcile_once(watch, ctx)).await;
    if let Err(Error::Panicked(message)) = &result {
        error!(watch = %name, panic = %message, "reconcile panicked");
    }
    result
}

/// `work`'s result, or [`Error::Panicked`] when it panicked.
async fn caught<T>(work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(Error::Panicked(message))
        })
}

async fn reconcile_once(
    watch: Arc<UpgradeWorkflowWatch>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    let namespace = watch.namespace().ok_or(Error::NoNamespace)?;
    let uid = watch.uid().unwrap_or_default();
    let key = watch.key();
    ctx.metrics.identify_watch(&key, &watch.spec.cluster_id);
    let generation = watch.meta().generation;
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(ctx.kube.clone(), &namespace);

    // A status that the last reconcile found current for this generation is read back
    // only if CCE's answer or the clock moved on.
    let settled = ctx
        .statuses
        .settled(&uid)
        .filter(|s| s.holds_for(generation));
    let known = match settled {
        Some(_) => None,
        None => Some(kept_status(&ctx, &api, &watch, &uid, generation).await?),
    };

    let served = ctx.accounts.serve(&watch).await;
    let account_poll = served
        .as_ref()
        .ok()
        .and_then(|s| s.poll_interval.as_deref());
    let poll = poll_interval(watch.spec.poll_interval.as_deref().or(account_poll));
    let Some(reading) = observe(&watch, &served, &ctx, poll).await else {
        ctx.metrics.reconcile_deferred();
        return Ok(Action::requeue(ctx.policy().jittered(
            ctx.policy().backoff_base,
            Duration::ZERO,
            rand::random(),
        )));
    };
    let failures = ctx.failures.lock().get(&uid).copied().unwrap_or_default();
    let about = DecideWatch {
        generation,
        cluster_id: &watch.spec.cluster_id,
        poll,
        failures,
        settled,
    };
    let mut kept = None;
    let decision = match unchanged(&reading.observed, &about, now_whole_seconds(), &ctx.rules) {
        Some(nothing_to_do) => nothing_to_do,
        None => {
            let old = kept.insert(known.unwrap_or_else(|| ctx.statuses.status_of(&uid)));
            let diagnosed = diagnose(&ctx, &reading, old, poll, &namespace).await;
            decide(
                old,
                &reading.observed,
                &diagnosed,
                &about,
                now_whole_seconds(),
                &ctx.rules,
            )
        }
    };
    for u in &decision.unparsed {
        warn!(watch = %key, field = %u.field, value = %u.value, "CCE sent a timestamp in an unknown format");
    }
    count_failures(&ctx, &uid, decision.failures);
    apply(&ctx, &api, &watch, &uid, &decision).await?;
    // The status the watch has now; none when nothing was computed (Unchanged), and then
    // the series keep what the last reconcile recorded.
    if let Some(status) = decision.write.as_ref().or(kept.as_ref()) {
        ctx.metrics.record_upgrade(&key, &upgrade_of(status));
    }
    record_outcome(&ctx, &key, &decision);
    Ok(match decision.requeue {
        Requeue::After { delay, floor } => {
            Action::requeue(ctx.policy().jittered(delay, floor, rand::random()))
        }
        Requeue::AwaitChange => Action::await_change(),
    })
}

/// The kept status of a watch whose last reconcile settled nothing for this generation; a
/// new watch first gets the status saying the operator saw it.
async fn kept_status(
    ctx: &Context,
    api: &Api<UpgradeWorkflowWatch>,
    watch: &UpgradeWorkflowWatch,
    uid: &str,
    generation: Option<i64>,
) -> Result<UpgradeWorkflowWatchStatus, Error> {
    let old = ctx.statuses.status_of(uid);
    match first_sight(&old, generation, now_whole_seconds(), &ctx.rules) {
        Some(first) => {
            claim_first_sight(api, watch, uid, &ctx.statuses, &ctx.metrics, &first).await
        }
        None => Ok(old),
    }
}

/// Keeps the count of failed reads in a row the decision left.
fn count_failures(ctx: &Context, uid: &str, failures: Option<u32>) {
    match failures {
        Some(0) => {
            ctx.failures.lock().remove(uid);
        }
        Some(n) => {
            ctx.failures.lock().insert(uid.to_string(), n);
        }
        None => {}
    }
}

/// The watch's series and the reconcile's result, as the decision left them.
fn record_outcome(ctx: &Context, key: &str, decision: &Decision) {
    let phase = decision.phase.as_deref();
    match decision.outcome {
        Outcome::Unchanged => {
            ctx.metrics.record_unchanged(key, decision.interval);
            ctx.metrics.reconcile_synced();
        }
        Outcome::Suspended => {
            ctx.metrics.suspend_watch(key, phase);
            ctx.metrics.reconcile_suspended();
        }
        Outcome::Synced => {
            ctx.metrics
                .record_watch(key, phase, true, decision.interval);
            ctx.metrics.reconcile_synced();
        }
        Outcome::Failed => {
            ctx.metrics
                .record_watch(key, phase, false, decision.interval);
            ctx.metrics.reconcile_failed();
        }
    }
}

/// What the status says of the upgrade, for the version and running-task series.
fn upgrade_of(status: &UpgradeWorkflowWatchStatus) -> WatchUpgrade<'_> {
    WatchUpgrade {
        cluster_name: status.cluster_name.as_deref(),
        from_version: status.from_version.as_deref(),
        target_version: status.target_version.as_deref(),
        tasks: status
            .tasks
            .iter()
            .map(|t| TaskSeen {
                task_type: &t.task_type,
                phase: t.phase.as_deref(),
                started: t.start_time.as_ref().map(|at| SystemTime::from(at.0)),
            })
            .collect(),
    }
}

/// Kubernetes API failures (CCE failures never get here): retry with a short backoff.
pub fn error_policy(watch: Arc<UpgradeWorkflowWatch>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(watch = %watch.name_any(), %error, "reconcile failed");
    if matches!(error, Error::Panicked(_)) {
        ctx.metrics.reconcile_panicked();
    } else {
        ctx.metrics.reconcile_errored();
    }
    Action::requeue(ctx.policy().jittered(
        ctx.policy().backoff_base,
        Duration::ZERO,
        rand::random(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::UpgradeWorkflowWatchStatus;
    use crate::reconciler::mock::{self, Exchange, UID, precondition, stored};

    fn synced(patch: &serde_json::Value) -> (String, String) {
        let status: UpgradeWorkflowWatchStatus =
            serde_json::from_value(patch["status"].clone()).expect("a status");
        let synced = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Synced")
            .expect("Synced");
        (synced.status.clone(), synced.reason.clone())
    }

    /// A new watch whose account is missing, end to end through the shell: the first
    /// status claimed over the empty one it was read with, then the SyncFailed Event, then
    /// the status saying why; the next reconcile finds nothing new and sends nothing.
    #[tokio::test]
    async fn a_new_watch_is_claimed_then_its_event_published_then_its_status_written() {
        let (client, server) = mock::serve(vec![
            Exchange::apply_status()
                .checking(|patch| {
                    assert_eq!(precondition(patch), Some("7"), "claimed where it was read");
                    assert_eq!(patch["status"]["observedGeneration"], 1);
                })
                .answer(200, stored(&Default::default(), "8")),
            Exchange::post_event()
                .checking(|event| assert_eq!(event["reason"], "SyncFailed"))
                .answer(201, serde_json::json!({})),
            Exchange::apply_status()
                .checking(|patch| {
                    assert_eq!(precondition(patch), None);
                    assert_eq!(synced(patch), ("False".into(), "AccountMissing".into()));
                })
                .answer(200, stored(&Default::default(), "9")),
        ]);
        let ctx = Arc::new(mock::context(client));
        let watch = Arc::new(mock::watch("7"));
        for round in 1..=2 {
            let outcome = reconcile(watch.clone(), ctx.clone()).await;
            assert!(outcome.is_ok(), "reconcile {round}: {outcome:?}");
        }
        assert_eq!(ctx.statuses.resource_version(UID).as_deref(), Some("9"));
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn a_panicking_reconcile_is_an_error_not_a_crash() {
        let outcome = caught(async {
            let far = std::hint::black_box(Duration::MAX);
            let _ = std::time::Instant::now() + far;
            Ok(())
        })
        .await;
        assert!(
            matches!(&outcome, Err(Error::Panicked(m)) if m.contains("overflow")),
            "{outcome:?}"
        );
        let fine = caught(async { Ok(7) }).await;
        assert!(matches!(fine, Ok(7)));
    }
}
