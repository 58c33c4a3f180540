//! An UpgradeWatchSet's reconcile, the I/O around `core::set`: the account the set names,
//! held to the account's rules as a watch's is; the project's clusters listed from CCE (one
//! request per family); the watches the set keeps, read from the API server by label; then
//! what the core decided, written in an order that survives a crash anywhere: a leaving
//! cluster's Event before its watch is deleted, a joining cluster's Event once its watch
//! exists (again on the next pass until a status records the pass), the status last. A
//! failure to list leaves every watch as it was. The leader only.
//!
//! Deleting a set deletes its watches through their owner reference (Kubernetes' garbage
//! collector), so nothing here runs on deletion and no finalizer can hold a set.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{debug, warn};

use crate::cce::ApiFamily;
use crate::cce::client::Target;
use crate::crd::set::{DEFAULT_LIST_INTERVAL, SET_LABEL};
use crate::crd::{AccountKind, UpgradeWatchSet, UpgradeWatchSetStatus, UpgradeWorkflowWatch};
use crate::credentials::accounts::{Accounts, Served};
use crate::duration;
use crate::failure::{Category, Failure};
use crate::reconciler::context::{Context, now_whole_seconds};
use crate::reconciler::core::conditions::{ConditionType, is_true};
use crate::reconciler::core::set::{
    Desired, Inputs, Kept, Leave, Listing, Membership, Outcome, SetEventReason, event_for, kept,
    next_status, plan, renamed, unannounced,
};

/// The field manager of what the operator writes into a generated watch.
pub const FIELD_MANAGER: &str = "cce-upgrade-watch-set";
/// The longest wait before a set whose listing failed is tried again.
const RETRY_AT_MOST: Duration = Duration::from_secs(60);

