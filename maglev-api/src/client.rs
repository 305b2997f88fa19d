//! Connecting a [`MaglevClient`] to maglevd from one address string, as operators write it.
//!
//! | address | transport |
//! |---|---|
//! | `host:port`, `http://host:port` | plain HTTP/2 over TCP |
//! | `https://host:port` | TLS over TCP: the web PKI roots, or the CA of [`TlsOptions`] |
//! | `unix:/path`, `unix:///path` | plain HTTP/2 over a unix socket |
//!
//! IPv6 hosts are bracketed (`[::1]:9090`). The port is required: maglevd has no well-known
//! one (its default is 9090). [`parse_target`] is the pure half, so a bad address is refused
//! with a typed [`AddressError`] before any connection is tried; [`connect`] and
//! [`connect_with`] connect at once and fail with a [`ConnectError`] that names the address.
//!
//! This module deliberately does not retry or reconnect: a tonic `Channel` reconnects by
//! itself after the first connection, and a CLI wants the first failure fast.

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::v1::maglev_client::MaglevClient;

/// How long [`connect`] waits for the transport (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to connect, parsed from an address string by [`parse_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// TCP: `uri` is `http://host:port` or `https://host:port`.
    Tcp {
        /// The normalized URI.
        uri: Uri,
        /// Whether the connection uses TLS (`https://`).
        tls: bool,
    },
    /// A unix socket at this path.
    Unix(PathBuf),
}

/// Why an address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The address is empty.
    #[error("empty address: expected host:port, http://host:port, https://host:port or unix:/path")]
    Empty,
    /// `unix:` with no path after it.
    #[error("{0:?}: the unix socket path is empty")]
    EmptyUnixPath(String),
    /// A scheme other than `http`, `https` or `unix`.
    #[error("{address:?}: unsupported scheme {scheme:?} (use http, https or unix)")]
    UnsupportedScheme {
        /// The address given.
        address: String,
        /// Its scheme.
        scheme: String,
    },
    /// Not a URI.
    #[error("{address:?}: not a valid address: {reason}")]
    Invalid {
        /// The address given.
        address: String,
        /// What the URI parser said.
        reason: String,
    },
    /// No host.
    #[error("{0:?}: missing host")]
    MissingHost(String),
    /// No port.
    #[error("{0:?}: missing port (maglevd's default is 9090)")]
    MissingPort(String),
    /// A path, query or fragment after the authority.
    #[error("{0:?}: unexpected path after host:port")]
    UnexpectedPath(String),
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address string is malformed.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// [`TlsOptions`] were given for an address that is not `https://`.
    #[error("{0:?}: TLS options need an https:// address")]
    TlsWithoutHttps(String),
    /// The TLS settings were refused (for example a malformed certificate).
    #[error("{address:?}: bad TLS settings")]
    Tls {
        /// The address given.
        address: String,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The connection (or the TLS handshake) failed.
    #[error("connecting to {address:?}")]
    Connect {
        /// The address given.
        address: String,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// TLS settings for `https://` addresses.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM CA certificate(s) to trust instead of the web PKI roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and private key, for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to verify in the server's certificate, when it is not the address's host.
    pub server_name: Option<String>,
}

/// Parses an address string into a [`Target`] without connecting.
///
/// # Errors
/// An [`AddressError`] saying what is wrong.
pub fn parse_target(address: &str) -> Result<Target, AddressError> {
    let trimmed = address.trim();
    if trimmed.is_empty() {
        return Err(AddressError::Empty);
    }
    if let Some(rest) = trimmed.strip_prefix("unix:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(AddressError::EmptyUnixPath(address.to_owned()));
        }
        return Ok(Target::Unix(PathBuf::from(path)));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(
            |e: tonic::codegen::http::uri::InvalidUri| AddressError::Invalid {
                address: address.to_owned(),
                reason: e.to_string(),
            },
        )?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => {
            return Err(AddressError::UnsupportedScheme {
                address: address.to_owned(),
                scheme: other.unwrap_or_default().to_owned(),
            });
        }
    };
    let Some(authority) = uri.authority() else {
        return Err(AddressError::MissingHost(address.to_owned()));
    };
    if authority.host().is_empty() {
        return Err(AddressError::MissingHost(address.to_owned()));
    }
    if authority.port_u16().is_none() {
        return Err(AddressError::MissingPort(address.to_owned()));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(AddressError::UnexpectedPath(address.to_owned()));
    }
    Ok(Target::Tcp { uri, tls })
}

/// Connects to maglevd at `address` (see the module doc), with the web PKI roots for
/// `https://`.
///
/// # Errors
/// [`ConnectError`]: a bad address, or the connection failed.
pub async fn connect(address: &str) -> Result<MaglevClient<Channel>, ConnectError> {
    connect_with(address, None).await
}

/// Connects to maglevd at `address`, with `tls` for an `https://` address.
///
/// # Errors
/// [`ConnectError`]: a bad address, TLS options for a non-TLS address, bad TLS settings, or the
/// connection failed.
pub async fn connect_with(
    address: &str,
    tls: Option<&TlsOptions>,
) -> Result<MaglevClient<Channel>, ConnectError> {
    let endpoint = endpoint(address, tls)?;
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| ConnectError::Connect {
            address: address.to_owned(),
            source,
        })?;
    Ok(MaglevClient::new(channel))
}

/// The tonic [`Endpoint`] for `address`, configured but not connected: for callers that want
/// their own timeouts or a lazy channel.
///
/// # Errors
/// As [`connect_with`], except connection failures.
pub fn endpoint(address: &str, tls: Option<&TlsOptions>) -> Result<Endpoint, ConnectError> {
    let tls_error = |source| ConnectError::Tls {
        address: address.to_owned(),
        source,
    };
    let endpoint = match parse_target(address)? {
        Target::Unix(path) => {
            if tls.is_some() {
                return Err(ConnectError::TlsWithoutHttps(address.to_owned()));
            }
            Endpoint::from_shared(format!("unix:{}", path.display())).map_err(|source| {
                ConnectError::Connect {
                    address: address.to_owned(),
                    source,
                }
            })?
        }
        Target::Tcp { uri, tls: false } => {
            if tls.is_some() {
                return Err(ConnectError::TlsWithoutHttps(address.to_owned()));
            }
            Endpoint::from(uri)
        }
        Target::Tcp { uri, tls: true } => Endpoint::from(uri)
            .tls_config(client_tls(tls))
            .map_err(tls_error)?,
    };
    Ok(endpoint.connect_timeout(CONNECT_TIMEOUT))
}

fn client_tls(options: Option<&TlsOptions>) -> ClientTlsConfig {
    let mut config = ClientTlsConfig::new();
    let Some(options) = options else {
        return config.with_webpki_roots();
    };
    config = match &options.ca_pem {
        Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
        None => config.with_webpki_roots(),
    };
    if let Some((cert, key)) = &options.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    if let Some(name) = &options.server_name {
        config = config.domain_name(name.clone());
    }
    config
}
