//! The account a watch names, looked up in the operator's caches and held to its rules
//! ([`admission`](crate::credentials::admission)): what it serves the watch with, and the
//! credential source behind it. A watch that names no account, or one it may not use, gets
//! nothing: there is no default.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::account::{AccountIdentity, AccountTarget};
use crate::crd::{AccountKind, CceAccount, ClusterCceAccount, ClusterType, UpgradeWorkflowWatch};
use crate::credentials::admission;
use crate::failure::{Category, Failure};

/// An account by kind, namespace (namespaced kind only) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName {
    pub kind: AccountKind,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for AccountName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.as_str(), self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// Where an account's credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A marked Secret.
    Secret { namespace: String, name: String },
    /// A ServiceAccount's tokens exchanged at IAM.
    Identity {
        namespace: String,
        identity: AccountIdentity,
    },
    /// The operator's own default credentials.
    OperatorDefaults,
}

/// What an account serves a watch with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub account: AccountName,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub project_id: String,
    pub family: ClusterType,
    pub poll_interval: Option<String>,
    pub source: Source,
}

impl Served {
    fn new(
        account: AccountName,
        target: &AccountTarget,
        family: Option<ClusterType>,
        source: Source,
    ) -> Self {
        Self {
            account,
            region: target.region.clone(),
            endpoint: target.endpoint.clone(),
            project_id: target.project_id.clone(),
            family: family.or(target.cluster_type).unwrap_or_default(),
            poll_interval: target.poll_interval.clone(),
            source,
        }
    }

    /// A credential failure as the watch's author may read it: a cluster account's reasons
    /// (its identity's IAM messages, the operator's files and variables) are its
    /// administrator's, so the watch learns only that the account cannot serve it now.
    pub fn for_the_watch(&self, failure: Failure) -> Failure {
        match self.account.kind {
            AccountKind::Namespaced => Failure {
                message: format!("{}: {}", self.account, failure.message),
                ..failure
            },
            AccountKind::Cluster => Failure {
                message: format!(
                    "{} could not provide credentials ({}): its status says why; ask the cluster's administrator",
                    self.account, failure.category
                ),
                ..failure
            },
        }
    }
}

/// The account caches: namespaced accounts per scope served, the cluster-scoped ones, and
/// the namespaces' labels (for a ClusterCCEAccount's selectors).
pub struct Accounts {
    pub namespaced: Vec<Store<CceAccount>>,
    pub cluster: Store<ClusterCceAccount>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Where a ClusterCCEAccount's Secret and ServiceAccount live.
    pub operator_namespace: String,
    /// Whether this operator serves ClusterCCEAccounts at all.
    pub cluster_accounts: bool,
    /// Turns true once every account and namespace cache has listed.
    pub synced: tokio::sync::watch::Receiver<bool>,
}

impl Accounts {
    /// What the account `watch` names serves it with, or why it serves nothing. Waits for
    /// the caches' first list: a reconcile may start before them.
    pub async fn serve(&self, watch: &UpgradeWorkflowWatch) -> Result<Served, Failure> {
        let _ = self.synced.clone().wait_for(|synced| *synced).await;
        self.serve_now(watch)
    }

    /// [`Accounts::serve`] without waiting for the caches.
    pub fn serve_now(&self, watch: &UpgradeWorkflowWatch) -> Result<Served, Failure> {
        let namespace = watch.metadata.namespace.as_deref().unwrap_or_default();
        let spec = &watch.spec;
        let Some(reference) = &spec.account_ref else {
            return Err(Failure::permanent(
                Category::AccountMissing,
                admission::without_account(spec),
            ));
        };
        match reference.kind {
            AccountKind::Namespaced => {
                let key = ObjectRef::new(&reference.name).within(namespace);
                let account = self
                    .namespaced
                    .iter()
                    .find_map(|s| s.get(&key))
                    .ok_or_else(|| missing(AccountKind::Namespaced, &reference.name, namespace))?;
                Ok(self.namespaced_served(&account, namespace, spec.cluster_type))
            }
            AccountKind::Cluster if !self.cluster_accounts => Err(Failure::permanent(
                Category::AccountNotAllowed,
                "this operator serves no ClusterCCEAccount: name a CCEAccount of this namespace",
            )),
            AccountKind::Cluster => {
                let account = self
                    .cluster
                    .get(&ObjectRef::new(&reference.name))
                    .ok_or_else(|| missing(AccountKind::Cluster, &reference.name, namespace))?;
                self.admit(&account, namespace, &spec.cluster_id)?;
                Ok(self.cluster_served(&account, spec.cluster_type))
            }
        }
    }

