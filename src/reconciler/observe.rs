//! What a reconcile learns from outside: the credentials of the watch's account, then CCE's answer through
//! the shared [`Fetcher`](crate::reconciler::fetch::Fetcher) (one request in flight per workflow, the
//! token bucket), then what CCE's diagnostic APIs say about the tasks the answer calls for
//! ([`diagnose`]). A failure on the way is an observation too, with the reason and message
//! status will carry.

use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use crate::cce::client::Target;
use crate::cce::credentials::Credentials;
use crate::cce::error::CceError;
use crate::crd::{ClusterType, UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use crate::credentials::accounts::Served;
use crate::diagnosis::findings::{Ask, wanted};
use crate::failure::{Category, Failure};
use crate::reconciler::context::Context;
use crate::reconciler::core::observation::{Diagnosed, Observed, Seen};
use crate::reconciler::fetch::{Answer, FetchKey, fingerprint};

/// What `observe` produced: the observation for the core, and where the answer came from,
/// which the diagnostic reads about it need (it carries the credentials, so the core never
/// sees it).
pub struct Reading {
    pub observed: Observed,
    pub source: Option<Arc<(FetchKey, Target)>>,
}

impl Reading {
    fn now(seen: Seen) -> Self {
        Self {
            observed: Observed::now(seen),
            source: None,
        }
    }
}

/// How long an idle cluster's upgrade task list is shared: an upgrade started without a
/// workflow is seen within this (they take far longer), at one list per cluster per period.
const IDLE_TASKS_SHARED_FOR: Duration = Duration::from_secs(300);

/// How long a finished task's diagnosis is shared: it does not change, and the status keeps
/// it, so this only spares the other watches of the workflow the same read.
const FINISHED_TASK_SHARED_FOR: Duration = Duration::from_secs(3600);

/// Reads what the watch names through the account that `served` it (or says why none
/// did). `None` when the endpoint has as many reads under way as it may: the reconcile
/// comes back later rather than hold a reconciler that watches of other endpoints need.
pub async fn observe(
    watch: &UpgradeWorkflowWatch,
    served: &Result<Served, Failure>,
    ctx: &Context,
    poll: Duration,
) -> Option<Reading> {
    let spec = &watch.spec;
    if spec.suspend == Some(true) {
        return Some(Reading::now(Seen::Suspended));
    }
    let failed = |failure| {
        Some(Reading::now(Seen::Failed {
            failure,
            retry_after: None,
        }))
    };
    let served = match served {
        Ok(served) => served,
        Err(failure) => return failed(failure.clone()),
    };
    let credentials = match ctx
        .credentials
        .resolve(&served.source, served.region.as_deref())
        .await
    {
        Ok(c) => c,
        Err(failure) => return failed(served.for_the_watch(failure)),
    };
    let endpoint = match ctx
        .fetcher
        .client()
        .resolve_endpoint(served.region.as_deref(), served.endpoint.as_deref())
    {
        Ok(url) => url,
        Err(e) => {
            return failed(served.for_the_watch(Failure::permanent(e.category(), e.to_string())));
        }
    };
    let (key, target) = key_and_target(watch, served, endpoint, credentials);
    // Any answer younger than the poll interval is shared. The first watch to wake after
    // the interval asks CCE; the others reuse its answer and, because the next poll is
    // timed from the answer's age, wake with it next time. A watch that first polled on
    // its own schedule (created later, say) joins the workflow's schedule on its next wake,
    // so each workflow converges to one request per interval. No watch sees a change later
    // than before: CCE is still asked once per interval.
    let namespace = watch.metadata.namespace.as_deref().unwrap_or_default();
    let answer = ctx.fetcher.fetch(&key, &target, poll, namespace).await?;
    Some(reading_of(answer, key, target, watch, served.family))
}

/// What the shared fetch is keyed by (the credentials by fingerprint only), and the target
/// its request goes to.
fn key_and_target(
    watch: &UpgradeWorkflowWatch,
    served: &Served,
    endpoint: url::Url,
    credentials: Credentials,
) -> (FetchKey, Target) {
    let spec = &watch.spec;
    let key = FetchKey {
        endpoint: endpoint.to_string(),
        project_id: served.project_id.clone(),
        family: served.family,
        cluster_id: spec.cluster_id.clone(),
        workflow_id: spec.upgrade_workflow_id.clone(),
        credentials: fingerprint(&credentials),
    };
    let target = Target {
        endpoint,
        project_id: served.project_id.clone(),
        cluster_id: spec.cluster_id.clone(),
        family: served.family,
        credentials,
    };
    (key, target)
}

/// The observation an answer makes, and where it came from when the diagnostic reads need
/// it.
fn reading_of(
    answer: Answer,
    key: FetchKey,
    target: Target,
    watch: &UpgradeWorkflowWatch,
    family: ClusterType,
) -> Reading {
    let age = answer.at.elapsed();
    let observed = |seen| Observed {
        seen,
        not_before: Duration::ZERO,
        age,
    };
    match answer.fetched {
        Ok(Some(wf)) => Reading {
            observed: observed(Seen::Workflow(wf, answer.id)),
            source: Some(Arc::new((key, target))),
        },
        Ok(None) => Reading {
            observed: observed(Seen::NoWorkflowYet),
            source: Some(Arc::new((key, target))),
        },
        Err(e) => {
            debug!(watch = %watch.metadata.name.as_deref().unwrap_or_default(), error = %e, "CCE call failed");
            let retry_after = e.retry_after();
            Reading {
                observed: Observed {
                    seen: Seen::Failed {
                        failure: Failure {
                            category: failure_category(&e),
                            message: failure_message(
                                &e,
                                family,
                                watch.spec.upgrade_workflow_id.is_some(),
                            ),
                            permanent: is_permanent(&e),
                        },
                        retry_after,
                    },
                    not_before: retry_after.unwrap_or_default(),
                    age: Duration::ZERO,
                },
                source: None,
            }
        }
    }
}

/// The diagnostic reads the workflow in `observed` calls for, given the kept status `old`
/// ([`wanted`]), each shared among the watches of the workflow. A running Cluster task's
/// progress is read again once the last read is most of a poll interval old, so the read
/// made with the workflow's own is not mistaken for a fresh one.
pub async fn diagnose(
    ctx: &Context,
    reading: &Reading,
    old: &UpgradeWorkflowWatchStatus,
    poll: Duration,
    namespace: &str,
) -> Diagnosed {
    let mut diagnosed = Diagnosed {
        told: Vec::new(),
        complete: true,
    };
    let Some(source) = &reading.source else {
        return diagnosed;
    };
    let (key, target) = &**source;
    let mut asks = match &reading.observed.seen {
        Seen::Workflow(wf, _) => wanted(wf, old),
        Seen::NoWorkflowYet => vec![Ask::UpgradeTasks(target.cluster_id.clone())],
        _ => Vec::new(),
    };
    let following_a_task =
        old.upgrade_task_id.is_some() && !old.workflow_phase().is_some_and(|p| p.is_terminal());
    if old.cluster_name.is_none() {
        asks.insert(0, Ask::ClusterName(target.cluster_id.clone()));
    }
    for ask in asks {
        // A name CCE would not give is asked again after the same hour a finished task's
        // diagnosis is shared for: one read per cluster and hour, not per poll.
        let fresh_for = match ask {
            Ask::Progress(_) => poll.mul_f64(0.8),
            Ask::UpgradeTasks(_) if following_a_task => poll.mul_f64(0.8),
            Ask::UpgradeTasks(_) => IDLE_TASKS_SHARED_FOR,
            _ => FINISHED_TASK_SHARED_FOR,
        };
        match ctx
            .fetcher
            .diagnose(key, &ask, target, fresh_for, namespace)
            .await
        {
            Some(told) => diagnosed.told.push((ask, told)),
            None => diagnosed.complete = false,
        }
    }
    diagnosed
}

fn failure_category(e: &CceError) -> Category {
    match e {
        CceError::NotFound(_) => Category::WorkflowNotFound,
        _ => e.category(),
    }
}

/// The condition message: the error, and for a 404 what to check. A Standard watch of an
/// Autopilot cluster (or the reverse) gets a 404 too: the two kinds live under different
/// API paths, so the message names the path this watch used.
fn failure_message(e: &CceError, family: ClusterType, names_workflow: bool) -> String {
    if !matches!(e, CceError::NotFound(_)) {
        return e.to_string();
    }
    let (kind, prefix, other) = (family, family.path_prefix(), family.other());
    let workflow = if names_workflow {
        ", upgradeWorkflowID"
    } else {
        ""
    };
    format!(
        "{e}; check the account's projectID, clusterID{workflow} and clusterType: this watch \
         reads the {kind} API ({prefix}), so a CCE {other} cluster needs clusterType: {other}"
    )
}

/// Errors that need a person; an answer CCE garbled is not one of them.
fn is_permanent(e: &CceError) -> bool {
    !(e.is_retryable() || matches!(e, CceError::InvalidResponse { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::error::ApiFailure;

    #[test]
    fn a_not_found_names_the_api_the_watch_used_and_the_cluster_type_to_check() {
        let e = CceError::NotFound(ApiFailure {
            status: 404,
            ..Default::default()
        });
        let standard = failure_message(&e, ClusterType::Standard, true);
        assert!(standard.starts_with(&e.to_string()), "{standard}");
        assert!(
            standard.contains("Standard API (/api/v3/)")
                && standard.contains("clusterType: Autopilot")
                && standard.contains("upgradeWorkflowID"),
            "{standard}"
        );
        let autopilot = failure_message(&e, ClusterType::Autopilot, true);
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
            failure_message(&other, ClusterType::Standard, true),
            other.to_string()
        );
    }
}
