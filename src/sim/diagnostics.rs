//! What the diagnostic APIs say about a workflow's tasks: every run of a PreCheck,
//! Snapshot, Cluster or Rollback task the workflow played (a retried task is a new run with
//! a new id, as in CCE), the check items scenarios script, and the answers of ShowPreCheck,
//! ShowUpgradeClusterTask, the snapshot task list and ShowCluster built from them. Pure:
//! the time is passed in.
//!
//! Progress advances on the scenario clock: while a task runs it moves linearly from the
//! value it had when it started (or resumed) to the value of the next step of the same task
//! (its `progress`, else 100 for Success, else half-way to 100), and stands still otherwise.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::clock::plus;
use super::ids::derived_uuid;
use crate::cce::diagnostics::cluster::{ClusterPhase, ClusterStatus};
use crate::cce::diagnostics::precheck::{
    AddonRisk, CheckGroup, CheckGroupStatus, CheckItem, CheckKind, CheckLevel, CheckPhase,
    DeprecatedApiRisk, NodeCheckStatus, NodeInfo, NodeRisk, NodeStageStatus, PreCheckPhase,
    PreCheckSpec, PreCheckStatus, PreCheckTask, RiskSource,
};
use crate::cce::diagnostics::snapshot::{SnapshotItem, SnapshotSpec, SnapshotTask};
use crate::cce::diagnostics::upgrade::{UpgradeTask, UpgradeTaskSpec};
use crate::cce::diagnostics::{TaskMetadata, TaskStatus};
use crate::cce::model::{TaskState, TaskType, WorkflowSpec};

/// The most copies one scripted check item may ask for: enough for an answer of several
/// MiB, few enough that a typo cannot exhaust memory.
pub const MAX_CHECK_COPIES: u64 = 20_000;

/// A check item as a scenario writes it (a step's `checks`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckDef {
    pub name: String,
    /// Exception (default) or Risk, or any text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Default: NodeCheck for a node's item, AddonCheck for an add-on's, else LimitCheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Default: Fatal for an Exception, Warning otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Default: Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_codes: Option<Vec<String>>,
    /// The node (by name) the item is about: it is reported under that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The add-on (template name) the item is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon: Option<String>,
    /// The deprecated API (URL) the item is about.
    #[serde(
        rename = "deprecatedAPI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub deprecated_api: Option<String>,
    /// Report the item this many times, numbered, for answers of any size (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The cluster's state as a scenario writes it (a step's `cluster`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterDef {
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a check item is reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Cluster,
    Addon,
    Node(String),
}

/// A validated check item and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedCheck {
    pub place: Place,
    pub item: CheckItem,
}

/// Validates a step's check items, expanding `count`.
pub fn parse_checks(defs: &[CheckDef]) -> Result<Arc<[PlacedCheck]>, String> {
    let mut out = Vec::new();
    for def in defs {
        if def.name.trim().is_empty() {
            return Err("a check item needs a name".into());
        }
        let copies = def.count.unwrap_or(1);
        if copies == 0 || copies > MAX_CHECK_COPIES {
            return Err(format!(
                "check {}: count must be between 1 and {MAX_CHECK_COPIES}",
                def.name
            ));
        }
        let (place, item) = check_item(def);
        for n in 0..copies {
            let name = if copies == 1 {
                def.name.clone()
            } else {
                format!("{}-{n}", def.name)
            };
            out.push(PlacedCheck {
                place: place.clone(),
                item: CheckItem {
                    name: Some(name),
                    ..item.clone()
                },
            });
        }
    }
    Ok(Arc::from(out))
}

