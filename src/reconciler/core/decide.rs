//! What a reconcile makes of what it observed, as a pure function of the kept status, the
//! observation, what the last reconcile settled, the spec generation, the clock and the
//! polling policy: the next status (if it changed), the Events its transitions deserve,
//! and when to look again. `apply` carries it out; nothing here talks to a server.

use std::time::Duration;

use jiff::Timestamp;

use crate::cce::model::Workflow;
use crate::crd::UpgradeWorkflowWatchStatus;
use crate::diagnosis::findings::{reads_every_poll, told_cluster_name, told_upgrade_task};
use crate::failure::{Category, Failure};
use crate::limits::{MAX_FIELD_BYTES, clean};
use crate::reconciler::core::direct;
use crate::reconciler::core::events::{Transition, transitions};
use crate::reconciler::core::mirror::UnparsedTime;
use crate::reconciler::core::observation::{Diagnosed, Observed, Seen};
use crate::reconciler::core::schedule::PollPolicy;
use crate::reconciler::core::settled::Settled;
use crate::reconciler::core::status::{Observation, next_status};

/// The operator-wide settings a decision follows.
#[derive(Clone, Debug)]
pub struct Rules {
    pub policy: PollPolicy,
    /// How often `lastSyncTime` is refreshed while nothing else changes.
    pub heartbeat: Duration,
}

/// What one reconcile knows about its watch besides the observation.
#[derive(Clone, Copy, Debug)]
pub struct Watch<'a> {
    pub generation: Option<i64>,
    /// `spec.clusterID`: the cluster the workflow should belong to.
    pub cluster_id: &'a str,
    /// `spec.pollInterval`, resolved.
    pub poll: Duration,
    /// Failed reads in a row before this one.
    pub failures: u32,
    /// What the last reconcile settled, if it still holds for this generation.
    pub settled: Option<Settled>,
}

/// How the reconcile ended, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// CCE answered (or the followed cluster has no workflow).
    Synced,
    /// CCE answered what the kept status already says: nothing computed.
    Unchanged,
    Failed,
    Suspended,
}

/// When to reconcile again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// After `delay` stretched by jitter, never before `floor`.
    After { delay: Duration, floor: Duration },
    /// Only when the watch changes.
    AwaitChange,
}

#[derive(Clone, Debug)]
pub struct Decision {
    /// The status to write, when it differs from the kept one.
    pub write: Option<UpgradeWorkflowWatchStatus>,
    /// The Events to publish before the write, in order.
    pub transitions: Vec<Transition>,
    pub requeue: Requeue,
    /// Failed reads in a row after this one; `None` leaves the count as it is.
    pub failures: Option<u32>,
    /// To record once the status is written.
    pub settle: Option<Settled>,
    pub outcome: Outcome,
    /// The phase the watch is left in, for the metrics.
    pub phase: Option<String>,
    /// How often the watch is polled while CCE answers, for the sync-age alert.
    pub interval: Duration,
    /// Timestamps CCE sent in no known format, to log.
    pub unparsed: Vec<UnparsedTime>,
}

/// The status a watch gets before CCE is first asked, when the kept one is empty; `None`
/// when it already has one.
pub fn first_sight(
    old: &UpgradeWorkflowWatchStatus,
    generation: Option<i64>,
    now: Timestamp,
    rules: &Rules,
) -> Option<UpgradeWorkflowWatchStatus> {
    is_empty(old).then(|| {
        next_status(
            old,
            &Observation::FirstSight,
            generation,
            now,
            rules.heartbeat,
        )
        .status
    })
}

/// Whether no reconcile has written this status yet.
pub fn is_empty(status: &UpgradeWorkflowWatchStatus) -> bool {
    status.observed_generation.is_none() && status.conditions.is_empty()
}

/// The decision when CCE sent the answer the last reconcile settled on and nothing in it
/// changes by itself: nothing to compute, write or publish. `None` when there is work.
pub fn unchanged(
    observed: &Observed,
    watch: &Watch<'_>,
    now: Timestamp,
    rules: &Rules,
) -> Option<Decision> {
    let (Some(settled), Seen::Workflow(wf, answer)) = (watch.settled, &observed.seen) else {
        return None;
    };
    if !settled.covers(*answer, now) || reads_every_poll(wf) {
        return None;
    }
    let interval = rules.policy.after_success(wf.phase(), watch.poll);
    Some(Decision {
        write: None,
        transitions: Vec::new(),
        requeue: Requeue::After {
            delay: interval.saturating_sub(observed.age),
            floor: observed.not_before,
        },
        failures: Some(0),
        settle: None,
        outcome: Outcome::Unchanged,
        phase: None,
        interval,
        unparsed: Vec::new(),
    })
}

