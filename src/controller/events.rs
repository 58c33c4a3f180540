//! Events as the difference between the stored status and the new one. Nothing here
//! remembers anything, so a restart replays nothing and an unchanged workflow says nothing.

use super::conditions::{ConditionType, is_true, sync_failure};
use crate::cce::model::{Phase, TaskState};
use crate::crd::{TaskStatus, UpgradeWorkflowWatchStatus};
use crate::duration::{self, Precision};

/// One Kubernetes Event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
    /// What the event is about (a task, a phase, the sync). Kubernetes folds events with the
    /// same reason and action into one series, so distinct transitions need distinct actions.
    pub action: String,
    /// Set when a task ended with known start and end times, for the duration metric.
    pub finished_task: Option<FinishedTask>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedTask {
    pub task_type: String,
    pub result: &'static str,
    pub took: std::time::Duration,
}

impl Transition {
    fn normal(reason: &'static str, note: String) -> Self {
        Self {
            warning: false,
            reason,
            note,
            action: "Sync".into(),
            finished_task: None,
        }
    }

    fn about(mut self, action: impl Into<String>) -> Self {
        // The API server caps an event's action at 128 characters.
        self.action = action.into().chars().take(120).collect();
        self
    }

    fn warning(reason: &'static str, note: String) -> Self {
        Self {
            warning: true,
            reason,
            note,
            action: "Sync".into(),
            finished_task: None,
        }
    }
}

/// The transitions between two statuses, in the order they should be published.
pub fn transitions(
    old: &UpgradeWorkflowWatchStatus,
    new: &UpgradeWorkflowWatchStatus,
) -> Vec<Transition> {
    let mut out = Vec::new();
    sync_transitions(old, new, &mut out);
    if new.workflow_id.is_some() && new.workflow_id != old.workflow_id {
        let workflow = new.workflow_id.clone().unwrap_or_default();
        out.push(Transition::normal("WorkflowObserved", summary(new)).about(workflow));
        return out;
    }
    if new.workflow_id.is_none() {
        return out;
    }
    task_transitions(&old.tasks, &new.tasks, &mut out);
    if new.phase != old.phase {
        let phase = new.phase.as_deref().unwrap_or("");
        let from = old.phase.as_deref().unwrap_or("none");
        let transition = match new.workflow_phase() {
            Some(Phase::Success) => Transition::normal(
                "UpgradeSucceeded",
                format!(
                    "upgrade to {} succeeded",
                    new.target_version
                        .as_deref()
                        .unwrap_or("the target version")
                ),
            ),
            Some(Phase::Pending | Phase::Cancel) => {
                Transition::warning("PhaseChanged", format!("phase {from} -> {phase}"))
            }
            _ => Transition::normal("PhaseChanged", format!("phase {from} -> {phase}")),
        };
        out.push(transition.about(format!("Phase{}", phase.replace(' ', ""))));
    }
    out
}

fn sync_transitions(
    old: &UpgradeWorkflowWatchStatus,
    new: &UpgradeWorkflowWatchStatus,
    out: &mut Vec<Transition>,
) {
    match (sync_failure(old), sync_failure(new)) {
        (None, Some(c)) => out.push(Transition::warning(
            "SyncFailed",
            format!("{}: {}", c.reason, c.message),
        )),
        (Some(_), None) if is_true(new, ConditionType::Synced) => out.push(Transition::normal(
            "SyncRecovered",
            "CCE answers again; status is current".into(),
        )),
        _ => {}
    }
}

