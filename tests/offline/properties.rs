//! Property tests of the pure core: status mirroring and the events diffed from it, the
//! bounds on diagnoses, request canonicalisation, and the parsers that read what CCE sends.
//!
//! What "the emitted events are exactly the transitions" means here. A watch sees a
//! sequence of observations: CCE snapshots of one workflow (same uid, the same task types
//! in the same order; phases, task statuses and task ids arbitrary) and CCE failures in
//! between. Folding them through `next_status` and diffing consecutive statuses with
//! `transitions` must give, per observation and in this order:
//! 1. `SyncFailed` when this observation failed and the previous did not (the first one
//!    counts as not failed), `SyncRecovered` when it succeeded after a failure;
//! 2. for the first snapshot, one `WorkflowObserved`, then a `TaskFailed` warning for each
//!    task already Failed, and nothing else about the workflow;
//! 3. for a later snapshot, compared with the last snapshot before it, for each task in
//!    order: when its status or (a previously known) id changed, `TaskStarted` if it is now
//!    Running, `TaskSucceeded` if Success, `TaskFailed` if Failed (other values: nothing);
//!    then, when the phase changed, `UpgradeSucceeded` for Success, else `PhaseChanged`
//!    (a warning for Pending and Cancel).
//!
//! A failure never emits workflow events and never changes the tasks.

use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;

use cce_upgrade_watch::cce::diagnostics::PreCheckTask;
use cce_upgrade_watch::cce::model::Workflow;
use cce_upgrade_watch::cce::{sign, time as cce_time};
use cce_upgrade_watch::crd::UpgradeWorkflowWatchStatus;
use cce_upgrade_watch::diagnosis::findings;
use cce_upgrade_watch::failure::{Category, Failure};
use cce_upgrade_watch::limits::{self, MAX_EVENTS_PER_RECONCILE};
use cce_upgrade_watch::reconciler::core::events::{Transition, transitions};
use cce_upgrade_watch::reconciler::core::status::{Observation, next_status};

const HEARTBEAT: Duration = Duration::from_secs(300);

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ generators

fn task_type() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "PreCheck",
        "Snapshot",
        "Cluster",
        "PostCheck",
        "Rollback",
        "NodePool",
    ])
}

fn task_status() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        None,
        Some("Init"),
        Some("Queuing"),
        Some("Running"),
        Some("Success"),
        Some("Failed"),
        Some("Paused"),
    ])
}

fn phase() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        None,
        Some("Init"),
        Some("Running"),
        Some("Pending"),
        Some("Success"),
        Some("Cancel"),
        Some("Paused now"),
    ])
}

fn task_id() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![None, Some("id-a"), Some("id-b"), Some("id-c")])
}

/// One snapshot's state of each task: (status, id), plus the phase.
#[derive(Clone, Debug)]
struct Snapshot {
    phase: Option<&'static str>,
    tasks: Vec<(Option<&'static str>, Option<&'static str>)>,
}

#[derive(Clone, Debug)]
enum Obs {
    Snap(Snapshot),
    Fail { permanent: bool },
}

fn snapshot(n: usize) -> impl Strategy<Value = Snapshot> {
    (
        phase(),
        prop::collection::vec((task_status(), task_id()), n),
    )
        .prop_map(|(phase, tasks)| Snapshot { phase, tasks })
}

/// Task types (repeats allowed), then observations, starting with a snapshot.
fn history() -> impl Strategy<Value = (Vec<&'static str>, Vec<Obs>)> {
    prop::collection::vec(task_type(), 0..6).prop_flat_map(|types| {
        let n = types.len();
        let obs = prop_oneof![
            4 => snapshot(n).prop_map(Obs::Snap),
            1 => any::<bool>().prop_map(|permanent| Obs::Fail { permanent }),
        ];
        (Just(types), snapshot(n), prop::collection::vec(obs, 0..12)).prop_map(
            |(types, first, rest)| {
                let mut all = vec![Obs::Snap(first)];
                all.extend(rest);
                (types, all)
            },
        )
    })
}

