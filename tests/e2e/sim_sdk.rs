//! Conformance with Huawei's official Python SDK (huaweicloudsdkcce 3.1.219): the SDK,
//! unchanged, calls Show and List (Standard and Autopilot) and every diagnostic read
//! (ShowPreCheck, ListPreCheckTasks, ShowUpgradeClusterTask, ListUpgradeClusterTasks,
//! ShowCluster, ListClusterMasterSnapshotTasks and their Autopilot twins), and
//! ListClusters and ListAutopilotClusters with their filters, with AK/SK against the
//! simulator over TLS and decodes the same data the project's client gets; a wrong secret
//! key surfaces in the SDK as a 401 with `APIGW.0301`.
//!
//! Needs the virtualenv that `hack/python-sdk.sh` creates. Without it this test fails (it
//! never skips): run `hack/python-sdk.sh` first.

use crate::common;

use cce_upgrade_watch::cce::{ApiFamily, CceClient, CceError, Response, Target};
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::python_sdk::run_sdk;
use common::sim::Sim;
use serde_json::{Value, json};

#[tokio::test]
async fn huaweis_python_sdk_reads_the_same_workflows_and_sees_a_wrong_key_as_401() {
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .scenario(Builtin::SeedExample)
        .scenario(Builtin::AutopilotSuccess)
        .start();
    let ca = sim.ca_bundle().to_string_lossy().into_owned();
    // Mid-upgrade: ids, every timestamp kind and a running task are on the wire.
    let b = Builtin::Success;
    let ap = Builtin::AutopilotSuccess;
    let id = b.workflow_id(0);
    let (status, _) = sim
        .admin_post(
            &format!("/_sim/workflows/{id}/advance"),
            json!({"steps": 5}),
        )
        .await;
    assert_eq!(status, 200);

    let calls = json!([
        {"op": "show", "clusterID": builtin::SEED_CLUSTER_ID, "workflowID": builtin::SEED_WORKFLOW_ID},
        {"op": "list", "clusterID": builtin::SEED_CLUSTER_ID},
        {"op": "show", "clusterID": b.cluster_id(0), "workflowID": id},
        {"op": "list", "clusterID": b.cluster_id(0)},
        {"op": "autopilot-show", "clusterID": ap.cluster_id(0), "workflowID": ap.workflow_id(0)},
        {"op": "autopilot-list", "clusterID": ap.cluster_id(0)},
    ]);
    let job = |sk: &str| {
        json!({
            "endpoint": sim.url, "caBundle": ca,
            "ak": builtin::ACCESS_KEY, "sk": sk, "projectID": builtin::PROJECT_ID,
            "calls": calls,
        })
    };
    let sdk = run_sdk(&job(builtin::SECRET_KEY));

    let client: CceClient = sim.client();
    let seed = sim.builtin_target(Builtin::SeedExample);
    let success = sim.builtin_target(b);
    let autopilot = sim.builtin_target(ap);
    let ours = [
        serde_json::to_value(
            client
                .show_workflow(&seed, builtin::SEED_WORKFLOW_ID)
                .await
                .expect("show")
                .body,
        ),
        serde_json::to_value(client.list_workflows(&seed).await.expect("list").body),
        serde_json::to_value(
            client
                .show_workflow(&success, &id)
                .await
                .expect("show")
                .body,
        ),
        serde_json::to_value(client.list_workflows(&success).await.expect("list").body),
        serde_json::to_value(
            client
                .show_workflow(&autopilot, &ap.workflow_id(0))
                .await
                .expect("show")
                .body,
        ),
        serde_json::to_value(client.list_workflows(&autopilot).await.expect("list").body),
    ];
    assert_eq!(sdk.len(), ours.len());
    for (n, (theirs, ours)) in sdk.iter().zip(ours).enumerate() {
        assert_eq!(theirs["ok"], json!(true), "call {n}: {theirs}");
        assert_eq!(theirs["status"], json!(200), "call {n}");
        assert_eq!(theirs["decoded"], ours.expect("json"), "call {n}");
    }
    // The seed example went through the SDK's models unchanged, too.
    let seed_json: Value =
        serde_json::from_str(cce_upgrade_watch::cce::model::SEED_EXAMPLE).expect("seed");
    assert_eq!(sdk[0]["decoded"], seed_json);
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(stats["byStatus"]["200"], json!(12), "{stats}");
    assert_eq!(stats["byCredential"][builtin::ACCESS_KEY], json!(12));

    let denied = run_sdk(&json!({
        "endpoint": sim.url, "caBundle": ca,
        "ak": builtin::ACCESS_KEY, "sk": "not-the-secret-key", "projectID": builtin::PROJECT_ID,
        "calls": [{"op": "show", "clusterID": b.cluster_id(0), "workflowID": id}],
    }));
    let e = &denied[0];
    assert_eq!(e["ok"], json!(false), "{e}");
    assert_eq!(e["exception"], json!("ClientRequestException"));
    assert_eq!(e["status"], json!(401));
    assert_eq!(e["errorCode"], json!("APIGW.0301"));
    assert!(
        e["errorMsg"]
            .as_str()
            .is_some_and(|m| m.contains("verify aksk signature fail")),
        "{e}"
    );
    let logged = sim.requests("status=401").await;
    assert_eq!(e["requestID"], logged[0]["requestId"]);
}

