//! The reconcilers' shared context built from the command line: the CCE client and its
//! endpoint policy, the credential sources, the fetcher, the Event publisher.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::runtime::reflector;
use tracing::{info, warn};

use crate::cce::client::{CceClient, ClientConfig};
use crate::cce::endpoint::INSECURE_WARNING;
use crate::cce::iam::Exchanger;
use crate::credentials::accounts::Accounts;
use crate::credentials::defaults;
use crate::credentials::identity::{ExchangeSettings, WorkloadIdentities};
use crate::credentials::renewal;
use crate::credentials::secrets::CredentialSources;
use crate::duration;
use crate::metrics::Metrics;
use crate::reconciler::context::Context;
use crate::reconciler::core::schedule::PollPolicy;
use crate::reconciler::fetch::{Fetcher, per_endpoint_share};
use crate::reconciler::publisher::EventPublisher;
use crate::run::{RunArgs, RunError};
use crate::runtime::leader::Leadership;

#[allow(clippy::too_many_arguments)]
pub(super) async fn build_context(
    args: &RunArgs,
    client: Client,
    identity: &str,
    metrics: Metrics,
    leadership: Leadership,
    accounts: Accounts,
    secrets: Vec<reflector::Store<kube::api::PartialObjectMeta<Secret>>>,
    secrets_synced: tokio::sync::watch::Receiver<bool>,
) -> Result<Context, RunError> {
    let config = args
        .endpoints
        .apply(ClientConfig {
            connect_timeout: args.cce_connect_timeout,
            request_timeout: args.cce_request_timeout,
            ca_bundle: args.ca_bundle.clone(),
            ..ClientConfig::default()
        })
        .map_err(|e| RunError::Cce(Box::new(e)))?;
    if config.allows_insecure_endpoints() {
        warn!("{INSECURE_WARNING}");
    }
    metrics.set_insecure_endpoints(config.allows_insecure_endpoints());
    let cce = CceClient::new(config).map_err(|e| RunError::Cce(Box::new(e)))?;
    let api_server = kube::Config::infer()
        .await
        .map_err(|e| RunError::Kube(kube::Error::InferConfig(e)))?;
    let secrets = credentials(args, &client, api_server, &cce, secrets, secrets_synced)?;
    let recorder = EventPublisher::new(client.clone(), "cce-upgrade-watch", identity);
    let fetcher = Fetcher::new(
        cce,
        args.cce_rate_limit,
        args.cce_rate_burst,
        per_endpoint_share(usize::from(args.concurrency)),
        args.namespace_rate_share,
        metrics.clone(),
    );
    let poll_policy = PollPolicy {
        terminal_resync: args.terminal_resync,
        backoff_base: args.backoff_base,
        backoff_cap: args.backoff_cap,
        permanent_retry: args.permanent_retry,
        ..PollPolicy::default()
    };
    Ok(Context::new(
        client,
        recorder,
        fetcher,
        accounts,
        secrets,
        poll_policy,
        args.sync_heartbeat,
        metrics,
        leadership,
    ))
}

/// Where an account's credentials come from: its Secret, its workload identity, or the
/// operator's default chain as this process's environment and flags configure it.
fn credentials(
    args: &RunArgs,
    client: &Client,
    api_server: kube::Config,
    cce: &CceClient,
    secrets: Vec<reflector::Store<kube::api::PartialObjectMeta<Secret>>>,
    secrets_synced: tokio::sync::watch::Receiver<bool>,
) -> Result<CredentialSources, RunError> {
    let exchanger = Exchanger::new(cce.config().clone()).map_err(|e| RunError::Cce(Box::new(e)))?;
    let source = defaults::select(
        &|name| std::env::var(name).ok(),
        &defaults::ChainInputs {
            iam_endpoint: args.iam_endpoint.as_ref(),
            default_credentials_dir: args.default_credentials_dir.as_deref(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        },
    )
    .map_err(RunError::Defaults)?;
    match &source {
        Some(source) => info!(%source, "default credentials"),
        None => info!(
            "no default credentials: a ClusterCCEAccount with operatorDefaults has none to use"
        ),
    }
    let duration_seconds =
        u32::try_from(args.iam_credentials_duration.as_secs()).unwrap_or(u32::MAX);
    let clock: renewal::Clock = Arc::new(jiff::Timestamp::now);
    let backoff = duration::Backoff {
        base: args.backoff_base,
        cap: args.backoff_cap,
    };
    let defaults = defaults::Defaults::new(
        source,
        exchanger.clone(),
        duration_seconds,
        clock.clone(),
        backoff,
    );
    let identities = WorkloadIdentities::new(
        client.clone(),
        exchanger,
        cce.config().iam_policy.clone(),
        ExchangeSettings {
            iam_endpoint: args.iam_endpoint.clone(),
            audiences: args.token_audiences.clone(),
            operator: (
                args.operator_namespace.clone(),
                args.operator_service_account.clone(),
            ),
            api_server,
            duration_seconds,
            backoff,
        },
        clock,
    );
    Ok(CredentialSources::new(
        client.clone(),
        secrets,
        defaults,
        identities,
        secrets_synced,
    ))
}
