//! Timelines: the steps a workflow plays, as scenario files write them and validated, and
//! the built-in timelines that scenarios and `--on-create` name.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
}

/// One validated step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub offset: Offset,
    pub task: Option<TaskChange>,
    pub phase: Option<Phase>,
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
        (Some(task), Some(status)) => Some(TaskChange {
            task: TaskType::from(task.as_str()),
            status: TaskState::from(status.as_str()),
            task_id: s.task_id.clone(),
            expire_after: s
                .expire_after
                .map(|e| seconds("expireAfter", e))
                .transpose()?,
        }),
        (None, None) => {
            if s.task_id.is_some() || s.expire_after.is_some() {
                return Err("taskID and expireAfter need task and status".into());
            }
            None
        }
        _ => return Err("task and status go together".into()),
    };
    let phase = s.phase.as_deref().map(Phase::from);
    if task.is_none() && phase.is_none() {
        return Err("a step changes a task (task + status), the phase, or both".into());
    }
    Ok(Step {
        offset,
        task,
        phase,
    })
}

/// Names of the built-in timelines (usable in scenario files and `--on-create`).
pub const BUILTIN: [&str; 4] = [
    "success",
    "cluster-fails-then-retry",
    "cancel",
    "precheck-expires",
];

fn task(after: f64, task: &str, status: &str) -> StepDef {
    StepDef {
        after: Some(after),
        task: Some(task.into()),
        status: Some(status.into()),
        ..StepDef::default()
    }
}

fn passed_precheck(after: f64, expire_after: f64) -> StepDef {
    StepDef {
        expire_after: Some(expire_after),
        ..task(after, "PreCheck", "Success")
    }
}

fn phase(after: f64, phase: &str) -> StepDef {
    StepDef {
        after: Some(after),
        phase: Some(phase.into()),
        ..StepDef::default()
    }
}

/// A built-in timeline by name ([`BUILTIN`]). Offsets are scenario seconds after the workflow's
/// creation; the phase follows the tasks unless a step sets it (see `state`).
pub fn builtin(name: &str) -> Option<Timeline> {
    // A real pre-check result stays valid for an hour.
    const HOUR: f64 = 3600.0;
    let start = [
        task(15.0, "PreCheck", "Running"),
        passed_precheck(60.0, HOUR),
        task(75.0, "Snapshot", "Running"),
        task(105.0, "Snapshot", "Success"),
        task(120.0, "Cluster", "Running"),
    ];
    let steps: Vec<StepDef> = match name {
        "success" => start
            .into_iter()
            .chain([
                task(240.0, "Cluster", "Success"),
                task(255.0, "PostCheck", "Running"),
                task(300.0, "PostCheck", "Success"),
            ])
            .collect(),
        "cluster-fails-then-retry" => start
            .into_iter()
            .chain([
                task(210.0, "Cluster", "Failed"),
                task(270.0, "Cluster", "Running"),
                task(390.0, "Cluster", "Success"),
                task(405.0, "PostCheck", "Running"),
                task(450.0, "PostCheck", "Success"),
            ])
            .collect(),
        "cancel" => start[..3]
            .iter()
            .cloned()
            .chain([task(105.0, "Snapshot", "Failed"), phase(165.0, "Cancel")])
            .collect(),
        // The pre-check's result lapses at 180; the upgrade starts only at 240 and CCE
        // refuses to finish it.
        "precheck-expires" => vec![
            task(15.0, "PreCheck", "Running"),
            passed_precheck(60.0, 120.0),
            task(240.0, "Cluster", "Running"),
            task(300.0, "Cluster", "Failed"),
        ],
        _ => return None,
    };
    parse_timeline(name, &steps).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_timeline_parses() {
        for name in BUILTIN {
            let tl = builtin(name).expect(name);
            assert!(!tl.steps.is_empty());
        }
        assert!(builtin("nope").is_none());
    }
}
