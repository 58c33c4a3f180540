//! The `get` subcommand as a user runs it: the real binary, flags from the command line
//! or the environment, against a signature-checking server on 127.0.0.1.

use std::process::{Command, Output};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cce_upgrade_watch::cce::model::SEED_EXAMPLE;
use cce_upgrade_watch::cce::sign;

const SK: &str = "sk-CLI-SECRET-0001";

/// Answers with the §8 example when the AK/SK signature verifies; 404 for workflow `gone`.
async fn answer(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let query = sign::decode_query(parts.uri.query().unwrap_or_default());
    let signable = sign::SignableRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        headers: &headers,
        body: &body,
    };
    let verified = signable
        .header("authorization")
        .and_then(|auth| sign::parse_authorization(auth).ok())
        .is_some_and(|parsed| sign::verify(&signable, &parsed, SK.as_bytes()));
    let json = |status: StatusCode, body: String| {
        (status, [("content-type", "application/json")], body).into_response()
    };
    if !verified {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"error_code":"APIGW.0301","error_msg":"verify aksk signature fail"}"#.into(),
        );
    }
    if parts.uri.path().ends_with("/gone") {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"errorCode":"CCE.01404001","errorMessage":"upgrade workflow not found"}"#.into(),
        );
    }
    if parts.uri.path().ends_with("/upgradeworkflows") {
        return json(
            StatusCode::OK,
            format!(r#"{{"kind":"List","apiVersion":"v3","items":[{SEED_EXAMPLE}]}}"#),
        );
    }
    json(StatusCode::OK, SEED_EXAMPLE.to_string())
}

async fn start_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, Router::new().fallback(answer))
            .await
            .expect("serve")
    });
    format!("http://{addr}")
}

