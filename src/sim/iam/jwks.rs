//! A provider's signing keys, read from its JWKS URL (the API server's `/openid/v1/jwks`)
//! as IAM holds them for a registered identity provider: read when first needed, kept,
//! and read again when a token names a key id not among them (the API server rotated its
//! key), at most once per [`REFRESH_INTERVAL`] per URL so a stream of forged key ids cannot
//! make IAM hammer the API server. Reads are bounded in time and size. I/O: HTTP(S) reads
//! of the JWKS URL and of its CA and token files.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use parking_lot::Mutex;

use super::config::JwksSource;
use super::jwt::VerifyKey;

/// Shortest time between two reads of one JWKS URL.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How long one read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
pub const MAX_JWKS: usize = 256 * 1024;
/// Most keys kept from one document.
pub const MAX_KEYS: usize = 64;

/// The usable keys of a JWKS document; keys IAM cannot verify with are skipped.
pub fn parse(bytes: &[u8]) -> Result<Vec<VerifyKey>, String> {
    if bytes.len() > MAX_JWKS {
        return Err(format!("the JWKS is larger than {} KiB", MAX_JWKS / 1024));
    }
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the JWKS is not a JSON Web Key Set ({:?} error)",
            e.classify()
        )
    })?;
    let keys: Vec<VerifyKey> = set
        .keys
        .iter()
        .filter_map(VerifyKey::from_jwk)
        .take(MAX_KEYS)
        .collect();
    if keys.is_empty() {
        return Err("the JWKS holds no RSA or EC signing key with a kid".into());
    }
    Ok(keys)
}

/// Whether a URL last read (or tried) at `last` may be read again at `now`.
pub fn refresh_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= REFRESH_INTERVAL)
}

/// What is known of one URL.
#[derive(Default)]
struct Entry {
    keys: Vec<VerifyKey>,
    last_read: Option<Instant>,
}

/// Why no key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The keys were read and none has that id.
    UnknownKid,
    /// The keys could not be read (the reason is logged, not answered).
    Unreadable,
}

/// The keys of every JWKS URL in use.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl KeyCache {
    /// The key `kid` of `source`, reading the document first when it is not known yet or
    /// does not have that key and the last read is old enough.
    pub async fn key(&self, source: &JwksSource, kid: &str) -> Result<VerifyKey, Missing> {
        self.key_read_with(source, kid, Instant::now(), || read(source))
            .await
    }

    /// [`KeyCache::key`] at `now`, reading the document with `read_document`.
    async fn key_read_with<F, Fut>(
        &self,
        source: &JwksSource,
        kid: &str,
        now: Instant,
        read_document: F,
    ) -> Result<VerifyKey, Missing>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, String>>,
    {
        let entry = Arc::clone(self.entries.lock().entry(source.url.clone()).or_default());
        // Held across the read: concurrent requests for a new key wait for one read.
        let mut entry = entry.lock().await;
        if let Some(k) = entry.keys.iter().find(|k| k.kid == kid) {
            return Ok(k.clone());
        }
        if !refresh_due(entry.last_read, now) {
            return Err(if entry.keys.is_empty() {
                Missing::Unreadable
            } else {
                Missing::UnknownKid
            });
        }
        entry.last_read = Some(now);
        match read_document().await.and_then(|bytes| parse(&bytes)) {
            Ok(keys) => {
                tracing::info!(url = %source.url, keys = keys.len(), "IAM read the signing keys");
                entry.keys = keys;
            }
            Err(e) => {
                tracing::warn!(url = %source.url, error = %e, "IAM cannot read the signing keys");
                if entry.keys.is_empty() {
                    return Err(Missing::Unreadable);
                }
            }
        }
        entry
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .cloned()
            .ok_or(Missing::UnknownKid)
    }

    /// Forgets every key, so the next token reads its provider's keys again (admin API).
    pub fn clear(&self) {
        self.entries.lock().clear();
    }
}

