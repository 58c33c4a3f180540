//! One workflow on its timeline: the wire object CCE would return, changed in place by
//! the timeline's steps. Pure: the time is always passed in.
//!
//! Steps are applied lazily, when someone looks at the workflow, each stamped with the
//! instant it was due (so timestamps are right however rarely the workflow is read).
//! Scenario seconds are divided by the speed factor: at speed 60 a 300-second timeline
//! plays in 5 real seconds, and every timestamp is real wall time.
//!
//! Phase: a step may set it; otherwise it follows the tasks (cce-api.md §7): a failed task
//! → Pending; a task running, queued or initialised → Running; all tasks succeeded →
//! Success; some done, none active → Running; nothing started → Init. Cancel is final:
//! a cancelled workflow plays no further steps.
//!
//! A task that runs again after it finished is a new task, as in CCE: new id, new start.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::clock::{plus, scaled};
use super::diagnostics::{self, TaskRun};
use super::ids::derived_uuid;
use super::plan::WorkflowPlan;
use super::timeline::{Offset, Step, TaskChange};
use crate::cce::ApiFamily;
use crate::cce::diagnostics::cluster::ClusterStatus;
use crate::cce::model::{
    LineStatus, Metadata, Phase, Point, PointStatus, TaskState, TaskType, Workflow, WorkflowSpec,
    WorkflowStatus,
};
use crate::cce::time::{self, format_go};

/// How far to move workflows along their timelines (admin API).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Advance {
    /// Scenario seconds; negative delays what has not happened yet.
    Seconds(f64),
    /// Play the next N steps now.
    Steps(u64),
    /// Play every remaining step now.
    ToEnd,
}

/// A workflow as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowView {
    #[serde(rename = "projectID")]
    pub project_id: String,
    pub cluster_type: ApiFamily,
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    #[serde(rename = "workflowID")]
    pub workflow_id: String,
    pub timeline: String,
    /// False until a scenario's `createdAt` has come.
    pub visible: bool,
    pub steps_left: usize,
    /// When the next step is due (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step_at: Option<String>,
    pub workflow: Workflow,
}

#[derive(Debug, Clone)]
pub(super) struct Flow {
    pub(super) cluster_id: String,
    pub(super) wire: Workflow,
    pub(super) timeline: String,
    /// When the workflow appears (scenario `createdAt`).
    pub(super) created: Timestamp,
    pub(super) visible: bool,
    /// Timeline zero; steps are due at `origin + offset`. Advancing moves it back.
    pub(super) origin: Timestamp,
    pub(super) steps: Arc<[Step]>,
    /// `(offset from origin, index into steps)`, in the order steps are applied.
    pub(super) schedule: Vec<(SignedDuration, usize)>,
    pub(super) next: usize,
    /// No event is stamped earlier than this: keeps timestamps monotonic (a cancel, or
    /// the workflow's appearance, never comes after a later step's stamp).
    pub(super) floor: Timestamp,
    pub(super) runs: u32,
    /// Every run of a task, in the order they started, for the diagnostic APIs.
    pub(super) tasks: Vec<TaskRun>,
    /// What ShowCluster says since this workflow's last step that changed it.
    pub(super) cluster_status: Option<ClusterStatus>,
}

fn lines_for(tasks: &[TaskType]) -> Vec<LineStatus> {
    tasks
        .windows(2)
        .map(|w| LineStatus {
            start_point: Some(Point {
                task_type: Some(w[0].clone()),
            }),
            end_point: Some(Point {
                task_type: Some(w[1].clone()),
            }),
            critical: None,
        })
        .collect()
}

pub(super) fn new_wire(
    id: &str,
    cluster_id: &str,
    from: &str,
    to: &str,
    tasks: &[TaskType],
) -> Workflow {
    Workflow {
        kind: Some("WorkFlowTask".into()),
        api_version: Some("v3".into()),
        metadata: Some(Metadata {
            uid: Some(id.into()),
            ..Metadata::default()
        }),
        spec: Some(WorkflowSpec {
            cluster_id: Some(cluster_id.into()),
            cluster_version: Some(from.into()),
            target_version: Some(to.into()),
        }),
        status: Some(WorkflowStatus {
            phase: Some(Phase::Init),
            point_statuses: Some(
                tasks
                    .iter()
                    .map(|t| PointStatus {
                        task_type: Some(t.clone()),
                        ..PointStatus::default()
                    })
                    .collect(),
            ),
            line_statuses: Some(lines_for(tasks)),
        }),
    }
}

