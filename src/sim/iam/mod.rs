//! The simulator's IAM: the federation Huawei's SDK and the operator use to trade a
//! Kubernetes ServiceAccount token for temporary keys, with the JWT checked for real.
//!
//! - [`config`]: identity providers, conversion rules and lifetimes (`--iam-config`);
//! - [`jwks`]: each provider's signing keys, read from its JWKS URL (the API server's
//!   `/openid/v1/jwks`) and read again on an unknown key id, rate-limited;
//! - [`jwt`]: signature, issuer, audience, expiry (pure); [`rules`]: `sub` → identity
//!   (pure); [`tokens`]: the unscoped tokens issued; [`refusal`]: IAM's error answers;
//! - [`server`]: the routes on the CCE listener — `POST /v3.0/OS-AUTH/id-token/tokens`,
//!   `POST /v3.0/OS-CREDENTIAL/securitytokens`, STS `POST /v5/agencies/assume-with-oidc` and
//!   the CCE pod-identity agent `POST /v1/pod-identity/credentials`;
//! - [`admin`]: `/_sim/iam/...` on the admin listener; [`testkey`]: a key and tokens of
//!   an identity provider of a test's own.
//!
//! Temporary keys go into the simulator's [`CredentialStore`](super::auth::CredentialStore)
//! with their expiry, so its CCE API accepts them until then. Lifetimes are scenario time
//! (divided by the speed, like the timelines); IAM's clock can be moved ahead of the
//! simulator's (admin `advance`), which ages ID tokens and brings every issued expiry closer.
//! This file owns [`Iam`]: state behind locks, random keys, and the key reads of [`jwks`]
//! (I/O); the time is passed in.

pub mod admin;
pub mod config;
pub mod jwks;
pub mod jwt;
pub mod refusal;
pub mod rules;
pub mod server;
pub mod testkey;
pub mod tokens;

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use parking_lot::{Mutex, RwLock};
use rand::Rng;
use rand::distr::Alphanumeric;

use self::config::{IamConfig, JwksSource, Lifetimes, ProviderDef};
use self::jwks::{KeyCache, Missing};
use self::refusal::Refusal;
use self::rules::Converted;
use self::tokens::{Grant, TokenError, Tokens};
use super::auth::Issued;
use super::clock::scaled;

/// The account (domain) every simulated identity belongs to.
pub const DOMAIN_ID: &str = "0970d7b7d400f2470fbec00316a03560";
pub const DOMAIN_NAME: &str = "cce-sim";

/// IAM's bounds on `securitytokens`' `duration_seconds` (15 minutes to 24 hours) and its
/// default.
pub const CREDENTIAL_SECONDS: (u64, u64) = (900, 86_400);
pub const CREDENTIAL_DEFAULT_SECONDS: u64 = 900;
/// STS `assume-with-oidc`: 15 minutes to the agency's maximum session (12 hours at most),
/// one hour by default.
pub const STS_SECONDS: (u64, u64) = (900, 43_200);
pub const STS_DEFAULT_SECONDS: u64 = 3600;

/// A verified, converted ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federated {
    pub provider: String,
    pub subject: String,
    pub identity: Converted,
}

/// An unscoped token just issued (the only time its value exists outside the caller).
pub struct Unscoped {
    pub token: String,
    pub federated: Federated,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

pub struct Iam {
    config: RwLock<IamConfig>,
    /// Where providers without their own `jwks` read keys (`--iam-jwks-*`).
    default_jwks: Option<JwksSource>,
    keys: KeyCache,
    tokens: Mutex<Tokens>,
    /// How far IAM's clock is ahead of the simulator's.
    ahead: Mutex<SignedDuration>,
    speed: f64,
}

fn random(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}

impl Iam {
    pub fn new(config: IamConfig, default_jwks: Option<JwksSource>, speed: f64) -> Iam {
        Iam {
            config: RwLock::new(config),
            default_jwks,
            keys: KeyCache::default(),
            tokens: Mutex::new(Tokens::default()),
            ahead: Mutex::new(SignedDuration::ZERO),
            speed,
        }
    }