    /// A CCEAccount's service: its credentials are in its own namespace.
    pub fn namespaced_served(
        &self,
        account: &CceAccount,
        namespace: &str,
        family: Option<ClusterType>,
    ) -> Served {
        let credentials = &account.spec.credentials;
        let source = match (&credentials.secret_ref, &credentials.workload_identity) {
            (_, Some(identity)) => Source::Identity {
                namespace: namespace.to_string(),
                identity: identity.clone(),
            },
            (Some(secret), None) => Source::Secret {
                namespace: namespace.to_string(),
                name: secret.name.clone(),
            },
            // The schema requires one; an object stored without it has an unusable Secret.
            (None, None) => Source::Secret {
                namespace: namespace.to_string(),
                name: String::new(),
            },
        };
        let name = AccountName {
            kind: AccountKind::Namespaced,
            namespace: Some(namespace.to_string()),
            name: account.metadata.name.clone().unwrap_or_default(),
        };
        Served::new(name, &account.spec.target, family, source)
    }

    /// A ClusterCCEAccount's service: its Secret and ServiceAccount are the operator's
    /// namespace's.
    pub fn cluster_served(
        &self,
        account: &ClusterCceAccount,
        family: Option<ClusterType>,
    ) -> Served {
        let credentials = &account.spec.credentials;
        let namespace = self.operator_namespace.clone();
        let source = if let Some(identity) = &credentials.workload_identity {
            Source::Identity {
                namespace,
                identity: identity.clone(),
            }
        } else if let Some(secret) = &credentials.secret_ref {
            Source::Secret {
                namespace,
                name: secret.name.clone(),
            }
        } else {
            Source::OperatorDefaults
        };
        let name = AccountName {
            kind: AccountKind::Cluster,
            namespace: None,
            name: account.metadata.name.clone().unwrap_or_default(),
        };
        Served::new(name, &account.spec.target, family, source)
    }

    /// Whether a ClusterCCEAccount lets a watch of `namespace` read `cluster`.
    fn admit(
        &self,
        account: &ClusterCceAccount,
        namespace: &str,
        cluster: &str,
    ) -> Result<(), Failure> {
        self.admit_namespace(account, namespace)?;
        let name = account.metadata.name.as_deref().unwrap_or_default();
        if !admission::serves_cluster(&account.spec.cluster_ids, cluster) {
            return Err(Failure::permanent(
                Category::AccountNotAllowed,
                format!(
                    "ClusterCCEAccount {name} does not serve cluster {cluster} (its clusterIDs): ask the cluster's administrator"
                ),
            ));
        }
        Ok(())
    }

    /// Whether a ClusterCCEAccount's conditions list `namespace` (by name or its labels):
    /// for a watch, and for a set, which may then watch only the account's clusterIDs.
    pub fn admit_namespace(
        &self,
        account: &ClusterCceAccount,
        namespace: &str,
    ) -> Result<(), Failure> {
        let name = account.metadata.name.as_deref().unwrap_or_default();
        let labels = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default();
        if admission::admits(&account.spec.conditions, namespace, &labels) {
            return Ok(());
        }
        Err(Failure::permanent(
            Category::AccountNotAllowed,
            format!(
                "ClusterCCEAccount {name} does not list namespace {namespace} in its conditions: ask the cluster's administrator"
            ),
        ))
    }

    /// How many watches of `watches` name each account.
    pub fn count_users<'a>(
        watches: impl IntoIterator<Item = &'a UpgradeWorkflowWatch>,
    ) -> BTreeMap<AccountName, u32> {
        let mut counts = BTreeMap::new();
        for watch in watches {
            let Some(reference) = &watch.spec.account_ref else {
                continue;
            };
            let namespace = match reference.kind {
                AccountKind::Namespaced => watch.metadata.namespace.clone(),
                AccountKind::Cluster => None,
            };
            let name = AccountName {
                kind: reference.kind,
                namespace,
                name: reference.name.clone(),
            };
            *counts.entry(name).or_default() += 1;
        }
        counts
    }
}

