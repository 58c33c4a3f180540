//! The unscoped tokens IAM issued from ID tokens, kept by their hash (the token itself is
//! never stored) until they expire: `securitytokens` turns one into temporary keys. Pure:
//! the time and the tokens are passed in.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::sim::auth::token_fingerprint;

/// Most unscoped tokens kept; the ones expiring first go beyond that.
const MAX_TOKENS: usize = 10_000;

/// Who a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub provider: String,
    pub subject: String,
    pub projects: BTreeSet<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
struct Held {
    digest: [u8; 32],
    grant: Grant,
}

/// A token as the admin API lists it (named by fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub provider: String,
    pub subject: String,
    pub expires_at: String,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Unknown,
    Expired,
}

#[derive(Debug, Default)]
pub struct Tokens {
    held: BTreeMap<String, Held>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Keeps `token` for `grant`, dropping expired ones first (and, past the cap, those
    /// expiring first).
    pub fn insert(&mut self, token: &str, grant: Grant, now: Timestamp) {
        self.held.retain(|_, h| h.grant.expires_at > now);
        if self.held.len() >= MAX_TOKENS {
            let mut by_expiry: Vec<(Timestamp, String)> = self
                .held
                .iter()
                .map(|(fp, h)| (h.grant.expires_at, fp.clone()))
                .collect();
            by_expiry.sort();
            for (_, fp) in &by_expiry[..=by_expiry.len() - MAX_TOKENS] {
                self.held.remove(fp);
            }
        }
        self.held.insert(
            token_fingerprint(token),
            Held {
                digest: digest(token),
                grant,
            },
        );
    }

    /// The grant of `token` if it is known and not expired at `now`.
    pub fn check(&self, token: &str, now: Timestamp) -> Result<&Grant, TokenError> {
        let held = self
            .held
            .get(&token_fingerprint(token))
            .filter(|h| h.digest == digest(token))
            .ok_or(TokenError::Unknown)?;
        if held.grant.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(&held.grant)
    }

    pub fn views(&self) -> Vec<TokenView> {
        self.held
            .iter()
            .map(|(fp, h)| TokenView {
                id: fp.clone(),
                user: h.grant.user.clone(),
                provider: h.grant.provider.clone(),
                subject: h.grant.subject.clone(),
                expires_at: h.grant.expires_at.to_string(),
            })
            .collect()
    }

    /// Every token expires at `at` at the latest.
    pub fn expire_all(&mut self, at: Timestamp) {
        for h in self.held.values_mut() {
            h.grant.expires_at = h.grant.expires_at.min(at);
        }
    }

    /// Brings every expiry `by` closer.
    pub fn shorten(&mut self, by: SignedDuration) {
        for h in self.held.values_mut() {
            h.grant.expires_at = h.grant.expires_at.checked_sub(by).unwrap_or(Timestamp::MIN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("ts")
    }

    fn grant(expires: i64) -> Grant {
        Grant {
            user: "u".into(),
            provider: "p".into(),
            subject: "s".into(),
            projects: BTreeSet::from(["p1".to_string()]),
            expires_at: t(expires),
        }
    }

    #[test]
    fn tokens_are_checked_by_value_until_they_expire() {
        let mut tokens = Tokens::default();
        tokens.insert("MIIone", grant(100), t(0));
        assert_eq!(
            tokens.check("MIIone", t(99)).map(|g| g.user.clone()),
            Ok("u".into())
        );
        assert_eq!(
            tokens.check("MIIone", t(100)).err(),
            Some(TokenError::Expired)
        );
        assert_eq!(
            tokens.check("MIItwo", t(0)).err(),
            Some(TokenError::Unknown)
        );
        let views = tokens.views();
        assert_eq!(views.len(), 1);
        assert!(!views[0].id.contains("MIIone"));
        tokens.shorten(SignedDuration::from_secs(50));
        assert_eq!(
            tokens.check("MIIone", t(60)).err(),
            Some(TokenError::Expired)
        );
        tokens.insert("MIIthree", grant(1000), t(0));
        tokens.expire_all(t(10));
        assert_eq!(
            tokens.check("MIIthree", t(10)).err(),
            Some(TokenError::Expired)
        );
        // Expired tokens are dropped when the next one is issued.
        tokens.insert("MIIfour", grant(2000), t(500));
        assert_eq!(tokens.views().len(), 1);
    }
}
