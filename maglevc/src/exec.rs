//! Running a parsed [`Command`] against maglevd, and the one error type of both modes with
//! its exit status.

use maglev_api::client::ConnectError;
use maglev_api::v1::maglev_client::MaglevClient;
use maglev_api::v1::{
    BackendRequest, ChangeKind, CheckConfigRequest, GetBackendRequest, GetFrontendRequest,
    GetHealthCheckRequest, GetVersionRequest, GetVppInfoRequest, GetVpplbCountersRequest,
    GetVpplbStateRequest, ListBackendsRequest, ListFrontendsRequest, ListHealthChecksRequest,
    PlanVpplbSyncRequest, PreviewChangeRequest, ReloadConfigRequest, SetWeightRequest,
    SyncVpplbStateRequest,
};
use tonic::transport::Channel;

use crate::render::Reply;
use crate::tree::{Action, Args, BackendOp, Command, ParseError, PreviewKind, help_text};

/// The client maglevc uses.
pub type Client = MaglevClient<Channel>;

/// Why a command failed. The shell and one-shot mode print it the same way
/// (`error: <message>`), and one-shot mode exits with [`Failure::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command line does not parse (exit 2).
    #[error("{0}")]
    Usage(#[from] ParseError),
    /// maglevd answered with an error status (exit 1).
    #[error("{}", status_message(.0))]
    Server(#[from] tonic::Status),
    /// maglevd could not be reached (exit 3).
    #[error("cannot connect to maglevd at {address}: {reason}")]
    Connect {
        /// The address tried.
        address: String,
        /// Why, the innermost causes first stripped of repetition.
        reason: String,
    },
}

impl Failure {
    /// The exit status: 1 server error, 2 usage error, 3 cannot connect.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Server(_) => 1,
            Self::Usage(_) => 2,
            Self::Connect { .. } => 3,
        }
    }

    /// A connection failure, with the causes of `err` joined.
    #[must_use]
    pub fn connect(address: &str, err: &ConnectError) -> Self {
        let mut causes: Vec<String> = Vec::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
        if source.is_none() {
            causes.push(err.to_string());
        }
        while let Some(e) = source {
            let text = e.to_string();
            if !causes.iter().any(|c| c.contains(&text)) {
                causes.push(text);
            }
            source = e.source();
        }
        Self::Connect {
            address: address.to_owned(),
            reason: causes.join(": "),
        }
    }
}

/// A gRPC status as an operator reads it: the server's message, without a Go-style
/// `rpc error: code = ... desc = ` prefix; the code's description when there is no message.
#[must_use]
pub fn status_message(status: &tonic::Status) -> String {
    let message = strip_grpc_prefix(status.message());
    if message.is_empty() {
        status.code().description().to_owned()
    } else {
        message.to_owned()
    }
}

/// Strips every leading `rpc error: code = <Code> desc = ` from a message.
#[must_use]
pub fn strip_grpc_prefix(mut message: &str) -> &str {
    while let Some(rest) = message.trim_start().strip_prefix("rpc error: code = ") {
        match rest.split_once(" desc = ") {
            Some((_, desc)) => message = desc,
            None => break,
        }
    }
    message.trim()
}