/// Decides one reconcile from the kept status `old`, what CCE answered and what its
/// diagnostic APIs told.
pub fn decide(
    old: &UpgradeWorkflowWatchStatus,
    observed: &Observed,
    diagnosed: &Diagnosed,
    watch: &Watch<'_>,
    now: Timestamp,
    rules: &Rules,
) -> Decision {
    let step = step(old, observed, diagnosed, watch, now, rules);
    let next = step.status;
    let (write, found) = if next == *old {
        (None, Vec::new())
    } else {
        let found = transitions(old, &next);
        (Some(next.clone()), found)
    };
    Decision {
        write,
        transitions: found,
        requeue: step.requeue,
        failures: step.failures,
        settle: step.settle,
        outcome: step.outcome,
        phase: next.phase,
        interval: step.interval,
        unparsed: step.unparsed,
    }
}

/// What one observation makes of the kept status, before it is compared with it.
struct Step {
    status: UpgradeWorkflowWatchStatus,
    requeue: Requeue,
    failures: Option<u32>,
    outcome: Outcome,
    interval: Duration,
    unparsed: Vec<UnparsedTime>,
    settle: Option<Settled>,
}

fn step(
    old: &UpgradeWorkflowWatchStatus,
    observed: &Observed,
    diagnosed: &Diagnosed,
    watch: &Watch<'_>,
    now: Timestamp,
    rules: &Rules,
) -> Step {
    let policy = &rules.policy;
    let compute = |observation: &Observation<'_>| {
        next_status(old, observation, watch.generation, now, rules.heartbeat)
    };
    let mut step = Step {
        status: UpgradeWorkflowWatchStatus::default(),
        requeue: Requeue::AwaitChange,
        failures: None,
        outcome: Outcome::Suspended,
        interval: policy.after_success(old.workflow_phase().as_ref(), watch.poll),
        unparsed: Vec::new(),
        settle: None,
    };
    let failed = |step: &mut Step, failure: Failure, retry_after: Option<Duration>| {
        let failures = watch.failures.saturating_add(1);
        step.requeue = Requeue::After {
            delay: policy.after_failure(failures, failure.permanent, retry_after),
            floor: observed.not_before,
        };
        step.status = compute(&Observation::Failed(failure)).status;
        (step.failures, step.outcome) = (Some(failures), Outcome::Failed);
    };
    if let Seen::Workflow(wf, _) = &observed.seen
        && let Some(mismatch) = cluster_mismatch(wf, watch.cluster_id)
    {
        failed(&mut step, mismatch, None);
        return step;
    }
    match &observed.seen {
        Seen::Workflow(wf, answer) => {
            let next = compute(&Observation::Diagnosed {
                workflow: wf,
                told: &diagnosed.told,
            });
            step.unparsed = next.mirrored.unparsed;
            step.interval = policy.after_success(wf.phase(), watch.poll);
            if diagnosed.complete && !reads_every_poll(wf) {
                step.settle =
                    Settled::after(*answer, watch.generation, &next.status, rules.heartbeat);
            }
            step.requeue = Requeue::After {
                delay: step.interval.saturating_sub(observed.age),
                floor: observed.not_before,
            };
            (step.status, step.failures, step.outcome) = (next.status, Some(0), Outcome::Synced);
            step.status.cluster_name = named(old, diagnosed);
        }
        Seen::NoWorkflowYet if told_upgrade_task(&diagnosed.told).is_some() => {
            follow_task(&mut step, old, diagnosed, watch, observed, now, rules);
        }
        Seen::NoWorkflowYet => {
            step.interval = policy
                .terminal_resync
                .min(watch.poll.max(Duration::from_secs(60)));
            step.requeue = Requeue::After {
                delay: step.interval,
                floor: observed.not_before,
            };
            step.status = compute(&Observation::NoWorkflowYet).status;
            step.status.cluster_name = named(old, diagnosed);
            (step.failures, step.outcome) = (Some(0), Outcome::Synced);
        }
        Seen::Failed {
            failure,
            retry_after,
        } => failed(&mut step, failure.clone(), *retry_after),
        Seen::Suspended => step.status = compute(&Observation::Suspended).status,
    }
    step
}

