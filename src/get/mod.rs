//! The `get` subcommand: fetch one upgrade workflow (or list a cluster's) with the same
//! client and credentials the controller uses, to check access before creating a watch.
//! Owns the flags, the fetch, writing the output and the mapping of error categories to
//! exit codes; what the output says is [`render`]'s (pure). Does I/O.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, ValueEnum};
use jiff::Timestamp;

use crate::cce::ApiFamily;
use crate::cce::client::{CceClient, ClientConfig, Target};
use crate::cce::credentials::Credentials;
use crate::cce::endpoint::{EndpointArgs, INSECURE_WARNING};
use crate::cce::error::CceError;
use crate::cce::iam::Exchanger;
use crate::credentials::defaults;
use crate::diagnosis::read;
use crate::duration;
use crate::failure::{Category, Failure};

pub mod render;

pub use render::Found;

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
    #[arg(long, env = "CCE_CLUSTER_TYPE", default_value_t = ApiFamily::Standard,
          value_parser = clap::builder::PossibleValuesParser::new(["Standard", "Autopilot"])
              .map(|s| s.parse::<ApiFamily>().unwrap_or_default()),
          ignore_case = true)]
    pub cluster_type: ApiFamily,

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

/// A failure with the category that picks the exit code and the advice that goes with it.
pub struct Advised {
    failure: Failure,
    hint: String,
}

impl Advised {
    fn new(category: Category, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            failure: Failure::permanent(category, message),
            hint: hint.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        exit_code(self.failure.category)
    }
}

impl std::fmt::Display for Advised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} — {}", self.failure.message, self.hint)
    }
}

async fn fetch(args: &GetArgs) -> Result<Found, Advised> {
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
        family: args.cluster_type,
        credentials,
    };
    match &args.workflow_id {
        Some(id) => match client.show_workflow(&target, id).await {
            Ok(r) => {
                let told = read::read_all(&client, &target, &r.body, &Default::default()).await;
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

fn cce_failure(e: &CceError) -> Advised {
    Advised::new(e.category(), e.to_string(), hint(e))
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
async fn default_credentials(config: &ClientConfig) -> Result<Credentials, Advised> {
    const HINT: &str = "export CLOUD_SDK_AK and CLOUD_SDK_SK (plus CLOUD_SDK_SECURITY_TOKEN for temporary keys), or CLOUD_SDK_TOKEN, or another source of the chain `get --help` lists";
    let env = |name: &str| std::env::var(name).ok();
    let iam = env(defaults::ENV_IAM_ENDPOINT)
        .map(|u| url::Url::parse(&u))
        .transpose()
        .map_err(|e| {
            Advised::new(
                Category::InvalidEndpoint,
                format!("{} is not a URL: {e}", defaults::ENV_IAM_ENDPOINT),
                HINT,
            )
        })?;
    let inputs = defaults::ChainInputs {
        iam_endpoint: iam.as_ref(),
        default_credentials_dir: None,
        home: std::env::var_os("HOME").map(PathBuf::from),
    };
    let invalid = |message: String| Advised::new(Category::CredentialsInvalid, message, HINT);
    let Some(source) = defaults::select(&env, &inputs).map_err(invalid)? else {
        return Err(Advised::new(
            Category::CredentialsMissing,
            "no credentials: set CLOUD_SDK_AK and CLOUD_SDK_SK, or CLOUD_SDK_TOKEN",
            HINT,
        ));
    };
    let exchanger = Exchanger::new(config.clone()).map_err(|e| cce_failure(&e))?;
    defaults::Defaults::new(
        Some(source),
        exchanger,
        ONE_CALLS_KEYS_SECONDS,
        Arc::new(Timestamp::now),
        duration::Backoff::DEFAULT,
    )
    .resolve()
    .await
    .map_err(|failure| Advised {
        failure,
        hint: HINT.into(),
    })
}

/// The exit code for a category; the help text above must list the same.
fn exit_code(category: Category) -> u8 {
    use Category::*;
    match category {
        InvalidConfig | CredentialsMissing | CredentialsInvalid => 3,
        InvalidEndpoint | EndpointNotAllowed | IamEndpointNotAllowed => 4,
        Unauthorized => 5,
        Forbidden => 6,
        NotFound | WorkflowNotFound | ClusterMismatch => 7,
        BadRequest => 8,
        RateLimited => 9,
        CceUnavailable => 10,
        Timeout => 11,
        Transport => 12,
        InvalidResponse => 13,
        IamUnavailable | InvalidIamResponse | CredentialsExpired => 14,
        // Only the operator meets these (a watch's account, its ServiceAccount, its status
        // write).
        ServiceAccountMissing
        | TokenRequestFailed
        | StatusRejected
        | AccountMissing
        | AccountNotAllowed
        | TokenRequestNotGranted
        | AudienceNotAllowed => 1,
    }
}

fn write_output(found: &Found, output: Output, now: Timestamp) -> std::io::Result<()> {
    let text = match output {
        Output::Table => render::table(found, now),
        Output::Json => render::json(found).map_err(std::io::Error::other)?,
        Output::Yaml => render::yaml(found).map_err(std::io::Error::other)?,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn every_error_category_has_a_documented_exit_code() {
        let operator_only = [
            Category::ServiceAccountMissing,
            Category::TokenRequestFailed,
            Category::StatusRejected,
            Category::AccountMissing,
            Category::AccountNotAllowed,
            Category::TokenRequestNotGranted,
            Category::AudienceNotAllowed,
            // `get` names a 404 NotFound; the operator's WorkflowNotFound shares its code.
            Category::WorkflowNotFound,
            Category::ClusterMismatch,
        ];
        for category in Category::ALL
            .into_iter()
            .filter(|c| !operator_only.contains(c))
        {
            let code = exit_code(category);
            let category = category.as_str();
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
        assert_eq!(args.cluster_type, ApiFamily::Autopilot);
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
