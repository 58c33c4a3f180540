//! Events as the difference between the stored status and the new one, and the Kubernetes
//! Event object each becomes. Nothing here remembers anything, so a restart replays nothing
//! and an unchanged workflow says nothing. An Event's name is derived from the watch and
//! the transition's occurrence, so a transition published twice (the operator stopped
//! between publishing and writing status, or a second operator computed it too) is one
//! Event: the API server answers the second create with AlreadyExists.

use crate::reconciler::core::conditions::{ConditionType, is_true, sync_failure};
use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::cce::model::{Phase, TaskState};
use crate::crd::{TaskStatus, UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use crate::diagnosis::findings::{blocking_summary, task_summary};
use crate::duration::{self, Precision};
use crate::limits::{EVENT_LABEL_BYTES, EVENT_NOTE_BYTES, MAX_EVENTS_PER_RECONCILE, clean};

/// Why an Event was published: its `reason`, spelled once. The strings are API (event
/// exporters, `kubectl events --for`, alert rules) and part of each Event's name, so a
/// test pins them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventReason {
    /// The first answer about a workflow (Normal).
    WorkflowObserved,
    /// The workflow's phase changed (Warning for Pending and Cancel).
    PhaseChanged,
    /// The workflow succeeded (Normal).
    UpgradeSucceeded,
    /// A task started running (Normal).
    TaskStarted,
    /// A task succeeded (Normal).
    TaskSucceeded,
    /// A task failed (Warning).
    TaskFailed,
    /// CCE said why a failed task failed, after the failure was published (Warning).
    TaskDiagnosed,
    /// A finished pre-check is too old for CCE to accept the upgrade (Warning).
    PreCheckExpired,
    /// More task transitions than one reconcile publishes, in one summary (Normal).
    TasksChanged,
    /// CCE could not be read after it could (Warning).
    SyncFailed,
    /// CCE can be read again (Normal).
    SyncRecovered,
}

impl EventReason {
    pub const ALL: [EventReason; 11] = [
        Self::WorkflowObserved,
        Self::PhaseChanged,
        Self::UpgradeSucceeded,
        Self::TaskStarted,
        Self::TaskSucceeded,
        Self::TaskFailed,
        Self::TaskDiagnosed,
        Self::PreCheckExpired,
        Self::TasksChanged,
        Self::SyncFailed,
        Self::SyncRecovered,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WorkflowObserved => "WorkflowObserved",
            Self::PhaseChanged => "PhaseChanged",
            Self::UpgradeSucceeded => "UpgradeSucceeded",
            Self::TaskStarted => "TaskStarted",
            Self::TaskSucceeded => "TaskSucceeded",
            Self::TaskFailed => "TaskFailed",
            Self::TaskDiagnosed => "TaskDiagnosed",
            Self::PreCheckExpired => "PreCheckExpired",
            Self::TasksChanged => "TasksChanged",
            Self::SyncFailed => "SyncFailed",
            Self::SyncRecovered => "SyncRecovered",
        }
    }

    /// When it is published, for the printed list of reasons.
    pub const fn when(self) -> &'static str {
        match self {
            Self::WorkflowObserved => "Normal: the first answer about a workflow",
            Self::PhaseChanged => "Normal, Warning for Pending and Cancel: the phase changed",
            Self::UpgradeSucceeded => "Normal: the workflow succeeded",
            Self::TaskStarted => "Normal: a task started",
            Self::TaskSucceeded => "Normal: a task succeeded",
            Self::TaskFailed => "Warning: a task failed",
            Self::TaskDiagnosed => "Warning: CCE said why a task failed, after the failure",
            Self::PreCheckExpired => "Warning: the finished pre-check expired",
            Self::TasksChanged => "Normal: task transitions beyond one reconcile's, summarised",
            Self::SyncFailed => "Warning: CCE could not be read",
            Self::SyncRecovered => "Normal: CCE can be read again",
        }
    }
}

