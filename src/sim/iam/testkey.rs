//! A P-256 signing key made on the spot, its JWK, and tokens signed with it: an identity
//! provider of its own for tests of IAM that need no API server (ring generates EC keys,
//! not RSA ones). Test support, like the rest of the simulator. Pure but for the random
//! key.

use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub struct TestKey {
    pub kid: String,
    encoding: EncodingKey,
    /// The public key as a JWK (`kty: EC`, `crv: P-256`, `use: sig`).
    pub jwk: Value,
}

impl TestKey {
    pub fn new(kid: &str) -> Result<TestKey, String> {
        let pair = rcgen::KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        let raw = pair.public_key_raw();
        // An uncompressed point: 0x04, then x and y.
        let point = raw
            .get(1..)
            .filter(|p| !p.is_empty())
            .ok_or("no public key")?;
        let (x, y) = point.split_at(point.len() / 2);
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Ok(TestKey {
            kid: kid.into(),
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
                "kid": kid, "x": b64(x), "y": b64(y)}),
        })
    }

    pub fn parsed_jwk(&self) -> Result<Jwk, String> {
        serde_json::from_value(self.jwk.clone()).map_err(|e| format!("invalid JWK: {e}"))
    }

    /// A JWKS document with this key only.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// `claims` signed ES256 with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        self.sign_as(&self.kid, claims)
    }

    /// `claims` signed with this key but naming the key `kid`.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| format!("cannot sign: {e}"))
    }
}
