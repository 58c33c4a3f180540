//! The simulator and the operator as child processes of a test, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PROJECT: &str = "0aa1c0de5e1f4c0e8a5d5a5e00000001";
pub const ACCESS_KEY: &str = "SIMAK0000000000000001";
pub const SECRET_KEY: &str = "simSK0000000000000000000000000000000000001";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_cce-upgrade-watch")
}

/// The simulator's binary.
pub fn sim_binary() -> &'static str {
    env!("CARGO_BIN_EXE_cce-sim")
}

/// `cce-sim` over TLS with its admin API.
pub struct Sim {
    child: Child,
    pub url: String,
    pub admin: String,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
        Sim::start_in(tempfile::tempdir().expect("tempdir"), args)
    }

    /// A simulator that also plays the scenario `yaml`, written next to its certificate.
    pub fn start_with_scenario(yaml: &str, args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scenario.yaml");
        std::fs::write(&path, yaml).expect("write scenario");
        let path = path.to_str().expect("utf-8 path").to_string();
        Sim::start_in(dir, &[args, &["--scenario", &path]].concat())
    }

    fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Sim {
        let ca = dir.path().join("ca.pem");
        let base: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--tls-self-signed",
            "--tls-cert-out",
            ca.to_str().expect("utf-8 path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Sim::spawn(base, ca, dir, args)
    }

    /// A simulator on a fixed address serving `tls`'s certificate, so a test can stop it
    /// and start another in its place that the operator trusts as before.
    pub fn start_at(listen: &str, tls: &SimTls, args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let base: Vec<String> = vec![
            "--listen".into(),
            listen.into(),
            "--tls-cert".into(),
            tls.cert.display().to_string(),
            "--tls-key".into(),
            tls.key.display().to_string(),
        ];
        Sim::spawn(base, tls.ca.clone(), dir, args)
    }

    fn spawn(base: Vec<String>, ca: PathBuf, dir: tempfile::TempDir, args: &[&str]) -> Sim {
        let mut child = Command::new(sim_binary())
            .args(base)
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start simulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = lines
            .next()
            .expect("simulator printed nothing")
            .expect("read");
        let admin_line = lines.next().expect("no admin line").expect("read");
        let admin = admin_line.trim_start_matches("admin ").trim().to_string();
        // Keep draining so the simulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        assert!(url.starts_with("https://"), "unexpected first line {url}");
        Sim {
            child,
            url,
            admin,
            ca,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let res = self
            .http
            .get(format!("{}{path}", self.admin))
            .send()
            .await
            .expect("admin GET");
        res.json().await.expect("admin JSON")
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let res = self
            .http
            .post(format!("{}{path}", self.admin))
            .json(&body)
            .send()
            .await
            .expect("admin POST");
        assert!(res.status().is_success(), "POST {path}: {}", res.status());
        res.json().await.expect("admin JSON")
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let res = self
            .http
            .put(format!("{}{path}", self.admin))
            .json(&body)
            .send()
            .await
            .expect("admin PUT");
        assert!(res.status().is_success(), "PUT {path}: {}", res.status());
        res.json().await.expect("admin JSON")
    }

    pub async fn delete(&self, path: &str) {
        let res = self
            .http
            .delete(format!("{}{path}", self.admin))
            .send()
            .await
            .expect("admin DELETE");
        assert!(res.status().is_success(), "DELETE {path}: {}", res.status());
    }

    /// Requests the simulator served for one workflow (show) so far.
    pub async fn requests_for(&self, workflow: &str) -> Vec<serde_json::Value> {
        let v = self
            .get(&format!(
                "/_sim/requests?workflowID={workflow}&limit=100000"
            ))
            .await;
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Moves one workflow on by `steps` timeline steps.
    pub async fn step(&self, workflow: &str, steps: u32) {
        self.post(
            &format!("/_sim/workflows/{workflow}/advance"),
            serde_json::json!({"steps": steps}),
        )
        .await;
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 in PEM files, for [`Sim::start_at`].
pub struct SimTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl SimTls {
    pub fn generate() -> SimTls {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
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
            _dir: dir,
        }
    }
}

/// Secret values no operator log may contain: the simulator's built-in credentials, and
/// every Secret value a test hands to [`forbid_in_logs`] (the e2e helpers that create
/// Secrets do). Checked, in plain and in base64, when an [`Operator`] is dropped.
static FORBIDDEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

const BUILTIN_SECRETS: &[&str] = &[
    SECRET_KEY,
    "simTmpSK00000000000000000000000000000001",
    "simSecurityToken-0001",
    "MIIsimToken-0001",
];

/// Adds a secret value that must never appear in an operator's log.
pub fn forbid_in_logs(secret: &str) {
    let mut list = FORBIDDEN.lock().unwrap_or_else(|e| e.into_inner());
    if !secret.is_empty() && !list.iter().any(|s| s == secret) {
        list.push(secret.to_string());
    }
}

/// The log lines that contain a forbidden secret (plain or base64), with the secret
/// masked so the failure message leaks nothing either.
pub fn secret_leaks(log: &str) -> Vec<String> {
    let mut secrets: Vec<String> = BUILTIN_SECRETS.iter().map(|s| s.to_string()).collect();
    secrets.extend(
        FORBIDDEN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    let needles: Vec<String> = secrets
        .iter()
        .flat_map(|s| [s.clone(), base64(s.as_bytes())])
        .collect();
    log.lines()
        .filter(|line| needles.iter().any(|n| line.contains(n.as_str())))
        .map(|line| {
            let mut masked = line.to_string();
            for n in &needles {
                masked = masked.replace(n.as_str(), "<SECRET>");
            }
            masked.chars().take(300).collect()
        })
        .collect()
}

/// Standard base64 with padding, as Kubernetes shows Secret data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `cce-upgrade-watch run` scoped to one namespace, logging to a file.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Operator {
    /// Runs the operator for `namespace`, trusting the simulator's CA; `extra` adds flags.
    pub fn start(namespace: &str, sim: &Sim, extra: &[&str]) -> Operator {
        Self::start_with_env(namespace, sim, extra, &[])
    }

    /// [`Operator::start`] against the API server of `kubeconfig` (else KUBECONFIG's).
    pub fn start_on(
        kubeconfig: Option<&Path>,
        namespace: &str,
        sim: &Sim,
        extra: &[&str],
    ) -> Operator {
        match kubeconfig.and_then(Path::to_str) {
            Some(path) => Self::start_with_env(namespace, sim, extra, &[("KUBECONFIG", path)]),
            None => Self::start_with_env(namespace, sim, extra, &[]),
        }
    }

    /// [`Operator::start`] with extra environment variables (e.g. its own KUBECONFIG).
    /// `namespace` may list several, comma-separated, as `--namespaces` takes them.
    pub fn start_with_env(
        namespace: &str,
        sim: &Sim,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let dir = tempfile::tempdir().expect("tempdir");
        // CCE_UW_TEST_LOG_DIR keeps the operators' logs for a look after the run.
        // Several operators of one namespace (shards) each get their own file.
        let log = match std::env::var_os("CCE_UW_TEST_LOG_DIR") {
            Some(keep) => (1..)
                .map(|n| match n {
                    1 => PathBuf::from(&keep).join(format!("{namespace}.log")),
                    n => PathBuf::from(&keep).join(format!("{namespace}-{n}.log")),
                })
                .find(|path| !path.exists())
                .expect("a free log name"),
            None => dir.path().join("operator.log"),
        };
        let admin = if extra.contains(&"--admin-listen") {
            None
        } else {
            Some("127.0.0.1:0")
        };
        let mut args: Vec<String> = [
            "run",
            "--namespaces",
            namespace,
            "--allowed-endpoint-host",
            "127.0.0.1",
            "--terminal-resync",
            "5s",
            "--backoff-base",
            "1s",
            "--backoff-cap",
            "4s",
            "--permanent-retry",
            "5s",
            "--cce-request-timeout",
            "2s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(admin) = admin {
            args.push("--admin-listen".into());
            args.push(admin.into());
        }
        args.push("--ca-bundle".into());
        args.push(sim.ca.display().to_string());
        if !extra.iter().any(|a| a.starts_with("--leader-elect")) {
            args.push("--leader-elect=false".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut op = Operator {
            child: None,
            log,
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _dir: dir,
        };
        op.spawn();
        op
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(binary())
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("CCE_UW_TEST_LOG").unwrap_or_else(|_| "trace".into()),
            )
            .env_remove("CLOUD_SDK_AK")
            .env_remove("CLOUD_SDK_SK")
            .env_remove("CLOUD_SDK_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start operator");
        self.child = Some(child);
    }

    /// SIGTERM, then wait for a graceful exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `http://host:port` of the admin server (/metrics, /readyz), from the line the
    /// operator logs when it binds it; fails after 30 s.
    pub fn admin_url(&self) -> String {
        const LINE: &str = "admin server listening";
        for _ in 0..300 {
            let log = self.log_text();
            if let Some(line) = log.lines().find(|l| l.contains(LINE)) {
                let addr = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("addr="))
                    .unwrap_or_else(|| panic!("no addr= in {line:?}"))
                    .trim_matches('"');
                return format!("http://{addr}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the operator never logged {LINE:?}:\n{}", self.log_text());
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Every e2e test's operator logs at trace: none of its lines may carry a secret.
        if !std::thread::panicking() {
            let leaks = secret_leaks(&self.log_text());
            assert!(
                leaks.is_empty(),
                "{} operator log line(s) contain a Secret value (masked here):\n{}",
                leaks.len(),
                leaks.join("\n")
            );
        }
    }
}
