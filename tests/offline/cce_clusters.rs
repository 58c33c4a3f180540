//! ListClusters through the project's client: both families' paths, signed like every other
//! read; the documented answer decoded; the bound on items; malformed answers refused or,
//! item by item, counted; and the simulator's fleet read as it lives, with its counters and
//! faults covering the new route.

use crate::cce_client::{
    AK, Echo, PROJECT, SECURITY_TOKEN, SK, Seen, aksk, client, echo_answer, json, serve, target,
    verifying_server,
};
use crate::common::sim::Sim;

use axum::http::StatusCode;
use cce_upgrade_watch::cce::diagnostics::cluster::ClusterPhase;
use cce_upgrade_watch::cce::{ApiFamily, CceError};
use cce_upgrade_watch::limits::MAX_CLUSTERS;
use cce_upgrade_watch::sim::builtin::{FLEET, FROM_VERSION, PROJECT_ID};
use serde_json::json;

/// cce-clusters.md §7: two clusters, one upgrading.
const EXAMPLE: &str = r#"{"kind":"Cluster","apiVersion":"v3","items":[
  {"kind":"Cluster","apiVersion":"v3",
   "metadata":{"name":"prod-a","uid":"6b1c3f0e-8a41-11ef-9d57-0255ac100a2b","alias":"prod-a",
               "creationTimestamp":"2025-03-04 02:11:47.418736 +0000 UTC","timezone":"Asia/Shanghai"},
   "spec":{"category":"CCE","type":"VirtualMachine","flavor":"cce.s2.small","version":"v1.29",
           "platformVersion":"cce.13.10","legacyVersion":"v1.29.13-r10",
           "hostNetwork":{"vpc":"0f1e","subnet":"9a2d","SecurityGroup":"2b8e"},
           "containerNetwork":{"mode":"vpc-router","cidr":"172.16.0.0/16"},
           "serviceNetwork":{"IPv4CIDR":"10.247.0.0/16"},"billingMode":0,
           "extendParam":{"enterpriseProjectId":"0"}},
   "status":{"phase":"Available","endpoints":[{"url":"https://192.168.0.61:5443","type":"Internal"}]}},
  {"kind":"Cluster","apiVersion":"v3",
   "metadata":{"name":"batch-b","uid":"c3d9a7b2-1f6e-11f0-8e21-0255ac100b4c"},
   "spec":{"category":"Turbo","type":"VirtualMachine","flavor":"cce.s2.medium","version":"v1.28",
           "platformVersion":"cce.15.30","legacyVersion":"v1.28.15-r30",
           "eniNetwork":{"subnets":[{"subnetID":"7c2f"}]}},
   "status":{"phase":"Upgrading"}}]}"#;

#[tokio::test]
async fn both_families_list_with_a_signed_get_of_the_projects_path() {
    let (url, log) = verifying_server(EXAMPLE, StatusCode::OK).await;
    let client = client();
    for family in [ApiFamily::Standard, ApiFamily::Autopilot] {
        let mut target = target(&url, aksk(Some(SECURITY_TOKEN)));
        target.family = family;
        // The call names no cluster: an empty one is fine.
        target.cluster_id = String::new();
        let answer = client.list_clusters(&target).await.expect("list");
        assert_eq!(answer.request_id.as_deref(), Some("req-42"));
        let clusters = answer.body.clusters();
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[1].name(), Some("batch-b"));
        assert_eq!(clusters[1].phase(), Some(&ClusterPhase::Upgrading));
        assert_eq!(
            clusters[1].version().map(|v| v.to_string()).as_deref(),
            Some("v1.28.15-r30")
        );
        let seen: Seen = log.lock().expect("log").pop().expect("a request");
        assert_eq!(seen.method, "GET");
        assert_eq!(
            seen.path,
            format!("/{}/v3/projects/{PROJECT}/clusters", family.path_root())
        );
        assert_eq!(seen.query, "");
        assert!(seen.body.is_empty());
        assert_eq!(seen.check_signature(SK).expect("verifies").access, AK);
    }
}

