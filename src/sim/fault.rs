//! Injected faults: their spec (shared by `--fault`, scenario files and the admin API) and
//! the decision which of them hits a request. Pure: the caller passes the time.
//!
//! A fault applies to requests of one route (or, without one, to the four upgrade-workflow
//! routes; a diagnostic read is hit only by a fault that names its route) while it is *armed*: for its
//! next `count` matching requests, and/or inside a time window of wall-clock seconds
//! counted from the moment it was set (`afterSeconds`, `forSeconds`). Fault windows are
//! not scaled by `--speed`: they are about the transport, not the upgrade.
//! Latency delays a request and lets it continue (it may meet another fault); of the other
//! kinds the first armed one, in the order they were set, decides the answer.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::clock::ser_rfc3339;
use super::route::Route;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Delay the answer by `latencyMs`.
    Latency,
    /// 429 with `Retry-After: retryAfter` and a gateway throttling body.
    #[serde(alias = "429")]
    Throttle,
    /// A 5xx (`status`, default 503).
    #[serde(alias = "5xx")]
    Error,
    /// 200 with the first half of the real answer's body.
    Malformed,
    /// Drop the TCP connection without an answer.
    Reset,
    /// 403 with CCE's permission-denied body: an API not granted to the account.
    #[serde(alias = "403")]
    Forbidden,
    /// 404 with CCE's not-found body.
    #[serde(alias = "404")]
    NotFound,
    /// 200 with the real answer padded with trailing spaces (still valid JSON) to `bytes`.
    Oversized,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Throttle => "throttle",
            FaultKind::Error => "error",
            FaultKind::Malformed => "malformed",
            FaultKind::Reset => "reset",
            FaultKind::Forbidden => "forbidden",
            FaultKind::NotFound => "notfound",
            FaultKind::Oversized => "oversized",
        }
    }

    fn parse(name: &str) -> Option<FaultKind> {
        Some(match name {
            "latency" => FaultKind::Latency,
            "throttle" | "429" => FaultKind::Throttle,
            "error" | "5xx" => FaultKind::Error,
            "malformed" => FaultKind::Malformed,
            "reset" => FaultKind::Reset,
            "forbidden" | "403" => FaultKind::Forbidden,
            "notfound" | "404" => FaultKind::NotFound,
            "oversized" => FaultKind::Oversized,
            _ => return None,
        })
    }
}

/// One fault as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// Only this route; the four upgrade-workflow routes when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// Only the next N matching requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The window opens this many seconds after the fault was set (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seconds: Option<f64>,
    /// The window stays open this long (default: until removed or the count is used up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Seconds in the 429's `Retry-After` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The 5xx status (default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The size of an oversized answer (default [`DEFAULT_OVERSIZED_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// More than the operator's client reads of one answer.
pub const DEFAULT_OVERSIZED_BYTES: u64 = 5 << 20;
/// The largest oversized answer a fault may ask for.
pub const MAX_OVERSIZED_BYTES: u64 = 64 << 20;