/// One GET of the JWKS, with the CA bundle and bearer token of `source`.
async fn read(source: &JwksSource) -> Result<Vec<u8>, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &source.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| format!("{} is not a PEM CA bundle", ca.display()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut request = client.get(&source.url);
    if let Some(file) = &source.token_file {
        let token = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        request = request.bearer_auth(token.trim());
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("GET failed: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("GET answered {}", response.status()));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {}", e.without_url()))?
    {
        if bytes.len() + chunk.len() > MAX_JWKS {
            return Err(format!("the JWKS is larger than {} KiB", MAX_JWKS / 1024));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::testkey::TestKey;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_jwks_keeps_its_signing_keys_and_skips_the_rest() {
        let a = TestKey::new("a").expect("key");
        let b = TestKey::new("b").expect("key");
        let doc = json!({"keys": [a.jwk, {"kty": "oct", "kid": "s", "k": "c2VjcmV0"}, b.jwk]});
        let keys = parse(doc.to_string().as_bytes()).expect("parse");
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["a", "b"]);
        for bad in [
            json!({"keys": []}).to_string(),
            json!({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}).to_string(),
            "not json".to_string(),
            json!({"keys": "x"}).to_string(),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let huge = vec![b' '; MAX_JWKS + 1];
        assert!(parse(&huge).expect_err("huge").contains("larger"));
        let many: Vec<_> = (0..MAX_KEYS + 5)
            .map(|i| {
                let mut k = a.jwk.clone();
                k["kid"] = json!(format!("k{i}"));
                k
            })
            .collect();
        let keys = parse(json!({"keys": many}).to_string().as_bytes()).expect("many");
        assert_eq!(keys.len(), MAX_KEYS);
    }

    #[test]
    fn a_url_is_read_again_only_after_the_interval() {
        let now = Instant::now();
        assert!(refresh_due(None, now));
        assert!(!refresh_due(Some(now), now));
        assert!(!refresh_due(Some(now), now + REFRESH_INTERVAL / 2));
        assert!(refresh_due(Some(now), now + REFRESH_INTERVAL));
    }

    #[tokio::test]
    async fn keys_are_read_once_then_again_only_for_an_unknown_kid_and_not_too_often() {
        let (old, new) = (
            TestKey::new("old").expect("key"),
            TestKey::new("new").expect("key"),
        );
        let source = JwksSource {
            url: "https://plane.invalid/openid/v1/jwks".into(),
            ca_file: None,
            token_file: None,
        };
        let cache = KeyCache::default();
        let reads = std::cell::Cell::new(0);
        let serving = std::cell::RefCell::new(json!({"keys": [old.jwk]}));
        let read = || {
            reads.set(reads.get() + 1);
            let doc = serving.borrow().to_string().into_bytes();
            async move { Ok(doc) }
        };
        let t0 = Instant::now();
        let got = |kid: &'static str, at: Duration| {
            let (cache, source, read) = (&cache, &source, &read);
            async move {
                cache
                    .key_read_with(source, kid, t0 + at, read)
                    .await
                    .map(|k| k.kid)
            }
        };
        assert_eq!(got("old", Duration::ZERO).await, Ok("old".into()));
        assert_eq!(got("old", Duration::from_secs(1)).await, Ok("old".into()));
        assert_eq!(reads.get(), 1, "a known key is not read again");
        // The API server rotates its key.
        *serving.borrow_mut() = json!({"keys": [new.jwk]});
        assert_eq!(
            got("new", Duration::from_secs(2)).await,
            Err(Missing::UnknownKid)
        );
        assert_eq!(
            reads.get(),
            1,
            "rate-limited: read less than the interval ago"
        );
        assert_eq!(got("new", REFRESH_INTERVAL).await, Ok("new".into()));
        assert_eq!(reads.get(), 2);
        for forged in ["a", "b", "c"] {
            assert_eq!(
                got(forged, REFRESH_INTERVAL + Duration::from_secs(1)).await,
                Err(Missing::UnknownKid)
            );
        }
        assert_eq!(
            reads.get(),
            2,
            "a stream of unknown kids reads nothing more"
        );
        // A failed read keeps the keys it had.
        let failing = || async { Err::<Vec<u8>, _>("GET answered 503".to_string()) };
        let after = t0 + REFRESH_INTERVAL * 3;
        assert_eq!(
            cache
                .key_read_with(&source, "x", after, failing)
                .await
                .err(),
            Some(Missing::UnknownKid)
        );
        assert_eq!(got("new", REFRESH_INTERVAL * 3).await, Ok("new".into()));
    }

    #[tokio::test]
    async fn an_unreachable_jwks_is_unreadable_and_not_read_again_at_once() {
        let cache = KeyCache::default();
        let source = JwksSource {
            // Nothing listens on port 9 of loopback (discard), so the read fails fast.
            url: "http://127.0.0.1:9/openid/v1/jwks".into(),
            ca_file: None,
            token_file: None,
        };
        assert_eq!(
            cache.key(&source, "k").await.err(),
            Some(Missing::Unreadable)
        );
        let started = Instant::now();
        assert_eq!(
            cache.key(&source, "k").await.err(),
            Some(Missing::Unreadable)
        );
        assert!(started.elapsed() < Duration::from_millis(500), "read again");
    }
}
