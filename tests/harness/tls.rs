//! HTTPS in front of a test server: a CA of the test's own, a certificate it signed for
//! 127.0.0.1, and a TLS front that passes each request to the plain server behind it and its
//! answer back (one request per connection, as the test server answers).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct Tls {
    pub port: u16,
    /// The CA's certificate, PEM: what a host's store would have to hold to trust the front.
    pub ca_pem: String,
}

impl Tls {
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// A CA of its own, PEM (one that signed nothing the front serves).
pub fn unrelated_ca() -> String {
    ca("another CA").pem()
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Serves TLS on a port of its own, passing requests to `backend` on 127.0.0.1.
pub fn front(backend: u16) -> Tls {
    let ca = ca("wasmvisor test CA");
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let chain = vec![CertificateDer::from(leaf.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || pass(stream, config, backend));
        }
    });
    Tls {
        port,
        ca_pem: ca.pem(),
    }
}

/// One request through: its head to the backend, the backend's whole answer back.
fn pass(stream: TcpStream, config: Arc<rustls::ServerConfig>, backend: u16) {
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            // A client that refused the certificate ends the handshake here.
            _ => return,
        }
    }
    let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend)) else {
        return;
    };
    if plain.write_all(&head).is_err() {
        return;
    }
    let mut answer = [0u8; 16 * 1024];
    while let Ok(n @ 1..) = plain.read(&mut answer) {
        if tls.write_all(&answer[..n]).is_err() {
            return;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
