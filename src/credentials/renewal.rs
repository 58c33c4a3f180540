//! Temporary credentials kept per identity and renewed before they expire: one exchange in
//! flight per identity however many watches share it, the keys reused until their renewal
//! time, and failed exchanges backed off (never a tight loop against IAM). While a renewal
//! fails, keys that have not expired yet keep working.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::cce::credentials::Credentials;
use crate::cce::iam::Temporary;
use crate::duration::Backoff;
use crate::failure::{Category, Failure};

/// Huawei's SDK renews temporary keys this long before they expire.
pub const SDK_RENEWAL_MARGIN: Duration = Duration::from_secs(40 * 60);

/// The current time; injectable so renewal and backoff are testable.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// When keys obtained at `obtained` and expiring at `expires` are renewed: the SDK's margin
/// before expiry, or half their life when they live shorter than twice that margin.
pub fn renew_at(obtained: Timestamp, expires: Timestamp) -> Timestamp {
    let life = expires.duration_since(obtained).max(SignedDuration::ZERO);
    let margin = SignedDuration::try_from(SDK_RENEWAL_MARGIN)
        .unwrap_or(SignedDuration::MAX)
        .min(life / 2);
    expires.checked_sub(margin).unwrap_or(obtained)
}

#[derive(Default)]
struct Entry {
    current: Option<Kept>,
    failures: u32,
    retry_at: Option<Timestamp>,
    last_failure: Option<Failure>,
    last_used: Option<Timestamp>,
}

struct Kept {
    temporary: Temporary,
    renew_at: Timestamp,
}

/// Whether `entry` needs an exchange at `now`: no keys or keys due for renewal, and no
/// backoff holding.
fn exchange_due(entry: &Entry, now: Timestamp) -> bool {
    let due = entry.current.as_ref().is_none_or(|k| now >= k.renew_at);
    due && entry.retry_at.is_none_or(|at| now >= at)
}

/// Keys per identity `K`.
pub struct Renewing<K> {
    entries: Mutex<HashMap<K, Arc<tokio::sync::Mutex<Entry>>>>,
    clock: Clock,
    backoff: Backoff,
}

impl<K: Hash + Eq + Clone + std::fmt::Display> Renewing<K> {
    pub fn new(clock: Clock, backoff: Backoff) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            clock,
            backoff,
        }
    }

    /// The keys of `key`, exchanging with `exchange` when none are kept, they are due for
    /// renewal and no backoff holds. `exchange` is not called otherwise.
    pub async fn get<F, Fut>(&self, key: &K, exchange: F) -> Result<Credentials, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Temporary, Failure>>,
    {
        let slot = self.entries.lock().entry(key.clone()).or_default().clone();
        let mut entry = slot.lock().await;
        let now = (self.clock)();
        entry.last_used = Some(now);
        if !exchange_due(&entry, now) {
            return still_valid(&entry, now);
        }
        let result = exchange().await;
        let now = (self.clock)();
        match result {
            Ok(temporary) if temporary.expires_at <= now => {
                let failure = Failure {
                    category: Category::CredentialsExpired,
                    message: format!(
                        "the temporary credentials issued for {key} expired at {}, before they could be used; check the clocks",
                        temporary.expires_at
                    ),
                    permanent: false,
                };
                self.failed(&mut entry, now, failure);
                still_valid(&entry, now)
            }
            Ok(temporary) => {
                let renew = renew_at(now, temporary.expires_at);
                info!(identity = %key, expires_at = %temporary.expires_at, renew_at = %renew, "temporary credentials obtained");
                entry.current = Some(Kept {
                    temporary,
                    renew_at: renew,
                });
                entry.failures = 0;
                entry.retry_at = None;
                entry.last_failure = None;
                still_valid(&entry, now)
            }
            Err(failure) => {
                self.failed(&mut entry, now, failure);
                still_valid(&entry, now)
            }
        }
    }

    fn failed(&self, entry: &mut Entry, now: Timestamp, failure: Failure) {
        entry.failures = entry.failures.saturating_add(1);
        let wait = self.backoff.after(entry.failures);
        entry.retry_at = now.checked_add(wait).ok();
        // The message names the identity.
        warn!(reason = %failure.category, error = %failure.message, retry_in = ?wait, "cannot obtain temporary credentials");
        entry.last_failure = Some(failure);
    }

    /// Forgets identities no watch asked for within `idle`.
    pub fn sweep(&self, idle: Duration) {
        let now = (self.clock)();
        let Ok(cutoff) = now.checked_sub(idle) else {
            return;
        };
        self.entries.lock().retain(|_, slot| match slot.try_lock() {
            Ok(entry) => entry.last_used.is_some_and(|used| used >= cutoff),
            // In use right now.
            Err(_) => true,
        });
    }
}

