//! Where CCE and IAM calls may go: region → regional endpoint (cce-api.md §1), explicit
//! endpoints, and one allow-list per service that keeps a watch from pointing the
//! operator's credentials at a host of its choosing, or at plain http unless whoever runs
//! the operator opted in.
//!
//! An allow-list entry is a host with an optional port:
//! - `cce.cn-north-4.myhuaweicloud.com` admits that host only (exact);
//! - `*.example.org` admits every host under `example.org`, at any depth, but not
//!   `example.org` itself (suffix);
//! - a label written `{region}` stands for one Huawei region id such as `ap-southeast-1`
//!   (two letters, a word, a number: the shape of every region in Huawei's SDK tables);
//! - `127.0.0.1` and `[::1]` admit that address only;
//! - without a port the endpoint must use 443; `host:8443` admits that port only, and
//!   `host:*` any port (for simulators on random ports).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::{Host, Url};

use super::error::CceError;

/// CCE's regional hosts, the shape of every entry of Huawei's SDK region table
/// (huaweicloudsdkcce 3.1.219, `v3/region/cce_region.py`): `myhuaweicloud.com`, and
/// `myhuaweicloud.eu` for `eu-west-101`.
pub const DEFAULT_CCE_ENDPOINTS: &[&str] = &[
    "cce.{region}.myhuaweicloud.com",
    "cce.{region}.myhuaweicloud.eu",
];

/// The hosts credentials are exchanged at: IAM's global endpoint (the SDK core's
/// `IamHelper.DEFAULT_ENDPOINT`) and its regional ones (`auth/endpoint.py`; Huawei's EU
/// site names `iam.eu-west-101.myhuaweicloud.eu`), with their `.eu` twins, and STS's
/// regional ones for assume-with-oidc (`auth/endpoint.py`, default
/// `sts.cn-north-4.myhuaweicloud.com`).
pub const DEFAULT_IAM_ENDPOINTS: &[&str] = &[
    "iam.myhuaweicloud.com",
    "iam.myhuaweicloud.eu",
    "iam.{region}.myhuaweicloud.com",
    "iam.{region}.myhuaweicloud.eu",
    "sts.{region}.myhuaweicloud.com",
];

/// What the operator and `get` log once at start when insecure endpoints are allowed.
pub const INSECURE_WARNING: &str = "insecure endpoints are allowed: CCE and IAM calls may go over plain http to any host and port, and credentials with them; never do this outside tests";

/// The service an allow-list serves, named in its refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Cce,
    Iam,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cce => "CCE",
            Self::Iam => "IAM",
        })
    }
}

/// One entry of an allow-list (see the module's documentation for the spelling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedEndpoint {
    host: HostPattern,
    port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(Vec<Label>),
    Under(Vec<Label>),
    Address(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Literal(String),
    Region,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    Https,
    Only(u16),
    Any,
}

const REGION_LABEL: &str = "{region}";
const HTTPS_PORT: u16 = 443;

impl FromStr for AllowedEndpoint {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let text = raw.trim().to_ascii_lowercase();
        if text.contains('/') || text.contains('@') {
            return Err(format!(
                "{raw:?} is not a host: an entry is a host with an optional port, without scheme or path"
            ));
        }
        let (host, port) = split_port(&text).map_err(|why| format!("{raw:?}: {why}"))?;
        let host = parse_host(host).map_err(|why| format!("{raw:?}: {why}"))?;
        Ok(Self { host, port })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; a bare IPv6 address has no port.
fn split_port(text: &str) -> Result<(&str, PortRule), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address lacks its closing bracket")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("text after the IPv6 address")?,
                ),
            ),
        }
    } else if text.matches(':').count() == 1 {
        let (host, port) = text.split_once(':').unwrap_or((text, ""));
        (host, Some(port))
    } else {
        (text, None)
    };
    let port = match port {
        None => PortRule::Https,
        Some("*") => PortRule::Any,
        Some(port) => match port.parse::<u16>() {
            Ok(n) if n > 0 => PortRule::Only(n),
            _ => {
                return Err(format!(
                    "the port {port:?} is not a number from 1 to 65535 or *"
                ));
            }
        },
    };
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if let Ok(address) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Address(address));
    }
    if let Some(domain) = host.strip_prefix("*.") {
        let labels = parse_labels(domain)?;
        if labels.len() < 2 {
            return Err(
                "a suffix entry names a domain of two labels or more, as *.example.org".into(),
            );
        }
        return Ok(HostPattern::Under(labels));
    }
    if let Some(domain) = host.strip_prefix('.') {
        return Err(format!(
            "write *.{domain} to allow every host under {domain}, or {domain} for that host only"
        ));
    }
    Ok(HostPattern::Exact(parse_labels(host)?))
}