/// The step for a followed cluster upgraded without a workflow: its upgrade task, mirrored
/// as a one-task workflow.
fn follow_task(
    step: &mut Step,
    old: &UpgradeWorkflowWatchStatus,
    diagnosed: &Diagnosed,
    watch: &Watch<'_>,
    observed: &Observed,
    now: Timestamp,
    rules: &Rules,
) {
    let Some(task) = told_upgrade_task(&diagnosed.told) else {
        return;
    };
    let workflow = direct::as_workflow(task, watch.cluster_id);
    let mut told = diagnosed.told.clone();
    told.push(direct::progress_told(task));
    let observation = Observation::UpgradeTask {
        workflow: &workflow,
        told: &told,
    };
    let next = next_status(old, &observation, watch.generation, now, rules.heartbeat);
    step.unparsed = next.mirrored.unparsed;
    step.interval = rules.policy.after_success(workflow.phase(), watch.poll);
    step.requeue = Requeue::After {
        delay: step.interval.saturating_sub(observed.age),
        floor: observed.not_before,
    };
    (step.status, step.failures, step.outcome) = (next.status, Some(0), Outcome::Synced);
    step.status.cluster_name = named(old, diagnosed);
}

/// The cluster's name: as CCE just gave it, else as status kept it.
fn named(old: &UpgradeWorkflowWatchStatus, diagnosed: &Diagnosed) -> Option<String> {
    told_cluster_name(&diagnosed.told).or_else(|| old.cluster_name.clone())
}

