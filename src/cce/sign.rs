//! Huawei Cloud `SDK-HMAC-SHA256` request signing (cce-api.md §3): the one canonicalisation
//! used both to sign outgoing requests (the client) and to verify received ones (the
//! simulator). Pure functions over what travels on the wire; no I/O, no clock.
//!
//! A verifier only needs the received method, raw path, raw query string, header list and
//! body: decode the query with [`decode_query`], build a [`SignableRequest`], parse the
//! `Authorization` header with [`parse_authorization`] and call [`verify`] (or [`check`]
//! for the reason of a failure).

use std::fmt;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The `Authorization` scheme and first line of the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Payload hash of an empty body (SHA-256 of the empty string).
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Header naming the date the signature was made at, `YYYYMMDDTHHMMSSZ`.
pub const SDK_DATE_HEADER: &str = "X-Sdk-Date";

/// Header that replaces the body hash with a literal, e.g. `UNSIGNED-PAYLOAD`.
pub const CONTENT_SHA256_HEADER: &str = "X-Sdk-Content-Sha256";

/// The value the SDK puts in [`CONTENT_SHA256_HEADER`] for non-JSON bodies.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Everything outside `A-Z a-z 0-9 - _ . ~` is percent-encoded, in paths and queries alike.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const SDK_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Why a request could not be signed or a signature could not be checked. Never carries a
/// key or a signature value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the request has no X-Sdk-Date header")]
    MissingDate,
    #[error("X-Sdk-Date is not in the YYYYMMDDTHHMMSSZ format")]
    MalformedDate,
    #[error("the Authorization header is not `{ALGORITHM} Access=…, SignedHeaders=…, Signature=…`")]
    MalformedAuthorization,
    #[error("the signed header `{0}` is not in the request")]
    MissingSignedHeader(String),
    #[error("the signed headers do not include `{0}`")]
    UnsignedRequiredHeader(&'static str),
    #[error("the signature does not match")]
    SignatureMismatch,
}

/// Percent-encodes one path segment or query component the way the SDK does.
pub fn encode_component(raw: &str) -> String {
    utf8_percent_encode(raw, UNRESERVED).to_string()
}

/// The canonical URI of a path as sent on the wire: decoded as a whole, split on `/`, each
/// segment re-encoded, always ending in `/`. An encoded `%2F` therefore becomes a separator,
/// exactly as the SDK does it (so ids containing `/` must be signed this way too).
pub fn canonical_uri(wire_path: &str) -> String {
    // The SDK decodes with Python's `unquote`, which replaces invalid UTF-8 the same way.
    let decoded = percent_decode_str(wire_path).decode_utf8_lossy();
    let mut uri = decoded
        .split('/')
        .map(encode_component)
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Decodes a raw query string into pairs, in the order written: split on `&` and the first
/// `=`, percent-decode both sides. A `+` stays a `+` (the SDK never sends one for a space);
/// a bare key has an empty value.
pub fn decode_query(raw_query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once('=') {
            Some((key, value)) => (decode(key), decode(value)),
            None => (decode(piece), String::new()),
        })
        .collect()
}