/// Where a check item goes and what it says (its name left to the copies), defaults
/// filled in.
fn check_item(def: &CheckDef) -> (Place, CheckItem) {
    let place = match (&def.node, &def.addon) {
        (Some(node), _) => Place::Node(node.clone()),
        (None, Some(_)) => Place::Addon,
        (None, None) => Place::Cluster,
    };
    let kind = CheckKind::from(def.kind.as_deref().unwrap_or("Exception"));
    let group = def
        .group
        .as_deref()
        .map(CheckGroup::from)
        .unwrap_or(match place {
            Place::Node(_) => CheckGroup::NodeCheck,
            Place::Addon => CheckGroup::AddonCheck,
            Place::Cluster => CheckGroup::LimitCheck,
        });
    let level =
        def.level
            .as_deref()
            .map(CheckLevel::from)
            .unwrap_or(if kind == CheckKind::Exception {
                CheckLevel::Fatal
            } else {
                CheckLevel::Warning
            });
    let any_risk = def.node.is_some() || def.addon.is_some() || def.deprecated_api.is_some();
    let item = CheckItem {
        name: None,
        kind: Some(kind),
        group: Some(group),
        level: Some(level),
        phase: Some(CheckPhase::from(def.phase.as_deref().unwrap_or("Failed"))),
        message: def.message.clone(),
        risk_source: any_risk.then(|| risk_source(def)),
        error_codes: def.error_codes.clone(),
    };
    (place, item)
}

/// The risks a check item names: its node, add-on or deprecated API.
fn risk_source(def: &CheckDef) -> RiskSource {
    RiskSource {
        node_risks: def.node.as_ref().map(|n| {
            vec![NodeRisk {
                node_id: Some(node_uid(n)),
            }]
        }),
        addon_risks: def.addon.as_ref().map(|a| {
            vec![AddonRisk {
                addon_template_name: Some(a.clone()),
                alias: None,
            }]
        }),
        deprecated_api_risks: def.deprecated_api.as_ref().map(|url| {
            vec![DeprecatedApiRisk {
                url: Some(url.clone()),
                user_agent: Some("kubectl/v1.28.15".into()),
            }]
        }),
        configuration_risks: None,
    }
}

/// Validates a step's cluster state.
pub fn parse_cluster(def: &ClusterDef) -> Result<ClusterStatus, String> {
    if def.phase.trim().is_empty() {
        return Err("cluster.phase must not be empty".into());
    }
    Ok(ClusterStatus {
        phase: Some(ClusterPhase::from(def.phase.as_str())),
        reason: def.reason.clone(),
        message: def.message.clone(),
        ..ClusterStatus::default()
    })
}

/// A node's uid, derived from its name so every answer names it alike.
fn node_uid(name: &str) -> String {
    derived_uuid(&format!("node/{name}"))
}

/// One run of a task, as the diagnostic APIs report it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TaskRun {
    pub task: TaskType,
    pub task_id: String,
    pub status: TaskState,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub expire: Option<String>,
    /// Progress (0–100) when the status last changed, at `changed`.
    pub progress: f64,
    pub changed: Timestamp,
    /// While running: when the next step of this task is due (offset from the flow's
    /// origin) and the progress it brings.
    pub heading: Option<(SignedDuration, f64)>,
    pub message: Option<String>,
    pub checks: Option<Arc<[PlacedCheck]>>,
}

impl TaskRun {
    /// A run not started yet, created at `at` (`text` in CCE's format).
    pub fn new(task: TaskType, task_id: String, at: Timestamp, text: &str) -> TaskRun {
        TaskRun {
            task,
            task_id,
            status: TaskState::Init,
            created: Some(text.to_string()),
            updated: Some(text.to_string()),
            start: None,
            end: None,
            expire: None,
            progress: 0.0,
            changed: at,
            heading: None,
            message: None,
            checks: None,
        }
    }

    /// Progress at `now`, for a flow whose timeline starts at `origin`.
    pub fn progress_at(&self, now: Timestamp, origin: Timestamp) -> f64 {
        let Some((offset, target)) = self.heading.filter(|_| self.status == TaskState::Running)
        else {
            return self.progress;
        };
        let due = plus(origin, offset);
        let span = due.duration_since(self.changed).as_secs_f64();
        if span <= 0.0 {
            return self.progress;
        }
        let done = (now.duration_since(self.changed).as_secs_f64() / span).clamp(0.0, 1.0);
        self.progress + (target - self.progress) * done
    }
}

/// What the run of a task needs from its workflow.
pub(super) struct RunContext<'a> {
    pub cluster_id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub now: Timestamp,
    pub origin: Timestamp,
}

fn metadata(run: &TaskRun) -> Option<TaskMetadata> {
    Some(TaskMetadata {
        uid: Some(run.task_id.clone()),
        creation_timestamp: run.created.clone(),
        update_timestamp: run.updated.clone(),
    })
}

fn progress_text(value: f64) -> String {
    format!("{:.2}", value.clamp(0.0, 100.0))
}

