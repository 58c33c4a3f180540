//! The GitOps guide's health checks, run on watches whose status comes from the operator's
//! own status logic, each by the other project's own code: the Argo CD health check by
//! Argo CD's Lua engine (tests/argocd-health: its util/lua package, with the libraries it
//! opens for an argocd-cm customization and for a built-in check), also on the check's
//! upstream-layout test cases; and Flux's two health checks by Flux's own Go packages
//! (tests/flux-health): kstatus, its default, and the `healthCheckExprs` of
//! docs/gitops.md. Both need Go; the tests fail without it.

use crate::common;

use std::time::Duration;

use cce_upgrade_watch::cce::model::{SEED_EXAMPLE, Workflow};
use cce_upgrade_watch::crd::UpgradeWorkflowWatchStatus;
use cce_upgrade_watch::failure::{Category, Failure};
use cce_upgrade_watch::reconciler::core::status::{Observation, next_status};
use serde_json::{Value, json};

use common::argocd::{CHECK_DIR, SCRIPT, engine, health, try_health_with};
use common::flux::{Flux, flux};
use common::repo_path as repo;

/// (Argo CD health, its message, Flux's verdicts) of one object.
fn judge(obj: &Value) -> (String, String, Flux) {
    let (hs, message) = health(obj);
    (hs, message, flux(obj))
}

const ALL_SUCCESS: [Option<&str>; 4] = [
    Some("Success"),
    Some("Success"),
    Some("Success"),
    Some("Success"),
];

fn later(
    old: &UpgradeWorkflowWatchStatus,
    observation: &Observation<'_>,
    generation: i64,
) -> UpgradeWorkflowWatchStatus {
    next_status(
        old,
        observation,
        Some(generation),
        jiff::Timestamp::now(),
        Duration::from_secs(300),
    )
    .status
}

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
        "accountRef": {"kind": "CCEAccount", "name": "prod"},
        "clusterID": "b4b9e60f-8aa2-11ee-af09-0255ac10004f",
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
fn a_succeeded_upgrade_is_healthy_and_current() {
    let wf = workflow("Success", ALL_SUCCESS);
    let status = status_after(&Observation::Workflow(&wf), 1);
    let (hs, message, flux) = judge(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Healthy", "{message}");
    assert_eq!(
        message,
        "phase Success, 4/4 tasks done, target v1.19.16-r80"
    );
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("Current", "Current")
    );
}

#[test]
fn a_running_upgrade_is_progressing_and_says_where_it_is() {
    let wf = workflow(
        "Running",
        [Some("Success"), Some("Success"), Some("Running"), None],
    );
    let status = status_after(&Observation::Workflow(&wf), 1);
    let (hs, message, flux) = judge(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Progressing", "{message}");
    assert_eq!(
        message,
        "phase Running, 2/4 tasks done, current task Cluster, target v1.19.16-r80"
    );
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("InProgress", "InProgress")
    );
}

#[test]
fn a_failed_task_is_degraded_with_the_reason_and_failed_for_flux() {
    // Huawei's own example: the Cluster task failed, the workflow waits in Pending.
    let wf: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("seed example");
    let status = status_after(&Observation::Workflow(&wf), 3);
    let (hs, message, flux) = judge(&watch(3, json!({}), Some(&status)));
    assert_eq!(hs, "Degraded", "{message}");
    assert!(message.starts_with("TaskFailed: "), "{message}");
    assert!(message.contains("current task Cluster"), "{message}");
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("Failed", "Failed")
    );
}

#[test]
fn a_cancelled_upgrade_is_degraded() {
    let wf = workflow("Cancel", [Some("Success"), Some("Failed"), None, None]);
    let status = status_after(&Observation::Workflow(&wf), 1);
    let (hs, message, flux) = judge(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Degraded", "{message}");
    assert!(message.starts_with("Cancelled: "), "{message}");
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("Failed", "Failed")
    );
}

#[test]
fn a_permanent_error_such_as_missing_access_is_degraded() {
    let status = status_after(
        &Observation::Failed(Failure {
            category: Category::Forbidden,
            message: "CCE refused access to the cluster (403)".into(),
            permanent: true,
        }),
        1,
    );
    let (hs, message, flux) = judge(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Degraded", "{message}");
    assert_eq!(
        message,
        "Forbidden: CCE refused access to the cluster (403)"
    );
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("Failed", "Failed")
    );
}

/// What Argo CD and Flux show for a watch whose account is missing, as a watch from before
/// accounts is after the upgrade: a gate fails fast instead of waiting out its timeout.
#[test]
fn a_watch_without_its_account_is_degraded() {
    let status = status_after(
        &Observation::Failed(Failure {
            category: Category::AccountMissing,
            message: "CCEAccount platform/prod does not exist".into(),
            permanent: true,
        }),
        1,
    );
    let (hs, message, flux) = judge(&watch(1, json!({}), Some(&status)));
    assert_eq!(hs, "Degraded", "{message}");
    assert_eq!(
        message,
        "AccountMissing: CCEAccount platform/prod does not exist"
    );
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("Failed", "Failed")
    );
}

#[test]
fn a_transient_error_while_running_stays_progressing_and_names_it() {
    let wf = workflow("Running", [Some("Running"), None, None, None]);
    let running = status_after(&Observation::Workflow(&wf), 1);
    let failing = later(
        &running,
        &Observation::Failed(Failure {
            category: Category::CceUnavailable,
            message: "CCE answered 503".into(),
            permanent: false,
        }),
        1,
    );
    let (hs, message, flux) = judge(&watch(1, json!({}), Some(&failing)));
    assert_eq!(hs, "Progressing", "{message}");
    assert!(
        message.ends_with("CCE not in sync, retrying: CceUnavailable: CCE answered 503"),
        "{message}"
    );
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("InProgress", "InProgress")
    );
}

