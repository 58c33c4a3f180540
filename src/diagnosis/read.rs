//! One of CCE's diagnostic reads, its answer bounded for status (I/O). The reconciler makes
//! each read through its shared fetcher; `get` asks for all of a workflow's at once.

use crate::cce::client::{CceClient, Target};
use crate::cce::error::CceError;
use crate::cce::model::Workflow;
use crate::crd::UpgradeWorkflowWatchStatus;
use crate::diagnosis::findings::{self, Ask, Told};

/// One diagnostic read.
pub async fn read(client: &CceClient, target: &Target, ask: &Ask) -> Result<Told, CceError> {
    Ok(match ask {
        Ask::PreCheck(id) => Told::PreCheck(findings::precheck_report(
            &client.pre_check_for_task(target, id).await?.body,
        )),
        Ask::Progress(id) => {
            findings::progress(&client.show_upgrade_cluster_task(target, id).await?.body)
        }
        Ask::Cluster(_) => Told::Cluster(findings::cluster_report(
            &client.show_cluster(target).await?.body,
        )),
        Ask::ClusterName(_) => findings::cluster_name(&client.show_cluster(target).await?.body),
        Ask::UpgradeTasks(_) => {
            findings::newest_upgrade_task(&client.list_upgrade_cluster_tasks(target).await?.body)
        }
        Ask::Snapshot(_) => {
            findings::snapshot_messages(&client.list_snapshot_tasks(target).await?.body, ask)
        }
    })
}

/// Every read `wf` calls for given the kept status `old`, one after another; a read that
/// failed is reported as unavailable with CCE's reason, so the caller always learns why.
pub async fn read_all(
    client: &CceClient,
    target: &Target,
    wf: &Workflow,
    old: &UpgradeWorkflowWatchStatus,
) -> Vec<(Ask, Told)> {
    let mut told = Vec::new();
    for ask in findings::wanted(wf, old) {
        let answer = match read(client, target, &ask).await {
            Ok(answer) => answer,
            Err(e) => findings::unavailable(&ask, &e)
                .unwrap_or_else(|| Told::Unavailable(format!("{}: {e}", ask.api()))),
        };
        told.push((ask, answer));
    }
    told
}
