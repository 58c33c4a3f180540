//! Timelines: the steps a workflow plays, as scenario files write them, and their
//! validation. The built-in timelines are those the built-in scenario files define
//! ([`super::builtin`]). Pure.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::diagnostics::{CheckDef, ClusterDef, PlacedCheck, parse_checks, parse_cluster};
use crate::cce::diagnostics::cluster::ClusterStatus;
use crate::cce::model::{Phase, TaskState, TaskType};

/// One timeline step as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "taskID", default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The task's progress (0–100) at this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// The task's message from this step on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// PreCheck only: the check items ShowPreCheck reports from this step on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckDef>>,
    /// What ShowCluster says from this step on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterDef>,
}

/// When a step happens, in scenario seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Offset {
    AfterCreation(f64),
    AfterStart(f64),
}

/// A task's status change.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskChange {
    pub task: TaskType,
    pub status: TaskState,
    pub task_id: Option<String>,
    /// Scenario seconds from the change to `expireTimeStamp`.
    pub expire_after: Option<f64>,
    pub progress: Option<f64>,
    pub message: Option<String>,
    pub checks: Option<Arc<[PlacedCheck]>>,
}

/// One validated step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub offset: Offset,
    pub task: Option<TaskChange>,
    pub phase: Option<Phase>,
    pub cluster: Option<ClusterStatus>,
}

/// A named, validated list of steps, shared by every workflow that plays it.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub name: String,
    pub steps: Arc<[Step]>,
}

/// Validates a list of steps.
pub fn parse_timeline(name: &str, steps: &[StepDef]) -> Result<Timeline, String> {
    let parsed = steps
        .iter()
        .enumerate()
        .map(|(n, s)| parse_step(s).map_err(|e| format!("timeline {name}, step {n}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Timeline {
        name: name.to_string(),
        steps: Arc::from(parsed),
    })
}

fn seconds(what: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{what} must be a number of seconds >= 0"))
    }
}

fn parse_step(s: &StepDef) -> Result<Step, String> {
    let offset = match (s.after, s.at) {
        (Some(a), None) => Offset::AfterCreation(seconds("after", a)?),
        (None, Some(a)) => Offset::AfterStart(seconds("at", a)?),
        (None, None) => {
            return Err("set after (from the workflow's creation) or at (from start)".into());
        }
        (Some(_), Some(_)) => return Err("set after or at, not both".into()),
    };
    let task = match (&s.task, &s.status) {
        (Some(task), Some(status)) => {
            let task = TaskType::from(task.as_str());
            if s.checks.is_some() && task != TaskType::PreCheck {
                return Err("checks are for PreCheck steps".into());
            }
            if let Some(p) = s.progress
                && !(0.0..=100.0).contains(&p)
            {
                return Err("progress must be a number from 0 to 100".into());
            }
            Some(TaskChange {
                task,
                status: TaskState::from(status.as_str()),
                task_id: s.task_id.clone(),
                expire_after: s
                    .expire_after
                    .map(|e| seconds("expireAfter", e))
                    .transpose()?,
                progress: s.progress,
                message: s.message.clone(),
                checks: s.checks.as_deref().map(parse_checks).transpose()?,
            })
        }
        (None, None) => {
            if s.task_id.is_some()
                || s.expire_after.is_some()
                || s.progress.is_some()
                || s.message.is_some()
                || s.checks.is_some()
            {
                return Err(
                    "taskID, expireAfter, progress, message and checks need task and status".into(),
                );
            }
            None
        }
        _ => return Err("task and status go together".into()),
    };
    let phase = s.phase.as_deref().map(Phase::from);
    let cluster = s.cluster.as_ref().map(parse_cluster).transpose()?;
    if task.is_none() && phase.is_none() && cluster.is_none() {
        return Err("a step changes a task (task + status), the phase or the cluster".into());
    }
    Ok(Step {
        offset,
        task,
        phase,
        cluster,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_fields_are_checked_where_they_belong() {
        let step = |yaml: &str| -> Result<Step, String> {
            let def: StepDef = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
            parse_step(&def)
        };
        let ok = step(
            "{after: 1, task: PreCheck, status: Failed, message: m, checks: [{name: A, node: n1}]}",
        )
        .expect("valid");
        let change = ok.task.expect("task");
        assert_eq!(change.message.as_deref(), Some("m"));
        assert_eq!(change.checks.map(|c| c.len()), Some(1));
        let cluster = step("{after: 1, cluster: {phase: Error, reason: R, message: M}}")
            .expect("a step may change only the cluster");
        assert_eq!(cluster.cluster.and_then(|c| c.reason).as_deref(), Some("R"));
        assert!(step("{after: 1, task: Cluster, status: Pause, progress: 40}").is_ok());
        for bad in [
            "{after: 1, task: Cluster, status: Failed, checks: [{name: A}]}",
            "{after: 1, task: Cluster, status: Running, progress: 101}",
            "{after: 1, progress: 5, phase: Running}",
            "{after: 1, message: m, phase: Running}",
            "{after: 1, cluster: {phase: ''}}",
            "{after: 1, task: PreCheck, status: Failed, checks: [{name: A, color: red}]}",
        ] {
            assert!(step(bad).is_err(), "{bad} accepted");
        }
    }
}
