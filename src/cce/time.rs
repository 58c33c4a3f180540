//! CCE timestamps: Go's `time.Time.String()` layout (`2023-11-25 07:20:04.592972 +0000 UTC`)
//! as CCE sends them, and RFC 3339 as a fallback.

use jiff::Timestamp;
use jiff::fmt::strtime;

/// Parses a CCE timestamp; `None` when it is in neither known layout.
pub fn parse(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    parse_go(raw).or_else(|| raw.parse::<Timestamp>().ok())
}

/// `date time offset [zone-name] [m=±monotonic]`: the zone name only repeats the offset
/// (or is an abbreviation like CST that is ambiguous anyway), so the offset decides.
fn parse_go(raw: &str) -> Option<Timestamp> {
    let mut fields = raw.split_ascii_whitespace();
    let (date, time, offset) = (fields.next()?, fields.next()?, fields.next()?);
    for rest in fields {
        let is_zone_name = rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_/".contains(c));
        let is_monotonic = rest
            .strip_prefix("m=")
            .is_some_and(|m| m.parse::<f64>().is_ok());
        if !(is_zone_name || is_monotonic) {
            return None;
        }
    }
    let joined = format!("{date} {time} {offset}");
    strtime::parse("%Y-%m-%d %H:%M:%S%.f %z", &joined)
        .ok()?
        .to_timestamp()
        .ok()
}

/// The Go layout CCE uses, in UTC, for the simulator's answers.
pub fn format_go(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M:%S%.6f +0000 UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid RFC 3339 in test")
    }

    #[test]
    fn parses_go_layout_with_fraction() {
        assert_eq!(
            parse("2023-11-25 07:20:04.592972 +0000 UTC"),
            Some(ts("2023-11-25T07:20:04.592972Z"))
        );
    }

    #[test]
    fn parses_go_layout_without_fraction_and_other_zones() {
        assert_eq!(
            parse("2023-11-25 07:20:04 +0000 UTC"),
            Some(ts("2023-11-25T07:20:04Z"))
        );
        assert_eq!(
            parse("2023-11-25 15:20:04.5 +0800 CST"),
            Some(ts("2023-11-25T07:20:04.5Z"))
        );
        assert_eq!(
            parse("2023-11-25 15:20:04 +0800 +08"),
            Some(ts("2023-11-25T07:20:04Z"))
        );
        assert_eq!(
            parse("2023-11-25 07:20:04.1 +0000 UTC m=+12.345"),
            Some(ts("2023-11-25T07:20:04.1Z"))
        );
        assert_eq!(
            parse("2023-11-25 02:20:04.123456789 -0500 EST"),
            Some(ts("2023-11-25T07:20:04.123456789Z"))
        );
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(
            parse("2023-11-25T07:20:04Z"),
            Some(ts("2023-11-25T07:20:04Z"))
        );
        assert_eq!(
            parse("2023-11-25T15:20:04.25+08:00"),
            Some(ts("2023-11-25T07:20:04.25Z"))
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for raw in [
            "",
            "  ",
            "yesterday",
            "2023-13-45 99:99:99 +0000 UTC",
            "2023-11-25",
            "2023-11-25 07:20:04 +0000 UTC <b>",
            "\u{1F600}",
        ] {
            assert_eq!(parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn go_format_round_trips() {
        let t = ts("2023-11-25T07:20:04.592972Z");
        assert_eq!(format_go(t), "2023-11-25 07:20:04.592972 +0000 UTC");
        assert_eq!(parse(&format_go(t)), Some(t));
    }
}
