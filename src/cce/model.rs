//! CCE's upgrade-workflow objects as they travel on the wire (cce-api.md §6–§7).
//!
//! Every field is optional and unknown fields are ignored, as in Huawei's SDK. Enum-like
//! strings keep values this build does not know verbatim instead of dropping them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Defines a string enum whose unknown values survive a round trip unchanged.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this build does not know, exactly as CCE sent it.
            Unknown(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => stringify!($variant),)+
                    Self::Unknown(raw) => raw,
                }
            }

            /// The known value this one means when CCE's casing or spacing differs (`success`,
            /// ` Running`), for deciding what to do; mirror the original, not this.
            pub fn canonical(&self) -> Self {
                match self {
                    Self::Unknown(raw) => {
                        let raw = raw.trim();
                        $(if raw.eq_ignore_ascii_case(stringify!($variant)) {
                            return Self::$variant;
                        })+
                        Self::Unknown(raw.to_string())
                    }
                    known => known.clone(),
                }
            }

            /// Whether this is `known`, ignoring CCE's casing and spacing.
            pub fn means(&self, known: &Self) -> bool {
                &self.canonical() == known
            }
        }

        impl From<&str> for $name {
            fn from(raw: &str) -> Self {
                match raw {
                    $(stringify!($variant) => Self::$variant,)+
                    other => Self::Unknown(other.to_string()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from(raw.as_str()))
            }
        }
    };
}

pub(crate) use open_enum;

open_enum!(
    /// Phase of a whole workflow.
    Phase { Init, Running, Pending, Success, Cancel }
);

open_enum!(
    /// Kind of task (a point of the workflow graph).
    TaskType { Cluster, PreCheck, Rollback, Snapshot, PostCheck }
);

open_enum!(
    /// Status of one task: a workflow point, an upgrade task, a snapshot task or its items.
    TaskState { Init, Queuing, Running, Pause, Success, Failed }
);

impl Phase {
    /// Success and Cancel never change again by themselves.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Success | Self::Cancel)
    }
}

/// `UpgradeWorkFlow`: the answer of Show, of Create and Update, and each List item.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<WorkflowSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WorkflowStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_timestamp: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WorkflowSpec {
    #[serde(rename = "clusterID", default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(
        rename = "clusterVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_version: Option<String>,
    #[serde(
        rename = "targetVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_version: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_statuses: Option<Vec<PointStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_statuses: Option<Vec<LineStatus>>,
}

/// One task of the workflow; tasks not created yet carry only `taskType`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PointStatus {
    #[serde(rename = "taskType", default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<TaskType>,
    #[serde(rename = "taskID", default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskState>,
    #[serde(
        rename = "startTimeStamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time_stamp: Option<String>,
    #[serde(
        rename = "endTimeStamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub end_time_stamp: Option<String>,
    #[serde(
        rename = "expireTimeStamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expire_time_stamp: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LineStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_point: Option<Point>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_point: Option<Point>,
    /// A bool since SDK 3.1.192, a string before; other values read as absent.
    #[serde(
        default,
        deserialize_with = "super::lenient::bool_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub critical: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Point {
    #[serde(rename = "taskType", default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<TaskType>,
}

/// ListUpgradeWorkFlows answer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// A list, or one object as Huawei's API page shows it.
    #[serde(default, deserialize_with = "super::lenient::one_or_many")]
    pub items: Vec<Workflow>,
}

/// CreateUpgradeWorkFlow request body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateWorkflowRequest {
    pub kind: String,
    pub api_version: String,
    pub spec: WorkflowSpec,
}

impl CreateWorkflowRequest {
    pub fn new(cluster_id: &str, cluster_version: &str, target_version: &str) -> Self {
        Self {
            kind: "WorkFlowTask".into(),
            api_version: "v3".into(),
            spec: WorkflowSpec {
                cluster_id: Some(cluster_id.into()),
                cluster_version: Some(cluster_version.into()),
                target_version: Some(target_version.into()),
            },
        }
    }
}

/// UpgradeWorkFlowUpdate request body; CCE only supports cancelling.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UpdateWorkflowRequest {
    pub status: UpdateWorkflowStatus,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UpdateWorkflowStatus {
    pub phase: Phase,
}

impl UpdateWorkflowRequest {
    pub fn cancel() -> Self {
        Self {
            status: UpdateWorkflowStatus {
                phase: Phase::Cancel,
            },
        }
    }
}

impl Workflow {
    pub fn uid(&self) -> Option<&str> {
        self.metadata.as_ref()?.uid.as_deref()
    }

