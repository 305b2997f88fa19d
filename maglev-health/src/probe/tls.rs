//! TLS for probes: parameters, client configs built once, the skip-verify verifier and short
//! failure details.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{CertificateError, ClientConnection, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Outcome, SpecError, io_detail, timeout_detail};
use crate::result::ResultCode;

/// TLS parameters of a probe (`params.server-name`, `params.insecure-skip-verify`).
///
/// The rustls client config is built once, when the parameters are made, and shared by every
/// probe that uses them. Session resumption is off, so every probe does a full handshake and
/// sees the certificate the server presents now. Two values are equal when their server name
/// and trust settings are.
#[derive(Clone)]
pub struct TlsParams {
    server_name: Option<String>,
    trust: Trust,
    config: Arc<ClientConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Trust {
    /// The Mozilla roots from `webpki-roots`.
    WebPki,
    /// Explicit trust anchors.
    Roots(Arc<[CertificateDer<'static>]>),
    /// Accept any certificate; still check handshake signatures.
    SkipVerify,
}

impl TlsParams {
    /// Verifies against the bundled Mozilla roots, or accepts any certificate when
    /// `insecure_skip_verify` is set. `server_name` is the name to verify and send as SNI (a
    /// DNS name or an IP address); `None` lets the probe pick (see the [module docs](super)).
    pub fn new(server_name: Option<String>, insecure_skip_verify: bool) -> Result<Self, SpecError> {
        check_name(server_name.as_deref())?;
        let (trust, config) = if insecure_skip_verify {
            (Trust::SkipVerify, shared(&SKIP_VERIFY, skip_verify_config)?)
        } else {
            (Trust::WebPki, shared(&WEBPKI, webpki_config)?)
        };
        Ok(Self {
            server_name,
            trust,
            config,
        })
    }

    /// Verifies against `roots` only (a private CA, or a self-signed certificate trusted as
    /// is) instead of the bundled roots.
    pub fn with_roots(
        server_name: Option<String>,
        roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, SpecError> {
        check_name(server_name.as_deref())?;
        let mut store = RootCertStore::empty();
        for (i, cert) in roots.iter().enumerate() {
            store
                .add(cert.clone())
                .map_err(|e| SpecError::InvalidRoots(format!("certificate {i}: {e}")))?;
        }
        let config = finish(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| SpecError::InvalidRoots(e.to_string()))?
                .with_root_certificates(store)
                .with_no_client_auth(),
        );
        Ok(Self {
            server_name,
            trust: Trust::Roots(roots.into()),
            config,
        })
    }

    /// The configured name to verify and send as SNI, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Whether certificate verification is skipped.
    pub fn insecure_skip_verify(&self) -> bool {
        self.trust == Trust::SkipVerify
    }

    /// The name a probe of `target` verifies: the configured server name, else the `Host`
    /// value without its port when it is a valid name, else the target address.
    pub(super) fn name_for(&self, host: Option<&str>, target: IpAddr) -> ServerName<'static> {
        self.server_name
            .as_deref()
            .or_else(|| host.map(strip_port))
            .and_then(|n| ServerName::try_from(n.to_owned()).ok())
            .unwrap_or_else(|| ServerName::IpAddress(target.into()))
    }
}

impl PartialEq for TlsParams {
    fn eq(&self, other: &Self) -> bool {
        self.server_name == other.server_name && self.trust == other.trust
    }
}

impl Eq for TlsParams {}

impl fmt::Debug for TlsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trust = match &self.trust {
            Trust::WebPki => "webpki-roots".to_owned(),
            Trust::Roots(r) => format!("{} explicit root(s)", r.len()),
            Trust::SkipVerify => "insecure-skip-verify".to_owned(),
        };
        f.debug_struct("TlsParams")
            .field("server_name", &self.server_name)
            .field("trust", &trust)
            .finish()
    }
}

fn check_name(name: Option<&str>) -> Result<(), SpecError> {
    match name {
        Some(n) if ServerName::try_from(n).is_err() => {
            Err(SpecError::InvalidServerName(n.to_owned()))
        }
        _ => Ok(()),
    }
}

/// `example.com:8443` -> `example.com`, `[2001:db8::1]:443` -> `2001:db8::1`; a bare IPv6
/// address stays as it is.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