fn name(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Runs a command other than `watch events` and `quit`, and returns the reply, whether or not
/// it reports a failure ([`Reply::is_failure`]).
///
/// # Errors
/// The server's error status.
pub async fn run(client: &mut Client, command: &Command) -> Result<Reply, tonic::Status> {
    let Args {
        frontend,
        backend,
        pool,
        healthcheck,
        weight,
        dry_run,
        ..
    } = &command.args;
    let reply = match command.action {
        Action::ShowVersion => {
            Reply::Version(client.get_version(GetVersionRequest {}).await?.into_inner())
        }
        Action::ShowFrontends => match frontend {
            Some(name) => Reply::Frontend(
                client
                    .get_frontend(GetFrontendRequest { name: name.clone() })
                    .await?
                    .into_inner(),
            ),
            None => Reply::Frontends(
                client
                    .list_frontends(ListFrontendsRequest {})
                    .await?
                    .into_inner(),
            ),
        },
        Action::ShowBackends => match backend {
            Some(name) => Reply::Backend(
                client
                    .get_backend(GetBackendRequest { name: name.clone() })
                    .await?
                    .into_inner(),
            ),
            None => Reply::Backends(
                client
                    .list_backends(ListBackendsRequest {})
                    .await?
                    .into_inner(),
            ),
        },
        Action::ShowHealthChecks => match healthcheck {
            Some(name) => Reply::HealthCheck(
                client
                    .get_health_check(GetHealthCheckRequest { name: name.clone() })
                    .await?
                    .into_inner(),
            ),
            None => Reply::HealthChecks(
                client
                    .list_health_checks(ListHealthChecksRequest {})
                    .await?
                    .into_inner(),
            ),
        },
        Action::ShowVppInfo => Reply::VppInfo(
            client
                .get_vpp_info(GetVppInfoRequest {})
                .await?
                .into_inner(),
        ),
        Action::ShowVppLbState => Reply::LbState(
            client
                .get_vpplb_state(GetVpplbStateRequest {})
                .await?
                .into_inner(),
        ),
        Action::ShowVppLbCounters => Reply::LbCounters(
            client
                .get_vpplb_counters(GetVpplbCountersRequest {})
                .await?
                .into_inner(),
        ),
        Action::SyncVppLbState if *dry_run => Reply::Plan(
            client
                .plan_vpplb_sync(PlanVpplbSyncRequest {
                    frontend: frontend.clone(),
                })
                .await?
                .into_inner(),
        ),
        Action::SyncVppLbState => Reply::Sync(
            client
                .sync_vpplb_state(SyncVpplbStateRequest {
                    frontend: frontend.clone(),
                })
                .await?
                .into_inner(),
        ),
        Action::Preview(kind) => {
            let kind = match kind {
                PreviewKind::Drain => ChangeKind::Drain,
                PreviewKind::Weight => ChangeKind::SetWeight,
                PreviewKind::Remove => ChangeKind::Remove,
            };
            Reply::Preview(
                client
                    .preview_change(PreviewChangeRequest {
                        frontend: name(frontend),
                        backend: name(backend),
                        kind: kind.into(),
                        weight: weight.unwrap_or_default(),
                    })
                    .await?
                    .into_inner(),
            )
        }
        Action::SetBackend(op) => {
            let request = BackendRequest {
                name: name(backend),
            };
            let response = match op {
                BackendOp::Pause => client.pause_backend(request).await?,
                BackendOp::Resume => client.resume_backend(request).await?,
                BackendOp::Enable => client.enable_backend(request).await?,
                BackendOp::Disable => client.disable_backend(request).await?,
            };
            Reply::Backend(response.into_inner())
        }
        Action::SetWeight => Reply::Frontend(
            client
                .set_frontend_pool_backend_weight(SetWeightRequest {
                    frontend: name(frontend),
                    pool: name(pool),
                    backend: name(backend),
                    weight: weight.unwrap_or_default(),
                    reset: false,
                })
                .await?
                .into_inner(),
        ),
        Action::ConfigCheck => Reply::ConfigCheck(
            client
                .check_config(CheckConfigRequest {})
                .await?
                .into_inner(),
        ),
        Action::ConfigReload => Reply::ConfigReload(
            client
                .reload_config(ReloadConfigRequest {})
                .await?
                .into_inner(),
        ),
        Action::Help | Action::Quit | Action::WatchEvents => Reply::Help(help_text()),
    };
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_prefixes_are_stripped() {
        let cases = [
            ("backend \"x\" not found", "backend \"x\" not found"),
            (
                "rpc error: code = NotFound desc = backend \"x\" not found",
                "backend \"x\" not found",
            ),
            (
                "rpc error: code = Unavailable desc = rpc error: code = Unavailable desc = no VPP",
                "no VPP",
            ),
            ("rpc error: code = Internal", "rpc error: code = Internal"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(strip_grpc_prefix(input), want, "{input}");
        }
        let status = tonic::Status::not_found("rpc error: code = NotFound desc = no such backend");
        assert_eq!(Failure::Server(status).to_string(), "no such backend");
        let empty = tonic::Status::new(tonic::Code::Unavailable, "");
        assert_eq!(
            Failure::Server(empty).to_string(),
            "The service is currently unavailable"
        );
    }

    #[test]
    fn exit_codes_follow_the_failure() {
        assert_eq!(Failure::Usage(ParseError::Empty).exit_code(), 2);
        assert_eq!(Failure::Server(tonic::Status::internal("x")).exit_code(), 1);
        let connect = Failure::Connect {
            address: "a".into(),
            reason: "b".into(),
        };
        assert_eq!(connect.exit_code(), 3);
        assert_eq!(connect.to_string(), "cannot connect to maglevd at a: b");
    }
}
