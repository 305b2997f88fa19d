//! The errors of the adapter and the pipeline, and VPP's reasons for refusing an operation.
//!
//! VPP answers a refused request with a negative `retval` from `vnet/api_errno.h`;
//! [`retval_name`] is the one place that turns it into words until `vpp-binapi` names every
//! error itself.

use std::fmt;

use maglev_core::plan::Op;
use vpp_binapi::client::{ClientError, CompatEntry};

/// VPP's name for the retvals the lb plugin answers (`vnet/api_errno.h`); `"vpp error"` for
/// any other value.
#[must_use]
pub fn retval_name(retval: i32) -> &'static str {
    match retval {
        0 => "ok",
        -6 => "no such entry",
        -70 => "invalid memory size",
        -73 => "invalid argument",
        -81 => "value exists",
        -97 => {
            "invalid address family: the AS is not of the VIP's family (VPP takes ::/96 addresses such as ::1 for IPv4)"
        }
        _ => "vpp error",
    }
}

/// An operation VPP refused: the operation, and VPP's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFailure {
    /// The refused operation.
    pub op: Op,
    /// VPP's `retval` (negative).
    pub retval: i32,
}

impl OpFailure {
    /// VPP's reason, in words ([`retval_name`]).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        retval_name(self.retval)
    }
}

impl fmt::Display for OpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: retval {} ({})", self.op, self.retval, self.reason())
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
