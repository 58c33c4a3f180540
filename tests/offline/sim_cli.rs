//! The `cce-sim` command-line contract scripts and tests rely on: the URL on stdout's first
//! line (real port for port 0), TLS with a generated or given certificate, every flag from
//! the environment, built-in ids and credentials in the banner, N deterministic copies,
//! clear errors for bad input, and the admin API's state routes.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use cce_upgrade_watch::cce::model::{Phase, Workflow};
use cce_upgrade_watch::cce::{CceClient, CceError, ClientConfig, EndpointPolicy};
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::sim::{self, Sim, aksk, run_to_end};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::json;

#[tokio::test]
async fn port_zero_prints_the_real_url_first_and_serves_there() {
    let sim = Sim::start(&["--scenario", "success"]);
    let port: u16 = sim
        .url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .expect("http://127.0.0.1:PORT");
    assert_ne!(port, 0);
    let b = Builtin::Success;
    let wf = sim
        .client()
        .show_workflow(&sim.builtin_target(b), &b.workflow_id(0))
        .await
        .expect("show");
    assert_eq!(wf.body.uid(), Some(b.workflow_id(0).as_str()));
    // Admin routes are not on the CCE listener, and CCE routes not on the admin one.
    let cce_admin = reqwest::get(format!("{}/_sim/stats", sim.url))
        .await
        .expect("get");
    assert_eq!(cce_admin.status(), 404);
    assert!(cce_admin.headers().contains_key("x-request-id"));
    let admin_cce = reqwest::get(format!(
        "{}/api/v3/projects/{}/clusters/{}/operation/upgradeworkflows",
        sim.admin,
        builtin::PROJECT_ID,
        b.cluster_id(0)
    ))
    .await
    .expect("get");
    assert_eq!(admin_cce.status(), 404);
}

#[tokio::test]
async fn tls_self_signed_writes_a_ca_bundle_the_project_client_trusts() {
    let sim = Sim::https().scenario(Builtin::SeedExample).start();
    assert!(sim.url.starts_with("https://127.0.0.1:"), "{}", sim.url);
    let target = sim.builtin_target(Builtin::SeedExample);
    let wf = sim
        .client()
        .show_workflow(&target, builtin::SEED_WORKFLOW_ID)
        .await
        .expect("show over TLS");
    assert_eq!(wf.body.phase(), Some(&Phase::Pending));
    // Without the CA bundle the certificate is not trusted.
    let untrusting = CceClient::new(ClientConfig {
        policy: EndpointPolicy::default()
            .with_extra(["127.0.0.1:*"])
            .expect("entry"),
        ..ClientConfig::default()
    })
    .expect("client");
    assert!(matches!(
        untrusting
            .show_workflow(&target, builtin::SEED_WORKFLOW_ID)
            .await,
        Err(CceError::Transport { .. })
    ));
    assert!(
        sim.banner()
            .await
            .contains("tls: CA certificate written to")
    );
}

#[tokio::test]
async fn tls_cert_and_key_files_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    };
    let cert = write("cert.pem", leaf.pem());
    let key = write("key.pem", leaf_key.serialize_pem());
    let ca_file = write("ca.pem", ca.pem());
    let mut sim = Sim::start(&[
        "--scenario",
        "success",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ]);
    sim.ca = Some(ca_file.into());
    assert!(sim.url.starts_with("https://"));
    let b = Builtin::Success;
    sim.client()
        .list_workflows(&sim.builtin_target(b))
        .await
        .expect("list over TLS");
}