/// The kept keys while they have not expired, else why there are none.
fn still_valid(entry: &Entry, now: Timestamp) -> Result<Credentials, Failure> {
    match &entry.current {
        Some(k) if now < k.temporary.expires_at => Ok(k.temporary.credentials.clone()),
        Some(k) => Err(Failure {
            category: Category::CredentialsExpired,
            message: format!(
                "the temporary credentials expired at {} and could not be renewed: {}",
                k.temporary.expires_at,
                entry
                    .last_failure
                    .as_ref()
                    .map_or("no renewal attempted yet", |f| f.message.as_str())
            ),
            permanent: entry.last_failure.as_ref().is_some_and(|f| f.permanent),
        }),
        None => Err(entry.last_failure.clone().unwrap_or(Failure {
            category: Category::CredentialsExpired,
            message: "no temporary credentials yet".into(),
            permanent: false,
        })),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn keys(n: u32, expires: &str) -> Temporary {
        Temporary {
            credentials: Credentials::temporary(&format!("AK{n}"), "sk", Some("st")).expect("keys"),
            expires_at: t(expires),
        }
    }

    /// A clock that stands where the test sets it.
    fn clock_at(start: &str) -> (Arc<Mutex<Timestamp>>, Clock) {
        let now = Arc::new(Mutex::new(t(start)));
        let clock: Clock = {
            let now = now.clone();
            Arc::new(move || *now.lock())
        };
        (now, clock)
    }

    /// The access key `cache` gives for one identity, counting the exchanges it makes.
    async fn ask(
        cache: &Renewing<String>,
        calls: &AtomicU32,
        result: Result<Temporary, Failure>,
    ) -> Result<String, Failure> {
        cache
            .get(&"ns/sa".to_string(), || {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { result }
            })
            .await
            .map(|c| c.to_string())
    }

    #[test]
    fn renewal_comes_the_sdks_margin_early_or_at_half_a_short_life() {
        assert_eq!(
            renew_at(t("2024-01-01T00:00:00Z"), t("2024-01-01T06:00:00Z")),
            t("2024-01-01T05:20:00Z")
        );
        assert_eq!(
            renew_at(t("2024-01-01T00:00:00Z"), t("2024-01-01T00:10:00Z")),
            t("2024-01-01T00:05:00Z")
        );
        assert_eq!(
            renew_at(t("2024-01-01T00:00:00Z"), t("2023-12-31T00:00:00Z")),
            t("2023-12-31T00:00:00Z"),
            "already expired: due at once"
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let backoff = Backoff::DEFAULT;
        assert_eq!(backoff.after(1), backoff.base);
        assert_eq!(backoff.after(2), backoff.base * 2);
        assert_eq!(backoff.after(40), backoff.cap);
    }

    #[tokio::test]
    async fn keys_are_reused_until_due_then_renewed_and_failures_back_off() {
        let (now, clock) = clock_at("2024-01-01T00:00:00Z");
        let cache: Renewing<String> = Renewing::new(clock, Backoff::DEFAULT);
        let calls = AtomicU32::new(0);
        let unavailable = Failure {
            category: Category::IamUnavailable,
            message: "IAM is unavailable".into(),
            permanent: false,
        };
        let first = ask(&cache, &calls, Ok(keys(1, "2024-01-01T01:00:00Z"))).await;
        assert!(first.expect("first").contains("AK1"));
        *now.lock() = t("2024-01-01T00:29:00Z");
        let reused = ask(&cache, &calls, Ok(keys(2, "2024-01-01T02:00:00Z"))).await;
        assert!(reused.expect("reused").contains("AK1"));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not due: no exchange");

        // Due; the renewal fails: the old keys still work, and the next try waits.
        *now.lock() = t("2024-01-01T00:31:00Z");
        let kept = ask(&cache, &calls, Err(unavailable)).await;
        assert!(kept.expect("old keys still valid").contains("AK1"));
        let waiting = ask(&cache, &calls, Ok(keys(3, "2024-01-01T02:00:00Z"))).await;
        assert!(waiting.expect("old keys").contains("AK1"));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "backing off: no exchange");

        // Past the backoff, the renewal works.
        *now.lock() = t("2024-01-01T00:31:06Z");
        let renewed = ask(&cache, &calls, Ok(keys(4, "2024-01-01T02:00:00Z"))).await;
        assert!(renewed.expect("renewed").contains("AK4"));
    }

    #[tokio::test]
    async fn expired_keys_that_cannot_be_renewed_say_so() {
        let (now, clock) = clock_at("2024-01-01T00:00:00Z");
        let cache: Renewing<String> = Renewing::new(clock, Backoff::DEFAULT);
        let key = "ns/sa".to_string();
        cache
            .get(&key, || async { Ok(keys(1, "2024-01-01T00:10:00Z")) })
            .await
            .expect("first");
        *now.lock() = t("2024-01-01T00:11:00Z");
        let e = cache
            .get(&key, || async {
                Err(Failure {
                    category: Category::Unauthorized,
                    message: "IAM refused the token (HTTP 400: no rule)".into(),
                    permanent: true,
                })
            })
            .await
            .expect_err("expired");
        assert_eq!(e.category, Category::CredentialsExpired);
        assert!(e.message.contains("no rule"), "{}", e.message);
        assert!(e.permanent);

        let stale = cache
            .get(&"other".to_string(), || async {
                Ok(keys(2, "2024-01-01T00:00:00Z"))
            })
            .await
            .expect_err("stale on arrival");
        assert_eq!(stale.category, Category::CredentialsExpired);
        assert!(
            stale.message.contains("check the clocks"),
            "{}",
            stale.message
        );
    }

    #[tokio::test]
    async fn identities_left_unused_are_forgotten() {
        let (now, clock) = clock_at("2024-01-01T00:00:00Z");
        let cache: Renewing<String> = Renewing::new(clock, Backoff::DEFAULT);
        cache
            .get(&"a".to_string(), || async {
                Ok(keys(1, "2024-01-01T06:00:00Z"))
            })
            .await
            .expect("a");
        *now.lock() = t("2024-01-01T02:00:00Z");
        cache.sweep(Duration::from_secs(3600));
        assert!(cache.entries.lock().is_empty());
    }
}