impl FaultSpec {
    pub fn new(kind: FaultKind) -> Self {
        FaultSpec {
            kind,
            route: None,
            count: None,
            after_seconds: None,
            for_seconds: None,
            latency_ms: None,
            retry_after: None,
            status: None,
            bytes: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let kind = self.kind.as_str();
        if self.count == Some(0) {
            return Err(format!("{kind}: count must be at least 1"));
        }
        for (name, v) in [
            ("afterSeconds", self.after_seconds),
            ("forSeconds", self.for_seconds),
        ] {
            if let Some(v) = v
                && !(0.0..1e9).contains(&v)
            {
                return Err(format!("{kind}: {name} must be a number of seconds >= 0"));
            }
        }
        match (self.kind, self.latency_ms) {
            (FaultKind::Latency, None) => return Err("latency: latencyMs is required".into()),
            (FaultKind::Latency, Some(ms)) if ms > 600_000 => {
                return Err("latency: latencyMs must be at most 600000".into());
            }
            (FaultKind::Latency, _) | (_, None) => {}
            (_, Some(_)) => return Err(format!("{kind}: latencyMs is for latency faults")),
        }
        match (self.kind, self.status) {
            (FaultKind::Error, Some(s)) if !(500..=599).contains(&s) => {
                return Err(format!("error: status {s} is not a 5xx"));
            }
            (FaultKind::Error, _) | (_, None) => {}
            (_, Some(_)) => return Err(format!("{kind}: status is for error faults")),
        }
        match (self.kind, self.retry_after) {
            (FaultKind::Throttle, Some(s)) if s > 86_400 => {
                return Err("throttle: retryAfter must be at most 86400".into());
            }
            (FaultKind::Throttle, _) | (_, None) => {}
            (_, Some(_)) => return Err(format!("{kind}: retryAfter is for throttle faults")),
        }
        match (self.kind, self.bytes) {
            (FaultKind::Oversized, Some(b)) if b > MAX_OVERSIZED_BYTES => {
                return Err(format!(
                    "oversized: bytes must be at most {MAX_OVERSIZED_BYTES}"
                ));
            }
            (FaultKind::Oversized, _) | (_, None) => {}
            (_, Some(_)) => return Err(format!("{kind}: bytes is for oversized faults")),
        }
        Ok(())
    }

    /// Parses the `--fault` form: `KIND[:key=value,...]` with keys `route`, `count`,
    /// `after`, `for` (seconds), `ms` (latency), `retry-after` (seconds), `status`, `bytes`.
    /// Examples: `throttle:route=show,count=2,retry-after=1`, `forbidden:route=show-precheck`.
    pub fn parse_flag(text: &str) -> Result<FaultSpec, String> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        let kind = FaultKind::parse(kind.trim()).ok_or_else(|| {
            format!(
                "unknown fault kind {kind:?} (latency, throttle|429, error|5xx, malformed, \
                 reset, forbidden|403, notfound|404, oversized)"
            )
        })?;
        let mut spec = FaultSpec::new(kind);
        for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?}: expected key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            let int = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{key}: {v:?} is not a whole number"))
            };
            let secs = |v: &str| {
                v.parse::<f64>()
                    .map_err(|_| format!("{key}: {v:?} is not a number of seconds"))
            };
            match key {
                "route" => {
                    spec.route = Some(Route::parse(value).ok_or_else(|| {
                        let known: Vec<_> = Route::ALL.iter().map(|r| r.as_str()).collect();
                        format!("route {value:?} is not one of {}", known.join(", "))
                    })?);
                }
                "count" => spec.count = Some(int(value)?),
                "after" => spec.after_seconds = Some(secs(value)?),
                "for" => spec.for_seconds = Some(secs(value)?),
                "ms" => spec.latency_ms = Some(int(value)?),
                "retry-after" => spec.retry_after = Some(int(value)?),
                "bytes" => spec.bytes = Some(int(value)?),
                "status" => {
                    spec.status = Some(
                        value
                            .parse()
                            .map_err(|_| format!("status {value:?} is not a number"))?,
                    );
                }
                other => return Err(format!("unknown fault option {other:?}")),
            }
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// What a fault does to the answer (latency aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Throttle { retry_after: u64 },
    Error { status: u16 },
    Malformed,
    Reset,
    Forbidden,
    NotFound,
    Oversized { bytes: u64 },
}

/// The faults that hit one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub latency: Duration,
    pub action: Option<Action>,
    /// Kinds that fired, for the request log.
    pub fired: Vec<FaultKind>,
}