/// ShowPreCheck's answer for a PreCheck run.
pub(super) fn pre_check(run: &TaskRun, ctx: &RunContext<'_>) -> PreCheckTask {
    let phase = match run.status.canonical() {
        TaskState::Init | TaskState::Queuing => PreCheckPhase::Init,
        TaskState::Running | TaskState::Pause => PreCheckPhase::Running,
        TaskState::Success => PreCheckPhase::Success,
        TaskState::Failed => PreCheckPhase::Failed,
        TaskState::Unknown(raw) => PreCheckPhase::Unknown(raw),
    };
    let checks = match &run.checks {
        Some(scripted) => scripted.to_vec(),
        None => default_checks(&phase, ctx.cluster_id),
    };
    let group = |items: Vec<CheckItem>| {
        let phase = group_phase(&items, &phase);
        Some(CheckGroupStatus {
            phase: Some(phase),
            items_status: Some(items),
        })
    };
    let mut cluster = Vec::new();
    let mut addon = Vec::new();
    let mut nodes: Vec<(String, Vec<CheckItem>)> = Vec::new();
    for PlacedCheck { place, item } in checks {
        match place {
            Place::Cluster => cluster.push(item),
            Place::Addon => addon.push(item),
            Place::Node(name) => match nodes.iter_mut().find(|(n, _)| *n == name) {
                Some((_, items)) => items.push(item),
                None => nodes.push((name, vec![item])),
            },
        }
    }
    let node_items: Vec<CheckItem> = nodes.iter().flat_map(|(_, i)| i.clone()).collect();
    let node_phase = group_phase(&node_items, &phase);
    let stages = nodes
        .into_iter()
        .map(|(name, items)| NodeStageStatus {
            node_info: Some(NodeInfo {
                uid: Some(node_uid(&name)),
                status: Some(if items.iter().any(CheckItem::is_blocking) {
                    "Abnormal".into()
                } else {
                    "Active".into()
                }),
                name: Some(name),
                node_type: Some("node".into()),
            }),
            items_status: Some(items),
        })
        .collect();
    PreCheckTask {
        kind: Some("PreCheckTask".into()),
        api_version: Some("v3".into()),
        metadata: metadata(run),
        spec: Some(PreCheckSpec {
            versions: WorkflowSpec {
                cluster_id: Some(ctx.cluster_id.to_string()),
                cluster_version: Some(ctx.from.to_string()),
                target_version: Some(ctx.to.to_string()),
            },
            skipped_check_item_list: None,
        }),
        status: Some(PreCheckStatus {
            phase: Some(phase.clone()),
            expire_time_stamp: run.expire.clone(),
            message: run.message.clone(),
            cluster_check_status: group(cluster),
            addon_check_status: group(addon),
            node_check_status: Some(NodeCheckStatus {
                phase: Some(node_phase),
                node_stage_status: Some(stages),
            }),
        }),
    }
}

/// Failed when an item failed, else what the whole check's phase implies.
fn group_phase(items: &[CheckItem], check: &PreCheckPhase) -> CheckPhase {
    if items.iter().any(|i| {
        i.phase
            .as_ref()
            .is_some_and(|p| p.means(&CheckPhase::Failed))
    }) {
        return CheckPhase::Failed;
    }
    match check {
        PreCheckPhase::Init => CheckPhase::Init,
        PreCheckPhase::Running => CheckPhase::Running,
        _ => CheckPhase::Success,
    }
}

