//! The errors of the adapter and the pipeline.
//!
//! VPP answers a refused request with a negative `retval`; `vpp-binapi` names every one of them
//! ([`ApiError`], from `vnet/api_errno.h`), so a refusal reads
//! `VNET_API_ERROR_NO_SUCH_ENTRY (-6): no such entry`, never a bare number.

use std::fmt;

use maglev_core::plan::Op;
use vpp_binapi::api::ApiError;
use vpp_binapi::client::{ClientError, CompatEntry};

/// An operation VPP refused: the operation, and VPP's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFailure {
    /// The refused operation.
    pub op: Op,
    /// VPP's answer.
    pub error: ApiError,
}

impl OpFailure {
    /// What an operator should know beyond VPP's own words, for the refusals the lb plugin is
    /// known to give for a configuration reason.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self.error {
            ApiError::InvalidAddressFamily => Some(
                "the AS is not of the VIP's family (VPP takes ::/96 addresses such as ::1 for IPv4)",
            ),
            _ => None,
        }
    }
}

impl fmt::Display for OpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.error)?;
        if let Some(hint) = self.hint() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for OpFailure {}

/// Reading VPP's state failed at the transport level (the connection is unusable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("reading vpp state failed: {message}")]
pub struct DumpError {
    /// The dump or request that failed (`lb_vip_dump`, `lb_as_v2_dump`, `cli_inband`).
    pub message: &'static str,
    /// What the client reported.
    #[source]
    pub source: ClientError,
}

/// A sync's operations could not all be sent: the connection failed (dropped, timed out,
/// broken stream). What VPP applied before is unknown; reconnect and run a full sync.
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection failed during `{op}` after {applied} applied operations")]
pub struct ExecError {
    /// The operation whose call failed.
    pub op: Box<Op>,
    /// How many operations VPP had confirmed (retval 0) before.
    pub applied: usize,
    /// What the client reported.
    #[source]
    pub source: ClientError,
}

/// VPP lacks messages the adapter needs, or has other definitions (CRCs) of them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("incompatible vpp: {}", list(.problems))]
pub struct Incompatible {
    /// Every missing or different message.
    pub problems: Vec<CompatEntry>,
}

fn list(problems: &[CompatEntry]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