/// What the sets' reconciles share: the watches' context (clients, account caches,
/// credentials, leadership) and who publishes the Events.
pub struct SetContext {
    pub ctx: Arc<Context>,
    pub controller: String,
    pub instance: String,
    /// Lists every set this often instead of its listInterval (tests and demos).
    pub list_every: Option<Duration>,
    /// The generated watches (by uid) whose ClusterJoined this process has seen published:
    /// not sent again while the status cannot yet tell (a watch created less than a minute
    /// before the last listing). Bounded by the watches; a leaving one is dropped.
    pub announced: parking_lot::Mutex<std::collections::HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("the set has no namespace")]
    NoNamespace,
    #[error("reading the set's watches failed: {0}")]
    ReadWatches(#[source] kube::Error),
    #[error("writing the set's status failed: {0}")]
    WriteStatus(#[source] kube::Error),
}

pub async fn reconcile_set(
    set: Arc<UpgradeWatchSet>,
    sctx: Arc<SetContext>,
) -> Result<Action, SetError> {
    let namespace = set.namespace().ok_or(SetError::NoNamespace)?;
    let every = sctx.list_every.unwrap_or_else(|| list_interval(&set));
    if set.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !sctx.ctx.leadership.is_leader() {
        return Ok(Action::requeue(every));
    }
    let old = set.status.clone().unwrap_or_default();
    let (served, cluster_ids) = match serve(&sctx.ctx.accounts, &set, &namespace).await {
        Ok(found) => found,
        Err(failure) => return failed(&sctx, &set, &old, &failure, every).await,
    };
    let listing = match list(&sctx.ctx, &set, &served).await {
        Ok(listing) => listing,
        Err(failure) => return failed(&sctx, &set, &old, &failure, every).await,
    };
    let watches: Api<UpgradeWorkflowWatch> = Api::namespaced(sctx.ctx.kube.clone(), &namespace);
    let selector = format!("{SET_LABEL}={}", set.name_any());
    let metas: Vec<ObjectMeta> = watches
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(SetError::ReadWatches)?
        .items
        .into_iter()
        .map(|m| m.metadata)
        .collect();
    let kept = kept(&set, &metas);
    let inputs = Inputs {
        set: &set,
        listing: &listing.found,
        kept: &kept,
        cluster_ids: &cluster_ids,
    };
    let plan = match plan(&inputs) {
        Ok(plan) => plan,
        Err(why) => {
            write_status(&sctx, &set, &old, &Outcome::InvalidSelector(&why)).await?;
            return Ok(Action::requeue(every));
        }
    };
    let mut writes = Writes::new(&sctx, &set, &watches);
    for (leaving, why) in &plan.delete {
        writes.delete(leaving, *why).await;
    }
    for desired in &plan.create {
        writes.create(desired).await;
    }
    for desired in &plan.update {
        writes.update(desired).await;
    }
    for staying in unannounced(&old, &plan.staying) {
        if !sctx.announced.lock().contains(&staying.uid) {
            writes.announce(staying).await;
        }
    }
    let succeeded = plan
        .staying
        .iter()
        .filter(|k| is_true(&sctx.ctx.statuses.status_of(&k.uid), ConditionType::Ready))
        .count();
    let outcome = Outcome::Listed {
        counts: &plan.counts,
        succeeded: u32::try_from(succeeded).unwrap_or(u32::MAX),
        watches: u32::try_from(plan.staying.len() + writes.created).unwrap_or(u32::MAX),
        failed_writes: writes.failed,
        listed: listing.said,
    };
    write_status(&sctx, &set, &old, &outcome).await?;
    Ok(Action::requeue(every))
}

/// A pass that could not list: the status says why, the watches stay as they were.
async fn failed(
    sctx: &SetContext,
    set: &UpgradeWatchSet,
    old: &UpgradeWatchSetStatus,
    failure: &Failure,
    every: Duration,
) -> Result<Action, SetError> {
    debug!(set = %set.name_any(), %failure, "the set's clusters were not listed");
    write_status(sctx, set, old, &Outcome::Failed(failure)).await?;
    Ok(Action::requeue(every.min(RETRY_AT_MOST)))
}

/// The set's listInterval, else the default; the schema keeps it between 1m and 24h.
fn list_interval(set: &UpgradeWatchSet) -> Duration {
    let raw = set.spec.list_interval.as_deref();
    duration::parse(raw.unwrap_or(DEFAULT_LIST_INTERVAL))
        .or_else(|_| duration::parse(DEFAULT_LIST_INTERVAL))
        .unwrap_or(Duration::from_secs(300))
}

/// The account the set names, as a watch of the set's namespace would be served by it, and
/// the clusters the account restricts its watches to (empty: none restricted). Waits for
/// the caches' first list.
async fn serve(
    accounts: &Accounts,
    set: &UpgradeWatchSet,
    namespace: &str,
) -> Result<(Served, Vec<String>), Failure> {
    let _ = accounts.synced.clone().wait_for(|synced| *synced).await;
    let reference = &set.spec.account_ref;
    let name = &reference.name;
    match reference.kind {
        AccountKind::Namespaced => {
            let key = ObjectRef::new(name).within(namespace);
            let account = accounts
                .namespaced
                .iter()
                .find_map(|s| s.get(&key))
                .ok_or_else(|| {
                    Failure::permanent(
                        Category::AccountMissing,
                        format!("CCEAccount {namespace}/{name} does not exist"),
                    )
                })?;
            Ok((
                accounts.namespaced_served(&account, namespace, None),
                Vec::new(),
            ))
        }
        AccountKind::Cluster if !accounts.cluster_accounts => Err(Failure::permanent(
            Category::AccountNotAllowed,
            "this operator serves no ClusterCCEAccount: name a CCEAccount of this namespace",
        )),
        AccountKind::Cluster => {
            let account = accounts.cluster.get(&ObjectRef::new(name)).ok_or_else(|| {
                Failure::permanent(
                    Category::AccountMissing,
                    format!("ClusterCCEAccount {name} does not exist"),
                )
            })?;
            accounts.admit_namespace(&account, namespace)?;
            let ids = account.spec.cluster_ids.clone();
            Ok((accounts.cluster_served(&account, None), ids))
        }
    }
}

/// What one listing found, and the words Synced says about it.
struct Listed {
    found: Listing,
    said: String,
}

/// The clusters of every family the set reads, Autopilot's first (a cluster both lists
/// return is kept as Autopilot's, where its workflows are).
async fn list(ctx: &Context, set: &UpgradeWatchSet, served: &Served) -> Result<Listed, Failure> {
    let mut families = set.spec.cluster_types.clone();
    if families.is_empty() {
        families.push(served.family);
    }
    families.sort_by_key(|f| *f != ApiFamily::Autopilot);
    families.dedup();
    let region = served.region.as_deref();
    let credentials = ctx
        .credentials
        .resolve(&served.source, region)
        .await
        .map_err(|f| served.for_the_watch(f))?;
    let endpoint = ctx
        .fetcher
        .client()
        .resolve_endpoint(region, served.endpoint.as_deref())
        .map_err(|e| served.for_the_watch(Failure::permanent(e.category(), e.to_string())))?;
    let mut found = Listing::default();
    let mut operations = Vec::new();
    for family in families {
        let target = Target {
            endpoint: endpoint.clone(),
            project_id: served.project_id.clone(),
            cluster_id: String::new(),
            family,
            credentials: credentials.clone(),
        };
        let operation = match family {
            ApiFamily::Standard => "ListClusters",
            ApiFamily::Autopilot => "ListAutopilotClusters",
        };
        let answer = ctx
            .fetcher
            .client()
            .list_clusters(&target)
            .await
            .map_err(|e| Failure::transient(e.category(), format!("{operation}: {e}")))?;
        let items = answer.body.items;
        found.unreadable += items.unreadable;
        found.beyond_cap += items.more;
        found
            .clusters
            .extend(items.kept.into_iter().map(|c| (family, c)));
        operations.push(operation);
    }
    let said = format!(
        "{} listed {} clusters of project {}",
        operations.join(" and "),
        found.clusters.len(),
        served.project_id
    );
    Ok(Listed { found, said })
}

/// The writes of one pass: each failure is recorded and the others still tried.
struct Writes<'a> {
    sctx: &'a SetContext,
    set: &'a UpgradeWatchSet,
    watches: &'a Api<UpgradeWorkflowWatch>,
    events: Api<KubeEvent>,
    created: usize,
    failed: Vec<String>,
}