/// The canonical query string: pairs sorted by decoded key then decoded value, and only
/// then encoded (sorting the encoded forms would order `a%7Bb` before `a_b`).
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(key, value)| format!("{}={}", encode_component(key), encode_component(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request as it is (or was) sent: what both the signer and the verifier look at.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// The path exactly as on the wire (already percent-encoded), without the query.
    pub path: &'a str,
    /// Decoded query pairs, in any order.
    pub query: &'a [(String, String)],
    /// Header names and values as sent; names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl SignableRequest<'_> {
    /// The first header of that name (case-insensitive), trimmed like the canonical form.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// The headers the SDK signs: all of them except names containing `_` (and the
/// `Authorization` header itself), lower-cased, sorted, without duplicates.
pub fn signed_header_names(headers: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| !name.contains('_') && name != "authorization")
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn payload_hash(req: &SignableRequest) -> String {
    if req.body.is_empty() {
        return EMPTY_BODY_SHA256.to_string();
    }
    match req.header(CONTENT_SHA256_HEADER) {
        Some(literal) => literal.to_string(),
        None => sha256_hex(req.body),
    }
}

/// The canonical request for the given signed header names (lower-case, in order). A signed
/// header missing from the request contributes an empty value; [`check`] refuses that case.
pub fn canonical_request(req: &SignableRequest, signed: &[String]) -> String {
    let mut headers = String::new();
    for name in signed {
        headers.push_str(name);
        headers.push(':');
        headers.push_str(req.header(name).unwrap_or_default());
        headers.push('\n');
    }
    [
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        signed.join(";"),
        payload_hash(req),
    ]
    .join("\n")
}

/// `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex SHA-256 of the canonical request>`.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn mac(sk: &[u8], string_to_sign: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(sk).unwrap_or_else(|_| unreachable!());
    mac.update(string_to_sign.as_bytes());
    mac
}

/// Lower-case hex HMAC-SHA256 keyed with the SK's bytes directly (no key derivation).
pub fn signature(sk: &[u8], string_to_sign: &str) -> String {
    hex::encode(mac(sk, string_to_sign).finalize().into_bytes())
}

/// `SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<a;b>, Signature=<hex>`.
pub fn authorization_header(ak: &str, signed: &[String], signature: &str) -> String {
    format!(
        "{ALGORITHM} Access={ak}, SignedHeaders={}, Signature={signature}",
        signed.join(";")
    )
}

/// Every intermediate of a signature, so tests and debugging can compare each step.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    pub signed_headers: Vec<String>,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

// A signature is not a secret, but a canonical request may contain an X-Security-Token.
impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

/// Signs a request whose headers already hold everything to sign, X-Sdk-Date and Host
/// included (callers add those; see cce-api.md §3.1).
pub fn sign(ak: &str, sk: &[u8], req: &SignableRequest) -> Result<Signed, SignError> {
    let sdk_date = req.header(SDK_DATE_HEADER).ok_or(SignError::MissingDate)?;
    let signed_headers = signed_header_names(req.headers);
    let canonical_request = canonical_request(req, &signed_headers);
    let string_to_sign = string_to_sign(sdk_date, &canonical_request);
    let signature = signature(sk, &string_to_sign);
    let authorization = authorization_header(ak, &signed_headers, &signature);
    Ok(Signed {
        signed_headers,
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    })
}

/// The three fields of a received `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access: String,
    /// Lower-cased, in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…` (fields in any order,
/// whitespace after commas optional). Other algorithms are refused.
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization, SignError> {
    let rest = value
        .trim()
        .strip_prefix(ALGORITHM)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(SignError::MalformedAuthorization)?;
    let (mut access, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (key, val) = field
            .trim()
            .split_once('=')
            .ok_or(SignError::MalformedAuthorization)?;
        let slot = match key {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(SignError::MalformedAuthorization),
        };
        if slot.replace(val.to_string()).is_some() {
            return Err(SignError::MalformedAuthorization);
        }
    }
    let (Some(access), Some(signed), Some(signature)) = (access, signed, signature) else {
        return Err(SignError::MalformedAuthorization);
    };
    let signed_headers: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    if access.is_empty() || signature.is_empty() || signed_headers.iter().any(String::is_empty) {
        return Err(SignError::MalformedAuthorization);
    }
    Ok(ParsedAuthorization {
        access,
        signed_headers,
        signature,
    })
}

/// Checks a received request against its parsed `Authorization` and the SK of its access
/// key, in constant time. Requires `host` and `x-sdk-date` to be signed and every signed
/// header to be present. Does not judge the date's age: that is the caller's policy
/// (APIG allows 15 minutes, see [`parse_sdk_date`]).
pub fn check(
    req: &SignableRequest,
    parsed: &ParsedAuthorization,
    sk: &[u8],
) -> Result<(), SignError> {
    // The SDK signs X-Sdk-Content-Sha256 whenever it sets it; an unsigned one means a
    // client that does not sign like the SDK, so say so instead of a bare mismatch.
    let content_hash = req
        .header(CONTENT_SHA256_HEADER)
        .map(|_| "x-sdk-content-sha256");
    for required in ["host", "x-sdk-date"].into_iter().chain(content_hash) {
        if !parsed.signed_headers.iter().any(|h| h == required) {
            return Err(SignError::UnsignedRequiredHeader(required));
        }
    }
    if let Some(missing) = parsed
        .signed_headers
        .iter()
        .find(|name| req.header(name).is_none())
    {
        return Err(SignError::MissingSignedHeader(missing.clone()));
    }
    let sdk_date = req.header(SDK_DATE_HEADER).ok_or(SignError::MissingDate)?;
    parse_sdk_date(sdk_date)?;
    let claimed = hex::decode(&parsed.signature).map_err(|_| SignError::SignatureMismatch)?;
    let canonical = canonical_request(req, &parsed.signed_headers);
    mac(sk, &string_to_sign(sdk_date, &canonical))
        .verify_slice(&claimed)
        .map_err(|_| SignError::SignatureMismatch)
}

/// [`check`] as a yes/no answer.
pub fn verify(req: &SignableRequest, parsed: &ParsedAuthorization, sk: &[u8]) -> bool {
    check(req, parsed, sk).is_ok()
}

/// The X-Sdk-Date value for an instant: `YYYYMMDDTHHMMSSZ` in UTC.
pub fn sdk_date(ts: Timestamp) -> String {
    ts.strftime(SDK_DATE_FORMAT).to_string()
}

/// Parses an X-Sdk-Date value.
pub fn parse_sdk_date(value: &str) -> Result<Timestamp, SignError> {
    let value = value.trim();
    // strptime alone would accept a shorter year or missing zero padding.
    if value.len() != 16 {
        return Err(SignError::MalformedDate);
    }
    jiff::fmt::strtime::parse(SDK_DATE_FORMAT, value)
        .and_then(|parsed| parsed.to_datetime())
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|zoned| zoned.timestamp())
        .map_err(|_| SignError::MalformedDate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde::Deserialize;

    const VECTORS: &str = include_str!("../../tests/vectors/aksk-signing.json");

    /// Whether the SDK would add `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` for this
    /// Content-Type, as the vectors' requests were signed.
    fn needs_unsigned_payload(content_type: Option<&str>) -> bool {
        content_type.is_some_and(|ct| {
            !(ct.starts_with("application/json") || ct.starts_with("application/bson"))
        })
    }

    #[derive(Deserialize)]
    struct VectorFile {
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        ak: String,
        sk: String,
        project_id: Option<String>,
        security_token: Option<String>,
        method: String,
        url: String,
        query_params: Vec<(String, String)>,
        headers: serde_json::Map<String, serde_json::Value>,
        body: String,
        expected: Expected,
    }

    #[derive(Deserialize)]
    struct Expected {
        authorization: String,
        signature: String,
        signed_headers: String,
        canonical_request: String,
        string_to_sign: String,
        headers_after_signing: serde_json::Map<String, serde_json::Value>,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str::<VectorFile>(VECTORS)
            .expect("vector file parses")
            .vectors
    }

    /// Builds the headers the SDK signs, as cce-api.md §10 describes.
    fn headers_to_sign(v: &Vector) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = v
            .headers
            .iter()
            .map(|(k, val)| (k.clone(), val.as_str().expect("string header").to_string()))
            .collect();
        if let Some(project) = &v.project_id {
            headers.push(("X-Project-Id".into(), project.clone()));
        }
        if let Some(token) = &v.security_token {
            headers.push(("X-Security-Token".into(), token.clone()));
        }
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "Content-Type")
            .map(|(_, v)| v.as_str());
        if needs_unsigned_payload(content_type) {
            headers.push((CONTENT_SHA256_HEADER.into(), UNSIGNED_PAYLOAD.into()));
        }
        let url = url::Url::parse(&v.url).expect("vector url");
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().expect("host")),
            None => url.host_str().expect("host").to_string(),
        };
        headers.push(("Host".into(), host));
        for (_, value) in &mut headers {
            *value = value.trim().to_string();
        }
        headers
    }

    fn wire_path(url: &str) -> String {
        url::Url::parse(url).expect("vector url").path().to_string()
    }

    #[test]
    fn every_official_vector_is_reproduced_exactly() {
        let vectors = vectors();
        assert_eq!(vectors.len(), 14);
        for v in &vectors {
            let headers = headers_to_sign(v);
            let path = wire_path(&v.url);
            let req = SignableRequest {
                method: &v.method,
                path: &path,
                query: &v.query_params,
                headers: &headers,
                body: v.body.as_bytes(),
            };
            let signed = sign(&v.ak, v.sk.as_bytes(), &req).expect("signs");
            let e = &v.expected;
            assert_eq!(signed.canonical_request, e.canonical_request, "{}", v.name);
            assert_eq!(signed.string_to_sign, e.string_to_sign, "{}", v.name);
            assert_eq!(
                signed.signed_headers.join(";"),
                e.signed_headers,
                "{}",
                v.name
            );
            assert_eq!(signed.signature, e.signature, "{}", v.name);
            assert_eq!(signed.authorization, e.authorization, "{}", v.name);

            let mut sent: Vec<(String, String)> = e
                .headers_after_signing
                .iter()
                .map(|(k, val)| (k.to_ascii_lowercase(), val.as_str().expect("str").into()))
                .collect();
            let mut ours: Vec<(String, String)> = headers
                .iter()
                .map(|(k, val)| (k.to_ascii_lowercase(), val.clone()))
                .chain([("authorization".into(), signed.authorization.clone())])
                .collect();
            sent.sort();
            ours.sort();
            assert_eq!(ours, sent, "{}: headers on the wire", v.name);
        }
    }

    #[test]
    fn every_official_vector_verifies_from_its_wire_form() {
        for v in vectors() {
            let url = url::Url::parse(&v.url).expect("vector url");
            let query = decode_query(url.query().unwrap_or_default());
            assert_eq!(query, v.query_params, "{}: query decoding", v.name);
            let headers: Vec<(String, String)> = v
                .expected
                .headers_after_signing
                .iter()
                .map(|(k, val)| (k.clone(), val.as_str().expect("str").into()))
                .collect();
            let req = SignableRequest {
                method: &v.method,
                path: url.path(),
                query: &query,
                headers: &headers,
                body: v.body.as_bytes(),
            };
            let auth = req.header("Authorization").expect("authorization");
            let parsed = parse_authorization(auth).expect("parses");
            assert_eq!(parsed.access, v.ak);
            assert_eq!(check(&req, &parsed, v.sk.as_bytes()), Ok(()), "{}", v.name);
            assert!(!verify(&req, &parsed, b"wrong secret"), "{}", v.name);
        }
    }

    #[test]
    fn a_tampered_request_fails_verification() {
        let v = vectors().into_iter().next().expect("one vector");
        let mut headers: Vec<(String, String)> = v
            .expected
            .headers_after_signing
            .iter()
            .map(|(k, val)| (k.clone(), val.as_str().expect("str").into()))
            .collect();
        let parsed = parse_authorization(&v.expected.authorization).expect("parses");
        let path = wire_path(&v.url);
        let other_path = path.replace("upgradeworkflows/0b6b", "upgradeworkflows/1b6b");
        let tampered_path = SignableRequest {
            method: "GET",
            path: &other_path,
            query: &[],
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            check(&tampered_path, &parsed, v.sk.as_bytes()),
            Err(SignError::SignatureMismatch)
        );
        let tampered_method = SignableRequest {
            method: "DELETE",
            path: &path,
            ..tampered_path
        };
        assert!(!verify(&tampered_method, &parsed, v.sk.as_bytes()));
        headers.retain(|(k, _)| k != "X-Project-Id");
        let missing_header = SignableRequest {
            method: "GET",
            path: &path,
            query: &[],
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            check(&missing_header, &parsed, v.sk.as_bytes()),
            Err(SignError::MissingSignedHeader("x-project-id".into()))
        );
    }

    #[test]
    fn an_unsigned_payload_marker_that_is_not_signed_is_named() {
        let mut headers = vec![
            ("Host".to_string(), "h".to_string()),
            ("X-Sdk-Date".to_string(), "20240315T081530Z".to_string()),
        ];
        let signed = sign(
            "AK",
            b"sk",
            &SignableRequest {
                method: "POST",
                path: "/",
                query: &[],
                headers: &headers,
                body: b"original",
            },
        )
        .expect("signs");
        let parsed = parse_authorization(&signed.authorization).expect("parses");
        headers.push((CONTENT_SHA256_HEADER.into(), UNSIGNED_PAYLOAD.into()));
        let swapped = SignableRequest {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"swapped",
        };
        assert_eq!(
            check(&swapped, &parsed, b"sk"),
            Err(SignError::UnsignedRequiredHeader("x-sdk-content-sha256"))
        );
    }

    #[test]
    fn canonical_uri_decodes_then_reencodes_each_segment() {
        assert_eq!(canonical_uri("/a/b"), "/a/b/");
        assert_eq!(canonical_uri("/a/b/"), "/a/b/");
        assert_eq!(canonical_uri("/c/my%20cluster%2Fx"), "/c/my%20cluster/x/");
        assert_eq!(canonical_uri("/p/%25/x"), "/p/%25/x/");
        assert_eq!(canonical_uri("/wf~%e6%b5%8b"), "/wf~%E6%B5%8B/");
        assert_eq!(canonical_uri("/a*b+c"), "/a%2Ab%2Bc/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/%FF"), "/%EF%BF%BD/");
    }

    #[test]
    fn canonical_query_sorts_decoded_pairs_before_encoding() {
        let pairs = decode_query("a%C3%A9b=3&a%7Bb=2&a_b=1&A=0&tag=z&tag=a&bare");
        assert_eq!(
            canonical_query(&pairs),
            "A=0&a_b=1&a%7Bb=2&a%C3%A9b=3&bare=&tag=a&tag=z"
        );
        assert_eq!(canonical_query(&[]), "");
        assert_eq!(
            decode_query("p=1+1&&s=a%20b"),
            [
                ("p".to_string(), "1+1".to_string()),
                ("s".to_string(), "a b".to_string())
            ]
        );
    }

    #[test]
    fn signed_headers_skip_underscores_and_authorization() {
        let headers = [
            ("X-Sdk-Date".to_string(), "x".to_string()),
            ("Host".to_string(), "h".to_string()),
            ("X_Custom".to_string(), "x".to_string()),
            ("host".to_string(), "h".to_string()),
            ("Authorization".to_string(), "x".to_string()),
        ];
        assert_eq!(signed_header_names(&headers), ["host", "x-sdk-date"]);
    }

    #[test]
    fn authorization_parsing_refuses_other_algorithms_and_garbage() {
        for bad in [
            "",
            "SDK-HMAC-SHA256",
            "SDK-HMAC-SM3 Access=a, SignedHeaders=host, Signature=00",
            "SDK-HMAC-SHA256 Access=a, SignedHeaders=host",
            "SDK-HMAC-SHA256 Access=a, SignedHeaders=host, Signature=00, Extra=1",
            "SDK-HMAC-SHA256 Access=a, Access=b, SignedHeaders=host, Signature=00",
            "SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature=00",
            "SDK-HMAC-SHA256 Access=a, SignedHeaders=host;;x, Signature=00",
            "SDK-HMAC-SHA256 \u{1F600}",
        ] {
            assert_eq!(
                parse_authorization(bad),
                Err(SignError::MalformedAuthorization),
                "{bad:?}"
            );
        }
        let parsed = parse_authorization(
            "SDK-HMAC-SHA256 Signature=ab,Access=AK,SignedHeaders=Host;X-Sdk-Date",
        )
        .expect("parses");
        assert_eq!(parsed.signed_headers, ["host", "x-sdk-date"]);
    }

    #[test]
    fn a_signature_that_is_not_hex_is_a_mismatch_not_a_panic() {
        let headers = [
            ("Host".to_string(), "h".to_string()),
            ("X-Sdk-Date".to_string(), "20240315T081530Z".to_string()),
        ];
        let req = SignableRequest {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"",
        };
        let parsed = ParsedAuthorization {
            access: "AK".into(),
            signed_headers: vec!["host".into(), "x-sdk-date".into()],
            signature: "zz\u{e9}".into(),
        };
        assert_eq!(
            check(&req, &parsed, b"sk"),
            Err(SignError::SignatureMismatch)
        );
    }

    #[test]
    fn sdk_dates_format_and_parse() {
        let ts: Timestamp = "2024-03-15T08:15:30.75Z".parse().expect("ts");
        assert_eq!(sdk_date(ts), "20240315T081530Z");
        assert_eq!(
            parse_sdk_date("20240315T081530Z"),
            Ok("2024-03-15T08:15:30Z".parse().expect("ts"))
        );
        for bad in [
            "",
            "2024-03-15T08:15:30Z",
            "20240315T081530",
            "20241315T081530Z",
            "2024315T81530Z",
        ] {
            assert_eq!(
                parse_sdk_date(bad),
                Err(SignError::MalformedDate),
                "{bad:?}"
            );
        }
    }
}