/// A workflow of another cluster than `spec.clusterID` is not mirrored: the ids the spec
/// names disagree, which a person must settle.
fn cluster_mismatch(workflow: &Workflow, cluster_id: &str) -> Option<Failure> {
    workflow
        .spec
        .as_ref()
        .and_then(|s| s.cluster_id.as_deref())
        .filter(|theirs| !theirs.is_empty() && *theirs != cluster_id)
        .map(|theirs| {
            Failure::permanent(
                Category::ClusterMismatch,
                format!(
                    "the workflow belongs to cluster {:?}, not to spec.clusterID {cluster_id:?}: \
                     check upgradeWorkflowID",
                    clean(theirs, MAX_FIELD_BYTES)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cce::model::Workflow;
    use crate::diagnosis::findings::{Ask, Told};
    use crate::failure::{Category, Failure};
    use crate::reconciler::core::conditions::{ConditionType, condition};
    use crate::reconciler::core::settled::AnswerId;

    fn rules() -> Rules {
        Rules {
            policy: PollPolicy::default(),
            heartbeat: Duration::from_secs(300),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("valid")
    }

    fn watch() -> Watch<'static> {
        Watch {
            generation: Some(1),
            cluster_id: "c",
            poll: Duration::from_secs(30),
            failures: 0,
            settled: None,
        }
    }

    fn workflow(phase: &str, task: &str, state: &str) -> Arc<Workflow> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"uid": "w1"},
                "spec": {"clusterID": "c"},
                "status": {"phase": phase, "pointStatuses": [
                    {"taskType": task, "taskID": "t1", "status": state}]}
            }))
            .expect("parse"),
        )
    }

    fn seen(seen: Seen, age: Duration) -> Observed {
        Observed {
            seen,
            not_before: Duration::ZERO,
            age,
        }
    }

    fn nothing() -> Diagnosed {
        Diagnosed {
            told: Vec::new(),
            complete: true,
        }
    }

    fn reasons(d: &Decision) -> Vec<&'static str> {
        d.transitions.iter().map(|t| t.reason.as_str()).collect()
    }

    #[test]
    fn first_sight_only_for_a_status_that_is_really_empty() {
        let now = at("2024-01-01T00:00:00Z");
        let first = first_sight(&Default::default(), Some(1), now, &rules()).expect("empty");
        assert!(condition(&first, ConditionType::Reconciling).is_some());
        assert!(first_sight(&first, Some(2), now, &rules()).is_none());
    }

    #[test]
    fn a_new_answer_writes_the_status_publishes_its_transitions_and_settles() {
        let now = at("2024-01-01T00:00:00Z");
        let answer = AnswerId::following(None, false);
        let observed = seen(
            Seen::Workflow(workflow("Running", "PreCheck", "Running"), answer),
            Duration::from_secs(10),
        );
        let d = decide(
            &UpgradeWorkflowWatchStatus::default(),
            &observed,
            &nothing(),
            &watch(),
            now,
            &rules(),
        );
        assert_eq!(d.outcome, Outcome::Synced);
        assert_eq!(reasons(&d), vec!["WorkflowObserved"]);
        let written = d.write.clone().expect("a status to write");
        assert_eq!(written.phase.as_deref(), Some("Running"));
        assert_eq!(
            d.requeue,
            Requeue::After {
                delay: Duration::from_secs(20),
                floor: Duration::ZERO
            },
            "the age of a shared answer comes off the next poll"
        );
        assert_eq!(d.failures, Some(0));
        let settled = d.settle.expect("settled");

        // The same answer again: nothing computed, written or published.
        let again = unchanged(
            &observed,
            &Watch {
                settled: Some(settled),
                ..watch()
            },
            now,
            &rules(),
        )
        .expect("the settled answer again changes nothing");
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert!(again.write.is_none() && again.transitions.is_empty());

        // A replay of the same status from an unsettled reconcile: no write, no Event.
        let replay = decide(&written, &observed, &nothing(), &watch(), now, &rules());
        assert!(replay.write.is_none() && replay.transitions.is_empty());
    }

    #[test]
    fn failures_count_up_back_off_and_reset_on_the_next_answer() {
        let now = at("2024-01-01T00:00:00Z");
        let good = decide(
            &UpgradeWorkflowWatchStatus::default(),
            &seen(
                Seen::Workflow(
                    workflow("Running", "PreCheck", "Running"),
                    AnswerId::following(None, false),
                ),
                Duration::ZERO,
            ),
            &nothing(),
            &watch(),
            now,
            &rules(),
        )
        .write
        .expect("status");
        let failed = seen(
            Seen::Failed {
                failure: Failure {
                    category: Category::CceUnavailable,
                    message: "CCE answered 503".into(),
                    permanent: false,
                },
                retry_after: None,
            },
            Duration::ZERO,
        );
        let first = decide(&good, &failed, &nothing(), &watch(), now, &rules());
        assert_eq!(first.outcome, Outcome::Failed);
        assert_eq!(first.failures, Some(1));
        assert_eq!(reasons(&first), vec!["SyncFailed"]);
        let third = decide(
            first.write.as_ref().expect("status"),
            &failed,
            &nothing(),
            &Watch {
                failures: 2,
                ..watch()
            },
            now,
            &rules(),
        );
        assert_eq!(third.failures, Some(3));
        assert!(third.transitions.is_empty(), "one SyncFailed per outage");
        assert_eq!(
            third.requeue,
            Requeue::After {
                delay: Duration::from_secs(20),
                floor: Duration::ZERO
            }
        );
        assert_eq!(third.interval, Duration::from_secs(30));
    }

    #[test]
    fn a_suspended_watch_waits_for_a_change_and_keeps_its_failure_count() {
        let d = decide(
            &UpgradeWorkflowWatchStatus::default(),
            &seen(Seen::Suspended, Duration::ZERO),
            &nothing(),
            &Watch {
                failures: 4,
                ..watch()
            },
            at("2024-01-01T00:00:00Z"),
            &rules(),
        );
        assert_eq!(d.outcome, Outcome::Suspended);
        assert_eq!(d.requeue, Requeue::AwaitChange);
        assert_eq!(d.failures, None);
        let synced =
            condition(d.write.as_ref().expect("status"), ConditionType::Synced).expect("synced");
        assert_eq!(synced.reason, "Suspended");
    }

    #[test]
    fn a_cluster_without_a_workflow_is_looked_at_again_within_a_minute_or_two() {
        let d = decide(
            &UpgradeWorkflowWatchStatus::default(),
            &seen(Seen::NoWorkflowYet, Duration::from_secs(5)),
            &nothing(),
            &watch(),
            at("2024-01-01T00:00:00Z"),
            &rules(),
        );
        assert_eq!(d.outcome, Outcome::Synced);
        assert_eq!(
            d.requeue,
            Requeue::After {
                delay: Duration::from_secs(60),
                floor: Duration::ZERO
            }
        );
    }

    #[test]
    fn a_running_cluster_task_is_never_settled_and_its_progress_shows() {
        let now = at("2024-01-01T00:00:00Z");
        let answer = AnswerId::following(None, false);
        let observed = seen(
            Seen::Workflow(workflow("Running", "Cluster", "Running"), answer),
            Duration::ZERO,
        );
        let told = Diagnosed {
            told: vec![(
                Ask::Progress("t1".into()),
                Told::Progress {
                    phase: Some("Running".into()),
                    percent: Some(45),
                },
            )],
            complete: true,
        };
        let d = decide(
            &Default::default(),
            &observed,
            &told,
            &watch(),
            now,
            &rules(),
        );
        let status = d.write.expect("status");
        assert_eq!(status.current_task.as_deref(), Some("Cluster 45%"));
        assert!(
            d.settle.is_none(),
            "progress moves while the workflow stays"
        );
        // The next percent is a status write and no Event.
        let later = Diagnosed {
            told: vec![(
                Ask::Progress("t1".into()),
                Told::Progress {
                    phase: Some("Running".into()),
                    percent: Some(50),
                },
            )],
            complete: true,
        };
        let next = decide(&status, &observed, &later, &watch(), now, &rules());
        assert_eq!(
            next.write.expect("status").current_task.as_deref(),
            Some("Cluster 50%")
        );
        assert!(next.transitions.is_empty());
    }

    #[test]
    fn a_workflow_of_another_cluster_is_a_sync_failure_and_is_not_mirrored() {
        let observed = seen(
            Seen::Workflow(
                workflow("Running", "PreCheck", "Running"),
                AnswerId::following(None, false),
            ),
            Duration::ZERO,
        );
        let d = decide(
            &Default::default(),
            &observed,
            &nothing(),
            &Watch {
                cluster_id: "other",
                ..watch()
            },
            at("2024-01-01T00:00:00Z"),
            &rules(),
        );
        let status = d.write.as_ref().expect("status");
        let synced = condition(status, ConditionType::Synced).expect("synced");
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "ClusterMismatch")
        );
        assert!(synced.message.contains("\"c\""), "{}", synced.message);
        let stalled = condition(status, ConditionType::Stalled).expect("stalled");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "ClusterMismatch")
        );
        assert_eq!((status.phase.as_ref(), status.tasks.len()), (None, 0));
        assert_eq!(d.outcome, Outcome::Failed);
        assert_eq!(
            d.transitions
                .iter()
                .map(|t| t.reason.as_str())
                .collect::<Vec<_>>(),
            vec!["SyncFailed"]
        );
    }

    #[test]
    fn a_succeeded_upgrade_stays_ready_when_access_is_lost_afterwards() {
        let success = seen(
            Seen::Workflow(
                workflow("Success", "Cluster", "Success"),
                AnswerId::following(None, false),
            ),
            Duration::ZERO,
        );
        let t0 = at("2024-01-01T00:00:00Z");
        let done = decide(
            &Default::default(),
            &success,
            &nothing(),
            &watch(),
            t0,
            &rules(),
        )
        .write
        .expect("status");
        let refused = seen(
            Seen::Failed {
                failure: Failure::permanent(Category::Forbidden, "CCE refused access (403)"),
                retry_after: None,
            },
            Duration::ZERO,
        );
        let later = at("2024-01-01T01:00:00Z");
        let d = decide(&done, &refused, &nothing(), &watch(), later, &rules());
        let status = d.write.as_ref().expect("status");
        let of = |type_| {
            let c = condition(status, type_).expect("set");
            (c.status.as_str(), c.reason.as_str())
        };
        assert_eq!(of(ConditionType::Ready), ("True", "UpgradeSucceeded"));
        assert_eq!(of(ConditionType::Stalled), ("False", "UpgradeSucceeded"));
        assert_eq!(of(ConditionType::Synced), ("False", "Forbidden"));
        assert_eq!(
            status.message.as_deref(),
            Some("Forbidden: CCE refused access (403)")
        );
        assert_eq!(status.phase.as_deref(), Some("Success"));
    }

    fn direct(phase: &str, percent: Option<u8>) -> Diagnosed {
        use crate::diagnosis::findings::DirectUpgrade;
        Diagnosed {
            told: vec![(
                Ask::UpgradeTasks("c".into()),
                Told::UpgradeTask(Some(Box::new(DirectUpgrade {
                    id: "up-1".into(),
                    phase: Some(phase.into()),
                    percent,
                    from: Some("v1.28.15-r10".into()),
                    target: Some("v1.29.13-r0".into()),
                    created: Some("2024-01-01 00:00:00 +0000 UTC".into()),
                    updated: None,
                    completed: None,
                }))),
            )],
            complete: true,
        }
    }

    #[test]
    fn an_upgrade_without_a_workflow_is_followed_through_its_task_and_says_so() {
        let idle = seen(Seen::NoWorkflowYet, Duration::ZERO);
        let t0 = at("2024-01-01T00:01:00Z");
        let d = decide(
            &Default::default(),
            &idle,
            &direct("Running", Some(40)),
            &watch(),
            t0,
            &rules(),
        );
        let running = d.write.clone().expect("status");
        assert_eq!(running.upgrade_task_id.as_deref(), Some("up-1"));
        assert_eq!(running.workflow_id, None);
        assert_eq!(running.phase.as_deref(), Some("Running"));
        assert_eq!(running.from_version.as_deref(), Some("v1.28.15-r10"));
        assert_eq!(running.current_task.as_deref(), Some("Cluster 40%"));
        assert_eq!(running.tasks[0].percent, Some(40));
        let of = |s: &UpgradeWorkflowWatchStatus, t| {
            let c = condition(s, t).expect("set");
            (c.status.clone(), c.reason.clone(), c.message.clone())
        };
        assert_eq!(of(&running, ConditionType::Ready).1, "Upgrading");
        assert!(
            of(&running, ConditionType::Synced)
                .2
                .contains("without a workflow")
        );
        let reasons: Vec<&str> = d.transitions.iter().map(|t| t.reason.as_str()).collect();
        assert_eq!(reasons, ["WorkflowObserved"]);
        assert!(
            d.transitions[0]
                .note
                .contains("upgrade task up-1 (no workflow)")
        );

        let t1 = at("2024-01-01T00:05:00Z");
        let d = decide(
            &running,
            &idle,
            &direct("Failed", Some(60)),
            &watch(),
            t1,
            &rules(),
        );
        let failed = d.write.clone().expect("status");
        assert_eq!(of(&failed, ConditionType::Ready).1, "TaskFailed");
        assert_eq!(of(&failed, ConditionType::Stalled).0, "True");
        let warned: Vec<(&str, bool)> = d
            .transitions
            .iter()
            .map(|t| (t.reason.as_str(), t.warning))
            .collect();
        assert!(warned.contains(&("TaskFailed", true)), "{warned:?}");

        // A workflow appears: the task is no longer what the watch follows.
        let workflow = seen(
            Seen::Workflow(
                workflow("Running", "PreCheck", "Running"),
                AnswerId::following(None, false),
            ),
            Duration::ZERO,
        );
        let t2 = at("2024-01-01T00:10:00Z");
        let d = decide(&failed, &workflow, &nothing(), &watch(), t2, &rules());
        let now = d.write.expect("status");
        assert_eq!(
            (now.workflow_id.as_deref(), now.upgrade_task_id),
            (Some("w1"), None)
        );
    }

    #[test]
    fn the_clusters_name_is_kept_once_told_and_while_the_cluster_is_idle() {
        let told = Diagnosed {
            told: vec![(
                Ask::ClusterName("c".into()),
                Told::ClusterName(Some("prod-eu".into())),
            )],
            complete: true,
        };
        let idle = seen(Seen::NoWorkflowYet, Duration::ZERO);
        let t0 = at("2024-01-01T00:00:00Z");
        let named = decide(&Default::default(), &idle, &told, &watch(), t0, &rules())
            .write
            .expect("status");
        assert_eq!(named.cluster_name.as_deref(), Some("prod-eu"));
        let later = at("2024-01-01T00:01:00Z");
        let kept = decide(&named, &idle, &nothing(), &watch(), later, &rules());
        // An idle watch within the heartbeat writes nothing: its name is no change.
        assert_eq!(kept.write, None);
        let hour = at("2024-01-01T01:00:00Z");
        let heartbeat = decide(&named, &idle, &nothing(), &watch(), hour, &rules());
        let status = heartbeat.write.expect("the heartbeat moves lastSyncTime");
        assert_eq!(status.cluster_name.as_deref(), Some("prod-eu"));
    }

    #[test]
    fn an_unfinished_diagnosis_leaves_the_watch_unsettled() {
        let observed = seen(
            Seen::Workflow(
                workflow("Pending", "PreCheck", "Failed"),
                AnswerId::following(None, false),
            ),
            Duration::ZERO,
        );
        let unfinished = Diagnosed {
            told: Vec::new(),
            complete: false,
        };
        let d = decide(
            &Default::default(),
            &observed,
            &unfinished,
            &watch(),
            at("2024-01-01T00:00:00Z"),
            &rules(),
        );
        assert!(d.write.is_some() && d.settle.is_none());
    }
}
