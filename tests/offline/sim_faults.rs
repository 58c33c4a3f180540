//! Fault injection through the admin API and start-up flags, seen by the project's client
//! (each fault must surface as the error class the operator handles), and the counters
//! and request log tests and benchmarks rely on.

use crate::common;

use std::time::{Duration, Instant};

use cce_upgrade_watch::cce::CceError;
use cce_upgrade_watch::cce::model::CreateWorkflowRequest;
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::sim::Sim;
use serde_json::{Value, json};

const B: Builtin = Builtin::Success;

async fn add_fault(sim: &Sim, spec: Value) {
    let (status, body) = sim.admin_post("/_sim/faults", spec).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after_for_the_next_n_requests_of_its_route() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let target = sim.builtin_target(B);
    let id = B.workflow_id(0);
    add_fault(
        &sim,
        json!({"kind": "throttle", "route": "show", "count": 2, "retryAfter": 7}),
    )
    .await;
    for _ in 0..2 {
        match client.show_workflow(&target, &id).await {
            Err(e @ CceError::RateLimited(_)) => {
                assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
                assert_eq!(
                    e.api_failure().and_then(|f| f.error_code.as_deref()),
                    Some("APIGW.0308")
                );
                assert!(e.request_id().is_some());
            }
            other => panic!("expected 429: {other:?}"),
        }
        client
            .list_workflows(&target)
            .await
            .expect("other routes unaffected");
    }
    client
        .show_workflow(&target, &id)
        .await
        .expect("count used up");
    let stats = sim.admin_get("/_sim/stats").await;
    let throttled: Vec<&Value> = stats["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter(|c| c["status"] == json!(429))
        .collect();
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0]["route"], json!("show"));
    assert_eq!(throttled[0]["credential"], json!(builtin::ACCESS_KEY));
    assert_eq!(throttled[0]["count"], json!(2));
    assert_eq!(sim.admin_get("/_sim/faults").await, json!([]));
}

#[tokio::test]
async fn server_errors_are_cce_unavailable_with_cce_or_gateway_bodies() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let target = sim.builtin_target(B);
    add_fault(
        &sim,
        json!([
            {"kind": "error", "count": 1},
            {"kind": "5xx", "status": 502, "count": 1},
            {"kind": "error", "status": 500, "count": 1},
        ]),
    )
    .await;
    for (status, code) in [
        (503, "CCE.01503001"),
        (502, "APIGW.0202"),
        (500, "CCE.01500001"),
    ] {
        match client.list_workflows(&target).await {
            Err(CceError::Server(f)) => {
                assert_eq!(f.status, status);
                assert_eq!(f.error_code.as_deref(), Some(code));
            }
            other => panic!("expected {status}: {other:?}"),
        }
    }
    client.list_workflows(&target).await.expect("recovered");
}

#[tokio::test]
async fn malformed_json_is_a_truncated_200_and_an_invalid_response() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let target = sim.builtin_target(B);
    add_fault(
        &sim,
        json!({"kind": "malformed", "route": "list", "count": 1}),
    )
    .await;
    match client.list_workflows(&target).await {
        Err(CceError::InvalidResponse {
            status, excerpt, ..
        }) => {
            assert_eq!(status, 200);
            assert!(excerpt.starts_with("{\"kind\":\"List\""), "{excerpt}");
        }
        other => panic!("expected an invalid response: {other:?}"),
    }
    client
        .list_workflows(&target)
        .await
        .expect("next one is whole");
}

#[tokio::test]
async fn connection_reset_is_a_transport_error_and_is_logged_as_status_0() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let target = sim.builtin_target(B);
    let id = B.workflow_id(0);
    add_fault(&sim, json!({"kind": "reset", "count": 1})).await;
    match client.show_workflow(&target, &id).await {
        Err(e @ CceError::Transport { .. }) => assert!(e.is_retryable()),
        other => panic!("expected a transport error: {other:?}"),
    }
    client
        .show_workflow(&target, &id)
        .await
        .expect("next connection works");
    let log = sim.requests("route=show").await;
    assert_eq!(log[0]["status"], json!(0));
    assert_eq!(log[0]["fault"], json!("reset"));
    assert_eq!(log[1]["status"], json!(200));
}

#[tokio::test]
async fn latency_delays_the_answer_and_shows_in_the_log() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let target = sim.builtin_target(B);
    let id = B.workflow_id(0);
    add_fault(
        &sim,
        json!({"kind": "latency", "latencyMs": 400, "route": "show", "count": 1}),
    )
    .await;
    let t = Instant::now();
    client
        .show_workflow(&target, &id)
        .await
        .expect("slow but fine");
    assert!(t.elapsed() >= Duration::from_millis(400));
    let t = Instant::now();
    client.show_workflow(&target, &id).await.expect("fast");
    assert!(t.elapsed() < Duration::from_millis(400));
    let log = sim.requests("route=show").await;
    assert!(log[0]["durationMs"].as_f64().unwrap_or(0.0) >= 400.0);
    assert_eq!(log[0]["fault"], json!("latency"));
}

