//! The `cce-sim` command line: flags (each also from a `CCE_UW_SIM_*` variable), start-up
//! (scenarios, credentials, TLS, listeners) and the banner. The first line on stdout is
//! the CCE URL, flushed at once, so scripts and tests can read it and go. I/O: files,
//! listeners, stdout and signals.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::admin::{self, Admin};
use super::auth::CredentialStore;
use super::builtin::{self, Builtin};
use super::clock::{Clock, SystemClock};
use super::fault::{FaultSet, FaultSpec};
use super::iam::Iam;
use super::iam::config::{IamConfig, JwksSource, check_jwks_url};
use super::plan::{Plan, Summary};
use super::scenario::ScenarioFile;
use super::server::Sim;
use super::state::World;
use super::{net, tls};

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Address for the CCE API. Port 0 picks a free port; the URL printed first tells which.
    #[arg(
        long,
        value_name = "ADDR",
        env = "CCE_UW_SIM_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    pub listen: Option<SocketAddr>,

    /// Serve HTTPS with a certificate for 127.0.0.1/localhost generated at start.
    #[arg(long, env = "CCE_UW_SIM_TLS_SELF_SIGNED", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,

    /// Write the PEM of the CA that issued the generated certificate here (trust it as a
    /// CA bundle).
    #[arg(
        long,
        value_name = "FILE",
        env = "CCE_UW_SIM_TLS_CERT_OUT",
        requires = "tls_self_signed"
    )]
    pub tls_cert_out: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain.
    #[arg(
        long,
        value_name = "FILE",
        env = "CCE_UW_SIM_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        env = "CCE_UW_SIM_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    #[arg(
        long = "scenario",
        help = scenario_help(),
        value_name = "NAME|FILE",
        env = "CCE_UW_SIM_SCENARIO",
        value_delimiter = ','
    )]
    pub scenarios: Vec<String>,

    /// Instantiate every scenario N times (ids differ by their `{i}` part).
    #[arg(long, value_name = "N", env = "CCE_UW_SIM_WORKFLOWS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub workflows: Option<u64>,

    /// Credentials YAML: a list of {accessKey, secretKey, projectID, securityToken?} or
    /// {token, projectID}. Default: built-in credentials, printed at start.
    #[arg(long, value_name = "FILE", env = "CCE_UW_SIM_CREDENTIALS")]
    pub credentials: Option<PathBuf>,

    /// How many scenario seconds pass per real second (60: a 5-minute upgrade takes 5 s).
    #[arg(
        long,
        value_name = "FACTOR",
        env = "CCE_UW_SIM_SPEED",
        default_value_t = 1.0
    )]
    pub speed: f64,

    /// Address for the admin API (faults, counters, request log, state); off when absent.
    #[arg(long, value_name = "ADDR", env = "CCE_UW_SIM_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// A fault active from the start: KIND[:key=value,...], KIND one of latency,
    /// throttle (429), error (5xx), malformed, reset, forbidden (403), notfound (404),
    /// oversized; keys route, count, after, for, ms, retry-after, status, bytes. Routes: show,
    /// list, create, cancel (the default: all four), show-precheck, list-prechecks,
    /// show-upgrade-task, list-upgrade-tasks, show-cluster, list-snapshots, list-clusters
    /// (ListClusters of both families), and IAM's
    /// iam-id-token, iam-security-token, sts-assume-with-oidc, pod-identity. Example:
    /// forbidden:route=show-precheck. The variable takes a semicolon-separated list.
    #[arg(long = "fault", value_name = "SPEC", env = "CCE_UW_SIM_FAULTS", value_delimiter = ';', value_parser = FaultSpec::parse_flag)]
    pub faults: Vec<FaultSpec>,

    /// Timeline that workflows created through the API play (default: success).
    #[arg(long, value_name = "TIMELINE", env = "CCE_UW_SIM_ON_CREATE")]
    pub on_create: Option<String>,

    /// IAM configuration (YAML or JSON): identity providers {id, issuer, clientIds,
    /// jwks?: {url, caFile?, tokenFile?}}, conversion rules {provider, sub, user,
    /// projectIDs, agency?} and lifetimes {token, credentialCap?, podIdentity}. IAM, STS
    /// and the pod-identity agent are served on the CCE listener; without this file they
    /// know no identity provider.
    #[arg(long, value_name = "FILE", env = "CCE_UW_SIM_IAM_CONFIG")]
    pub iam_config: Option<PathBuf>,

    /// Where providers without their own `jwks` read their signing keys, such as
    /// https://127.0.0.1:6443/openid/v1/jwks of the API server.
    #[arg(long, value_name = "URL", env = "CCE_UW_SIM_IAM_JWKS_URL")]
    pub iam_jwks_url: Option<String>,

    /// PEM CA bundle that makes --iam-jwks-url's certificate trusted.
    #[arg(
        long,
        value_name = "FILE",
        env = "CCE_UW_SIM_IAM_JWKS_CA",
        requires = "iam_jwks_url"
    )]
    pub iam_jwks_ca: Option<PathBuf>,

    /// A file holding the bearer token for --iam-jwks-url, read at every read of the keys
    /// (the API server serves them to ServiceAccounts).
    #[arg(
        long,
        value_name = "FILE",
        env = "CCE_UW_SIM_IAM_JWKS_TOKEN_FILE",
        requires = "iam_jwks_url"
    )]
    pub iam_jwks_token_file: Option<PathBuf>,
}

