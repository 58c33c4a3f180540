//! The `get` subcommand's output: the human table (one block per workflow, a pre-check's
//! findings as a table), and the JSON and YAML of CCE's answer as it came. Pure: the clock
//! is an argument, and the caller writes the text.

use jiff::Timestamp;

use crate::cce::model::{Phase, PointStatus, TaskState, Workflow, WorkflowList};
use crate::cce::time;
use crate::crd::CheckReport;
use crate::diagnosis::findings::{Ask, Told};
use crate::duration::{self, Precision};

/// What `get` found: one workflow with what CCE's diagnostic APIs say about its tasks, or
/// a cluster's workflows.
pub enum Found {
    One(Box<Workflow>, Vec<(Ask, Told)>),
    List {
        cluster_id: String,
        list: WorkflowList,
    },
}

/// CCE's answer as pretty JSON, ending in a newline.
pub fn json(found: &Found) -> Result<String, serde_json::Error> {
    match found {
        Found::One(wf, _) => serde_json::to_string_pretty(wf),
        Found::List { list, .. } => serde_json::to_string_pretty(list),
    }
    .map(|s| s + "\n")
}

/// CCE's answer as YAML.
pub fn yaml(found: &Found) -> Result<String, serde_yaml::Error> {
    match found {
        Found::One(wf, _) => serde_yaml::to_string(wf),
        Found::List { list, .. } => serde_yaml::to_string(list),
    }
}

/// The human view: one block per workflow, newest first.
pub fn table(found: &Found, now: Timestamp) -> String {
    match found {
        Found::One(wf, told) => {
            let mut out = workflow(wf, now);
            out.push_str(&diagnoses(told));
            out
        }
        Found::List { cluster_id, list } if list.items.is_empty() => {
            format!("No upgrade workflows for cluster {cluster_id}.\n")
        }
        Found::List { cluster_id, list } => {
            let count = list.items.len();
            let noun = if count == 1 { "workflow" } else { "workflows" };
            let mut out =
                format!("{count} upgrade {noun} for cluster {cluster_id}, newest first.\n");
            for wf in &list.items {
                out.push('\n');
                out.push_str(&workflow(wf, now));
            }
            out
        }
    }
}

fn workflow(wf: &Workflow, now: Timestamp) -> String {
    let meta = wf.metadata.clone().unwrap_or_default();
    let spec = wf.spec.clone().unwrap_or_default();
    let dash = || "-".to_string();
    let phase = match wf.phase() {
        Some(phase) => format!("{phase} ({})", phase_meaning(phase)),
        None => dash(),
    };
    let points = wf.points();
    let succeeded = points
        .iter()
        .filter(|p| p.status == Some(TaskState::Success))
        .count();
    let mut out = columns(&[
        vec!["Workflow".into(), meta.uid.unwrap_or_else(dash)],
        vec!["Cluster".into(), spec.cluster_id.unwrap_or_else(dash)],
        vec!["Phase".into(), phase],
        vec![
            "Version".into(),
            format!(
                "{} -> {}",
                spec.cluster_version.unwrap_or_else(dash),
                spec.target_version.unwrap_or_else(dash)
            ),
        ],
        vec![
            "Progress".into(),
            format!("{succeeded}/{} tasks succeeded", points.len()),
        ],
        vec!["Current task".into(), current_task(wf, now)],
        vec![
            "Created".into(),
            when(meta.creation_timestamp.as_deref(), now),
        ],
        vec![
            "Last change".into(),
            when(meta.update_timestamp.as_deref(), now),
        ],
    ]);
    if !points.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "TASK".to_string(),
            "STATUS".into(),
            "STARTED".into(),
            "ENDED".into(),
            "DURATION".into(),
            "ID".into(),
            "NOTE".into(),
        ]];
        rows.extend(points.iter().map(|p| task_row(p, now)));
        out.push_str(&columns(&rows));
    }
    out
}