#[tokio::test]
async fn items_past_the_cap_are_counted_and_odd_ones_skipped() {
    let (url, _) = serve(|_| async {
        let mut items: Vec<String> = (0..MAX_CLUSTERS + 7)
            .map(|i| format!(r#"{{"metadata":{{"uid":"c-{i}","name":"n-{i}"}}}}"#))
            .collect();
        items.insert(1, r#"{"metadata":{"uid":42}}"#.into());
        items.insert(2, "\"a string\"".into());
        json(
            StatusCode::OK,
            &format!(r#"{{"items":[{}]}}"#, items.join(",")),
        )
    })
    .await;
    let answer = client()
        .list_clusters(&target(&url, aksk(None)))
        .await
        .expect("list");
    let items = &answer.body.items;
    assert_eq!(items.kept.len(), MAX_CLUSTERS);
    assert_eq!(items.unreadable, 2);
    assert_eq!(items.more, 7);
    assert_eq!(items.kept[1].uid(), Some("c-1"), "the odd ones skipped");
}

#[tokio::test]
async fn malformed_answers_are_invalid_responses_without_secrets() {
    let client = client();
    for (body, needle) in [
        (r#"{"items":[{"metadata":{"uid":"c1"}}"#, "truncated"),
        (r#"{"items":"all of them"}"#, "expected shape"),
        ("<html>gateway</html>", "not JSON"),
        ("", "empty"),
    ] {
        let (url, _) = serve(move |_| async move { json(StatusCode::OK, body) }).await;
        let e = client
            .list_clusters(&target(&url, aksk(None)))
            .await
            .expect_err(body);
        assert_eq!(e.category(), "InvalidResponse", "{body}");
        assert!(e.to_string().contains(needle), "{body}: {e}");
    }
    let (url, _) = serve(|seen: Seen| async move { echo_answer(Echo::Oversized, &seen) }).await;
    let e = client
        .list_clusters(&target(&url, aksk(Some(SECURITY_TOKEN))))
        .await
        .expect_err("too large");
    let text = format!("{e} {e:?}");
    assert!(text.contains("larger than"), "{text}");
    for secret in [SK, SECURITY_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
}

#[tokio::test]
async fn a_refusal_keeps_its_category() {
    let (url, _) = serve(|_| async {
        json(
            StatusCode::FORBIDDEN,
            r#"{"error_code":"CCE.01403000","error_msg":"cce:cluster:list is not granted"}"#,
        )
    })
    .await;
    let e = client()
        .list_clusters(&target(&url, aksk(None)))
        .await
        .expect_err("403");
    assert!(matches!(e, CceError::Forbidden(_)), "{e:?}");
    assert!(e.to_string().contains("cce:cluster:list"), "{e}");
}

#[tokio::test]
async fn the_simulators_fleet_is_listed_per_family_and_counted_like_every_route() {
    let sim = Sim::start(&["--scenario", "fleet", "--scenario", "success"]);
    let client = sim.client();
    let list = |family: ApiFamily| {
        let mut target = sim.target(family, "", crate::common::sim::aksk());
        target.project_id = PROJECT_ID.into();
        let client = client.clone();
        async move { client.list_clusters(&target).await }
    };
    let standard = list(ApiFamily::Standard).await.expect("standard");
    let names: Vec<&str> = standard
        .body
        .clusters()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    for member in FLEET.iter().filter(|m| m.family == ApiFamily::Standard) {
        // fleet-late appears later on the scenario clock.
        if member.name != "fleet-late" {
            assert!(
                names.contains(&member.cluster_name(0).as_str()),
                "{names:?}"
            );
        }
    }
    assert!(
        !names.iter().any(|n| n.starts_with("fleet-autopilot")),
        "{names:?}"
    );
    let autopilot = list(ApiFamily::Autopilot).await.expect("autopilot");
    let only = &autopilot.body.clusters()[0];
    assert_eq!(only.name(), Some(FLEET[6].cluster_name(0).as_str()));
    assert_eq!(
        only.version().map(|v| v.to_string()).as_deref(),
        Some(FROM_VERSION)
    );
    let (status, _) = sim
        .admin_post(
            "/_sim/faults",
            json!({"kind": "forbidden", "route": "list-clusters", "count": 1}),
        )
        .await;
    assert_eq!(status, 201);
    let e = list(ApiFamily::Standard).await.expect_err("403");
    assert_eq!(e.category(), "Forbidden");
    list(ApiFamily::Standard)
        .await
        .expect("the fault is used up");
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(stats["byRoute"]["list-clusters"], json!(4), "{stats}");
    let logged = sim.requests("route=list-clusters").await;
    assert_eq!(logged.len(), 4);
    assert!(
        logged.iter().all(|r| r.get("clusterID").is_none()),
        "{logged:?}"
    );
    assert_eq!(
        logged[1]["path"],
        json!(format!("/autopilot/v3/projects/{PROJECT_ID}/clusters"))
    );
}
