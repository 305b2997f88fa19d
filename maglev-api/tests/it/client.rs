//! `maglev_api::client`: connecting over TCP, TLS, mutual TLS and unix sockets, and refusing
//! bad addresses with clear errors.

use std::error::Error as _;

use maglev_api::client::{self, AddressError, ConnectError, Target, TlsOptions};
use maglev_api::v1::{GetFrontendRequest, GetVersionRequest, ListBackendsRequest};
use tonic::Code;

use crate::support::{self, Pki, VERSION};

async fn version_of(
    client: &mut maglev_api::v1::maglev_client::MaglevClient<tonic::transport::Channel>,
) -> String {
    client
        .get_version(GetVersionRequest {})
        .await
        .expect("GetVersion answers")
        .into_inner()
        .version
}

#[tokio::test]
async fn connects_over_tcp_loopback_with_and_without_a_scheme() {
    let addr = support::serve_tcp(None).await;
    for address in [addr.to_string(), format!("http://{addr}")] {
        let mut client = client::connect(&address).await.expect("connects");
        assert_eq!(version_of(&mut client).await, VERSION);
    }
}

#[tokio::test]
async fn server_replies_and_status_codes_come_through() {
    let addr = support::serve_tcp(None).await;
    let mut client = client::connect(&addr.to_string()).await.unwrap();

    let web = client
        .get_frontend(GetFrontendRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(web.ip().unwrap().to_string(), "192.0.2.10");
    assert_eq!(web.ip_prefix().unwrap().prefix_len(), 32);
    let member = &web.pools[0].backends[0];
    assert_eq!(member.weight_override, Some(50));
    assert_eq!(member.state(), maglev_api::v1::BackendState::Up);

    let missing = client
        .get_frontend(GetFrontendRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("nope"));

    let unimplemented = client
        .list_backends(ListBackendsRequest {})
        .await
        .unwrap_err();
    assert_eq!(unimplemented.code(), Code::Unimplemented);
}

#[tokio::test]
async fn connects_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maglev.sock");
    support::serve_unix(&path);
    let address = format!("unix:{}", path.display());
    let mut client = client::connect(&address).await.expect("connects");
    assert_eq!(version_of(&mut client).await, VERSION);

    let uri_form = format!("unix://{}", path.display());
    let mut client = client::connect(&uri_form).await.expect("connects");
    assert_eq!(version_of(&mut client).await, VERSION);
}

#[tokio::test]
async fn a_missing_unix_socket_is_a_connect_error_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:{}", dir.path().join("absent.sock").display());
    let err = client::connect(&address).await.unwrap_err();
    assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.sock"), "{err}");
}

#[tokio::test]
async fn connects_over_tls_with_the_given_ca() {
    let pki = Pki::new();
    let addr = support::serve_tcp(Some(pki.server_tls(false))).await;
    let options = TlsOptions {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..TlsOptions::default()
    };
    let mut client = client::connect_with(&format!("https://{addr}"), Some(&options))
        .await
        .expect("connects");
    assert_eq!(version_of(&mut client).await, VERSION);

    let by_name = TlsOptions {
        server_name: Some("localhost".to_owned()),
        ..options
    };
    let mut client = client::connect_with(&format!("https://{addr}"), Some(&by_name))
        .await
        .expect("connects, verifying the name localhost");
    assert_eq!(version_of(&mut client).await, VERSION);
}