impl<'a> Writes<'a> {
    fn new(
        sctx: &'a SetContext,
        set: &'a UpgradeWatchSet,
        watches: &'a Api<UpgradeWorkflowWatch>,
    ) -> Self {
        let namespace = set.namespace().unwrap_or_default();
        Self {
            sctx,
            set,
            watches,
            events: Api::namespaced(sctx.ctx.kube.clone(), &namespace),
            created: 0,
            failed: Vec::new(),
        }
    }

    /// The Event first, so a crash before the deletion publishes the same one again; the
    /// deletion names the watch's uid, so it never removes another object of that name.
    async fn delete(&mut self, leaving: &Kept, why: Leave) {
        let membership = Membership {
            reason: SetEventReason::ClusterLeft,
            watch_name: leaving.name.clone(),
            watch_uid: leaving.uid.clone(),
            cluster_id: leaving.cluster_id.clone(),
            cluster_name: leaving
                .cluster_name
                .clone()
                .unwrap_or_else(|| leaving.cluster_id.clone()),
            leave: Some(why),
        };
        if !self.publish(&membership).await {
            return;
        }
        self.sctx.announced.lock().remove(&leaving.uid);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(leaving.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.watches.delete(&leaving.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => self.fail(&leaving.name, "deleting", &e),
        }
    }

    /// Created with POST, so a watch of that name that is not the set's (a person's, or
    /// another set's) is never taken over: the cluster's watch takes the name kept for a
    /// clash instead.
    async fn create(&mut self, desired: &Desired) {
        let created = match self.post(desired).await {
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let other = renamed(self.set, desired);
                debug!(taken = %desired.watch.name_any(), name = %other.watch.name_any(), "a watch's name was taken");
                self.post(&other).await.map(|w| (w, other))
            }
            other => other.map(|w| (w, desired.clone())),
        };
        match created {
            Ok((created, desired)) => {
                self.created += 1;
                let membership = Membership {
                    reason: SetEventReason::ClusterJoined,
                    watch_name: desired.watch.name_any(),
                    watch_uid: created.uid().unwrap_or_default(),
                    cluster_id: desired.cluster_id.clone(),
                    cluster_name: desired.cluster_name.clone(),
                    leave: None,
                };
                if self.publish(&membership).await {
                    self.sctx.announced.lock().insert(membership.watch_uid);
                }
            }
            Err(e) => self.fail(&desired.watch.name_any(), "creating", &e),
        }
    }