    pub fn phase(&self) -> Option<&Phase> {
        self.status.as_ref()?.phase.as_ref()
    }

    pub fn points(&self) -> &[PointStatus] {
        self.status
            .as_ref()
            .and_then(|s| s.point_statuses.as_deref())
            .unwrap_or_default()
    }

    /// The task a person should look at now: the first running one, else paused, else
    /// queued, else failed, else created; only tasks whose type CCE named count, and
    /// statuses are recognised whatever their casing.
    pub fn current_task(&self) -> Option<&PointStatus> {
        const BY_URGENCY: [TaskState; 5] = [
            TaskState::Running,
            TaskState::Pause,
            TaskState::Queuing,
            TaskState::Failed,
            TaskState::Init,
        ];
        BY_URGENCY.iter().find_map(|state| {
            self.points().iter().find(|p| {
                p.task_type.is_some() && p.status.as_ref().is_some_and(|s| s.means(state))
            })
        })
    }
}

impl Workflow {
    /// `creationTimestamp` parsed; `None` when absent or in no known layout.
    pub fn created(&self) -> Option<jiff::Timestamp> {
        super::time::parse(self.metadata.as_ref()?.creation_timestamp.as_deref()?)
    }
}

impl WorkflowList {
    /// Sorts the items newest first by `creationTimestamp`. Items without a parsable
    /// timestamp go last, keeping CCE's order among themselves.
    pub fn sort_newest_first(&mut self) {
        self.items.sort_by_key(|wf| std::cmp::Reverse(wf.created()));
    }

    /// The most recently created workflow, if any has a parsable timestamp or CCE listed any.
    pub fn newest(&self) -> Option<&Workflow> {
        self.items
            .iter()
            .enumerate()
            .max_by_key(|(index, wf)| (wf.created(), std::cmp::Reverse(*index)))
            .map(|(_, wf)| wf)
    }
}