static WEBPKI: OnceLock<Result<Arc<ClientConfig>, SpecError>> = OnceLock::new();
static SKIP_VERIFY: OnceLock<Result<Arc<ClientConfig>, SpecError>> = OnceLock::new();

fn shared(
    cell: &'static OnceLock<Result<Arc<ClientConfig>, SpecError>>,
    make: fn() -> Result<Arc<ClientConfig>, SpecError>,
) -> Result<Arc<ClientConfig>, SpecError> {
    cell.get_or_init(make).clone()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

fn webpki_config() -> Result<Arc<ClientConfig>, SpecError> {
    let store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(finish(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| SpecError::InvalidRoots(e.to_string()))?
            .with_root_certificates(store)
            .with_no_client_auth(),
    ))
}

fn skip_verify_config() -> Result<Arc<ClientConfig>, SpecError> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyCert {
        algorithms: provider.signature_verification_algorithms,
    });
    Ok(finish(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SpecError::InvalidRoots(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// Accepts any certificate chain for any name, but still checks that the server's handshake
/// signature is valid for the key in the certificate it sent, with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Runs the TLS handshake on `stream` before `deadline`: `L6RSP` on failure, `L6TOUT` when the
/// deadline passes.
pub(super) async fn handshake(
    stream: TcpStream,
    params: &TlsParams,
    name: ServerName<'static>,
    deadline: Instant,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, Outcome> {
    let connector = TlsConnector::from(Arc::clone(&params.config));
    match tokio::time::timeout_at(deadline, connector.connect(name.clone(), stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err((ResultCode::L6Rsp, error_detail(&e, &name))),
        Err(_) => Err((ResultCode::L6Tout, timeout_detail(timeout))),
    }
}

/// `"tls handshake done (TLSv1.3)"`.
pub(super) fn describe(conn: &ClientConnection) -> String {
    match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "tls handshake done (TLSv1.3)".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "tls handshake done (TLSv1.2)".to_owned(),
        _ => "tls handshake done".to_owned(),
    }
}

/// A short detail for a failed handshake.
fn error_detail(e: &std::io::Error, name: &ServerName<'_>) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "connection closed during tls handshake".into(),
            _ => format!("tls handshake: {}", io_detail(e)),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate not valid for name \"{}\"", name.to_str())
            }
            CertificateError::UnknownIssuer => "certificate signed by unknown authority".into(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not yet valid".into()
            }
            CertificateError::BadEncoding => "malformed certificate".into(),
            CertificateError::BadSignature => "bad certificate signature".into(),
            CertificateError::Revoked => "certificate revoked".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "certificate not valid for server authentication".into()
            }
            other => format!("invalid certificate: {other:?}"),
        },
        rustls::Error::AlertReceived(alert) => format!("tls alert from server: {alert:?}"),
        other => format!("tls: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_are_stripped_for_the_tls_name() {
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("example.com:8443"), "example.com");
        assert_eq!(strip_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(strip_port("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(strip_port("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn name_precedence_is_server_name_then_host_then_address() {
        let target: IpAddr = "192.0.2.7".parse().unwrap();
        let named = TlsParams::new(Some("api.example".into()), false).unwrap();
        let unnamed = TlsParams::new(None, false).unwrap();
        assert_eq!(
            named.name_for(Some("other.example"), target).to_str(),
            "api.example"
        );
        assert_eq!(
            unnamed.name_for(Some("www.example:8080"), target).to_str(),
            "www.example"
        );
        assert_eq!(unnamed.name_for(None, target).to_str(), "192.0.2.7");
        assert!(matches!(
            unnamed.name_for(None, target),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn params_compare_by_name_and_trust_and_reject_bad_names() {
        let a = TlsParams::new(Some("a.example".into()), false).unwrap();
        assert_eq!(a, TlsParams::new(Some("a.example".into()), false).unwrap());
        assert_ne!(a, TlsParams::new(Some("a.example".into()), true).unwrap());
        assert_ne!(a, TlsParams::new(None, false).unwrap());
        assert!(TlsParams::new(None, true).unwrap().insecure_skip_verify());
        assert_eq!(
            TlsParams::new(Some("not a name".into()), false),
            Err(SpecError::InvalidServerName("not a name".into()))
        );
        assert!(matches!(
            TlsParams::with_roots(None, vec![CertificateDer::from(vec![1, 2, 3])]),
            Err(SpecError::InvalidRoots(_))
        ));
    }
}
