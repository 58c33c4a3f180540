//! The accounts' own status: one credential check per account, shared by all its watches
//! (the same cached Secret, renewed keys or default chain their reconciles use, so it adds
//! no IAM or CCE request), and how many watches name it. Written only when it changed, by
//! the leader only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use serde::Serialize;
use tracing::warn;

use crate::crd::{AccountStatus, CceAccount, ClusterCceAccount, UpgradeWorkflowWatch};
use crate::credentials::accounts::{Accounts, Served};
use crate::failure::Failure;
use crate::reconciler::context::{Context, Error, now_whole_seconds};
use crate::reconciler::core::account::next_account_status;

/// How often an account is checked again and its watches counted.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// What the account reconciles share: the watches' context, the watches to count, and the
/// status writes failed in a row per account, for backoff.
pub struct AccountContext {
    pub ctx: Arc<Context>,
    pub watches: Vec<Store<UpgradeWorkflowWatch>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl AccountContext {
    pub fn new(ctx: Arc<Context>, watches: Vec<Store<UpgradeWorkflowWatch>>) -> Self {
        Self {
            ctx,
            watches,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

/// An account's key among both kinds: the kind, then namespace/name or name.
fn key_of<K: Resource<DynamicType = ()>>(account: &K) -> String {
    let meta = account.meta();
    format!(
        "{}/{}/{}",
        K::kind(&()),
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

pub async fn reconcile_namespaced(
    account: Arc<CceAccount>,
    actx: Arc<AccountContext>,
) -> Result<Action, Error> {
    let namespace = account.namespace().ok_or(Error::NoNamespace)?;
    let served = actx
        .ctx
        .accounts
        .namespaced_served(&account, &namespace, None);
    let api: Api<CceAccount> = Api::namespaced(actx.ctx.kube.clone(), &namespace);
    report(&actx, &served, &*account, account.status.as_ref(), api).await
}

pub async fn reconcile_cluster(
    account: Arc<ClusterCceAccount>,
    actx: Arc<AccountContext>,
) -> Result<Action, Error> {
    let served = actx.ctx.accounts.cluster_served(&account, None);
    let api: Api<ClusterCceAccount> = Api::all(actx.ctx.kube.clone());
    report(&actx, &served, &*account, account.status.as_ref(), api).await
}

/// Checks the account's credentials and endpoint, and writes the status when it changed.
async fn report<K>(
    actx: &AccountContext,
    served: &Served,
    account: &K,
    old: Option<&AccountStatus>,
    api: Api<K>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let ctx = &actx.ctx;
    if !ctx.leadership.is_leader() {
        return Ok(Action::requeue(CHECK_EVERY));
    }
    let check = check(ctx, served).await;
    let users: Vec<_> = actx.watches.iter().flat_map(|s| s.state()).collect();
    let watches = Accounts::count_users(users.iter().map(|w| &**w))
        .get(&served.account)
        .copied()
        .unwrap_or_default();
    let old = old.cloned().unwrap_or_default();
    let generation = account.meta().generation;
    if let Some(next) = next_account_status(&old, generation, watches, &check, now_whole_seconds())
    {
        #[derive(Serialize, Debug)]
        struct StatusPatch<'a> {
            status: &'a AccountStatus,
        }
        let patch = Patch::Merge(StatusPatch { status: &next });
        api.patch_status(&account.name_any(), &PatchParams::default(), &patch)
            .await
            .map_err(Error::WriteStatus)?;
    }
    actx.failures.lock().remove(&key_of(account));
    Ok(Action::requeue(CHECK_EVERY))
}

/// The one check of an account: its endpoint is allowed and its credentials are obtained.
async fn check(ctx: &Context, served: &Served) -> Result<(), Failure> {
    ctx.fetcher
        .client()
        .resolve_endpoint(served.region.as_deref(), served.endpoint.as_deref())
        .map_err(|e| Failure::permanent(e.category(), e.to_string()))?;
    ctx.credentials
        .resolve(&served.source, served.region.as_deref())
        .await
        .map(|_| ())
}

/// Kubernetes API failures writing an account's status: retried with the watches' backoff
/// (`--backoff-base`, `--backoff-cap`), so a status the API server keeps refusing is not
/// sent again every few seconds.
pub fn account_error_policy<K: Resource<DynamicType = ()>>(
    account: Arc<K>,
    error: &Error,
    actx: Arc<AccountContext>,
) -> Action {
    warn!(account = %account.meta().name.as_deref().unwrap_or_default(), %error, "account status not written");
    let failures = {
        let mut failures = actx.failures.lock();
        let count = failures.entry(key_of(&*account)).or_default();
        *count = count.saturating_add(1);
        *count
    };
    Action::requeue(actx.ctx.policy().backoff().after(failures))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::mock;

    fn refused() -> Error {
        Error::WriteStatus(kube::Error::Api(Box::new(
            kube::core::Status::failure("the status is invalid", "Invalid").with_code(422),
        )))
    }

    fn account(namespace: &str, name: &str) -> Arc<CceAccount> {
        let mut account = CceAccount::new(
            name,
            serde_json::from_value(serde_json::json!({
                "region": "ap-southeast-1", "projectID": "p",
                "credentials": {"secretRef": {"name": "s"}}
            }))
            .expect("a spec"),
        );
        account.metadata.namespace = Some(namespace.into());
        Arc::new(account)
    }

    #[tokio::test]
    async fn a_refused_account_status_is_retried_with_backoff_per_account() {
        let (client, server) = mock::serve(Vec::new());
        let actx = Arc::new(AccountContext::new(
            Arc::new(mock::context(client)),
            Vec::new(),
        ));
        let a = account("team-a", "prod");
        let backoff = actx.ctx.policy().backoff();
        let waits: Vec<Action> = (0..4)
            .map(|_| account_error_policy(a.clone(), &refused(), actx.clone()))
            .collect();
        let grown: Vec<Action> = (1..=4).map(|n| Action::requeue(backoff.after(n))).collect();
        assert_eq!(waits, grown);
        assert!(backoff.after(4) > backoff.after(1));
        // Another account of the same name elsewhere starts from the first wait.
        let b = account("team-b", "prod");
        assert_eq!(
            account_error_policy(b, &refused(), actx.clone()),
            Action::requeue(backoff.after(1))
        );
        server.finish(actx).await;
    }
}
