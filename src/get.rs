//! The `get` subcommand: fetch one upgrade workflow (or list a cluster's) with the same
//! client and credentials the controller uses, to check access before creating a watch.
//! Owns the flags, the table view and the mapping of error categories to exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use jiff::Timestamp;

use crate::cce::ApiFamily;
use crate::cce::client::{CceClient, ClientConfig, Target};
use crate::cce::credentials::Credentials;
use crate::cce::endpoint::{EndpointArgs, INSECURE_WARNING};
use crate::cce::error::CceError;
use crate::cce::iam::Exchanger;
use crate::cce::model::{Phase, PointStatus, TaskState, Workflow, WorkflowList};
use crate::cce::time;
use crate::controller::defaults;
use crate::controller::fetch::read_diagnosis;
use crate::controller::findings::{Ask, Told, unavailable, wanted};
use crate::duration::{self, Precision};

/// Exit codes by error category; the help text below must list the same.
const EXIT_CODES: &[(u8, &[&str])] = &[
    (
        3,
        &["InvalidConfig", "CredentialsMissing", "CredentialsInvalid"],
    ),
    (
        4,
        &[
            "InvalidEndpoint",
            "EndpointNotAllowed",
            "IamEndpointNotAllowed",
        ],
    ),
    (5, &["Unauthorized"]),
    (6, &["Forbidden"]),
    (7, &["NotFound"]),
    (8, &["BadRequest"]),
    (9, &["RateLimited"]),
    (10, &["CceUnavailable"]),
    (11, &["Timeout"]),
    (12, &["Transport"]),
    (13, &["InvalidResponse"]),
    (
        14,
        &["IamUnavailable", "InvalidIamResponse", "CredentialsExpired"],
    ),
];

const EXIT_CODES_HELP: &str = "\
Credentials come from the operator's default chain, as Huawei's SDK finds them: a token file
federated at IAM (HUAWEICLOUD_SDK_IDP_ID + HUAWEICLOUD_SDK_ID_TOKEN_FILE), OIDC STS
(HUAWEICLOUD_OIDC_*), HUAWEICLOUD_SDK_AK + HUAWEICLOUD_SDK_SK, CLOUD_SDK_AK + CLOUD_SDK_SK
(+ CLOUD_SDK_SECURITY_TOKEN for temporary keys) or CLOUD_SDK_TOKEN for an IAM token, the
SDK's credentials file (HUAWEICLOUD_SDK_CREDENTIALS_FILE), CCE pod identity
(HC_CONTAINER_CREDENTIALS_FULL_URI); the first one set wins.

Exit codes:
   0  success
   1  output could not be written
   2  invalid command line
   3  CredentialsMissing, CredentialsInvalid, InvalidConfig: local setup (credentials,
      CA bundle, empty id, a malformed allow-list entry)
   4  InvalidEndpoint, EndpointNotAllowed, IamEndpointNotAllowed: bad endpoint or region,
      or refused by the allow-lists (https, CCE's and IAM's public hosts, port 443)
   5  Unauthorized (401): signature or token rejected
   6  Forbidden (403): no permission for this project or cluster
   7  NotFound (404): no such project, cluster or workflow
   8  BadRequest: CCE refused the request (other 4xx)
   9  RateLimited (429): throttled
  10  CceUnavailable (5xx): CCE server error
  11  Timeout: no complete answer in time
  12  Transport: cannot connect (DNS, TCP, TLS)
  13  InvalidResponse: the answer is not CCE's JSON
  14  IamUnavailable, InvalidIamResponse, CredentialsExpired: no temporary keys from IAM,
      STS or the pod identity agent";

