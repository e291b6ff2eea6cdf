//! TLS for the front listener: a rustls server config (ring provider) from PEM files, TLS 1.3 only
//! unless 1.2 is asked for, ALPN `http/1.1`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Tls;

pub fn server_config(t: &Tls) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .map_err(|e| format!("tls cert {}: {e}", t.cert))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls cert {}: {e}", t.cert))?;
    if certs.is_empty() {
        return Err(format!("tls cert {}: no certificate in the file", t.cert));
    }
    let key =
        PrivateKeyDer::from_pem_file(&t.key).map_err(|e| format!("tls key {}: {e}", t.key))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if t.min_version == "1.2" {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| format!("tls: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("tls: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
