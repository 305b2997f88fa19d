//! Conversions between the wire's plain fields and std types: unix-nanosecond timestamps and
//! [`SystemTime`], millisecond durations and [`Duration`], address text and
//! [`IpAddr`]/[`IpNet`].
//!
//! The wire keeps addresses as text and times as integers so that every client (grpcurl, Python,
//! a browser) reads them without help; these helpers give Rust callers the typed view. Each
//! conversion is total: out-of-range values saturate, and text that is not an address is an
//! error, never a panic.

use std::net::{AddrParseError, IpAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use crate::v1;

/// `time` as signed unix nanoseconds, saturating at `i64`'s range (about the years 1677 to
/// 2262).
#[must_use]
pub fn to_unix_nanos(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// Unix nanoseconds as a [`SystemTime`]; `None` for 0, the wire's "never" or "unknown".
#[must_use]
pub fn from_unix_nanos(nanos: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    match nanos {
        0 => None,
        n if n > 0 => UNIX_EPOCH.checked_add(magnitude),
        _ => UNIX_EPOCH.checked_sub(magnitude),
    }
}

/// `duration` in whole milliseconds (rounded down), saturating at `u64::MAX`.
#[must_use]
pub fn to_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds as a [`Duration`].
#[must_use]
pub fn from_millis(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Parses address text (`192.0.2.1`, `2001:db8::1`).
///
/// # Errors
/// When the text is not an IP address.
pub fn parse_ip(text: &str) -> Result<IpAddr, AddrParseError> {
    text.parse()
}

/// Parses prefix text (`192.0.2.0/24`); a bare address is its host prefix (`/32`, `/128`).
///
/// # Errors
/// When the text is neither a prefix nor an address.
pub fn parse_prefix(text: &str) -> Result<IpNet, ipnet::AddrParseError> {
    text.parse::<IpNet>()
        .or_else(|e| text.parse::<IpAddr>().map(IpNet::from).map_err(|_| e))
}

impl v1::FrontendInfo {
    /// The VIP address.
    ///
    /// # Errors
    /// When the server sent text that is not an address.
    pub fn ip(&self) -> Result<IpAddr, AddrParseError> {
        parse_ip(&self.address)
    }

    /// The VIP prefix.
    ///
    /// # Errors
    /// When the server sent text that is not a prefix.
    pub fn ip_prefix(&self) -> Result<IpNet, ipnet::AddrParseError> {
        parse_prefix(&self.prefix)
    }
}

impl v1::PoolBackendInfo {
    /// The backend's address.
    ///
    /// # Errors
    /// When the server sent text that is not an address.
    pub fn ip(&self) -> Result<IpAddr, AddrParseError> {
        parse_ip(&self.address)
    }
}

impl v1::BackendInfo {
    /// The backend's address.
    ///
    /// # Errors
    /// When the server sent text that is not an address.
    pub fn ip(&self) -> Result<IpAddr, AddrParseError> {
        parse_ip(&self.address)
    }
}

impl v1::TransitionRecord {
    /// When the transition happened.
    #[must_use]
    pub fn at(&self) -> Option<SystemTime> {
        from_unix_nanos(self.at_unix_nanos)
    }
}

impl v1::ProbeResult {
    /// How long the probe took.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        from_millis(self.elapsed_ms)
    }
}

impl v1::HealthCheckInfo {
    /// The wait between probes while fully up.
    #[must_use]
    pub fn interval(&self) -> Duration {
        from_millis(self.interval_ms)
    }

    /// The wait between probes while unknown, rising or falling.
    #[must_use]
    pub fn fast_interval(&self) -> Duration {
        from_millis(self.fast_interval_ms)
    }

    /// The wait between probes while fully down.
    #[must_use]
    pub fn down_interval(&self) -> Duration {
        from_millis(self.down_interval_ms)
    }

    /// The probe timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        from_millis(self.timeout_ms)
    }
}

impl v1::Event {
    /// When the event happened.
    #[must_use]
    pub fn at(&self) -> Option<SystemTime> {
        from_unix_nanos(self.at_unix_nanos)
    }
}

impl v1::VppInfo {
    /// When VPP started, if known.
    #[must_use]
    pub fn boot_time(&self) -> Option<SystemTime> {
        from_unix_nanos(self.boottime_ns)
    }

    /// When maglevd connected to VPP.
    #[must_use]
    pub fn connect_time(&self) -> Option<SystemTime> {
        from_unix_nanos(self.connecttime_ns)
    }
}

impl v1::LbVip {
    /// The VIP prefix.
    ///
    /// # Errors
    /// When the server sent text that is not a prefix.
    pub fn ip_prefix(&self) -> Result<IpNet, ipnet::AddrParseError> {
        parse_prefix(&self.prefix)
    }
}

impl v1::LbAs {
    /// The AS address.
    ///
    /// # Errors
    /// When the server sent text that is not an address.
    pub fn ip(&self) -> Result<IpAddr, AddrParseError> {
        parse_ip(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_nanos_round_trip_and_zero_is_none() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(to_unix_nanos(t), 1_700_000_000_123_456_789);
        assert_eq!(from_unix_nanos(to_unix_nanos(t)), Some(t));
        assert_eq!(from_unix_nanos(0), None);
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(to_unix_nanos(before), -1_000_000_000);
        assert_eq!(from_unix_nanos(-1_000_000_000), Some(before));
    }

    #[test]
    fn far_times_saturate() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 100);
        assert_eq!(to_unix_nanos(far), i64::MAX);
        assert!(from_unix_nanos(i64::MIN).is_some());
    }

    #[test]
    fn millis_round_down_and_saturate() {
        assert_eq!(to_millis(Duration::from_micros(2_999)), 2);
        assert_eq!(to_millis(Duration::MAX), u64::MAX);
        assert_eq!(from_millis(1_500), Duration::from_millis(1_500));
    }

    #[test]
    fn prefixes_accept_bare_addresses() {
        assert_eq!(
            parse_prefix("192.0.2.0/24").map(|p| p.to_string()),
            Ok("192.0.2.0/24".to_owned())
        );
        assert_eq!(
            parse_prefix("2001:db8::1").map(|p| p.to_string()),
            Ok("2001:db8::1/128".to_owned())
        );
        assert!(parse_prefix("not-a-prefix").is_err());
        assert!(parse_ip("192.0.2.300").is_err());
    }
}
