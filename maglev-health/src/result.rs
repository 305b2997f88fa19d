//! Probe results: the HAProxy-style result code and a short human detail.

use std::fmt;
use std::time::Duration;

/// The code recorded for a probe result or an operator action, HAProxy style.
///
/// The string form ([`ResultCode::as_str`]) is stable: it appears in transitions, logs and
/// metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResultCode {
    /// TCP connect succeeded.
    L4Ok,
    /// TCP connect timed out.
    L4Tout,
    /// TCP connect failed (refused, unreachable, reset).
    L4Con,
    /// TLS handshake succeeded.
    L6Ok,
    /// TLS handshake timed out.
    L6Tout,
    /// TLS handshake failed (bad certificate, protocol error).
    L6Rsp,
    /// HTTP response accepted.
    L7Ok,
    /// HTTP response timed out.
    L7Tout,
    /// HTTP response malformed, or its body did not match.
    L7Rsp,
    /// HTTP status outside the accepted range.
    L7Sts,
    /// ICMP echo reply received.
    IcmpOk,
    /// ICMP echo timed out.
    IcmpTout,
    /// ICMP error (unreachable, socket error).
    IcmpErr,
    /// Operator paused health checking.
    Paused,
    /// Operator resumed health checking.
    Resumed,
    /// Operator disabled the backend.
    Disabled,
    /// Operator enabled the backend.
    Enabled,
    /// The backend was removed from the config.
    Removed,
    /// A backend without a health check, resolved up at once.
    Static,
}

impl ResultCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 19] = [
        Self::L4Ok,
        Self::L4Tout,
        Self::L4Con,
        Self::L6Ok,
        Self::L6Tout,
        Self::L6Rsp,
        Self::L7Ok,
        Self::L7Tout,
        Self::L7Rsp,
        Self::L7Sts,
        Self::IcmpOk,
        Self::IcmpTout,
        Self::IcmpErr,
        Self::Paused,
        Self::Resumed,
        Self::Disabled,
        Self::Enabled,
        Self::Removed,
        Self::Static,
    ];

    /// The stable string form: `L4OK`, `L7STS`, `ICMPTOUT`, `paused`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::L4Ok => "L4OK",
            Self::L4Tout => "L4TOUT",
            Self::L4Con => "L4CON",
            Self::L6Ok => "L6OK",
            Self::L6Tout => "L6TOUT",
            Self::L6Rsp => "L6RSP",
            Self::L7Ok => "L7OK",
            Self::L7Tout => "L7TOUT",
            Self::L7Rsp => "L7RSP",
            Self::L7Sts => "L7STS",
            Self::IcmpOk => "ICMPOK",
            Self::IcmpTout => "ICMPTOUT",
            Self::IcmpErr => "ICMPERR",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::Disabled => "disabled",
            Self::Enabled => "enabled",
            Self::Removed => "removed",
            Self::Static => "static",
        }
    }

    /// Whether a probe with this code counts as a pass for the rise/fall counter.
    pub const fn is_pass(self) -> bool {
        matches!(
            self,
            Self::L4Ok | Self::L6Ok | Self::L7Ok | Self::IcmpOk | Self::Static
        )
    }

    /// Whether this code is recorded for an operator action or a config change rather than
    /// for a probe.
    pub const fn is_operator(self) -> bool {
        matches!(
            self,
            Self::Paused
                | Self::Resumed
                | Self::Disabled
                | Self::Enabled
                | Self::Removed
                | Self::Static
        )
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// What happened, as a code.
    pub code: ResultCode,
    /// A short human detail: `"connection refused"`, `"status 503"`, `"timeout after 1s"`.
    pub detail: String,
    /// How long the probe took, from its start to its result.
    pub elapsed: Duration,
}

impl ProbeResult {
    /// A result with the given code and detail.
    pub fn new(code: ResultCode, detail: impl Into<String>, elapsed: Duration) -> Self {
        Self {
            code,
            detail: detail.into(),
            elapsed,
        }
    }

    /// Whether this result counts as a pass.
    pub fn is_pass(&self) -> bool {
        self.code.is_pass()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_are_unique_and_passes_are_the_ok_codes() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ResultCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(code.to_string(), code.as_str());
        }
        let passes: Vec<_> = ResultCode::ALL.iter().filter(|c| c.is_pass()).collect();
        assert_eq!(
            passes,
            [
                &ResultCode::L4Ok,
                &ResultCode::L6Ok,
                &ResultCode::L7Ok,
                &ResultCode::IcmpOk,
                &ResultCode::Static
            ]
        );
    }
}
