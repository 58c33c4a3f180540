//! The Argo CD health check (docs/argocd/health.lua) run by real Lua interpreters on
//! watches whose status comes from the operator's own status logic, and the GitOps guide
//! that quotes it. Argo CD runs health checks in gopher-lua (Lua 5.1), so every case runs
//! under Lua 5.1 and 5.4; `hack/test-deps.sh` installs both, and the tests fail without them.

mod common;

use std::time::Duration;

use cce_upgrade_watch::cce::model::{SEED_EXAMPLE, Workflow};
use cce_upgrade_watch::controller::status::{Observation, next_status};
use cce_upgrade_watch::crd::UpgradeWorkflowWatchStatus;
use serde_json::{Value, json};

use common::argocd::{SCRIPT, health};
use common::repo_path as repo;

/// The seed example workflow with its phase and task statuses replaced.
fn workflow(phase: &str, tasks: [Option<&str>; 4]) -> Workflow {
    let mut wf: Value = serde_json::from_str(SEED_EXAMPLE).expect("seed example");
    wf["status"]["phase"] = phase.into();
    let points = wf["status"]["pointStatuses"]
        .as_array_mut()
        .expect("pointStatuses");
    for (point, status) in points.iter_mut().zip(tasks) {
        match status {
            Some(s) => {
                point["status"] = s.into();
                point["taskID"] = "0d7b1a57-0000-4000-8000-000000000001".into();
            }
            None => {
                let obj = point.as_object_mut().expect("point");
                obj.retain(|k, _| k == "taskType");
            }
        }
    }
    serde_json::from_value(wf).expect("workflow")
}

/// The status the operator computes for `observation` at `generation`, from an empty one.
fn status_after(observation: &Observation<'_>, generation: i64) -> UpgradeWorkflowWatchStatus {
    let now = jiff::Timestamp::now();
    let first = next_status(
        &UpgradeWorkflowWatchStatus::default(),
        &Observation::FirstSight,
        Some(generation),
        now,
        Duration::from_secs(300),
    )
    .status;
    next_status(
        &first,
        observation,
        Some(generation),
        now,
        Duration::from_secs(300),
    )
    .status
}

fn watch(generation: i64, spec_extra: Value, status: Option<&UpgradeWorkflowWatchStatus>) -> Value {
    let mut spec = json!({
        "region": "ap-southeast-1",
        "projectID": "0123456789abcdef0123456789abcdef",
        "clusterID": "b4b9e60f-8aa2-11ee-af09-0255ac10004f",
        "credentialsSecretRef": {"name": "cce-credentials"},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        spec.extend(extra.clone());
    }
    let mut obj = json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1",
        "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": "prod-upgrade", "namespace": "platform", "generation": generation},
        "spec": spec,
    });
    if let Some(s) = status {
        obj["status"] = serde_json::to_value(s).expect("status");
    }
    obj
}

