//! The next status of a watch as a pure function of its old status, what this reconcile
//! observed, the spec generation and the clock: the workflow as CCE reported it, and the
//! conditions that say what it means.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cce::model::{Phase, Workflow};
use crate::crd::UpgradeWorkflowWatchStatus;
use crate::diagnosis::findings::{Ask, Told, annotate, blocking_summary, unavailable_summary};
use crate::failure::Failure;
use crate::limits::{MAX_FIELD_BYTES, MAX_LINES, MAX_TASKS, clean};
use crate::reconciler::core::conditions::{ConditionType, Conditions, Reason, condition};
use crate::reconciler::core::mirror::{Mirrored, mirror_into};

/// What one reconcile learned.
#[derive(Debug)]
pub enum Observation<'a> {
    /// Nothing yet: the watch is new and CCE has not been asked.
    FirstSight,
    /// CCE answered with this workflow.
    Workflow(&'a Workflow),
    /// CCE answered with this workflow, its diagnostic APIs with `told`.
    Diagnosed {
        workflow: &'a Workflow,
        told: &'a [(Ask, Told)],
    },
    /// Following a cluster that has no upgrade workflow, but an upgrade task of its own
    /// (`workflow` is that task as a one-task workflow, `direct::as_workflow`).
    UpgradeTask {
        workflow: &'a Workflow,
        told: &'a [(Ask, Told)],
    },
    /// Following a cluster that has no upgrade workflow yet.
    NoWorkflowYet,
    /// CCE (or the way to it) failed; a permanent failure needs a person.
    Failed(Failure),
    /// `spec.suspend` is true.
    Suspended,
}

/// The computed status, and what of CCE's answer it could not keep as sent.
#[derive(Debug)]
pub struct Next {
    pub status: UpgradeWorkflowWatchStatus,
    pub mirrored: Mirrored,
}

/// Builds the status to store. Workflow data is replaced only by a successful answer, so a
/// failure keeps the last good view; `lastSyncTime` moves only when something else changed
/// or the heartbeat is due.
pub fn next_status(
    old: &UpgradeWorkflowWatchStatus,
    observation: &Observation<'_>,
    generation: Option<i64>,
    now: Timestamp,
    heartbeat: Duration,
) -> Next {
    let mut status = old.clone();
    let mut mirrored = Mirrored::default();
    status.observed_generation = generation;

    let synced = match observation {
        Observation::FirstSight => None,
        Observation::Workflow(wf) => {
            mirrored = mirror_into(&mut status, wf, now);
            annotate(&mut status, &old.tasks, &[]);
            Some(synced_ok(&mirrored, &status))
        }
        Observation::Diagnosed { workflow, told } => {
            mirrored = mirror_into(&mut status, workflow, now);
            annotate(&mut status, &old.tasks, told);
            status.upgrade_task_id = None;
            Some(synced_ok(&mirrored, &status))
        }
        Observation::UpgradeTask { workflow, told } => {
            if old.upgrade_task_id.is_none() {
                // From a workflow (or nothing) to a lone task: nothing of before carries over.
                status = UpgradeWorkflowWatchStatus {
                    cluster_name: old.cluster_name.clone(),
                    last_sync_time: old.last_sync_time.clone(),
                    conditions: old.conditions.clone(),
                    ..Default::default()
                };
            }
            status.workflow_id = old.upgrade_task_id.clone();
            mirrored = mirror_into(&mut status, workflow, now);
            annotate(&mut status, &old.tasks, told);
            status.upgrade_task_id = status.workflow_id.take();
            let (reason, message, ok) = synced_ok(&mirrored, &status);
            let message = match reason {
                Reason::Synced => WITHOUT_WORKFLOW.to_string(),
                _ => format!("{message}; {WITHOUT_WORKFLOW}"),
            };
            Some((reason, message, ok))
        }
        Observation::NoWorkflowYet => {
            status = UpgradeWorkflowWatchStatus {
                observed_generation: generation,
                cluster_name: old.cluster_name.clone(),
                last_sync_time: old.last_sync_time.clone(),
                conditions: old.conditions.clone(),
                ..Default::default()
            };
            Some((
                Reason::NoWorkflow,
                "the cluster has no upgrade workflow yet".to_string(),
                true,
            ))
        }
        Observation::Failed(failure) => Some((
            Reason::Failure(failure.category),
            failure.message.clone(),
            false,
        )),
        Observation::Suspended => Some((
            Reason::Suspended,
            "polling is suspended (spec.suspend is true)".to_string(),
            false,
        )),
    };

    status.last_change_time = if moved(old, &status) {
        Some(Time(now))
    } else {
        old.last_change_time.clone()
    };

    let mut conditions = Conditions::new(old.conditions.clone(), generation, now);
    set_progress(
        &mut conditions,
        status.workflow_phase().as_ref(),
        observation,
        blocking_summary(&status),
    );
    if let Some((reason, message, ok)) = synced {
        conditions.set(ConditionType::Synced, ok, reason, &message);
    }
    status.conditions = conditions.into_list();
    status.message = what_to_look_at(&status);

    if matches!(
        observation,
        Observation::Workflow(_)
            | Observation::Diagnosed { .. }
            | Observation::UpgradeTask { .. }
            | Observation::NoWorkflowYet
    ) && sync_time_due(old, &status, now, heartbeat)
    {
        status.last_sync_time = Some(Time(now));
    }
    Next { status, mirrored }
}