/// Flags of `cce-upgrade-watch get`.
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct GetArgs {
    /// Huawei Cloud region of the cluster, e.g. ap-southeast-1.
    #[arg(long, env = "CCE_REGION", required_unless_present = "endpoint")]
    pub region: Option<String>,

    /// CCE endpoint URL, instead of the region's public one (only scheme, host and port count).
    #[arg(long, env = "CCE_ENDPOINT")]
    pub endpoint: Option<String>,

    /// IAM project ID of the region.
    #[arg(long, env = "CCE_PROJECT_ID")]
    pub project_id: String,

    /// CCE cluster ID.
    #[arg(long, env = "CCE_CLUSTER_ID")]
    pub cluster_id: String,

    /// Standard CCE cluster, or CCE Autopilot.
    #[arg(long, env = "CCE_CLUSTER_TYPE", value_enum, ignore_case = true, default_value_t = ClusterTypeArg::Standard)]
    pub cluster_type: ClusterTypeArg,

    /// Upgrade workflow ID; without it, all of the cluster's workflows, newest first.
    #[arg(long, env = "CCE_WORKFLOW_ID")]
    pub workflow_id: Option<String>,

    /// Output format.
    #[arg(short = 'o', long, env = "CCE_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,

    #[command(flatten)]
    pub endpoints: EndpointArgs,

    /// PEM file of extra CA certificates to trust (e.g. the simulator's).
    #[arg(long, env = "CCE_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,

    /// Time allowed to connect, e.g. 10s.
    #[arg(long, env = "CCE_CONNECT_TIMEOUT", default_value = "10s", value_parser = duration::parse_positive)]
    pub connect_timeout: Duration,

    /// Time allowed for the whole request, e.g. 30s.
    #[arg(long, env = "CCE_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterTypeArg {
    #[value(name = "Standard")]
    Standard,
    #[value(name = "Autopilot")]
    Autopilot,
}