/// Huawei's own ShowUpgradeWorkFlow example (cce-api.md §8), verbatim in content.
pub const SEED_EXAMPLE: &str = include_str!("seed_example.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_round_trips_without_loss() {
        let wf: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("parse");
        let back = serde_json::to_value(&wf).expect("serialize");
        let original: serde_json::Value = serde_json::from_str(SEED_EXAMPLE).expect("parse");
        assert_eq!(back, original);
    }

    #[test]
    fn unknown_enum_values_survive_verbatim() {
        let json = r#"{"status":{"phase":"Paused","pointStatuses":[
            {"taskType":"NodePool","status":"queue"},{"taskType":"Cluster","status":"Running "}],
            "lineStatuses":[{"startPoint":{"taskType":"Cluster"},"endPoint":{"taskType":"X"},"critical":true}]},
            "extra":{"ignored":1}}"#;
        let wf: Workflow = serde_json::from_str(json).expect("parse");
        assert_eq!(wf.phase(), Some(&Phase::Unknown("Paused".into())));
        assert_eq!(
            wf.points()[0].task_type,
            Some(TaskType::Unknown("NodePool".into()))
        );
        assert_eq!(
            wf.points()[0].status,
            Some(TaskState::Unknown("queue".into()))
        );
        assert_eq!(
            wf.points()[1].status,
            Some(TaskState::Unknown("Running ".into()))
        );
        let out = serde_json::to_string(&wf).expect("serialize");
        for raw in [
            "\"Paused\"",
            "\"NodePool\"",
            "\"queue\"",
            "\"Running \"",
            "\"critical\":true",
        ] {
            assert!(out.contains(raw), "{raw} lost in {out}");
        }
    }

    #[test]
    fn the_current_task_is_the_most_urgent_one() {
        let wf = |tasks: serde_json::Value| -> Workflow {
            serde_json::from_value(serde_json::json!({"status": {"pointStatuses": tasks}}))
                .expect("parse")
        };
        let current = |w: &Workflow| {
            w.current_task()
                .and_then(|p| p.task_type.as_ref())
                .map(TaskType::to_string)
        };
        let all = wf(serde_json::json!([
            {"taskType": "PreCheck", "status": "Init"},
            {"taskType": "Snapshot", "status": "Failed"},
            {"taskType": "Rollback", "status": "Queuing"},
            {"status": "Running"},
            {"taskType": "Cluster", "status": "Running"},
        ]));
        assert_eq!(current(&all).as_deref(), Some("Cluster"));
        let waiting = wf(serde_json::json!([
            {"taskType": "PreCheck", "status": "Success"},
            {"taskType": "Cluster", "status": "Init"},
        ]));
        assert_eq!(current(&waiting).as_deref(), Some("Cluster"));
        let done = wf(serde_json::json!([{"taskType": "Cluster", "status": "Success"}]));
        assert_eq!(current(&done), None);
    }

    #[test]
    fn known_values_are_case_sensitive() {
        assert_eq!(Phase::from("success"), Phase::Unknown("success".into()));
        assert_eq!(Phase::from("Success"), Phase::Success);
    }

    #[test]
    fn canonical_values_recognise_any_casing_and_keep_the_rest_raw() {
        assert_eq!(Phase::from("success").canonical(), Phase::Success);
        assert_eq!(TaskState::from(" pause ").canonical(), TaskState::Pause);
        assert!(TaskState::from("QUEUING").means(&TaskState::Queuing));
        assert_eq!(
            TaskState::from("queue").canonical(),
            TaskState::Unknown("queue".into())
        );
        assert_eq!(Phase::Running.canonical(), Phase::Running);
    }

    #[test]
    fn critical_may_be_a_bool_or_a_string() {
        let line = |critical: &str| -> LineStatus {
            serde_json::from_str(&format!(r#"{{"critical":{critical}}}"#)).expect(critical)
        };
        assert_eq!(line("true").critical, Some(true));
        assert_eq!(line(r#""false""#).critical, Some(false));
        assert_eq!(line(r#""True""#).critical, Some(true));
        assert_eq!(line(r#""maybe""#).critical, None);
        assert_eq!(line("null").critical, None);
        let wf: Workflow =
            serde_json::from_str(r#"{"status":{"lineStatuses":[{"critical":"true"},{}]}}"#)
                .expect("workflow with a string critical");
        let lines = wf.status.and_then(|s| s.line_statuses).expect("lines");
        assert_eq!(lines[0].critical, Some(true));
        assert_eq!(lines[1].critical, None);
    }

    #[test]
    fn paused_and_oddly_cased_tasks_are_current() {
        let wf: Workflow = serde_json::from_value(serde_json::json!({"status": {"pointStatuses": [
            {"taskType": "PreCheck", "status": "success"},
            {"taskType": "Snapshot", "status": "init"},
            {"taskType": "Cluster", "status": "Pause"},
        ]}}))
        .expect("parse");
        assert_eq!(
            wf.current_task().and_then(|p| p.task_type.as_ref()),
            Some(&TaskType::Cluster)
        );
        let lower: Workflow =
            serde_json::from_value(serde_json::json!({"status": {"pointStatuses": [
                {"taskType": "PreCheck", "status": "Success"},
                {"taskType": "Cluster", "status": "running"},
            ]}}))
            .expect("parse");
        assert_eq!(
            lower.current_task().and_then(|p| p.task_type.as_ref()),
            Some(&TaskType::Cluster)
        );
    }

    #[test]
    fn lists_sort_newest_first_with_unparsable_timestamps_last() {
        let wf = |uid: &str, created: Option<&str>| Workflow {
            metadata: Some(Metadata {
                uid: Some(uid.into()),
                creation_timestamp: created.map(Into::into),
                ..Metadata::default()
            }),
            ..Workflow::default()
        };
        let mut list = WorkflowList {
            items: vec![
                wf("bad", Some("yesterday")),
                wf("old", Some("2023-11-25 06:32:34.923248 +0000 UTC")),
                wf("none", None),
                wf("new", Some("2024-01-02 03:04:05 +0000 UTC")),
                wf("mid", Some("2023-12-01T00:00:00Z")),
            ],
            ..WorkflowList::default()
        };
        assert_eq!(list.newest().and_then(Workflow::uid), Some("new"));
        list.sort_newest_first();
        let order: Vec<_> = list.items.iter().filter_map(Workflow::uid).collect();
        assert_eq!(order, ["new", "mid", "old", "bad", "none"]);
        assert_eq!(WorkflowList::default().newest(), None);
    }

    #[test]
    fn a_list_answer_with_one_workflow_as_an_object_is_that_workflow() {
        let list: WorkflowList = serde_json::from_str(
            r#"{"kind": "List", "apiVersion": "v3", "items": {"kind": "WorkFlowTask",
               "metadata": {"uid": "w1", "creationTimestamp": "2023-11-25 06:32:34 +0000 UTC"},
               "status": {"phase": "Running"}}}"#,
        )
        .expect("readable");
        assert_eq!(list.newest().and_then(Workflow::uid), Some("w1"));
    }
}