/// What CCE's diagnostic APIs said: each pre-check's findings as a table, most severe
/// first; a Cluster task's progress; the cluster's reason; snapshot messages; what could
/// not be read.
fn diagnoses(told: &[(Ask, Told)]) -> String {
    let mut out = String::new();
    for (ask, answer) in told {
        out.push('\n');
        let id = ask.task_id();
        match answer {
            Told::PreCheck(report) => out.push_str(&pre_check(id, report)),
            Told::Progress { phase, percent } => out.push_str(&format!(
                "Cluster task {id}: {}, {}\n",
                phase.as_deref().unwrap_or("-"),
                percent.map_or_else(|| "progress unknown".into(), |p| format!("{p}% done"))
            )),
            Told::Cluster(report) => {
                let said: Vec<&str> = [&report.phase, &report.reason, &report.message]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                out.push_str(&format!("Cluster after task {id}: {}\n", said.join(": ")));
            }
            Told::Snapshot(messages) => {
                out.push_str(&format!("Snapshot {id}: {}\n", messages.join("; ")));
            }
            Told::UpgradeTask(task) => match task {
                Some(task) => out.push_str(&format!(
                    "Upgrade task {} (no workflow): {}, {}\n",
                    task.id,
                    task.phase.as_ref().map_or("-", |p| p.as_str()),
                    task.percent
                        .map_or_else(|| "progress unknown".into(), |p| format!("{p}% done"))
                )),
                None => out.push_str(&format!("Cluster {id}: no upgrade task\n")),
            },
            Told::ClusterName(name) => {
                let name = name.as_deref().unwrap_or("-");
                out.push_str(&format!("Cluster {id}: named {name}\n"));
            }
            Told::Unavailable(said) => {
                out.push_str(&format!("Diagnostics unavailable for task {id}: {said}\n"));
            }
        }
    }
    out
}

/// A pre-check's phase, then its findings as a table in the report's order (most severe
/// first) and how many more there were, or `No findings.`
fn pre_check(id: &str, report: &CheckReport) -> String {
    let dash = || "-".to_string();
    let mut out = format!(
        "Pre-check {id}: {}{}\n",
        report.phase.as_deref().unwrap_or("-"),
        report
            .message
            .as_deref()
            .map(|m| format!(", {m}"))
            .unwrap_or_default()
    );
    if report.items.is_empty() {
        out.push_str("No findings.\n");
        return out;
    }
    let mut rows = vec![vec![
        "KIND".to_string(),
        "LEVEL".into(),
        "GROUP".into(),
        "ITEM".into(),
        "SUBJECT".into(),
        "CODES".into(),
        "MESSAGE".into(),
    ]];
    rows.extend(report.items.iter().map(|f| {
        vec![
            f.kind.clone().unwrap_or_else(dash),
            f.level.clone().unwrap_or_else(dash),
            f.group.clone().unwrap_or_else(dash),
            f.name.clone().unwrap_or_else(dash),
            f.subject.clone().unwrap_or_else(dash),
            if f.error_codes.is_empty() {
                dash()
            } else {
                f.error_codes.join(",")
            },
            f.message.clone().unwrap_or_else(dash),
        ]
    }));
    out.push_str(&columns(&rows));
    if let Some(more) = report.more_items {
        out.push_str(&format!("... and {more} more items.\n"));
    }
    out.push_str("Exception: must be fixed. Risk: may be skipped once confirmed.\n");
    out
}

/// The task to look at now (the one status names) and for how long it has been (or was)
/// at it: `Cluster, running for 5m0s`, `Cluster, failed after 9m5s`, `-` when there is none.
fn current_task(wf: &Workflow, now: Timestamp) -> String {
    let Some(p) = wf.current_task() else {
        return "-".into();
    };
    let task = p
        .task_type
        .as_ref()
        .map_or_else(|| "-".to_string(), |t| t.to_string());
    let state = p.status.as_ref().map(|s| s.to_string()).unwrap_or_default();
    let start = p.start_time_stamp.as_deref().and_then(time::parse);
    let end = p.end_time_stamp.as_deref().and_then(time::parse);
    match (&p.status, start, end) {
        (Some(TaskState::Failed), Some(s), Some(e)) => {
            format!("{task}, failed after {}", span(s, e))
        }
        (_, Some(s), None) => format!("{task}, {} for {}", state.to_lowercase(), span(s, now)),
        _ => format!("{task}, {}", state.to_lowercase()),
    }
}