impl From<ClusterTypeArg> for ApiFamily {
    fn from(arg: ClusterTypeArg) -> Self {
        match arg {
            ClusterTypeArg::Standard => ApiFamily::Standard,
            ClusterTypeArg::Autopilot => ApiFamily::Autopilot,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// Runs `get`; prints the result to stdout or one error line to stderr.
pub async fn run(args: GetArgs) -> ExitCode {
    match fetch(&args).await {
        Ok(found) => match write_output(&found, args.output, Timestamp::now()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write the output: {e}");
                ExitCode::FAILURE
            }
        },
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// What `get` found: one workflow with what CCE's diagnostic APIs say about its tasks, or
/// a cluster's workflows.
pub enum Found {
    One(Box<Workflow>, Vec<(Ask, Told)>),
    List {
        cluster_id: String,
        list: WorkflowList,
    },
}

/// A failure with the category that picks the exit code and the advice that goes with it.
pub struct Failure {
    category: &'static str,
    message: String,
    hint: String,
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        exit_code(self.category)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} — {}", self.message, self.hint)
    }
}

async fn fetch(args: &GetArgs) -> Result<Found, Failure> {
    let config = args
        .endpoints
        .apply(ClientConfig {
            connect_timeout: args.connect_timeout,
            request_timeout: args.timeout,
            ca_bundle: args.ca_bundle.clone(),
            ..ClientConfig::default()
        })
        .map_err(|e| cce_failure(&e))?;
    if config.allows_insecure_endpoints() {
        eprintln!("warning: {INSECURE_WARNING}");
    }
    let credentials = default_credentials(&config).await?;
    let client = CceClient::new(config).map_err(|e| cce_failure(&e))?;
    let endpoint = client
        .resolve_endpoint(args.region.as_deref(), args.endpoint.as_deref())
        .map_err(|e| cce_failure(&e))?;
    let target = Target {
        endpoint,
        project_id: args.project_id.clone(),
        cluster_id: args.cluster_id.clone(),
        family: args.cluster_type.into(),
        credentials,
    };
    match &args.workflow_id {
        Some(id) => match client.show_workflow(&target, id).await {
            Ok(r) => {
                let mut told = Vec::new();
                for ask in wanted(&r.body, &Default::default()) {
                    let answer = match read_diagnosis(&client, &target, &ask).await {
                        Ok(answer) => Some(answer),
                        Err(e) => unavailable(&ask, &e)
                            .or_else(|| Some(Told::Unavailable(format!("{}: {e}", ask.api())))),
                    };
                    told.extend(answer.map(|a| (ask, a)));
                }
                Ok(Found::One(Box::new(r.body), told))
            }
            Err(e) => Err(e),
        },
        None => client.list_workflows(&target).await.map(|r| {
            let mut list = r.body;
            list.sort_newest_first();
            Found::List {
                cluster_id: args.cluster_id.clone(),
                list,
            }
        }),
    }
    .map_err(|e| cce_failure(&e))
}

fn cce_failure(e: &CceError) -> Failure {
    Failure {
        category: e.category(),
        message: e.to_string(),
        hint: hint(e),
    }
}

/// What the person at the terminal should do about an error.
fn hint(e: &CceError) -> String {
    match e {
        CceError::Unauthorized(_) => "signature or token rejected: check CLOUD_SDK_AK/CLOUD_SDK_SK (or that CLOUD_SDK_TOKEN has not expired) and the system clock (it must be within 15 minutes of the real time)".into(),
        CceError::Forbidden(_) => "the credentials lack permission: grant the IAM user CCE read access in this project, and check --project-id".into(),
        CceError::NotFound(_) => "check --project-id, --cluster-id, --cluster-type and --workflow-id, and that the region is the cluster's".into(),
        CceError::RateLimited(_) => match e.retry_after() {
            Some(after) => format!("CCE asked to wait {}s: try again after that", after.as_secs()),
            None => "try again in a minute".into(),
        },
        CceError::Server(_) => "a CCE server error: try again later, and quote the request id to Huawei support if it persists".into(),
        CceError::Client(_) => "check the ids and flags of the request".into(),
        CceError::Timeout { .. } => "check network access to the endpoint, or raise --timeout / --connect-timeout".into(),
        CceError::Transport { .. } => "check the endpoint, DNS, proxy and firewall; for a private CA pass --ca-bundle".into(),
        CceError::InvalidResponse { .. } => "the endpoint does not answer like CCE: check --endpoint (a proxy or login page in between?)".into(),
        CceError::InvalidEndpoint { .. } => "give --region (e.g. ap-southeast-1) or a valid https --endpoint".into(),
        CceError::EndpointNotAllowed { .. } => "use CCE's https endpoint of the region, or deliberately pass --allowed-cce-endpoint (IAM: --allowed-iam-endpoint) or --allow-insecure-endpoints".into(),
        CceError::InvalidConfig { .. } => "fix the setting named above".into(),
    }
}

/// Temporary keys `get` asks for: IAM's shortest lifetime, as they serve one call.
const ONE_CALLS_KEYS_SECONDS: u32 = 900;

/// The operator's default credentials ([`defaults`]), from this process's environment.
async fn default_credentials(config: &ClientConfig) -> Result<Credentials, Failure> {
    const HINT: &str = "export CLOUD_SDK_AK and CLOUD_SDK_SK (plus CLOUD_SDK_SECURITY_TOKEN for temporary keys), or CLOUD_SDK_TOKEN, or another source of the chain `get --help` lists";
    let env = |name: &str| std::env::var(name).ok();
    let iam = env("HUAWEICLOUD_SDK_IAM_ENDPOINT")
        .map(|u| url::Url::parse(&u))
        .transpose()
        .map_err(|e| Failure {
            category: "InvalidEndpoint",
            message: format!("HUAWEICLOUD_SDK_IAM_ENDPOINT is not a URL: {e}"),
            hint: HINT.into(),
        })?;
    let inputs = defaults::ChainInputs {
        iam_endpoint: iam.as_ref(),
        default_credentials_dir: None,
        home: std::env::var_os("HOME").map(PathBuf::from),
    };
    let invalid = |message: String| Failure {
        category: "CredentialsInvalid",
        message,
        hint: HINT.into(),
    };
    let Some(source) = defaults::select(&env, &inputs).map_err(invalid)? else {
        return Err(Failure {
            category: "CredentialsMissing",
            message: "no credentials: set CLOUD_SDK_AK and CLOUD_SDK_SK, or CLOUD_SDK_TOKEN".into(),
            hint: HINT.into(),
        });
    };
    let exchanger = Exchanger::new(config.clone()).map_err(|e| cce_failure(&e))?;
    defaults::Defaults::new(
        Some(source),
        exchanger,
        ONE_CALLS_KEYS_SECONDS,
        Arc::new(Timestamp::now),
    )
    .resolve()
    .await
    .map_err(|f| Failure {
        category: f.reason,
        message: f.message,
        hint: HINT.into(),
    })
}

fn exit_code(category: &str) -> u8 {
    EXIT_CODES
        .iter()
        .find(|(_, categories)| categories.contains(&category))
        .map(|(code, _)| *code)
        .unwrap_or(1)
}

fn write_output(found: &Found, output: Output, now: Timestamp) -> std::io::Result<()> {
    let text = match (output, found) {
        (Output::Table, _) => render_table(found, now),
        (Output::Json, Found::One(wf, _)) => to_json(wf)?,
        (Output::Json, Found::List { list, .. }) => to_json(list)?,
        (Output::Yaml, Found::One(wf, _)) => to_yaml(wf)?,
        (Output::Yaml, Found::List { list, .. }) => to_yaml(list)?,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

fn to_json<T: serde::Serialize>(value: &T) -> std::io::Result<String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(std::io::Error::other)
}

fn to_yaml<T: serde::Serialize>(value: &T) -> std::io::Result<String> {
    serde_yaml::to_string(value).map_err(std::io::Error::other)
}

/// The human view: one block per workflow, newest first.
pub fn render_table(found: &Found, now: Timestamp) -> String {
    match found {
        Found::One(wf, told) => {
            let mut out = render_workflow(wf, now);
            out.push_str(&render_diagnoses(told));
            out
        }
        Found::List { cluster_id, list } if list.items.is_empty() => {
            format!("No upgrade workflows for cluster {cluster_id}.\n")
        }
        Found::List { cluster_id, list } => {
            let count = list.items.len();
            let noun = if count == 1 { "workflow" } else { "workflows" };
            let mut out =
                format!("{count} upgrade {noun} for cluster {cluster_id}, newest first.\n");
            for wf in &list.items {
                out.push('\n');
                out.push_str(&render_workflow(wf, now));
            }
            out
        }
    }
}

fn render_workflow(wf: &Workflow, now: Timestamp) -> String {
    let meta = wf.metadata.clone().unwrap_or_default();
    let spec = wf.spec.clone().unwrap_or_default();
    let dash = || "-".to_string();
    let phase = match wf.phase() {
        Some(phase) => format!("{phase} ({})", phase_meaning(phase)),
        None => dash(),
    };
    let points = wf.points();
    let succeeded = points
        .iter()
        .filter(|p| p.status == Some(TaskState::Success))
        .count();
    let mut out = table(&[
        vec!["Workflow".into(), meta.uid.unwrap_or_else(dash)],
        vec!["Cluster".into(), spec.cluster_id.unwrap_or_else(dash)],
        vec!["Phase".into(), phase],
        vec![
            "Version".into(),
            format!(
                "{} -> {}",
                spec.cluster_version.unwrap_or_else(dash),
                spec.target_version.unwrap_or_else(dash)
            ),
        ],
        vec![
            "Progress".into(),
            format!("{succeeded}/{} tasks succeeded", points.len()),
        ],
        vec!["Current task".into(), current_task(wf, now)],
        vec![
            "Created".into(),
            when(meta.creation_timestamp.as_deref(), now),
        ],
        vec![
            "Last change".into(),
            when(meta.update_timestamp.as_deref(), now),
        ],
    ]);
    if !points.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "TASK".to_string(),
            "STATUS".into(),
            "STARTED".into(),
            "ENDED".into(),
            "DURATION".into(),
            "ID".into(),
            "NOTE".into(),
        ]];
        rows.extend(points.iter().map(|p| task_row(p, now)));
        out.push_str(&table(&rows));
    }
    out
}

