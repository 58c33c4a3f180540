//! Checking an OpenID Connect ID token (a ServiceAccount token): its signature with the
//! provider's key (`jsonwebtoken`, the algorithm tied to the key's type so a token cannot
//! pick a weaker one), then issuer, audience, expiry and not-before on the simulator's
//! IAM clock with a small skew allowance. Pure: keys and time are passed in.

use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::config::ProviderDef;
use super::refusal::Refusal;

/// How far a token's `exp` and `nbf` may be off IAM's clock.
pub const CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(60);

/// Largest id token accepted (Kubernetes' are about 1 KiB).
pub const MAX_TOKEN: usize = 16 * 1024;

/// One verification key of a provider, with the algorithms it can check.
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: String,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// A JWK of an RSA or EC signing key with a `kid`; `None` for anything else (symmetric
    /// keys, encryption keys, curves ring cannot check), which a JWKS may carry and IAM
    /// ignores.
    pub fn from_jwk(jwk: &Jwk) -> Option<VerifyKey> {
        let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            return None;
        }
        let algorithms = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return None,
            },
            _ => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(VerifyKey {
            kid,
            algorithms,
            key,
        })
    }
}

/// The claims IAM reads; Kubernetes' own (`kubernetes.io`) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub exp: Option<f64>,
    #[serde(default)]
    pub nbf: Option<f64>,
}

/// `aud`: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(all) => all.iter().any(|a| a == wanted),
        }
    }
}

/// What a token says before anything is verified: its key id and claims. IAM uses it
/// only to find the key (and, for pod identity, the provider by issuer).
#[derive(Debug, Clone)]
pub struct Unverified {
    pub kid: Option<String>,
    pub claims: Claims,
}

fn no_checks(algorithms: Vec<Algorithm>) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.algorithms = algorithms;
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v
}

/// The token's header and claims, unverified; `MalformedToken` when it is not a JWT.
pub fn peek(token: &str) -> Result<Unverified, Refusal> {
    if token.len() > MAX_TOKEN {
        return Err(Refusal::MalformedToken);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::MalformedToken)?;
    let mut v = no_checks(vec![header.alg]);
    v.insecure_disable_signature_validation();
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&[]), &v)
        .map_err(|_| Refusal::MalformedToken)?;
    Ok(Unverified {
        kid: header.kid,
        claims: data.claims,
    })
}

/// The claims, once the signature verifies with `key` in an algorithm of its type.
pub fn verify_signature(token: &str, key: &VerifyKey) -> Result<Claims, Refusal> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::MalformedToken)?;
    if !key.algorithms.contains(&header.alg) {
        return Err(Refusal::BadSignature);
    }
    jsonwebtoken::decode::<Claims>(token, &key.key, &no_checks(vec![header.alg]))
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidToken
            | jsonwebtoken::errors::ErrorKind::Base64(_)
            | jsonwebtoken::errors::ErrorKind::Json(_)
            | jsonwebtoken::errors::ErrorKind::Utf8(_) => Refusal::MalformedToken,
            _ => Refusal::BadSignature,
        })
}

fn instant(secs: f64) -> Option<Timestamp> {
    let d = SignedDuration::try_from_secs_f64(secs).ok()?;
    Timestamp::UNIX_EPOCH.checked_add(d).ok()
}

