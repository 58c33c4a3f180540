//! Leader election on a coordination.k8s.io Lease. Every replica keeps its caches warm;
//! only the holder of the lease talks to CCE and writes status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// A running election: the shared flag, lease changes, and the task renewing the lease.
pub struct Election {
    pub leadership: Leadership,
    changes: watch::Receiver<bool>,
    manager: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

/// Starts contending for the lease.
pub async fn elect(client: Client, config: &LeaseConfig) -> Result<Election, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration_secs)
        .with_grace(config.grace_secs)
        .with_field_manager("cce-upgrade-watch")
        .build()
        .await?;
    let (changes, manager) = manager.watch().await;
    let leadership = Leadership::standby();
    leadership.set(*changes.borrow());
    Ok(Election {
        leadership,
        changes,
        manager,
    })
}

impl Election {
    /// Follows lease changes into the shared flag, calling `on_change` with each new state,
    /// until `stop` resolves; then steps down and releases the lease so a standby takes
    /// over at once instead of after the lease expires.
    pub async fn run(self, on_change: impl Fn(bool), stop: impl Future<Output = ()>) {
        let Election {
            leadership,
            mut changes,
            manager,
        } = self;
        let follow = async {
            while changes.changed().await.is_ok() {
                let leader = *changes.borrow_and_update();
                leadership.set(leader);
                on_change(leader);
            }
        };
        tokio::select! {
            _ = follow => {}
            _ = stop => {}
        }
        leadership.set(false);
        on_change(false);
        // Dropping the receiver makes the lease task release the lease and end.
        drop(changes);
        let _ = tokio::time::timeout(Duration::from_secs(5), manager).await;
    }
}