/// Runs the binary off the async runtime with only the given environment.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cce-upgrade-watch"));
    command.env_clear().args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("runs"))
        .await
        .expect("joins")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const AKSK: &[(&str, &str)] = &[("CLOUD_SDK_AK", "AK-CLI"), ("CLOUD_SDK_SK", SK)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_the_workflow_table_from_flags() {
    let endpoint = start_server().await;
    let output = run(
        &[
            "get",
            "--endpoint",
            &endpoint,
            "--allow-insecure-endpoints",
            "--project-id",
            "p1",
            "--cluster-id",
            "c1",
            "--workflow-id",
            "w1",
        ],
        AKSK,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Pending"), "{stdout}");
    assert!(stdout.contains("v1.17.17-r0 -> v1.19.16-r80"), "{stdout}");
    // Insecure mode never goes unsaid, and never into the output a script reads.
    assert!(
        stderr(&output).contains("warning: insecure endpoints are allowed"),
        "{}",
        stderr(&output)
    );
    assert!(!stdout.contains("insecure"), "{stdout}");
}

/// `get` finds credentials as the operator does: the SDK's `HUAWEICLOUD_SDK_*` names, or
/// its credentials file, win over nothing and sign the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_takes_credentials_from_the_sdks_chain() {
    let endpoint = start_server().await;
    let args = [
        "get",
        "--endpoint",
        endpoint.as_str(),
        "--allow-insecure-endpoints",
        "--project-id",
        "p1",
        "--cluster-id",
        "c1",
        "--workflow-id",
        "w1",
    ];
    let sdk_env = run(
        &args,
        &[("HUAWEICLOUD_SDK_AK", "AK-CLI"), ("HUAWEICLOUD_SDK_SK", SK)],
    )
    .await;
    assert_eq!(sdk_env.status.code(), Some(0), "{}", stderr(&sdk_env));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("credentials");
    std::fs::write(&file, format!("[basic]\nak = AK-CLI\nsk = {SK}\n")).expect("write");
    let path = file.display().to_string();
    let profile = run(
        &args,
        &[("HUAWEICLOUD_SDK_CREDENTIALS_FILE", path.as_str())],
    )
    .await;
    assert_eq!(profile.status.code(), Some(0), "{}", stderr(&profile));
    let half = run(&args, &[("HUAWEICLOUD_SDK_IDP_ID", "idp")]).await;
    assert_eq!(half.status.code(), Some(3), "{}", stderr(&half));
    assert!(
        stderr(&half).contains("HUAWEICLOUD_SDK_ID_TOKEN_FILE"),
        "{}",
        stderr(&half)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reads_every_flag_from_the_environment_and_lists_as_json() {
    let endpoint = start_server().await;
    let mut env = AKSK.to_vec();
    env.extend([
        ("CCE_ENDPOINT", endpoint.as_str()),
        ("ALLOW_INSECURE_ENDPOINTS", "true"),
        ("CCE_PROJECT_ID", "p1"),
        ("CCE_CLUSTER_ID", "c1"),
        ("CCE_OUTPUT", "json"),
    ]);
    let output = run(&["get"], &env).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json output");
    assert_eq!(list["items"][0]["status"]["phase"], "Pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_with_a_fix_and_an_exit_code_per_category() {
    let endpoint = start_server().await;
    let base = [
        "get",
        "--endpoint",
        endpoint.as_str(),
        "--allow-insecure-endpoints",
        "--project-id",
        "p1",
        "--cluster-id",
        "c1",
        "--workflow-id",
    ];
    let with = |id: &'static str| {
        let mut args = base.to_vec();
        args.push(id);
        args
    };

    let wrong_key = run(
        &with("w1"),
        &[("CLOUD_SDK_AK", "AK-CLI"), ("CLOUD_SDK_SK", "not-the-key")],
    )
    .await;
    assert_eq!(wrong_key.status.code(), Some(5));
    let text = stderr(&wrong_key);
    // One line for the error, besides insecure mode's warning.
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(text.contains("check CLOUD_SDK_AK/CLOUD_SDK_SK"), "{text}");
    assert!(text.contains("system clock"), "{text}");
    assert!(!text.contains("not-the-key"), "{text}");

    let gone = run(&with("gone"), AKSK).await;
    assert_eq!(gone.status.code(), Some(7));
    assert!(stderr(&gone).contains("CCE.01404001"), "{}", stderr(&gone));

    let no_credentials = run(&with("w1"), &[]).await;
    assert_eq!(no_credentials.status.code(), Some(3));
    assert!(stderr(&no_credentials).contains("CLOUD_SDK_AK"));

    let mut strict = with("w1");
    strict.retain(|a| *a != "--allow-insecure-endpoints");
    let refused = run(&strict, AKSK).await;
    assert_eq!(refused.status.code(), Some(4));
    assert!(
        stderr(&refused).contains("plain http"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_documents_the_exit_codes() {
    let output = run(&["get", "--help"], &[]).await;
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "Exit codes:",
        "5  Unauthorized",
        "13  InvalidResponse",
        "[env: CCE_PROJECT_ID",
    ] {
        assert!(help.contains(needle), "{needle} missing in\n{help}");
    }
}

/// The endpoint flags of `run` and `get`, parsed from the same words.
fn endpoint_flags(command: &str, flags: &[&str]) -> cce_upgrade_watch::cce::endpoint::EndpointArgs {
    use clap::Parser;
    let mut words = vec!["cce-upgrade-watch", command];
    if command == "get" {
        words.extend(["--region", "r", "--project-id", "p", "--cluster-id", "c"]);
    }
    words.extend(flags);
    match cce_upgrade_watch::cli::Cli::try_parse_from(words)
        .expect("parses")
        .command
    {
        cce_upgrade_watch::cli::Command::Run(args) => args.endpoints,
        cce_upgrade_watch::cli::Command::Get(args) => args.endpoints,
        _ => unreachable!("only run and get are asked for"),
    }
}

#[test]
fn run_and_get_take_the_same_endpoint_flags_and_the_old_names() {
    let want = cce_upgrade_watch::cce::endpoint::EndpointArgs {
        allowed_cce_endpoints: vec!["cce.example:8443".into(), "*.example.org".into()],
        allowed_iam_endpoints: vec!["iam.example".into()],
        allow_insecure_endpoints: true,
    };
    for command in ["run", "get"] {
        let flags = [
            "--allowed-cce-endpoint",
            "cce.example:8443,*.example.org",
            "--allowed-iam-endpoint",
            "iam.example",
            "--allow-insecure-endpoints",
        ];
        assert_eq!(endpoint_flags(command, &flags), want, "{command}");
        let old = [
            "--allowed-endpoint-host",
            "cce.example:8443",
            "--allowed-endpoint-suffix",
            "*.example.org",
            "--allowed-iam-endpoint",
            "iam.example",
            "--allow-insecure-endpoint",
        ];
        assert_eq!(endpoint_flags(command, &old), want, "{command}, old names");
    }
}

/// A reader that stops early (`crd | grep -q`, `reference | head`) is no error: the
/// binary neither panics on the closed pipe nor fails.
#[test]
fn printing_commands_stop_quietly_when_their_reader_does() {
    use std::io::Read;
    use std::process::Stdio;
    for args in [vec!["crd"], vec!["reference"], vec!["reasons"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cce-upgrade-watch"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let mut first = [0u8; 16];
        child
            .stdout
            .take()
            .expect("stdout")
            .read_exact(&mut first)
            .expect("the first bytes");
        // The read end is closed here, long before the output (tens of KiB) is written.
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?}: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