/// The project's client making the call `op` (an op of the SDK script) on `target`.
async fn our_read(client: &CceClient, target: &Target, op: &str, task: &str) -> Value {
    fn body<T: serde::Serialize>(op: &str, answer: Result<Response<T>, CceError>) -> Value {
        let answer = answer.unwrap_or_else(|e| panic!("{op}: {e}"));
        serde_json::to_value(answer.body).expect("json")
    }
    match op.strip_prefix("autopilot-").unwrap_or(op) {
        "show-precheck" => body(op, client.show_pre_check(target, task).await),
        "list-prechecks" => body(op, client.list_pre_check_tasks(target).await),
        "show-upgrade-task" => body(op, client.show_upgrade_cluster_task(target, task).await),
        "list-upgrade-tasks" => body(op, client.list_upgrade_cluster_tasks(target).await),
        "show-cluster" => body(op, client.show_cluster(target).await),
        "list-snapshots" => body(op, client.list_snapshot_tasks(target).await),
        other => panic!("no such op {other}"),
    }
}

fn point_task(workflow: &Value, task: &str) -> String {
    workflow["workflow"]["status"]["pointStatuses"]
        .as_array()
        .and_then(|points| points.iter().find(|p| p["taskType"] == json!(task)))
        .and_then(|p| p["taskID"].as_str())
        .unwrap_or_else(|| panic!("no {task} task id in {workflow}"))
        .to_string()
}