#[test]
fn a_succeeded_upgrade_is_healthy() {
    let wf = workflow(
        "Success",
        [
            Some("Success"),
            Some("Success"),
            Some("Success"),
            Some("Success"),
        ],
    );
    let status = status_after(&Observation::Workflow(&wf), 1);
    let (hs, message) = health(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Healthy", "{message}");
    assert_eq!(
        message,
        "phase Success, 4/4 tasks done, target v1.19.16-r80"
    );
}

#[test]
fn a_running_upgrade_is_progressing_and_says_where_it_is() {
    let wf = workflow(
        "Running",
        [Some("Success"), Some("Success"), Some("Running"), None],
    );
    let status = status_after(&Observation::Workflow(&wf), 1);
    let (hs, message) = health(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Progressing", "{message}");
    assert_eq!(
        message,
        "phase Running, 2/4 tasks done, current task Cluster, target v1.19.16-r80"
    );
}

#[test]
fn a_failed_task_is_degraded_with_the_reason() {
    // Huawei's own example: the Cluster task failed, the workflow waits in Pending.
    let wf: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("seed example");
    let status = status_after(&Observation::Workflow(&wf), 3);
    let (hs, message) = health(&watch(3, json!({}), Some(&status)));
    assert_eq!(hs, "Degraded", "{message}");
    assert!(message.starts_with("TaskFailed: "), "{message}");
    assert!(message.contains("current task Cluster"), "{message}");
}

#[test]
fn a_cancelled_upgrade_is_degraded() {
    let wf = workflow("Cancel", [Some("Success"), Some("Failed"), None, None]);
    let status = status_after(&Observation::Workflow(&wf), 1);
    let (hs, message) = health(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Degraded", "{message}");
    assert!(message.starts_with("Cancelled: "), "{message}");
}

#[test]
fn a_permanent_error_such_as_missing_access_is_degraded() {
    let status = status_after(
        &Observation::Failed {
            reason: "Forbidden",
            message: "CCE refused access to the cluster (403)".into(),
            permanent: true,
        },
        1,
    );
    let (hs, message) = health(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Degraded", "{message}");
    assert_eq!(
        message,
        "Forbidden: CCE refused access to the cluster (403)"
    );
}

#[test]
fn a_transient_error_while_running_stays_progressing_and_names_it() {
    let wf = workflow("Running", [Some("Running"), None, None, None]);
    let running = status_after(&Observation::Workflow(&wf), 1);
    let failing = next_status(
        &running,
        &Observation::Failed {
            reason: "CceUnavailable",
            message: "CCE answered 503".into(),
            permanent: false,
        },
        Some(1),
        jiff::Timestamp::now(),
        Duration::from_secs(300),
    )
    .status;
    let (hs, message) = health(&watch(1, json!({}), Some(&failing)));
    assert_eq!(hs, "Progressing", "{message}");
    assert!(
        message.ends_with("CCE not in sync, retrying: CceUnavailable: CCE answered 503"),
        "{message}"
    );
}

#[test]
fn a_suspended_watch_is_suspended_whatever_its_last_status() {
    let wf = workflow(
        "Success",
        [
            Some("Success"),
            Some("Success"),
            Some("Success"),
            Some("Success"),
        ],
    );
    let done = status_after(&Observation::Workflow(&wf), 1);
    let suspended = next_status(
        &done,
        &Observation::Suspended,
        Some(2),
        jiff::Timestamp::now(),
        Duration::from_secs(300),
    )
    .status;
    let (hs, message) = health(&watch(2, json!({"suspend": true}), Some(&suspended)));
    assert_eq!(hs, "Suspended", "{message}");
    // Also before the operator has seen the change.
    let (hs, _) = health(&watch(2, json!({"suspend": true}), Some(&done)));
    assert_eq!(hs, "Suspended");
}

#[test]
fn a_new_watch_without_status_or_first_answer_is_progressing() {
    let (hs, message) = health(&watch(1, json!({}), None));
    assert_eq!(hs, "Progressing", "{message}");
    assert_eq!(
        message,
        "waiting for the operator to observe the current spec"
    );

    let first = next_status(
        &UpgradeWorkflowWatchStatus::default(),
        &Observation::FirstSight,
        Some(1),
        jiff::Timestamp::now(),
        Duration::from_secs(300),
    )
    .status;
    let (hs, message) = health(&watch(1, json!({}), Some(&first)));
    assert_eq!(hs, "Progressing", "{message}");
    assert_eq!(message, "waiting for the first answer from CCE");
}

#[test]
fn a_ready_status_for_an_older_spec_generation_does_not_count() {
    let wf = workflow(
        "Success",
        [
            Some("Success"),
            Some("Success"),
            Some("Success"),
            Some("Success"),
        ],
    );
    let done = status_after(&Observation::Workflow(&wf), 1);
    // The spec changed (generation 2) and the operator has not written status for it yet.
    let (hs, message) = health(&watch(2, json!({}), Some(&done)));
    assert_eq!(hs, "Progressing", "{message}");

    // status.observedGeneration is current but a condition lags: it is ignored too.
    let mut mixed = done.clone();
    mixed.observed_generation = Some(2);
    let (hs, message) = health(&watch(2, json!({}), Some(&mixed)));
    assert_eq!(hs, "Progressing", "{message}");
}

#[test]
fn the_gitops_guide_quotes_the_health_script_verbatim() {
    let script = std::fs::read_to_string(repo(SCRIPT)).expect("read health.lua");
    let guide = std::fs::read_to_string(repo("docs/gitops.md")).expect("read docs/gitops.md");
    // In argocd-cm the script is a YAML block scalar: every line indented the same.
    let indented: String = script
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect();
    assert!(
        guide.contains(&indented),
        "docs/gitops.md must quote docs/argocd/health.lua verbatim (indented by 4 spaces in \
         the argocd-cm example); update the guide after changing the script"
    );
}
