//! One reconcile of one watch: resolve credentials, read the workflow (shared with other
//! watches of the same workflow), compute the new status, publish the transitions, and
//! write status only when it changed.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use tracing::{debug, error, info, warn};

use super::book::StatusBook;
use super::conditions::{ConditionType, Conditions, Reason};
use super::events::{Transition, transitions};
use super::fetch::{FetchKey, Fetcher, fingerprint};
use super::recorder::{EventPublisher, Published, worth_retrying};
use super::schedule::{PollPolicy, poll_interval};
use super::secrets::SecretCredentials;
use super::settled::{AnswerId, Settled};
use super::status::{Observation, next_status};
use crate::cce::client::Target;
use crate::cce::error::CceError;
use crate::crd::{
    ClusterType, UpgradeWorkflowWatch, UpgradeWorkflowWatchSpec, UpgradeWorkflowWatchStatus,
};
use crate::metrics::{Metrics, ResultLabels};
use crate::runtime::leader::Leadership;

/// Field manager of every status write.
pub const FIELD_MANAGER: &str = "cce-upgrade-watch";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing status failed: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("publishing an event failed: {0}")]
    PublishEvent(#[source] kube::Error),
    #[error("the reconcile panicked: {0}")]
    Panicked(String),
    #[error("the watch has no namespace")]
    NoNamespace,
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub kube: kube::Client,
    pub recorder: EventPublisher,
    pub fetcher: Fetcher,
    pub credentials: SecretCredentials,
    pub policy: PollPolicy,
    /// How often `lastSyncTime` is refreshed while nothing else changes.
    pub heartbeat: Duration,
    pub metrics: Metrics,
    pub leadership: Leadership,
    /// The newest status of every watch: the cached objects carry none.
    pub statuses: Arc<StatusBook>,
    /// Consecutive failures per watch uid, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Per watch uid, the digest of the last status the API server refused, so the same
    /// patch is not sent again.
    rejected: Mutex<HashMap<String, u64>>,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kube: kube::Client,
        recorder: EventPublisher,
        fetcher: Fetcher,
        credentials: SecretCredentials,
        policy: PollPolicy,
        heartbeat: Duration,
        metrics: Metrics,
        leadership: Leadership,
    ) -> Self {
        Self {
            kube,
            recorder,
            fetcher,
            credentials,
            policy,
            heartbeat,
            metrics,
            leadership,
            statuses: Arc::new(StatusBook::new()),
            failures: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets failure counts and settled statuses, e.g. after losing and regaining
    /// leadership. The statuses stay: the book follows the API server whoever writes.
    pub fn forget_all(&self) {
        self.failures.lock().clear();
        self.statuses.unsettle_all();
    }

    /// Drops memory of watches for which `keep` is false.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.statuses.sweep(&keep);
        self.failures.lock().retain(|uid, _| keep(uid));
        self.rejected.lock().retain(|uid, _| keep(uid));
    }
}

/// The clock at the precision Kubernetes stores (metav1.Time has whole seconds), so a
/// status read back from the API server equals the one written.
fn now_whole_seconds() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// What the CCE side of a reconcile produced.
struct Observed {
    observation: ObservationOwned,
    /// Floor for the next poll (a 429's Retry-After).
    not_before: Duration,
    /// Age of a shared answer: the next poll is due that much sooner, so every watch of a
    /// workflow wakes just after the next fetch and shares it.
    age: Duration,
}