fn task_row(p: &PointStatus, now: Timestamp) -> Vec<String> {
    let dash = || "-".to_string();
    let start = p.start_time_stamp.as_deref().and_then(time::parse);
    let end = p.end_time_stamp.as_deref().and_then(time::parse);
    let duration = match (start, end) {
        (Some(s), Some(e)) => span(s, e),
        (Some(s), None) => format!("{} so far", span(s, now)),
        _ => dash(),
    };
    let note = match p.expire_time_stamp.as_deref() {
        Some(raw) => match time::parse(raw) {
            Some(at) if at > now => format!("result expires in {}", span(now, at)),
            Some(at) => format!("result expired {} ago", span(at, now)),
            None => format!("expires {raw}"),
        },
        None => String::new(),
    };
    vec![
        p.task_type.as_ref().map_or_else(dash, |t| t.to_string()),
        p.status.as_ref().map_or_else(dash, |s| s.to_string()),
        ago(p.start_time_stamp.as_deref(), now),
        ago(p.end_time_stamp.as_deref(), now),
        duration,
        p.task_id.clone().unwrap_or_else(dash),
        note,
    ]
}

fn phase_meaning(phase: &Phase) -> &'static str {
    match phase {
        Phase::Init => "no task started yet",
        Phase::Running => "a task is running",
        Phase::Pending => "a task failed; waiting for a retry or a decision",
        Phase::Success => "every task succeeded",
        Phase::Cancel => "cancelled",
        Phase::Unknown(_) => "a phase this version does not know",
    }
}

/// `2023-11-25T07:20:04Z (3d ago)`, or the raw text when it does not parse.
fn when(raw: Option<&str>, now: Timestamp) -> String {
    let Some(raw) = raw else {
        return "-".into();
    };
    match time::parse(raw) {
        Some(ts) if ts <= now => format!(
            "{} ({} ago)",
            ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            span(ts, now)
        ),
        Some(ts) => format!(
            "{} (in {})",
            ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            span(now, ts)
        ),
        None => raw.to_string(),
    }
}

/// `3m10s ago`: tasks are read relative to now; the raw text when it does not parse.
fn ago(raw: Option<&str>, now: Timestamp) -> String {
    let Some(raw) = raw else {
        return "-".into();
    };
    match time::parse(raw) {
        Some(ts) if ts <= now => format!("{} ago", span(ts, now)),
        Some(ts) => format!("in {}", span(now, ts)),
        None => raw.to_string(),
    }
}

/// A compact, coarse length of time between two instants: `42s`, `9m5s`, `3h20m`, `12d4h`,
/// `3y3d`.
fn span(from: Timestamp, to: Timestamp) -> String {
    duration::format(to.duration_since(from).unsigned_abs(), Precision::Coarse)
}

