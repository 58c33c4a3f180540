//! Pure mapping of a CCE workflow into the workflow fields of a watch's status.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cce::model::{Point, PointStatus, TaskState, TaskType, Workflow};
use crate::cce::time;
use crate::crd::{TaskLine, TaskStatus, UpgradeWorkflowWatchStatus};
use crate::duration::{self, Precision};
use crate::limits::{MAX_FIELD_BYTES, MAX_LINES, MAX_TASKS, clean, needs_cleaning};

/// A timestamp CCE sent that parses in no known layout; kept raw in status and reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnparsedTime {
    /// Where it was, for example `tasks[Cluster].startTime`.
    pub field: String,
    pub value: String,
}

/// What mirroring could not keep as CCE sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrored {
    /// Timestamps that parse in no known layout.
    pub unparsed: Vec<UnparsedTime>,
    /// Tasks and lines beyond [`MAX_TASKS`] and [`MAX_LINES`], counted, not mirrored.
    pub omitted_tasks: usize,
    pub omitted_lines: usize,
    /// Strings that held control characters or exceeded [`MAX_FIELD_BYTES`].
    pub cleaned_fields: usize,
}

impl Mirrored {
    /// Whether a bound was hit.
    pub fn bounded(&self) -> bool {
        self.omitted_tasks + self.omitted_lines + self.cleaned_fields > 0
    }

    /// A string from CCE as status keeps it: no control characters, at most
    /// [`MAX_FIELD_BYTES`].
    fn keep(&mut self, raw: String) -> String {
        if !needs_cleaning(&raw, MAX_FIELD_BYTES) {
            return raw;
        }
        self.cleaned_fields += 1;
        clean(&raw, MAX_FIELD_BYTES).into_owned()
    }

    fn keep_opt(&mut self, raw: Option<String>) -> Option<String> {
        raw.map(|r| self.keep(r))
    }
}

/// Copies everything CCE said about the workflow into `status`, replacing what was there
/// (conditions, generation and sync time are left alone), within the bounds of
/// [`super::limits`]. Says what could not be kept as sent.
pub fn mirror_into(
    status: &mut UpgradeWorkflowWatchStatus,
    wf: &Workflow,
    now: Timestamp,
) -> Mirrored {
    let mut report = Mirrored::default();
    let mut unparsed = Vec::new();
    let spec = wf.spec.clone().unwrap_or_default();
    let meta = wf.metadata.clone().unwrap_or_default();

    status.workflow_id = report.keep_opt(meta.uid);
    status.phase = report.keep_opt(wf.phase().map(|p| p.to_string()));
    status.from_version = report.keep_opt(spec.cluster_version);
    status.target_version = report.keep_opt(spec.target_version);
    (status.workflow_created, status.workflow_created_raw) =
        parse_time(meta.creation_timestamp, "workflowCreated", &mut unparsed);
    (status.workflow_updated, status.workflow_updated_raw) =
        parse_time(meta.update_timestamp, "workflowUpdated", &mut unparsed);

    let points = wf.points();
    report.omitted_tasks = points.len().saturating_sub(MAX_TASKS);
    status.tasks = points
        .iter()
        .take(MAX_TASKS)
        .map(|p| mirror_task(p, &mut report, &mut unparsed))
        .collect();
    mark_expired_prechecks(&mut status.tasks, now);

    status.lines = mirror_lines(wf, &mut report);
    let succeeded = points
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.means(&TaskState::Success))
        })
        .count();
    status.progress = (!points.is_empty()).then(|| format!("{succeeded}/{}", points.len()));
    status.current_task = report.keep_opt(
        wf.current_task()
            .and_then(|p| p.task_type.as_ref())
            .map(TaskType::to_string),
    );
    status.task_durations = task_durations(&status.tasks);
    bound_raw_times(status, &mut report);
    // Kept raw, reported in Synced and logged: bounded and cleaned like every other string.
    report.unparsed = unparsed
        .into_iter()
        .map(|u| UnparsedTime {
            value: clean(&u.value, MAX_FIELD_BYTES).into_owned(),
            ..u
        })
        .collect();
    report
}