impl PartialEq<&str> for EventReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for EventReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Kubernetes Event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub warning: bool,
    pub reason: EventReason,
    pub note: String,
    /// What the event is about (a task, a phase, the sync). Kubernetes folds events with the
    /// same reason and action into one series, so distinct transitions need distinct actions.
    pub action: String,
    /// Names this occurrence of the transition, the same however often and by however many
    /// operators it is computed, and different when the same change really happens again (a
    /// retried task has a new id, a returning phase a new set of tasks). The Event's name is
    /// derived from it, so publishing twice creates one Event.
    pub occurrence: String,
    /// What it reports on; transitions of single tasks may be folded into a summary.
    pub subject: Subject,
    /// Set when a task ended with known start and end times, for the duration metric.
    pub finished_task: Option<FinishedTask>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The conversation with CCE (SyncFailed, SyncRecovered).
    Sync,
    /// The workflow as a whole: observed, phase changed, succeeded, tasks summarised.
    Workflow,
    /// One task.
    Task,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedTask {
    pub task_type: String,
    pub result: &'static str,
    pub took: std::time::Duration,
}

impl Transition {
    fn new(warning: bool, reason: EventReason, note: String) -> Self {
        Self {
            warning,
            reason,
            note,
            action: "Sync".into(),
            occurrence: String::new(),
            subject: Subject::Sync,
            finished_task: None,
        }
    }

    fn normal(reason: EventReason, note: String) -> Self {
        Self::new(false, reason, note)
    }

    fn warning(reason: EventReason, note: String) -> Self {
        Self::new(true, reason, note)
    }

    fn about(mut self, subject: Subject, action: impl Into<String>) -> Self {
        self.subject = subject;
        self.action = action.into();
        self
    }

    fn once(mut self, occurrence: impl Into<String>) -> Self {
        self.occurrence = occurrence.into();
        self
    }
}

/// The transitions between two statuses, in the order they should be published: at most
/// [`MAX_EVENTS_PER_RECONCILE`], the task transitions beyond that folded into one summary.
pub fn transitions(
    old: &UpgradeWorkflowWatchStatus,
    new: &UpgradeWorkflowWatchStatus,
) -> Vec<Transition> {
    let mut out = Vec::new();
    sync_transitions(old, new, &mut out);
    if followed(new).is_some() && followed(new) != followed(old) {
        let workflow = followed(new).unwrap_or_default().to_string();
        out.push(
            Transition::normal(EventReason::WorkflowObserved, summary(new))
                .about(Subject::Workflow, &workflow)
                .once(workflow),
        );
        // A task that had already failed when the workflow was first seen is a Warning of
        // its own, so Warning-only readers (event exporters, `kubectl events
        // --types=Warning`) learn of it.
        let failed: Vec<TaskStatus> = new
            .tasks
            .iter()
            .filter(|t| t.state() == Some(TaskState::Failed))
            .cloned()
            .collect();
        task_transitions(&[], &failed, &mut out);
        return fold_task_transitions(out);
    }
    let Some(workflow) = followed(new) else {
        return out;
    };
    task_transitions(&old.tasks, &new.tasks, &mut out);
    if new.phase != old.phase {
        let phase = new.phase.as_deref().unwrap_or("");
        let from = old.phase.as_deref().unwrap_or("none");
        let transition = match new.workflow_phase() {
            Some(Phase::Success) => Transition::normal(
                EventReason::UpgradeSucceeded,
                format!(
                    "upgrade to {} succeeded",
                    new.target_version
                        .as_deref()
                        .unwrap_or("the target version")
                ),
            ),
            Some(Phase::Pending | Phase::Cancel) => Transition::warning(
                EventReason::PhaseChanged,
                format!("phase {from} -> {phase}"),
            ),
            _ => Transition::normal(
                EventReason::PhaseChanged,
                format!("phase {from} -> {phase}"),
            ),
        };
        // A phase can return (Running again after a retry), but CCE updates the workflow
        // each time; the tasks tell returns apart should it send no update time.
        let tasks: Vec<String> = new
            .tasks
            .iter()
            .map(|t| format!("{}={}", t.task_type, t.id.as_deref().unwrap_or("-")))
            .collect();
        let updated = new
            .workflow_updated
            .as_ref()
            .map(|t| t.0.to_string())
            .or_else(|| new.workflow_updated_raw.clone())
            .unwrap_or_else(|| tasks.join(","));
        out.push(
            transition
                .about(
                    Subject::Workflow,
                    format!("Phase{}", phase.replace(' ', "")),
                )
                .once(format!("{workflow} {from}->{phase} {updated}")),
        );
    }
    fold_task_transitions(out)
}