/// What CCE's diagnostic APIs said: each pre-check's findings as a table, most severe
/// first; a Cluster task's progress; the cluster's reason; snapshot messages; what could
/// not be read.
fn render_diagnoses(told: &[(Ask, Told)]) -> String {
    let dash = || "-".to_string();
    let mut out = String::new();
    for (ask, answer) in told {
        out.push('\n');
        let id = ask.task_id();
        match answer {
            Told::PreCheck(report) => {
                out.push_str(&format!(
                    "Pre-check {id}: {}{}\n",
                    report.phase.as_deref().unwrap_or("-"),
                    report
                        .message
                        .as_deref()
                        .map(|m| format!(", {m}"))
                        .unwrap_or_default()
                ));
                if report.items.is_empty() {
                    out.push_str("No findings.\n");
                    continue;
                }
                let mut rows = vec![vec![
                    "KIND".to_string(),
                    "LEVEL".into(),
                    "GROUP".into(),
                    "ITEM".into(),
                    "SUBJECT".into(),
                    "CODES".into(),
                    "MESSAGE".into(),
                ]];
                rows.extend(report.items.iter().map(|f| {
                    vec![
                        f.kind.clone().unwrap_or_else(dash),
                        f.level.clone().unwrap_or_else(dash),
                        f.group.clone().unwrap_or_else(dash),
                        f.name.clone().unwrap_or_else(dash),
                        f.subject.clone().unwrap_or_else(dash),
                        if f.error_codes.is_empty() {
                            dash()
                        } else {
                            f.error_codes.join(",")
                        },
                        f.message.clone().unwrap_or_else(dash),
                    ]
                }));
                out.push_str(&table(&rows));
                if let Some(more) = report.more_items {
                    out.push_str(&format!("... and {more} more items.\n"));
                }
                out.push_str("Exception: must be fixed. Risk: may be skipped once confirmed.\n");
            }
            Told::Progress { phase, percent } => out.push_str(&format!(
                "Cluster task {id}: {}, {}\n",
                phase.as_deref().unwrap_or("-"),
                percent.map_or_else(|| "progress unknown".into(), |p| format!("{p}% done"))
            )),
            Told::Cluster(report) => {
                let said: Vec<&str> = [&report.phase, &report.reason, &report.message]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                out.push_str(&format!("Cluster after task {id}: {}\n", said.join(": ")));
            }
            Told::Snapshot(messages) => {
                out.push_str(&format!("Snapshot {id}: {}\n", messages.join("; ")));
            }
            Told::Unavailable(said) => {
                out.push_str(&format!("Diagnostics unavailable for task {id}: {said}\n"));
            }
        }
    }
    out
}

