//! Credentials the simulator accepts, and checking that a request holds one, the way
//! Huawei's API gateway does (cce-api.md §2, §3.5): `X-Auth-Token` tokens, or AK/SK
//! `SDK-HMAC-SHA256` signatures verified by re-canonicalising the received request with
//! the client's own `SignedHeaders` — through `cce::sign`, the same code that signs the
//! project's requests — with `X-Sdk-Date` within 15 minutes and temporary keys bound to
//! their `X-Security-Token`.
//!
//! Temporary keys the simulator's IAM issues ([`CredentialStore::issue`]) carry an expiry
//! and are refused from then on.
//!
//! Failures carry APIG's wording (`Incorrect IAM authentication information: …`); the
//! server answers them 401 `APIGW.0301`. Secrets never leave this module: a credential is
//! named by its access key or a token's fingerprint. Pure: the time is passed in.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cce::sign::{self, SignError, SignableRequest};

/// How far `X-Sdk-Date` may be from the server's clock (APIG's documented window).
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(15);

/// One entry of a credentials file: `{accessKey, secretKey, projectID, securityToken?}`
/// or `{token, projectID}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(rename = "projectID")]
    pub project_id: String,
}

/// A credential as the admin API lists it: no secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    /// `aksk`, `temporary` or `token`.
    pub kind: &'static str,
    /// Access key, or `token-<fingerprint>`.
    pub id: String,
    #[serde(rename = "projectIDs")]
    pub project_ids: Vec<String>,
    /// When temporary keys issued by the simulator's IAM expire (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Who IAM issued them to: user, subject and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_to: Option<String>,
}

#[derive(Debug, Clone)]
struct KeyEntry {
    secret_key: String,
    security_token: Option<String>,
    projects: BTreeSet<String>,
    /// Set on keys IAM issued: refused from this instant.
    expires_at: Option<Timestamp>,
    issued_to: Option<String>,
}

/// Temporary keys the simulator's IAM hands out, to be accepted until `expires_at`.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_key: String,
    pub secret_key: String,
    pub security_token: String,
    pub projects: BTreeSet<String>,
    pub expires_at: Timestamp,
    pub issued_to: String,
}

/// How long expired issued keys are kept (and answered as expired rather than unknown).
const EXPIRED_KEPT: SignedDuration = SignedDuration::from_hours(1);
/// Most issued keys kept; the ones expiring first go beyond that.
const MAX_ISSUED: usize = 10_000;

#[derive(Debug, Clone)]
struct TokenEntry {
    digest: [u8; 32],
    projects: BTreeSet<String>,
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Access key or token fingerprint, for logs and counters.
    pub label: String,
    pub projects: BTreeSet<String>,
}

/// Why authentication failed; `label` names the credential the request claimed, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub label: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    keys: BTreeMap<String, KeyEntry>,
    tokens: BTreeMap<String, TokenEntry>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The name a token goes by in logs and counters: its hash's first 12 hex digits.
