//! A tiny in-test `maglev.v1` server (GetVersion and GetFrontend; everything else
//! UNIMPLEMENTED), served over TCP, TLS or a unix socket, and an rcgen PKI.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;

use maglev_api::v1::maglev_server::{Maglev, MaglevServer};
use maglev_api::v1::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// The version the test server reports.
pub(crate) const VERSION: &str = "9.8.7-test";

/// The test service.
pub(crate) struct TestMaglev;

/// The RPCs the test server does not implement: each answers UNIMPLEMENTED.
macro_rules! unimplemented_rpcs {
    ($($method:ident($request:ty) -> $response:ty;)*) => {
        $(
            // `#[async_trait]` does not see inside macros: write its desugared signature.
            fn $method<'life, 'async_trait>(
                &'life self,
                _: Request<$request>,
            ) -> Pin<Box<dyn Future<Output = Result<Response<$response>, Status>> + Send + 'async_trait>>
            where
                'life: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async { Err(Status::unimplemented(stringify!($method))) })
            }
        )*
    };
}

#[tonic::async_trait]
impl Maglev for TestMaglev {
    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<VersionInfo>, Status> {
        Ok(Response::new(VersionInfo {
            version: VERSION.to_owned(),
            git_commit: "abc123".to_owned(),
            build_date: "2026-12-03".to_owned(),
        }))
    }

    async fn get_frontend(
        &self,
        request: Request<GetFrontendRequest>,
    ) -> Result<Response<FrontendInfo>, Status> {
        let name = request.into_inner().name;
        if name != "web" {
            return Err(Status::not_found(format!("no frontend {name:?}")));
        }
        Ok(Response::new(FrontendInfo {
            name,
            address: "192.0.2.10".to_owned(),
            prefix: "192.0.2.10/32".to_owned(),
            protocol: Protocol::Tcp.into(),
            port: 80,
            state: FrontendState::Up.into(),
            new_flows_table_length: 1024,
            pools: vec![PoolInfo {
                name: "primary".to_owned(),
                active: true,
                backends: vec![PoolBackendInfo {
                    name: "b1".to_owned(),
                    address: "198.51.100.1".to_owned(),
                    weight: 100,
                    weight_override: Some(50),
                    effective_weight: 50,
                    state: BackendState::Up.into(),
                    buckets: 1024,
                }],
            }],
            ..FrontendInfo::default()
        }))
    }

    type WatchEventsStream = tokio_stream::Empty<Result<Event, Status>>;

    async fn watch_events(
        &self,
        _: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        Err(Status::unimplemented("watch_events"))
    }

    unimplemented_rpcs! {
        list_frontends(ListFrontendsRequest) -> ListFrontendsResponse;
        list_backends(ListBackendsRequest) -> ListBackendsResponse;
        get_backend(GetBackendRequest) -> BackendInfo;
        pause_backend(BackendRequest) -> BackendInfo;
        resume_backend(BackendRequest) -> BackendInfo;
        enable_backend(BackendRequest) -> BackendInfo;
        disable_backend(BackendRequest) -> BackendInfo;
        list_health_checks(ListHealthChecksRequest) -> ListHealthChecksResponse;
        get_health_check(GetHealthCheckRequest) -> HealthCheckInfo;
        set_frontend_pool_backend_weight(SetWeightRequest) -> FrontendInfo;
        check_config(CheckConfigRequest) -> CheckConfigResponse;
        reload_config(ReloadConfigRequest) -> ReloadConfigResponse;
        get_vpp_info(GetVppInfoRequest) -> VppInfo;
        get_vpplb_state(GetVpplbStateRequest) -> VpplbState;
        sync_vpplb_state(SyncVpplbStateRequest) -> SyncVpplbStateResponse;
        get_vpplb_counters(GetVpplbCountersRequest) -> VpplbCounters;
        plan_vpplb_sync(PlanVpplbSyncRequest) -> PlanVpplbSyncResponse;
        preview_change(PreviewChangeRequest) -> PreviewChangeResponse;
    }
}

/// Serves the test service on a loopback TCP port, optionally with TLS; returns its address.
pub(crate) async fn serve_tcp(tls: Option<ServerTlsConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).unwrap();
    }
    let router = builder.add_service(MaglevServer::new(TestMaglev));
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

/// Serves the test service on a unix socket at `path`.
pub(crate) fn serve_unix(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    let router = Server::builder().add_service(MaglevServer::new(TestMaglev));
    tokio::spawn(router.serve_with_incoming(UnixListenerStream::new(listener)));
}

/// A test CA with one server certificate (for `localhost` and 127.0.0.1) and one client
/// certificate, all PEM.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) server_cert_pem: String,
    pub(crate) server_key_pem: String,
    pub(crate) client_cert_pem: String,
    pub(crate) client_key_pem: String,
}

impl Pki {
    pub(crate) fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert_pem, server_key_pem) =
            leaf(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]);
        let (client_cert_pem, client_key_pem) = leaf(vec!["maglevc.test".to_owned()]);
        Self {
            ca_pem: ca.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        }
    }

    /// Server TLS; with `mutual`, client certificates signed by the CA are required.
    pub(crate) fn server_tls(&self, mutual: bool) -> ServerTlsConfig {
        let tls = ServerTlsConfig::new().identity(Identity::from_pem(
            &self.server_cert_pem,
            &self.server_key_pem,
        ));
        if mutual {
            tls.client_ca_root(Certificate::from_pem(&self.ca_pem))
        } else {
            tls
        }
    }
}