/// Keeps every transition that is not about one task, and as many task transitions as fit
/// within [`MAX_EVENTS_PER_RECONCILE`]; the others become one `TasksChanged` summary.
fn fold_task_transitions(mut out: Vec<Transition>) -> Vec<Transition> {
    if out.len() <= MAX_EVENTS_PER_RECONCILE {
        return out;
    }
    let others = out.iter().filter(|t| t.subject != Subject::Task).count();
    let mut room = MAX_EVENTS_PER_RECONCILE.saturating_sub(others + 1);
    let mut folded = Vec::new();
    out.retain(|t| {
        if t.subject != Subject::Task {
            return true;
        }
        if room > 0 {
            room -= 1;
            return true;
        }
        folded.push(t.clone());
        false
    });
    let mut by_reason: Vec<(EventReason, usize)> = Vec::new();
    for t in &folded {
        match by_reason.iter_mut().find(|(r, _)| *r == t.reason) {
            Some((_, n)) => *n += 1,
            None => by_reason.push((t.reason, 1)),
        }
    }
    let counts: Vec<String> = by_reason
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    let subjects: Vec<&str> = folded.iter().map(|t| t.action.as_str()).collect();
    let summary = Transition::new(
        folded.iter().any(|t| t.warning),
        EventReason::TasksChanged,
        format!(
            "{} more task transitions: {}; tasks {}",
            folded.len(),
            counts.join(", "),
            subjects.join(", ")
        ),
    )
    .about(Subject::Workflow, "Tasks");
    let occurrence: Vec<String> = folded
        .iter()
        .map(|t| format!("{} {}", t.reason, t.occurrence))
        .collect();
    out.push(summary.once(occurrence.join("|")));
    out
}

fn sync_transitions(
    old: &UpgradeWorkflowWatchStatus,
    new: &UpgradeWorkflowWatchStatus,
    out: &mut Vec<Transition>,
) {
    // The outage (or the recovery) is named by when the state it ends began.
    let since = old
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Synced.as_str())
        .map(|c| c.last_transition_time.0.to_string())
        .unwrap_or_default();
    match (sync_failure(old), sync_failure(new)) {
        (None, Some(c)) => out.push(
            Transition::warning(
                EventReason::SyncFailed,
                format!("{}: {}", c.reason, c.message),
            )
            .once(format!("failed after {since}")),
        ),
        (Some(_), None) if is_true(new, ConditionType::Synced) => out.push(
            Transition::normal(
                EventReason::SyncRecovered,
                "CCE answers again; status is current".into(),
            )
            .once(format!("recovered after {since}")),
        ),
        _ => {}
    }
}

fn task_transitions(old: &[TaskStatus], new: &[TaskStatus], out: &mut Vec<Transition>) {
    for (index, task) in new.iter().enumerate() {
        let before = matching_task(old, new, index);
        let state = task.phase.as_deref();
        let was = before.and_then(|t| t.phase.as_deref());
        let restarted = before.is_some_and(|b| b.id.is_some() && b.id != task.id);
        let changed = state != was || restarted;
        let action = format!("{}/{}", task.task_type, task.id.as_deref().unwrap_or("-"));
        // A task run again under the same id starts again at another time.
        let started = task.start_time.as_ref().map(|t| t.0.to_string());
        let occurrence = format!(
            "{action} {} {}",
            state.unwrap_or("-"),
            started.as_deref().unwrap_or("-")
        );
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
            let transition = match task.state() {
                Some(TaskState::Running) => Some(Transition::normal(
                    EventReason::TaskStarted,
                    task_note(task, "started"),
                )),
                Some(TaskState::Success) => Some(Transition {
                    finished_task: ended("Success"),
                    ..Transition::normal(EventReason::TaskSucceeded, ended_note(task, "succeeded"))
                }),
                Some(TaskState::Failed) => Some(Transition {
                    finished_task: ended("Failed"),
                    ..Transition::warning(EventReason::TaskFailed, ended_note(task, "failed"))
                }),
                _ => None,
            };
            if let Some(t) = transition {
                out.push(t.about(Subject::Task, &action).once(&occurrence));
            }
        } else if task.state() == Some(TaskState::Failed)
            && let Some(summary) = task_summary(task)
            && before.is_some_and(|b| b.id == task.id && task_summary(b).is_none())
        {
            // CCE said why only after the failure itself was published: the one Warning
            // that carries the reason.
            out.push(
                Transition::warning(
                    EventReason::TaskDiagnosed,
                    format!("{}: {summary}", task_note(task, "failed")),
                )
                .about(Subject::Task, &action)
                .once(format!("{occurrence} diagnosed")),
            );
        }
        let expired = task.result_expired == Some(true);
        let was_expired = before.is_some_and(|b| b.result_expired == Some(true));
        if expired && !was_expired {
            out.push(Transition::warning(
                EventReason::PreCheckExpired,
                format!(
                    "the pre-check result{} expired at {} before the Cluster task started; CCE needs a new pre-check",
                    task.id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default(),
                    task.expire_time.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
                ),
            ).about(Subject::Task, &action).once(format!("{action} expired")));
        }
    }
}