/// After a successful read, `lastSyncTime` moves when something else changed or the
/// heartbeat is due.
fn sync_time_due(
    old: &UpgradeWorkflowWatchStatus,
    status: &UpgradeWorkflowWatchStatus,
    now: Timestamp,
    heartbeat: Duration,
) -> bool {
    let due = old
        .last_sync_time
        .as_ref()
        .is_none_or(|last| now.duration_since(last.0).as_secs_f64() >= heartbeat.as_secs_f64());
    let changed = UpgradeWorkflowWatchStatus {
        last_sync_time: None,
        ..status.clone()
    } != UpgradeWorkflowWatchStatus {
        last_sync_time: None,
        ..old.clone()
    };
    due || changed
}

/// Whether the upgrade itself moved between two statuses: another workflow, another phase,
/// or a task that appeared, started, ended or was retried. Times and sync state do not count.
fn moved(old: &UpgradeWorkflowWatchStatus, new: &UpgradeWorkflowWatchStatus) -> bool {
    let tasks = |s: &UpgradeWorkflowWatchStatus| -> Vec<(String, Option<String>, Option<String>)> {
        s.tasks
            .iter()
            .map(|t| (t.task_type.clone(), t.id.clone(), t.phase.clone()))
            .collect()
    };
    old.workflow_id != new.workflow_id
        || old.upgrade_task_id != new.upgrade_task_id
        || old.phase != new.phase
        || tasks(old) != tasks(new)
}

/// Synced is True whenever CCE answered; its reason and message say what of the answer
/// status could not keep as sent: a bound hit (that is the more serious news, so it leads),
/// timestamps kept raw.
fn synced_ok(mirrored: &Mirrored, status: &UpgradeWorkflowWatchStatus) -> (Reason, String, bool) {
    let mut news = Vec::new();
    if mirrored.bounded() {
        let mut cut = Vec::new();
        if mirrored.omitted_tasks > 0 {
            cut.push(format!(
                "{} more tasks than the {MAX_TASKS} mirrored",
                mirrored.omitted_tasks
            ));
        }
        if mirrored.omitted_lines > 0 {
            cut.push(format!(
                "{} more lines than the {MAX_LINES} mirrored",
                mirrored.omitted_lines
            ));
        }
        if mirrored.cleaned_fields > 0 {
            cut.push(format!(
                "{} values with control characters replaced or cut to {MAX_FIELD_BYTES} bytes",
                mirrored.cleaned_fields
            ));
        }
        news.push(format!(
            "CCE's answer exceeds what a status holds: {}",
            cut.join(", ")
        ));
    }
    if !mirrored.unparsed.is_empty() {
        let fields: Vec<String> = mirrored
            .unparsed
            .iter()
            .map(|u| format!("{}={:?}", u.field, clean(&u.value, 64)))
            .collect();
        news.push(format!(
            "CCE sent timestamps in an unknown format, kept raw in status: {}",
            fields.join(", ")
        ));
    }
    let reason = if mirrored.bounded() {
        Reason::Truncated
    } else if !mirrored.unparsed.is_empty() {
        Reason::UnparsedTimestamp
    } else if let Some(unavailable) = unavailable_summary(status) {
        return (
            Reason::DiagnosticsUnavailable,
            format!("{MIRRORS}; diagnostics unavailable: {unavailable}"),
            true,
        );
    } else {
        return (Reason::Synced, MIRRORS.into(), true);
    };
    (reason, format!("synced, but {}", news.join("; ")), true)
}