fn task_transitions(old: &[TaskStatus], new: &[TaskStatus], out: &mut Vec<Transition>) {
    for (index, task) in new.iter().enumerate() {
        let before = matching_task(old, new, index);
        let state = task.status.as_deref();
        let was = before.and_then(|t| t.status.as_deref());
        let restarted = before.is_some_and(|b| b.id.is_some() && b.id != task.id);
        let changed = state != was || restarted;
        let action = format!("{}/{}", task.task_type, task.id.as_deref().unwrap_or("-"));
        if changed {
            let ended = |result| {
                let took = match (&task.start_time, &task.end_time) {
                    (Some(start), Some(end)) => end.0.duration_since(start.0).try_into().ok(),
                    _ => None,
                };
                took.map(|took| FinishedTask {
                    task_type: task.task_type.clone(),
                    result,
                    took,
                })
            };
            match task.state() {
                Some(TaskState::Running) => out.push(
                    Transition::normal("TaskStarted", task_note(task, "started")).about(&action),
                ),
                Some(TaskState::Success) => out.push(Transition {
                    finished_task: ended("Success"),
                    ..Transition::normal("TaskSucceeded", task_note(task, "succeeded"))
                        .about(&action)
                }),
                Some(TaskState::Failed) => out.push(Transition {
                    finished_task: ended("Failed"),
                    ..Transition::warning("TaskFailed", task_note(task, "failed")).about(&action)
                }),
                _ => {}
            }
        }
        let expired = task.result_expired == Some(true);
        let was_expired = before.is_some_and(|b| b.result_expired == Some(true));
        if expired && !was_expired {
            out.push(Transition::warning(
                "PreCheckExpired",
                format!(
                    "the pre-check result{} expired at {} before the Cluster task started; CCE needs a new pre-check",
                    task.id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default(),
                    task.expire_time.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
                ),
            ).about(&action));
        }
    }
}

/// The same task in the old list: the n-th task of that type, so repeated types line up.
fn matching_task<'a>(
    old: &'a [TaskStatus],
    new: &[TaskStatus],
    index: usize,
) -> Option<&'a TaskStatus> {
    let task_type = &new[index].task_type;
    let nth = new[..index]
        .iter()
        .filter(|t| &t.task_type == task_type)
        .count();
    old.iter().filter(|t| &t.task_type == task_type).nth(nth)
}

fn task_note(task: &TaskStatus, verb: &str) -> String {
    let mut note = format!("task {}", task.task_type);
    if let Some(id) = &task.id {
        note.push_str(&format!(" ({id})"));
    }
    note.push(' ');
    note.push_str(verb);
    if let (Some(start), Some(end)) = (&task.start_time, &task.end_time) {
        let took = duration::format(duration::elapsed(start.0, end.0), Precision::Seconds);
        note.push_str(&format!(" after {took}"));
    }
    note
}