pub fn token_fingerprint(token: &str) -> String {
    let hex: String = digest(token)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("token-{hex}")
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn failure(label: Option<&str>, detail: &str) -> AuthFailure {
    AuthFailure {
        label: label.map(str::to_string),
        message: format!("Incorrect IAM authentication information: {detail}"),
    }
}

/// The credential a request claims (access key or token fingerprint), unverified: names
/// requests in the log even when a fault answers them before authentication.
pub fn claimed_credential(req: &SignableRequest<'_>) -> Option<String> {
    if let Some(token) = req.header("x-auth-token") {
        return Some(token_fingerprint(token));
    }
    let parsed = sign::parse_authorization(req.header("authorization")?).ok()?;
    Some(parsed.access)
}

impl CredentialStore {
    /// Parses a credentials file (a YAML list).
    pub fn parse_yaml(text: &str) -> Result<Vec<CredentialDef>, String> {
        serde_yaml::from_str(text).map_err(|e| format!("invalid credentials file: {e}"))
    }

    pub fn from_defs(defs: &[CredentialDef]) -> Result<Self, String> {
        let mut store = CredentialStore::default();
        store.upsert(defs)?;
        Ok(store)
    }

    /// Adds credentials; an access key or token already known gets the new secret and
    /// project list of this call (entries for several projects may repeat a key).
    pub fn upsert(&mut self, defs: &[CredentialDef]) -> Result<(), String> {
        let mut keys: BTreeMap<String, KeyEntry> = BTreeMap::new();
        let mut tokens: BTreeMap<String, TokenEntry> = BTreeMap::new();
        for (n, def) in defs.iter().enumerate() {
            let project = def.project_id.trim();
            if project.is_empty() {
                return Err(format!("credential {n}: projectID is required"));
            }
            match (&def.access_key, &def.secret_key, &def.token) {
                (Some(ak), Some(sk), None) => {
                    if ak.is_empty() || sk.is_empty() {
                        return Err(format!("credential {n}: empty accessKey or secretKey"));
                    }
                    let entry = keys.entry(ak.clone()).or_insert_with(|| KeyEntry {
                        secret_key: sk.clone(),
                        security_token: def.security_token.clone(),
                        projects: BTreeSet::new(),
                        expires_at: None,
                        issued_to: None,
                    });
                    if &entry.secret_key != sk || entry.security_token != def.security_token {
                        return Err(format!(
                            "credential {n}: access key {ak} is listed with two different secrets"
                        ));
                    }
                    entry.projects.insert(project.to_string());
                }
                (None, None, Some(token)) => {
                    if token.is_empty() || def.security_token.is_some() {
                        return Err(format!(
                            "credential {n}: a token entry has only token and projectID"
                        ));
                    }
                    tokens
                        .entry(token_fingerprint(token))
                        .or_insert_with(|| TokenEntry {
                            digest: digest(token),
                            projects: BTreeSet::new(),
                        })
                        .projects
                        .insert(project.to_string());
                }
                _ => {
                    return Err(format!(
                        "credential {n}: give accessKey and secretKey (and securityToken for \
                         temporary keys), or token"
                    ));
                }
            }
        }
        self.keys.extend(keys);
        self.tokens.extend(tokens);
        Ok(())
    }

    /// Forgets an access key or token (by its fingerprint); false when unknown.
    pub fn remove(&mut self, id: &str) -> bool {
        self.keys.remove(id).is_some() || self.tokens.remove(id).is_some()
    }

    pub fn views(&self) -> Vec<CredentialView> {
        let keys = self.keys.iter().map(|(ak, e)| CredentialView {
            kind: if e.security_token.is_some() {
                "temporary"
            } else {
                "aksk"
            },
            id: ak.clone(),
            project_ids: e.projects.iter().cloned().collect(),
            expires_at: e.expires_at.map(|t| t.to_string()),
            issued_to: e.issued_to.clone(),
        });
        let tokens = self.tokens.iter().map(|(fp, e)| CredentialView {
            kind: "token",
            id: fp.clone(),
            project_ids: e.projects.iter().cloned().collect(),
            expires_at: None,
            issued_to: None,
        });
        keys.chain(tokens).collect()
    }

    /// Adds temporary keys IAM issued at `now`, first dropping issued keys long expired
    /// (and, past [`MAX_ISSUED`], those expiring first).
    pub fn issue(&mut self, issued: Issued, now: Timestamp) {
        self.keys.retain(|_, e| {
            e.expires_at
                .is_none_or(|t| now.duration_since(t) < EXPIRED_KEPT)
        });
        let mut expiries: Vec<(Timestamp, String)> = self
            .keys
            .iter()
            .filter_map(|(ak, e)| e.expires_at.map(|t| (t, ak.clone())))
            .collect();
        if expiries.len() >= MAX_ISSUED {
            expiries.sort();
            for (_, ak) in &expiries[..=expiries.len() - MAX_ISSUED] {
                self.keys.remove(ak);
            }
        }
        self.keys.insert(
            issued.access_key,
            KeyEntry {
                secret_key: issued.secret_key,
                security_token: Some(issued.security_token),
                projects: issued.projects,
                expires_at: Some(issued.expires_at),
                issued_to: Some(issued.issued_to),
            },
        );
    }

    /// Issued keys only: the views of [`CredentialStore::views`] with an expiry.
    pub fn issued_views(&self) -> Vec<CredentialView> {
        self.views()
            .into_iter()
            .filter(|v| v.expires_at.is_some())
            .collect()
    }

    /// Makes issued keys expire at `at` at the latest: every one, or the one of
    /// `access_key`. Returns how many were changed.
    pub fn expire_issued(&mut self, access_key: Option<&str>, at: Timestamp) -> usize {
        let mut changed = 0;
        for (ak, e) in &mut self.keys {
            if access_key.is_some_and(|wanted| wanted != ak) {
                continue;
            }
            if let Some(t) = &mut e.expires_at {
                *t = (*t).min(at);
                changed += 1;
            }
        }
        changed
    }

    /// Brings every issued key's expiry `by` closer (IAM's clock moved on).
    pub fn shorten_issued(&mut self, by: SignedDuration) {
        for e in self.keys.values_mut() {
            if let Some(t) = &mut e.expires_at {
                *t = t.checked_sub(by).unwrap_or(Timestamp::MIN);
            }
        }
    }

    /// Authenticates a request received at `now` (path as on the wire, query decoded with
    /// `sign::decode_query`, headers as received): a token if `X-Auth-Token` is present,
    /// else an AK/SK signature.
    pub fn authenticate(
        &self,
        req: &SignableRequest<'_>,
        now: Timestamp,
    ) -> Result<Identity, AuthFailure> {
        if let Some(token) = req.header("x-auth-token") {
            return self.authenticate_token(token);
        }
        match req.header("authorization") {
            Some(value) => self.authenticate_signature(req, value, now),
            None => Err(failure(None, "no X-Auth-Token or Authorization header")),
        }
    }

    fn authenticate_token(&self, token: &str) -> Result<Identity, AuthFailure> {
        let fp = token_fingerprint(token);
        match self.tokens.get(&fp) {
            Some(e) if constant_time_eq(&e.digest, &digest(token)) => Ok(Identity {
                label: fp,
                projects: e.projects.clone(),
            }),
            _ => Err(failure(Some(&fp), "decrypt token fail")),
        }
    }

    fn authenticate_signature(
        &self,
        req: &SignableRequest<'_>,
        value: &str,
        now: Timestamp,
    ) -> Result<Identity, AuthFailure> {
        let parsed = sign::parse_authorization(value)
            .map_err(|e| failure(None, &format!("invalid Authorization header ({e})")))?;
        let ak = parsed.access.as_str();
        let Some(entry) = self.keys.get(ak) else {
            return Err(failure(
                Some(ak),
                &format!("Get secretKey failed,ak:{ak},err:ak not exist"),
            ));
        };
        if let Some(expiry) = entry.expires_at.filter(|t| *t <= now) {
            return Err(failure(
                Some(ak),
                &format!("security token expires, expires_at: {expiry}"),
            ));
        }
        let date = req
            .header(sign::SDK_DATE_HEADER)
            .ok_or_else(|| failure(Some(ak), "X-Sdk-Date is missing"))?;
        let date =
            sign::parse_sdk_date(date).map_err(|_| failure(Some(ak), "X-Sdk-Date is malformed"))?;
        if now.duration_since(date).abs() > MAX_CLOCK_SKEW {
            return Err(failure(
                Some(ak),
                "X-Sdk-Date is more than 15 minutes away from the server time",
            ));
        }
        let sent_token = req.header("x-security-token");
        match (&entry.security_token, sent_token) {
            (None, None) => {}
            (Some(want), Some(got)) if constant_time_eq(want.as_bytes(), got.as_bytes()) => {
                if !parsed
                    .signed_headers
                    .iter()
                    .any(|h| h == "x-security-token")
                {
                    return Err(failure(Some(ak), "X-Security-Token is not signed"));
                }
            }
            (Some(_), None) => {
                return Err(failure(
                    Some(ak),
                    "temporary access key without X-Security-Token",
                ));
            }
            _ => return Err(failure(Some(ak), "security token is invalid")),
        }
        match sign::check(req, &parsed, entry.secret_key.as_bytes()) {
            Ok(()) => Ok(Identity {
                label: ak.to_string(),
                projects: entry.projects.clone(),
            }),
            Err(SignError::SignatureMismatch) => {
                Err(failure(Some(ak), "verify aksk signature fail"))
            }
            Err(e) => Err(failure(
                Some(ak),
                &format!("verify aksk signature fail ({e})"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::builtin;

    fn store() -> CredentialStore {
        CredentialStore::from_defs(&builtin::credentials()).expect("store")
    }

    fn now() -> Timestamp {
        "2024-03-15T08:15:30Z".parse().expect("ts")
    }

    /// Signs like a client would, with the project's signer.
    fn signed(ak: &str, sk: &str, token: Option<&str>, date: Timestamp) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Host".to_string(), "127.0.0.1:8443".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Project-Id".to_string(), builtin::PROJECT_ID.to_string()),
            ("X-Sdk-Date".to_string(), sign::sdk_date(date)),
        ];
        if let Some(t) = token {
            headers.push(("X-Security-Token".to_string(), t.to_string()));
        }
        let query = sign::decode_query("b=2&a=1");
        let req = SignableRequest {
            method: "GET",
            path: "/api/v3/projects/p/clusters/c/operation/upgradeworkflows",
            query: &query,
            headers: &headers,
            body: b"",
        };
        let s = sign::sign(ak, sk.as_bytes(), &req).expect("sign");
        headers.push(("Authorization".to_string(), s.authorization));
        headers
    }

    /// The received query, decoded: another order than the signer's, which must not matter.
    static QUERY: std::sync::LazyLock<Vec<(String, String)>> =
        std::sync::LazyLock::new(|| sign::decode_query("a=1&b=2"));

    fn received(headers: &[(String, String)]) -> SignableRequest<'_> {
        SignableRequest {
            method: "GET",
            path: "/api/v3/projects/p/clusters/c/operation/upgradeworkflows",
            query: &QUERY,
            headers,
            body: b"",
        }
    }

    #[test]
    fn a_correct_signature_authenticates_as_its_access_key() {
        let headers = signed(builtin::ACCESS_KEY, builtin::SECRET_KEY, None, now());
        let id = store()
            .authenticate(&received(&headers), now())
            .expect("auth");
        assert_eq!(id.label, builtin::ACCESS_KEY);
        assert!(id.projects.contains(builtin::PROJECT_ID));
    }

    #[test]
    fn wrong_secret_unknown_key_or_stale_date_fail_with_apig_wording() {
        let s = store();
        let wrong = signed(builtin::ACCESS_KEY, "not-the-secret", None, now());
        let e = s
            .authenticate(&received(&wrong), now())
            .expect_err("wrong sk");
        assert_eq!(
            e.message,
            "Incorrect IAM authentication information: verify aksk signature fail"
        );
        assert_eq!(e.label.as_deref(), Some(builtin::ACCESS_KEY));
        let unknown = signed("NOSUCHKEY", "x", None, now());
        let e = s
            .authenticate(&received(&unknown), now())
            .expect_err("unknown");
        assert!(e.message.contains("ak not exist"), "{}", e.message);
        let old = signed(builtin::ACCESS_KEY, builtin::SECRET_KEY, None, now());
        let later = now() + SignedDuration::from_secs(16 * 60);
        assert!(s.authenticate(&received(&old), later).is_err());
        let within = now() - SignedDuration::from_secs(14 * 60);
        assert!(s.authenticate(&received(&old), within).is_ok());
        let mut tampered = old.clone();
        tampered[2].1 = "another-project".into();
        assert!(s.authenticate(&received(&tampered), now()).is_err());
        let e = s.authenticate(&received(&[]), now()).expect_err("none");
        assert!(
            e.message
                .starts_with("Incorrect IAM authentication information")
        );
        let garbage = vec![(
            "Authorization".to_string(),
            "Basic Zm9vOmJhcg==".to_string(),
        )];
        assert!(s.authenticate(&received(&garbage), now()).is_err());
    }

    #[test]
    fn temporary_keys_need_their_signed_security_token() {
        let s = store();
        let ok = signed(
            builtin::TEMP_ACCESS_KEY,
            builtin::TEMP_SECRET_KEY,
            Some(builtin::SECURITY_TOKEN),
            now(),
        );
        assert!(s.authenticate(&received(&ok), now()).is_ok());
        let without = signed(
            builtin::TEMP_ACCESS_KEY,
            builtin::TEMP_SECRET_KEY,
            None,
            now(),
        );
        assert!(s.authenticate(&received(&without), now()).is_err());
        let wrong = signed(
            builtin::TEMP_ACCESS_KEY,
            builtin::TEMP_SECRET_KEY,
            Some("forged"),
            now(),
        );
        assert!(s.authenticate(&received(&wrong), now()).is_err());
        let on_permanent = signed(
            builtin::ACCESS_KEY,
            builtin::SECRET_KEY,
            Some(builtin::SECURITY_TOKEN),
            now(),
        );
        assert!(s.authenticate(&received(&on_permanent), now()).is_err());
    }

    #[test]
    fn tokens_authenticate_by_value_and_are_named_by_fingerprint() {
        let s = store();
        let h = vec![("X-Auth-Token".to_string(), builtin::TOKEN.to_string())];
        let id = s.authenticate(&received(&h), now()).expect("token");
        assert_eq!(id.label, token_fingerprint(builtin::TOKEN));
        assert!(!id.label.contains(builtin::TOKEN));
        let h = vec![("X-Auth-Token".to_string(), "MIIforged".to_string())];
        let e = s.authenticate(&received(&h), now()).expect_err("forged");
        assert!(e.message.ends_with("decrypt token fail"));
    }

    #[test]
    fn credentials_files_are_validated_and_rotation_replaces_secrets() {
        let yaml = "- {accessKey: AK1, secretKey: SK1, projectID: p1}\n\
             - {accessKey: AK1, secretKey: SK1, projectID: p2}\n\
             - {token: T1, projectID: p1}\n";
        let defs = CredentialStore::parse_yaml(yaml).expect("parse");
        let mut s = CredentialStore::from_defs(&defs).expect("store");
        let views = s.views();
        assert_eq!(views[0].project_ids, ["p1", "p2"]);
        assert_eq!(views[1].kind, "token");
        for bad in [
            "- {accessKey: A, projectID: p}",
            "- {accessKey: A, secretKey: S}",
            "- {token: T, secretKey: S, projectID: p}",
            "- {accessKey: A, secretKey: S, projectID: p}\n- {accessKey: A, secretKey: X, projectID: q}",
            "- {accessKey: A, secretKey: S, projectID: p, color: red}",
            "{}",
        ] {
            let r = CredentialStore::parse_yaml(bad).and_then(|d| CredentialStore::from_defs(&d));
            assert!(r.is_err(), "{bad} accepted");
        }
        let rotated = CredentialDef {
            access_key: Some("AK1".into()),
            secret_key: Some("SK2".into()),
            project_id: "p1".into(),
            ..CredentialDef::default()
        };
        s.upsert(&[rotated]).expect("rotate");
        assert_eq!(s.views()[0].project_ids, ["p1"]);
        let old = signed("AK1", "SK1", None, now());
        let new = signed("AK1", "SK2", None, now());
        assert!(s.authenticate(&received(&old), now()).is_err());
        assert!(s.authenticate(&received(&new), now()).is_ok());
        assert!(s.remove("AK1"));
        assert!(s.authenticate(&received(&new), now()).is_err());
    }

    #[test]
    fn issued_keys_are_accepted_until_they_expire_and_listed_without_secrets() {
        let mut s = store();
        s.issue(
            Issued {
                access_key: "ISSUEDAK".into(),
                secret_key: "issued-secret".into(),
                security_token: "issued-token".into(),
                projects: BTreeSet::from([builtin::PROJECT_ID.to_string()]),
                expires_at: now() + SignedDuration::from_secs(60),
                issued_to: "u (s via p, federation)".into(),
            },
            now(),
        );
        let headers = signed("ISSUEDAK", "issued-secret", Some("issued-token"), now());
        assert!(s.authenticate(&received(&headers), now()).is_ok());
        let later = now() + SignedDuration::from_secs(60);
        let e = s
            .authenticate(&received(&headers), later)
            .expect_err("expired");
        assert!(
            e.message.contains("security token expires"),
            "{}",
            e.message
        );
        let views = s.issued_views();
        assert_eq!(views.len(), 1);
        let text = serde_json::to_string(&views).expect("json");
        assert!(!text.contains("issued-secret") && !text.contains("issued-token"));
        assert!(text.contains("expiresAt"));
        s.shorten_issued(SignedDuration::from_secs(30));
        let halfway = now() + SignedDuration::from_secs(30);
        assert!(s.authenticate(&received(&headers), halfway).is_err());
        assert_eq!(s.expire_issued(Some("NOSUCH"), now()), 0);
        assert_eq!(s.expire_issued(None, now()), 1);
        // Built-in keys have no expiry and are never touched.
        let permanent = signed(builtin::ACCESS_KEY, builtin::SECRET_KEY, None, later);
        assert!(s.authenticate(&received(&permanent), later).is_ok());
        // Long-expired issued keys are dropped when the next ones are issued.
        let much_later = now() + SignedDuration::from_hours(2);
        s.issue(
            Issued {
                access_key: "NEXTAK".into(),
                secret_key: "x".into(),
                security_token: "y".into(),
                projects: BTreeSet::new(),
                expires_at: much_later,
                issued_to: "u".into(),
            },
            much_later,
        );
        assert_eq!(s.issued_views().len(), 1);
    }
}