fn workflow(types: &[&str], s: &Snapshot) -> Workflow {
    let points: Vec<serde_json::Value> = types
        .iter()
        .zip(&s.tasks)
        .enumerate()
        .map(|(j, (t, (status, id)))| {
            let mut p = serde_json::json!({"taskType": t});
            if let Some(status) = status {
                p["status"] = (*status).into();
                // CCE stamps with microseconds; Kubernetes keeps whole seconds.
                p["startTimeStamp"] = format!("2024-01-01 00:00:0{j}.123456 +0000 UTC").into();
            }
            if let Some(id) = id {
                p["taskID"] = (*id).into();
            }
            p
        })
        .collect();
    let mut status = serde_json::json!({"pointStatuses": points});
    if let Some(phase) = s.phase {
        status["phase"] = phase.into();
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"uid": "wf-1", "creationTimestamp": "2024-01-01 00:00:00 +0000 UTC"},
        "spec": {"clusterVersion": "v1.28", "targetVersion": "v1.29"},
        "status": status,
    }))
    .expect("generated workflow parses")
}

fn at(i: usize) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + 10 * i as i64).expect("valid")
}

fn observe(
    old: &UpgradeWorkflowWatchStatus,
    types: &[&str],
    obs: &Obs,
    now: Timestamp,
) -> UpgradeWorkflowWatchStatus {
    match obs {
        Obs::Snap(s) => {
            let wf = workflow(types, s);
            next_status(old, &Observation::Workflow(&wf), Some(1), now, HEARTBEAT).status
        }
        Obs::Fail { permanent } => {
            let o = Observation::Failed(Failure {
                category: if *permanent {
                    Category::Forbidden
                } else {
                    Category::CceUnavailable
                },
                message: "boom".into(),
                permanent: *permanent,
            });
            next_status(old, &o, Some(1), now, HEARTBEAT).status
        }
    }
}

/// The specification in the module docs, computed from the observations alone.
fn expected(types: &[&str], obs: &[Obs]) -> Vec<Vec<(&'static str, bool)>> {
    let mut out = Vec::new();
    let mut failing = false;
    let mut last: Option<&Snapshot> = None;
    for o in obs {
        let mut here = Vec::new();
        let now_failing = matches!(o, Obs::Fail { .. });
        if now_failing && !failing {
            here.push(("SyncFailed", true));
        }
        if !now_failing && failing {
            here.push(("SyncRecovered", false));
        }
        failing = now_failing;
        if let Obs::Snap(s) = o {
            match last {
                None => {
                    here.push(("WorkflowObserved", false));
                    for (status, _) in &s.tasks {
                        if *status == Some("Failed") {
                            here.push(("TaskFailed", true));
                        }
                    }
                }
                Some(prev) => {
                    for (j, (status, id)) in s.tasks.iter().enumerate() {
                        let (was, was_id) = prev.tasks[j];
                        let restarted = was_id.is_some() && was_id != *id;
                        if *status != was || restarted {
                            match *status {
                                Some("Running") => here.push(("TaskStarted", false)),
                                Some("Success") => here.push(("TaskSucceeded", false)),
                                Some("Failed") => here.push(("TaskFailed", true)),
                                _ => {}
                            }
                        }
                    }
                    if s.phase != prev.phase {
                        here.push(match s.phase {
                            Some("Success") => ("UpgradeSucceeded", false),
                            Some("Pending" | "Cancel") => ("PhaseChanged", true),
                            _ => ("PhaseChanged", false),
                        });
                    }
                }
            }
            last = Some(s);
        }
        let _ = types;
        out.push(folded(here));
    }
    out
}