/// Issuer, audience, expiry and not-before of verified `claims` for `provider` at `now`;
/// the subject when all hold.
pub fn check_claims(
    claims: &Claims,
    provider: &ProviderDef,
    now: Timestamp,
) -> Result<String, Refusal> {
    if claims.iss.as_deref() != Some(provider.issuer.as_str()) {
        return Err(Refusal::WrongIssuer);
    }
    let audience_ok = claims
        .aud
        .as_ref()
        .is_some_and(|aud| provider.client_ids.iter().any(|c| aud.contains(c)));
    if !audience_ok {
        return Err(Refusal::WrongAudience);
    }
    // A token without an expiry never expires: IAM refuses it as expired.
    let exp = claims.exp.and_then(instant).ok_or(Refusal::Expired)?;
    if now.duration_since(exp) > CLOCK_SKEW {
        return Err(Refusal::Expired);
    }
    if let Some(nbf) = claims.nbf {
        let nbf = instant(nbf).ok_or(Refusal::NotYetValid)?;
        if nbf.duration_since(now) > CLOCK_SKEW {
            return Err(Refusal::NotYetValid);
        }
    }
    match claims.sub.as_deref() {
        Some(sub) if !sub.is_empty() => Ok(sub.to_string()),
        _ => Err(Refusal::MalformedToken),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkey::TestKey;
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

    fn provider() -> ProviderDef {
        ProviderDef {
            id: "plane".into(),
            issuer: ISSUER.into(),
            client_ids: vec!["cce".into()],
            jwks: None,
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("ts")
    }

    fn claims(aud: serde_json::Value, exp_in: i64) -> serde_json::Value {
        let t = now().as_second();
        json!({"iss": ISSUER, "sub": "system:serviceaccount:a:b", "aud": aud,
            "exp": t + exp_in, "nbf": t - 5, "iat": t - 5,
            "kubernetes.io": {"namespace": "a"}})
    }

    #[test]
    fn a_good_token_verifies_and_yields_its_subject() {
        let key = TestKey::new("k1").expect("key");
        let vk = VerifyKey::from_jwk(&key.parsed_jwk().expect("jwk")).expect("key");
        let token = key
            .sign(&claims(json!(["other", "cce"]), 600))
            .expect("sign");
        let seen = peek(&token).expect("peek");
        assert_eq!(seen.kid.as_deref(), Some("k1"));
        let c = verify_signature(&token, &vk).expect("signature");
        assert_eq!(
            check_claims(&c, &provider(), now()),
            Ok("system:serviceaccount:a:b".to_string())
        );
        let single = key.sign(&claims(json!("cce"), 600)).expect("sign");
        let c = verify_signature(&single, &vk).expect("signature");
        assert!(check_claims(&c, &provider(), now()).is_ok());
    }

    #[test]
    fn another_key_a_tampered_token_or_garbage_is_refused() {
        let key = TestKey::new("k1").expect("key");
        let other = TestKey::new("k1").expect("key");
        let vk = VerifyKey::from_jwk(&key.parsed_jwk().expect("jwk")).expect("key");
        let forged = other.sign(&claims(json!("cce"), 600)).expect("sign");
        assert_eq!(verify_signature(&forged, &vk), Err(Refusal::BadSignature));
        let good = key.sign(&claims(json!("cce"), 600)).expect("sign");
        let mut parts: Vec<&str> = good.split('.').collect();
        let evil = key.sign(&claims(json!("cce"), 99_999)).expect("sign");
        let evil_payload = evil.split('.').nth(1).expect("payload");
        parts[1] = evil_payload;
        assert_eq!(
            verify_signature(&parts.join("."), &vk),
            Err(Refusal::BadSignature)
        );
        for garbage in ["", "a.b", "a.b.c", "not a token at all"] {
            assert_eq!(
                peek(garbage).err(),
                Some(Refusal::MalformedToken),
                "{garbage}"
            );
        }
        assert_eq!(
            peek(&"a".repeat(MAX_TOKEN + 1)).err(),
            Some(Refusal::MalformedToken)
        );
    }

    #[test]
    fn the_header_cannot_pick_an_algorithm_the_key_does_not_have() {
        let key = TestKey::new("k1").expect("key");
        let vk = VerifyKey::from_jwk(&key.parsed_jwk().expect("jwk")).expect("key");
        // An HS256 token "signed" with the public key's bytes: the classic confusion.
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(
            &header,
            &claims(json!("cce"), 600),
            &jsonwebtoken::EncodingKey::from_secret(key.jwk.to_string().as_bytes()),
        )
        .expect("hs");
        assert_eq!(verify_signature(&hs, &vk), Err(Refusal::BadSignature));
        let oct: Jwk = serde_json::from_value(json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0"}))
            .expect("oct");
        assert!(VerifyKey::from_jwk(&oct).is_none());
        let mut enc = key.jwk.clone();
        enc["use"] = json!("enc");
        let enc: Jwk = serde_json::from_value(enc).expect("enc");
        assert!(VerifyKey::from_jwk(&enc).is_none());
        let mut no_kid = key.jwk.clone();
        no_kid.as_object_mut().expect("object").remove("kid");
        let no_kid: Jwk = serde_json::from_value(no_kid).expect("no kid");
        assert!(VerifyKey::from_jwk(&no_kid).is_none());
    }

    #[test]
    fn issuer_audience_and_time_are_checked_with_a_small_skew() {
        let p = provider();
        let base = Claims {
            iss: Some(ISSUER.into()),
            sub: Some("s".into()),
            aud: Some(Audience::One("cce".into())),
            exp: Some(now().as_second() as f64),
            nbf: None,
        };
        assert!(check_claims(&base, &p, now() + SignedDuration::from_secs(59)).is_ok());
        assert_eq!(
            check_claims(&base, &p, now() + SignedDuration::from_secs(61)),
            Err(Refusal::Expired)
        );
        let wrong_iss = Claims {
            iss: Some("https://elsewhere".into()),
            ..base.clone()
        };
        assert_eq!(
            check_claims(&wrong_iss, &p, now()),
            Err(Refusal::WrongIssuer)
        );
        let wrong_aud = Claims {
            aud: Some(Audience::Many(vec!["x".into(), "y".into()])),
            ..base.clone()
        };
        assert_eq!(
            check_claims(&wrong_aud, &p, now()),
            Err(Refusal::WrongAudience)
        );
        let no_aud = Claims {
            aud: None,
            ..base.clone()
        };
        assert_eq!(
            check_claims(&no_aud, &p, now()),
            Err(Refusal::WrongAudience)
        );
        let no_exp = Claims {
            exp: None,
            ..base.clone()
        };
        assert_eq!(check_claims(&no_exp, &p, now()), Err(Refusal::Expired));
        let early = Claims {
            nbf: Some((now().as_second() + 120) as f64),
            ..base.clone()
        };
        assert_eq!(check_claims(&early, &p, now()), Err(Refusal::NotYetValid));
        let no_sub = Claims {
            sub: None,
            ..base.clone()
        };
        assert_eq!(
            check_claims(&no_sub, &p, now()),
            Err(Refusal::MalformedToken)
        );
    }
}