/// `--scenario`'s help, listing the built-ins from their table.
fn scenario_help() -> String {
    format!(
        "A built-in scenario name or a scenario YAML file; repeat to combine. Default: every \
         built-in ({}). The variable takes a comma-separated list",
        builtin_names().join(", ")
    )
}

fn builtin_names() -> Vec<&'static str> {
    Builtin::ALL.iter().map(|b| b.name()).collect()
}

impl Default for SimArgs {
    /// What the command line gives without flags (for in-process use).
    fn default() -> Self {
        SimArgs {
            listen: None,
            tls_self_signed: false,
            tls_cert_out: None,
            tls_cert: None,
            tls_key: None,
            scenarios: Vec::new(),
            workflows: None,
            credentials: None,
            speed: 1.0,
            admin_listen: None,
            faults: Vec::new(),
            on_create: None,
            iam_config: None,
            iam_jwks_url: None,
            iam_jwks_ca: None,
            iam_jwks_token_file: None,
        }
    }
}

/// A started simulator. Dropping it stops the listeners.
pub struct Running {
    /// The CCE endpoint, e.g. `https://127.0.0.1:43117`.
    pub url: String,
    pub admin_url: Option<String>,
    pub sim: Arc<Sim>,
    /// PEM of the CA to trust when the certificate was generated.
    pub ca_pem: Option<String>,
    summaries: Vec<Summary>,
    credential_note: String,
    iam_note: String,
    speed: f64,
    on_create: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Builds the start-up plan: scenarios (built-in or files), copies, faults, onCreate.
pub fn plan(args: &SimArgs) -> Result<Plan, String> {
    let names: Vec<String> = if args.scenarios.is_empty() {
        builtin_names().into_iter().map(String::from).collect()
    } else {
        args.scenarios.clone()
    };
    let mut plan = Plan::default();
    for name in &names {
        let part = match Builtin::from_name(name) {
            Some(b) => {
                let count = args.workflows.filter(|_| b.copyable());
                b.scenario().instantiate(count)
            }
            None => {
                let text = std::fs::read_to_string(name).map_err(|e| {
                    format!(
                        "scenario {name:?} is not a built-in ({}) nor a readable file: {e}",
                        builtin_names().join(", ")
                    )
                })?;
                ScenarioFile::from_yaml(&text).and_then(|f| f.instantiate(args.workflows))
            }
        }
        .map_err(|e| e.to_string())?;
        plan.merge(part).map_err(|e| e.to_string())?;
    }
    if let Some(name) = &args.on_create {
        plan.on_create = Some(builtin::timeline(name).ok_or_else(|| {
            format!(
                "--on-create {name:?} is not a built-in timeline ({})",
                builtin::timeline_names().join(", ")
            )
        })?);
    }
    plan.faults.extend(args.faults.iter().cloned());
    Ok(plan)
}

fn url_host(addr: SocketAddr) -> String {
    // A wildcard address is reachable on loopback, which the certificate names.
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}

/// Starts the simulator with the wall clock.
pub async fn start(args: &SimArgs) -> Result<Running, String> {
    start_with_clock(args, Arc::new(SystemClock)).await
}

/// Starts the simulator; listeners run on the current Tokio runtime.
pub async fn start_with_clock(args: &SimArgs, clock: Arc<dyn Clock>) -> Result<Running, String> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(format!(
            "--speed must be a positive number, not {}",
            args.speed
        ));
    }
    let plan = plan(args)?;
    let (credentials, credential_note) = credentials(args)?;
    let now = clock.now();
    let world = World::new(&plan, args.speed, now).map_err(|e| e.to_string())?;
    let mut faults = FaultSet::default();
    for f in &plan.faults {
        faults.add(f.clone(), now)?;
    }
    let on_create = world.on_create().name.clone();
    let (iam, iam_note) = iam(args)?;
    let sim = Arc::new(Sim::new(world, credentials, faults, iam, clock));

    let (tls, ca_pem) = tls_config(args)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listen = args
        .listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("{scheme}://{}", url_host(bound));
    let mut tasks = vec![tokio::spawn(net::serve_cce(
        listener,
        tls.map(TlsAcceptor::from),
        Arc::clone(&sim),
    ))];

    let summaries = plan.summaries.clone();
    let admin_url = match args.admin_listen {
        None => None,
        Some(addr) => {
            let admin = Admin {
                sim: Arc::clone(&sim),
                summaries: summaries.clone(),
            };
            let (url, task) = serve_admin(addr, admin).await?;
            tasks.push(task);
            Some(url)
        }
    };
    Ok(Running {
        url,
        admin_url,
        sim,
        ca_pem,
        summaries,
        credential_note,
        iam_note,
        speed: args.speed,
        on_create,
        tasks,
    })
}

