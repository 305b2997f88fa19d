//! Conversions between the generated IP types and `std::net` / `ipnet` types.
//!
//! `Address` is an address family byte plus a 16-byte union: IPv4 sits in the first four union
//! bytes, the rest zero. `Prefix` (alias `AddressWithPrefix`) adds a prefix length and maps to
//! [`ipnet::IpNet`], which, like VPP, keeps host bits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::api::ip_types::{
    Address, AddressFamily, AddressUnion, Ip4Address, Ip4Prefix, Ip6Address, Ip6Prefix, Prefix,
};

/// A generated address or prefix has no `std`/`ipnet` equivalent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpConvertError {
    /// The address family byte is neither `ADDRESS_IP4` (0) nor `ADDRESS_IP6` (1).
    #[error("unknown address family {0}")]
    UnknownFamily(u8),
    /// The prefix length exceeds the family's maximum (32 or 128).
    #[error("prefix length {len} exceeds {max}")]
    PrefixLength {
        /// The length found.
        len: u8,
        /// The family's maximum.
        max: u8,
    },
}

impl From<Ipv4Addr> for Ip4Address {
    fn from(a: Ipv4Addr) -> Self {
        Self(a.octets())
    }
}

impl From<Ip4Address> for Ipv4Addr {
    fn from(a: Ip4Address) -> Self {
        Self::from(a.0)
    }
}

impl From<Ipv6Addr> for Ip6Address {
    fn from(a: Ipv6Addr) -> Self {
        Self(a.octets())
    }
}

impl From<Ip6Address> for Ipv6Addr {
    fn from(a: Ip6Address) -> Self {
        Self::from(a.0)
    }
}

impl From<Ipv4Addr> for Address {
    fn from(a: Ipv4Addr) -> Self {
        Self {
            af: AddressFamily::ADDRESS_IP4,
            un: AddressUnion::from_ip4(a.into()),
        }
    }
}

impl From<Ipv6Addr> for Address {
    fn from(a: Ipv6Addr) -> Self {
        Self {
            af: AddressFamily::ADDRESS_IP6,
            un: AddressUnion::from_ip6(a.into()),
        }
    }
}

impl From<IpAddr> for Address {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => a.into(),
            IpAddr::V6(a) => a.into(),
        }
    }
}

impl TryFrom<Address> for IpAddr {
    type Error = IpConvertError;
    fn try_from(a: Address) -> Result<Self, IpConvertError> {
        a.to_ip()
    }
}

impl Address {
    /// The address as a `std` address; fails for an unknown family.
    pub fn to_ip(&self) -> Result<IpAddr, IpConvertError> {
        match self.af {
            AddressFamily::ADDRESS_IP4 => Ok(IpAddr::V4(self.un.ip4().into())),
            AddressFamily::ADDRESS_IP6 => Ok(IpAddr::V6(self.un.ip6().into())),
            AddressFamily(other) => Err(IpConvertError::UnknownFamily(other)),
        }
    }
}

impl From<IpNet> for Prefix {
    fn from(n: IpNet) -> Self {
        Self {
            address: n.addr().into(),
            len: n.prefix_len(),
        }
    }
}

impl From<Ipv4Net> for Prefix {
    fn from(n: Ipv4Net) -> Self {
        IpNet::V4(n).into()
    }
}

impl From<Ipv6Net> for Prefix {
    fn from(n: Ipv6Net) -> Self {
        IpNet::V6(n).into()
    }
}

impl TryFrom<Prefix> for IpNet {
    type Error = IpConvertError;
    fn try_from(p: Prefix) -> Result<Self, IpConvertError> {
        p.to_ipnet()
    }
}

impl Prefix {
    /// The prefix as an [`IpNet`] (host bits kept); fails for an unknown family or a length
    /// longer than the family allows.
    pub fn to_ipnet(&self) -> Result<IpNet, IpConvertError> {
        match self.address.to_ip()? {
            IpAddr::V4(a) => {
                Ipv4Net::new(a, self.len)
                    .map(IpNet::V4)
                    .map_err(|_| IpConvertError::PrefixLength {
                        len: self.len,
                        max: 32,
                    })
            }
            IpAddr::V6(a) => {
                Ipv6Net::new(a, self.len)
                    .map(IpNet::V6)
                    .map_err(|_| IpConvertError::PrefixLength {
                        len: self.len,
                        max: 128,
                    })
            }
        }
    }
}

impl From<Ipv4Net> for Ip4Prefix {
    fn from(n: Ipv4Net) -> Self {
        Self {
            address: n.addr().into(),
            len: n.prefix_len(),
        }
    }
}

impl TryFrom<Ip4Prefix> for Ipv4Net {
    type Error = IpConvertError;
    fn try_from(p: Ip4Prefix) -> Result<Self, IpConvertError> {
        Self::new(p.address.into(), p.len).map_err(|_| IpConvertError::PrefixLength {
            len: p.len,
            max: 32,
        })
    }
}

impl From<Ipv6Net> for Ip6Prefix {
    fn from(n: Ipv6Net) -> Self {
        Self {
            address: n.addr().into(),
            len: n.prefix_len(),
        }
    }
}

impl TryFrom<Ip6Prefix> for Ipv6Net {
    type Error = IpConvertError;
    fn try_from(p: Ip6Prefix) -> Result<Self, IpConvertError> {
        Self::new(p.address.into(), p.len).map_err(|_| IpConvertError::PrefixLength {
            len: p.len,
            max: 128,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_address_sits_in_first_union_bytes() {
        let a = Address::from(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(a.af, AddressFamily::ADDRESS_IP4);
        assert_eq!(&a.un.0[..4], &[10, 1, 2, 3]);
        assert!(a.un.0[4..].iter().all(|&b| b == 0));
        assert_eq!(a.to_ip(), Ok(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
    }

    #[test]
    fn ipv6_round_trip_and_unknown_family() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let a = Address::from(ip);
        assert_eq!(a.af, AddressFamily::ADDRESS_IP6);
        assert_eq!(IpAddr::try_from(a), Ok(ip));
        let bad = Address {
            af: AddressFamily(7),
            ..a
        };
        assert_eq!(bad.to_ip(), Err(IpConvertError::UnknownFamily(7)));
    }

    #[test]
    fn prefix_keeps_host_bits_and_checks_length() {
        let n: IpNet = "10.0.0.1/24".parse().unwrap();
        let p = Prefix::from(n);
        assert_eq!(p.len, 24);
        assert_eq!(p.to_ipnet(), Ok(n));
        let long = Prefix { len: 33, ..p };
        assert_eq!(
            long.to_ipnet(),
            Err(IpConvertError::PrefixLength { len: 33, max: 32 })
        );
        let n6: Ipv6Net = "2001:db8::/32".parse().unwrap();
        let p6 = Ip6Prefix::from(n6);
        assert_eq!(Ipv6Net::try_from(p6), Ok(n6));
        let n4: Ipv4Net = "192.0.2.0/24".parse().unwrap();
        assert_eq!(Ipv4Net::try_from(Ip4Prefix::from(n4)), Ok(n4));
    }
}