#[tokio::test]
async fn a_fault_window_opens_and_closes_on_time_and_routes_are_independent() {
    let sim = Sim::start(&["--scenario", "idle"]);
    let client = sim.client();
    let target = sim.builtin_target(Builtin::Idle);
    add_fault(
        &sim,
        json!([
            {"kind": "error", "status": 503, "afterSeconds": 0.6, "forSeconds": 1.4, "route": "list"},
            {"kind": "throttle", "route": "create"},
        ]),
    )
    .await;
    let opened = Instant::now();
    client
        .list_workflows(&target)
        .await
        .expect("before the window");
    let request = CreateWorkflowRequest::new(
        &Builtin::Idle.cluster_id(0),
        builtin::FROM_VERSION,
        builtin::TO_VERSION,
    );
    assert!(matches!(
        client.create_workflow(&target, &request).await,
        Err(CceError::RateLimited(_))
    ));
    tokio::time::sleep(Duration::from_millis(700).saturating_sub(opened.elapsed())).await;
    assert!(matches!(
        client.list_workflows(&target).await,
        Err(CceError::Server(_))
    ));
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(opened.elapsed())).await;
    client
        .list_workflows(&target)
        .await
        .expect("after the window");
    // The throttle on create has neither count nor window: it stays until removed.
    let faults = sim.admin_get("/_sim/faults").await;
    let id = faults[0]["id"].as_u64().expect("id");
    assert_eq!(faults[0]["kind"], json!("throttle"));
    assert_eq!(sim.admin_delete(&format!("/_sim/faults/{id}")).await, 204);
    assert_eq!(sim.admin_delete(&format!("/_sim/faults/{id}")).await, 404);
    client
        .create_workflow(&target, &request)
        .await
        .expect("create");
}