/// The credentials from `--credentials`, else the built-in ones, and the line the banner
/// shows.
fn credentials(args: &SimArgs) -> Result<(CredentialStore, String), String> {
    let Some(path) = &args.credentials else {
        return Ok((
            CredentialStore::from_defs(&builtin::credentials())?,
            builtin_credentials_note(),
        ));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let defs = CredentialStore::parse_yaml(&text)?;
    let store = CredentialStore::from_defs(&defs)?;
    let note = format!(
        "credentials: {} entries from {}",
        defs.len(),
        path.display()
    );
    Ok((store, note))
}

/// The CCE listener's TLS from the flags, and the generated CA's PEM if one was made.
fn tls_config(
    args: &SimArgs,
) -> Result<
    (
        Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        Option<String>,
    ),
    String,
> {
    if args.tls_self_signed {
        let generated = tls::self_signed()?;
        if let Some(path) = &args.tls_cert_out {
            std::fs::write(path, &generated.ca_pem)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok((Some(generated.config), Some(generated.ca_pem)))
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        Ok((Some(tls::from_files(cert, key)?), None))
    } else {
        Ok((None, None))
    }
}

/// Binds the admin listener and serves the admin API on it; its URL and task.
async fn serve_admin(addr: SocketAddr, admin: Admin) -> Result<(String, JoinHandle<()>), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} (admin): {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let router = admin::router(Arc::new(admin));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    Ok((format!("http://{}", url_host(bound)), task))
}

/// IAM from `--iam-config` and the `--iam-jwks-*` flags, and the line the banner shows.
fn iam(args: &SimArgs) -> Result<(Iam, String), String> {
    let config = match &args.iam_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            IamConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => IamConfig::default(),
    };
    if let Some(url) = &args.iam_jwks_url {
        check_jwks_url(url).map_err(|e| format!("--iam-jwks-url: {e}"))?;
    }
    let default_jwks = args.iam_jwks_url.as_ref().map(|url| JwksSource {
        url: url.clone(),
        ca_file: args.iam_jwks_ca.clone(),
        token_file: args.iam_jwks_token_file.clone(),
    });
    if default_jwks.is_none()
        && let Some(p) = config.providers.iter().find(|p| p.jwks.is_none())
    {
        return Err(format!(
            "identity provider {} has no jwks and --iam-jwks-url is not given",
            p.id
        ));
    }
    let note = format!(
        "iam: {} identity providers, {} conversion rules (IAM, STS and pod identity on the CCE URL)",
        config.providers.len(),
        config.rules.len()
    );
    Ok((Iam::new(config, default_jwks, args.speed), note))
}