#[tokio::test]
async fn every_flag_can_come_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    let mut child = sim::command()
        .env("CCE_UW_SIM_LISTEN", "127.0.0.1:0")
        .env("CCE_UW_SIM_ADMIN_LISTEN", "127.0.0.1:0")
        .env("CCE_UW_SIM_SCENARIO", "success,seed-example")
        .env("CCE_UW_SIM_WORKFLOWS", "3")
        .env("CCE_UW_SIM_SPEED", "30")
        .env("CCE_UW_SIM_ON_CREATE", "cancel")
        .env("CCE_UW_SIM_FAULTS", "latency:ms=1;throttle:route=cancel")
        .env("CCE_UW_SIM_TLS_SELF_SIGNED", "true")
        .env("CCE_UW_SIM_TLS_CERT_OUT", &ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = lines.next().expect("line").expect("url");
    let admin = lines.next().expect("line").expect("admin");
    let admin = admin
        .strip_prefix("admin ")
        .expect("admin line")
        .to_string();
    let get = |path: &str| {
        let url = format!("{admin}{path}");
        async move {
            let answer = reqwest::get(url).await.expect("admin GET");
            answer
                .json::<serde_json::Value>()
                .await
                .expect("admin JSON")
        }
    };
    let info = get("/_sim/info").await;
    let faults = get("/_sim/faults").await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(
        std::fs::read_to_string(&ca)
            .expect("ca")
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(info["speed"], json!(30.0));
    assert_eq!(info["onCreate"], json!("cancel"));
    // Three copies of success; the seed example is never copied.
    assert_eq!(info["workflows"], json!(4));
    assert_eq!(faults.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_banner_names_builtin_ids_and_credentials() {
    let sim = Sim::start(&[]);
    let banner = sim.banner().await;
    for needle in [
        builtin::PROJECT_ID,
        builtin::ACCESS_KEY,
        builtin::SECRET_KEY,
        builtin::TEMP_ACCESS_KEY,
        builtin::SECURITY_TOKEN,
        builtin::TOKEN,
        builtin::SEED_WORKFLOW_ID,
    ] {
        assert!(banner.contains(needle), "{needle} missing from:\n{banner}");
    }
    for b in Builtin::ALL {
        assert!(
            banner.contains(&format!("scenario {} x1", b.name())),
            "{}",
            b.name()
        );
        assert!(banner.contains(&b.cluster_id(0)));
    }
}

#[tokio::test]
async fn copies_get_distinct_deterministic_ids() {
    let sim = Sim::start(&["--scenario", "success", "--workflows", "1000"]);
    let dump = sim.admin_get("/_sim/workflows").await;
    let ids: Vec<&str> = dump
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|w| w["workflowID"].as_str())
        .collect();
    let want: Vec<String> = (0..1000).map(|i| Builtin::Success.workflow_id(i)).collect();
    assert_eq!(ids, want);
    let target = sim.target(
        cce_upgrade_watch::cce::ApiFamily::Standard,
        &Builtin::Success.cluster_id(999),
        aksk(),
    );
    sim.client()
        .show_workflow(&target, &Builtin::Success.workflow_id(999))
        .await
        .expect("last copy");
    // The banner names the copies' ids by their template.
    let first = Builtin::Success.workflow_id(0);
    let template = format!("{}{{i:12}}", &first[..first.len() - 12]);
    assert!(sim.banner().await.contains(&template), "{template}");

    // Workflows created through the API get the same ids in every run.
    let mut created = Vec::new();
    for _ in 0..2 {
        let sim = Sim::start(&["--scenario", "idle"]);
        let (status, body) = sim
            .admin_post(
                "/_sim/workflows",
                json!({"clusterID": Builtin::Idle.cluster_id(0), "targetVersion": builtin::TO_VERSION}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        created.push(body["workflowID"].as_str().map(str::to_string));
    }
    assert_eq!(created[0], created[1]);
}

#[test]
fn bad_flags_and_files_fail_with_a_message_and_no_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "clusters: [{id: c}]").expect("write");
    let bad_yaml = bad_yaml.to_string_lossy().into_owned();
    let bad_creds = dir.path().join("creds.yaml");
    std::fs::write(&bad_creds, "- {accessKey: A, projectID: p}").expect("write");
    let bad_creds = bad_creds.to_string_lossy().into_owned();
    let iam = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    };
    let bad_iam = iam(
        "iam.yaml",
        "rules: [{provider: x, sub: s, user: u, projectIDs: [p]}]",
    );
    let keyless_iam = iam(
        "keyless.yaml",
        "providers: [{id: a, issuer: i, clientIds: [c]}]",
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--iam-config", &bad_iam], "rule 0: provider \"x\""),
        (vec!["--iam-config", &keyless_iam], "--iam-jwks-url"),
        (vec!["--iam-config", "/nonexistent/iam.yaml"], "cannot read"),
        (vec!["--iam-jwks-ca", "ca.pem"], "--iam-jwks-url"),
        (vec!["--iam-jwks-url", "not a url"], "--iam-jwks-url"),
        (vec!["--speed", "0"], "speed"),
        (vec!["--speed", "fast"], "speed"),
        (vec!["--scenario", "no-such-scenario"], "not a built-in"),
        (vec!["--scenario", &bad_yaml], "version"),
        (vec!["--credentials", &bad_creds], "credential 0"),
        (
            vec!["--credentials", "/nonexistent/creds.yaml"],
            "cannot read",
        ),
        (vec!["--tls-cert-out", "x.pem"], "--tls-self-signed"),
        (vec!["--tls-cert", "c.pem"], "--tls-key"),
        (
            vec![
                "--tls-cert",
                "/nonexistent/c",
                "--tls-key",
                "/nonexistent/k",
            ],
            "cannot read",
        ),
        (vec!["--fault", "boom"], "unknown fault kind"),
        (vec!["--on-create", "nope"], "--on-create"),
        (vec!["--workflows", "0"], "workflows"),
        (vec!["--listen", "not-an-address"], "listen"),
    ];
    for (args, needle) in cases {
        let mut full = vec!["--listen", "127.0.0.1:0"];
        if args.first() == Some(&"--listen") {
            full.clear();
        }
        full.extend(args.iter().copied());
        let (code, stdout, stderr) = run_to_end(&full);
        assert_ne!(code, Some(0), "{args:?} succeeded");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_admin_api_shows_and_moves_state() {
    let sim = Sim::start(&[
        "--scenario",
        "success",
        "--scenario",
        "idle",
        "--speed",
        "1",
    ]);
    let b = Builtin::Success;
    let id = b.workflow_id(0);
    assert_eq!(sim.admin_get("/_sim/health").await, json!({"status": "ok"}));
    let one = sim.admin_get(&format!("/_sim/workflows/{id}")).await;
    assert_eq!(one["projectID"], json!(builtin::PROJECT_ID));
    assert_eq!(one["clusterType"], json!("Standard"));
    assert_eq!(one["timeline"], json!("success"));
    assert_eq!(one["stepsLeft"], json!(8));
    assert_eq!(one["workflow"]["status"]["phase"], json!("Init"));
    let (status, moved) = sim
        .admin_post(
            &format!("/_sim/workflows/{id}/advance"),
            json!({"steps": 2}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(moved["stepsLeft"], json!(6));
    assert_eq!(
        moved["workflow"]["status"]["pointStatuses"][0]["status"],
        json!("Success")
    );
    let (_, moved) = sim
        .admin_post(
            &format!("/_sim/workflows/{id}/advance"),
            json!({"seconds": 50}),
        )
        .await;
    assert_eq!(moved["stepsLeft"], json!(4));
    let (status, all) = sim
        .admin_post("/_sim/advance", json!({"toEnd": true}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(all["workflows"], json!(1));
    let wf: Workflow = sim
        .client()
        .show_workflow(&sim.builtin_target(b), &id)
        .await
        .expect("show")
        .body;
    assert_eq!(wf.phase(), Some(&Phase::Success));
    let clusters = sim.admin_get("/_sim/clusters").await;
    let upgraded = clusters
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["clusterID"] == json!(b.cluster_id(0)))
        .expect("cluster");
    assert_eq!(upgraded["version"], json!(builtin::TO_VERSION));

    let (status, cluster) = sim
        .admin_post(
            "/_sim/clusters",
            json!({"id": "extra", "type": "Autopilot", "version": "v1.30.1-r0"}),
        )
        .await;
    assert_eq!(status, 201, "{cluster}");
    assert_eq!(cluster["type"], json!("Autopilot"));
    let (status, created) = sim
        .admin_post(
            "/_sim/workflows",
            json!({"clusterID": "extra", "targetVersion": "v1.31.1-r0", "id": "wf-extra", "timeline": "cancel"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["timeline"], json!("cancel"));
    let (status, _) = sim
        .admin_post(
            "/_sim/workflows",
            json!({"clusterID": "extra", "targetVersion": "v2"}),
        )
        .await;
    assert_eq!(status, 400, "second active workflow");
    for (path, body, want) in [
        ("/_sim/workflows/nope/advance", json!({"steps": 1}), 404),
        ("/_sim/advance", json!({"steps": 1, "seconds": 2}), 400),
        (
            "/_sim/clusters",
            json!({"id": "extra", "version": "v1"}),
            409,
        ),
        (
            "/_sim/workflows",
            json!({"clusterID": "nope", "targetVersion": "v2"}),
            404,
        ),
        ("/_sim/workflows", json!({"targetVersion": "v2"}), 400),
    ] {
        let (status, body) = sim.admin_post(path, body).await;
        assert_eq!(status, want, "{path}: {body}");
    }
    assert!(sim.admin_get("/_sim/workflows/nope").await["error"].is_string());
    let info = sim.admin_get("/_sim/info").await;
    assert_eq!(info["scenarios"][0]["name"], json!("success"));
    assert_eq!(info["onCreate"], json!("success"));
}
