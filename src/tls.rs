//! TLS for all three ends rollcheck runs: the load's client (rustls, no OpenSSL: the static
//! binary in a scratch image links no system library), `rollcheck serve --tls-cert`, and the
//! lab edge's certificate, made for one run and signed by a CA made with it. A handshake
//! failure is turned into words a user can act on here, not in the load loop.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How the load verifies an https target's certificate.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Trust {
    /// CA certificates (DER) to trust instead of the system's: `[load] tls.ca`, or the CA of
    /// a lab edge's run certificate. Empty: the system's roots.
    pub ca: Vec<Vec<u8>>,
    /// Accept any certificate (`tls.insecure`): still TLS, no authentication.
    pub insecure: bool,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("ca", &format!("{} certificate(s)", self.ca.len()))
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Reads a PEM file of CA certificates (what `tls.ca` names): at least one, all parseable.
pub fn read_ca(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in &certs {
        roots
            .add(CertificateDer::from(c.as_slice()))
            .map_err(|e| format!("{}: not a usable CA certificate ({e})", path.display()))?;
    }
    Ok(certs)
}

/// The load's client config: HTTP/1.1 over TLS 1.2 or 1.3, trusting what `trust` says.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let mut config = if trust.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if trust.ca.is_empty() {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err("tls: no system CA certificates found (install ca-certificates, or name the CA with [load] tls = { ca = \"ca.pem\" })".into());
            }
        } else {
            for c in &trust.ca {
                roots
                    .add(CertificateDer::from(c.as_slice()))
                    .map_err(|e| format!("tls: CA certificate: {e}"))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name the certificate must be valid for and the client sends as SNI: the URL's host
/// (an IP literal is checked against the certificate's IP addresses).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?}: not a TLS server name ({e})"))
}

/// `insecure = true`: every certificate is accepted, but the handshake's signatures are still
/// checked, so the connection is TLS with an unauthenticated peer (curl's `--insecure`).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a handshake failed, in words: rustls's error inside the io::Error when there is one.
pub fn handshake_error(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return format!("tls handshake: {e}");
    };
    let hint = "set [load] tls = { ca = \"ca.pem\" } to trust a private CA, or tls = { insecure = true } for a self-signed staging certificate";
    match tls {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            format!("tls handshake: certificate not trusted: unknown issuer ({hint})")
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "tls handshake: the certificate is not valid for this host name (test another name with [load] connect_to, or {hint})"
        ),
        rustls::Error::InvalidCertificate(c) => {
            format!("tls handshake: invalid certificate: {c:?} ({hint})")
        }
        other => format!("tls handshake: {other}"),
    }
}

/// `rollcheck serve --tls-cert --tls-key`: the certificate chain and its key, PEM.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A certificate for `names` (DNS names or IP addresses) signed by a CA made with it, PEM.
/// The lab's edge serves it; the load trusts `ca_pem`; tests make their own with it too.
#[derive(Clone)]
pub struct RunCertificate {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for RunCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunCertificate { key: <redacted> }")
    }
}

impl PartialEq for RunCertificate {
    /// Made anew for every plan: two plans of the same file differ only in their keys.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl RunCertificate {
    pub fn generate(ca_name: &str, names: &[&str]) -> Result<RunCertificate, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let err = |e: rcgen::Error| format!("making a certificate: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().map_err(err)?;
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(err)?;
        leaf.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("rollcheck"),
        );
        let cert = leaf.signed_by(&key, &issuer).map_err(err)?;
        Ok(RunCertificate {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA as the load's [`Trust`] holds it.
    pub fn ca_der(&self) -> Vec<u8> {
        CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_certificate_is_trusted_through_its_ca_only() {
        let c = RunCertificate::generate("rollcheck test CA", &["localhost", "127.0.0.1"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &c.ca_pem).unwrap();
        assert_eq!(read_ca(&ca).unwrap(), vec![c.ca_der()]);
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, &c.cert_pem).unwrap();
        std::fs::write(&key, &c.key_pem).unwrap();
        server_config(&cert, &key).unwrap();
        // The key is not PEM certificates, and an empty file holds none.
        let e = read_ca(&key).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
        std::fs::write(&ca, "").unwrap();
        assert!(read_ca(&ca).unwrap_err().contains("no certificate"));
    }

    #[test]
    fn server_names_accept_hosts_and_ip_literals() {
        assert!(server_name("shop.staging.example").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("bad name").is_err());
    }
}
