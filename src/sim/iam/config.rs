//! The IAM configuration the simulator plays: identity providers (an issuer, the client ids
//! it accepts as audience, where its signing keys are read), identity conversion rules and
//! the lifetimes of what it issues. Read from `--iam-config` (YAML or JSON) and replaced or
//! extended through the admin API; validated here, before anything uses it. Pure: the
//! file is read by the caller.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a provider's signing keys (a JWKS document) are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwksSource {
    /// `https://…/openid/v1/jwks` of the API server, or any JWKS URL.
    pub url: String,
    /// PEM CA bundle that makes the URL's certificate trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A file holding a bearer token sent with the read, re-read every time (a projected
    /// ServiceAccount token rotates). The API server serves its JWKS to authenticated
    /// ServiceAccounts only, by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

/// An OpenID Connect identity provider as IAM has it registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderDef {
    /// The identity provider id (`X-Idp-Id`, the last part of a provider URN).
    pub id: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The client ids: a token's `aud` must name one of them.
    pub client_ids: Vec<String>,
    /// Where its keys are; the `--iam-jwks-*` flags when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwksSource>,
}

/// An identity conversion rule: a token of `provider` whose `sub` matches `sub` acts as
/// `user`, in `projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDef {
    pub provider: String,
    /// The subject, exactly, or with `*` standing for any run of characters
    /// (`system:serviceaccount:team-a:*`).
    pub sub: String,
    /// The IAM user (or user group) the token is converted to.
    pub user: String,
    /// The projects its temporary credentials may use.
    #[serde(rename = "projectIDs")]
    pub project_ids: Vec<String>,
    /// The agency an STS `assume-with-oidc` call may assume with this rule; a rule without
    /// one serves federation (`id-token/tokens`) and pod identity only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
}

/// Lifetimes, in scenario time (divided by the simulator's speed, like the timelines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lifetimes {
    /// Unscoped tokens from `id-token/tokens` (IAM's: 24 hours).
    #[serde(default = "default_token", with = "as_text")]
    pub token: Duration,
    /// Caps every temporary credential below what the caller asked for (off by default:
    /// the caller's `duration_seconds`, within IAM's bounds, is honoured).
    #[serde(default, with = "as_text_opt", skip_serializing_if = "Option::is_none")]
    pub credential_cap: Option<Duration>,
    /// Temporary credentials from the pod-identity endpoint.
    #[serde(default = "default_pod_identity", with = "as_text")]
    pub pod_identity: Duration,
}

fn default_token() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_pod_identity() -> Duration {
    Duration::from_secs(3600)
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            token: default_token(),
            credential_cap: None,
            pod_identity: default_pod_identity(),
        }
    }
}