    async fn post(&self, desired: &Desired) -> Result<UpgradeWorkflowWatch, kube::Error> {
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        self.watches.create(&params, &desired.watch).await
    }

    /// Server-side apply of what the set owns in the watch; what others added stays.
    async fn update(&mut self, desired: &Desired) {
        let name = desired.watch.name_any();
        let mut watch = desired.watch.clone();
        watch.metadata.managed_fields = None;
        watch.metadata.resource_version = None;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = self
            .watches
            .patch(&name, &params, &Patch::Apply(&watch))
            .await
        {
            self.fail(&name, "changing", &e);
        }
    }

    /// The ClusterJoined Event of a watch created before the last status was written.
    async fn announce(&mut self, staying: &Kept) {
        let membership = Membership {
            reason: SetEventReason::ClusterJoined,
            watch_name: staying.name.clone(),
            watch_uid: staying.uid.clone(),
            cluster_id: staying.cluster_id.clone(),
            cluster_name: staying
                .cluster_name
                .clone()
                .unwrap_or_else(|| staying.cluster_id.clone()),
            leave: None,
        };
        if self.publish(&membership).await {
            self.sctx.announced.lock().insert(staying.uid.clone());
        }
    }

    /// Whether the Event is there now (published, or published before).
    async fn publish(&mut self, membership: &Membership) -> bool {
        let event = event_for(
            self.set,
            membership,
            jiff::Timestamp::now(),
            &self.sctx.controller,
            &self.sctx.instance,
        );
        match self.events.create(&PostParams::default(), &event).await {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.is_already_exists() => true,
            Err(e) => {
                self.fail(&membership.watch_name, "publishing the Event of", &e);
                false
            }
        }
    }

    fn fail(&mut self, name: &str, doing: &str, e: &kube::Error) {
        warn!(set = %self.set.name_any(), watch = name, error = %e, "{doing} a set's watch failed");
        self.failed.push(format!("{doing} {name}: {e}"));
    }
}

/// The status after the pass: one server-side apply of the whole status, so a count or
/// list that is gone now is removed, not left from before.
async fn write_status(
    sctx: &SetContext,
    set: &UpgradeWatchSet,
    old: &UpgradeWatchSetStatus,
    outcome: &Outcome<'_>,
) -> Result<(), SetError> {
    let next = next_status(old, set.meta().generation, outcome, now_whole_seconds());
    if next == *old {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": UpgradeWatchSet::api_version(&()),
        "kind": UpgradeWatchSet::kind(&()),
        "status": next,
    });
    let namespace = set.namespace().unwrap_or_default();
    let api: Api<UpgradeWatchSet> = Api::namespaced(sctx.ctx.kube.clone(), &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&set.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map_err(SetError::WriteStatus)?;
    Ok(())
}

/// Kubernetes API failures (reading the watches, writing the status): retried soon.
pub fn set_error_policy(set: Arc<UpgradeWatchSet>, error: &SetError, _: Arc<SetContext>) -> Action {
    warn!(set = %set.name_any(), %error, "set not reconciled");
    Action::requeue(Duration::from_secs(5))
}