#[tokio::test]
async fn tls_refuses_a_server_the_roots_do_not_trust() {
    let pki = Pki::new();
    let addr = support::serve_tcp(Some(pki.server_tls(false))).await;
    // The web PKI roots do not include the test CA.
    let err = client::connect(&format!("https://{addr}"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");

    // A certificate for another name is refused too.
    let wrong_name = TlsOptions {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        server_name: Some("elsewhere.test".to_owned()),
        ..TlsOptions::default()
    };
    let err = client::connect_with(&format!("https://{addr}"), Some(&wrong_name))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = Pki::new();
    let addr = support::serve_tcp(Some(pki.server_tls(true))).await;
    let address = format!("https://{addr}");
    let with_identity = TlsOptions {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        identity: Some((
            pki.client_cert_pem.clone().into_bytes(),
            pki.client_key_pem.clone().into_bytes(),
        )),
        server_name: None,
    };
    let mut client = client::connect_with(&address, Some(&with_identity))
        .await
        .expect("connects with a client certificate");
    assert_eq!(version_of(&mut client).await, VERSION);

    // Without a client certificate the server ends the handshake: either the connect or the
    // first call fails (TLS 1.3 reports the refusal after the client's handshake is done).
    let without = TlsOptions {
        identity: None,
        ..with_identity
    };
    let refusal = match client::connect_with(&address, Some(&without)).await {
        Err(err) => {
            assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");
            format!("{err:?}")
        }
        Ok(mut client) => {
            let status = client.get_version(GetVersionRequest {}).await.unwrap_err();
            format!("{status:?}")
        }
    };
    assert!(refusal.contains("CertificateRequired"), "{refusal}");
}

#[test]
fn addresses_parse_into_targets() {
    let tcp = |s: &str, tls: bool| Target::Tcp {
        uri: s.parse().unwrap(),
        tls,
    };
    assert_eq!(
        client::parse_target("127.0.0.1:9090"),
        Ok(tcp("http://127.0.0.1:9090", false))
    );
    assert_eq!(
        client::parse_target(" http://[::1]:9090/ "),
        Ok(tcp("http://[::1]:9090/", false))
    );
    assert_eq!(
        client::parse_target("https://maglev.example:443"),
        Ok(tcp("https://maglev.example:443", true))
    );
    assert_eq!(
        client::parse_target("unix:/run/maglev.sock"),
        Ok(Target::Unix("/run/maglev.sock".into()))
    );
    assert_eq!(
        client::parse_target("unix:///run/maglev.sock"),
        Ok(Target::Unix("/run/maglev.sock".into()))
    );
}

#[test]
fn bad_addresses_give_typed_errors() {
    type Expect = fn(&AddressError) -> bool;
    let cases: &[(&str, Expect)] = &[
        ("", |e| matches!(e, AddressError::Empty)),
        ("   ", |e| matches!(e, AddressError::Empty)),
        ("unix:", |e| matches!(e, AddressError::EmptyUnixPath(_))),
        ("unix://", |e| matches!(e, AddressError::EmptyUnixPath(_))),
        (
            "ftp://host:21",
            |e| matches!(e, AddressError::UnsupportedScheme { scheme, .. } if scheme == "ftp"),
        ),
        ("localhost", |e| matches!(e, AddressError::MissingPort(_))),
        ("http://localhost", |e| {
            matches!(e, AddressError::MissingPort(_))
        }),
        ("http://:9090", |e| {
            matches!(e, AddressError::MissingHost(_))
        }),
        ("http://host:9090/maglev", |e| {
            matches!(e, AddressError::UnexpectedPath(_))
        }),
        ("http://host:9090?x=1", |e| {
            matches!(e, AddressError::UnexpectedPath(_))
        }),
        ("host:99999", |e| {
            matches!(
                e,
                AddressError::Invalid { .. } | AddressError::MissingPort(_)
            )
        }),
        ("http://ho st:1", |e| {
            matches!(e, AddressError::Invalid { .. })
        }),
    ];
    for (address, expected) in cases {
        let err = client::parse_target(address).unwrap_err();
        assert!(expected(&err), "{address:?}: {err:?}");
        let text = err.to_string();
        assert!(
            !text.is_empty() && !text.ends_with('.'),
            "{address:?}: {text}"
        );
    }
}

#[tokio::test]
async fn connect_refuses_bad_addresses_before_dialing() {
    let err = client::connect("localhost").await.unwrap_err();
    assert!(
        matches!(err, ConnectError::Address(AddressError::MissingPort(_))),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing port"), "{err}");
}

#[tokio::test]
async fn tls_options_need_https() {
    let options = TlsOptions::default();
    for address in [
        "127.0.0.1:9090",
        "http://127.0.0.1:9090",
        "unix:/tmp/x.sock",
    ] {
        let err = client::connect_with(address, Some(&options))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConnectError::TlsWithoutHttps(_)),
            "{address}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_with_a_source() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client::connect(&addr.to_string()).await.unwrap_err();
    assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(err.source().is_some());
}