impl Decision {
    pub fn label(&self) -> Option<String> {
        if self.fired.is_empty() {
            return None;
        }
        let names: Vec<_> = self.fired.iter().map(|k| k.as_str()).collect();
        Some(names.join("+"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveFault {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
    #[serde(serialize_with = "ser_rfc3339")]
    pub set_at: Timestamp,
    pub fired: u64,
}

impl ActiveFault {
    fn window(&self) -> (Timestamp, Option<Timestamp>) {
        let after = self.spec.after_seconds.unwrap_or(0.0);
        let start = add_secs(self.set_at, after);
        let end = self.spec.for_seconds.map(|f| add_secs(start, f));
        (start, end)
    }

    fn used_up(&self, now: Timestamp) -> bool {
        let (_, end) = self.window();
        self.spec.count.is_some_and(|c| self.fired >= c) || end.is_some_and(|end| now >= end)
    }

    fn armed_for(&self, route: Route, now: Timestamp) -> bool {
        let (start, _) = self.window();
        self.spec.route.map_or(route.is_workflow(), |r| r == route)
            && now >= start
            && !self.used_up(now)
    }
}

fn add_secs(t: Timestamp, secs: f64) -> Timestamp {
    SignedDuration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The faults currently set.
#[derive(Debug, Default)]
pub struct FaultSet {
    next_id: u64,
    faults: Vec<ActiveFault>,
}

impl FaultSet {
    /// Sets a validated fault; returns its id.
    pub fn add(&mut self, spec: FaultSpec, now: Timestamp) -> Result<u64, String> {
        spec.validate()?;
        self.next_id += 1;
        self.faults.push(ActiveFault {
            id: self.next_id,
            spec,
            set_at: now,
            fired: 0,
        });
        Ok(self.next_id)
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.faults.len();
        self.faults.retain(|f| f.id != id);
        self.faults.len() != before
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    /// The faults not used up yet.
    pub fn list(&mut self, now: Timestamp) -> Vec<ActiveFault> {
        self.faults.retain(|f| !f.used_up(now));
        self.faults.clone()
    }

    /// Which faults hit a request to `route` arriving at `now`; counts them as fired.
    pub fn decide(&mut self, route: Route, now: Timestamp) -> Decision {
        let mut decision = Decision::default();
        for fault in &mut self.faults {
            if !fault.armed_for(route, now) {
                continue;
            }
            let action = match fault.spec.kind {
                FaultKind::Latency => {
                    decision.latency +=
                        Duration::from_millis(fault.spec.latency_ms.unwrap_or_default());
                    None
                }
                _ if decision.action.is_some() => continue,
                FaultKind::Throttle => Some(Action::Throttle {
                    retry_after: fault.spec.retry_after.unwrap_or(1),
                }),
                FaultKind::Error => Some(Action::Error {
                    status: fault.spec.status.unwrap_or(503),
                }),
                FaultKind::Malformed => Some(Action::Malformed),
                FaultKind::Reset => Some(Action::Reset),
                FaultKind::Forbidden => Some(Action::Forbidden),
                FaultKind::NotFound => Some(Action::NotFound),
                FaultKind::Oversized => Some(Action::Oversized {
                    bytes: fault.spec.bytes.unwrap_or(DEFAULT_OVERSIZED_BYTES),
                }),
            };
            fault.fired += 1;
            decision.fired.push(fault.spec.kind);
            if action.is_some() {
                decision.action = action;
            }
        }
        self.faults.retain(|f| !f.used_up(now));
        decision
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if let Some(r) = self.route {
            write!(f, " route={}", r.as_str())?;
        }
        if let Some(c) = self.count {
            write!(f, " count={c}")?;
        }
        if let Some(a) = self.after_seconds {
            write!(f, " after={a}s")?;
        }
        if let Some(d) = self.for_seconds {
            write!(f, " for={d}s")?;
        }
        if let Some(ms) = self.latency_ms {
            write!(f, " ms={ms}")?;
        }
        if let Some(r) = self.retry_after {
            write!(f, " retry-after={r}")?;
        }
        if let Some(s) = self.status {
            write!(f, " status={s}")?;
        }
        if let Some(b) = self.bytes {
            write!(f, " bytes={b}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid")
    }

    #[test]
    fn flag_form_parses_every_option() {
        let spec = FaultSpec::parse_flag("429:route=show,count=2,retry-after=3").expect("ok");
        assert_eq!(spec.kind, FaultKind::Throttle);
        assert_eq!(spec.route, Some(Route::Show));
        assert_eq!(spec.count, Some(2));
        assert_eq!(spec.retry_after, Some(3));
        let spec = FaultSpec::parse_flag("latency:ms=250,after=1.5,for=10").expect("ok");
        assert_eq!(spec.latency_ms, Some(250));
        assert_eq!(spec.after_seconds, Some(1.5));
        assert_eq!(spec.for_seconds, Some(10.0));
        assert_eq!(
            FaultSpec::parse_flag("5xx:status=502").expect("ok").status,
            Some(502)
        );
        assert_eq!(
            FaultSpec::parse_flag("reset").expect("ok").kind,
            FaultKind::Reset
        );
        for bad in [
            "boom",
            "latency",
            "error:status=404",
            "reset:ms=3",
            "throttle:route=delete",
            "throttle:count=0",
            "throttle:count",
            "malformed:for=-1",
            "throttle:color=red",
            "forbidden:route=precheck",
            "oversized:bytes=999999999999",
            "notfound:bytes=10",
        ] {
            assert!(FaultSpec::parse_flag(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn diagnostic_routes_are_hit_only_by_faults_that_name_them() {
        let mut set = FaultSet::default();
        for f in [
            "error",
            "forbidden:route=show-precheck",
            "404:route=show-upgrade-task,count=1",
            "oversized:route=list-snapshots,bytes=1000",
        ] {
            set.add(FaultSpec::parse_flag(f).expect(f), t(0))
                .expect("add");
        }
        assert_eq!(
            set.decide(Route::Show, t(1)).action,
            Some(Action::Error { status: 503 })
        );
        assert_eq!(set.decide(Route::ShowCluster, t(1)).action, None);
        for _ in 0..2 {
            assert_eq!(
                set.decide(Route::ShowPrecheck, t(1)).action,
                Some(Action::Forbidden)
            );
        }
        assert_eq!(
            set.decide(Route::ShowUpgradeTask, t(1)).action,
            Some(Action::NotFound)
        );
        assert_eq!(set.decide(Route::ShowUpgradeTask, t(1)).action, None);
        assert_eq!(
            set.decide(Route::ListSnapshots, t(1)).action,
            Some(Action::Oversized { bytes: 1000 })
        );
        assert_eq!(
            FaultSpec::parse_flag("oversized").expect("ok").to_string(),
            "oversized"
        );
    }

    #[test]
    fn counted_fault_hits_the_next_n_matching_requests_only() {
        let mut set = FaultSet::default();
        set.add(
            FaultSpec::parse_flag("throttle:route=show,count=2").expect("ok"),
            t(0),
        )
        .expect("add");
        assert_eq!(set.decide(Route::List, t(1)).action, None);
        for _ in 0..2 {
            assert_eq!(
                set.decide(Route::Show, t(1)).action,
                Some(Action::Throttle { retry_after: 1 })
            );
        }
        assert_eq!(set.decide(Route::Show, t(1)), Decision::default());
        assert!(set.list(t(1)).is_empty());
    }

    #[test]
    fn windowed_fault_applies_only_inside_its_window() {
        let mut set = FaultSet::default();
        set.add(
            FaultSpec::parse_flag("error:after=10,for=5").expect("ok"),
            t(0),
        )
        .expect("add");
        assert_eq!(set.decide(Route::Create, t(9)).action, None);
        assert_eq!(
            set.decide(Route::Create, t(10)).action,
            Some(Action::Error { status: 503 })
        );
        assert_eq!(
            set.decide(Route::Cancel, t(14)).action,
            Some(Action::Error { status: 503 })
        );
        assert_eq!(set.decide(Route::Cancel, t(15)).action, None);
        assert!(set.list(t(15)).is_empty());
    }

    #[test]
    fn latency_adds_up_and_the_first_other_fault_decides() {
        let mut set = FaultSet::default();
        for f in [
            "latency:ms=100",
            "latency:ms=50,count=1",
            "reset:count=1",
            "malformed",
        ] {
            set.add(FaultSpec::parse_flag(f).expect("ok"), t(0))
                .expect("add");
        }
        let d = set.decide(Route::Show, t(0));
        assert_eq!(d.latency, Duration::from_millis(150));
        assert_eq!(d.action, Some(Action::Reset));
        assert_eq!(d.label().as_deref(), Some("latency+latency+reset"));
        let d = set.decide(Route::Show, t(0));
        assert_eq!(d.latency, Duration::from_millis(100));
        assert_eq!(d.action, Some(Action::Malformed));
        assert_eq!(set.list(t(0)).len(), 2);
        let first = set.list(t(0))[0].id;
        assert!(set.remove(first));
        set.clear();
        assert!(set.list(t(0)).is_empty());
    }
}
