//! The simulator's time: the [`Clock`] it reads (the wall clock in the server, a fixed or
//! stepped one in tests), the arithmetic on instants that never overflows, scenario seconds
//! scaled by `--speed`, and the RFC 3339 text of the admin API. A leaf: it uses no other
//! simulator module. Pure except [`SystemClock`], which reads the wall clock.

use jiff::{SignedDuration, Timestamp};
use serde::Serializer;

/// Where the simulator reads the time. Tests inject a fixed or stepped clock; the server
/// uses the wall clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// `secs` scenario seconds as real time at `speed` scenario seconds per second.
pub fn scaled(speed: f64, secs: f64) -> SignedDuration {
    SignedDuration::try_from_secs_f64(secs / speed).unwrap_or(SignedDuration::MAX)
}

/// `t + d`, saturating: a scenario may ask for times past what jiff represents.
pub fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Serializes a timestamp as RFC 3339 with microseconds.
pub fn ser_rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_failing() {
        let t: Timestamp = "2025-01-01T00:00:00Z".parse().expect("ts");
        assert_eq!(plus(t, SignedDuration::MAX), Timestamp::MAX);
        assert_eq!(plus(t, SignedDuration::MIN), Timestamp::MIN);
        assert_eq!(scaled(60.0, 300.0), SignedDuration::from_secs(5));
        assert_eq!(scaled(0.0, 1.0), SignedDuration::MAX);
    }
}