/// The watch's account does not exist (or is not in the operator's caches).
fn missing(kind: AccountKind, name: &str, namespace: &str) -> Failure {
    let message = match kind {
        AccountKind::Namespaced => format!("CCEAccount {namespace}/{name} does not exist"),
        AccountKind::Cluster => format!("ClusterCCEAccount {name} does not exist"),
    };
    Failure::permanent(Category::AccountMissing, message)
}

/// The accounts and namespaces the operator's caches hold, shared.
pub type SharedAccounts = Arc<Accounts>;

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};

    fn watch(ns: &str, spec: serde_json::Value) -> UpgradeWorkflowWatch {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "UpgradeWorkflowWatch",
            "metadata": {"name": "w", "namespace": ns},
            "spec": spec
        }))
        .expect("watch")
    }

    fn accounts() -> Accounts {
        let (cluster, mut writer) = reflector::store::<ClusterCceAccount>();
        let shared: ClusterCceAccount = serde_json::from_value(serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "ClusterCCEAccount",
            "metadata": {"name": "shared"},
            "spec": {"region": "ap-southeast-1", "projectID": "p-shared", "clusterType": "Autopilot",
                     "pollInterval": "1m", "credentials": {"operatorDefaults": {}},
                     "conditions": [{"namespaces": ["team-a"]}], "clusterIDs": ["c-1"]}
        }))
        .expect("account");
        writer.apply_watcher_event(&watcher::Event::Apply(shared));
        Accounts {
            namespaced: Vec::new(),
            cluster,
            namespaces: reflector::store().0,
            operator_namespace: "operator".into(),
            cluster_accounts: true,
            synced: tokio::sync::watch::channel(true).1,
        }
    }

    fn shared(cluster: &str) -> serde_json::Value {
        serde_json::json!({"clusterID": cluster, "accountRef": {"kind": "ClusterCCEAccount", "name": "shared"}})
    }

    #[test]
    fn a_cluster_account_serves_what_it_lists_with_its_defaults() {
        let served = accounts()
            .serve_now(&watch("team-a", shared("c-1")))
            .expect("served");
        assert_eq!(served.source, Source::OperatorDefaults);
        assert_eq!(
            (served.project_id.as_str(), served.family),
            ("p-shared", ClusterType::Autopilot)
        );
        assert_eq!(served.poll_interval.as_deref(), Some("1m"));
        let mut own_type = shared("c-1");
        own_type["clusterType"] = "Standard".into();
        let served = accounts()
            .serve_now(&watch("team-a", own_type))
            .expect("served");
        assert_eq!(served.family, ClusterType::Standard, "the watch's own wins");
    }

    #[test]
    fn nothing_is_served_without_an_account_the_watch_may_use() {
        let accounts = accounts();
        let refused = |ns: &str, spec| accounts.serve_now(&watch(ns, spec)).expect_err("refused");
        let other_namespace = refused("team-b", shared("c-1"));
        assert_eq!(other_namespace.category, Category::AccountNotAllowed);
        let other_cluster = refused("team-a", shared("c-2"));
        assert_eq!(other_cluster.category, Category::AccountNotAllowed);
        let none = refused("team-a", serde_json::json!({"clusterID": "c-1"}));
        assert_eq!(none.category, Category::AccountMissing);
        let absent = refused(
            "team-a",
            serde_json::json!({"clusterID": "c-1", "accountRef": {"name": "shared"}}),
        );
        assert_eq!(absent.message, "CCEAccount team-a/shared does not exist");
        let off = Accounts {
            cluster_accounts: false,
            ..accounts
        };
        let disabled = off
            .serve_now(&watch("team-a", shared("c-1")))
            .expect_err("refused");
        assert_eq!(disabled.category, Category::AccountNotAllowed);
    }

    #[test]
    fn a_cluster_accounts_reasons_stay_with_its_administrator() {
        let served = accounts()
            .serve_now(&watch("team-a", shared("c-1")))
            .expect("served");
        let failure = Failure::transient(
            Category::IamUnavailable,
            "IAM https://iam.internal answered 503 for /etc/cce/credentials",
        );
        let told = served.for_the_watch(failure);
        assert_eq!(told.category, Category::IamUnavailable);
        assert!(!told.permanent);
        assert_eq!(
            told.message,
            "ClusterCCEAccount shared could not provide credentials (IamUnavailable): its status says why; ask the cluster's administrator"
        );
    }
}