fn parse_labels(domain: &str) -> Result<Vec<Label>, String> {
    if domain.is_empty() {
        return Err("the host is empty".into());
    }
    domain
        .split('.')
        .map(|label| match label {
            REGION_LABEL => Ok(Label::Region),
            _ if !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Ok(Label::Literal(label.to_string()))
            }
            _ => Err(format!(
                "{label:?} is not a DNS label (letters, digits, dashes; * only as the first label of *.domain, {{region}} for a region id)"
            )),
        })
        .collect()
}

impl AllowedEndpoint {
    /// Whether `host` on `port` is admitted.
    fn admits(&self, host: &Host<&str>, port: u16) -> bool {
        let port_ok = match self.port {
            PortRule::Https => port == HTTPS_PORT,
            PortRule::Only(only) => port == only,
            PortRule::Any => true,
        };
        port_ok
            && match (&self.host, host) {
                (HostPattern::Address(IpAddr::V4(a)), Host::Ipv4(b)) => a == b,
                (HostPattern::Address(IpAddr::V6(a)), Host::Ipv6(b)) => a == b,
                (HostPattern::Exact(labels), Host::Domain(domain)) => {
                    let got: Vec<&str> = domain.split('.').collect();
                    got.len() == labels.len() && labels_match(labels, &got)
                }
                (HostPattern::Under(labels), Host::Domain(domain)) => {
                    let got: Vec<&str> = domain.split('.').collect();
                    got.len() > labels.len()
                        && labels_match(labels, &got[got.len() - labels.len()..])
                }
                _ => false,
            }
    }
}

fn labels_match(pattern: &[Label], got: &[&str]) -> bool {
    pattern.iter().zip(got).all(|(want, got)| match want {
        Label::Literal(want) => want == got,
        Label::Region => is_region_label(got),
    })
}

