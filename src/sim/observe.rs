//! What the simulator served, for tests and benchmarks: a bounded log of requests (when,
//! which route and workflow, which credential, what status, which fault) and counters per
//! route × status × credential. Credentials appear as their access key or a token's
//! fingerprint, never a secret. Pure: the records arrive with their times.

use std::collections::{BTreeMap, VecDeque};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::clock::ser_rfc3339;
use super::route::Route;

/// One request as served.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Arrival order, from 1.
    pub seq: u64,
    /// Arrival time.
    #[serde(serialize_with = "ser_rfc3339")]
    pub time: Timestamp,
    /// Arrival time as milliseconds since the Unix epoch, for spacing arithmetic.
    pub unix_ms: f64,
    /// Time to answer, injected latency included.
    pub duration_ms: f64,
    pub method: String,
    pub path: String,
    /// A [`Route`] name (`show`, `list`, `create`, `cancel`, `show-precheck`, ...), or
    /// `unknown` for other paths.
    pub route: String,
    #[serde(rename = "projectID", skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(rename = "clusterID", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(rename = "workflowID", skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// The pre-check or upgrade task a Show of one names.
    #[serde(rename = "taskID", skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// HTTP status; 0 when the connection was reset instead.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Access key or token fingerprint of an authenticated (or attempted) credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    pub request_id: String,
    /// Faults that hit the request, e.g. `latency+throttle`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// Filter for the request log (admin `GET /_sim/requests?...`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    pub route: Option<String>,
    #[serde(rename = "workflowID", alias = "workflow")]
    pub workflow_id: Option<String>,
    #[serde(rename = "taskID", alias = "task")]
    pub task_id: Option<String>,
    #[serde(rename = "clusterID", alias = "cluster")]
    pub cluster_id: Option<String>,
    pub credential: Option<String>,
    pub status: Option<u16>,
    /// Only records with `seq` greater than this.
    pub since: Option<u64>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    pub route: String,
    pub status: u16,
    pub credential: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub total: u64,
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_credential: BTreeMap<String, u64>,
    /// Every route × status × credential seen (`-` for no credential).
    pub counts: Vec<Count>,
    /// Log entries dropped because the log is bounded (counters are not).
    pub log_dropped: u64,
}

type Key = (String, u16, String);

#[derive(Debug)]
pub struct Observer {
    limit: usize,
    next_seq: u64,
    log: VecDeque<RequestRecord>,
    dropped: u64,
    counts: BTreeMap<Key, u64>,
}

/// Entries kept in the request log; enough for any test, bounded for long benchmarks.
pub const DEFAULT_LOG_LIMIT: usize = 200_000;

impl Default for Observer {
    fn default() -> Self {
        Observer::new(DEFAULT_LOG_LIMIT)
    }
}

impl Observer {
    pub fn new(limit: usize) -> Self {
        Observer {
            limit: limit.max(1),
            next_seq: 0,
            log: VecDeque::new(),
            dropped: 0,
            counts: BTreeMap::new(),
        }
    }

    /// Numbers a request on arrival.
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub fn record(&mut self, r: RequestRecord) {
        let key = (
            r.route.clone(),
            r.status,
            r.credential.clone().unwrap_or_else(|| "-".into()),
        );
        *self.counts.entry(key).or_default() += 1;
        if self.log.len() >= self.limit {
            self.log.pop_front();
            self.dropped += 1;
        }
        // Requests finish out of order; keep the log in arrival order.
        let pos = self.log.partition_point(|x| x.seq < r.seq);
        self.log.insert(pos, r);
    }

    pub fn requests(&self, f: &Filter) -> Vec<RequestRecord> {
        let keep = |r: &&RequestRecord| {
            f.route.as_ref().is_none_or(|x| &r.route == x)
                && f.workflow_id
                    .as_ref()
                    .is_none_or(|x| r.workflow_id.as_ref() == Some(x))
                && f.task_id
                    .as_ref()
                    .is_none_or(|x| r.task_id.as_ref() == Some(x))
                && f.cluster_id
                    .as_ref()
                    .is_none_or(|x| r.cluster_id.as_ref() == Some(x))
                && f.credential
                    .as_ref()
                    .is_none_or(|x| r.credential.as_ref() == Some(x))
                && f.status.is_none_or(|x| r.status == x)
                && f.since.is_none_or(|x| r.seq > x)
        };
        let all: Vec<RequestRecord> = self.log.iter().filter(keep).cloned().collect();
        match f.limit {
            Some(n) if n < all.len() => all[all.len() - n..].to_vec(),
            _ => all,
        }
    }

    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            total: 0,
            by_route: BTreeMap::new(),
            by_status: BTreeMap::new(),
            by_credential: BTreeMap::new(),
            counts: Vec::new(),
            log_dropped: self.dropped,
        };
        for ((route, status, credential), n) in &self.counts {
            stats.total += n;
            *stats.by_route.entry(route.clone()).or_default() += n;
            *stats.by_status.entry(status.to_string()).or_default() += n;
            *stats.by_credential.entry(credential.clone()).or_default() += n;
            stats.counts.push(Count {
                route: route.clone(),
                status: *status,
                credential: credential.clone(),
                count: *n,
            });
        }
        stats
    }

    /// Clears counters and log (sequence numbers keep growing, so `since` stays valid).
    pub fn reset(&mut self) {
        self.log.clear();
        self.counts.clear();
        self.dropped = 0;
    }
}

/// The route's name in logs and counters.
pub fn route_name(route: Option<Route>) -> String {
    route.map_or("unknown", Route::as_str).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, route: &str, status: u16, cred: Option<&str>) -> RequestRecord {
        RequestRecord {
            seq,
            time: Timestamp::from_second(1_700_000_000 + seq as i64).expect("ts"),
            unix_ms: 0.0,
            duration_ms: 0.0,
            method: "GET".into(),
            path: "/".into(),
            route: route.into(),
            project_id: None,
            cluster_id: None,
            workflow_id: Some(format!("w{}", seq % 2)),
            task_id: None,
            status,
            error_code: None,
            credential: cred.map(str::to_string),
            request_id: format!("r{seq}"),
            fault: None,
        }
    }

    #[test]
    fn counts_by_route_status_and_credential_and_filters_the_log() {
        let mut o = Observer::new(3);
        o.record(rec(2, "show", 200, Some("AK")));
        o.record(rec(1, "show", 401, Some("AK")));
        o.record(rec(3, "list", 200, None));
        o.record(rec(4, "show", 200, Some("AK")));
        let s = o.stats();
        assert_eq!(s.total, 4);
        assert_eq!(s.by_route["show"], 3);
        assert_eq!(s.by_status["200"], 3);
        assert_eq!(s.by_credential["-"], 1);
        assert_eq!(s.log_dropped, 1);
        let seqs = |f: Filter| o.requests(&f).iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(Filter::default()), [2, 3, 4]);
        let f = Filter {
            route: Some("show".into()),
            ..Filter::default()
        };
        assert_eq!(seqs(f), [2, 4]);
        let f = Filter {
            since: Some(2),
            limit: Some(1),
            ..Filter::default()
        };
        assert_eq!(seqs(f), [4]);
        let f = Filter {
            workflow_id: Some("w1".into()),
            ..Filter::default()
        };
        assert_eq!(seqs(f), [3]);
        o.reset();
        assert_eq!(o.stats().total, 0);
        assert_eq!(o.next_seq(), 1);
    }
}
