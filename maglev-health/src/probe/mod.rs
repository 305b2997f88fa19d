//! Probers: HTTP, HTTPS, TCP, TCP+TLS and ICMP, each with a timeout and an optional source
//! address.
//!
//! The interface is [`ProbeSpec`] (what to probe, how; `Clone + PartialEq` so the checker can
//! tell a changed health check from an unchanged one) and [`probe`], which runs one probe
//! against one address and always returns a [`ProbeResult`].

use std::net::IpAddr;
use std::time::Duration;

use crate::result::{ProbeResult, ResultCode};

/// What to probe and how. The probers' issue fills in the kinds and their parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    /// How long a probe may take before it counts as a timeout.
    pub timeout: Duration,
}

/// Runs one probe of `target` as `spec` says.
pub async fn probe(spec: &ProbeSpec, target: IpAddr) -> ProbeResult {
    let _ = target;
    ProbeResult::new(ResultCode::L4Con, "no prober yet", spec.timeout)
}