/// `ap-southeast-1`, `my-kualalumpur-1`, `eu-west-101`: every region id in Huawei's SDK
/// tables has this shape. Tighter than [`is_sane_region`] on purpose: a looser label would
/// admit hosts such as `cce.obs-website.myhuaweicloud.com`, which a bucket owner names.
fn is_region_label(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    matches!(parts.as_slice(), [area, place, number]
        if area.len() == 2
            && area.bytes().all(|b| b.is_ascii_lowercase())
            && !place.is_empty()
            && place.bytes().all(|b| b.is_ascii_lowercase())
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for AllowedEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels = |labels: &[Label]| {
            labels
                .iter()
                .map(|l| match l {
                    Label::Literal(s) => s.as_str(),
                    Label::Region => REGION_LABEL,
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        match &self.host {
            HostPattern::Exact(l) => f.write_str(&labels(l))?,
            HostPattern::Under(l) => write!(f, "*.{}", labels(l))?,
            HostPattern::Address(IpAddr::V4(a)) => write!(f, "{a}")?,
            HostPattern::Address(IpAddr::V6(a)) => write!(f, "[{a}]")?,
        }
        match self.port {
            PortRule::Https => Ok(()),
            PortRule::Only(p) => write!(f, ":{p}"),
            PortRule::Any => f.write_str(":*"),
        }
    }
}

/// Which endpoints of one service the client may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPolicy {
    pub service: Service,
    pub allowed: Vec<AllowedEndpoint>,
    /// Lifts every check: plain `http://`, any host, any port. For the simulator and tests;
    /// the operator says so at start and in a metric.
    pub allow_insecure: bool,
}

impl Default for EndpointPolicy {
    /// CCE's public endpoints over https only.
    fn default() -> Self {
        Self::cce()
    }
}

impl EndpointPolicy {
    /// CCE's public regional endpoints ([`DEFAULT_CCE_ENDPOINTS`]).
    pub fn cce() -> Self {
        Self::with_defaults(Service::Cce, DEFAULT_CCE_ENDPOINTS)
    }

    /// IAM's and STS's public endpoints ([`DEFAULT_IAM_ENDPOINTS`]).
    pub fn iam() -> Self {
        Self::with_defaults(Service::Iam, DEFAULT_IAM_ENDPOINTS)
    }

    fn with_defaults(service: Service, entries: &[&str]) -> Self {
        Self {
            service,
            allowed: entries
                .iter()
                .map(|e| e.parse().expect("the default entries are valid"))
                .collect(),
            allow_insecure: false,
        }
    }

    /// The list plus `extra` entries; empty ones are skipped (a trailing comma in an
    /// environment variable), a malformed one is an error naming it.
    pub fn with_extra<S: AsRef<str>>(
        mut self,
        extra: impl IntoIterator<Item = S>,
    ) -> Result<Self, CceError> {
        for entry in extra {
            let entry = entry.as_ref();
            if entry.trim().is_empty() {
                continue;
            }
            let parsed = entry.parse().map_err(|why| CceError::InvalidConfig {
                reason: format!("allowed {} endpoint {why}", self.service),
            })?;
            self.allowed.push(parsed);
        }
        Ok(self)
    }

    /// The endpoint to call: `endpoint` when given (only its scheme, host and port count,
    /// like Huawei's SDK; no scheme means https), else the region's public CCE endpoint.
    /// Either way the result must pass [`Self::check`].
    pub fn resolve(&self, region: Option<&str>, endpoint: Option<&str>) -> Result<Url, CceError> {
        let endpoint = endpoint.map(str::trim).filter(|e| !e.is_empty());
        let region = region.map(str::trim).filter(|r| !r.is_empty());
        let url = match (endpoint, region) {
            (Some(endpoint), _) => parse_endpoint(endpoint)?,
            (None, Some(region)) => region_endpoint(region)?,
            (None, None) => {
                return Err(CceError::InvalidEndpoint {
                    reason: "give a region or an endpoint".into(),
                });
            }
        };
        self.check(&url)?;
        Ok(url)
    }

    /// Refuses plain http, and hosts and ports no entry admits, unless insecure endpoints
    /// were allowed.
    pub fn check(&self, url: &Url) -> Result<(), CceError> {
        let refuse = |reason: String| CceError::EndpointNotAllowed {
            origin: url.origin().ascii_serialization(),
            reason,
        };
        if !matches!(url.scheme(), "https" | "http") {
            return Err(CceError::InvalidEndpoint {
                reason: "the scheme must be https (or http where allowed)".into(),
            });
        }
        if self.allow_insecure {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(refuse(
                "plain http is refused; use https, or allow insecure endpoints explicitly".into(),
            ));
        }
        let port = url.port_or_known_default().unwrap_or(HTTPS_PORT);
        let admitted = url
            .host()
            .is_some_and(|host| self.allowed.iter().any(|e| e.admits(&host, port)));
        if admitted {
            Ok(())
        } else {
            Err(refuse(format!(
                "it is not on the {} endpoint allow-list ({}; port 443 unless an entry names one)",
                self.service,
                self.entries()
            )))
        }
    }

    fn entries(&self) -> String {
        self.allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The allow-list flags, the same for `run` and `get`.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointArgs {
    /// Also allow this CCE endpoint, besides CCE's public regional hosts
    /// (cce.{region}.myhuaweicloud.com and .eu). Exact host unless written *.domain (every
    /// host under it); port 443 unless given as host:port (host:* for any port); {region}
    /// stands for one region id. Repeatable or comma-separated.
    #[arg(
        long = "allowed-cce-endpoint",
        env = "ALLOWED_CCE_ENDPOINTS",
        value_delimiter = ',',
        alias = "allowed-endpoint-host",
        alias = "allowed-endpoint-suffix"
    )]
    pub allowed_cce_endpoints: Vec<String>,
    /// Also allow this IAM or STS endpoint for credential exchanges, besides IAM's global
    /// and regional hosts and STS's regional ones (iam.myhuaweicloud.com,
    /// iam.{region}.myhuaweicloud.com, sts.{region}.myhuaweicloud.com, and .eu). Same
    /// spelling as --allowed-cce-endpoint.
    #[arg(
        long = "allowed-iam-endpoint",
        env = "ALLOWED_IAM_ENDPOINTS",
        value_delimiter = ','
    )]
    pub allowed_iam_endpoints: Vec<String>,
    /// Allow plain http:// and any host and port, for CCE and IAM alike, credentials
    /// included. For the simulator and tests only: logged as a warning at start and
    /// exported as cce_upgrade_watch_insecure_endpoints_allowed.
    #[arg(
        long = "allow-insecure-endpoints",
        env = "ALLOW_INSECURE_ENDPOINTS",
        alias = "allow-insecure-endpoint"
    )]
    pub allow_insecure_endpoints: bool,
}

