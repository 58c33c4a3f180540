//! Carrying out a decision: the Events first, then the status (one server-side apply patch).
//! In that order, an operator stopped between the two publishes the same Events again from
//! the unchanged stored status, under the same names, and the API server's AlreadyExists
//! makes that a no-op: every transition has exactly one Event.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

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

/// Names what a status says about the workflow: conditions and sync times aside, which
/// change on every try without making a refused status acceptable.
fn digest_of(status: &UpgradeWorkflowWatchStatus) -> u64 {
    use std::hash::{Hash, Hasher};
    let content = UpgradeWorkflowWatchStatus {
        conditions: Vec::new(),
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
        assert_eq!(digest_of(&said), digest_of(&kept));
    }
}