/// One task of the workflow as status holds it, its times parsed (or kept raw).
fn mirror_task(
    p: &PointStatus,
    report: &mut Mirrored,
    unparsed: &mut Vec<UnparsedTime>,
) -> TaskStatus {
    let task_type = report.keep(
        p.task_type
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_default(),
    );
    let mut field = |name: &str, raw: &Option<String>| {
        parse_time(raw.clone(), &format!("tasks[{task_type}].{name}"), unparsed)
    };
    let (start_time, start_time_raw) = field("startTime", &p.start_time_stamp);
    let (end_time, end_time_raw) = field("endTime", &p.end_time_stamp);
    let (expire_time, expire_time_raw) = field("expireTime", &p.expire_time_stamp);
    let duration = match (&start_time, &end_time) {
        (Some(start), Some(end)) => Some(duration::format(
            duration::elapsed(start.0, end.0),
            Precision::Seconds,
        )),
        _ => None,
    };
    TaskStatus {
        duration,
        id: report.keep_opt(p.task_id.clone()),
        phase: report.keep_opt(p.status.as_ref().map(|s| s.to_string())),
        start_time,
        start_time_raw,
        end_time,
        end_time_raw,
        expire_time,
        expire_time_raw,
        task_type,
        ..TaskStatus::default()
    }
}

/// The order of the tasks, at most [`MAX_LINES`] of it.
fn mirror_lines(wf: &Workflow, report: &mut Mirrored) -> Vec<TaskLine> {
    let lines = wf
        .status
        .as_ref()
        .and_then(|s| s.line_statuses.as_deref())
        .unwrap_or_default();
    report.omitted_lines = lines.len().saturating_sub(MAX_LINES);
    lines
        .iter()
        .take(MAX_LINES)
        .map(|l| TaskLine {
            from: report.keep_opt(task_type_of(l.start_point.as_ref())),
            to: report.keep_opt(task_type_of(l.end_point.as_ref())),
            critical: l.critical,
        })
        .collect()
}

/// Times kept as CCE sent them are bounded like every other string from CCE.
fn bound_raw_times(status: &mut UpgradeWorkflowWatchStatus, report: &mut Mirrored) {
    for raw in [
        &mut status.workflow_created_raw,
        &mut status.workflow_updated_raw,
    ] {
        *raw = report.keep_opt(raw.take());
    }
    for task in &mut status.tasks {
        for raw in [
            &mut task.start_time_raw,
            &mut task.end_time_raw,
            &mut task.expire_time_raw,
        ] {
            *raw = report.keep_opt(raw.take());
        }
    }
}

fn task_type_of(point: Option<&Point>) -> Option<String> {
    point?.task_type.as_ref().map(TaskType::to_string)
}

