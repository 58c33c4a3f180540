//! When to look at a workflow again: by phase while things go well, by backoff when they
//! do not. Jitter keeps thousands of watches from polling CCE in lockstep.

use std::time::Duration;

use crate::cce::model::Phase;
use crate::crd::{DEFAULT_POLL_INTERVAL, MAX_POLL_INTERVAL, MIN_POLL_INTERVAL};
use crate::duration::Backoff;

/// Operator-wide polling settings (flags).
#[derive(Clone, Debug)]
pub struct PollPolicy {
    /// Resync of finished (Success, Cancel) workflows.
    pub terminal_resync: Duration,
    /// First retry after a transient error; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest wait between retries of transient errors.
    pub backoff_cap: Duration,
    /// Retry of errors a person must fix (bad credentials, workflow gone).
    pub permanent_retry: Duration,
    /// Fraction of the delay added or removed at random.
    pub jitter: f64,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            terminal_resync: Duration::from_secs(600),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(300),
            permanent_retry: Duration::from_secs(300),
            jitter: 0.1,
        }
    }
}

/// `spec.pollInterval` as a duration; the schema already refused anything shorter than the
/// minimum, but an old object or a bad value still gets a sane interval.
pub fn poll_interval(spec_value: Option<&str>) -> Duration {
    let parse = |s: &str| crate::duration::parse(s).ok();
    let min = parse(MIN_POLL_INTERVAL).unwrap_or(Duration::from_secs(5));
    let max = parse(MAX_POLL_INTERVAL).unwrap_or(Duration::from_secs(24 * 3600));
    let default = parse(DEFAULT_POLL_INTERVAL).unwrap_or(Duration::from_secs(30));
    spec_value
        .and_then(parse)
        .unwrap_or(default)
        .clamp(min, max)
}

impl PollPolicy {
    /// The backoff after failed reads, as `--backoff-base` and `--backoff-cap` set it.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: self.backoff_base,
            cap: self.backoff_cap,
        }
    }

    /// Delay before the next poll after a good answer. `following` watches keep looking
    /// for a newer workflow at the terminal pace.
    pub fn after_success(&self, phase: Option<&Phase>, poll: Duration) -> Duration {
        match phase {
            Some(p) if p.is_terminal() => self.terminal_resync,
            _ => poll,
        }
    }

    /// Delay before retrying after the `failures`-th failure in a row (1 for the first). A
    /// `Retry-After` longer than the backoff cap waits the cap: a throttled watch comes back
    /// no later than any other failing one once CCE has recovered.
    pub fn after_failure(
        &self,
        failures: u32,
        permanent: bool,
        retry_after: Option<Duration>,
    ) -> Duration {
        if permanent {
            return self.permanent_retry;
        }
        let backoff = self.backoff().after(failures);
        backoff.max(retry_after.unwrap_or_default().min(self.backoff_cap))
    }

    /// Stretches `delay` by up to `jitter` (never shortens it), never below a floor (e.g.
    /// CCE's Retry-After). Only upwards: the watches of one workflow wake together and the
    /// first one awake asks CCE for all, so a jitter that could also shorten the delay made
    /// the earliest of them, and with it the request period, come early every time (about
    /// 7 % more requests than one per poll period with five watches per workflow). The floor
    /// is capped like a `Retry-After` in [`Self::after_failure`]; any delay saturates rather
    /// than overflow. `draw` is a number in `0.0..=1.0` the caller drew at random, so the
    /// schedule itself stays a function of its inputs.
    pub fn jittered(&self, delay: Duration, floor: Duration, draw: f64) -> Duration {
        let offset = delay.as_secs_f64() * self.jitter * draw.clamp(0.0, 1.0);
        let stretched = Duration::try_from_secs_f64(delay.as_secs_f64() + offset).unwrap_or(delay);
        stretched.max(floor.min(self.backoff_cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_interval_parses_go_durations_and_enforces_the_bounds() {
        assert_eq!(poll_interval(Some("1m30s")), Duration::from_secs(90));
        assert_eq!(poll_interval(Some("500ms")), Duration::from_secs(5));
        assert_eq!(poll_interval(None), Duration::from_secs(30));
        assert_eq!(poll_interval(Some("soon")), Duration::from_secs(30));
        assert_eq!(
            poll_interval(Some("99999h")),
            Duration::from_secs(24 * 3600)
        );
        let _ = poll_interval(Some("99999999999999999999h"));
    }

    #[test]
    fn active_phases_poll_at_the_interval_and_finished_ones_slowly() {
        let p = PollPolicy::default();
        let poll = Duration::from_secs(30);
        assert_eq!(p.after_success(Some(&Phase::Running), poll), poll);
        assert_eq!(p.after_success(Some(&Phase::Pending), poll), poll);
        assert_eq!(
            p.after_success(Some(&Phase::Unknown("X".into())), poll),
            poll
        );
        assert_eq!(
            p.after_success(Some(&Phase::Success), poll),
            p.terminal_resync
        );
        assert_eq!(
            p.after_success(Some(&Phase::Cancel), poll),
            p.terminal_resync
        );
    }

    #[test]
    fn transient_failures_back_off_exponentially_to_a_cap() {
        let p = PollPolicy::default();
        let delays: Vec<u64> = (1..=9)
            .map(|n| p.after_failure(n, false, None).as_secs())
            .collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(p.after_failure(u32::MAX, false, None), p.backoff_cap);
    }

    #[test]
    fn retry_after_is_honoured_and_permanent_errors_wait_long() {
        let p = PollPolicy::default();
        assert_eq!(
            p.after_failure(1, false, Some(Duration::from_secs(42))),
            Duration::from_secs(42)
        );
        assert_eq!(p.after_failure(1, true, None), p.permanent_retry);
    }

    #[test]
    fn a_retry_after_beyond_the_cap_waits_the_cap_and_nothing_overflows() {
        let p = PollPolicy::default();
        for huge in [Duration::from_secs(3600), Duration::MAX] {
            assert_eq!(p.after_failure(1, false, Some(huge)), p.backoff_cap);
            assert_eq!(
                p.jittered(Duration::from_secs(5), huge, rand::random()),
                p.backoff_cap
            );
        }
        assert_eq!(
            p.jittered(Duration::MAX, Duration::ZERO, rand::random()),
            Duration::MAX
        );
    }

    #[test]
    fn jitter_only_stretches_within_bounds_and_stays_above_the_floor() {
        let p = PollPolicy::default();
        for _ in 0..1000 {
            let d = p.jittered(Duration::from_secs(100), Duration::ZERO, rand::random());
            assert!(
                d >= Duration::from_secs(100) && d <= Duration::from_secs(110),
                "{d:?}"
            );
            let floored = p.jittered(
                Duration::from_secs(10),
                Duration::from_secs(10),
                rand::random(),
            );
            assert!(floored >= Duration::from_secs(10));
        }
    }
}