#[test]
fn a_suspended_watch_is_suspended_whatever_its_last_status() {
    let wf = workflow("Success", ALL_SUCCESS);
    let done = status_after(&Observation::Workflow(&wf), 1);
    let suspended = later(&done, &Observation::Suspended, 2);
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
    // Before the first status (right after apply, or while the operator is down) Flux's
    // default kstatus check passes: the reason docs/gitops.md recommends healthCheckExprs,
    // which cannot be evaluated yet and leave the watch Unknown, not healthy.
    let flux = flux(&watch(1, json!({}), None));
    assert_eq!(flux.kstatus, "Current", "kstatus on a watch without status");
    assert_eq!(flux.exprs, "Unknown", "{}", flux.message);
    assert!(
        flux.message.contains("no such attribute"),
        "{}",
        flux.message
    );

    let first = later(
        &UpgradeWorkflowWatchStatus::default(),
        &Observation::FirstSight,
        1,
    );
    let (hs, message, flux) = judge(&watch(1, json!({}), Some(&first)));
    assert_eq!(hs, "Progressing", "{message}");
    assert_eq!(message, "waiting for the first answer from CCE");
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("InProgress", "InProgress")
    );
}

#[test]
fn a_ready_status_for_an_older_spec_generation_does_not_count() {
    let wf = workflow("Success", ALL_SUCCESS);
    let done = status_after(&Observation::Workflow(&wf), 1);
    // The spec changed (generation 2) and the operator has not written status for it yet.
    let (hs, message, flux) = judge(&watch(2, json!({}), Some(&done)));
    assert_eq!(hs, "Progressing", "{message}");
    assert_eq!(
        (flux.kstatus.as_str(), flux.exprs.as_str()),
        ("InProgress", "InProgress")
    );

    // status.observedGeneration is current but the conditions lag: the recipe and Argo CD
    // do not count them, kstatus reads only status.observedGeneration. The operator writes
    // both in one patch, so this checks the recipe rather than a state the operator leaves.
    let mut mixed = done.clone();
    mixed.observed_generation = Some(2);
    let (hs, message, flux) = judge(&watch(2, json!({}), Some(&mixed)));
    assert_eq!(hs, "Progressing", "{message}");
    assert_eq!(flux.exprs, "InProgress");
    assert_eq!(flux.kstatus, "Current");
}

#[test]
fn the_gitops_guide_quotes_the_health_script_verbatim_in_a_valid_argocd_cm() {
    let script = std::fs::read_to_string(repo(SCRIPT)).expect("read health.lua");
    let block = common::flux::guide_yaml_blocks()
        .into_iter()
        .find(|b| b.contains("name: argocd-cm"))
        .expect("the argocd-cm example in docs/gitops.md");
    let cm: Value = serde_yaml::from_str(&block).expect("the argocd-cm example is valid YAML");
    let key = "resource.customizations.health.cce.upgradewatch.io_UpgradeWorkflowWatch";
    assert_eq!(
        cm["data"][key].as_str(),
        Some(script.as_str()),
        "docs/gitops.md must quote {SCRIPT} verbatim under {key}; update the \
         guide after changing the script"
    );
}

#[test]
fn the_argocd_check_passes_its_upstream_test_cases() {
    let dir = repo(CHECK_DIR);
    let suite: Value = serde_yaml::from_str(
        &std::fs::read_to_string(dir.join("health_test.yaml")).expect("health_test.yaml"),
    )
    .expect("health_test.yaml is YAML");
    let cases = suite["tests"].as_array().expect("tests");
    let mut inputs: Vec<String> = cases
        .iter()
        .map(|c| c["inputPath"].as_str().expect("inputPath").to_string())
        .collect();
    inputs.sort();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("testdata"))
        .expect("testdata/")
        .map(|e| {
            format!(
                "testdata/{}",
                e.expect("entry").file_name().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        inputs, files,
        "every testdata file is one case, and only those"
    );
    // The fixtures are watches the operator could have written.
    for file in &files {
        let obj: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join(file)).expect("read"))
                .expect("fixture YAML");
        if let Some(status) = obj.get("status") {
            serde_json::from_value::<UpgradeWorkflowWatchStatus>(status.clone())
                .unwrap_or_else(|e| panic!("{file}: not a watch status: {e}"));
        }
    }

    let out = std::process::Command::new(engine())
        .arg("cases")
        .arg(&dir)
        .output()
        .expect("run argocd-health cases");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        cases.len(),
        "{report}"
    );
}

#[test]
fn an_argocd_cm_check_gets_only_the_libraries_argo_cd_opens_for_it() {
    // Argo CD opens no string library for a customization in argocd-cm: a check that
    // used one would fail there, whatever a full Lua says.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("health.lua");
    std::fs::write(
        &script,
        "hs = {}\nhs.status = \"Healthy\"\nhs.message = string.format(\"%d\", 1)\nreturn hs\n",
    )
    .expect("write");
    let err = try_health_with(&script, &watch(1, json!({}), None))
        .expect_err("string.format is not available to an argocd-cm check");
    assert!(err.contains("argocd-cm customization"), "{err}");
}