#[tokio::test]
async fn faults_from_flags_and_environment_apply_from_the_start() {
    let sim = Sim::http()
        .scenario(B)
        .args(&["--fault", "throttle:route=list,count=1,retry-after=2"])
        .env(
            "CCE_UW_SIM_FAULTS",
            "error:route=show,count=1;reset:route=cancel,count=1",
        )
        .start();
    let client = sim.client();
    let target = sim.builtin_target(B);
    // A flag replaces the environment variable, as with every clap `env` option.
    assert!(matches!(
        client.list_workflows(&target).await,
        Err(CceError::RateLimited(_))
    ));
    client
        .show_workflow(&target, &B.workflow_id(0))
        .await
        .expect("env fault overridden");
    let sim = Sim::http()
        .scenario(B)
        .env("CCE_UW_SIM_FAULTS", "error:route=show,count=1;latency:ms=1")
        .start();
    let client = sim.client();
    let target = sim.builtin_target(B);
    assert!(matches!(
        client.show_workflow(&target, &B.workflow_id(0)).await,
        Err(CceError::Server(_))
    ));
    assert_eq!(
        sim.admin_get("/_sim/faults").await.as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn the_request_log_gives_spacing_filters_and_counters_reset() {
    let sim = Sim::start(&["--scenario", "success", "--scenario", "cancel"]);
    let client = sim.client();
    let target = sim.builtin_target(B);
    let id = B.workflow_id(0);
    for _ in 0..3 {
        client.show_workflow(&target, &id).await.expect("show");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client
        .show_workflow(
            &sim.builtin_target(Builtin::Cancel),
            &Builtin::Cancel.workflow_id(0),
        )
        .await
        .expect("other workflow");
    let log = sim.requests(&format!("route=show&workflowID={id}")).await;
    assert_eq!(log.len(), 3);
    let times: Vec<f64> = log
        .iter()
        .map(|r| r["unixMs"].as_f64().expect("unixMs"))
        .collect();
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= 190.0, "{times:?}");
    }
    for r in &log {
        assert_eq!(r["status"], json!(200));
        assert_eq!(r["credential"], json!(builtin::ACCESS_KEY));
        assert_eq!(r["clusterID"], json!(B.cluster_id(0)));
        assert!(r["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(r["requestId"].as_str().map(str::len), Some(32));
    }
    let last_seq = log[2]["seq"].as_u64().expect("seq");
    assert_eq!(sim.requests(&format!("since={last_seq}")).await.len(), 1);
    assert_eq!(sim.requests("limit=2").await.len(), 2);
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(stats["total"], json!(4));
    assert_eq!(stats["byRoute"]["show"], json!(4));
    let (status, _) = sim.admin_post("/_sim/reset", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(sim.admin_get("/_sim/stats").await["total"], json!(0));
    assert!(sim.requests("").await.is_empty());
}

#[tokio::test]
async fn bad_fault_specs_are_refused_by_the_admin_api() {
    let sim = Sim::start(&["--scenario", "success"]);
    for bad in [
        json!({"kind": "boom"}),
        json!({"kind": "latency"}),
        json!({"kind": "error", "status": 404}),
        json!({"kind": "throttle", "route": "delete"}),
        json!({"kind": "reset", "count": 0}),
        json!([{"kind": "reset"}, {"kind": "latency"}]),
        json!({"kind": "forbidden", "route": "precheck"}),
        json!({"kind": "oversized", "bytes": 1u64 << 40}),
    ] {
        let (status, body) = sim.admin_post("/_sim/faults", bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert!(body["error"].is_string());
    }
    assert_eq!(sim.admin_get("/_sim/faults").await, json!([]));
}

#[tokio::test]
async fn a_diagnostic_read_can_be_denied_or_absent_while_the_workflow_reads_keep_working() {
    let sim = Sim::http()
        .scenario(B)
        .args(&["--fault", "forbidden:route=show-precheck"])
        .frozen()
        .start();
    let client = sim.client();
    let target = sim.builtin_target(B);
    let id = B.workflow_id(0);
    sim.step(&id, 2).await;
    let wf = client.show_workflow(&target, &id).await.expect("show").body;
    let pre = wf.points()[0].task_id.clone().expect("pre-check id");
    for _ in 0..2 {
        match client.show_pre_check(&target, &pre).await {
            Err(e @ CceError::Forbidden(_)) => {
                assert!(e.is_denied_or_absent());
                assert_eq!(
                    e.api_failure().and_then(|f| f.error_code.as_deref()),
                    Some("CCE.01403000")
                );
            }
            other => panic!("expected 403: {other:?}"),
        }
    }
    client
        .list_pre_check_tasks(&target)
        .await
        .expect("another diagnostic route is not hit");
    client
        .list_workflows(&target)
        .await
        .expect("workflow reads unaffected");

    add_fault(
        &sim,
        json!({"kind": "404", "route": "show-cluster", "count": 1}),
    )
    .await;
    let e = client.show_cluster(&target).await.expect_err("404");
    assert!(
        matches!(e, CceError::NotFound(_)) && e.is_denied_or_absent(),
        "{e}"
    );
    client.show_cluster(&target).await.expect("count used up");
    let faults: Vec<String> = sim
        .requests(&format!("route=show-precheck&taskID={pre}"))
        .await
        .iter()
        .map(|r| r["fault"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(faults, ["forbidden", "forbidden"]);
    assert_eq!(
        sim.admin_get("/_sim/stats").await["byRoute"]["show-precheck"],
        json!(2)
    );
}

#[tokio::test]
async fn a_fault_without_a_route_leaves_the_diagnostic_reads_alone() {
    let sim = Sim::http().scenario(B).args(&["--fault", "error"]).start();
    let client = sim.client();
    let target = sim.builtin_target(B);
    assert!(matches!(
        client.list_workflows(&target).await,
        Err(CceError::Server(_))
    ));
    client.show_cluster(&target).await.expect("not hit");
    client.list_snapshot_tasks(&target).await.expect("not hit");
}

#[tokio::test]
async fn oversized_and_malformed_diagnostic_answers_are_invalid_responses() {
    let sim = Sim::start(&["--scenario", "success"]);
    let client = sim.client();
    let target = sim.builtin_target(B);
    add_fault(
        &sim,
        json!({"kind": "oversized", "route": "list-upgrade-tasks", "count": 1}),
    )
    .await;
    let e = client
        .list_upgrade_cluster_tasks(&target)
        .await
        .expect_err("over the client's limit");
    assert_eq!(e.category(), "InvalidResponse");
    assert!(e.to_string().contains("larger than"), "{e}");

    // Under the limit the padding is only whitespace: the answer still reads.
    add_fault(
        &sim,
        json!({"kind": "oversized", "route": "show-cluster", "count": 1, "bytes": 3u64 << 20}),
    )
    .await;
    let big = client
        .show_cluster(&target)
        .await
        .expect("big but valid")
        .body;
    assert!(big.phase().is_some());
    let logged = sim.requests("route=show-cluster").await;
    assert_eq!(logged[0]["fault"], json!("oversized"));

    add_fault(
        &sim,
        json!({"kind": "malformed", "route": "list-prechecks", "count": 1}),
    )
    .await;
    let e = client
        .list_pre_check_tasks(&target)
        .await
        .expect_err("half a body");
    assert_eq!(e.category(), "InvalidResponse");
}