/// More transitions than an operator publishes at once: every one that is not about a task
/// stays, task ones fill the rest but one place, and that place is a summary of the others.
fn folded(here: Vec<(&'static str, bool)>) -> Vec<(&'static str, bool)> {
    if here.len() <= MAX_EVENTS_PER_RECONCILE {
        return here;
    }
    let about_a_task = |r: &str| r.starts_with("Task");
    let others = here.iter().filter(|(r, _)| !about_a_task(r)).count();
    let mut room = MAX_EVENTS_PER_RECONCILE - others - 1;
    let (mut kept, mut summary_warns) = (Vec::new(), false);
    for (reason, warning) in here {
        if !about_a_task(reason) {
            kept.push((reason, warning));
        } else if room > 0 {
            room -= 1;
            kept.push((reason, warning));
        } else {
            summary_warns |= warning;
        }
    }
    kept.push(("TasksChanged", summary_warns));
    kept
}

fn shape(t: &[Transition]) -> Vec<(&'static str, bool)> {
    t.iter().map(|t| (t.reason.as_str(), t.warning)).collect()
}

// ------------------------------------------------------------------ events and status

proptest! {
    #![proptest_config(config())]

    #[test]
    fn emitted_events_are_exactly_the_transitions_of_the_snapshots((types, obs) in history()) {
        let want = expected(&types, &obs);
        let mut status = UpgradeWorkflowWatchStatus::default();
        for (i, o) in obs.iter().enumerate() {
            let next = observe(&status, &types, o, at(i));
            prop_assert_eq!(shape(&transitions(&status, &next)), want[i].clone(), "observation {}: {:?}", i, o);
            status = next;
        }
    }

    #[test]
    fn replaying_a_snapshot_emits_nothing_and_writes_nothing((types, obs) in history()) {
        let mut status = UpgradeWorkflowWatchStatus::default();
        for (i, o) in obs.iter().enumerate() {
            status = observe(&status, &types, o, at(i));
            // The same observation again a moment later (before the heartbeat is due).
            let again = observe(&status, &types, o, at(i) + Duration::from_secs(1));
            prop_assert!(transitions(&status, &again).is_empty());
            prop_assert_eq!(&again, &status);
            // After a restart the operator starts from the status stored in Kubernetes.
            let stored: UpgradeWorkflowWatchStatus =
                serde_json::from_value(serde_json::to_value(&status).expect("serialize"))
                    .expect("deserialize");
            let after_restart = observe(&stored, &types, o, at(i) + Duration::from_secs(2));
            prop_assert!(transitions(&stored, &after_restart).is_empty());
            prop_assert_eq!(&after_restart, &stored, "a restart would rewrite an unchanged status");
        }
    }

    #[test]
    fn status_never_loses_a_task((types, obs) in history()) {
        let mut status = UpgradeWorkflowWatchStatus::default();
        for (i, o) in obs.iter().enumerate() {
            let next = observe(&status, &types, o, at(i));
            match o {
                Obs::Snap(s) => {
                    prop_assert_eq!(next.tasks.len(), types.len());
                    for (j, task) in next.tasks.iter().enumerate() {
                        prop_assert_eq!(task.task_type.as_str(), types[j]);
                        prop_assert_eq!(task.phase.as_deref(), s.tasks[j].0);
                        prop_assert_eq!(task.id.as_deref(), s.tasks[j].1);
                    }
                    prop_assert_eq!(next.phase.as_deref(), s.phase);
                }
                Obs::Fail { .. } => {
                    prop_assert_eq!(&next.tasks, &status.tasks);
                    prop_assert_eq!(&next.phase, &status.phase);
                    prop_assert_eq!(&next.workflow_id, &status.workflow_id);
                }
            }
            status = next;
        }
    }
}

// ------------------------------------------------------------------ canonicalisation

fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                sign::encode_component(k),
                sign::encode_component(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_query_survives_encoding_and_decoding(pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..8)) {
        let wire = encode_pairs(&pairs);
        let decoded = sign::decode_query(&wire);
        prop_assert_eq!(sign::canonical_query(&decoded), sign::canonical_query(&pairs));
        prop_assert_eq!(decoded, pairs);
    }

    #[test]
    fn canonical_uri_is_idempotent_on_its_output(path in any::<String>()) {
        let once = sign::canonical_uri(&path);
        prop_assert!(once.ends_with('/'));
        prop_assert_eq!(sign::canonical_uri(&once), once.clone());
    }

    #[test]
    fn canonical_uri_of_encoded_segments_is_those_segments(segments in prop::collection::vec("[^/]*", 1..6)) {
        let wire = format!("/{}", segments.iter().map(|s| sign::encode_component(s)).collect::<Vec<_>>().join("/"));
        let want = if wire.ends_with('/') { wire.clone() } else { format!("{wire}/") };
        prop_assert_eq!(sign::canonical_uri(&wire), want);
    }

    #[test]
    fn what_is_signed_verifies_from_its_wire_form(
        segments in prop::collection::vec(any::<String>(), 1..4),
        pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        sk in "[A-Za-z0-9]{1,40}",
    ) {
        let path = format!("/{}", segments.iter().map(|s| sign::encode_component(s)).collect::<Vec<_>>().join("/"));
        let headers = vec![
            ("Host".to_string(), "cce.example.myhuaweicloud.com".to_string()),
            ("X-Sdk-Date".to_string(), "20240315T081530Z".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        let req = sign::SignableRequest { method: "GET", path: &path, query: &pairs, headers: &headers, body: &body };
        let signed = sign::sign("AK", sk.as_bytes(), &req).expect("signs");
        let mut sent = headers.clone();
        sent.push(("Authorization".into(), signed.authorization.clone()));
        let query = sign::decode_query(&encode_pairs(&pairs));
        let received = sign::SignableRequest { method: "GET", path: &path, query: &query, headers: &sent, body: &body };
        let parsed = sign::parse_authorization(&signed.authorization).expect("parses");
        prop_assert_eq!(sign::check(&received, &parsed, sk.as_bytes()), Ok(()));
    }
}

// ------------------------------------------------------------------ parsers never panic

/// Arbitrary JSON, deep enough to reach every field of a workflow with every type.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let key = prop::sample::select(vec![
        "kind",
        "apiVersion",
        "metadata",
        "uid",
        "creationTimestamp",
        "updateTimestamp",
        "spec",
        "clusterID",
        "clusterVersion",
        "targetVersion",
        "status",
        "phase",
        "pointStatuses",
        "lineStatuses",
        "taskType",
        "taskID",
        "startTimeStamp",
        "endTimeStamp",
        "expireTimeStamp",
        "startPoint",
        "endPoint",
        "critical",
        "items",
        "other",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
        timestampish().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Strings shaped like CCE timestamps, valid or not.
fn timestampish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{0,12})? [+-][0-9]{4}( [A-Z]{1,5})?( m=[+-][0-9.]{1,8})?",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
        "[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_timestamp_parser_never_panics(raw in any::<String>(), shaped in timestampish()) {
        let _ = cce_time::parse(&raw);
        let _ = cce_time::parse(&shaped);
    }

    #[test]
    fn go_timestamps_round_trip(micros in -62_000_000_000_000_000i64..250_000_000_000_000_000i64) {
        let t = Timestamp::from_microsecond(micros).expect("in range");
        prop_assert_eq!(cce_time::parse(&cce_time::format_go(t)), Some(t));
    }

    #[test]
    fn any_body_parses_or_fails_without_panicking(raw in any::<Vec<u8>>(), text in any::<String>()) {
        let _ = serde_json::from_slice::<Workflow>(&raw);
        let _ = serde_json::from_str::<Workflow>(&text);
        let _ = serde_json::from_str::<cce_upgrade_watch::cce::model::WorkflowList>(&text);
    }

    /// Whatever shape CCE's JSON takes, reading it and mirroring it into status neither
    /// panics nor loses a task.
    #[test]
    fn any_json_that_parses_is_mirrored_without_panicking(value in json_value()) {
        let text = value.to_string();
        if let Ok(wf) = serde_json::from_str::<Workflow>(&text) {
            let next = next_status(&Default::default(), &Observation::Workflow(&wf), Some(1), at(0), HEARTBEAT);
            prop_assert_eq!(next.status.tasks.len(), wf.points().len());
            let _ = transitions(&Default::default(), &next.status);
            let again = next_status(&next.status, &Observation::Workflow(&wf), Some(1), at(1), HEARTBEAT);
            prop_assert!(transitions(&next.status, &again.status).is_empty());
        }
        if let Ok(list) = serde_json::from_str::<cce_upgrade_watch::cce::model::WorkflowList>(&text) {
            let _ = list.newest();
        }
    }
}

