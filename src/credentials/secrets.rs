//! Credentials from an account's source: a marked Secret (`cce.upgradewatch.io/credentials=true`),
//! a ServiceAccount's tokens exchanged at IAM ([`identity`](crate::credentials::identity)),
//! or the operator's defaults ([`defaults`](crate::credentials::defaults)). Only marked
//! Secrets are cached, as metadata; a Secret's data is read (one GET) only when an account
//! names it and its resourceVersion changed, and only the parsed credentials are kept.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;
use tracing::debug;

use crate::cce::credentials::Credentials;
use crate::crd::account::{CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE};
use crate::credentials::accounts::Source;
use crate::credentials::defaults::Defaults;
use crate::credentials::identity::WorkloadIdentities;
use crate::failure::{Category, Failure};

/// The type of the Secrets the API server fills with ServiceAccount tokens: never credentials.
const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// Parsed credentials per Secret (namespace, name), with the resourceVersion they came from.
type Parsed = HashMap<(String, String), (String, Result<Credentials, Failure>)>;

pub struct CredentialSources {
    client: Client,
    /// Marked Secrets' metadata per watched scope: one cluster-wide store, or one per
    /// namespace (the operator's own included).
    metadata: Vec<Store<PartialObjectMeta<Secret>>>,
    parsed: Mutex<Parsed>,
    defaults: Defaults,
    identities: WorkloadIdentities,
    /// Turns true once every Secret store has listed. One task waits on the stores and
    /// publishes here, since a store's own readiness future does not wake many waiters.
    synced: tokio::sync::watch::Receiver<bool>,
}

impl CredentialSources {
    pub fn new(
        client: Client,
        metadata: Vec<Store<PartialObjectMeta<Secret>>>,
        defaults: Defaults,
        identities: WorkloadIdentities,
        synced: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            client,
            metadata,
            parsed: Mutex::new(HashMap::new()),
            defaults,
            identities,
            synced,
        }
    }

    /// The credentials `source` yields for an account whose CCE region is `region`.
    pub async fn resolve(
        &self,
        source: &Source,
        region: Option<&str>,
    ) -> Result<Credentials, Failure> {
        match source {
            Source::Secret { namespace, name } => self.secret_credentials(namespace, name).await,
            Source::Identity {
                namespace,
                identity,
            } => self.identities.resolve(namespace, region, identity).await,
            Source::OperatorDefaults => self.defaults.resolve().await,
        }
    }

    /// The credentials in the marked Secret `namespace/name`.
    async fn secret_credentials(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Credentials, Failure> {
        let Some(meta) = self.find(namespace, name).await else {
            return Err(not_usable(
                namespace,
                name,
                &format!(
                    "no Secret of that name is labelled {CREDENTIALS_LABEL}={CREDENTIALS_LABEL_VALUE}"
                ),
            ));
        };
        let version = meta.resource_version().unwrap_or_default();
        let key = (namespace.to_string(), name.to_string());
        if let Some((seen, parsed)) = self.parsed.lock().get(&key)
            && *seen == version
        {
            return parsed.clone();
        }
        let parsed = match Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
        {
            Ok(Some(secret)) => parse(&secret, namespace, name),
            Ok(None) => Err(not_usable(namespace, name, "it no longer exists")),
            // Not cached: a failed read is retried on the next reconcile.
            Err(e) => {
                return Err(Failure::transient(
                    Category::CredentialsMissing,
                    format!(
                        "cannot read Secret {namespace}/{name}: {}",
                        crate::credentials::kube_reason(&e)
                    ),
                ));
            }
        };
        self.parsed.lock().insert(key, (version, parsed.clone()));
        parsed
    }

    /// Forgets Secrets that no longer exist and identities no longer used.
    pub fn sweep(&self) {
        self.identities.sweep();
        self.defaults.sweep();
        let stores = &self.metadata;
        self.parsed.lock().retain(|(ns, name), _| {
            let reference = ObjectRef::new(name).within(ns);
            stores.iter().any(|s| s.get(&reference).is_some())
        });
    }

    async fn find(&self, namespace: &str, name: &str) -> Option<Arc<PartialObjectMeta<Secret>>> {
        // Reconciles may start before the Secret caches have listed once.
        let _ = self.synced.clone().wait_for(|synced| *synced).await;
        let reference = ObjectRef::new(name).within(namespace);
        self.metadata.iter().find_map(|store| store.get(&reference))
    }
}