/// The items of a pre-check no scenario scripted: one per group, all passing unless the
/// check failed, in which case the cluster item says so.
fn default_checks(phase: &PreCheckPhase, cluster_id: &str) -> Vec<PlacedCheck> {
    let item_phase = match phase {
        PreCheckPhase::Init => CheckPhase::Init,
        PreCheckPhase::Running => CheckPhase::Running,
        _ => CheckPhase::Success,
    };
    let item = |name: &str, group: CheckGroup| CheckItem {
        name: Some(name.into()),
        kind: Some(CheckKind::Exception),
        group: Some(group),
        level: Some(CheckLevel::Info),
        phase: Some(item_phase.clone()),
        ..CheckItem::default()
    };
    let mut cluster = item("ClusterStatus", CheckGroup::MasterCheck);
    if phase == &PreCheckPhase::Failed {
        cluster.phase = Some(CheckPhase::Failed);
        cluster.level = Some(CheckLevel::Fatal);
        cluster.message = Some("the simulated pre-check failed".into());
        cluster.error_codes = Some(vec!["Cluster.0001".into()]);
    }
    vec![
        PlacedCheck {
            place: Place::Cluster,
            item: cluster,
        },
        PlacedCheck {
            place: Place::Addon,
            item: item("AddonStatus", CheckGroup::AddonCheck),
        },
        PlacedCheck {
            place: Place::Node(format!("{}-node-1", short(cluster_id))),
            item: item("NodeStatus", CheckGroup::NodeCheck),
        },
    ]
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// ShowUpgradeClusterTask's answer for a Cluster run.
pub(super) fn upgrade_task(run: &TaskRun, ctx: &RunContext<'_>) -> UpgradeTask {
    UpgradeTask {
        kind: Some("UpgradeTask".into()),
        api_version: Some("v3".into()),
        metadata: metadata(run),
        spec: Some(UpgradeTaskSpec {
            version: Some(ctx.from.to_string()),
            target_version: Some(ctx.to.to_string()),
            items: None,
        }),
        status: Some(TaskStatus {
            phase: Some(run.status.clone()),
            progress: Some(progress_text(run.progress_at(ctx.now, ctx.origin))),
            completion_time: run.end.clone(),
        }),
    }
}

/// The snapshot task list's item for a Snapshot run: one master backup sub-item.
pub(super) fn snapshot_task(run: &TaskRun, ctx: &RunContext<'_>) -> SnapshotTask {
    let message = run.message.clone().or_else(|| {
        match run.status.canonical() {
            TaskState::Success => Some("the control plane's disks were backed up"),
            TaskState::Failed => Some("backing up the control plane's disks failed"),
            _ => None,
        }
        .map(str::to_string)
    });
    SnapshotTask {
        kind: Some("SnapshotTask".into()),
        api_version: Some("v3.1".into()),
        metadata: metadata(run),
        spec: Some(SnapshotSpec {
            items: Some(vec![SnapshotItem {
                id: Some(derived_uuid(&format!("{}/master-backup", run.task_id))),
                item_type: Some("master-backup".into()),
                status: Some(run.status.clone()),
                creation_timestamp: run.created.clone(),
                update_timestamp: run.updated.clone(),
                message,
            }]),
        }),
        status: Some(TaskStatus {
            phase: Some(run.status.clone()),
            progress: Some(progress_text(run.progress_at(ctx.now, ctx.origin))),
            completion_time: run.end.clone(),
        }),
    }
}

/// The cluster's state after a step of a Cluster or Rollback run that scripts none.
pub(super) fn cluster_after(run: &TaskRun, progress: f64, to: &str) -> Option<ClusterStatus> {
    let status = |phase: ClusterPhase, reason: Option<&str>, message: Option<String>| {
        Some(ClusterStatus {
            phase: Some(phase),
            reason: reason.map(str::to_string),
            message,
            ..ClusterStatus::default()
        })
    };
    let rollback = run.task == TaskType::Rollback;
    match (run.status.canonical(), rollback) {
        (TaskState::Running | TaskState::Queuing | TaskState::Init, false) => {
            status(ClusterPhase::Upgrading, None, None)
        }
        (TaskState::Pause, false) => status(
            ClusterPhase::Upgrading,
            Some("UpgradePaused"),
            Some(format!("the upgrade to {to} is paused at {progress:.0}%")),
        ),
        (TaskState::Failed, false) => status(
            ClusterPhase::Error,
            Some("UpgradeFailed"),
            Some(format!(
                "upgrading the control plane to {to} failed at {progress:.0}%"
            )),
        ),
        (TaskState::Running | TaskState::Queuing | TaskState::Init | TaskState::Pause, true) => {
            status(ClusterPhase::RollingBack, None, None)
        }
        (TaskState::Failed, true) => status(
            ClusterPhase::RollbackFailed,
            Some("RollbackFailed"),
            Some("rolling the control plane back failed".into()),
        ),
        (TaskState::Success, _) => status(ClusterPhase::Available, None, None),
        (TaskState::Unknown(_), _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: TaskState, progress: f64) -> TaskRun {
        TaskRun {
            status,
            progress,
            heading: Some((SignedDuration::from_secs(100), 60.0)),
            ..TaskRun::new(TaskType::Cluster, "t".into(), Timestamp::UNIX_EPOCH, "")
        }
    }

    fn secs(s: i64) -> Timestamp {
        plus(Timestamp::UNIX_EPOCH, SignedDuration::from_secs(s))
    }

    #[test]
    fn progress_moves_toward_the_next_step_only_while_running() {
        let origin = Timestamp::UNIX_EPOCH;
        let running = run(TaskState::Running, 10.0);
        assert_eq!(running.progress_at(secs(0), origin), 10.0);
        assert_eq!(running.progress_at(secs(50), origin), 35.0);
        assert_eq!(running.progress_at(secs(500), origin), 60.0);
        assert_eq!(running.progress_at(secs(-5), origin), 10.0);
        assert_eq!(
            run(TaskState::Pause, 10.0).progress_at(secs(50), origin),
            10.0
        );
    }

    #[test]
    fn an_unscripted_pre_check_reports_one_item_per_group_failing_only_when_it_failed() {
        let ctx = RunContext {
            cluster_id: "c1000000-0000",
            from: "v1",
            to: "v2",
            now: Timestamp::UNIX_EPOCH,
            origin: Timestamp::UNIX_EPOCH,
        };
        let answer = |status: TaskState| {
            let run = TaskRun {
                status,
                ..TaskRun::new(TaskType::PreCheck, "p".into(), Timestamp::UNIX_EPOCH, "")
            };
            pre_check(&run, &ctx)
        };
        let passed = answer(TaskState::Success);
        assert_eq!(passed.items().count(), 3);
        assert!(passed.findings().is_empty());
        let nodes = passed
            .status
            .as_ref()
            .and_then(|s| s.node_check_status.as_ref())
            .and_then(|n| n.node_stage_status.clone())
            .unwrap_or_default();
        assert_eq!(
            nodes[0].node_info.as_ref().and_then(|n| n.name.as_deref()),
            Some("c1000000-node-1")
        );
        let failed = answer(TaskState::Failed);
        assert_eq!(failed.phase(), Some(&PreCheckPhase::Failed));
        let findings = failed.findings();
        assert_eq!(findings.len(), 1);
        assert!(findings[0].1.is_blocking());
        let odd = answer(TaskState::Unknown("Checking".into()));
        assert_eq!(
            odd.phase(),
            Some(&PreCheckPhase::Unknown("Checking".into()))
        );
        assert_eq!(
            answer(TaskState::Queuing).phase(),
            Some(&PreCheckPhase::Init)
        );
    }

    #[test]
    fn scripted_checks_expand_with_their_defaults() {
        let defs = vec![
            CheckDef {
                name: "NodeReady".into(),
                node: Some("worker-2".into()),
                ..CheckDef::default()
            },
            CheckDef {
                name: "DeprecatedAPI".into(),
                kind: Some("Risk".into()),
                deprecated_api: Some("/apis/policy/v1beta1/podsecuritypolicies".into()),
                count: Some(2),
                ..CheckDef::default()
            },
        ];
        let checks = parse_checks(&defs).expect("valid");
        assert_eq!(checks.len(), 3);
        assert_eq!(checks[0].place, Place::Node("worker-2".into()));
        assert_eq!(checks[0].item.group, Some(CheckGroup::NodeCheck));
        assert_eq!(checks[0].item.level, Some(CheckLevel::Fatal));
        assert!(checks[0].item.is_blocking());
        assert_eq!(checks[1].item.name.as_deref(), Some("DeprecatedAPI-0"));
        assert_eq!(checks[1].item.level, Some(CheckLevel::Warning));
        assert_eq!(
            checks[2].item.subjects(),
            ["/apis/policy/v1beta1/podsecuritypolicies"]
        );
        for bad in [
            CheckDef::default(),
            CheckDef {
                name: "x".into(),
                count: Some(0),
                ..CheckDef::default()
            },
            CheckDef {
                name: "x".into(),
                count: Some(MAX_CHECK_COPIES + 1),
                ..CheckDef::default()
            },
        ] {
            assert!(parse_checks(&[bad]).is_err());
        }
    }
}