const MIRRORS: &str = "status mirrors the workflow as CCE last reported it";
const WITHOUT_WORKFLOW: &str = "the cluster is upgraded without a workflow (for example by \
     Terraform): status mirrors CCE's upgrade task (upgradeTaskID) as a workflow of one \
     Cluster task";

/// One line for `status.message`: a failing read first (the mirrored state may be stale),
/// then what needs a person, then where the upgrade is.
fn what_to_look_at(status: &UpgradeWorkflowWatchStatus) -> Option<String> {
    let of = |type_| condition(status, type_);
    if let Some(synced) = of(ConditionType::Synced).filter(|c| c.status == "False") {
        return Some(format!("{}: {}", synced.reason, synced.message));
    }
    if let Some(stalled) = of(ConditionType::Stalled).filter(|c| c.status == "True") {
        return Some(stalled.message.clone());
    }
    of(ConditionType::Ready).map(|ready| ready.message.clone())
}

/// Ready, Reconciling and Stalled from the workflow phase, or from a permanent failure.
/// `blocking` says what CCE said about the failed tasks.
fn set_progress(
    conditions: &mut Conditions,
    phase: Option<&Phase>,
    observation: &Observation<'_>,
    blocking: Option<String>,
) {
    use Reason::{
        Cancelled, FirstSync, NoWorkflow, NotObserved, TaskFailed, UnknownPhase, UpgradeSucceeded,
    };
    if let Observation::Failed(Failure {
        category,
        message,
        permanent: true,
    }) = observation
        && phase != Some(&Phase::Success)
    {
        let reason = Reason::Failure(*category);
        conditions.set_progress([(false, reason), (false, reason), (true, reason)], message);
        return;
    }
    let waiting = [
        (false, NotObserved),
        (true, FirstSync),
        (false, NotObserved),
    ];
    if matches!(observation, Observation::FirstSight) && phase.is_none() {
        conditions.set_progress(waiting, "waiting for the first answer from CCE");
        return;
    }
    if matches!(observation, Observation::NoWorkflowYet) {
        let none = [
            (false, NoWorkflow),
            (false, NoWorkflow),
            (false, NoWorkflow),
        ];
        conditions.set_progress(none, "the cluster has no upgrade workflow yet");
        return;
    }
    let Some(phase) = phase else {
        // A transient failure before any good answer: still trying.
        conditions.set_progress(waiting, "waiting for a successful answer from CCE");
        return;
    };
    let reason = Reason::of_phase(phase);
    match phase {
        Phase::Success => conditions.set_progress(
            [
                (true, UpgradeSucceeded),
                (false, UpgradeSucceeded),
                (false, UpgradeSucceeded),
            ],
            "the upgrade succeeded",
        ),
        Phase::Init | Phase::Running => conditions.set_progress(
            [(false, reason), (true, reason), (false, reason)],
            &format!("the upgrade is in progress (phase {phase})"),
        ),
        Phase::Pending => {
            // Ready, Reconciling and Stalled say the same: a task failed.
            let waits = "a task of the upgrade failed; CCE waits for a retry or a decision";
            let message = match blocking {
                Some(blocking) => format!("{blocking}; CCE waits for a retry or a decision"),
                None => waits.to_string(),
            };
            conditions.set_progress(
                [(false, TaskFailed), (false, TaskFailed), (true, TaskFailed)],
                &message,
            )
        }
        Phase::Cancel => conditions.set_progress(
            [(false, Cancelled), (false, Cancelled), (true, Cancelled)],
            "the upgrade was cancelled",
        ),
        Phase::Unknown(raw) => conditions.set_progress(
            [
                (false, UnknownPhase),
                (true, UnknownPhase),
                (false, UnknownPhase),
            ],
            &format!(
                "CCE reports phase {raw:?}, which this operator does not know; polling continues"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::SEED_EXAMPLE;
    use crate::failure::Category;
    use crate::reconciler::core::conditions::condition;

    const HEARTBEAT: Duration = Duration::from_secs(300);

    fn at(s: &str) -> Timestamp {
        s.parse().expect("valid")
    }

    fn wf(phase: &str) -> Workflow {
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "w1"},
            "status": {"phase": phase, "pointStatuses": [{"taskType": "Cluster", "status": "Running"}]}
        }))
        .expect("parse")
    }

    fn cond(s: &UpgradeWorkflowWatchStatus, t: ConditionType) -> (String, String) {
        let c = condition(s, t).unwrap_or_else(|| panic!("{t:?} missing"));
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn first_sight_marks_reconciling_with_generation_before_any_cce_call() {
        let next = next_status(
            &Default::default(),
            &Observation::FirstSight,
            Some(1),
            at("2024-01-01T00:00:00Z"),
            HEARTBEAT,
        );
        assert_eq!(next.status.observed_generation, Some(1));
        assert_eq!(
            cond(&next.status, ConditionType::Reconciling),
            ("True".into(), "FirstSync".into())
        );
        assert_eq!(cond(&next.status, ConditionType::Ready).0, "False");
        assert!(condition(&next.status, ConditionType::Synced).is_none());
        assert!(
            next.status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(1))
        );
    }

    #[test]
    fn phases_map_to_kstatus_conditions() {
        let now = at("2024-01-01T00:00:00Z");
        let run = |phase: &str| {
            next_status(
                &Default::default(),
                &Observation::Workflow(&wf(phase)),
                Some(2),
                now,
                HEARTBEAT,
            )
            .status
        };
        let s = run("Running");
        assert_eq!(
            cond(&s, ConditionType::Ready),
            ("False".into(), "Upgrading".into())
        );
        assert_eq!(
            cond(&s, ConditionType::Reconciling),
            ("True".into(), "Upgrading".into())
        );
        assert_eq!(cond(&s, ConditionType::Stalled).0, "False");
        assert_eq!(
            cond(&s, ConditionType::Synced),
            ("True".into(), "Synced".into())
        );
        let s = run("Success");
        assert_eq!(
            cond(&s, ConditionType::Ready),
            ("True".into(), "UpgradeSucceeded".into())
        );
        assert_eq!(cond(&s, ConditionType::Reconciling).0, "False");
        let s = run("Pending");
        assert_eq!(
            cond(&s, ConditionType::Stalled),
            ("True".into(), "TaskFailed".into())
        );
        assert_eq!(
            cond(&s, ConditionType::Ready),
            ("False".into(), "TaskFailed".into())
        );
        let s = run("Cancel");
        assert_eq!(
            cond(&s, ConditionType::Stalled),
            ("True".into(), "Cancelled".into())
        );
        let s = run("Paused now");
        assert_eq!(s.phase.as_deref(), Some("Paused now"));
        assert_eq!(
            cond(&s, ConditionType::Ready),
            ("False".into(), "UnknownPhase".into())
        );
        assert_eq!(cond(&s, ConditionType::Reconciling).0, "True");
    }

    #[test]
    fn a_failure_keeps_the_last_good_workflow_and_says_why() {
        let now = at("2024-01-01T00:00:00Z");
        let seed: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("parse");
        let good = next_status(
            &Default::default(),
            &Observation::Workflow(&seed),
            Some(1),
            now,
            HEARTBEAT,
        )
        .status;
        let failed = Observation::Failed(Failure {
            category: Category::CceUnavailable,
            message: "CCE answered 503".into(),
            permanent: false,
        });
        let later = at("2024-01-01T00:01:00Z");
        let s = next_status(&good, &failed, Some(1), later, HEARTBEAT).status;
        assert_eq!(s.tasks, good.tasks);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(s.last_sync_time, good.last_sync_time);
        assert_eq!(
            cond(&s, ConditionType::Synced),
            ("False".into(), "CceUnavailable".into())
        );
        assert_eq!(
            cond(&s, ConditionType::Stalled),
            ("True".into(), "TaskFailed".into())
        );
        let transition = condition(&s, ConditionType::Synced)
            .expect("synced")
            .last_transition_time
            .clone();
        assert_eq!(transition, Time(later));
    }

    #[test]
    fn a_permanent_failure_stalls() {
        let failed = Observation::Failed(Failure {
            category: Category::WorkflowNotFound,
            message: "CCE has no such workflow".into(),
            permanent: true,
        });
        let s = next_status(
            &Default::default(),
            &failed,
            Some(1),
            at("2024-01-01T00:00:00Z"),
            HEARTBEAT,
        )
        .status;
        assert_eq!(
            cond(&s, ConditionType::Stalled),
            ("True".into(), "WorkflowNotFound".into())
        );
        assert_eq!(
            cond(&s, ConditionType::Synced),
            ("False".into(), "WorkflowNotFound".into())
        );
    }

    #[test]
    fn an_unchanged_workflow_gives_an_identical_status_until_the_heartbeat() {
        let w = wf("Running");
        let t0 = at("2024-01-01T00:00:00Z");
        let first = next_status(
            &Default::default(),
            &Observation::Workflow(&w),
            Some(1),
            t0,
            HEARTBEAT,
        )
        .status;
        let soon = next_status(
            &first,
            &Observation::Workflow(&w),
            Some(1),
            at("2024-01-01T00:04:00Z"),
            HEARTBEAT,
        )
        .status;
        assert_eq!(soon, first);
        let due = next_status(
            &first,
            &Observation::Workflow(&w),
            Some(1),
            at("2024-01-01T00:05:00Z"),
            HEARTBEAT,
        )
        .status;
        assert_ne!(due.last_sync_time, first.last_sync_time);
        assert_eq!(
            condition(&due, ConditionType::Ready),
            condition(&first, ConditionType::Ready)
        );
    }

    #[test]
    fn the_last_change_moves_with_the_phase_or_a_task_and_not_with_polls_or_failures() {
        let t0 = at("2024-01-01T00:00:00Z");
        let t1 = at("2024-01-01T00:01:00Z");
        let t2 = at("2024-01-01T00:02:00Z");
        let first = next_status(
            &Default::default(),
            &Observation::Workflow(&wf("Running")),
            Some(1),
            t0,
            HEARTBEAT,
        )
        .status;
        assert_eq!(first.last_change_time, Some(Time(t0)), "first observation");
        let same = next_status(
            &first,
            &Observation::Workflow(&wf("Running")),
            Some(1),
            t1,
            Duration::ZERO,
        )
        .status;
        assert_ne!(same.last_sync_time, first.last_sync_time, "heartbeat moved");
        assert_eq!(same.last_change_time, Some(Time(t0)), "an unchanged poll");
        let failed = Observation::Failed(Failure {
            category: Category::CceUnavailable,
            message: "CCE answered 503".into(),
            permanent: false,
        });
        let outage = next_status(&same, &failed, Some(1), t1, HEARTBEAT).status;
        assert_eq!(outage.last_change_time, Some(Time(t0)), "a failed poll");

        let task_ended: Workflow = serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "w1"},
            "status": {"phase": "Running", "pointStatuses": [{"taskType": "Cluster", "status": "Success"}]}
        }))
        .expect("parse");
        let ended = next_status(
            &outage,
            &Observation::Workflow(&task_ended),
            Some(1),
            t2,
            HEARTBEAT,
        )
        .status;
        assert_eq!(ended.last_change_time, Some(Time(t2)), "a task ended");
        let done = next_status(
            &ended,
            &Observation::Workflow(&wf("Success")),
            Some(1),
            at("2024-01-01T00:03:00Z"),
            HEARTBEAT,
        )
        .status;
        assert_eq!(
            done.last_change_time,
            Some(Time(at("2024-01-01T00:03:00Z"))),
            "the phase changed"
        );
    }

    #[test]
    fn unparsed_timestamps_are_reported_in_synced() {
        let w: Workflow = serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "w1", "creationTimestamp": "not a time"},
            "status": {"phase": "Running"}
        }))
        .expect("parse");
        let next = next_status(
            &Default::default(),
            &Observation::Workflow(&w),
            Some(1),
            at("2024-01-01T00:00:00Z"),
            HEARTBEAT,
        );
        let synced = condition(&next.status, ConditionType::Synced).expect("synced");
        assert_eq!(synced.status, "True");
        assert_eq!(synced.reason, "UnparsedTimestamp");
        assert!(
            synced.message.contains("workflowCreated=\"not a time\""),
            "{}",
            synced.message
        );
        assert_eq!(next.mirrored.unparsed.len(), 1);
    }
}