enum ObservationOwned {
    Workflow(Arc<crate::cce::model::Workflow>, AnswerId),
    NoWorkflowYet,
    Failed {
        reason: &'static str,
        message: String,
        permanent: bool,
        retry_after: Option<Duration>,
    },
}

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
    let key = format!("{namespace}/{}", watch.name_any());
    ctx.metrics.identify_watch(&key, &watch.spec.cluster_id);
    let generation = watch.meta().generation;
    let api: Api<UpgradeWorkflowWatch> = Api::namespaced(ctx.kube.clone(), &namespace);

    // A status that the last reconcile found current for this generation is read back
    // only if CCE's answer or the clock moved on.
    let settled = ctx
        .statuses
        .settled(&uid)
        .filter(|s| s.holds_for(generation));
    let mut known = None;
    if settled.is_none() {
        let mut old = ctx.statuses.status_of(&uid);
        if old.observed_generation.is_none() && old.conditions.is_empty() {
            let first = next_status(
                &old,
                &Observation::FirstSight,
                generation,
                now_whole_seconds(),
                ctx.heartbeat,
            )
            .status;
            write_status(&ctx, &api, &watch, &uid, &first).await?;
            old = first;
        }
        known = Some(old);
    }

    if watch.spec.suspend == Some(true) {
        let old = known.unwrap_or_else(|| ctx.statuses.status_of(&uid));
        let next = next_status(
            &old,
            &Observation::Suspended,
            generation,
            now_whole_seconds(),
            ctx.heartbeat,
        )
        .status;
        publish_and_write(&ctx, &api, &watch, &uid, &old, &next).await?;
        ctx.metrics.suspend_watch(&key, next.phase.as_deref());
        ctx.metrics
            .reconciles
            .get_or_create(&ResultLabels {
                result: "suspended",
            })
            .inc();
        return Ok(Action::await_change());
    }

    let poll = poll_interval(watch.spec.poll_interval.as_deref());
    let Some(observed) = observe(&watch, &namespace, &ctx, poll).await else {
        // The endpoint has as many reads under way as it may: come back later rather
        // than hold a reconciler that watches of other endpoints need.
        ctx.metrics
            .reconciles
            .get_or_create(&ResultLabels { result: "deferred" })
            .inc();
        return Ok(Action::requeue(
            ctx.policy.jittered(ctx.policy.backoff_base, Duration::ZERO),
        ));
    };
    let now = now_whole_seconds();
    if let (Some(settled), ObservationOwned::Workflow(wf, answer)) =
        (settled, &observed.observation)
        && settled.covers(*answer, now)
    {
        return Ok(unchanged(&ctx, &uid, &key, wf, poll, &observed));
    }
    let old = known.unwrap_or_else(|| ctx.statuses.status_of(&uid));
    // How often this watch is polled while CCE answers, for the sync-age alert.
    let mut interval = ctx
        .policy
        .after_success(old.workflow_phase().as_ref(), poll);
    let (next, delay) = match &observed.observation {
        ObservationOwned::Workflow(wf, _) => {
            ctx.failures.lock().remove(&uid);
            let next = next_status(
                &old,
                &Observation::Workflow(wf),
                generation,
                now,
                ctx.heartbeat,
            );
            for u in &next.mirrored.unparsed {
                warn!(watch = %key, field = %u.field, value = %u.value, "CCE sent a timestamp in an unknown format");
            }
            interval = ctx.policy.after_success(wf.phase(), poll);
            (next.status, interval.saturating_sub(observed.age))
        }
        ObservationOwned::NoWorkflowYet => {
            ctx.failures.lock().remove(&uid);
            let next = next_status(
                &old,
                &Observation::NoWorkflowYet,
                generation,
                now,
                ctx.heartbeat,
            )
            .status;
            interval = ctx
                .policy
                .terminal_resync
                .min(poll.max(Duration::from_secs(60)));
            (next, interval)
        }
        ObservationOwned::Failed {
            reason,
            message,
            permanent,
            retry_after,
        } => {
            let failures = {
                let mut failures = ctx.failures.lock();
                let n = failures.entry(uid.clone()).or_default();
                *n = n.saturating_add(1);
                *n
            };
            let obs = Observation::Failed {
                reason,
                message: message.clone(),
                permanent: *permanent,
            };
            let next = next_status(&old, &obs, generation, now, ctx.heartbeat).status;
            (
                next,
                ctx.policy.after_failure(failures, *permanent, *retry_after),
            )
        }
    };
    publish_and_write(&ctx, &api, &watch, &uid, &old, &next).await?;
    if let ObservationOwned::Workflow(_, answer) = observed.observation
        && let Some(settled) = Settled::after(answer, generation, &next, ctx.heartbeat)
    {
        ctx.statuses.settle(&uid, settled);
    }

    let synced = !matches!(observed.observation, ObservationOwned::Failed { .. });
    ctx.metrics
        .record_watch(&key, next.phase.as_deref(), synced, interval);
    let result = if synced { "synced" } else { "failed" };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels { result })
        .inc();
    Ok(Action::requeue(
        ctx.policy.jittered(delay, observed.not_before),
    ))
}

/// The end of a reconcile that found the answer it settled on last time: nothing to
/// compute, write or publish; the watch counts as synced and polls again on schedule.
fn unchanged(
    ctx: &Context,
    uid: &str,
    key: &str,
    wf: &crate::cce::model::Workflow,
    poll: Duration,
    observed: &Observed,
) -> Action {
    ctx.failures.lock().remove(uid);
    let interval = ctx.policy.after_success(wf.phase(), poll);
    ctx.metrics.record_unchanged(key, interval);
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels { result: "synced" })
        .inc();
    Action::requeue(
        ctx.policy
            .jittered(interval.saturating_sub(observed.age), observed.not_before),
    )
}