// ------------------------------------------------------------------ diagnoses are bounded

/// A check item of any shape CCE could send: long or odd strings, many error codes.
fn check_item() -> impl Strategy<Value = serde_json::Value> {
    let text = prop_oneof![
        "[ -~]{0,20}",
        any::<String>(),
        (1000usize..2000).prop_map(|n| "é".repeat(n)),
    ];
    (
        text.clone(),
        text.clone(),
        prop::sample::select(vec!["Exception", "Risk", "exception", "Other"]),
        prop::sample::select(vec!["Info", "Warning", "Fatal", "FATAL", ""]),
        prop::sample::select(vec!["Failed", "Success", "failed", "Init", "Weird"]),
        prop::collection::vec(text, 0..12),
    )
        .prop_map(|(name, message, kind, level, phase, codes)| {
            serde_json::json!({
                "name": name, "message": message, "kind": kind, "level": level,
                "phase": phase, "group": "NodeCheck", "errorCodes": codes,
                "riskSource": {"deprecatedAPIRisks": [{"url": "/apis/x/v1beta1/y"}]}
            })
        })
}

fn precheck_task(items: Vec<serde_json::Value>) -> PreCheckTask {
    let half = items.len() / 2;
    serde_json::from_value(serde_json::json!({
        "metadata": {"uid": "p1"},
        "status": {
            "phase": "Failed",
            "message": "m".repeat(5000),
            "clusterCheckStatus": {"itemsStatus": items[..half]},
            "nodeCheckStatus": {"nodeStageStatus": [
                {"nodeInfo": {"uid": "n1", "name": "worker-1"}, "itemsStatus": items[half..]}
            ]}
        }
    }))
    .expect("pre-check")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..config() })]

    /// However many items and however long their strings, the findings stay within the
    /// bounds, the most severe first, and every finding is either listed or counted.
    #[test]
    fn findings_of_any_item_list_stay_within_the_bounds(items in prop::collection::vec(check_item(), 0..30)) {
        let task = precheck_task(items);
        let findings = task.findings().len();
        let report = findings::precheck_report(&task);
        prop_assert!(report.items.len() <= limits::MAX_FINDINGS);
        prop_assert_eq!(
            report.items.len() + report.more_items.unwrap_or(0) as usize,
            findings
        );
        prop_assert!(report.message.as_ref().is_none_or(|m| m.len() <= limits::FINDING_MESSAGE_BYTES));
        for f in &report.items {
            prop_assert!(f.error_codes.len() <= limits::MAX_ERROR_CODES);
            prop_assert!(f.message.as_ref().is_none_or(|m| m.len() <= limits::FINDING_MESSAGE_BYTES));
            for s in [&f.name, &f.kind, &f.level, &f.group, &f.subject].into_iter().flatten() {
                prop_assert!(s.len() <= limits::MAX_FIELD_BYTES && !s.chars().any(char::is_control));
            }
        }
        let blocking = findings::is_blocking;
        let first_risk = report.items.iter().position(|f| !blocking(f)).unwrap_or(report.items.len());
        prop_assert!(report.items[first_risk..].iter().all(|f| !blocking(f)), "blocking first");
    }

    /// A failed pre-check's findings reach status once: the status computed again from the
    /// same answers (a replay, a restart) emits no Event, and the status stays far below
    /// the API server's object size limit.
    #[test]
    fn a_replayed_diagnosis_emits_no_event(items in prop::collection::vec(check_item(), 0..30)) {
        let wf: Workflow = serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "w1"},
            "status": {"phase": "Pending", "pointStatuses": [
                {"taskType": "PreCheck", "taskID": "p1", "status": "Failed"}]}
        }))
        .expect("workflow");
        let told = vec![(
            findings::Ask::PreCheck("p1".into()),
            findings::Told::PreCheck(findings::precheck_report(&precheck_task(items))),
        )];
        let observation = Observation::Diagnosed { workflow: &wf, told: &told };
        let first = next_status(&Default::default(), &observation, Some(1), at(0), HEARTBEAT).status;
        let again = next_status(&first, &observation, Some(1), at(1), HEARTBEAT).status;
        prop_assert!(transitions(&first, &again).is_empty());
        let without = next_status(&first, &Observation::Workflow(&wf), Some(1), at(2), HEARTBEAT).status;
        prop_assert!(transitions(&first, &without).is_empty(), "kept, not reported again");
        prop_assert_eq!(&without.tasks, &first.tasks);
        let size = serde_json::to_vec(&first).map(|v| v.len()).unwrap_or(usize::MAX);
        prop_assert!(size < 64 * 1024, "{} bytes", size);
    }
}