/// `PreCheck 1m0s, Snapshot 45s, Cluster 9m5s (Failed)`: the finished tasks, for a printer
/// column (a running task's time is a date column, so it never goes stale in status).
fn task_durations(tasks: &[TaskStatus]) -> Option<String> {
    let parts: Vec<String> = tasks
        .iter()
        .filter_map(|t| {
            let duration = t.duration.as_deref()?;
            Some(match t.state() {
                Some(TaskState::Success) | None => format!("{} {duration}", t.task_type),
                Some(other) => format!("{} {duration} ({other})", t.task_type),
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A pre-check result is stale once its expiry passed before the Cluster task began; the
/// flag is stable afterwards, so the transition is seen (and reported) exactly once.
fn mark_expired_prechecks(tasks: &mut [TaskStatus], now: Timestamp) {
    let cluster_start = tasks
        .iter()
        .find(|t| t.kind() == TaskType::Cluster)
        .and_then(|t| t.start_time.as_ref())
        .map(|t| t.0);
    for task in tasks.iter_mut().filter(|t| t.kind() == TaskType::PreCheck) {
        let deadline = cluster_start.unwrap_or(now);
        task.result_expired = task
            .expire_time
            .as_ref()
            .is_some_and(|expiry| expiry.0 <= deadline)
            .then_some(true);
    }
}

/// When a pre-check result will expire and so change the status without any news from CCE:
/// only while the Cluster task has not started (afterwards the flag is fixed).
pub fn next_precheck_expiry(tasks: &[TaskStatus]) -> Option<Timestamp> {
    let cluster_started = tasks
        .iter()
        .any(|t| t.kind() == TaskType::Cluster && t.start_time.is_some());
    if cluster_started {
        return None;
    }
    tasks
        .iter()
        .filter(|t| t.kind() == TaskType::PreCheck && t.result_expired != Some(true))
        .filter_map(|t| t.expire_time.as_ref().map(|e| e.0))
        .min()
}

/// `ts` without its fraction of a second, as a metav1.Time is stored.
fn whole_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

fn parse_time(
    raw: Option<String>,
    field: &str,
    unparsed: &mut Vec<UnparsedTime>,
) -> (Option<Time>, Option<String>) {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return (None, None);
    };
    match time::parse(&raw) {
        // Kubernetes stores whole seconds: keeping CCE's microseconds would make the status
        // read back after a restart differ from the one computed, and rewrite it for nothing.
        Some(ts) => (Some(Time(whole_seconds(ts))), None),
        None => {
            unparsed.push(UnparsedTime {
                field: field.to_string(),
                value: raw.clone(),
            });
            (None, Some(raw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::SEED_EXAMPLE;

    /// Just after the seed example's last update; its pre-check has not expired yet.
    fn now() -> Timestamp {
        "2023-11-25T08:00:00Z".parse().expect("valid")
    }

    fn t(s: &str) -> Option<Time> {
        Some(Time(s.parse().expect("valid RFC 3339 in test")))
    }

    #[test]
    fn seed_example_maps_into_status_without_loss() {
        let wf: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("parse");
        let mut status = UpgradeWorkflowWatchStatus::default();
        let mirrored = mirror_into(&mut status, &wf, now());
        assert_eq!(mirrored, Mirrored::default());

        let expected = UpgradeWorkflowWatchStatus {
            workflow_id: Some("c271e39e-1a6e-4d3d-8fa8-2a36329c68d1".into()),
            phase: Some("Pending".into()),
            from_version: Some("v1.17.17-r0".into()),
            target_version: Some("v1.19.16-r80".into()),
            tasks: vec![
                TaskStatus {
                    task_type: "PreCheck".into(),
                    id: Some("f61e008c-1600-41c0-9bde-121de5a30660".into()),
                    phase: Some("Success".into()),
                    start_time: t("2023-11-25T07:20:04Z"),
                    end_time: t("2023-11-25T07:21:05Z"),
                    expire_time: t("2023-11-25T08:21:05Z"),
                    duration: Some("1m1s".into()),
                    ..Default::default()
                },
                TaskStatus {
                    task_type: "Snapshot".into(),
                    ..Default::default()
                },
                TaskStatus {
                    task_type: "Cluster".into(),
                    id: Some("6d799ff6-3afe-4242-80b4-6f0a0fa746cb".into()),
                    phase: Some("Failed".into()),
                    start_time: t("2023-11-25T07:49:30Z"),
                    end_time: t("2023-11-25T07:58:35Z"),
                    duration: Some("9m5s".into()),
                    ..Default::default()
                },
                TaskStatus {
                    task_type: "PostCheck".into(),
                    ..Default::default()
                },
            ],
            lines: vec![
                TaskLine {
                    from: Some("PreCheck".into()),
                    to: Some("Cluster".into()),
                    critical: None,
                },
                TaskLine {
                    from: Some("Cluster".into()),
                    to: Some("PostCheck".into()),
                    critical: None,
                },
            ],
            progress: Some("1/4".into()),
            current_task: Some("Cluster".into()),
            workflow_created: t("2023-11-25T06:32:34Z"),
            workflow_updated: t("2023-11-25T07:49:30Z"),
            task_durations: Some("PreCheck 1m1s, Cluster 9m5s (Failed)".into()),
            ..Default::default()
        };
        assert_eq!(status, expected);
    }

    #[test]
    fn unparseable_times_are_kept_raw_and_reported() {
        let wf: Workflow = serde_json::from_value(serde_json::json!({
            "metadata": {"creationTimestamp": "last tuesday"},
            "status": {"pointStatuses": [{"taskType": "Cluster", "startTimeStamp": "soon"}]}
        }))
        .expect("parse");
        let mut status = UpgradeWorkflowWatchStatus::default();
        let unparsed = mirror_into(&mut status, &wf, now()).unparsed;
        assert_eq!(status.workflow_created, None);
        assert_eq!(status.workflow_created_raw.as_deref(), Some("last tuesday"));
        assert_eq!(status.tasks[0].start_time_raw.as_deref(), Some("soon"));
        assert_eq!(
            unparsed,
            vec![
                UnparsedTime {
                    field: "workflowCreated".into(),
                    value: "last tuesday".into()
                },
                UnparsedTime {
                    field: "tasks[Cluster].startTime".into(),
                    value: "soon".into()
                },
            ]
        );
    }

    #[test]
    fn a_huge_answer_is_mirrored_within_the_bounds_and_counted() {
        let points: Vec<_> = (0..10_000)
            .map(|i| serde_json::json!({"taskType": format!("Task{i}"), "taskID": format!("id-{i}"), "status": "Success"}))
            .collect();
        let lines: Vec<_> = (0..500)
            .map(|_| serde_json::json!({"startPoint": {"taskType": "A"}, "endPoint": {"taskType": "B"}}))
            .collect();
        let wf: Workflow = serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "x".repeat(5000)},
            "status": {"phase": "Running", "pointStatuses": points, "lineStatuses": lines}
        }))
        .expect("parse");
        let mut status = UpgradeWorkflowWatchStatus::default();
        let mirrored = mirror_into(&mut status, &wf, now());
        assert_eq!(status.tasks.len(), MAX_TASKS);
        assert_eq!(status.lines.len(), MAX_LINES);
        assert_eq!(mirrored.omitted_tasks, 10_000 - MAX_TASKS);
        assert_eq!(mirrored.omitted_lines, 500 - MAX_LINES);
        assert_eq!(mirrored.cleaned_fields, 1);
        assert!(
            status
                .workflow_id
                .as_deref()
                .is_some_and(|id| id.len() <= MAX_FIELD_BYTES)
        );
        assert_eq!(status.progress.as_deref(), Some("10000/10000"));
        let size = serde_json::to_vec(&status).expect("json").len();
        assert!(size < 64 * 1024, "{size} bytes");
    }

    #[test]
    fn control_characters_from_cce_never_reach_status() {
        let wf: Workflow = serde_json::from_value(serde_json::json!({
            "spec": {"targetVersion": "v1.30\u{1b}]0;owned\u{7}"},
            "status": {"phase": "Run\u{1b}[2Jning", "pointStatuses": [
                {"taskType": "Cluster\r\n", "taskID": "a\u{202e}b", "status": "Fail\u{0}ed", "startTimeStamp": "\u{1b}[31m"}
            ]}
        }))
        .expect("parse");
        let mut status = UpgradeWorkflowWatchStatus::default();
        let mirrored = mirror_into(&mut status, &wf, now());
        let text = serde_json::to_string(&status).expect("json");
        for escaped in ["\\u001b", "\\u0007", "\\u0000", "\\r", "\\n", "\u{202e}"] {
            assert!(!text.contains(escaped), "{escaped} in {text}");
        }
        assert_eq!(status.phase.as_deref(), Some("Run\u{FFFD}[2Jning"));
        assert_eq!(mirrored.cleaned_fields, 6, "{mirrored:?}");
        // What is reported (and logged) of an unparsed time is cleaned too.
        assert_eq!(mirrored.unparsed[0].value, "\u{FFFD}[31m");
    }

    #[test]
    fn unknown_values_are_mirrored_verbatim() {
        let wf: Workflow = serde_json::from_value(serde_json::json!({
            "status": {"phase": "Paused", "pointStatuses": [{"taskType": "NodePool", "status": "Paused"}]}
        }))
        .expect("parse");
        let mut status = UpgradeWorkflowWatchStatus::default();
        mirror_into(&mut status, &wf, now());
        assert_eq!(status.phase.as_deref(), Some("Paused"));
        assert_eq!(status.tasks[0].task_type, "NodePool");
        assert_eq!(status.tasks[0].phase.as_deref(), Some("Paused"));
        assert_eq!(status.progress.as_deref(), Some("0/1"));
        assert_eq!(status.current_task, None);
    }

    #[test]
    fn precheck_expires_only_when_cluster_task_has_not_started_in_time() {
        let wf = |cluster_start: Option<&str>| -> Workflow {
            let mut cluster = serde_json::json!({"taskType": "Cluster"});
            if let Some(start) = cluster_start {
                cluster["startTimeStamp"] = start.into();
            }
            serde_json::from_value(serde_json::json!({"status": {"pointStatuses": [
                {"taskType": "PreCheck", "status": "Success",
                 "expireTimeStamp": "2023-11-25 08:21:05 +0000 UTC"},
                cluster
            ]}}))
            .expect("parse")
        };
        let at = |s: &str| -> Timestamp { s.parse().expect("valid") };
        let expired = |w: &Workflow, now| {
            let mut status = UpgradeWorkflowWatchStatus::default();
            mirror_into(&mut status, w, now);
            status.tasks[0].result_expired
        };
        assert_eq!(expired(&wf(None), at("2023-11-25T08:00:00Z")), None);
        assert_eq!(expired(&wf(None), at("2023-11-25T09:00:00Z")), Some(true));
        let started_in_time = wf(Some("2023-11-25 08:00:00 +0000 UTC"));
        assert_eq!(expired(&started_in_time, at("2023-11-25T09:00:00Z")), None);
        let started_late = wf(Some("2023-11-25 08:30:00 +0000 UTC"));
        assert_eq!(
            expired(&started_late, at("2023-11-25T09:00:00Z")),
            Some(true)
        );
    }
}