/// Kubernetes API failures (CCE failures never get here): retry with a short backoff.
pub fn error_policy(watch: Arc<UpgradeWorkflowWatch>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(watch = %watch.name_any(), %error, "reconcile failed");
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels {
            result: if matches!(error, Error::Panicked(_)) {
                "panic"
            } else {
                "error"
            },
        })
        .inc();
    Action::requeue(ctx.policy.jittered(ctx.policy.backoff_base, Duration::ZERO))
}

async fn observe(
    watch: &UpgradeWorkflowWatch,
    namespace: &str,
    ctx: &Context,
    poll: Duration,
) -> Option<Observed> {
    let failed = |reason, message: String, permanent| {
        Some(Observed {
            observation: ObservationOwned::Failed {
                reason,
                message,
                permanent,
                retry_after: None,
            },
            not_before: Duration::ZERO,
            age: Duration::ZERO,
        })
    };
    let spec = &watch.spec;
    let secret = spec
        .credentials_secret_ref
        .as_ref()
        .map(|r| r.name.as_str());
    let credentials = match ctx.credentials.resolve(namespace, secret).await {
        Ok(c) => c,
        Err(e) => return failed(Reason::CREDENTIALS_MISSING.as_str(), e.to_string(), true),
    };
    let endpoint = match ctx
        .fetcher
        .client()
        .resolve_endpoint(spec.region.as_deref(), spec.endpoint.as_deref())
    {
        Ok(url) => url,
        Err(e) => return failed(e.category(), e.to_string(), true),
    };
    let key = FetchKey {
        endpoint: endpoint.to_string(),
        project_id: spec.project_id.clone(),
        family: spec.cluster_type.into(),
        cluster_id: spec.cluster_id.clone(),
        workflow_id: spec.upgrade_workflow_id.clone(),
        credentials: fingerprint(&credentials),
    };
    let target = Target {
        endpoint,
        project_id: spec.project_id.clone(),
        cluster_id: spec.cluster_id.clone(),
        family: spec.cluster_type.into(),
        credentials,
    };
    // Any answer younger than the poll interval is shared. The first watch to wake after
    // the interval asks CCE; the others reuse its answer and, because the next poll is
    // timed from the answer's age, wake with it next time. A watch that first polled on
    // its own schedule (created later, say) joins the workflow's schedule on its next wake,
    // so each workflow converges to one request per interval. No watch sees a change later
    // than before: CCE is still asked once per interval.
    let answer = ctx.fetcher.fetch(&key, &target, poll).await?;
    let age = answer.at.elapsed();
    Some(match answer.fetched {
        Ok(Some(wf)) => Observed {
            observation: ObservationOwned::Workflow(wf, answer.id),
            not_before: Duration::ZERO,
            age,
        },
        Ok(None) => Observed {
            observation: ObservationOwned::NoWorkflowYet,
            not_before: Duration::ZERO,
            age,
        },
        Err(e) => {
            debug!(watch = %watch.name_any(), error = %e, "CCE call failed");
            let retry_after = e.retry_after();
            Observed {
                observation: ObservationOwned::Failed {
                    reason: failure_reason(&e),
                    message: failure_message(&e, spec),
                    permanent: is_permanent(&e),
                    retry_after,
                },
                not_before: retry_after.unwrap_or_default(),
                age: Duration::ZERO,
            }
        }
    })
}

fn failure_reason(e: &CceError) -> &'static str {
    match e {
        CceError::NotFound(_) => Reason::WORKFLOW_NOT_FOUND.as_str(),
        _ => e.category(),
    }
}

/// The condition message: the error, and for a 404 what to check. A Standard watch of an
/// Autopilot cluster (or the reverse) gets a 404 too: the two kinds live under different
/// API paths, so the message names the path this watch used.
fn failure_message(e: &CceError, spec: &UpgradeWorkflowWatchSpec) -> String {
    if !matches!(e, CceError::NotFound(_)) {
        return e.to_string();
    }
    let (kind, prefix, other) = match spec.cluster_type {
        ClusterType::Standard => ("Standard", "/api/v3/", "Autopilot"),
        ClusterType::Autopilot => ("Autopilot", "/autopilot/v3/", "Standard"),
    };
    let workflow = if spec.upgrade_workflow_id.is_some() {
        ", upgradeWorkflowID"
    } else {
        ""
    };
    format!(
        "{e}; check projectID, clusterID{workflow} and clusterType: this watch reads the \
         {kind} API ({prefix}), so a CCE {other} cluster needs clusterType: {other}"
    )
}