/// Durations written as `24h`, `15m`, `900s` (the project's one duration notation).
mod as_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::duration::{self, Precision};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&duration::format(*d, Precision::Seconds))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        duration::parse_positive(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod as_text_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::as_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| crate::duration::parse_positive(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The whole IAM configuration (`--iam-config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamConfig {
    #[serde(default)]
    pub providers: Vec<ProviderDef>,
    #[serde(default)]
    pub rules: Vec<RuleDef>,
    #[serde(default)]
    pub lifetimes: Lifetimes,
}

/// Longest id, issuer, client id, subject pattern or user accepted.
const MAX_FIELD: usize = 512;

fn field(what: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > MAX_FIELD || value.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be at most {MAX_FIELD} printable characters"
        ));
    }
    Ok(())
}

impl IamConfig {
    /// Parses a configuration file (YAML, or JSON, which is YAML).
    pub fn parse(text: &str) -> Result<IamConfig, String> {
        let config: IamConfig =
            serde_yaml::from_str(text).map_err(|e| format!("invalid IAM configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    /// Ids unique and non-empty, every rule naming a known provider, every provider with
    /// a way to read its keys (its own `jwks` or `default_jwks`).
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = BTreeSet::new();
        for (n, p) in self.providers.iter().enumerate() {
            let at = |what: &str| format!("provider {n}: {what}");
            field(&at("id"), &p.id)?;
            field(&at("issuer"), &p.issuer)?;
            if p.client_ids.is_empty() {
                return Err(at("clientIds must name at least one audience"));
            }
            for c in &p.client_ids {
                field(&at("client id"), c)?;
            }
            if let Some(j) = &p.jwks {
                check_jwks_url(&j.url).map_err(|e| at(&e))?;
            }
            if !ids.insert(p.id.as_str()) {
                return Err(format!("provider {} is listed twice", p.id));
            }
        }
        self.validate_rules(&self.rules)
    }

    /// Checks `rules` against this configuration's providers.
    pub fn validate_rules(&self, rules: &[RuleDef]) -> Result<(), String> {
        for (n, r) in rules.iter().enumerate() {
            let at = |what: &str| format!("rule {n}: {what}");
            if !self.providers.iter().any(|p| p.id == r.provider) {
                return Err(at(&format!("provider {:?} is not configured", r.provider)));
            }
            field(&at("sub"), &r.sub)?;
            field(&at("user"), &r.user)?;
            if r.project_ids.is_empty() {
                return Err(at("projectIDs must name at least one project"));
            }
            for p in &r.project_ids {
                field(&at("project id"), p)?;
            }
            if let Some(a) = &r.agency {
                field(&at("agency"), a)?;
            }
        }
        Ok(())
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderDef> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The provider whose issuer is `iss` (pod identity names no provider).
    pub fn provider_by_issuer(&self, iss: &str) -> Option<&ProviderDef> {
        self.providers.iter().find(|p| p.issuer == iss)
    }
}

/// A JWKS URL must be an `https://` (or, on loopback tests, `http://`) URL.
pub fn check_jwks_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
        _ => Err(format!(
            "jwks url {:?} is not an http(s) URL",
            super::refusal::quoted(url)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "
providers:
  - id: plane
    issuer: https://kubernetes.default.svc.cluster.local
    clientIds: [cce-upgrade-watch]
    jwks: {url: 'https://127.0.0.1:6443/openid/v1/jwks', caFile: /tmp/ca.pem}
rules:
  - {provider: plane, sub: 'system:serviceaccount:team-a:*', user: team-a, projectIDs: [p1]}
lifetimes: {token: 2h, credentialCap: 10m}
";

    #[test]
    fn a_configuration_parses_with_defaults_and_round_trips() {
        let c = IamConfig::parse(EXAMPLE).expect("parse");
        assert_eq!(c.providers[0].client_ids, ["cce-upgrade-watch"]);
        assert_eq!(c.lifetimes.token, Duration::from_secs(7200));
        assert_eq!(c.lifetimes.credential_cap, Some(Duration::from_secs(600)));
        assert_eq!(c.lifetimes.pod_identity, Duration::from_secs(3600));
        assert!(
            c.provider_by_issuer("https://kubernetes.default.svc.cluster.local")
                .is_some()
        );
        let again = IamConfig::parse(&serde_json::to_string(&c).expect("json")).expect("again");
        assert_eq!(again, c);
        assert_eq!(IamConfig::parse("{}").expect("empty"), IamConfig::default());
    }

    #[test]
    fn the_example_file_in_the_repository_is_valid() {
        let text = include_str!("../../../examples/sim-iam.yaml");
        let c = IamConfig::parse(text).expect("examples/sim-iam.yaml");
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[1].agency.as_deref(), Some("cce-watch"));
    }

    #[test]
    fn bad_configurations_are_refused_naming_the_entry() {
        let provider = "providers: [{id: a, issuer: i, clientIds: [c]}]\n";
        for (bad, says) in [
            (
                "providers: [{id: '', issuer: i, clientIds: [c]}]",
                "provider 0: id",
            ),
            (
                "providers: [{id: a, issuer: i, clientIds: []}]",
                "clientIds",
            ),
            (
                "providers: [{id: a, issuer: i, clientIds: [c]}, {id: a, issuer: j, clientIds: [c]}]",
                "listed twice",
            ),
            (
                "rules: [{provider: x, sub: s, user: u, projectIDs: [p]}]",
                "rule 0: provider \"x\"",
            ),
            ("lifetimes: {token: 0s}", "longer than zero"),
            ("lifetimes: {token: soon}", "not a duration"),
            (
                "providers: [{id: a, issuer: i, clientIds: [c], colour: red}]",
                "colour",
            ),
            (
                "providers: [{id: a, issuer: i, clientIds: [c], jwks: {url: 'file:///etc/keys'}}]",
                "provider 0: jwks url",
            ),
        ] {
            let e = IamConfig::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        let no_projects =
            format!("{provider}rules: [{{provider: a, sub: s, user: u, projectIDs: []}}]");
        assert!(IamConfig::parse(&no_projects).is_err());
        let control =
            format!("{provider}rules: [{{provider: a, sub: \"s\\n\", user: u, projectIDs: [p]}}]");
        assert!(IamConfig::parse(&control).is_err());
    }
}
