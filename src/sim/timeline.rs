//! Timelines: the steps a workflow plays, as scenario files write them and validated, and
//! the built-in timelines that scenarios and `--on-create` name.

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

/// Names of the built-in timelines (usable in scenario files and `--on-create`).
pub const BUILTIN: [&str; 6] = [
    "success",
    "cluster-fails-then-retry",
    "cancel",
    "precheck-expires",
    "precheck-fails",
    "cluster-pauses",
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

/// The findings of `precheck-fails`' first pre-check.
fn precheck_findings() -> Vec<CheckDef> {
    vec![
        CheckDef {
            name: "NodeReady".into(),
            kind: Some("Exception".into()),
            group: Some("NodeCheck".into()),
            level: Some("Fatal".into()),
            message: Some("node worker-2 is NotReady: kubelet stopped posting node status".into()),
            error_codes: Some(vec!["Node.0022".into()]),
            node: Some("worker-2".into()),
            ..CheckDef::default()
        },
        CheckDef {
            name: "DeprecatedAPI".into(),
            kind: Some("Risk".into()),
            group: Some("LimitCheck".into()),
            level: Some("Warning".into()),
            message: Some(
                "flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema is still called; v1.29 removes it"
                    .into(),
            ),
            error_codes: Some(vec!["Cluster.0120".into()]),
            deprecated_api: Some("/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas".into()),
            ..CheckDef::default()
        },
    ]
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
        // A node that is not ready blocks the upgrade, a deprecated API is a risk; both
        // are fixed and the pre-check, run again, passes.
        "precheck-fails" => [
            task(15.0, "PreCheck", "Running"),
            StepDef {
                message: Some("2 check items did not pass: fix NodeReady first".into()),
                checks: Some(precheck_findings()),
                ..task(60.0, "PreCheck", "Failed")
            },
            task(120.0, "PreCheck", "Running"),
            passed_precheck(165.0, HOUR),
            task(180.0, "Snapshot", "Running"),
            task(210.0, "Snapshot", "Success"),
            task(225.0, "Cluster", "Running"),
            task(345.0, "Cluster", "Success"),
            task(360.0, "PostCheck", "Running"),
            task(405.0, "PostCheck", "Success"),
        ]
        .into(),
        // The Cluster task pauses at 40% for a minute, then continues.
        "cluster-pauses" => start
            .into_iter()
            .chain([
                StepDef {
                    progress: Some(40.0),
                    ..task(170.0, "Cluster", "Pause")
                },
                task(230.0, "Cluster", "Running"),
                task(320.0, "Cluster", "Success"),
                task(335.0, "PostCheck", "Running"),
                task(380.0, "PostCheck", "Success"),
            ])
            .collect(),
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
