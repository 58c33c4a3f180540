//! Leader election on a coordination.k8s.io Lease. Every replica keeps its caches warm;
//! only the holder of the lease talks to CCE and writes status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// Whether this instance may act, shared with the reconciler.
#[derive(Clone, Debug)]
pub struct Leadership {
    flag: Arc<AtomicBool>,
}

impl Leadership {
    /// Always the leader: leader election is off.
    pub fn always() -> Self {
        Self {
            flag: Arc::new(AtomicBool::new(true)),
        }
    }

    fn standby() -> Self {
        Self {
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn set(&self, leader: bool) {
        self.flag.store(leader, Ordering::SeqCst);
    }
}

/// Lease settings (flags).
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration_secs: u64,
    pub grace_secs: u64,
}

/// Starts contending for the lease. The receiver yields `true` on becoming leader and
/// `false` on losing it; dropping it releases the lease.
pub async fn elect(
    client: Client,
    config: &LeaseConfig,
) -> Result<(Leadership, watch::Receiver<bool>), kube_lease_manager::LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration_secs)
        .with_grace(config.grace_secs)
        .with_field_manager("cce-upgrade-watch")
        .build()
        .await?;
    let (changes, _task) = manager.watch().await;
    let leadership = Leadership::standby();
    leadership.set(*changes.borrow());
    Ok((leadership, changes))
}

/// Follows lease changes into `leadership`, calling `on_change` with each new state.
pub async fn follow(
    leadership: Leadership,
    mut changes: watch::Receiver<bool>,
    on_change: impl Fn(bool),
) {
    while changes.changed().await.is_ok() {
        let leader = *changes.borrow_and_update();
        leadership.set(leader);
        on_change(leader);
    }
}
