//! TLS for the CCE listener (rustls with the ring provider): either a certificate generated
//! at start for `127.0.0.1`/`localhost`, issued by a throwaway CA whose PEM clients can
//! trust as a CA bundle, or a certificate chain and key from PEM files.
//!
//! Why a CA and a leaf rather than one self-signed leaf: verifiers differ on a leaf that is
//! its own trust anchor (OpenSSL's strict mode, webpki's CA-as-end-entity check); a CA
//! with a separate server certificate is accepted by all of them. I/O: reads PEM files;
//! generating keys is random.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names the generated certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// A generated certificate: the server's TLS configuration and the CA to trust.
pub struct Generated {
    pub config: Arc<ServerConfig>,
    pub ca_pem: String,
}

/// Generates a CA and a server certificate for [`SELF_SIGNED_NAMES`].
pub fn self_signed() -> Result<Generated, String> {
    let fail = |e: rcgen::Error| format!("cannot generate the TLS certificate: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "cce-upgrade-watch simulator CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(fail)?).map_err(fail)?;

    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let mut leaf = CertificateParams::new(names).map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "cce-upgrade-watch simulator");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(fail)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).map_err(fail)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = server_config(vec![leaf_cert.der().clone()], key)?;
    Ok(Generated {
        config,
        ca_pem: ca.pem(),
    })
}

/// Loads a PEM certificate chain (leaf first) and its PEM private key.
pub fn from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    server_config(chain, key)
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate and key do not fit: {e}"))?;
    // HTTP/1.1 only: the connection-reset fault and the SDK both speak it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ca_is_pem_and_files_round_trip() {
        let generated = self_signed().expect("generate");
        assert!(generated.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        assert!(from_files(&missing, &missing).is_err());
        let bogus = dir.path().join("bogus.pem");
        std::fs::write(&bogus, "not pem").expect("write");
        assert!(from_files(&bogus, &bogus).is_err());
    }
}
