//! What the benchmarks share (`fleet`, `discovery`): the operator binary to measure, the
//! operator as a child process with the benchmarks' flags, the simulator's request log and
//! the operator's metrics read as they go, and the statistics of the figures.

// Each benchmark uses its own part.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

use crate::kit;
use kit::eventually::within;
use kit::plane::PrivatePlane;
use kit::sim::Sim;

pub type Res<T> = Result<T, String>;

/// An operator binary to measure.
pub struct Binary {
    pub label: String,
    pub path: PathBuf,
    pub allocator: &'static str,
}

/// `release`, `static` or a path, checked to exist; the allocator is read from the binary
/// (jemalloc's messages are in it when it is linked).
pub fn resolve_binary(name: &str) -> Res<Binary> {
    let (label, path) = match name {
        "release" => (
            "release".to_string(),
            PathBuf::from(kit::operator::binary()),
        ),
        "static" => (
            "static".to_string(),
            kit::repo_path("target/x86_64-unknown-linux-musl/release/cce-upgrade-watch"),
        ),
        path => (
            Path::new(path)
                .file_name()
                .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned()),
            PathBuf::from(path),
        ),
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e} (`make bench BINARY=static` builds the static one)",
            path.display()
        )
    })?;
    let needle = b"<jemalloc>";
    let allocator = if bytes.windows(needle.len()).any(|w| w == needle) {
        "jemalloc"
    } else {
        "system"
    };
    Ok(Binary {
        label,
        path,
        allocator,
    })
}

pub fn log(msg: impl AsRef<str>) {
    eprintln!(
        "[bench {}] {}",
        Timestamp::now().strftime("%H:%M:%S"),
        msg.as_ref()
    );
}

// ------------------------------------------------------------------ processes

/// The operator for the whole cluster, stopped gracefully when dropped.
pub struct Operator {
    pub child: Child,
    pub metrics_url: String,
}

impl Drop for Operator {
    /// SIGTERM to the operator's own process group (it and a wrapper such as heaptrack,
    /// which then writes its data), then SIGKILL to whatever is left.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        kit::operator::terminate(&mut self.child, &group);
        std::thread::sleep(Duration::from_secs(1));
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// How the operator is started: the binary (under `wrapper`, e.g. a profiler, when given),
/// its CCE request budget per second (rate and burst), its reconcile concurrency and any
/// further flags.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub wrapper: Option<&'a str>,
    pub cce_rate: usize,
    pub concurrency: u16,
    pub extra: &'a [&'a str],
}

/// The operator for the whole cluster of `plane`, trusting `sim`'s CA, logging to
/// `log_file` (emptied first), in its own process group.
pub fn start_operator(
    launch: &Launch<'_>,
    plane: &PrivatePlane,
    sim: &Sim,
    log_file: &Path,
) -> Res<Operator> {
    let port = free_port()?;
    // A fresh log for each run.
    std::fs::File::create(log_file).map_err(|e| e.to_string())?;
    let mut command = kit::operator::command_for(launch.binary, launch.wrapper, log_file);
    // Its own process group, so a wrapper and the operator under it stop together.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .args([
            "run",
            "--leader-elect=false",
            "--allowed-cce-endpoint",
            "127.0.0.1:*",
        ])
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--ca-bundle")
        .arg(sim.ca_bundle())
        .arg("--cce-rate-limit")
        .arg(launch.cce_rate.to_string())
        .arg("--cce-rate-burst")
        .arg(launch.cce_rate.to_string())
        .arg("--concurrency")
        .arg(launch.concurrency.to_string())
        .args(launch.extra)
        .env("KUBECONFIG", plane.kubeconfig())
        .env("RUST_LOG", "info")
        .spawn()
        .map_err(|e| format!("start operator: {e}"))?;
    Ok(Operator {
        child,
        metrics_url: format!("http://127.0.0.1:{port}/metrics"),
    })
}

/// Waits up to `secs` for the operator's /readyz (its caches synced); an error when it
/// exited or never became ready.
pub async fn wait_ready(
    operator: &mut Operator,
    http: &reqwest::Client,
    secs: u64,
    log_file: &Path,
) -> Res<()> {
    let ready_url = operator.metrics_url.replace("/metrics", "/readyz");
    let exited = within(
        "operator ready",
        Duration::from_secs(secs),
        Duration::from_millis(200),
        || {
            let exited = operator.child.try_wait().ok().flatten();
            let ready_url = &ready_url;
            async move {
                if exited.is_some() {
                    return Ok(exited);
                }
                match http.get(ready_url).send().await {
                    Ok(r) if r.status().is_success() => Ok(None),
                    Ok(r) => Err(r.status().to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await?;
    match exited {
        Some(status) => Err(format!(
            "operator exited ({status}); see {}",
            log_file.display()
        )),
        None => Ok(()),
    }
}

pub fn socket_of(url: &str) -> Res<std::net::SocketAddr> {
    let url = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = url.host_str().ok_or("no host")?.to_string();
    let port = url.port_or_known_default().ok_or("no port")?;
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------ simulator admin

#[derive(Clone, Debug)]
pub struct Served {
    pub unix_ms: f64,
    pub route: String,
    pub workflow: Option<String>,
    pub cluster: Option<String>,
    pub status: u64,
}

impl Served {
    /// The workflow a request was about: named in its path, or, for the diagnostic reads
    /// (which name a cluster and a task), the one workflow of its cluster.
    pub fn workflow_of(&self, by_cluster: &HashMap<String, String>) -> Option<String> {
        self.workflow
            .clone()
            .or_else(|| by_cluster.get(self.cluster.as_deref()?).cloned())
    }
}

/// Appends the simulator's request log since `since` (the log is bounded, so the driver
/// reads it as it goes).
pub async fn drain_requests(sim: &Sim, since: &mut u64, into: &mut Vec<Served>) {
    loop {
        let list = sim.requests(&format!("since={since}&limit=50000")).await;
        if list.is_empty() {
            return;
        }
        for r in &list {
            *since = (*since).max(r["seq"].as_u64().unwrap_or(0));
            into.push(Served {
                unix_ms: r["unixMs"].as_f64().unwrap_or(0.0),
                route: r["route"].as_str().unwrap_or_default().to_string(),
                workflow: r["workflowID"].as_str().map(str::to_string),
                cluster: r["clusterID"].as_str().map(str::to_string),
                status: r["status"].as_u64().unwrap_or(0),
            });
        }
        if list.len() < 50000 {
            return;
        }
    }
}

pub async fn scrape(http: &reqwest::Client, url: &str) -> Res<BTreeMap<String, f64>> {
    let text = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("scrape {url}: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse::<f64>()
        {
            out.insert(name.to_string(), v);
        }
    }
    Ok(out)
}

pub fn metric_sum(m: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| *k == prefix || k.starts_with(&format!("{prefix}{{")))
        .map(|(_, v)| v)
        .sum()
}

// ------------------------------------------------------------------ statistics

pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

pub fn secs(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}