    pub fn config(&self) -> IamConfig {
        self.config.read().clone()
    }

    /// Replaces providers, rules and lifetimes; what was issued stays valid.
    pub fn replace(&self, config: IamConfig) -> Result<(), String> {
        config.validate()?;
        *self.config.write() = config;
        self.keys.clear();
        Ok(())
    }

    /// Forgets the signing keys read, so the next token reads them again.
    pub fn forget_keys(&self) {
        self.keys.clear();
    }

    pub fn add_rules(&self, rules: Vec<config::RuleDef>) -> Result<(), String> {
        let mut config = self.config.write();
        config.validate_rules(&rules)?;
        config.rules.extend(rules);
        Ok(())
    }

    pub fn set_lifetimes(&self, lifetimes: Lifetimes) {
        self.config.write().lifetimes = lifetimes;
    }

    /// IAM's time when the simulator's is `now`.
    pub fn now(&self, now: Timestamp) -> Timestamp {
        now.checked_add(*self.ahead.lock())
            .unwrap_or(Timestamp::MAX)
    }

    /// Moves IAM's clock `secs` scenario seconds ahead; returns the real offset added.
    /// Issued keys are shortened by the caller (they live in the credential store).
    pub fn advance(&self, secs: f64) -> SignedDuration {
        let by = scaled(self.speed, secs.max(0.0));
        let mut ahead = self.ahead.lock();
        *ahead = ahead.checked_add(by).unwrap_or(SignedDuration::MAX);
        self.tokens.lock().shorten(by);
        by
    }

    pub fn ahead(&self) -> SignedDuration {
        *self.ahead.lock()
    }

    pub fn expire_tokens(&self, at: Timestamp) {
        self.tokens.lock().expire_all(at);
    }

    pub fn token_views(&self) -> Vec<tokens::TokenView> {
        self.tokens.lock().views()
    }

    /// A scenario lifetime as wall time from `now`.
    fn until(&self, now: Timestamp, lifetime_secs: u64) -> Timestamp {
        now.checked_add(scaled(self.speed, lifetime_secs as f64))
            .unwrap_or(Timestamp::MAX)
    }

    fn source_of(&self, provider: &ProviderDef) -> Option<JwksSource> {
        provider.jwks.clone().or_else(|| self.default_jwks.clone())
    }

    /// Verifies `id_token` for `provider` and converts its subject with the rules for
    /// `agency` (see [`rules::convert`]).
    async fn verify(
        &self,
        provider: &ProviderDef,
        id_token: &str,
        agency: Option<&str>,
        now: Timestamp,
    ) -> Result<Federated, Refusal> {
        let seen = jwt::peek(id_token)?;
        let kid = seen.kid.ok_or(Refusal::MalformedToken)?;
        let source = self.source_of(provider).ok_or(Refusal::KeysUnavailable)?;
        let key = self.keys.key(&source, &kid).await.map_err(|m| match m {
            Missing::UnknownKid => Refusal::UnknownKey(kid.clone()),
            Missing::Unreadable => Refusal::KeysUnavailable,
        })?;
        let claims = jwt::verify_signature(id_token, &key)?;
        let subject = jwt::check_claims(&claims, provider, self.now(now))?;
        let config = self.config.read();
        let identity =
            rules::convert(&config.rules, &provider.id, &subject, agency).ok_or_else(|| {
                Refusal::NoRule {
                    provider: provider.id.clone(),
                    subject: subject.clone(),
                }
            })?;
        Ok(Federated {
            provider: provider.id.clone(),
            subject,
            identity,
        })
    }

    fn provider(&self, id: &str) -> Result<ProviderDef, Refusal> {
        self.config
            .read()
            .provider(id)
            .cloned()
            .ok_or_else(|| Refusal::UnknownProvider(id.to_string()))
    }