/// Errors that need a person; an answer CCE garbled is not one of them.
fn is_permanent(e: &CceError) -> bool {
    !(e.is_retryable() || matches!(e, CceError::InvalidResponse { .. }))
}

/// Publishes the transitions, then writes the status. In that order, an operator stopped
/// between the two publishes them again from the unchanged stored status, under the same
/// names, so every transition has exactly one Event.
async fn publish_and_write(
    ctx: &Context,
    api: &Api<UpgradeWorkflowWatch>,
    watch: &UpgradeWorkflowWatch,
    uid: &str,
    old: &UpgradeWorkflowWatchStatus,
    next: &UpgradeWorkflowWatchStatus,
) -> Result<(), Error> {
    if next == old {
        return Ok(());
    }
    let found = transitions(old, next);
    for transition in &found {
        publish(ctx, watch, transition).await?;
    }
    write_status(ctx, api, watch, uid, next).await?;
    for transition in &found {
        if let Some(task) = &transition.finished_task {
            let key = format!(
                "{}/{}",
                watch.namespace().unwrap_or_default(),
                watch.name_any()
            );
            ctx.metrics
                .observe_task(&key, &task.task_type, task.result, task.took);
        }
    }
    Ok(())
}

async fn write_status(
    ctx: &Context,
    api: &Api<UpgradeWorkflowWatch>,
    watch: &UpgradeWorkflowWatch,
    uid: &str,
    status: &UpgradeWorkflowWatchStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": UpgradeWorkflowWatch::api_version(&()),
        "kind": UpgradeWorkflowWatch::kind(&()),
        "status": status,
    });
    let digest = digest_of(status);
    if ctx.rejected.lock().get(uid) == Some(&digest) {
        return Ok(());
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api
        .patch_status(&watch.name_any(), &params, &Patch::Apply(&patch))
        .await
    {
        Ok(written) => {
            ctx.metrics.status_writes.inc();
            ctx.statuses
                .wrote(uid, written.metadata.resource_version.as_deref(), status);
            Ok(())
        }
        Err(kube::Error::Api(refusal)) if refused_for_its_content(&refusal) => {
            ctx.metrics.status_rejections.inc();
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
        Reason::STATUS_REJECTED,
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
            ctx.metrics
                .events
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: transition.reason,
                })
                .inc();
            info!(watch = %watch.name_any(), reason = transition.reason, note = %transition.note, "event");
        }
        Ok(Published::AlreadyThere) => {
            debug!(watch = %watch.name_any(), reason = transition.reason, "event published before");
        }
        Err(e) if worth_retrying(&e) => return Err(Error::PublishEvent(e)),
        Err(e) => {
            warn!(watch = %watch.name_any(), reason = transition.reason, error = %e, "publishing an event failed")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::error::ApiFailure;

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

    fn spec(cluster_type: ClusterType) -> UpgradeWorkflowWatchSpec {
        serde_json::from_value(serde_json::json!({
            "region": "ap-southeast-1", "projectID": "p", "clusterID": "c",
            "clusterType": cluster_type, "upgradeWorkflowID": "w"
        }))
        .expect("spec")
    }

    #[test]
    fn a_not_found_names_the_api_the_watch_used_and_the_cluster_type_to_check() {
        let e = CceError::NotFound(ApiFailure {
            status: 404,
            ..Default::default()
        });
        let standard = failure_message(&e, &spec(ClusterType::Standard));
        assert!(standard.starts_with(&e.to_string()), "{standard}");
        assert!(
            standard.contains("Standard API (/api/v3/)")
                && standard.contains("clusterType: Autopilot")
                && standard.contains("upgradeWorkflowID"),
            "{standard}"
        );
        let autopilot = failure_message(&e, &spec(ClusterType::Autopilot));
        assert!(
            autopilot.contains("Autopilot API (/autopilot/v3/)")
                && autopilot.contains("clusterType: Standard"),
            "{autopilot}"
        );
        let other = CceError::Server(ApiFailure {
            status: 503,
            ..Default::default()
        });
        assert_eq!(
            failure_message(&other, &spec(ClusterType::Standard)),
            other.to_string()
        );
    }
}