/// The task to look at now (the one status names) and for how long it has been (or was)
/// at it: `Cluster, running for 5m0s`, `Cluster, failed after 9m5s`, `-` when there is none.
fn current_task(wf: &Workflow, now: Timestamp) -> String {
    let Some(p) = wf.current_task() else {
        return "-".into();
    };
    let task = p
        .task_type
        .as_ref()
        .map_or_else(|| "-".to_string(), |t| t.to_string());
    let state = p.status.as_ref().map(|s| s.to_string()).unwrap_or_default();
    let start = p.start_time_stamp.as_deref().and_then(time::parse);
    let end = p.end_time_stamp.as_deref().and_then(time::parse);
    match (&p.status, start, end) {
        (Some(TaskState::Failed), Some(s), Some(e)) => {
            format!("{task}, failed after {}", span(s, e))
        }
        (_, Some(s), None) => format!("{task}, {} for {}", state.to_lowercase(), span(s, now)),
        _ => format!("{task}, {}", state.to_lowercase()),
    }
}

fn task_row(p: &PointStatus, now: Timestamp) -> Vec<String> {
    let dash = || "-".to_string();
    let start = p.start_time_stamp.as_deref().and_then(time::parse);
    let end = p.end_time_stamp.as_deref().and_then(time::parse);
    let duration = match (start, end) {
        (Some(s), Some(e)) => span(s, e),
        (Some(s), None) => format!("{} so far", span(s, now)),
        _ => dash(),
    };
    let note = match p.expire_time_stamp.as_deref() {
        Some(raw) => match time::parse(raw) {
            Some(at) if at > now => format!("result expires in {}", span(now, at)),
            Some(at) => format!("result expired {} ago", span(at, now)),
            None => format!("expires {raw}"),
        },
        None => String::new(),
    };
    vec![
        p.task_type.as_ref().map_or_else(dash, |t| t.to_string()),
        p.status.as_ref().map_or_else(dash, |s| s.to_string()),
        ago(p.start_time_stamp.as_deref(), now),
        ago(p.end_time_stamp.as_deref(), now),
        duration,
        p.task_id.clone().unwrap_or_else(dash),
        note,
    ]
}

fn phase_meaning(phase: &Phase) -> &'static str {
    match phase {
        Phase::Init => "no task started yet",
        Phase::Running => "a task is running",
        Phase::Pending => "a task failed; waiting for a retry or a decision",
        Phase::Success => "every task succeeded",
        Phase::Cancel => "cancelled",
        Phase::Unknown(_) => "a phase this version does not know",
    }
}

/// `2023-11-25T07:20:04Z (3d ago)`, or the raw text when it does not parse.
fn when(raw: Option<&str>, now: Timestamp) -> String {
    let Some(raw) = raw else {
        return "-".into();
    };
    match time::parse(raw) {
        Some(ts) if ts <= now => format!(
            "{} ({} ago)",
            ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            span(ts, now)
        ),
        Some(ts) => format!(
            "{} (in {})",
            ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            span(now, ts)
        ),
        None => raw.to_string(),
    }
}