fn summary(s: &UpgradeWorkflowWatchStatus) -> String {
    format!(
        "watching workflow {} ({} -> {}): phase {}, {} tasks succeeded{}",
        s.workflow_id.as_deref().unwrap_or("?"),
        s.cluster_version.as_deref().unwrap_or("?"),
        s.target_version.as_deref().unwrap_or("?"),
        s.phase.as_deref().unwrap_or("unknown"),
        s.progress.as_deref().unwrap_or("0/0"),
        s.current_task
            .as_deref()
            .map(|t| format!(", current task {t}"))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::Workflow;
    use crate::controller::status::{Observation, next_status};
    use jiff::Timestamp;
    use std::time::Duration;

    fn status_of(
        prev: &UpgradeWorkflowWatchStatus,
        json: serde_json::Value,
    ) -> UpgradeWorkflowWatchStatus {
        let wf: Workflow = serde_json::from_value(json).expect("parse");
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().expect("valid");
        next_status(
            prev,
            &Observation::Workflow(&wf),
            Some(1),
            now,
            Duration::from_secs(300),
        )
        .status
    }

    fn wf(phase: &str, tasks: &[(&str, Option<&str>)]) -> serde_json::Value {
        let points: Vec<_> = tasks
            .iter()
            .map(|(t, s)| match s {
                Some(s) => {
                    serde_json::json!({"taskType": t, "taskID": format!("{t}-1"), "status": s})
                }
                None => serde_json::json!({"taskType": t}),
            })
            .collect();
        serde_json::json!({"metadata": {"uid": "w1"}, "spec": {"targetVersion": "v1.30"},
            "status": {"phase": phase, "pointStatuses": points}})
    }

    fn reasons(t: &[Transition]) -> Vec<&'static str> {
        t.iter().map(|t| t.reason).collect()
    }

    #[test]
    fn first_observation_is_one_summary_event() {
        let new = status_of(
            &Default::default(),
            wf(
                "Running",
                &[("PreCheck", Some("Success")), ("Cluster", Some("Running"))],
            ),
        );
        let t = transitions(&Default::default(), &new);
        assert_eq!(reasons(&t), vec!["WorkflowObserved"]);
        assert!(
            t[0].note
                .contains("phase Running, 1/2 tasks succeeded, current task Cluster"),
            "{}",
            t[0].note
        );
    }

    #[test]
    fn a_success_run_emits_each_transition_once() {
        let s0 = status_of(
            &Default::default(),
            wf("Init", &[("PreCheck", None), ("Cluster", None)]),
        );
        let s1 = status_of(
            &s0,
            wf(
                "Running",
                &[("PreCheck", Some("Running")), ("Cluster", None)],
            ),
        );
        assert_eq!(
            reasons(&transitions(&s0, &s1)),
            vec!["TaskStarted", "PhaseChanged"]
        );
        let s2 = status_of(
            &s1,
            wf(
                "Running",
                &[("PreCheck", Some("Success")), ("Cluster", Some("Running"))],
            ),
        );
        assert_eq!(
            reasons(&transitions(&s1, &s2)),
            vec!["TaskSucceeded", "TaskStarted"]
        );
        let s3 = status_of(
            &s2,
            wf(
                "Success",
                &[("PreCheck", Some("Success")), ("Cluster", Some("Success"))],
            ),
        );
        assert_eq!(
            reasons(&transitions(&s2, &s3)),
            vec!["TaskSucceeded", "UpgradeSucceeded"]
        );
        assert!(transitions(&s3, &s3).is_empty());
    }

    #[test]
    fn failed_cluster_task_warns_once_and_pending_is_a_warning() {
        let s0 = status_of(
            &Default::default(),
            wf("Running", &[("Cluster", Some("Running"))]),
        );
        let s1 = status_of(&s0, wf("Pending", &[("Cluster", Some("Failed"))]));
        let t = transitions(&s0, &s1);
        assert_eq!(reasons(&t), vec!["TaskFailed", "PhaseChanged"]);
        assert!(t.iter().all(|t| t.warning));
        assert!(transitions(&s1, &s1).is_empty());
    }

    #[test]
    fn one_sync_failed_per_outage_and_one_recovery() {
        let good = status_of(
            &Default::default(),
            wf("Running", &[("Cluster", Some("Running"))]),
        );
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().expect("valid");
        let fail = |prev: &UpgradeWorkflowWatchStatus, reason| {
            let obs = Observation::Failed {
                reason,
                message: "boom".into(),
                permanent: false,
            };
            next_status(prev, &obs, Some(1), now, Duration::from_secs(300)).status
        };
        let f1 = fail(&good, "CceUnavailable");
        assert_eq!(reasons(&transitions(&good, &f1)), vec!["SyncFailed"]);
        let f2 = fail(&f1, "Timeout");
        assert!(transitions(&f1, &f2).is_empty());
        let back = status_of(&f2, wf("Running", &[("Cluster", Some("Running"))]));
        assert_eq!(reasons(&transitions(&f2, &back)), vec!["SyncRecovered"]);
    }

    #[test]
    fn switching_workflow_is_one_observation() {
        let s0 = status_of(
            &Default::default(),
            wf("Success", &[("Cluster", Some("Success"))]),
        );
        let mut other = wf("Init", &[("Cluster", None)]);
        other["metadata"]["uid"] = "w2".into();
        let s1 = status_of(&s0, other);
        assert_eq!(reasons(&transitions(&s0, &s1)), vec!["WorkflowObserved"]);
    }

    #[test]
    fn a_retried_task_starts_again() {
        let s0 = status_of(
            &Default::default(),
            wf("Pending", &[("Cluster", Some("Failed"))]),
        );
        let mut retry = wf("Running", &[("Cluster", Some("Running"))]);
        retry["status"]["pointStatuses"][0]["taskID"] = "Cluster-2".into();
        let s1 = status_of(&s0, retry);
        assert_eq!(
            reasons(&transitions(&s0, &s1)),
            vec!["TaskStarted", "PhaseChanged"]
        );
    }
}