impl EndpointArgs {
    /// `config` with these allow-lists.
    pub fn apply(&self, config: super::ClientConfig) -> Result<super::ClientConfig, CceError> {
        config.with_endpoints(
            &self.allowed_cce_endpoints,
            &self.allowed_iam_endpoints,
            self.allow_insecure_endpoints,
        )
    }
}

/// `https://cce.{region}.myhuaweicloud.com`, or `.myhuaweicloud.eu` for `eu-west-101`.
pub fn region_endpoint(region: &str) -> Result<Url, CceError> {
    if !is_sane_region(region) {
        return Err(CceError::InvalidEndpoint {
            reason:
                "the region must look like `ap-southeast-1` (lower-case letters, digits and dashes)"
                    .into(),
        });
    }
    let domain = match region {
        "eu-west-101" => "myhuaweicloud.eu",
        _ => "myhuaweicloud.com",
    };
    Url::parse(&format!("https://cce.{region}.{domain}/")).map_err(|e| CceError::InvalidEndpoint {
        reason: format!("region gives no valid URL: {e}"),
    })
}

fn is_sane_region(region: &str) -> bool {
    let mut parts = region.split('-');
    let first = parts.next().unwrap_or_default();
    region.len() <= 64
        && first.len() >= 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && region.contains('-')
        && parts.all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn parse_endpoint(raw: &str) -> Result<Url, CceError> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    // The raw text may carry a password in user info: never echo it.
    let mut url = Url::parse(&with_scheme).map_err(|e| CceError::InvalidEndpoint {
        reason: format!("not a URL ({e})"),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(CceError::InvalidEndpoint {
            reason: "the scheme must be https (or http where allowed)".into(),
        });
    }
    if url.host().is_none() {
        return Err(CceError::InvalidEndpoint {
            reason: "the endpoint has no host".into(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CceError::InvalidEndpoint {
            reason: "the endpoint must not contain user info".into(),
        });
    }
    // The API lives at the endpoint's root, as with Huawei's SDK.
    url.set_path("/");
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insecure() -> EndpointPolicy {
        EndpointPolicy {
            allow_insecure: true,
            ..EndpointPolicy::default()
        }
    }

    fn admitted(policy: &EndpointPolicy, endpoint: &str) -> bool {
        policy.resolve(None, Some(endpoint)).is_ok()
    }

    #[test]
    fn regions_map_to_public_endpoints_with_the_eu_exception() {
        let policy = EndpointPolicy::default();
        assert_eq!(
            policy
                .resolve(Some("ap-southeast-1"), None)
                .expect("ok")
                .as_str(),
            "https://cce.ap-southeast-1.myhuaweicloud.com/"
        );
        assert_eq!(
            policy
                .resolve(Some("eu-west-101"), None)
                .expect("ok")
                .as_str(),
            "https://cce.eu-west-101.myhuaweicloud.eu/"
        );
        assert_eq!(
            policy
                .resolve(Some("my-kualalumpur-1"), Some(" "))
                .expect("ok")
                .as_str(),
            "https://cce.my-kualalumpur-1.myhuaweicloud.com/"
        );
    }

    #[test]
    fn every_region_of_the_sdks_tables_passes_its_services_default_list() {
        let regions = [
            "ae-ad-1",
            "af-north-1",
            "af-south-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "cn-east-2",
            "cn-east-3",
            "cn-east-4",
            "cn-east-5",
            "cn-north-1",
            "cn-north-11",
            "cn-north-12",
            "cn-north-2",
            "cn-north-4",
            "cn-north-9",
            "cn-south-1",
            "cn-south-2",
            "cn-south-4",
            "cn-southwest-2",
            "eu-west-0",
            "eu-west-101",
            "la-north-2",
            "la-south-2",
            "me-east-1",
            "my-kualalumpur-1",
            "na-mexico-1",
            "ru-moscow-1",
            "ru-northwest-2",
            "sa-brazil-1",
            "tr-west-1",
        ];
        for region in regions {
            EndpointPolicy::cce()
                .resolve(Some(region), None)
                .expect(region);
            let iam = crate::cce::iam::region_iam_endpoint(region).expect(region);
            EndpointPolicy::iam().check(&iam).expect(region);
        }
        for global in [
            "https://iam.myhuaweicloud.com",
            "https://iam.myhuaweicloud.eu",
            "https://sts.cn-north-4.myhuaweicloud.com",
        ] {
            assert!(admitted(&EndpointPolicy::iam(), global), "{global}");
        }
    }

    #[test]
    fn the_eu_twins_are_accepted() {
        assert!(admitted(
            &EndpointPolicy::cce(),
            "https://cce.eu-west-101.myhuaweicloud.eu"
        ));
        assert!(admitted(
            &EndpointPolicy::iam(),
            "https://iam.eu-west-101.myhuaweicloud.eu"
        ));
        assert!(admitted(&EndpointPolicy::iam(), "iam.myhuaweicloud.eu"));
    }

    #[test]
    fn other_hosts_of_huawei_clouds_domains_are_refused() {
        let (cce, iam) = (EndpointPolicy::cce(), EndpointPolicy::iam());
        for endpoint in [
            // OBS names hosts after their owners' buckets.
            "https://mybucket.obs-website.cn-north-4.myhuaweicloud.com",
            "https://cce.obs-website.myhuaweicloud.com",
            "https://cce.obs.cn-north-4.myhuaweicloud.com",
            "https://iam.obs.myhuaweicloud.com",
            "https://myhuaweicloud.com",
            "https://www.huaweicloud.com",
            "https://cce.cn-north-4.myhuaweicloud.com.evil.example",
            "https://x.cce.cn-north-4.myhuaweicloud.com",
            "https://cce.north-4.myhuaweicloud.com",
            "https://cce.cn-north-x.myhuaweicloud.com",
        ] {
            assert!(!admitted(&cce, endpoint), "{endpoint}");
            assert!(!admitted(&iam, endpoint), "{endpoint}");
        }
    }

    #[test]
    fn the_cce_list_refuses_iam_hosts_and_the_iam_list_cce_hosts() {
        let (cce, iam) = (EndpointPolicy::cce(), EndpointPolicy::iam());
        for iam_host in [
            "https://iam.myhuaweicloud.com",
            "https://iam.cn-north-4.myhuaweicloud.com",
            "https://sts.cn-north-4.myhuaweicloud.com",
        ] {
            assert!(admitted(&iam, iam_host), "{iam_host}");
            let e = cce.resolve(None, Some(iam_host)).expect_err(iam_host);
            assert_eq!(e.category(), "EndpointNotAllowed");
            assert!(e.to_string().contains("CCE endpoint allow-list"), "{e}");
        }
        let cce_host = "https://cce.cn-north-4.myhuaweicloud.com";
        assert!(admitted(&cce, cce_host));
        let e = iam.resolve(None, Some(cce_host)).expect_err("cce at iam");
        assert!(e.to_string().contains("IAM endpoint allow-list"), "{e}");
    }

    #[test]
    fn insane_regions_are_refused() {
        for region in [
            "AP-southeast-1",
            "cn",
            "cn-",
            "cn--1",
            "evil.com/x",
            "a-b",
            "cn-north-4.attacker.io",
            "x-\u{e9}",
        ] {
            let e = EndpointPolicy::default()
                .resolve(Some(region), None)
                .expect_err(region);
            assert_eq!(e.category(), "InvalidEndpoint", "{region}");
        }
    }

    #[test]
    fn an_explicit_endpoint_wins_and_loses_its_path() {
        let policy = EndpointPolicy::default();
        let url = policy
            .resolve(
                Some("cn-north-4"),
                Some("https://cce.cn-north-4.myhuaweicloud.com:443/prefix/x?y=1#z"),
            )
            .expect("ok");
        assert_eq!(url.as_str(), "https://cce.cn-north-4.myhuaweicloud.com/");
        assert_eq!(
            policy
                .resolve(None, Some("cce.la-south-2.myhuaweicloud.com"))
                .expect("ok")
                .as_str(),
            "https://cce.la-south-2.myhuaweicloud.com/"
        );
    }

    #[test]
    fn a_port_other_than_443_is_refused_unless_an_entry_names_it() {
        let policy = EndpointPolicy::default();
        for endpoint in [
            "https://cce.cn-north-4.myhuaweicloud.com:8443",
            "https://cce.cn-north-4.myhuaweicloud.com:80",
        ] {
            let e = policy.resolve(None, Some(endpoint)).expect_err(endpoint);
            assert_eq!(e.category(), "EndpointNotAllowed", "{endpoint}");
        }
        let listed = EndpointPolicy::cce()
            .with_extra(["cce.internal.example:8443", "sim.example:*"])
            .expect("entries");
        assert!(admitted(&listed, "https://cce.internal.example:8443"));
        assert!(!admitted(&listed, "https://cce.internal.example"));
        assert!(!admitted(&listed, "https://cce.internal.example:9443"));
        assert!(admitted(&listed, "https://sim.example:40841"));
        assert!(admitted(&listed, "https://sim.example"));
        assert!(!admitted(
            &listed,
            "https://cce.cn-north-4.myhuaweicloud.com:8443"
        ));
    }

    #[test]
    fn hosts_outside_the_allow_list_are_refused_by_default() {
        let policy = EndpointPolicy::default();
        for endpoint in [
            "https://evil.example.com",
            "https://myhuaweicloud.com.evil.example",
            "https://evilmyhuaweicloud.com",
            "https://127.0.0.1:8443",
            "https://localhost",
            "https://[::1]:8443",
        ] {
            let e = policy.resolve(None, Some(endpoint)).expect_err(endpoint);
            assert_eq!(e.category(), "EndpointNotAllowed", "{endpoint}");
        }
    }

    #[test]
    fn plain_http_is_refused_unless_insecure_is_allowed() {
        let e = EndpointPolicy::default()
            .resolve(None, Some("http://cce.cn-north-4.myhuaweicloud.com"))
            .expect_err("http");
        assert_eq!(e.category(), "EndpointNotAllowed");
        assert!(e.to_string().contains("plain http"), "{e}");
        let url = insecure()
            .resolve(None, Some("http://127.0.0.1:18080/prefix"))
            .expect("insecure allowed");
        assert_eq!(url.as_str(), "http://127.0.0.1:18080/");
    }

    #[test]
    fn an_entry_is_exact_unless_written_as_a_suffix() {
        let policy = EndpointPolicy::cce()
            .with_extra([
                "Cloud.Example.org",
                "*.Internal.Example.org",
                "127.0.0.1",
                "[::1]",
            ])
            .expect("entries");
        for ok in [
            "https://cloud.example.org",
            "https://cce.internal.example.org",
            "https://a.b.internal.example.org",
            "https://127.0.0.1",
            "https://[::1]",
        ] {
            assert!(admitted(&policy, ok), "{ok}");
        }
        for refused in [
            "https://cce.cloud.example.org",
            "https://internal.example.org",
            "https://xinternal.example.org",
            "https://127.0.0.2",
            "https://127.0.0.1:9443",
            "http://127.0.0.1",
        ] {
            assert!(!admitted(&policy, refused), "{refused}");
        }
    }

    #[test]
    fn a_region_label_matches_one_region_id() {
        let policy = EndpointPolicy::iam()
            .with_extra(["cce.{region}.cloud.example"])
            .expect("entry");
        assert!(admitted(&policy, "https://cce.cn-north-4.cloud.example"));
        for refused in [
            "https://cce.cloud.example",
            "https://cce.a.cn-north-4.cloud.example",
            "https://cce.obs-website.cloud.example",
        ] {
            assert!(!admitted(&policy, refused), "{refused}");
        }
    }

    #[test]
    fn malformed_entries_are_refused_naming_them() {
        for (entry, why) in [
            (".example.org", "write *.example.org"),
            ("https://cce.example.org", "not a host"),
            ("*.org", "two labels"),
            ("cce.example.org:0", "port"),
            ("cce.example.org:https", "port"),
            ("*.*.example.org", "not a DNS label"),
            ("cce.exa mple.org", "not a DNS label"),
            ("[::1", "closing bracket"),
        ] {
            let e = EndpointPolicy::cce().with_extra([entry]).expect_err(entry);
            assert_eq!(e.category(), "InvalidConfig", "{entry}");
            assert!(e.to_string().contains(why), "{entry}: {e}");
        }
        let blank = EndpointPolicy::cce()
            .with_extra(["", " "])
            .expect("skipped");
        assert_eq!(blank, EndpointPolicy::cce());
    }

    #[test]
    fn entries_print_as_written_normalised() {
        for entry in [
            "cce.{region}.myhuaweicloud.com",
            "*.example.org:8443",
            "127.0.0.1:*",
            "[::1]:9443",
        ] {
            let parsed: AllowedEndpoint = entry.parse().expect(entry);
            assert_eq!(parsed.to_string(), entry);
        }
    }

    #[test]
    fn malformed_endpoints_are_refused_without_echoing_user_info() {
        for endpoint in [
            "https://user:hunter2@cce.cn-north-4.myhuaweicloud.com",
            "ftp://cce.cn-north-4.myhuaweicloud.com",
            "https://",
            "http://[::1",
            "unix:///var/run/sock",
        ] {
            let e = insecure()
                .resolve(None, Some(endpoint))
                .expect_err(endpoint);
            assert_eq!(e.category(), "InvalidEndpoint", "{endpoint}");
            assert!(!e.to_string().contains("hunter2"));
        }
        assert_eq!(
            EndpointPolicy::default()
                .resolve(None, None)
                .expect_err("none")
                .category(),
            "InvalidEndpoint"
        );
    }

    #[test]
    fn the_flags_make_a_client_config_with_both_lists() {
        let args = EndpointArgs {
            allowed_cce_endpoints: vec!["127.0.0.1:*".into()],
            allowed_iam_endpoints: vec!["iam.example".into()],
            allow_insecure_endpoints: false,
        };
        let config = args
            .apply(crate::cce::ClientConfig::default())
            .expect("config");
        assert!(!config.allows_insecure_endpoints());
        let url = |u: &str| Url::parse(u).expect("url");
        config
            .policy
            .check(&url("https://127.0.0.1:40841"))
            .expect("cce");
        config
            .policy
            .check(&url("https://iam.example"))
            .expect_err("iam at cce");
        config
            .iam_policy
            .check(&url("https://iam.example"))
            .expect("iam");
        config
            .iam_policy
            .check(&url("https://127.0.0.1:40841"))
            .expect_err("cce at iam");
        let insecure = EndpointArgs {
            allow_insecure_endpoints: true,
            ..args.clone()
        }
        .apply(crate::cce::ClientConfig::default())
        .expect("config");
        assert!(insecure.allows_insecure_endpoints());
        assert!(insecure.policy.allow_insecure && insecure.iam_policy.allow_insecure);
        let bad = EndpointArgs {
            allowed_iam_endpoints: vec![".example.org".into()],
            ..args
        }
        .apply(crate::cce::ClientConfig::default())
        .expect_err("malformed");
        assert!(bad.to_string().contains("allowed IAM endpoint"), "{bad}");
    }
}