/// The phase the tasks imply (module docs).
pub fn derive_phase(points: &[PointStatus]) -> Phase {
    let statuses: Vec<Option<&TaskState>> = points.iter().map(|p| p.status.as_ref()).collect();
    if statuses
        .iter()
        .any(|s| matches!(s, Some(TaskState::Failed)))
    {
        Phase::Pending
    } else if statuses.iter().any(|s| {
        matches!(
            s,
            Some(TaskState::Running | TaskState::Pause | TaskState::Queuing | TaskState::Init)
        )
    }) {
        Phase::Running
    } else if !statuses.is_empty() && statuses.iter().all(|s| s == &Some(&TaskState::Success)) {
        Phase::Success
    } else if statuses.iter().any(Option::is_some) {
        Phase::Running
    } else {
        Phase::Init
    }
}

impl Flow {
    pub(super) fn new(
        plan: &WorkflowPlan,
        wire: Workflow,
        created: Timestamp,
        start: Timestamp,
        speed: f64,
    ) -> Flow {
        let mut schedule: Vec<(SignedDuration, usize)> = plan
            .timeline
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let offset = match step.offset {
                    Offset::AfterCreation(s) => scaled(speed, s),
                    Offset::AfterStart(s) => plus(start, scaled(speed, s)).duration_since(created),
                };
                (offset, i)
            })
            .collect();
        // Stable: steps due at the same instant keep the order they were written in.
        schedule.sort_by_key(|(offset, _)| *offset);
        let tasks = if plan.fixed.is_some() {
            runs_of_points(&wire, created)
        } else {
            Vec::new()
        };
        Flow {
            cluster_id: plan.cluster_id.clone(),
            wire,
            timeline: plan.timeline.name.clone(),
            created,
            visible: false,
            origin: created,
            steps: Arc::clone(&plan.timeline.steps),
            schedule,
            next: 0,
            floor: created,
            runs: 0,
            tasks,
            cluster_status: None,
        }
    }

    pub(super) fn id(&self) -> String {
        self.wire.uid().unwrap_or_default().to_string()
    }

    pub(super) fn phase(&self) -> Option<&Phase> {
        self.wire.phase()
    }

    pub(super) fn is_active(&self) -> bool {
        self.visible && !self.phase().is_some_and(Phase::is_terminal)
    }

    pub(super) fn stamp(&mut self, t: Timestamp) -> String {
        let text = format_go(t);
        let meta = self.wire.metadata.get_or_insert_with(Metadata::default);
        meta.update_timestamp = Some(text.clone());
        text
    }

    /// Plays every step due by `now`.
    pub(super) fn materialize(&mut self, now: Timestamp, speed: f64) {
        if !self.visible {
            if now < self.created {
                return;
            }
            self.visible = true;
            let at = self.created.max(self.floor);
            self.floor = at;
            let text = format_go(at);
            let meta = self.wire.metadata.get_or_insert_with(Metadata::default);
            // A fixed workflow keeps the timestamps it was written with.
            if meta.creation_timestamp.is_none() {
                meta.creation_timestamp = Some(text.clone());
                meta.update_timestamp = Some(text);
            }
        }
        while let Some(&(offset, index)) = self.schedule.get(self.next) {
            if self.phase() == Some(&Phase::Cancel) {
                break;
            }
            let due = plus(self.origin, offset);
            if due > now {
                break;
            }
            let at = due.max(self.floor);
            self.floor = at;
            let step = self.steps[index].clone();
            self.apply(&step, at, speed);
            self.next += 1;
        }
    }

    fn apply(&mut self, step: &Step, at: Timestamp, speed: f64) {
        let text = self.stamp(at);
        let id = self.id();
        if let Some(change) = &step.task {
            self.runs += 1;
            let run = self.runs;
            let status = self.wire.status.get_or_insert_with(WorkflowStatus::default);
            let points = status.point_statuses.get_or_insert_with(Vec::new);
            let index = match points
                .iter()
                .position(|p| p.task_type.as_ref() == Some(&change.task))
            {
                Some(i) => i,
                None => {
                    points.push(PointStatus {
                        task_type: Some(change.task.clone()),
                        ..PointStatus::default()
                    });
                    points.len() - 1
                }
            };
            let point = &mut points[index];
            apply_task(point, change, &id, run, &text, at, speed);
            let point = point.clone();
            self.record_run(&point, change, &text, at);
        }
        if let Some(cluster) = &step.cluster {
            self.cluster_status = Some(cluster.clone());
        }
        let status = self.wire.status.get_or_insert_with(WorkflowStatus::default);
        status.phase = Some(match &step.phase {
            Some(p) => p.clone(),
            None => derive_phase(status.point_statuses.as_deref().unwrap_or_default()),
        });
    }

    /// Brings the run the point now names up to date with the change just applied.
    fn record_run(&mut self, point: &PointStatus, change: &TaskChange, text: &str, at: Timestamp) {
        let Some(task_id) = point.task_id.clone() else {
            return;
        };
        let next = self.next_change_of(&change.task);
        let origin = self.origin;
        let index = match self.tasks.iter().rposition(|r| r.task_id == task_id) {
            Some(i) => i,
            None => {
                self.tasks
                    .push(TaskRun::new(change.task.clone(), task_id, at, text));
                self.tasks.len() - 1
            }
        };
        let run = &mut self.tasks[index];
        let before = run.progress_at(at, origin);
        run.progress = change.progress.unwrap_or(match change.status {
            TaskState::Success => 100.0,
            _ => before,
        });
        run.status = change.status.clone();
        run.changed = at;
        run.updated = Some(text.to_string());
        run.start = point.start_time_stamp.clone();
        run.end = point.end_time_stamp.clone();
        run.expire = point.expire_time_stamp.clone();
        run.heading = next.map(|(offset, next)| {
            let target = next.progress.unwrap_or(match next.status {
                TaskState::Success => 100.0,
                _ => (run.progress + 100.0) / 2.0,
            });
            (offset, target)
        });
        if change.message.is_some() {
            run.message = change.message.clone();
        }
        if change.checks.is_some() {
            run.checks = change.checks.clone();
        }
        if matches!(change.task, TaskType::Cluster | TaskType::Rollback) {
            let to = self
                .wire
                .spec
                .as_ref()
                .and_then(|s| s.target_version.as_deref())
                .unwrap_or_default();
            let run = &self.tasks[index];
            self.cluster_status = diagnostics::cluster_after(run, run.progress, to);
        }
    }

    /// The next step still to come that changes `task`, with when it is due.
    fn next_change_of(&self, task: &TaskType) -> Option<(SignedDuration, TaskChange)> {
        self.schedule
            .iter()
            .skip(self.next + 1)
            .find_map(|(offset, index)| {
                let change = self.steps[*index].task.as_ref()?;
                (&change.task == task).then(|| (*offset, change.clone()))
            })
    }

    pub(super) fn view(&self, project_id: &str, cluster_type: ApiFamily) -> FlowView {
        FlowView {
            project_id: project_id.to_string(),
            cluster_type,
            cluster_id: self.cluster_id.clone(),
            workflow_id: self.id(),
            timeline: self.timeline.clone(),
            visible: self.visible,
            steps_left: self.schedule.len().saturating_sub(self.next),
            next_step_at: self
                .schedule
                .get(self.next)
                .filter(|_| self.phase() != Some(&Phase::Cancel))
                .map(|(offset, _)| plus(self.origin, *offset).max(self.floor).to_string()),
            workflow: self.wire.clone(),
        }
    }

    /// Moves the workflow along its timeline. Going forward moves its whole history back
    /// in time — creation, past events and the steps still to come alike — as if it had
    /// been created that much earlier: every timestamp stays in the past and the spacing
    /// between steps (a pre-check's expiry, say) is what the timeline says. Going back
    /// (negative seconds) only delays the steps still to come.
    pub(super) fn advance(&mut self, now: Timestamp, by: Advance, speed: f64) {
        self.materialize(now, speed);
        let remaining = self.schedule.len().saturating_sub(self.next) as u64;
        let steps = match by {
            Advance::Seconds(s) if s < 0.0 => {
                self.origin = plus(self.origin, scaled(speed, -s));
                return;
            }
            Advance::Seconds(s) => {
                self.travel(scaled(speed, s));
                self.materialize(now, speed);
                return;
            }
            Advance::Steps(n) => n.min(remaining),
            Advance::ToEnd => remaining,
        };
        if !self.visible {
            // Make the workflow appear first; its steps follow.
            self.travel(self.created.duration_since(now).max(SignedDuration::ZERO));
            self.materialize(now, speed);
        }
        if steps == 0 {
            return;
        }
        let last = self.next + steps as usize - 1;
        if let Some(&(offset, _)) = self.schedule.get(last) {
            let due = plus(self.origin, offset);
            self.travel(due.duration_since(now).max(SignedDuration::ZERO));
        }
        self.materialize(now, speed);
    }

    /// Moves the workflow's history and schedule `by` into the past.
    fn travel(&mut self, by: SignedDuration) {
        if by.is_zero() {
            return;
        }
        self.origin = plus(self.origin, -by);
        self.created = plus(self.created, -by);
        self.floor = plus(self.floor, -by);
        if !self.visible {
            return;
        }
        let back = |field: &mut Option<String>| {
            if let Some(t) = field.as_deref().and_then(time::parse) {
                *field = Some(format_go(plus(t, -by)));
            }
        };
        if let Some(meta) = self.wire.metadata.as_mut() {
            back(&mut meta.creation_timestamp);
            back(&mut meta.update_timestamp);
        }
        for run in &mut self.tasks {
            back(&mut run.created);
            back(&mut run.updated);
            back(&mut run.start);
            back(&mut run.end);
            back(&mut run.expire);
            run.changed = plus(run.changed, -by);
        }
        if let Some(points) = self
            .wire
            .status
            .as_mut()
            .and_then(|s| s.point_statuses.as_mut())
        {
            for p in points {
                back(&mut p.start_time_stamp);
                back(&mut p.end_time_stamp);
                back(&mut p.expire_time_stamp);
            }
        }
    }
}