/// The credentials a marked Secret holds. The refusal never names the keys it holds: the
/// watch's author may not be allowed to read the Secret. The operator's log says more.
fn parse(secret: &Secret, namespace: &str, name: &str) -> Result<Credentials, Failure> {
    let marked = secret
        .labels()
        .get(CREDENTIALS_LABEL)
        .is_some_and(|v| v == CREDENTIALS_LABEL_VALUE);
    if !marked {
        return Err(not_usable(
            namespace,
            name,
            &format!("it is not labelled {CREDENTIALS_LABEL}={CREDENTIALS_LABEL_VALUE}"),
        ));
    }
    if secret.type_.as_deref() == Some(SERVICE_ACCOUNT_TOKEN_TYPE) {
        return Err(not_usable(
            namespace,
            name,
            "a ServiceAccount token Secret never is",
        ));
    }
    Credentials::from_secret_data(&secret.data.clone().unwrap_or_default()).map_err(|e| {
        debug!(secret = %format!("{namespace}/{name}"), error = %e, "a marked Secret is not usable as credentials");
        not_usable(
            namespace,
            name,
            "it must hold accessKey and secretKey (and securityToken with temporary keys), or token, each non-empty ASCII",
        )
    })
}

/// A Secret that cannot serve as credentials: a person must fix it.
fn not_usable(namespace: &str, name: &str, why: &str) -> Failure {
    Failure::permanent(
        Category::CredentialsMissing,
        format!("Secret {namespace}/{name} is not usable as CCE credentials: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(labels: &[(&str, &str)], type_: Option<&str>, data: &[(&str, &str)]) -> Secret {
        let mut secret = Secret {
            type_: type_.map(str::to_string),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        secret.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        secret
    }

    const MARK: (&str, &str) = (CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE);

    #[test]
    fn only_a_marked_secret_that_is_no_service_account_token_yields_credentials() {
        let keys = [("accessKey", "AK"), ("secretKey", "SK")];
        assert!(parse(&secret(&[MARK], Some("Opaque"), &keys), "ns", "s").is_ok());
        let unmarked = parse(&secret(&[], Some("Opaque"), &keys), "ns", "s").expect_err("refused");
        assert!(
            unmarked.message.contains("not labelled"),
            "{}",
            unmarked.message
        );
        let wrong_value = parse(
            &secret(&[(CREDENTIALS_LABEL, "yes")], None, &keys),
            "ns",
            "s",
        );
        assert!(wrong_value.is_err());
        let sa = parse(
            &secret(
                &[MARK],
                Some(SERVICE_ACCOUNT_TOKEN_TYPE),
                &[("token", "jwt")],
            ),
            "ns",
            "s",
        )
        .expect_err("refused");
        assert_eq!(sa.category, Category::CredentialsMissing);
        assert!(
            sa.message.contains("ServiceAccount token"),
            "{}",
            sa.message
        );
    }

    #[test]
    fn a_refusal_never_names_the_keys_the_secret_holds() {
        let holding = [
            ("accessKey", "AK"),
            ("token", "T"),
            ("database-password", "pw"),
        ];
        let refused = parse(&secret(&[MARK], None, &holding), "ns", "s").expect_err("refused");
        // The message lists what is needed, the same for every unusable Secret.
        let other = parse(&secret(&[MARK], None, &[("x", "y")]), "ns", "s").expect_err("refused");
        assert_eq!(refused.message, other.message);
        assert!(!refused.message.contains("database-password"));
        assert!(!refused.message.contains("both"));
    }
}
