//! The CCE simulator as a child process of a test or the benchmark: started on free ports
//! with its scenario and clock, talked to through its admin API and with the project's own
//! CCE client, killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cce_upgrade_watch::cce::{
    ApiFamily, CceClient, CceError, ClientConfig, Credentials, EndpointPolicy, Target,
};
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

use super::eventually::{SIM_POLL, within};

/// The simulator's command line, before any flag: the one place that knows how it is run.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cce-sim"))
}

/// Runs the simulator to completion (for flag errors); returns (exit code, stdout, stderr).
pub fn run_to_end(args: &[&str]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the simulator");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A frozen simulator clock: workflows move only when a test steps them.
const FROZEN_SPEED: &str = "0.0001";

/// How the simulator serves CCE.
enum Tls {
    /// Plain HTTP.
    None,
    /// A certificate it generates, its CA written beside the process.
    SelfSigned,
    /// Given files, so a successor at the same address is trusted as before.
    Files(SimTls),
}

/// What a simulator is started with; [`Launch::start`] starts it.
pub struct Launch {
    listen: String,
    tls: Tls,
    scenario_files: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// Plays the built-in scenario `b`.
    pub fn scenario(mut self, b: Builtin) -> Launch {
        self.args.extend(["--scenario".into(), b.name().into()]);
        self
    }

    /// Also plays the scenario `yaml`, written next to the simulator's certificate.
    pub fn scenario_yaml(mut self, yaml: &str) -> Launch {
        self.scenario_files.push(yaml.into());
        self
    }

    /// Freezes the clock: workflows move only when stepped ([`Sim::step`]).
    pub fn frozen(self) -> Launch {
        self.args(&["--speed", FROZEN_SPEED])
    }

    /// Serves at `listen` with `tls`'s certificate, so a test can stop it and start another
    /// in its place that the operator trusts as before.
    pub fn at(mut self, listen: &str, tls: &SimTls) -> Launch {
        self.listen = listen.into();
        self.tls = Tls::Files(tls.clone());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Launch {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts it and waits for the URL and admin lines it prints first.
    pub fn start(self) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = command();
        command.args(["--listen", &self.listen, "--admin-listen", "127.0.0.1:0"]);
        let ca = match &self.tls {
            Tls::None => None,
            Tls::SelfSigned => {
                let ca = dir.path().join("ca.pem");
                command
                    .arg("--tls-self-signed")
                    .arg("--tls-cert-out")
                    .arg(&ca);
                Some(ca)
            }
            Tls::Files(tls) => {
                command.arg("--tls-cert").arg(&tls.cert);
                command.arg("--tls-key").arg(&tls.key);
                Some(tls.ca.clone())
            }
        };
        for (i, yaml) in self.scenario_files.iter().enumerate() {
            let path = dir.path().join(format!("scenario-{i}.yaml"));
            std::fs::write(&path, yaml).expect("write scenario");
            command.arg("--scenario").arg(path);
        }
        command
            .args(&self.args)
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let sim = Sim::spawn(command, ca, dir);
        if sim.ca.is_some() {
            assert!(
                sim.url.starts_with("https://"),
                "not an HTTPS URL: {}",
                sim.url
            );
        }
        sim
    }
}

/// A running simulator; killed when dropped.
pub struct Sim {
    child: Child,
    /// Its CCE endpoint.
    pub url: String,
    /// Its admin API (`/_sim/...`).
    pub admin: String,
    /// The CA bundle that makes its certificate trusted (none over plain HTTP).
    pub ca: Option<PathBuf>,
    /// Everything printed on stdout after the admin line.
    banner: Arc<Mutex<String>>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Plain HTTP: for the simulator's own tests.
    pub fn http() -> Launch {
        Launch {
            listen: "127.0.0.1:0".into(),
            tls: Tls::None,
            scenario_files: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// HTTPS with a certificate the operator can trust ([`Sim::ca`]): for the operator's tests.
    pub fn https() -> Launch {
        Launch {
            tls: Tls::SelfSigned,
            ..Sim::http()
        }
    }

    /// [`Sim::http`] with `args`, started.
    pub fn start(args: &[&str]) -> Sim {
        Sim::http().args(args).start()
    }

    fn spawn(mut command: Command, ca: Option<PathBuf>, dir: tempfile::TempDir) -> Sim {
        let mut child = command.spawn().expect("start the simulator");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
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
        // Both pipes are drained so the simulator never blocks on a full one.
        std::thread::spawn(move || {
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&line);
                line.clear();
            }
        });
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            });
        }
        Sim {
            child,
            url,
            admin,
            ca,
            banner,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// The CA bundle of an HTTPS simulator.
    pub fn ca_bundle(&self) -> &Path {
        self.ca
            .as_deref()
            .expect("an HTTPS simulator (Sim::https) has a CA bundle")
    }

    /// What it printed after its URL and admin lines; waits for the banner's last line.
    pub async fn banner(&self) -> String {
        let text = || {
            self.banner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        };
        let _ = within(
            "the simulator's banner",
            Duration::from_secs(5),
            SIM_POLL,
            || async {
                let text = text();
                match text.contains("workflows created through the API play") {
                    true => Ok(()),
                    false => Err(text),
                }
            },
        )
        .await;
        text()
    }

    // ------------------------------------------------------------ the CCE side

    /// The project's client: the CA bundle over HTTPS, insecure HTTP allowed otherwise.
    pub fn client(&self) -> CceClient {
        let config = match &self.ca {
            Some(ca) => ClientConfig {
                ca_bundle: Some(ca.clone()),
                policy: EndpointPolicy::default()
                    .with_extra(["127.0.0.1:*"])
                    .expect("entry"),
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

    pub fn target(&self, family: ApiFamily, cluster: &str, credentials: Credentials) -> Target {
        Target {
            endpoint: Url::parse(&self.url).expect("url"),
            project_id: builtin::PROJECT_ID.into(),
            cluster_id: cluster.into(),
            family,
            credentials,
        }
    }

    /// The first copy of a built-in scenario's cluster, with the built-in AK/SK.
    pub fn builtin_target(&self, b: Builtin) -> Target {
        self.target(b.cluster_type(), &b.cluster_id(0), aksk())
    }

    /// Reads the first workflow of the success scenario with `credentials`: whether CCE
    /// accepts them.
    pub async fn show_with(&self, credentials: Credentials) -> Result<(), CceError> {
        let b = Builtin::Success;
        let target = self.target(b.cluster_type(), &b.cluster_id(0), credentials);
        self.client()
            .show_workflow(&target, &b.workflow_id(0))
            .await
            .map(|_| ())
    }

    // ------------------------------------------------------------ the admin API

    /// Calls the admin API; answers `(status, JSON body or Null)`.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.admin));
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

    pub async fn admin_get(&self, path: &str) -> Value {
        self.admin("GET", path, None).await.1
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin("POST", path, Some(body)).await
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin("PUT", path, Some(body)).await
    }

    pub async fn admin_delete(&self, path: &str) -> u16 {
        self.admin("DELETE", path, None).await.0
    }

    /// A POST that must succeed; its answer.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        succeeded("POST", path, self.admin_post(path, body).await)
    }

    /// A PUT that must succeed; its answer.
    pub async fn put(&self, path: &str, body: Value) -> Value {
        succeeded("PUT", path, self.admin_put(path, body).await)
    }

    /// A DELETE that must succeed.
    pub async fn delete(&self, path: &str) {
        let status = self.admin_delete(path).await;
        assert!((200..300).contains(&status), "DELETE {path}: {status}");
    }

    /// What the simulator holds for one workflow now (timeline, steps left, the workflow).
    pub async fn workflow(&self, id: &str) -> Value {
        self.admin_get(&format!("/_sim/workflows/{id}")).await
    }

    /// Moves one workflow on by `steps` timeline steps.
    pub async fn step(&self, workflow: &str, steps: u32) {
        self.post(
            &format!("/_sim/workflows/{workflow}/advance"),
            serde_json::json!({"steps": steps}),
        )
        .await;
    }

    /// The request log, optionally filtered (`route=show&workflowID=...`).
    pub async fn requests(&self, query: &str) -> Vec<Value> {
        self.admin_get(&format!("/_sim/requests?{query}")).await["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Requests the simulator served for one workflow (show) so far.
    pub async fn requests_for(&self, workflow: &str) -> Vec<Value> {
        self.requests(&format!("workflowID={workflow}&limit=100000"))
            .await
    }
}

fn succeeded(method: &str, path: &str, (status, body): (u16, Value)) -> Value {
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {body}"
    );
    body
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 in PEM files, for [`Launch::at`].
#[derive(Clone)]
pub struct SimTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: Arc<tempfile::TempDir>,
}

impl SimTls {
    pub fn generate() -> SimTls {
        SimTls::generate_for(&["127.0.0.1"])
    }

    /// A certificate for `names` (IP addresses or DNS names): for a simulator that Pods
    /// reach at the node's address (node_e2e).
    pub fn generate_for(names: &[&str]) -> SimTls {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names).expect("params");
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("key");
        let cert = leaf.signed_by(&key, &ca).expect("leaf");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca.pem()).expect("write CA");
        std::fs::write(path("cert.pem"), cert.pem()).expect("write cert");
        std::fs::write(path("key.pem"), key.serialize_pem()).expect("write key");
        SimTls {
            ca: path("ca.pem"),
            cert: path("cert.pem"),
            key: path("key.pem"),
            _dir: Arc::new(dir),
        }
    }
}

// ---------------------------------------------------------------- built-in credentials

pub fn aksk() -> Credentials {
    aksk_with(builtin::ACCESS_KEY, builtin::SECRET_KEY)
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

/// The cluster and workflow ids of copy `i` of a built-in scenario.
pub struct CopyIds {
    pub cluster: String,
    pub workflow: String,
}

pub fn copy(b: Builtin, i: u64) -> CopyIds {
    CopyIds {
        cluster: b.cluster_id(i),
        workflow: b.workflow_id(i),
    }
}