    /// `id-token/tokens`: an unscoped token for a verified ID token of provider `idp`.
    pub async fn federate(
        &self,
        idp: &str,
        id_token: &str,
        now: Timestamp,
    ) -> Result<Unscoped, Refusal> {
        let provider = self.provider(idp)?;
        let federated = self.verify(&provider, id_token, None, now).await?;
        let lifetime = seconds(self.config.read().lifetimes.token);
        let expires_at = self.until(now, lifetime);
        let token = format!("MIIsim{}", random(96));
        self.tokens.lock().insert(
            &token,
            Grant {
                user: federated.identity.user.clone(),
                provider: federated.provider.clone(),
                subject: federated.subject.clone(),
                projects: federated.identity.projects.clone(),
                expires_at,
            },
            now,
        );
        Ok(Unscoped {
            token,
            federated,
            issued_at: now,
            expires_at,
        })
    }

    /// The lifetime to issue for a request of `asked` seconds (or the default) within
    /// `bounds`, under the configured cap.
    fn lifetime(
        &self,
        asked: Option<u64>,
        default: u64,
        bounds: (u64, u64),
    ) -> Result<u64, Refusal> {
        let asked = asked.unwrap_or(default);
        if !(bounds.0..=bounds.1).contains(&asked) {
            return Err(Refusal::Duration {
                min: bounds.0,
                max: bounds.1,
            });
        }
        let cap = self.config.read().lifetimes.credential_cap.map(seconds);
        Ok(cap.map_or(asked, |c| c.min(asked)))
    }

    /// `securitytokens`: temporary keys for an unscoped token.
    pub fn exchange(
        &self,
        token: &str,
        duration_seconds: Option<u64>,
        now: Timestamp,
    ) -> Result<Issued, Refusal> {
        let lifetime = self.lifetime(
            duration_seconds,
            CREDENTIAL_DEFAULT_SECONDS,
            CREDENTIAL_SECONDS,
        )?;
        let tokens = self.tokens.lock();
        let grant = tokens.check(token, now).map_err(|e| match e {
            TokenError::Unknown => Refusal::TokenInvalid,
            TokenError::Expired => Refusal::TokenExpired,
        })?;
        // Temporary keys never outlive the token they came from.
        let expires_at = self.until(now, lifetime).min(grant.expires_at);
        Ok(issue(
            &grant.projects,
            expires_at,
            format!(
                "{} ({} via {}, federation)",
                grant.user, grant.subject, grant.provider
            ),
        ))
    }

    /// STS `assume-with-oidc`: temporary keys of `agency` for a verified ID token of the
    /// provider the URN names.
    pub async fn assume(
        &self,
        provider_urn: &str,
        agency_urn: &str,
        session: &str,
        id_token: &str,
        duration_seconds: Option<u64>,
        now: Timestamp,
    ) -> Result<Issued, Refusal> {
        let idp = urn_name(provider_urn, "identity-provider").ok_or_else(|| {
            Refusal::BadRequest("provider_urn is not an identity provider URN".into())
        })?;
        let agency = urn_name(agency_urn, "agency")
            .ok_or_else(|| Refusal::BadRequest("agency_urn is not an agency URN".into()))?;
        let lifetime = self.lifetime(duration_seconds, STS_DEFAULT_SECONDS, STS_SECONDS)?;
        let provider = self.provider(idp)?;
        let f = self.verify(&provider, id_token, Some(agency), now).await?;
        Ok(issue(
            &f.identity.projects,
            self.until(now, lifetime),
            format!(
                "{} ({} via {}, agency {agency}, session {})",
                f.identity.user,
                f.subject,
                f.provider,
                refusal::quoted(session)
            ),
        ))
    }

