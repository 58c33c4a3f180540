//! Where CCE calls may go: region → regional endpoint (cce-api.md §1), explicit endpoints,
//! and the policy that keeps a watch from pointing the operator at arbitrary hosts or at
//! plain http unless whoever runs the operator opted in.

use url::{Host, Url};

use super::error::CceError;

/// Huawei Cloud's public API domains. `huaweicloud.com` covers global services and
/// Huawei Cloud Stack style names under it.
pub const DEFAULT_ALLOWED_HOST_SUFFIXES: &[&str] =
    &["myhuaweicloud.com", "myhuaweicloud.eu", "huaweicloud.com"];

/// Which endpoints the client may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// A host is allowed when it equals an entry or ends with `.` + entry (entries are
    /// domains like `myhuaweicloud.com`, or exact IP addresses like `127.0.0.1`).
    pub allowed_host_suffixes: Vec<String>,
    /// Lifts both checks: plain `http://` and any host. For the simulator and tests.
    pub allow_insecure: bool,
}

impl Default for EndpointPolicy {
    /// Huawei Cloud's public domains over https only.
    fn default() -> Self {
        Self {
            allowed_host_suffixes: DEFAULT_ALLOWED_HOST_SUFFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            allow_insecure: false,
        }
    }
}

impl EndpointPolicy {
    /// The default list plus `extra` entries (leading dots and case do not matter).
    pub fn with_extra_suffixes<S: AsRef<str>>(
        mut self,
        extra: impl IntoIterator<Item = S>,
    ) -> Self {
        self.allowed_host_suffixes
            .extend(extra.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// The endpoint to call: `endpoint` when given (only its scheme, host and port count,
    /// like Huawei's SDK; no scheme means https), else the region's public endpoint.
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

    /// Refuses plain http and hosts outside the allow-list, unless insecure endpoints
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
        let allowed = match url.host() {
            Some(Host::Domain(domain)) => self.suffixes().any(|suffix| {
                domain == suffix
                    || domain
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }),
            Some(Host::Ipv4(ip)) => self.suffixes().any(|s| s == ip.to_string()),
            Some(Host::Ipv6(ip)) => self
                .suffixes()
                .any(|s| s.trim_start_matches('[').trim_end_matches(']') == ip.to_string()),
            None => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(refuse(format!(
                "the host is not under an allowed domain ({}); add it to the allowed endpoint suffixes explicitly",
                self.allowed_host_suffixes.join(", ")
            )))
        }
    }

    fn suffixes(&self) -> impl Iterator<Item = String> + '_ {
        self.allowed_host_suffixes
            .iter()
            .map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
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
                Some("https://cce.cn-north-4.myhuaweicloud.com:8443/prefix/x?y=1#z"),
            )
            .expect("ok");
        assert_eq!(
            url.as_str(),
            "https://cce.cn-north-4.myhuaweicloud.com:8443/"
        );
        assert_eq!(
            policy
                .resolve(None, Some("cce.la-south-2.myhuaweicloud.com"))
                .expect("ok")
                .as_str(),
            "https://cce.la-south-2.myhuaweicloud.com/"
        );
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
    fn extra_suffixes_admit_private_domains_and_exact_ips() {
        let policy = EndpointPolicy::default().with_extra_suffixes([
            ".Cloud.Example.org",
            "127.0.0.1",
            "[::1]",
        ]);
        for ok in [
            "https://cce.region.cloud.example.org",
            "https://cloud.example.org",
            "https://127.0.0.1:9443",
            "https://[::1]:9443",
        ] {
            policy.resolve(None, Some(ok)).expect(ok);
        }
        for refused in [
            "https://127.0.0.2",
            "http://127.0.0.1:9443",
            "https://xcloud.example.org",
        ] {
            policy.resolve(None, Some(refused)).expect_err(refused);
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
}
