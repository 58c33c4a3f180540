//! Lengths of time as people type and read them: one parser for the flags and
//! `spec.pollInterval`, one formatter for status, Events and the `get` table.

use std::time::Duration;

use jiff::Timestamp;

/// Parses a length of time such as `30s`, `5m`, `1h30m` or `500ms` (Go's notation, which
/// Kubernetes users know; ISO 8601 works too). Negative lengths are refused.
pub fn parse(raw: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = raw
        .trim()
        .parse()
        .map_err(|e| format!("{raw:?} is not a duration like 10s or 1m30s: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{raw:?} must not be negative"))
}

/// [`parse`] for settings where nothing would ever happen in zero time (timeouts).
pub fn parse_positive(raw: &str) -> Result<Duration, String> {
    match parse(raw)? {
        d if d.is_zero() => Err(format!("{raw:?} must be longer than zero")),
        d => Ok(d),
    }
}

/// How much of a length of time to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Down to the second, hours the largest unit: `42s`, `9m5s`, `1h2m3s`. Status keeps
    /// task durations this way, so they must not change between releases.
    Seconds,
    /// The two largest units up to years, for reading at a glance: `9m5s`, `3h20m`,
    /// `12d3h`, `3y3d`.
    Coarse,
}

/// `d` in the compact notation [`parse`] reads, cut to `precision`.
pub fn format(d: Duration, precision: Precision) -> String {
    const UNITS: [(u64, &str); 5] = [
        (365 * 86_400, "y"),
        (86_400, "d"),
        (3600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    let (units, shown) = match precision {
        Precision::Seconds => (&UNITS[2..], 3),
        Precision::Coarse => (&UNITS[..], 2),
    };
    let mut secs = d.as_secs();
    let largest = units
        .iter()
        .position(|(size, _)| secs >= *size)
        .unwrap_or(units.len() - 1);
    let mut out = String::new();
    for (size, name) in units[largest..].iter().take(shown) {
        out.push_str(&format!("{}{name}", secs / size));
        secs %= size;
    }
    out
}

/// The time from `from` to `to`; zero when `to` comes first.
pub fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

/// Waits that double after each failure in a row, from `base` up to `cap`: the one backoff
/// of CCE reads and credential exchanges alike (`--backoff-base`, `--backoff-cap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The flags' defaults.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(5 * 60),
    };

    /// The wait after the `failures`-th failure in a row (1 for the first).
    pub fn after(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        self.base.saturating_mul(1u32 << exponent).min(self.cap)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations_and_refuses_the_rest() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse(" 5m "), Ok(Duration::from_secs(300)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert!(parse("soon").is_err());
        assert!(parse("-5s").is_err());
        assert!(parse_positive("0s").is_err());
        assert_eq!(parse_positive("10s"), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn formats_at_second_precision_and_coarsely() {
        for (secs, seconds, coarse) in [
            (0, "0s", "0s"),
            (42, "42s", "42s"),
            (545, "9m5s", "9m5s"),
            (3723, "1h2m3s", "1h2m"),
            (12_000, "3h20m0s", "3h20m"),
            (90_000, "25h0m0s", "1d1h"),
            (1_050_000, "291h40m0s", "12d3h"),
            (94_867_200, "26352h0m0s", "3y3d"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(format(d, Precision::Seconds), seconds, "{secs}s");
            assert_eq!(format(d, Precision::Coarse), coarse, "{secs}s");
        }
        assert_eq!(
            format(Duration::from_millis(1999), Precision::Seconds),
            "1s"
        );
    }

    #[test]
    fn what_is_formatted_parses_back() {
        for secs in [0, 59, 61, 3599, 3601, 86_399, 400_000] {
            let text = format(Duration::from_secs(secs), Precision::Seconds);
            assert_eq!(parse(&text), Ok(Duration::from_secs(secs)), "{text}");
        }
    }

    #[test]
    fn elapsed_time_is_never_negative() {
        let t = |s: &str| -> Timestamp { s.parse().expect("valid") };
        let (a, b) = (t("2024-01-01T00:00:00Z"), t("2024-01-01T01:02:03Z"));
        assert_eq!(elapsed(a, b), Duration::from_secs(3723));
        assert_eq!(elapsed(b, a), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_from_its_base_to_its_cap() {
        let b = Backoff::DEFAULT;
        assert_eq!(b.after(1), b.base);
        assert_eq!(b.after(2), b.base * 2);
        assert_eq!(b.after(40), b.cap);
        assert_eq!(b.after(u32::MAX), b.cap);
    }
}