/// `3m10s ago`: tasks are read relative to now; the raw text when it does not parse.
fn ago(raw: Option<&str>, now: Timestamp) -> String {
    let Some(raw) = raw else {
        return "-".into();
    };
    match time::parse(raw) {
        Some(ts) if ts <= now => format!("{} ago", span(ts, now)),
        Some(ts) => format!("in {}", span(now, ts)),
        None => raw.to_string(),
    }
}

/// A compact, coarse length of time between two instants: `42s`, `9m5s`, `3h20m`, `12d4h`,
/// `3y3d`.
fn span(from: Timestamp, to: Timestamp) -> String {
    duration::format(to.duration_since(from).unsigned_abs(), Precision::Coarse)
}

/// Left-aligned columns separated by two spaces; trailing spaces trimmed.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::SEED_EXAMPLE;
    use clap::Parser;

    fn seed() -> Workflow {
        serde_json::from_str(SEED_EXAMPLE).expect("seed parses")
    }

    fn now() -> Timestamp {
        "2023-11-25T08:00:00Z".parse().expect("ts")
    }

    /// The rendered text with runs of spaces collapsed, so tests do not pin column widths.
    fn squeezed(found: &Found) -> String {
        render_table(found, now())
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_table_shows_phase_versions_and_each_task_with_duration() {
        let text = squeezed(&Found::One(Box::new(seed()), Vec::new()));
        for expected in [
            "Phase Pending (a task failed; waiting for a retry or a decision)",
            "Version v1.17.17-r0 -> v1.19.16-r80",
            "Progress 1/4 tasks succeeded",
            "Current task Cluster, failed after 9m5s",
            "Created 2023-11-25T06:32:34Z (1h27m ago)",
            "Last change 2023-11-25T07:49:30Z (10m29s ago)",
            "TASK STATUS STARTED ENDED DURATION ID NOTE",
            "PreCheck Success 39m55s ago 38m54s ago 1m0s f61e008c-1600-41c0-9bde-121de5a30660 result expires in 21m5s",
            "Cluster Failed 10m29s ago 1m24s ago 9m5s 6d799ff6-3afe-4242-80b4-6f0a0fa746cb",
            "Snapshot - - - - -\n",
            "PostCheck - - - - -",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn a_running_task_shows_time_so_far_and_raw_unparsable_times() {
        let wf: Workflow = serde_json::from_str(
            r#"{"status":{"phase":"Paused","pointStatuses":[
                {"taskType":"Cluster","status":"Running","startTimeStamp":"2023-11-25 07:55:00 +0000 UTC"},
                {"taskType":"NodePool","status":"queue","startTimeStamp":"last tuesday"}]}}"#,
        )
        .expect("parses");
        let text = squeezed(&Found::One(Box::new(wf), Vec::new()));
        assert!(
            text.contains("Cluster Running 5m0s ago - 5m0s so far"),
            "{text}"
        );
        assert!(
            text.contains("Current task Cluster, running for 5m0s"),
            "{text}"
        );
        assert!(
            text.contains("Paused (a phase this version does not know)"),
            "{text}"
        );
        assert!(text.contains("NodePool queue last tuesday - -"), "{text}");
    }

    #[test]
    fn pre_check_findings_print_as_a_table_most_severe_first() {
        use crate::crd::{CheckFinding, CheckReport};
        let finding = |kind: &str, name: &str, subject: &str| CheckFinding {
            name: Some(name.into()),
            kind: Some(kind.into()),
            group: Some("NodeCheck".into()),
            level: Some("Fatal".into()),
            message: Some("node worker-2 is NotReady".into()),
            error_codes: vec!["Node.0022".into()],
            subject: Some(subject.into()),
        };
        let told = vec![(
            Ask::PreCheck("p1".into()),
            Told::PreCheck(CheckReport {
                phase: Some("Failed".into()),
                message: None,
                items: vec![
                    finding("Exception", "NodeReady", "worker-2"),
                    finding("Risk", "DeprecatedAPI", "/apis/x"),
                ],
                more_items: Some(3),
            }),
        )];
        let text = squeezed(&Found::One(Box::new(seed()), told));
        assert!(text.contains("Pre-check p1: Failed"), "{text}");
        assert!(
            text.contains("KIND LEVEL GROUP ITEM SUBJECT CODES MESSAGE"),
            "{text}"
        );
        assert!(
            text.contains(
                "Exception Fatal NodeCheck NodeReady worker-2 Node.0022 node worker-2 is NotReady"
            ),
            "{text}"
        );
        assert!(text.contains("... and 3 more items."), "{text}");
    }

    #[test]
    fn spans_are_compact_at_every_scale() {
        let at = |secs: i64| {
            now()
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .expect("ts")
        };
        for (secs, text) in [
            (42, "42s"),
            (545, "9m5s"),
            (12_000, "3h20m"),
            (1_050_000, "12d3h"),
            (94_867_200, "3y3d"),
        ] {
            assert_eq!(span(now(), at(secs)), text);
            assert_eq!(span(at(secs), now()), text, "order does not matter");
        }
    }

    #[test]
    fn lists_say_how_many_and_empty_lists_say_none() {
        let list = WorkflowList {
            items: vec![seed(), seed()],
            ..WorkflowList::default()
        };
        let text = render_table(
            &Found::List {
                cluster_id: "c1".into(),
                list,
            },
            now(),
        );
        assert!(text.starts_with("2 upgrade workflows for cluster c1, newest first.\n"));
        let workflows = text
            .lines()
            .filter(|l| {
                l.starts_with("Workflow ") && l.ends_with(" c271e39e-1a6e-4d3d-8fa8-2a36329c68d1")
            })
            .count();
        assert_eq!(workflows, 2, "{text}");
        let empty = render_table(
            &Found::List {
                cluster_id: "c1".into(),
                list: WorkflowList::default(),
            },
            now(),
        );
        assert_eq!(empty, "No upgrade workflows for cluster c1.\n");
    }

    #[test]
    fn every_error_category_has_a_documented_exit_code() {
        let mut categories: Vec<&str> = CceError::CATEGORIES.to_vec();
        categories.extend([
            "CredentialsMissing",
            "CredentialsInvalid",
            "IamEndpointNotAllowed",
            "IamUnavailable",
            "InvalidIamResponse",
            "CredentialsExpired",
        ]);
        for category in categories {
            let code = exit_code(category);
            assert!(code >= 3, "{category} has no exit code");
            let line = EXIT_CODES_HELP
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{code} ")))
                .unwrap_or_else(|| panic!("exit code {code} not documented"));
            assert!(line.contains(category), "{category} not named on {line:?}");
        }
    }

    #[test]
    fn the_command_line_accepts_the_documented_flags() {
        let cli = crate::cli::Cli::try_parse_from([
            "cce-upgrade-watch",
            "get",
            "--endpoint",
            "http://127.0.0.1:1",
            "--project-id",
            "p",
            "--cluster-id",
            "c",
            "--cluster-type",
            "autopilot",
            "-o",
            "yaml",
            "--allow-insecure-endpoints",
            "--allowed-cce-endpoint",
            "a.example,b.example",
            "--allowed-iam-endpoint",
            "iam.example:8443",
            "--timeout",
            "1m30s",
        ])
        .expect("parses");
        let crate::cli::Command::Get(args) = cli.command else {
            panic!("expected get");
        };
        assert_eq!(args.cluster_type, ClusterTypeArg::Autopilot);
        assert_eq!(args.output, Output::Yaml);
        assert_eq!(
            args.endpoints.allowed_cce_endpoints,
            ["a.example", "b.example"]
        );
        assert_eq!(args.endpoints.allowed_iam_endpoints, ["iam.example:8443"]);
        assert!(args.endpoints.allow_insecure_endpoints);
        assert_eq!(args.timeout, Duration::from_secs(90));
        assert!(
            crate::cli::Cli::try_parse_from([
                "cce-upgrade-watch",
                "get",
                "--project-id",
                "p",
                "--cluster-id",
                "c"
            ])
            .is_err()
        );
        for refused in ["0s", "soon"] {
            assert!(
                crate::cli::Cli::try_parse_from([
                    "cce-upgrade-watch",
                    "get",
                    "--region",
                    "r",
                    "--project-id",
                    "p",
                    "--cluster-id",
                    "c",
                    "--timeout",
                    refused
                ])
                .is_err(),
                "{refused}"
            );
        }
    }
}