fn builtin_credentials_note() -> String {
    format!(
        "credentials (built-in, project {}):\n  \
         AK/SK:      accessKey={} secretKey={}\n  \
         temporary:  accessKey={} secretKey={} securityToken={}\n  \
         IAM token:  token={}",
        builtin::PROJECT_ID,
        builtin::ACCESS_KEY,
        builtin::SECRET_KEY,
        builtin::TEMP_ACCESS_KEY,
        builtin::TEMP_SECRET_KEY,
        builtin::SECURITY_TOKEN,
        builtin::TOKEN,
    )
}

impl Running {
    /// What the simulator prints at start, after the URL line.
    pub fn banner(&self, args: &SimArgs) -> String {
        let mut out = String::new();
        if let Some(admin) = &self.admin_url {
            let _ = writeln!(out, "admin {admin}");
        }
        let _ = writeln!(out, "speed {} (scenario seconds per second)", self.speed);
        match (&args.tls_cert_out, &self.ca_pem) {
            (Some(path), _) => {
                let _ = writeln!(out, "tls: CA certificate written to {}", path.display());
            }
            (None, Some(_)) => {
                let _ = writeln!(
                    out,
                    "tls: generated certificate; use --tls-cert-out FILE to trust it"
                );
            }
            _ => {}
        }
        let _ = writeln!(out, "{}", self.credential_note);
        let _ = writeln!(out, "{}", self.iam_note);
        for s in &self.summaries {
            let _ = writeln!(out, "scenario {} x{}:", s.name, s.count);
            // With copies, the template says how every copy's id is made.
            for c in &s.clusters {
                let shown = if s.count > 1 {
                    &c.id_template
                } else {
                    &c.first
                };
                let (project, ty) = (&c.project_id, c.cluster_type);
                let _ = writeln!(out, "  project {project} cluster {shown} ({ty:?})");
            }
            for w in &s.workflows {
                let shown = if s.count > 1 {
                    &w.id_template
                } else {
                    &w.first
                };
                let _ = writeln!(out, "  workflow {shown} (timeline {})", w.timeline);
            }
        }
        let _ = writeln!(
            out,
            "workflows created through the API play: {}",
            self.on_create
        );
        out
    }

    /// Runs until one listener stops (it does not, short of a fatal error).
    pub async fn wait(mut self) {
        if let Some(first) = self.tasks.first_mut() {
            let _ = first.await;
        }
    }
}

/// Runs the simulator until SIGINT or SIGTERM.
pub async fn run(args: SimArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let running = match start(&args).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // The URL line first and flushed: callers read it to know the port.
    let printed = writeln!(stdout, "{}", running.url)
        .and_then(|()| stdout.flush())
        .and_then(|()| write!(stdout, "{}", running.banner(&args)))
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = printed {
        eprintln!("error: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }
    tokio::select! {
        () = running.wait() => ExitCode::FAILURE,
        () = shutdown_signal() => ExitCode::SUCCESS,
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