/// The same task in the old list: the n-th task of that type, so repeated types line up.
/// Quadratic in the number of tasks, which status bounds (`limits::MAX_TASKS`).
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

/// The note of a task that ended: what happened, and what CCE said about it.
fn ended_note(task: &TaskStatus, verb: &str) -> String {
    let note = task_note(task, verb);
    match task_summary(task) {
        Some(summary) => format!("{note}: {summary}"),
        None => note,
    }
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

/// What the watch follows: a workflow, or an upgrade task started without one.
fn followed(s: &UpgradeWorkflowWatchStatus) -> Option<&str> {
    s.workflow_id.as_deref().or(s.upgrade_task_id.as_deref())
}

fn summary(s: &UpgradeWorkflowWatchStatus) -> String {
    let what = match (&s.workflow_id, &s.upgrade_task_id) {
        (None, Some(task)) => format!("upgrade task {task} (no workflow)"),
        _ => format!("workflow {}", s.workflow_id.as_deref().unwrap_or("?")),
    };
    let overview = format!(
        "watching {what} ({} -> {}): phase {}, {} tasks succeeded{}",
        s.from_version.as_deref().unwrap_or("?"),
        s.target_version.as_deref().unwrap_or("?"),
        s.phase.as_deref().unwrap_or("unknown"),
        s.progress.as_deref().unwrap_or("0/0"),
        s.current_task
            .as_deref()
            .map(|t| format!(", current task {t}"))
            .unwrap_or_default(),
    );
    match blocking_summary(s) {
        Some(blocking) => format!("{overview}; {blocking}"),
        None => overview,
    }
}

/// The longest name the API server accepts (a DNS subdomain).
const MAX_NAME_BYTES: usize = 253;
/// Hex digits of the digest that ends every Event name.
const DIGEST_HEX: usize = 16;

/// The Event for `transition` about `watch`, every field within what the API server
/// accepts.
pub fn event_for(
    watch: &UpgradeWorkflowWatch,
    transition: &Transition,
    now: Timestamp,
    controller: &str,
    instance: &str,
) -> KubeEvent {
    KubeEvent {
        metadata: ObjectMeta {
            name: Some(event_name(
                &watch.name_any(),
                watch.uid().as_deref().unwrap_or_default(),
                transition,
            )),
            namespace: watch.namespace(),
            ..ObjectMeta::default()
        },
        action: Some(clean(&transition.action, EVENT_LABEL_BYTES).into_owned()),
        reason: Some(transition.reason.as_str().to_string()),
        note: Some(clean(&transition.note, EVENT_NOTE_BYTES).into_owned()),
        type_: Some(
            if transition.warning {
                "Warning"
            } else {
                "Normal"
            }
            .to_string(),
        ),
        event_time: Some(MicroTime(now)),
        regarding: Some(watch.object_ref(&())),
        reporting_controller: Some(controller.to_string()),
        reporting_instance: Some(instance.to_string()),
        ..KubeEvent::default()
    }
}

/// `<watch name>.<digest of uid, reason and occurrence>`: the same for the same transition
/// of the same watch, a valid name for a watch name of any length.
pub fn event_name(watch_name: &str, uid: &str, transition: &Transition) -> String {
    let mut hash = Sha256::new();
    for part in [uid, transition.reason.as_str(), &transition.occurrence] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hex::encode(hash.finalize());
    let room = MAX_NAME_BYTES - DIGEST_HEX - 1;
    let mut prefix = &watch_name[..watch_name.len().min(room)];
    // A name ends in an alphanumeric character; the watch's name is already a DNS subdomain.
    prefix = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        return digest[..DIGEST_HEX].to_string();
    }
    format!("{prefix}.{}", &digest[..DIGEST_HEX])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::Workflow;
    use crate::failure::{Category, Failure};
    use crate::reconciler::core::status::{Observation, next_status};
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
        t.iter().map(|t| t.reason.as_str()).collect()
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
    fn a_workflow_first_seen_with_a_failed_task_is_also_a_warning_and_only_once() {
        let new = status_of(
            &Default::default(),
            wf(
                "Pending",
                &[("PreCheck", Some("Success")), ("Cluster", Some("Failed"))],
            ),
        );
        let t = transitions(&Default::default(), &new);
        assert_eq!(reasons(&t), vec!["WorkflowObserved", "TaskFailed"]);
        assert!(t[1].warning && t[1].note.contains("task Cluster"), "{t:?}");
        assert!(transitions(&new, &new).is_empty());
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
        let fail = |prev: &UpgradeWorkflowWatchStatus, category| {
            let obs = Observation::Failed(Failure::transient(category, "boom"));
            next_status(prev, &obs, Some(1), now, Duration::from_secs(300)).status
        };
        let f1 = fail(&good, Category::CceUnavailable);
        assert_eq!(reasons(&transitions(&good, &f1)), vec!["SyncFailed"]);
        let f2 = fail(&f1, Category::Timeout);
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

    #[test]
    fn a_reason_told_late_is_one_warning_for_a_failed_task_and_nothing_for_a_success() {
        use crate::crd::{CheckFinding, CheckReport};
        let checked = |s: &UpgradeWorkflowWatchStatus| {
            let mut s = s.clone();
            s.tasks[0].checks = Some(CheckReport {
                phase: Some("Failed".into()),
                items: vec![CheckFinding {
                    name: Some("NodeReady".into()),
                    kind: Some("Exception".into()),
                    ..Default::default()
                }],
                ..Default::default()
            });
            s
        };
        let failed = status_of(
            &Default::default(),
            wf("Pending", &[("PreCheck", Some("Failed"))]),
        );
        let told = checked(&failed);
        let late = transitions(&failed, &told);
        assert_eq!(reasons(&late), vec!["TaskDiagnosed"]);
        assert!(late[0].warning && late[0].note.contains("must fix: NodeReady"));
        assert!(
            transitions(&told, &told).is_empty(),
            "a replay says nothing"
        );
        let succeeded = status_of(
            &Default::default(),
            wf("Running", &[("PreCheck", Some("Success"))]),
        );
        assert!(transitions(&succeeded, &checked(&succeeded)).is_empty());
    }

    fn occurrences(t: &[Transition]) -> Vec<String> {
        t.iter().map(|t| t.occurrence.clone()).collect()
    }

    #[test]
    fn the_same_change_has_the_same_occurrence_and_a_repeated_one_another() {
        let s0 = status_of(
            &Default::default(),
            wf("Running", &[("Cluster", Some("Running"))]),
        );
        let failed = wf("Pending", &[("Cluster", Some("Failed"))]);
        let s1 = status_of(&s0, failed.clone());
        let first = transitions(&s0, &s1);
        // Computed again (after a crash, or by a second operator): the same names.
        assert_eq!(occurrences(&first), occurrences(&transitions(&s0, &s1)));
        assert!(first.iter().all(|t| !t.occurrence.is_empty()));
        // The task is retried under a new id and fails again, CCE updating the workflow.
        let mut retried = wf("Running", &[("Cluster", Some("Running"))]);
        retried["status"]["pointStatuses"][0]["taskID"] = "Cluster-2".into();
        retried["metadata"]["updateTimestamp"] = "2024-01-01 00:05:00 +0000 UTC".into();
        let s2 = status_of(&s1, retried);
        let mut failed_again = failed;
        failed_again["status"]["pointStatuses"][0]["taskID"] = "Cluster-2".into();
        failed_again["metadata"]["updateTimestamp"] = "2024-01-01 00:09:00 +0000 UTC".into();
        let s3 = status_of(&s2, failed_again);
        let again = transitions(&s2, &s3);
        assert_eq!(reasons(&again), reasons(&first));
        for (a, b) in occurrences(&first).iter().zip(occurrences(&again).iter()) {
            assert_ne!(a, b);
        }
    }

    #[test]
    fn a_burst_of_task_changes_becomes_at_most_a_few_events_with_a_summary() {
        let tasks: Vec<(String, Option<&str>)> = (0..40).map(|i| (format!("T{i}"), None)).collect();
        let pending: Vec<(&str, Option<&str>)> =
            tasks.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        let s0 = status_of(&Default::default(), wf("Running", &pending));
        let started: Vec<(&str, Option<&str>)> = tasks
            .iter()
            .map(|(t, _)| (t.as_str(), Some("Failed")))
            .collect();
        let s1 = status_of(&s0, wf("Pending", &started));
        let out = transitions(&s0, &s1);
        assert_eq!(out.len(), MAX_EVENTS_PER_RECONCILE);
        let summary = out.last().expect("summary");
        assert_eq!(summary.reason, "TasksChanged");
        assert!(summary.warning);
        assert!(
            summary
                .note
                .starts_with("37 more task transitions: 37 TaskFailed"),
            "{}",
            summary.note
        );
        assert!(out.iter().any(|t| t.reason == "PhaseChanged"));
        assert_eq!(transitions(&s0, &s1), out, "folding is deterministic");
    }

    mod object {
        use super::super::*;

        fn transition(reason: EventReason, occurrence: &str) -> Transition {
            Transition {
                warning: false,
                reason,
                note: "n".into(),
                action: "a".into(),
                occurrence: occurrence.into(),
                subject: Subject::Task,
                finished_task: None,
            }
        }

        fn watch(name: &str) -> UpgradeWorkflowWatch {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "cce.upgradewatch.io/v1alpha1",
                "kind": "UpgradeWorkflowWatch",
                "metadata": {"name": name, "namespace": "ns", "uid": "u-1"},
                "spec": {"region": "r", "projectID": "p", "clusterID": "c"}
            }))
            .expect("watch")
        }

        fn is_dns_subdomain(name: &str) -> bool {
            name.len() <= MAX_NAME_BYTES
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        }

        #[test]
        fn the_same_transition_has_the_same_name_and_another_one_another() {
            let a = transition(EventReason::TaskStarted, "Cluster/1 Running");
            assert_eq!(event_name("w", "u", &a), event_name("w", "u", &a.clone()));
            assert_ne!(
                event_name("w", "u", &a),
                event_name(
                    "w",
                    "u",
                    &transition(EventReason::TaskStarted, "Cluster/2 Running")
                )
            );
            assert_ne!(
                event_name("w", "u", &a),
                event_name(
                    "w",
                    "u",
                    &transition(EventReason::TaskFailed, "Cluster/1 Running")
                )
            );
            assert_ne!(event_name("w", "u", &a), event_name("w", "other-uid", &a));
        }

        #[test]
        fn names_are_valid_for_any_watch_name() {
            let t = transition(EventReason::PhaseChanged, "x");
            let long = format!("{}-{}", "a".repeat(200), "b.c".repeat(20));
            for name in [
                "w",
                "a.b",
                long.as_str(),
                &"x".repeat(253),
                &format!("{}-z", "y".repeat(235)),
            ] {
                let event = event_name(name, "u", &t);
                assert!(is_dns_subdomain(&event), "{event} ({} bytes)", event.len());
            }
        }

        #[test]
        fn every_field_fits_what_the_api_server_accepts() {
            let mut t = transition(EventReason::TasksChanged, "x");
            t.note = "é".repeat(5000);
            t.action = "\u{1b}[2J".repeat(100);
            let event = event_for(&watch("w"), &t, Timestamp::UNIX_EPOCH, "c", "i");
            assert!(
                event
                    .note
                    .as_deref()
                    .is_some_and(|n| n.len() <= EVENT_NOTE_BYTES)
            );
            let action = event.action.unwrap_or_default();
            assert!(action.len() <= EVENT_LABEL_BYTES && !action.contains('\u{1b}'));
            assert_eq!(event.metadata.namespace.as_deref(), Some("ns"));
            assert!(event.metadata.name.is_some_and(|n| n.starts_with("w.")));
        }
    }

    #[test]
    fn every_event_reason_is_listed_once_and_its_string_is_pinned() {
        assert_eq!(
            EventReason::ALL.map(EventReason::as_str),
            [
                "WorkflowObserved",
                "PhaseChanged",
                "UpgradeSucceeded",
                "TaskStarted",
                "TaskSucceeded",
                "TaskFailed",
                "TaskDiagnosed",
                "PreCheckExpired",
                "TasksChanged",
                "SyncFailed",
                "SyncRecovered",
            ]
        );
        for reason in EventReason::ALL {
            assert_eq!(format!("{reason:?}"), reason.as_str());
        }
    }
}