/// The runs a fixed workflow's points name: served as they are, never advancing.
fn runs_of_points(wire: &Workflow, created: Timestamp) -> Vec<TaskRun> {
    let fallback = wire
        .metadata
        .as_ref()
        .and_then(|m| m.creation_timestamp.clone())
        .unwrap_or_else(|| format_go(created));
    wire.points()
        .iter()
        .filter_map(|p| {
            let run = TaskRun::new(p.task_type.clone()?, p.task_id.clone()?, created, &fallback);
            let status = p.status.clone().unwrap_or(TaskState::Init);
            Some(TaskRun {
                progress: if status.means(&TaskState::Success) {
                    100.0
                } else {
                    0.0
                },
                status,
                created: p.start_time_stamp.clone().or(run.created.clone()),
                updated: (p.end_time_stamp.clone())
                    .or(p.start_time_stamp.clone())
                    .or(run.updated.clone()),
                start: p.start_time_stamp.clone(),
                end: p.end_time_stamp.clone(),
                expire: p.expire_time_stamp.clone(),
                ..run
            })
        })
        .collect()
}

fn apply_task(
    point: &mut PointStatus,
    change: &TaskChange,
    workflow_id: &str,
    run: u32,
    text: &str,
    at: Timestamp,
    speed: f64,
) {
    let finished = matches!(point.status, Some(TaskState::Success | TaskState::Failed));
    let fresh_run = |point: &mut PointStatus| {
        // A retried task is a new task in CCE: new id, new start.
        let task_name = change.task.as_str();
        point.task_id = Some(
            change
                .task_id
                .clone()
                .unwrap_or_else(|| derived_uuid(&format!("{workflow_id}/{task_name}/{run}"))),
        );
        point.start_time_stamp = None;
        point.end_time_stamp = None;
        point.expire_time_stamp = None;
    };
    if point.task_id.is_none()
        || (finished && !matches!(change.status, TaskState::Success | TaskState::Failed))
    {
        fresh_run(point);
    } else if let Some(id) = &change.task_id {
        point.task_id = Some(id.clone());
    }
    match &change.status {
        TaskState::Running if point.start_time_stamp.is_none() => {
            point.start_time_stamp = Some(text.to_string());
        }
        TaskState::Success | TaskState::Failed => {
            if point.start_time_stamp.is_none() {
                point.start_time_stamp = Some(text.to_string());
            }
            point.end_time_stamp = Some(text.to_string());
            point.expire_time_stamp = change
                .expire_after
                .map(|e| format_go(plus(at, scaled(speed, e))));
        }
        _ => {}
    }
    point.status = Some(change.status.clone());
}

/// Task statuses that block a cancel (cce-api.md §5: running/init/pause/queue), compared
/// without case because the docs spell them in lower case.
pub(super) fn blocks_cancel(status: &TaskState) -> bool {
    matches!(
        status.as_str().to_ascii_lowercase().as_str(),
        "running" | "init" | "queuing" | "queue" | "pause" | "paused"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_derivation_follows_cce_definitions() {
        let p = |s: Option<TaskState>| PointStatus {
            status: s,
            ..PointStatus::default()
        };
        use TaskState::*;
        assert_eq!(derive_phase(&[p(None), p(None)]), Phase::Init);
        assert_eq!(derive_phase(&[p(Some(Success)), p(None)]), Phase::Running);
        assert_eq!(
            derive_phase(&[p(Some(Success)), p(Some(Queuing))]),
            Phase::Running
        );
        assert_eq!(
            derive_phase(&[p(Some(Failed)), p(Some(Running))]),
            Phase::Pending
        );
        assert_eq!(
            derive_phase(&[p(Some(Success)), p(Some(Success))]),
            Phase::Success
        );
        assert_eq!(derive_phase(&[]), Phase::Init);
    }
}
