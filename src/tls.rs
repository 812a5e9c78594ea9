//! TLS termination with rustls: loading the certificate chain and key for a listener.
//! The handshake and record layer are driven by the client connection (see `proxy::socket`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Builds a server configuration from PEM files. ALPN offers `http/1.1` only, because the
/// gateway speaks HTTP/1.1.
pub fn server_config(certificate: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|error| format!("cannot read certificate file {}: {error}", certificate.display()))?
        .collect::<Result<_, _>>()
        .map_err(|error| format!("invalid PEM in certificate file {}: {error}", certificate.display()))?;
    if chain.is_empty() {
        return Err(format!("certificate file {} contains no certificate", certificate.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| format!("cannot read a private key from {}: {error}", key.display()))?;
    // rustls 0.23.48 deprecates the ring provider because it offers no post-quantum key
    // exchange. Only aws-lc-rs offers that, and it needs cmake to build, so ring stays.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS setup failed: {error}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| format!("the certificate and key do not form a usable pair: {error}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