    /// The pod-identity agent: temporary keys for a ServiceAccount token, the provider
    /// found by the token's issuer.
    pub async fn pod_identity(&self, id_token: &str, now: Timestamp) -> Result<Issued, Refusal> {
        let iss = jwt::peek(id_token)?.claims.iss.unwrap_or_default();
        let provider = self
            .config
            .read()
            .provider_by_issuer(&iss)
            .cloned()
            .ok_or_else(|| Refusal::UnknownProvider(iss.clone()))?;
        let f = self.verify(&provider, id_token, None, now).await?;
        let lifetime = seconds(self.config.read().lifetimes.pod_identity);
        Ok(issue(
            &f.identity.projects,
            self.until(now, lifetime),
            format!(
                "{} ({} via {}, pod identity)",
                f.identity.user, f.subject, f.provider
            ),
        ))
    }
}

/// The name at the end of an URN such as `iam::<account>:identity-provider:<name>`.
fn urn_name<'a>(urn: &'a str, kind: &str) -> Option<&'a str> {
    let rest = urn.strip_prefix("iam::")?;
    let (_account, rest) = rest.split_once(':')?;
    rest.strip_prefix(kind)?
        .strip_prefix(':')
        .filter(|name| !name.is_empty())
}

/// New temporary keys: an access key of IAM's shape, a secret and a security token.
fn issue(projects: &BTreeSet<String>, expires_at: Timestamp, issued_to: String) -> Issued {
    Issued {
        access_key: random(20).to_ascii_uppercase(),
        secret_key: random(40),
        security_token: format!("gQpjbi1ub3J0aC00{}", random(512)),
        projects: projects.clone(),
        expires_at,
        issued_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_name_their_provider_or_agency() {
        assert_eq!(
            urn_name("iam::0970d7:identity-provider:plane", "identity-provider"),
            Some("plane")
        );
        assert_eq!(urn_name("iam::0970d7:agency:ops", "agency"), Some("ops"));
        for bad in [
            "plane",
            "iam::0970d7:agency:ops",
            "iam::0970d7:identity-provider:",
            "sts::x:identity-provider:plane",
        ] {
            assert_eq!(urn_name(bad, "identity-provider"), None, "{bad}");
        }
    }

    #[test]
    fn lifetimes_are_bounded_and_capped_and_scale_with_the_speed() {
        let iam = Iam::new(IamConfig::default(), None, 60.0);
        assert_eq!(iam.lifetime(None, 900, CREDENTIAL_SECONDS), Ok(900));
        assert_eq!(
            iam.lifetime(Some(21_600), 900, CREDENTIAL_SECONDS),
            Ok(21_600)
        );
        assert_eq!(
            iam.lifetime(Some(899), 900, CREDENTIAL_SECONDS),
            Err(Refusal::Duration {
                min: 900,
                max: 86_400
            })
        );
        assert!(iam.lifetime(Some(86_401), 900, CREDENTIAL_SECONDS).is_err());
        iam.set_lifetimes(Lifetimes {
            credential_cap: Some(Duration::from_secs(120)),
            ..Lifetimes::default()
        });
        assert_eq!(iam.lifetime(Some(21_600), 900, CREDENTIAL_SECONDS), Ok(120));
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        // 900 scenario seconds at speed 60 are 15 real seconds.
        assert_eq!(iam.until(now, 900), now + SignedDuration::from_secs(15));
        let by = iam.advance(600.0);
        assert_eq!(by, SignedDuration::from_secs(10));
        assert_eq!(iam.now(now), now + SignedDuration::from_secs(10));
    }

    #[test]
    fn issued_keys_look_like_iams_and_differ_each_time() {
        let projects = BTreeSet::from(["p".to_string()]);
        let now = Timestamp::UNIX_EPOCH;
        let (a, b) = (
            issue(&projects, now, "x".into()),
            issue(&projects, now, "x".into()),
        );
        assert_eq!(a.access_key.len(), 20);
        assert!(
            a.access_key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_eq!(a.secret_key.len(), 40);
        assert_ne!(a.access_key, b.access_key);
        assert_ne!(a.security_token, b.security_token);
    }
}