#[tokio::test]
async fn huaweis_python_sdk_reads_every_diagnostic_answer_as_the_project_does() {
    let sim = Sim::https()
        .scenario(Builtin::PrecheckFails)
        .scenario(Builtin::ClusterPauses)
        .scenario(Builtin::AutopilotSuccess)
        .scenario(Builtin::SeedExample)
        .frozen()
        .start();
    let ca = sim.ca_bundle().to_string_lossy().into_owned();
    // Failed pre-check with findings; a paused Cluster task; an Autopilot upgrade done.
    // Nothing runs, so both readers see the same progress.
    let (pf, cp, ap) = (
        Builtin::PrecheckFails,
        Builtin::ClusterPauses,
        Builtin::AutopilotSuccess,
    );
    for (b, body) in [
        (pf, json!({"seconds": 70})),
        (cp, json!({"seconds": 200})),
        (ap, json!({"toEnd": true})),
    ] {
        let (status, _) = sim
            .admin_post(
                &format!("/_sim/workflows/{}/advance", b.workflow_id(0)),
                body,
            )
            .await;
        assert_eq!(status, 200);
    }
    let failed = sim.workflow(&pf.workflow_id(0)).await;
    let paused = sim.workflow(&cp.workflow_id(0)).await;
    let done = sim.workflow(&ap.workflow_id(0)).await;
    let seed = sim.workflow(builtin::SEED_WORKFLOW_ID).await;
    let (pf_cluster, cp_cluster, ap_cluster) =
        (pf.cluster_id(0), cp.cluster_id(0), ap.cluster_id(0));
    let mut calls: Vec<(Target, Value)> = Vec::new();
    let mut call = |target: Target, op: &str, cluster: &str, task: Option<String>| {
        let mut spec = json!({"op": op, "clusterID": cluster});
        if let Some(task) = task {
            spec["taskID"] = json!(task);
        }
        calls.push((target, spec));
    };
    let (pft, cpt, apt, seedt) = (
        sim.builtin_target(pf),
        sim.builtin_target(cp),
        sim.builtin_target(ap),
        sim.builtin_target(Builtin::SeedExample),
    );
    call(
        pft.clone(),
        "show-precheck",
        &pf_cluster,
        Some(point_task(&failed, "PreCheck")),
    );
    call(pft.clone(), "list-prechecks", &pf_cluster, None);
    call(pft.clone(), "show-cluster", &pf_cluster, None);
    call(pft.clone(), "list-snapshots", &pf_cluster, None);
    call(
        cpt.clone(),
        "show-upgrade-task",
        &cp_cluster,
        Some(point_task(&paused, "Cluster")),
    );
    call(cpt.clone(), "list-upgrade-tasks", &cp_cluster, None);
    call(cpt.clone(), "show-cluster", &cp_cluster, None);
    call(cpt.clone(), "list-snapshots", &cp_cluster, None);
    let seed_cluster = builtin::SEED_CLUSTER_ID;
    call(
        seedt.clone(),
        "show-precheck",
        seed_cluster,
        Some(point_task(&seed, "PreCheck")),
    );
    call(seedt.clone(), "list-upgrade-tasks", seed_cluster, None);
    for (op, task) in [
        (
            "autopilot-show-precheck",
            Some(point_task(&done, "PreCheck")),
        ),
        ("autopilot-list-prechecks", None),
        (
            "autopilot-show-upgrade-task",
            Some(point_task(&done, "Cluster")),
        ),
        ("autopilot-list-upgrade-tasks", None),
        ("autopilot-show-cluster", None),
        ("autopilot-list-snapshots", None),
    ] {
        call(apt.clone(), op, &ap_cluster, task);
    }
    let specs: Vec<Value> = calls.iter().map(|(_, spec)| spec.clone()).collect();
    let sdk = run_sdk(&json!({
        "endpoint": sim.url, "caBundle": ca,
        "ak": builtin::ACCESS_KEY, "sk": builtin::SECRET_KEY, "projectID": builtin::PROJECT_ID,
        "calls": specs,
    }));
    assert_eq!(sdk.len(), calls.len());
    let client = sim.client();
    for ((target, spec), theirs) in calls.iter().zip(&sdk) {
        assert_eq!(theirs["ok"], json!(true), "{spec}: {theirs}");
        assert_eq!(theirs["status"], json!(200), "{spec}");
        let op = spec["op"].as_str().expect("op");
        let task = spec["taskID"].as_str().unwrap_or_default();
        let ours = our_read(&client, target, op, task).await;
        assert_eq!(theirs["decoded"], ours, "{spec}");
    }
    // What the SDK decoded carries the findings, the pause and the cluster's word.
    let items = &sdk[0]["decoded"]["status"]["nodeCheckStatus"]["nodeStageStatus"][0];
    assert_eq!(items["nodeInfo"]["name"], json!("worker-2"));
    assert_eq!(items["itemsStatus"][0]["kind"], json!("Exception"));
    assert_eq!(
        sdk[0]["decoded"]["status"]["clusterCheckStatus"]["itemsStatus"][0]["riskSource"]["deprecatedAPIRisks"]
            [0]["url"],
        json!("/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas")
    );
    assert_eq!(sdk[4]["decoded"]["status"]["phase"], json!("Pause"));
    assert_eq!(sdk[4]["decoded"]["status"]["progress"], json!("40.00"));
    assert_eq!(
        sdk[6]["decoded"]["status"]["reason"],
        json!("UpgradePaused")
    );
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(
        stats["byStatus"]["200"],
        json!(2 * calls.len()),
        "every read answered, by the SDK and by the project: {stats}"
    );
    let paths: Vec<String> = sim
        .requests("route=list-snapshots")
        .await
        .iter()
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        paths.iter().any(|p| p.starts_with("/autopilot/v3.1/")),
        "{paths:?}"
    );
}

/// Clusters that stand still at a tenth of real speed: one upgrading without a workflow,
/// one whose upgrade failed, one being deleted, a Turbo one, a pre-1.21 one, and one of
/// each family with labels.
const STILL_FLEET: &str = r#"
name: still-fleet
clusters:
  - {id: c-steady, name: sdk-steady, version: v1.28.15-r10, labels: {env: prod}}
  - {id: c-turbo, name: sdk-turbo, category: Turbo, version: v1.29.13-r0}
  - id: c-upgrading
    name: sdk-upgrading
    version: v1.28.15-r10
    upgrades: [{at: 0, takes: 100000, to: v1.29.13-r0}]
  - id: c-failed
    name: sdk-failed
    version: v1.28.15-r10
    upgrades: [{at: 0, takes: 0.001, to: v1.29.13-r0, result: Failed}]
  - {id: c-deleting, name: sdk-deleting, version: v1.19.16-r20, deletedAt: 0.001}
  - {id: c-autopilot, name: sdk-autopilot, type: Autopilot, version: v1.28.15-r10, labels: {team: a}}
"#;

