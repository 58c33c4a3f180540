//! Shared by the `sim_*` end-to-end tests: runs the built `cce-sim` binary on
//! free ports, reads its banner, and talks to it with the project's own CCE client (and
//! plain HTTP for the admin API).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cce_upgrade_watch::cce::ApiFamily;
use cce_upgrade_watch::cce::{CceClient, ClientConfig, Credentials, EndpointPolicy, Target};
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

pub const BIN: &str = env!("CARGO_BIN_EXE_cce-sim");

/// A running `cce-sim`; killed when dropped.
pub struct Sim {
    child: Child,
    pub url: String,
    pub admin: String,
    /// Everything printed on stdout after the URL line.
    pub banner: Arc<Mutex<String>>,
    pub ca_file: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the simulator with an admin listener plus `args`, waits for its URL line.
pub fn start(args: &[&str]) -> Sim {
    start_with(args, &[])
}

/// Like [`start`], with extra environment variables.
pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Sim {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(BIN);
    cmd.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the simulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout);
    let mut url = String::new();
    if lines.read_line(&mut url).unwrap_or(0) == 0 {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = child.wait();
        panic!("the simulator printed no URL; stderr: {err}");
    }
    let url = url.trim().to_string();
    let mut admin_line = String::new();
    lines.read_line(&mut admin_line).expect("admin line");
    let admin = admin_line
        .trim()
        .strip_prefix("admin ")
        .unwrap_or_else(|| panic!("second line is not the admin URL: {admin_line:?}"))
        .to_string();
    let banner = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&banner);
    std::thread::spawn(move || {
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            sink.lock().expect("banner").push_str(&line);
            line.clear();
        }
    });
    if let Some(mut stderr) = child.stderr.take() {
        // Drained so a chatty log can never block the simulator.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        });
    }
    let ca_file = args
        .iter()
        .position(|a| *a == "--tls-cert-out")
        .map(|i| PathBuf::from(args[i + 1]));
    Sim {
        child,
        url,
        admin,
        banner,
        ca_file,
        _dir: dir,
    }
}

/// Runs the binary to completion (for flag errors); returns (exit code, stdout, stderr).
pub fn run_to_end(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Sim {
    /// The project's client: CA bundle when TLS was generated, insecure http otherwise.
    pub fn client(&self) -> CceClient {
        let config = match &self.ca_file {
            Some(ca) => ClientConfig {
                ca_bundle: Some(ca.clone()),
                policy: EndpointPolicy::default().with_extra_suffixes(["127.0.0.1"]),
                ..ClientConfig::default()
            },
            None => ClientConfig {
                policy: EndpointPolicy {
                    allow_insecure: true,
                    ..EndpointPolicy::default()
                },
                ..ClientConfig::default()
            },
        };
        CceClient::new(config).expect("client")
    }

    pub fn target(
        &self,
        cluster_type: ApiFamily,
        cluster: &str,
        credentials: Credentials,
    ) -> Target {
        Target {
            endpoint: Url::parse(&self.url).expect("url"),
            project_id: builtin::PROJECT_ID.into(),
            cluster_id: cluster.into(),
            family: cluster_type,
            credentials,
        }
    }

    /// Copy `i` of a built-in scenario's cluster, with the built-in AK/SK.
    pub fn builtin_target(&self, b: Builtin) -> Target {
        self.target(b.cluster_type(), &b.cluster_id(0), aksk())
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        admin_call("GET", &format!("{}{path}", self.admin), None)
            .await
            .1
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        admin_call("POST", &format!("{}{path}", self.admin), Some(body)).await
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> (u16, Value) {
        admin_call("PUT", &format!("{}{path}", self.admin), Some(body)).await
    }

    pub async fn admin_delete(&self, path: &str) -> u16 {
        admin_call("DELETE", &format!("{}{path}", self.admin), None)
            .await
            .0
    }

    /// The request log, optionally filtered (`route=show&workflowID=...`).
    pub async fn requests(&self, query: &str) -> Vec<Value> {
        self.admin_get(&format!("/_sim/requests?{query}")).await["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn banner(&self) -> String {
        // The banner is printed right after the URL; give the reader thread a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.banner.lock().expect("banner").clone();
            if text.contains("workflows created through the API play") || Instant::now() > deadline
            {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Calls the admin API; answers `(status, JSON body or Null)`.
pub async fn admin_call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("admin body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

pub fn aksk() -> Credentials {
    Credentials::AkSk {
        access_key: builtin::ACCESS_KEY.into(),
        secret_key: SecretString::from(builtin::SECRET_KEY),
        security_token: None,
    }
}

pub fn temporary() -> Credentials {
    Credentials::AkSk {
        access_key: builtin::TEMP_ACCESS_KEY.into(),
        secret_key: SecretString::from(builtin::TEMP_SECRET_KEY),
        security_token: Some(SecretString::from(builtin::SECURITY_TOKEN)),
    }
}

pub fn token() -> Credentials {
    Credentials::Token(SecretString::from(builtin::TOKEN))
}

pub fn aksk_with(ak: &str, sk: &str) -> Credentials {
    Credentials::AkSk {
        access_key: ak.into(),
        secret_key: SecretString::from(sk),
        security_token: None,
    }
}

/// Polls `probe` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn temp_path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}
