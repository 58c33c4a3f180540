//! Carrying out a decision: the Events first, then the status (one server-side apply patch).
//! In that order, an operator stopped between the two publishes the same Events again from
//! the unchanged stored status, under the same names, and the API server's AlreadyExists
//! makes that a no-op: every transition has exactly one Event.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use crate::failure::Category;

use crate::metrics::Metrics;
use crate::reconciler::book::StatusBook;
use crate::reconciler::context::{Context, Error, now_whole_seconds};
use crate::reconciler::core::conditions::{ConditionType, Conditions, Reason};
use crate::reconciler::core::decide::Decision;
use crate::reconciler::core::events::Transition;
use crate::reconciler::publisher::Published;

/// Field manager of every status write.
pub const FIELD_MANAGER: &str = "cce-upgrade-watch";

/// Whether a failed publish may succeed when tried again soon: then the status write waits
/// for it, so the transition is published again rather than lost. Anything else (a
/// forbidden create, an Event the API server finds invalid) would fail forever and must not
/// hold the status back.
fn worth_retrying(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

/// Publishes the decision's transitions, then writes its status, then records what it
/// settled.
pub async fn apply(
    ctx: &Context,
    api: &Api<UpgradeWorkflowWatch>,
    watch: &UpgradeWorkflowWatch,
    uid: &str,
    decision: &Decision,
) -> Result<(), Error> {
    if let Some(next) = &decision.write {
        for transition in &decision.transitions {
            publish(ctx, watch, transition).await?;
        }
        write_status(ctx, api, watch, uid, next).await?;
        for transition in &decision.transitions {
            if let Some(task) = &transition.finished_task {
                ctx.metrics
                    .observe_task(&watch.key(), &task.task_type, task.result, task.took);
            }
        }
    }
    if let Some(settled) = decision.settle {
        ctx.statuses.settle(uid, settled);
    }
    Ok(())
}

/// Writes the status a new watch gets before CCE is asked, but only over a status that is
/// still empty: the patch carries the resourceVersion the empty status was read at, so it
/// cannot replace what another operator instance wrote meanwhile (without leader election,
/// that would be its first observation, and the transitions after it would be diffed
/// against an empty status again and lost). Returns the status the reconcile goes on from:
/// `first`, or the one found in its place.
pub async fn claim_first_sight(
    api: &Api<UpgradeWorkflowWatch>,
    watch: &UpgradeWorkflowWatch,
    uid: &str,
    statuses: &StatusBook,
    metrics: &Metrics,
    first: &UpgradeWorkflowWatchStatus,
) -> Result<UpgradeWorkflowWatchStatus, Error> {
    let mut read_at = statuses
        .resource_version(uid)
        .or_else(|| watch.resource_version());
    for _ in 0..2 {
        match patch_status(api, watch, first, read_at.as_deref()).await {
            Ok(written) => {
                metrics.status_written();
                let version = written.metadata.resource_version.as_deref();
                statuses.wrote(uid, version, first);
                return Ok(first.clone());
            }
            Err(kube::Error::Api(refusal)) if refusal.code == 409 => {
                let mut current = api
                    .get_status(&watch.name_any())
                    .await
                    .map_err(Error::WriteStatus)?;
                read_at = current.resource_version();
                statuses.absorb(&mut current);
                let found = statuses.status_of(uid);
                if crate::reconciler::core::decide::is_empty(&found) {
                    continue;
                }
                debug!(watch = %watch.name_any(), "another writer's status came first");
                return Ok(found);
            }
            Err(e) => return Err(Error::WriteStatus(e)),
        }
    }
    Err(Error::Contended)
}

/// One server-side apply of the whole status, as [`FIELD_MANAGER`]; with `read_at`, only if
/// the object is still at that resourceVersion.
async fn patch_status(
    api: &Api<UpgradeWorkflowWatch>,
    watch: &UpgradeWorkflowWatch,
    status: &UpgradeWorkflowWatchStatus,
    read_at: Option<&str>,
) -> Result<UpgradeWorkflowWatch, kube::Error> {
    let mut patch = serde_json::json!({
        "apiVersion": UpgradeWorkflowWatch::api_version(&()),
        "kind": UpgradeWorkflowWatch::kind(&()),
        "status": status,
    });
    if let Some(version) = read_at {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&watch.name_any(), &params, &Patch::Apply(&patch))
        .await
}

async fn write_status(
    ctx: &Context,
    api: &Api<UpgradeWorkflowWatch>,
    watch: &UpgradeWorkflowWatch,
    uid: &str,
    status: &UpgradeWorkflowWatchStatus,
) -> Result<(), Error> {
    let digest = digest_of(status);
    if ctx.rejected.lock().get(uid) == Some(&digest) {
        return Ok(());
    }
    match patch_status(api, watch, status, None).await {
        Ok(written) => {
            ctx.metrics.status_written();
            ctx.statuses
                .wrote(uid, written.metadata.resource_version.as_deref(), status);
            Ok(())
        }
        Err(kube::Error::Api(refusal)) if refused_for_its_content(&refusal) => {
            ctx.metrics.status_rejected();
            warn!(watch = %watch.name_any(), error = %refusal, "the API server refused the status");
            ctx.rejected.lock().insert(uid.to_string(), digest);
            let kept = ctx.statuses.status_of(uid);
            let said = rejected_status(&kept, &refusal.message, watch.meta().generation);
            if said == kept {
                return Ok(());
            }
            Box::pin(write_status(ctx, api, watch, uid, &said)).await
        }
        Err(e) => Err(Error::WriteStatus(e)),
    }
}

/// A refusal that sending the same patch again would meet again.
fn refused_for_its_content(refusal: &kube::core::Status) -> bool {
    matches!(refusal.code, 400 | 413 | 422)
}

/// The last status written, with Synced saying the new one was refused and why.
fn rejected_status(
    kept: &UpgradeWorkflowWatchStatus,
    why: &str,
    generation: Option<i64>,
) -> UpgradeWorkflowWatchStatus {
    let mut conditions = Conditions::new(kept.conditions.clone(), generation, now_whole_seconds());
    conditions.set(
        ConditionType::Synced,
        false,
        Reason::Failure(Category::StatusRejected),
        &format!(
            "the API server refused the status computed from CCE's answer ({why}); the last \
             status written is kept"
        ),
    );
    UpgradeWorkflowWatchStatus {
        conditions: conditions.into_list(),
        ..kept.clone()
    }
}

/// Names what a status says: its times aside (the sync times and each condition's
/// transition time change on every try without making a refused status acceptable). The
/// conditions' words count: the report of a refusal differs from the refused status even
/// when only its conditions do, and so does a later status that only recovers.
fn digest_of(status: &UpgradeWorkflowWatchStatus) -> u64 {
    use std::hash::{Hash, Hasher};
    let conditions = status
        .conditions
        .iter()
        .map(|c| Condition {
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            ..c.clone()
        })
        .collect();
    let content = UpgradeWorkflowWatchStatus {
        conditions,
        last_sync_time: None,
        last_change_time: None,
        ..status.clone()
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&content)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

async fn publish(
    ctx: &Context,
    watch: &UpgradeWorkflowWatch,
    transition: &Transition,
) -> Result<(), Error> {
    match ctx.recorder.publish(watch, transition).await {
        Ok(Published::Created) => {
            ctx.metrics.event_published(transition.reason.as_str());
            info!(watch = %watch.name_any(), reason = %transition.reason, note = %transition.note, "event");
        }
        Ok(Published::AlreadyThere) => {
            debug!(watch = %watch.name_any(), reason = %transition.reason, "event published before");
        }
        Err(e) if worth_retrying(&e) => return Err(Error::PublishEvent(e)),
        Err(e) => {
            warn!(watch = %watch.name_any(), reason = %transition.reason, error = %e, "publishing an event failed")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::core::decide::{Outcome, Requeue};
    use crate::reconciler::core::events::{EventReason, Subject, event_name};
    use crate::reconciler::mock::{self, Exchange, UID, precondition, stored};
    use serde_json::json;
    use std::time::Duration;

    fn status(phase: &str) -> UpgradeWorkflowWatchStatus {
        UpgradeWorkflowWatchStatus {
            phase: Some(phase.into()),
            observed_generation: Some(1),
            ..Default::default()
        }
    }

    fn transition(reason: EventReason, occurrence: &str) -> Transition {
        Transition {
            warning: false,
            reason,
            note: format!("{reason} {occurrence}"),
            action: "Workflow".into(),
            occurrence: occurrence.into(),
            subject: Subject::Workflow,
            finished_task: None,
        }
    }

    fn decision(write: UpgradeWorkflowWatchStatus, transitions: Vec<Transition>) -> Decision {
        Decision {
            write: Some(write),
            transitions,
            requeue: Requeue::AwaitChange,
            failures: None,
            settle: None,
            outcome: Outcome::Synced,
            phase: None,
            interval: Duration::from_secs(30),
            unparsed: Vec::new(),
        }
    }

    fn event_named(transition: &Transition) -> Exchange {
        Exchange::post_event_named(&event_name(mock::NAME, UID, transition))
    }

    /// An apply patch carrying `expected` as the whole status, without a precondition.
    fn writes(expected: &UpgradeWorkflowWatchStatus) -> Exchange {
        let expected = serde_json::to_value(expected).expect("JSON");
        Exchange::apply_status().checking(move |patch| {
            assert_eq!(patch["status"], expected);
            assert_eq!(
                precondition(patch),
                None,
                "a plain write has no precondition"
            );
        })
    }

    async fn applying(
        ctx: &Context,
        watch: &UpgradeWorkflowWatch,
        decision: &Decision,
    ) -> Result<(), Error> {
        let api = Api::namespaced(ctx.kube.clone(), mock::NAMESPACE);
        apply(ctx, &api, watch, UID, decision).await
    }

    #[tokio::test]
    async fn every_event_is_published_before_the_status_is_written() {
        let (started, succeeded) = (
            transition(EventReason::PhaseChanged, "Running"),
            transition(EventReason::UpgradeSucceeded, "wf"),
        );
        let next = status("Success");
        let (client, server) = mock::serve(vec![
            event_named(&started).answer(201, json!({})),
            event_named(&succeeded).answer(201, json!({})),
            writes(&next).answer(200, stored(&next, "8")),
        ]);
        let ctx = mock::context(client);
        let decided = decision(next.clone(), vec![started, succeeded]);
        let outcome = applying(&ctx, &mock::watch("7"), &decided).await;
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(ctx.statuses.status_of(UID), next);
        assert_eq!(ctx.statuses.resource_version(UID).as_deref(), Some("8"));
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn an_event_published_before_counts_and_the_status_is_still_written() {
        let again = transition(EventReason::PhaseChanged, "Running");
        let next = status("Running");
        let (client, server) = mock::serve(vec![
            event_named(&again).refuse(409, "AlreadyExists", "events \"w.x\" already exists"),
            writes(&next).answer(200, stored(&next, "8")),
        ]);
        let ctx = mock::context(client);
        let outcome = applying(
            &ctx,
            &mock::watch("7"),
            &decision(next.clone(), vec![again]),
        )
        .await;
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(ctx.statuses.status_of(UID), next);
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn an_event_the_api_server_may_take_later_holds_the_status_back() {
        let (first, second) = (
            transition(EventReason::PhaseChanged, "Running"),
            transition(EventReason::TaskStarted, "t1"),
        );
        // Neither the second Event nor the status is sent: the next reconcile computes the
        // same transitions from the unchanged status and publishes them then.
        let (client, server) = mock::serve(vec![event_named(&first).refuse(
            500,
            "InternalError",
            "etcd is unavailable",
        )]);
        let ctx = mock::context(client);
        let decided = decision(status("Running"), vec![first, second]);
        let outcome = applying(&ctx, &mock::watch("7"), &decided).await;
        assert!(
            matches!(outcome, Err(Error::PublishEvent(_))),
            "{outcome:?}"
        );
        assert_eq!(
            ctx.statuses.status_of(UID),
            UpgradeWorkflowWatchStatus::default()
        );
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn an_event_that_would_fail_forever_does_not_hold_the_status_back() {
        let refused = transition(EventReason::PhaseChanged, "Running");
        let next = status("Running");
        let (client, server) = mock::serve(vec![
            event_named(&refused).refuse(403, "Forbidden", "cannot create events"),
            writes(&next).answer(200, stored(&next, "8")),
        ]);
        let ctx = mock::context(client);
        let outcome = applying(
            &ctx,
            &mock::watch("7"),
            &decision(next.clone(), vec![refused]),
        )
        .await;
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(ctx.statuses.status_of(UID), next);
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn a_refused_status_is_reported_once_and_not_sent_again() {
        let kept = status("Running");
        let refused = status("Pending");
        let reported = Exchange::apply_status().checking({
            let kept = kept.clone();
            move |patch| {
                let said: UpgradeWorkflowWatchStatus =
                    serde_json::from_value(patch["status"].clone()).expect("a status");
                assert_eq!(said.phase, kept.phase, "the last status written is kept");
                let synced = said.conditions.first().expect("Synced");
                assert_eq!(
                    (
                        synced.type_.as_str(),
                        synced.status.as_str(),
                        synced.reason.as_str()
                    ),
                    ("Synced", "False", "StatusRejected")
                );
                assert!(
                    synced.message.contains("status.tasks: Too many"),
                    "{}",
                    synced.message
                );
            }
        });
        let (client, server) = mock::serve(vec![
            writes(&refused).refuse(422, "Invalid", "status.tasks: Too many"),
            reported.answer(200, stored(&kept, "9")),
        ]);
        let ctx = mock::context(client);
        ctx.statuses.wrote(UID, Some("7"), &kept);
        let watch = mock::watch("7");
        let decided = decision(refused.clone(), Vec::new());
        for reconcile in 1..=2 {
            let outcome = applying(&ctx, &watch, &decided).await;
            assert!(outcome.is_ok(), "reconcile {reconcile}: {outcome:?}");
        }
        assert_eq!(ctx.statuses.status_of(UID).phase, kept.phase);
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn after_a_refusal_a_different_status_is_sent() {
        let kept = status("Running");
        let (refused, next) = (status("Pending"), status("Success"));
        let (client, server) = mock::serve(vec![
            writes(&refused).refuse(422, "Invalid", "status.tasks: Too many"),
            Exchange::apply_status().answer(200, stored(&kept, "9")),
            writes(&next).answer(200, stored(&next, "10")),
        ]);
        let ctx = mock::context(client);
        ctx.statuses.wrote(UID, Some("7"), &kept);
        let watch = mock::watch("7");
        for write in [&refused, &next] {
            let outcome = applying(&ctx, &watch, &decision(write.clone(), Vec::new())).await;
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        assert_eq!(ctx.statuses.status_of(UID), next);
        server.finish(ctx).await;
    }

    /// A refusal of a status that differs from the kept one only in its conditions (CCE
    /// could not be read, say) is reported too: a digest without the conditions once gave
    /// the report the refused status's digest, so it was skipped as the refused patch.
    #[tokio::test]
    async fn a_status_refused_for_its_conditions_alone_is_reported() {
        let kept = status("Running");
        let mut failing = Conditions::new(Vec::new(), Some(1), now_whole_seconds());
        failing.set(
            ConditionType::Synced,
            false,
            Reason::Failure(Category::CceUnavailable),
            "CCE did not answer",
        );
        let refused = UpgradeWorkflowWatchStatus {
            conditions: failing.into_list(),
            ..kept.clone()
        };
        let reported = Exchange::apply_status().checking(|patch| {
            assert_eq!(patch["status"]["conditions"][0]["reason"], "StatusRejected");
        });
        let (client, server) = mock::serve(vec![
            writes(&refused).refuse(422, "Invalid", "status.conditions: Invalid value"),
            reported.answer(200, stored(&kept, "9")),
        ]);
        let ctx = mock::context(client);
        ctx.statuses.wrote(UID, Some("7"), &kept);
        let outcome = applying(&ctx, &mock::watch("7"), &decision(refused, Vec::new())).await;
        assert!(outcome.is_ok(), "{outcome:?}");
        server.finish(ctx).await;
    }

    async fn claiming(
        ctx: &Context,
        first: &UpgradeWorkflowWatchStatus,
    ) -> Result<UpgradeWorkflowWatchStatus, Error> {
        let api = Api::namespaced(ctx.kube.clone(), mock::NAMESPACE);
        let watch = mock::watch("7");
        claim_first_sight(&api, &watch, UID, &ctx.statuses, &ctx.metrics, first).await
    }

    /// An apply patch carrying `expected` only if the object is still at `version`.
    fn writes_at(expected: &UpgradeWorkflowWatchStatus, version: &'static str) -> Exchange {
        let expected = serde_json::to_value(expected).expect("JSON");
        Exchange::apply_status().checking(move |patch| {
            assert_eq!(patch["status"], expected);
            assert_eq!(precondition(patch), Some(version));
        })
    }

    #[tokio::test]
    async fn the_first_status_is_written_over_the_empty_one_it_was_read_at() {
        let first = status("Observed");
        let (client, server) = mock::serve(vec![
            writes_at(&first, "7").answer(200, stored(&first, "8")),
        ]);
        let ctx = mock::context(client);
        let claimed = claiming(&ctx, &first).await.expect("claimed");
        assert_eq!(claimed, first);
        assert_eq!(ctx.statuses.resource_version(UID).as_deref(), Some("8"));
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn another_instances_first_observation_is_not_overwritten() {
        let (mine, theirs) = (status("Observed"), status("Running"));
        let (client, server) = mock::serve(vec![
            writes_at(&mine, "7").refuse(409, "Conflict", "the object has been modified"),
            Exchange::get_status().answer(200, stored(&theirs, "8")),
        ]);
        let ctx = mock::context(client);
        let claimed = claiming(&ctx, &mine).await.expect("theirs");
        assert_eq!(claimed, theirs);
        assert_eq!(ctx.statuses.status_of(UID), theirs);
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn a_status_still_empty_after_a_conflict_is_claimed_at_its_new_version() {
        let first = status("Observed");
        let empty = UpgradeWorkflowWatchStatus::default();
        let (client, server) = mock::serve(vec![
            writes_at(&first, "7").refuse(409, "Conflict", "the object has been modified"),
            Exchange::get_status().answer(200, stored(&empty, "8")),
            writes_at(&first, "8").answer(200, stored(&first, "9")),
        ]);
        let ctx = mock::context(client);
        assert_eq!(claiming(&ctx, &first).await.expect("claimed"), first);
        server.finish(ctx).await;
    }

    #[tokio::test]
    async fn a_status_that_keeps_changing_is_given_up_on() {
        let first = status("Observed");
        let empty = UpgradeWorkflowWatchStatus::default();
        let (client, server) = mock::serve(vec![
            writes_at(&first, "7").refuse(409, "Conflict", "modified"),
            Exchange::get_status().answer(200, stored(&empty, "8")),
            writes_at(&first, "8").refuse(409, "Conflict", "modified"),
            Exchange::get_status().answer(200, stored(&empty, "9")),
        ]);
        let ctx = mock::context(client);
        let outcome = claiming(&ctx, &first).await;
        assert!(matches!(outcome, Err(Error::Contended)), "{outcome:?}");
        server.finish(ctx).await;
    }

    #[test]
    fn a_refused_status_is_reported_and_keeps_what_was_written() {
        let kept = UpgradeWorkflowWatchStatus {
            phase: Some("Running".into()),
            ..Default::default()
        };
        let said = rejected_status(&kept, "the request is too large", Some(3));
        assert_eq!(said.phase, kept.phase);
        let synced = said.conditions.first().expect("Synced");
        assert_eq!(
            (synced.type_.as_str(), synced.status.as_str()),
            ("Synced", "False")
        );
        assert_eq!(synced.reason, "StatusRejected");
        assert!(synced.message.contains("the request is too large"));
        // The refused status and the report of it are told apart; times do not count.
        let refused = UpgradeWorkflowWatchStatus {
            phase: Some("Pending".into()),
            ..kept.clone()
        };
        assert_ne!(digest_of(&refused), digest_of(&said));
        assert_ne!(digest_of(&said), digest_of(&kept));
        let later = rejected_status(&kept, "the request is too large", Some(3));
        assert_eq!(digest_of(&later), digest_of(&said), "times do not count");
    }
}