fn names(decoded: &Value) -> Vec<&str> {
    decoded["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn huaweis_python_sdk_lists_both_families_clusters_as_the_project_reads_them() {
    let sim = Sim::https()
        .scenario_yaml(STILL_FLEET)
        .args(&["--speed", "0.1"])
        .start();
    let ca = sim.ca_bundle().to_string_lossy().into_owned();
    let calls = json!([
        {"op": "list-clusters"},
        {"op": "autopilot-list-clusters"},
        {"op": "list-clusters", "query": {"status": "Upgrading"}},
        {"op": "list-clusters", "query": {"status": "Error"}},
        {"op": "list-clusters", "query": {"version": "v1.29"}},
        {"op": "list-clusters", "query": {"type": "ARM64"}},
        {"op": "list-clusters", "query": {"detail": "true"}},
        {"op": "autopilot-list-clusters", "query": {"status": "Available", "type": "VirtualMachine"}},
        {"op": "show-cluster", "clusterID": "c-upgrading"},
    ]);
    let sdk = run_sdk(&json!({
        "endpoint": sim.url, "caBundle": ca,
        "ak": builtin::ACCESS_KEY, "sk": builtin::SECRET_KEY, "projectID": builtin::PROJECT_ID,
        "calls": calls,
    }));
    for (n, result) in sdk.iter().enumerate() {
        assert_eq!(result["ok"], json!(true), "call {n}: {result}");
        assert_eq!(result["status"], json!(200), "call {n}");
    }
    let client = sim.client();
    let mut ours = Vec::new();
    for family in [ApiFamily::Standard, ApiFamily::Autopilot] {
        let target = sim.target(family, "", common::sim::aksk());
        let list = client.list_clusters(&target).await.expect("list");
        assert_eq!((list.body.items.more, list.body.items.unreadable), (0, 0));
        ours.push(serde_json::to_value(list.body).expect("json"));
    }
    // Everything either reads, the SDK reads alike: every field the project models.
    assert_eq!(sdk[0]["decoded"], ours[0]);
    assert_eq!(sdk[1]["decoded"], ours[1]);
    assert_eq!(
        names(&sdk[0]["decoded"]),
        [
            "sdk-deleting",
            "sdk-failed",
            "sdk-steady",
            "sdk-turbo",
            "sdk-upgrading"
        ]
    );
    assert_eq!(names(&sdk[1]["decoded"]), ["sdk-autopilot"]);
    assert_eq!(names(&sdk[2]["decoded"]), ["sdk-upgrading"]);
    assert_eq!(names(&sdk[3]["decoded"]), ["sdk-failed"]);
    assert_eq!(names(&sdk[4]["decoded"]), ["sdk-turbo"]);
    assert!(names(&sdk[5]["decoded"]).is_empty());
    assert_eq!(names(&sdk[7]["decoded"]), ["sdk-autopilot"]);
    // detail=true adds the node figures and nothing else.
    let mut detailed = sdk[6]["decoded"].clone();
    for item in detailed["items"].as_array_mut().expect("items") {
        let annotations = item["metadata"]
            .as_object_mut()
            .and_then(|m| m.remove("annotations"))
            .expect("annotations with detail");
        assert_eq!(annotations["totalNodesNumber"], json!("3"), "{annotations}");
    }
    assert_eq!(detailed, ours[0]);
    // ShowCluster says what ListClusters says, at the same time.
    let upgrading = sdk[0]["decoded"]["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|c| c["metadata"]["uid"] == json!("c-upgrading"))
        })
        .expect("listed");
    assert_eq!(&sdk[8]["decoded"], upgrading);
    assert_eq!(upgrading["status"]["phase"], json!("Upgrading"));
    // The keys CCE spells its own way and the fields each family's model has.
    for item in sdk[0]["decoded"]["items"].as_array().expect("items") {
        let (meta, spec) = (&item["metadata"], &item["spec"]);
        assert_eq!(item["kind"], json!("Cluster"), "{item}");
        assert!(
            meta["timezone"].is_string() && spec["legacyVersion"].is_string(),
            "{item}"
        );
        assert!(spec["hostNetwork"]["vpc"].is_string(), "{item}");
        assert!(spec["containerNetwork"]["mode"].is_string(), "{item}");
    }
    let deleting = &sdk[0]["decoded"]["items"][0];
    assert_eq!(
        deleting["spec"]["version"],
        json!("v1.19.16-r20"),
        "long before 1.21"
    );
    assert_eq!(deleting["status"]["phase"], json!("Deleting"));
    let turbo = &sdk[0]["decoded"]["items"][3];
    assert!(
        turbo["spec"]["eniNetwork"]["subnets"][0]["subnetID"].is_string(),
        "{turbo}"
    );
    let autopilot = &sdk[1]["decoded"]["items"][0];
    assert!(
        autopilot["metadata"].get("timezone").is_none(),
        "{autopilot}"
    );
    assert!(
        autopilot["spec"].get("legacyVersion").is_none(),
        "{autopilot}"
    );
    assert_eq!(autopilot["spec"]["platformVersion"], json!("cce.15.10"));
    assert_eq!(autopilot["metadata"]["labels"]["team"], json!("a"));
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(stats["byRoute"]["list-clusters"], json!(10), "{stats}");
}
