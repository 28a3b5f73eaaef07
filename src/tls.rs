//! The certificate authorities TLS trusts: the host's own store, as Cosmovisor (Go's
//! crypto/x509) and curl read it. `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else the
//! distribution's bundle (`/etc/ssl/certs/ca-certificates.crt` on Debian and Ubuntu,
//! `/etc/pki/tls/certs/ca-bundle.crt` on Fedora, `/etc/ssl/cert.pem` on Alpine, …). An operator
//! who trusts a private CA adds it the way the host does, and a revoked root goes with the host's
//! updates instead of waiting for wasmvisor's.
//!
//! Read once, by the first HTTP client wasmvisor builds, and shared by every one after it. A
//! host without a store is said once, with what to do; plain-HTTP requests work regardless.

use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// The TLS settings of every HTTP client: rustls with ring, the host's roots.
pub fn config() -> TlsConfig {
    TlsConfig::builder().root_certs(roots()).build()
}

fn roots() -> RootCerts {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    let certs = ROOTS.get_or_init(|| Arc::new(load()));
    RootCerts::Specific(certs.clone())
}

fn load() -> Vec<Certificate<'static>> {
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> = found
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    if certs.is_empty() {
        tracing::warn!(
            errors = errors.join("; "),
            "no CA certificates found in the host's store: HTTPS requests (downloads, plugins) \
             will fail to verify their servers; install the distribution's ca-certificates, or \
             set SSL_CERT_FILE to a PEM bundle (SSL_CERT_DIR to a folder of them)"
        );
    } else if !errors.is_empty() {
        tracing::warn!(
            loaded = certs.len(),
            errors = errors.join("; "),
            "some of the host's CA certificates could not be read; HTTPS trusts the others"
        );
    }
    certs
}
