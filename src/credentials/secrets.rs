//! Credentials for a watch: the Secret it names in its own namespace, or the workload
//! identity it names ([`identity`](crate::credentials::identity)), else the operator's defaults
//! ([`defaults`](crate::credentials::defaults)). Secrets are watched as metadata only; a Secret's data is
//! read (one GET) only when a watch names it and its resourceVersion changed, and only the
//! parsed credentials are kept.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;

use crate::cce::credentials::Credentials;
use crate::crd::UpgradeWorkflowWatchSpec;
use crate::credentials::defaults::Defaults;
use crate::credentials::identity::WorkloadIdentities;
use crate::failure::{Category, Failure};

/// Parsed credentials per Secret (namespace, name), with the resourceVersion they came from.
type Parsed = HashMap<(String, String), (String, Result<Credentials, Failure>)>;

pub struct SecretCredentials {
    client: Client,
    /// Secret metadata per watched scope: one cluster-wide store, or one per namespace.
    metadata: Vec<Store<PartialObjectMeta<Secret>>>,
    parsed: Mutex<Parsed>,
    defaults: Defaults,
    identities: WorkloadIdentities,
    /// Turns true once every Secret store has listed. One task waits on the stores and
    /// publishes here, since a store's own readiness future does not wake many waiters.
    synced: tokio::sync::watch::Receiver<bool>,
}

impl SecretCredentials {
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

    /// The credentials for a watch in `namespace` with `spec`: its Secret, its workload
    /// identity, or the operator's defaults.
    pub async fn resolve(
        &self,
        namespace: &str,
        spec: &UpgradeWorkflowWatchSpec,
    ) -> Result<Credentials, Failure> {
        if let Some(identity) = &spec.workload_identity {
            return self
                .identities
                .resolve(namespace, spec.region.as_deref(), identity)
                .await;
        }
        match &spec.credentials_secret_ref {
            Some(secret) => self.secret_credentials(namespace, &secret.name).await,
            None => self.defaults.resolve().await,
        }
    }

    /// The credentials in Secret `namespace/name`.
    async fn secret_credentials(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Credentials, Failure> {
        let Some(meta) = self.find(namespace, name).await else {
            return Err(missing(format!("Secret {namespace}/{name} does not exist")));
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
            Ok(Some(secret)) => Credentials::from_secret_data(&secret.data.unwrap_or_default())
                .map_err(|e| missing(format!("Secret {namespace}/{name}: {e}"))),
            Ok(None) => Err(missing(format!("Secret {namespace}/{name} does not exist"))),
            // Not cached: a failed read is retried on the next reconcile.
            Err(e) => {
                return Err(missing(format!(
                    "cannot read Secret {namespace}/{name}: {}",
                    crate::credentials::kube_reason(&e)
                )));
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

/// A Secret that cannot serve as credentials: a person must fix it.
fn missing(message: String) -> Failure {
    Failure::permanent(Category::CredentialsMissing, message)
}