/// Left-aligned columns separated by two spaces; trailing spaces trimmed.
fn columns(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::SEED_EXAMPLE;

    fn seed() -> Workflow {
        serde_json::from_str(SEED_EXAMPLE).expect("seed parses")
    }

    fn now() -> Timestamp {
        "2023-11-25T08:00:00Z".parse().expect("ts")
    }

    /// The rendered text with runs of spaces collapsed, so tests do not pin column widths.
    fn squeezed(found: &Found) -> String {
        table(found, now())
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_table_shows_phase_versions_and_each_task_with_duration() {
        let text = squeezed(&Found::One(Box::new(seed()), Vec::new()));
        for expected in [
            "Phase Pending (a task failed; waiting for a retry or a decision)",
            "Version v1.17.17-r0 -> v1.19.16-r80",
            "Progress 1/4 tasks succeeded",
            "Current task Cluster, failed after 9m5s",
            "Created 2023-11-25T06:32:34Z (1h27m ago)",
            "Last change 2023-11-25T07:49:30Z (10m29s ago)",
            "TASK STATUS STARTED ENDED DURATION ID NOTE",
            "PreCheck Success 39m55s ago 38m54s ago 1m0s f61e008c-1600-41c0-9bde-121de5a30660 result expires in 21m5s",
            "Cluster Failed 10m29s ago 1m24s ago 9m5s 6d799ff6-3afe-4242-80b4-6f0a0fa746cb",
            "Snapshot - - - - -\n",
            "PostCheck - - - - -",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn a_running_task_shows_time_so_far_and_raw_unparsable_times() {
        let wf: Workflow = serde_json::from_str(
            r#"{"status":{"phase":"Paused","pointStatuses":[
                {"taskType":"Cluster","status":"Running","startTimeStamp":"2023-11-25 07:55:00 +0000 UTC"},
                {"taskType":"NodePool","status":"queue","startTimeStamp":"last tuesday"}]}}"#,
        )
        .expect("parses");
        let text = squeezed(&Found::One(Box::new(wf), Vec::new()));
        assert!(
            text.contains("Cluster Running 5m0s ago - 5m0s so far"),
            "{text}"
        );
        assert!(
            text.contains("Current task Cluster, running for 5m0s"),
            "{text}"
        );
        assert!(
            text.contains("Paused (a phase this version does not know)"),
            "{text}"
        );
        assert!(text.contains("NodePool queue last tuesday - -"), "{text}");
    }

    #[test]
    fn pre_check_findings_print_as_a_table_most_severe_first() {
        use crate::crd::{CheckFinding, CheckReport};
        let finding = |kind: &str, name: &str, subject: &str| CheckFinding {
            name: Some(name.into()),
            kind: Some(kind.into()),
            group: Some("NodeCheck".into()),
            level: Some("Fatal".into()),
            message: Some("node worker-2 is NotReady".into()),
            error_codes: vec!["Node.0022".into()],
            subject: Some(subject.into()),
        };
        let told = vec![(
            Ask::PreCheck("p1".into()),
            Told::PreCheck(CheckReport {
                phase: Some("Failed".into()),
                message: None,
                items: vec![
                    finding("Exception", "NodeReady", "worker-2"),
                    finding("Risk", "DeprecatedAPI", "/apis/x"),
                ],
                more_items: Some(3),
            }),
        )];
        let text = squeezed(&Found::One(Box::new(seed()), told));
        assert!(text.contains("Pre-check p1: Failed"), "{text}");
        assert!(
            text.contains("KIND LEVEL GROUP ITEM SUBJECT CODES MESSAGE"),
            "{text}"
        );
        assert!(
            text.contains(
                "Exception Fatal NodeCheck NodeReady worker-2 Node.0022 node worker-2 is NotReady"
            ),
            "{text}"
        );
        assert!(text.contains("... and 3 more items."), "{text}");
    }

    #[test]
    fn spans_are_compact_at_every_scale() {
        let at = |secs: i64| {
            now()
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .expect("ts")
        };
        for (secs, text) in [
            (42, "42s"),
            (545, "9m5s"),
            (12_000, "3h20m"),
            (1_050_000, "12d3h"),
            (94_867_200, "3y3d"),
        ] {
            assert_eq!(span(now(), at(secs)), text);
            assert_eq!(span(at(secs), now()), text, "order does not matter");
        }
    }

    #[test]
    fn lists_say_how_many_and_empty_lists_say_none() {
        let list = WorkflowList {
            items: vec![seed(), seed()],
            ..WorkflowList::default()
        };
        let text = table(
            &Found::List {
                cluster_id: "c1".into(),
                list,
            },
            now(),
        );
        assert!(text.starts_with("2 upgrade workflows for cluster c1, newest first.\n"));
        let workflows = text
            .lines()
            .filter(|l| {
                l.starts_with("Workflow ") && l.ends_with(" c271e39e-1a6e-4d3d-8fa8-2a36329c68d1")
            })
            .count();
        assert_eq!(workflows, 2, "{text}");
        let empty = table(
            &Found::List {
                cluster_id: "c1".into(),
                list: WorkflowList::default(),
            },
            now(),
        );
        assert_eq!(empty, "No upgrade workflows for cluster c1.\n");
    }

    #[test]
    fn json_and_yaml_carry_the_answer_as_cce_sent_it() {
        let one = Found::One(Box::new(seed()), Vec::new());
        let text = json(&one).expect("json");
        assert!(text.ends_with("}\n"), "{text}");
        let back: Workflow = serde_json::from_str(&text).expect("parses back");
        assert_eq!(back.metadata, seed().metadata);
        let list = Found::List {
            cluster_id: "c1".into(),
            list: WorkflowList {
                items: vec![seed()],
                ..WorkflowList::default()
            },
        };
        let back: WorkflowList =
            serde_yaml::from_str(&yaml(&list).expect("yaml")).expect("parses back");
        assert_eq!(back.items.len(), 1);
    }
}
