//! The operator binary as a child process of a test or the benchmark, logging to a file
//! that is checked for secrets when it is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::secrets::secret_leaks;
use super::sim::Sim;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_cce-upgrade-watch")
}

/// The operator (under `wrapper`, e.g. a profiler, when given) logging to `log`, with none
/// of the CCE credentials a developer's shell may hold.
pub fn command(wrapper: Option<&str>, log: &Path) -> Command {
    command_for(Path::new(binary()), wrapper, log)
}

/// [`command`] for the operator binary at `binary` (the benchmark also runs the static one).
pub fn command_for(binary: &Path, wrapper: Option<&str>, log: &Path) -> Command {
    let mut command = match wrapper.map(str::split_whitespace) {
        Some(mut words) => {
            let mut c = Command::new(words.next().expect("an empty wrapper"));
            c.args(words).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("log file {}: {e}", log.display()));
    // Nor any other source of the SDK's credential chain: a test names the one it means.
    let chain = cce_upgrade_watch::credentials::defaults::CHAIN_VARIABLES.iter();
    for name in chain.chain(&["DEFAULT_CREDENTIALS_DIR"]) {
        command.env_remove(name);
    }
    command.stdout(Stdio::null()).stderr(log);
    command
}

/// Sends SIGTERM to `target` (a pid, or `-pgid` for a process group) and waits up to ten
/// seconds for `child` to exit; whether it did.
pub fn terminate(child: &mut Child, target: &str) -> bool {
    let _ = Command::new("kill")
        .args(["-TERM", "--", target])
        .stderr(Stdio::null())
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A log file for the operator called `name`: in CCE_UW_TEST_LOG_DIR when set (kept for a
/// look after the run; several operators of one name each get their own, claimed with
/// `create_new` so operators of tests running side by side never share one), else in `dir`.
fn log_file(name: &str, dir: &Path) -> PathBuf {
    match std::env::var_os("CCE_UW_TEST_LOG_DIR") {
        Some(keep) => (1..)
            .map(|n| match n {
                1 => PathBuf::from(&keep).join(format!("{name}.log")),
                n => PathBuf::from(&keep).join(format!("{name}-{n}.log")),
            })
            .find(|path| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .is_ok()
            })
            .expect("a free log name"),
        None => dir.join("operator.log"),
    }
}

/// `cce-upgrade-watch run`, killed when dropped; its log may hold no secret.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Whether it sees only `env` (as in a pod), not the test's environment.
    env_clear: bool,
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
    /// `namespace` may list several, comma-separated, as `--namespaces` takes them, or be
    /// empty for an operator serving every namespace (on a private plane only: the shared
    /// one holds every test's watches). The timings are a test's: short backoffs and
    /// resyncs, logging at trace.
    pub fn start_with_env(
        namespace: &str,
        sim: &Sim,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let mut args: Vec<String> = [
            "run",
            "--allowed-cce-endpoint",
            "127.0.0.1:*",
            "--allowed-iam-endpoint",
            "127.0.0.1:*",
            "--terminal-resync",
            "5s",
            "--backoff-base",
            "1s",
            "--backoff-cap",
            "4s",
            "--permanent-retry",
            "5s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !namespace.is_empty() {
            args.extend(["--namespaces".into(), namespace.into()]);
        }
        if !extra.contains(&"--cce-request-timeout") {
            args.extend(["--cce-request-timeout".into(), "2s".into()]);
        }
        if !extra.contains(&"--admin-listen") {
            args.extend(["--admin-listen".into(), "127.0.0.1:0".into()]);
        }
        args.push("--ca-bundle".into());
        args.push(sim.ca_bundle().display().to_string());
        if !extra.iter().any(|a| a.starts_with("--leader-elect")) {
            args.push("--leader-elect=false".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log_level = std::env::var("CCE_UW_TEST_LOG").unwrap_or_else(|_| "trace".into());
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert(0, ("RUST_LOG".into(), log_level));
        let name = if namespace.is_empty() {
            "every-namespace"
        } else {
            namespace
        };
        Self::run(name, args, env, false)
    }

    /// The operator with exactly `args` and `env` and nothing of the test's environment,
    /// as a pod runs it; its log is called `name`.
    pub fn start_clean(name: &str, args: Vec<String>, env: Vec<(String, String)>) -> Operator {
        Self::run(name, args, env, true)
    }

    fn run(name: &str, args: Vec<String>, env: Vec<(String, String)>, env_clear: bool) -> Operator {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut op = Operator {
            child: None,
            log: log_file(name, dir.path()),
            args,
            env,
            env_clear,
            _dir: dir,
        };
        op.spawn();
        op
    }

    fn spawn(&mut self) {
        let mut command = command(None, &self.log);
        if self.env_clear {
            command.env_clear();
        }
        let child = command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .spawn()
            .expect("start operator");
        self.child = Some(child);
    }

    /// SIGTERM, then wait for a graceful exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            if terminate(&mut child, &pid) {
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL: the operator gets no chance to finish what it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits up to `within` for the process to exit on its own; how it exited.
    pub fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        for _ in 0..within.as_millis() / 100 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `http://host:port` of the admin server (/metrics, /readyz), from the line the
    /// operator logs when it binds it (as text or JSON); fails after 30 s.
    pub fn admin_url(&self) -> String {
        const LINE: &str = "admin server listening";
        for _ in 0..300 {
            let log = self.log_text();
            if let Some(line) = log.lines().find(|l| l.contains(LINE)) {
                let start = line
                    .find("127.0.0.1:")
                    .unwrap_or_else(|| panic!("no address in {line:?}"));
                let addr: String = line[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
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
        // Every test's operator logs in detail: none of its lines may carry a secret.
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
