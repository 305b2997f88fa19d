//! A model of VPP's `lb` plugin state (`lb_main`): global conf, the VIP and AS pools, the
//! Maglev new-flow tables and the dump / CLI quirks of a real VPP built from master.
//!
//! The model is plain data with no I/O and no clock: every mutating call takes `now`, the
//! simulated VPP uptime in whole seconds (what VPP's `vlib_time_now` truncates to a u32).
//! Methods take the API-level arguments (after byte-order decoding) and apply the handler
//! logic of `api.c` (a port of 0 forces protocol 255, IPv4 prefix lengths get +96 inside).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::maglev::{Entry, bucket_counts};

/// `VNET_API_ERROR_NO_SUCH_ENTRY`.
pub const RV_NO_SUCH_ENTRY: i32 = -6;
/// `VNET_API_ERROR_INVALID_MEMORY_SIZE`.
pub const RV_INVALID_MEMORY_SIZE: i32 = -70;
/// `VNET_API_ERROR_INVALID_ARGUMENT`.
pub const RV_INVALID_ARGUMENT: i32 = -73;
/// `VNET_API_ERROR_VALUE_EXIST`.
pub const RV_VALUE_EXIST: i32 = -81;
/// `VNET_API_ERROR_INVALID_ADDRESS_FAMILY`.
pub const RV_INVALID_ADDRESS_FAMILY: i32 = -97;

/// Garbage collection runs at most once per VIP every so many seconds (`LB_GARBAGE_RUN`).
pub const GARBAGE_RUN_SECS: u32 = 60;
/// An unused AS is freed only this many seconds after it left use (`LB_CONCURRENCY_TIMEOUT`).
pub const CONCURRENCY_TIMEOUT_SECS: u32 = 10;
/// Default sticky buckets per core (`LB_DEFAULT_PER_CPU_STICKY_BUCKETS`).
pub const DEFAULT_STICKY_BUCKETS: u32 = 1024;
/// Default flow timeout in seconds (`LB_DEFAULT_FLOW_TIMEOUT`).
pub const DEFAULT_FLOW_TIMEOUT: u32 = 40;
/// Default AS weight on master.
pub const DEFAULT_WEIGHT: u8 = 100;
/// `flags` bit 0 of an AS in the dumps: the AS is in use.
pub const AS_FLAG_USED: u8 = 1;

/// Names of the four per-VIP counters, as registered in the stats segment.
pub const VIP_COUNTER_NAMES: [&str; 4] = [
    "packet from existing sessions",
    "first session packet",
    "untracked packet",
    "no server configured",
];

/// An lb operation failure, mapped to VPP's `retval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LbError {
    /// The VIP or AS does not exist (-6).
    #[error("no such entry")]
    NoSuchEntry,
    /// The VIP or AS already exists, or a conflicting VIP exists (-81).
    #[error("value already exists")]
    ValueExist,
    /// A table size is not a power of two (-70).
    #[error("invalid memory size: not a power of two")]
    InvalidMemorySize,
    /// The VIP conflicts with a per-port VIP of another type (-73).
    #[error("invalid argument")]
    InvalidArgument,
    /// Address family and encap do not match (-97).
    #[error("invalid address family")]
    InvalidAddressFamily,
}

impl LbError {
    /// The `retval` VPP answers for this error.
    pub fn retval(self) -> i32 {
        match self {
            Self::NoSuchEntry => RV_NO_SUCH_ENTRY,
            Self::ValueExist => RV_VALUE_EXIST,
            Self::InvalidMemorySize => RV_INVALID_MEMORY_SIZE,
            Self::InvalidArgument => RV_INVALID_ARGUMENT,
            Self::InvalidAddressFamily => RV_INVALID_ADDRESS_FAMILY,
        }
    }
}

/// The API encap enum (`lb_encap_type`).
pub mod encap {
    /// GRE over IPv4.
    pub const GRE4: u32 = 0;
    /// GRE over IPv6.
    pub const GRE6: u32 = 1;
    /// L3 DSR (IPv4 only).
    pub const L3DSR: u32 = 2;
    /// NAT4 (IPv4 only).
    pub const NAT4: u32 = 3;
    /// NAT6 (IPv6 only).
    pub const NAT6: u32 = 4;
}

/// Which VPP generation's lb plugin to reproduce (§7.4 of the protocol notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LbFlavor {
    /// VPP master after the May 2026 "lb: API bugfix" (lb 1.2.0): weights, `lb_conf_get`,
    /// `lb_as_v2_dump`, weighted Maglev.
    #[default]
    Master,
    /// VPP 26.06 and earlier (lb 1.1.0): no weight messages, unweighted Maglev, and the wire
    /// bugs of the old handlers (raw prefix length, little-endian encap, buggy details).
    Release2606,
}

/// The internal VIP type (`lb_vip_type_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VipType {
    /// IPv6 VIP, GRE6 encap.
    Ip6Gre6,
    /// IPv6 VIP, GRE4 encap.
    Ip6Gre4,
    /// IPv4 VIP, GRE6 encap.
    Ip4Gre6,
    /// IPv4 VIP, GRE4 encap.
    Ip4Gre4,
    /// IPv4 VIP, L3DSR.
    Ip4L3dsr,
    /// IPv4 VIP, NAT4.
    Ip4Nat4,
    /// IPv6 VIP, NAT6.
    Ip6Nat6,
}

impl VipType {
    /// The name VPP's CLI prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ip6Gre6 => "ip6-gre6",
            Self::Ip6Gre4 => "ip6-gre4",
            Self::Ip4Gre6 => "ip4-gre6",
            Self::Ip4Gre4 => "ip4-gre4",
            Self::Ip4L3dsr => "ip4-l3dsr",
            Self::Ip4Nat4 => "ip4-nat4",
            Self::Ip6Nat6 => "ip6-nat6",
        }
    }

    fn is_ip4(self) -> bool {
        matches!(
            self,
            Self::Ip4Gre6 | Self::Ip4Gre4 | Self::Ip4L3dsr | Self::Ip4Nat4
        )
    }

    fn is_nat(self) -> bool {
        matches!(self, Self::Ip4Nat4 | Self::Ip6Nat6)
    }

    /// The internal `lb_vip_type_t` value (what 26.06 reports as `encap`).
    pub fn internal_value(self) -> u32 {
        match self {
            Self::Ip6Gre6 => 0,
            Self::Ip6Gre4 => 1,
            Self::Ip4Gre6 => 2,
            Self::Ip4Gre4 => 3,
            Self::Ip4L3dsr => 4,
            Self::Ip4Nat4 => 5,
            Self::Ip6Nat6 => 6,
        }
    }

    /// The API encap value reported in `lb_vip_details`.
    pub fn api_encap(self) -> u32 {
        match self {
            Self::Ip4Gre4 | Self::Ip6Gre4 => encap::GRE4,
            Self::Ip4Gre6 | Self::Ip6Gre6 => encap::GRE6,
            Self::Ip4L3dsr => encap::L3DSR,
            Self::Ip4Nat4 => encap::NAT4,
            Self::Ip6Nat6 => encap::NAT6,
        }
    }

    /// The type the add handler picks; an encap that does not fit the family leaves VPP's
    /// zero value, `ip6-gre6`, which `lb_vip_add` then rejects for IPv4 prefixes only.
    fn from_api(is_ip4: bool, encap: u32) -> Self {
        match (is_ip4, encap) {
            (true, encap::GRE4) => Self::Ip4Gre4,
            (true, encap::GRE6) => Self::Ip4Gre6,
            (true, encap::L3DSR) => Self::Ip4L3dsr,
            (true, encap::NAT4) => Self::Ip4Nat4,
            (false, encap::GRE4) => Self::Ip6Gre4,
            (false, encap::NAT6) => Self::Ip6Nat6,
            _ => Self::Ip6Gre6,
        }
    }
}

/// The 16-byte `ip46_address_t` form: IPv4 as 12 zero bytes then the address.
pub type Ip46 = [u8; 16];

/// Converts an address to VPP's internal `ip46` form.
pub fn to_ip46(a: IpAddr) -> Ip46 {
    match a {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[12..].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn ip46_is_ip4(a: &Ip46) -> bool {
    a[..12].iter().all(|&b| b == 0)
}

/// Converts back from the `ip46` form, as `ip_address_encode(.., IP46_TYPE_ANY, ..)` does.
pub fn from_ip46(a: &Ip46) -> IpAddr {
    if ip46_is_ip4(a) {
        IpAddr::V4(Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*a))
    }
}

fn normalize(mut a: Ip46, plen: u8) -> Ip46 {
    let plen = usize::from(plen.min(128));
    for (i, byte) in a.iter_mut().enumerate() {
        let bits_before = i * 8;
        if bits_before >= plen {
            *byte = 0;
        } else if plen - bits_before < 8 {
            *byte &= 0xffu8 << (8 - (plen - bits_before));
        }
    }
    a
}

fn prefix_is_ip4(a: &Ip46, plen: u8) -> bool {
    ip46_is_ip4(a) && plen >= 96
}

/// A VIP key as a client sends it: prefix, length (as on the wire, 32 for an IPv4 host),
/// protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipKey {
    /// The VIP prefix address.
    pub prefix: IpAddr,
    /// The prefix length as on the wire (VPP adds 96 for IPv4 internally).
    pub plen: u8,
    /// IP protocol; 255 for an all-port VIP (forced when `port` is 0).
    pub protocol: u8,
    /// Port; 0 for an all-port VIP.
    pub port: u16,
}

impl VipKey {
    fn internal(&self) -> (Ip46, u8, u8, u16) {
        let plen = match self.prefix {
            IpAddr::V4(_) => self.plen.wrapping_add(96),
            IpAddr::V6(_) => self.plen,
        };
        let protocol = if self.port == 0 { 255 } else { self.protocol };
        (
            normalize(to_ip46(self.prefix), plen),
            plen,
            protocol,
            self.port,
        )
    }
}

/// Arguments of `lb_add_del_vip[_v2]` when adding, decoded from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipSpec {
    /// Prefix, protocol and port.
    pub key: VipKey,
    /// API encap value (`lb_encap_type`).
    pub encap: u32,
    /// DSCP for L3DSR (masked with 0x3f).
    pub dscp: u8,
    /// Service type for NAT (the first wire byte of the u32, see the protocol notes).
    pub srv_type: u8,
    /// Target port for NAT.
    pub target_port: u16,
    /// New-flow table length; must be a power of two.
    pub new_flows_table_length: u32,
    /// Hash only on the source address.
    pub src_ip_sticky: bool,
}

/// Global lb configuration (`lb_conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbConf {
    /// GRE4 source address.
    pub ip4_src_address: Ipv4Addr,
    /// GRE6 source address.
    pub ip6_src_address: Ipv6Addr,
    /// Sticky-table buckets per core (power of two).
    pub sticky_buckets_per_core: u32,
    /// Flow timeout in seconds.
    pub flow_timeout: u32,
}

impl Default for LbConf {
    fn default() -> Self {
        Self {
            ip4_src_address: Ipv4Addr::new(255, 255, 255, 255),
            ip6_src_address: Ipv6Addr::from([0xff; 16]),
            sticky_buckets_per_core: DEFAULT_STICKY_BUCKETS,
            flow_timeout: DEFAULT_FLOW_TIMEOUT,
        }
    }
}

/// A VPP-style pool: a vector of slots with a LIFO free list, like vppinfra's `pool_get`.
#[derive(Debug, Clone)]
struct Pool<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Pool<T> {
    fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    fn put_new(&mut self, value: T) -> u32 {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(value);
            i
        } else {
            self.slots.push(Some(value));
            u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
        }
    }

    fn remove(&mut self, i: u32) -> Option<T> {
        let v = self.slots.get_mut(i as usize)?.take();
        if v.is_some() {
            self.free.push(i);
        }
        v
    }

    fn get(&self, i: u32) -> Option<&T> {
        self.slots.get(i as usize)?.as_ref()
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.slots.get_mut(i as usize)?.as_mut()
    }

    fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|v| (i as u32, v)))
    }

    fn len_elts(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

/// One VIP in the pool.
#[derive(Debug, Clone)]
pub struct Vip {
    prefix: Ip46,
    plen: u8,
    protocol: u8,
    port: u16,
    vip_type: VipType,
    dscp: u8,
    srv_type: u8,
    target_port: u16,
    src_ip_sticky: bool,
    used: bool,
    table_len: u32,
    last_gc: u32,
    /// AS pool indices in a pool of their own, as VPP's `vip->as_indexes`: walked in slot
    /// order, freed slots reused last-freed first.
    as_indexes: Pool<u32>,
    /// Buckets of the new-flow table owned per AS pool index (0 = drop).
    buckets: BTreeMap<u32, u32>,
    counters: [u64; 4],
}

impl Vip {
    fn members(&self) -> Vec<u32> {
        self.as_indexes.iter().map(|(_, &ai)| ai).collect()
    }
}

/// One AS (application server) in the global AS pool.
#[derive(Debug, Clone)]
struct As {
    address: Ip46,
    vip_index: u32,
    used: bool,
    weight: u8,
    last_used: u32,
}

/// A read-only view of one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipView {
    /// Pool index (the stats counter index).
    pub index: u32,
    /// Prefix address.
    pub prefix: IpAddr,
    /// Prefix length as the API reports it (32 for an IPv4 host).
    pub plen: u8,
    /// Stored protocol (255 for all-port VIPs).
    pub protocol: u8,
    /// Port (0 for all-port VIPs).
    pub port: u16,
    /// Internal type.
    pub vip_type: VipType,
    /// DSCP (L3DSR).
    pub dscp: u8,
    /// Service type (NAT).
    pub srv_type: u8,
    /// Target port (NAT).
    pub target_port: u16,
    /// Source-IP stickiness.
    pub src_ip_sticky: bool,
    /// New-flow table length.
    pub table_len: u32,
    /// False once deleted (until garbage collection frees the slot).
    pub used: bool,
}

/// One row of `lb_as_dump` / `lb_as_v2_dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsView {
    /// The VIP this AS belongs to.
    pub vip: VipView,
    /// AS pool index.
    pub index: u32,
    /// AS address.
    pub address: IpAddr,
    /// Bit 0 = USED.
    pub flags: u8,
    /// `last_used`: uptime seconds when it left use (0 if never).
    pub in_use_since: u32,
    /// Weight (0–255 on the wire, 100 by default).
    pub weight: u8,
    /// Buckets of the VIP's new-flow table pointing at this AS.
    pub num_buckets: u32,
}

/// The raw filter of `lb_as_dump`: VPP compares the 16 union bytes of the request with the
/// internal `ip46` form, so an IPv4 VIP only matches when the client puts its address in
/// bytes 12..16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsDumpFilter {
    /// The request's raw 16 address-union bytes.
    pub raw_address: [u8; 16],
    /// Protocol to match exactly.
    pub protocol: u8,
    /// Port to match exactly.
    pub port: u16,
}

/// The state of VPP's lb plugin.
#[derive(Debug, Clone)]
pub struct LbModel {
    flavor: LbFlavor,
    conf: LbConf,
    vips: Pool<Vip>,
    ass: Pool<As>,
}

impl Default for LbModel {
    fn default() -> Self {
        Self::new()
    }
}

impl LbModel {
    /// A fresh plugin as after VPP start-up: the placeholder VIP at index 0 and the drop AS at
    /// index 0.
    pub fn new() -> Self {
        let mut vips = Pool::new();
        vips.put_new(Vip {
            prefix: [0xff; 16],
            plen: 0,
            protocol: 255,
            port: 0,
            vip_type: VipType::Ip6Gre6,
            dscp: 0,
            srv_type: 0,
            target_port: 0,
            src_ip_sticky: false,
            used: true,
            table_len: 0,
            last_gc: 0,
            as_indexes: Pool::new(),
            buckets: BTreeMap::new(),
            counters: [0; 4],
        });
        let mut ass = Pool::new();
        ass.put_new(As {
            address: [0xff; 16],
            vip_index: u32::MAX,
            used: false,
            weight: 0,
            last_used: 0,
        });
        Self {
            flavor: LbFlavor::Master,
            conf: LbConf::default(),
            vips,
            ass,
        }
    }

    /// A fresh plugin of the given generation (which Maglev variant fills the tables).
    pub fn with_flavor(flavor: LbFlavor) -> Self {
        Self {
            flavor,
            ..Self::new()
        }
    }

    /// The generation this model reproduces.
    pub fn flavor(&self) -> LbFlavor {
        self.flavor
    }

    /// The current global configuration.
    pub fn conf(&self) -> LbConf {
        self.conf
    }

    /// `lb_conf`: `u32::MAX` for `sticky_buckets_per_core` or `flow_timeout` keeps the current
    /// value. Fails with [`LbError::InvalidMemorySize`] if the bucket count is not a power of
    /// two.
    pub fn set_conf(
        &mut self,
        ip4: Ipv4Addr,
        ip6: Ipv6Addr,
        sticky_buckets_per_core: u32,
        flow_timeout: u32,
    ) -> Result<(), LbError> {
        let sticky = if sticky_buckets_per_core == u32::MAX {
            self.conf.sticky_buckets_per_core
        } else {
            sticky_buckets_per_core
        };
        let timeout = if flow_timeout == u32::MAX {
            self.conf.flow_timeout
        } else {
            flow_timeout
        };
        // VPP's is_pow2() also accepts 0.
        if sticky & sticky.wrapping_sub(1) != 0 {
            return Err(LbError::InvalidMemorySize);
        }
        self.conf = LbConf {
            ip4_src_address: ip4,
            ip6_src_address: ip6,
            sticky_buckets_per_core: sticky,
            flow_timeout: timeout,
        };
        Ok(())
    }

    fn find(&self, prefix: &Ip46, plen: u8, pred: impl Fn(&Vip) -> bool) -> Option<u32> {
        self.vips
            .iter()
            .find(|(_, v)| v.used && v.plen == plen && v.prefix == *prefix && pred(v))
            .map(|(i, _)| i)
    }

    /// The pool index of the in-use VIP with this key.
    pub fn find_vip(&self, key: &VipKey) -> Result<u32, LbError> {
        let (prefix, plen, protocol, port) = key.internal();
        self.find(&prefix, plen, |v| v.protocol == protocol && v.port == port)
            .ok_or(LbError::NoSuchEntry)
    }

    /// `lb_add_del_vip[_v2]` with `is_del = 0`. Returns the new pool index.
    ///
    /// A table length of 0 fails with [`LbError::InvalidMemorySize`] here; a real VPP accepts
    /// it (its `is_pow2(0)` is true) and then dies allocating a 2^32-entry table, which the
    /// server simulates as a crash.
    pub fn add_vip(&mut self, spec: &VipSpec, now: u32) -> Result<u32, LbError> {
        let (prefix, plen, protocol, port) = spec.key.internal();
        let is_ip4 = prefix_is_ip4(&prefix, plen);
        let vip_type = VipType::from_api(is_ip4, spec.encap);
        if self
            .find(&prefix, plen, |v| v.protocol == protocol && v.port == port)
            .is_some()
        {
            return Err(LbError::ValueExist);
        }
        if port != 0 && self.find(&prefix, plen, |v| v.port == 0).is_some() {
            return Err(LbError::ValueExist);
        }
        let other_port = self.find(&prefix, plen, |v| v.protocol != protocol || v.port != port);
        if port == 0 && other_port.is_some() {
            return Err(LbError::ValueExist);
        }
        if let Some(other) = other_port
            && port != 0
            && self.vips.get(other).map(|v| v.vip_type) != Some(vip_type)
        {
            return Err(LbError::InvalidArgument);
        }
        if !spec.new_flows_table_length.is_power_of_two() {
            return Err(LbError::InvalidMemorySize);
        }
        if prefix_is_ip4(&prefix, plen) != vip_type.is_ip4() {
            return Err(LbError::InvalidAddressFamily);
        }
        let n = spec.new_flows_table_length;
        let index = self.vips.put_new(Vip {
            prefix,
            plen,
            protocol,
            port,
            vip_type,
            dscp: if vip_type == VipType::Ip4L3dsr {
                spec.dscp & 0x3f
            } else {
                0
            },
            srv_type: if vip_type.is_nat() { spec.srv_type } else { 0 },
            target_port: if vip_type.is_nat() {
                spec.target_port
            } else {
                0
            },
            src_ip_sticky: spec.src_ip_sticky,
            used: true,
            table_len: n,
            last_gc: now,
            as_indexes: Pool::new(),
            buckets: BTreeMap::from([(0, n)]),
            counters: [0; 4],
        });
        Ok(index)
    }

    /// `lb_add_del_vip[_v2]` with `is_del = 1`: marks the VIP's ASes unused and the VIP removed.
    /// The slot stays until garbage collection.
    pub fn del_vip(&mut self, key: &VipKey, now: u32) -> Result<u32, LbError> {
        let index = self.find_vip(key)?;
        if index == 0 {
            return Ok(0);
        }
        let members = self.vips.get(index).map(Vip::members).unwrap_or_default();
        if !members.is_empty() {
            self.maybe_gc_vip(index, now);
            for ai in members {
                if let Some(a) = self.ass.get_mut(ai) {
                    a.used = false;
                    a.last_used = now;
                }
            }
            self.rebuild(index);
        }
        if let Some(v) = self.vips.get_mut(index) {
            v.used = false;
        }
        Ok(index)
    }

    fn find_as(&self, vip_index: u32, addr: &Ip46) -> Option<u32> {
        let vip = self.vips.get(vip_index)?;
        vip.as_indexes.iter().map(|(_, &ai)| ai).find(|&ai| {
            self.ass
                .get(ai)
                .is_some_and(|a| a.vip_index == vip_index && a.address == *addr)
        })
    }

    /// `lb_add_del_as[_v2]` with `is_del = 0`. An unused AS with the same address is reused.
    pub fn add_as(
        &mut self,
        key: &VipKey,
        address: IpAddr,
        weight: u8,
        now: u32,
    ) -> Result<u32, LbError> {
        let vip_index = self.find_vip(key)?;
        let addr = to_ip46(address);
        let index = if let Some(ai) = self.find_as(vip_index, &addr) {
            let a = self.ass.get_mut(ai).ok_or(LbError::NoSuchEntry)?;
            if a.used {
                return Err(LbError::ValueExist);
            }
            a.used = true;
            a.weight = weight;
            ai
        } else {
            let vip_is_ip4 = self.vips.get(vip_index).is_some_and(|v| {
                matches!(
                    v.vip_type,
                    VipType::Ip4Gre4 | VipType::Ip6Gre4 | VipType::Ip4L3dsr
                ) || v.vip_type == VipType::Ip4Nat4
            });
            if ip46_is_ip4(&addr) != vip_is_ip4 {
                return Err(LbError::InvalidAddressFamily);
            }
            let ai = self.ass.put_new(As {
                address: addr,
                vip_index,
                used: true,
                weight,
                last_used: 0,
            });
            if let Some(v) = self.vips.get_mut(vip_index) {
                v.as_indexes.put_new(ai);
            }
            ai
        };
        self.rebuild(vip_index);
        self.maybe_gc_vip(vip_index, now);
        Ok(index)
    }

    /// `lb_add_del_as[_v2]` with `is_del = 1`: the AS stays listed, unused, until garbage
    /// collection. `flush` only affects sticky sessions, which the model does not hold.
    pub fn del_as(&mut self, key: &VipKey, address: IpAddr, now: u32) -> Result<(), LbError> {
        let vip_index = self.find_vip(key)?;
        let ai = self
            .find_as(vip_index, &to_ip46(address))
            .ok_or(LbError::NoSuchEntry)?;
        self.maybe_gc_vip(vip_index, now);
        // Collection may have freed it when it was already unused: then it is simply gone.
        if let Some(a) = self.ass.get_mut(ai) {
            a.used = false;
            a.last_used = now;
        }
        self.rebuild(vip_index);
        Ok(())
    }

    /// `lb_as_set_weight`: the AS must exist and be in use.
    pub fn set_as_weight(
        &mut self,
        key: &VipKey,
        address: IpAddr,
        weight: u8,
    ) -> Result<(), LbError> {
        let vip_index = self.find_vip(key)?;
        let ai = self
            .find_as(vip_index, &to_ip46(address))
            .ok_or(LbError::NoSuchEntry)?;
        let a = self.ass.get_mut(ai).ok_or(LbError::NoSuchEntry)?;
        if !a.used {
            return Err(LbError::NoSuchEntry);
        }
        a.weight = weight;
        self.rebuild(vip_index);
        Ok(())
    }

    /// `lb_flush_vip`: drops the VIP's sticky sessions (none are modelled).
    ///
    /// It cannot fail: VPP (26.06 and master) overwrites the result of the VIP lookup with the
    /// flush's and answers 0 even for a VIP that does not exist.
    pub fn flush_vip(&mut self, key: &VipKey) {
        // Nothing to drop: the model keeps no sticky sessions. The lookup stays for clarity
        // of what a real flush touches.
        let _ = self.find_vip(key);
    }

    fn rebuild(&mut self, vip_index: u32) {
        let Some(vip) = self.vips.get(vip_index) else {
            return;
        };
        let entries: Vec<Entry> = vip
            .as_indexes
            .iter()
            .filter_map(|(_, &ai)| {
                let a = self.ass.get(ai)?;
                a.used.then_some(Entry {
                    as_index: ai,
                    address: a.address,
                    weight: a.weight,
                })
            })
            .collect();
        let unweighted = self.flavor == LbFlavor::Release2606;
        let buckets = bucket_counts(&entries, vip.table_len, unweighted);
        if let Some(v) = self.vips.get_mut(vip_index) {
            v.buckets = buckets;
        }
    }

    fn maybe_gc_vip(&mut self, vip_index: u32, now: u32) {
        let Some(vip) = self.vips.get(vip_index) else {
            return;
        };
        if now.wrapping_sub(vip.last_gc.wrapping_add(GARBAGE_RUN_SECS)) as i32 <= 0 {
            return;
        }
        self.gc_vip(vip_index, now, false);
    }

    /// Frees the VIP's unused ASes whose flows have expired (or all of them when `force`).
    fn gc_vip(&mut self, vip_index: u32, now: u32, force: bool) {
        let flow_timeout = self.conf.flow_timeout;
        let Some(vip) = self.vips.get_mut(vip_index) else {
            return;
        };
        vip.last_gc = now;
        let members: Vec<(u32, u32)> = vip
            .as_indexes
            .iter()
            .map(|(slot, &ai)| (slot, ai))
            .collect();
        let mut freed_slots = Vec::new();
        for (slot, ai) in members {
            let free = self.ass.get(ai).is_some_and(|a| {
                let quiet_for = now.wrapping_sub(a.last_used);
                !a.used
                    && (force
                        || (quiet_for > CONCURRENCY_TIMEOUT_SECS && quiet_for >= flow_timeout))
            });
            if free {
                self.ass.remove(ai);
                freed_slots.push(slot);
            }
        }
        if let Some(v) = self.vips.get_mut(vip_index) {
            for slot in freed_slots {
                v.as_indexes.remove(slot);
            }
        }
    }

    /// Garbage collection as `lb_garbage_collection`: frees unused ASes whose flows have
    /// expired (unused for more than 10 s and at least the flow timeout), then frees removed
    /// VIPs left without ASes. Per VIP it runs at most every 60 s unless `force`, which also
    /// ignores the timeouts. Returns the pool indices of the VIPs freed.
    pub fn collect_garbage(&mut self, now: u32, force: bool) -> Vec<u32> {
        let indices: Vec<u32> = self.vips.iter().map(|(i, _)| i).skip(1).collect();
        let mut freed = Vec::new();
        for i in indices {
            if force {
                self.gc_vip(i, now, true);
            } else {
                self.maybe_gc_vip(i, now);
            }
            if self
                .vips
                .get(i)
                .is_some_and(|v| !v.used && v.as_indexes.len_elts() == 0)
            {
                freed.push(i);
            }
        }
        for &i in &freed {
            self.vips.remove(i);
        }
        freed
    }

    fn view(&self, index: u32, v: &Vip) -> VipView {
        let is4 = prefix_is_ip4(&v.prefix, v.plen);
        VipView {
            index,
            prefix: from_ip46(&v.prefix),
            plen: if is4 { v.plen.wrapping_sub(96) } else { v.plen },
            protocol: v.protocol,
            port: v.port,
            vip_type: v.vip_type,
            dscp: v.dscp,
            srv_type: v.srv_type,
            target_port: v.target_port,
            src_ip_sticky: v.src_ip_sticky,
            table_len: v.table_len,
            used: v.used,
        }
    }

    /// What `lb_vip_dump` lists: every in-use VIP except the placeholder, in pool order. VPP
    /// ignores the dump's filter fields.
    pub fn vip_dump(&self) -> Vec<VipView> {
        self.vips
            .iter()
            .skip(1)
            .filter(|(_, v)| v.used)
            .map(|(i, v)| self.view(i, v))
            .collect()
    }

    /// Every VIP slot in use in the pool (placeholder excluded), removed ones included.
    pub fn all_vips(&self) -> Vec<VipView> {
        self.vips
            .iter()
            .skip(1)
            .map(|(i, v)| self.view(i, v))
            .collect()
    }

    /// What `lb_as_dump` / `lb_as_v2_dump` list: ASes of every VIP slot (removed VIPs and
    /// unused ASes included) whose VIP matches the filter; `None` or an all-zero address
    /// dumps everything.
    pub fn as_dump(&self, filter: Option<&AsDumpFilter>) -> Vec<AsView> {
        let mut out = Vec::new();
        for (vi, v) in self.vips.iter() {
            let matches = match filter {
                None => true,
                Some(f) if f.raw_address == [0; 16] => true,
                Some(f) => {
                    f.raw_address == v.prefix && f.protocol == v.protocol && f.port == v.port
                }
            };
            if !matches {
                continue;
            }
            let counts = &v.buckets;
            let view = self.view(vi, v);
            for (_, &ai) in v.as_indexes.iter() {
                if ai == 0 {
                    continue;
                }
                let Some(a) = self.ass.get(ai) else { continue };
                out.push(AsView {
                    vip: view.clone(),
                    index: ai,
                    address: from_ip46(&a.address),
                    flags: if a.used { AS_FLAG_USED } else { 0 },
                    in_use_since: a.last_used,
                    weight: a.weight,
                    num_buckets: counts.get(&ai).copied().unwrap_or(0),
                });
            }
        }
        out
    }

    /// The pool indices of VIP slots in use, removed VIPs included (placeholder excluded).
    pub fn vip_indices(&self) -> Vec<u32> {
        self.vips.iter().skip(1).map(|(i, _)| i).collect()
    }

    /// The four counters of a VIP slot.
    pub fn counters(&self, vip_index: u32) -> Option<[u64; 4]> {
        self.vips.get(vip_index).map(|v| v.counters)
    }

    /// Adds to one of a VIP's four counters (0..4, in [`VIP_COUNTER_NAMES`] order).
    pub fn bump_counter(&mut self, vip_index: u32, counter: usize, by: u64) -> bool {
        match self.vips.get_mut(vip_index) {
            Some(v) if vip_index != 0 && counter < 4 => {
                v.counters[counter] = v.counters[counter].wrapping_add(by);
                true
            }
            _ => false,
        }
    }

    /// Buckets owned per AS pool index in a VIP's new-flow table (index 0 = drop).
    pub fn bucket_counts(&self, vip_index: u32) -> Option<&BTreeMap<u32, u32>> {
        self.vips.get(vip_index).map(|v| &v.buckets)
    }

    /// Number of AS pool elements, the drop AS excluded.
    pub fn as_count(&self) -> usize {
        self.ass.len_elts().saturating_sub(1)
    }

    /// `show lb vips` (`verbose = false`) or `show lb vips verbose`, in VPP's (master's) format:
    /// one VIP a line, or one block a VIP followed by a blank line, with one line per AS:
    /// `<address> weight:<w> buckets:<n> flows:<n> dpo:<i> used` (or `dpo:<i>  removed`).
    pub fn show_vips(&self, verbose: bool) -> String {
        let mut s = String::new();
        for (vi, v) in self.vips.iter().skip(1) {
            if verbose {
                self.format_vip_detailed(&mut s, vi, v);
            } else {
                self.format_vip(&mut s, v);
            }
            s.push('\n');
        }
        s
    }

    fn format_prefix(v: &Vip) -> String {
        let is4 = prefix_is_ip4(&v.prefix, v.plen);
        let len = if is4 { v.plen.wrapping_sub(96) } else { v.plen };
        format!("{}/{}", from_ip46(&v.prefix), len)
    }

    fn format_vip(&self, s: &mut String, v: &Vip) {
        let _ = write!(
            s,
            "{} {} new_size:{} #as:{}{}",
            v.vip_type.name(),
            Self::format_prefix(v),
            v.table_len,
            v.as_indexes.len_elts(),
            if v.used { "" } else { " removed" }
        );
        if v.port != 0 {
            let _ = write!(s, "  protocol:{} port:{} ", v.protocol, v.port);
        }
        if v.vip_type == VipType::Ip4L3dsr {
            let _ = write!(s, "  dscp:{}", v.dscp);
        } else if v.vip_type.is_nat() {
            let _ = write!(
                s,
                " type:{} port:{} target_port:{}",
                if v.srv_type == 0 {
                    "clusterip"
                } else {
                    "nodeport"
                },
                v.port.swap_bytes(),
                v.target_port.swap_bytes()
            );
        }
    }

    fn format_vip_detailed(&self, s: &mut String, vi: u32, v: &Vip) {
        let _ = writeln!(
            s,
            " {} [{}] {}{}{}",
            v.vip_type.name(),
            vi,
            Self::format_prefix(v),
            if v.src_ip_sticky {
                " src_ip_sticky"
            } else {
                ""
            },
            if v.used { "" } else { " removed" }
        );
        let _ = writeln!(s, "  new_size:{}", v.table_len);
        if v.port != 0 {
            let _ = writeln!(s, "  protocol:{} port:{}", v.protocol, v.port);
        }
        if v.vip_type == VipType::Ip4L3dsr {
            let _ = writeln!(s, "  dscp:{}", v.dscp);
        } else if v.vip_type.is_nat() {
            // VPP ends this line without a newline: `counters:` follows on the same line
            let _ = write!(
                s,
                "  type:{} port:{} target_port:{}",
                if v.srv_type == 0 {
                    "clusterip"
                } else {
                    "nodeport"
                },
                v.port.swap_bytes(),
                v.target_port.swap_bytes()
            );
        }
        let _ = writeln!(s, "  counters:");
        for (name, value) in VIP_COUNTER_NAMES.iter().zip(v.counters) {
            let _ = writeln!(s, "    {name}: {value}");
        }
        let _ = writeln!(s, "  #as:{}", v.as_indexes.len_elts());
        let counts = &v.buckets;
        for (_, &ai) in v.as_indexes.iter() {
            let Some(a) = self.ass.get(ai) else { continue };
            // master's format; no flows are modelled, and the AS index stands in for the DPO
            let _ = writeln!(
                s,
                "    {} weight:{} buckets:{} flows:0 dpo:{} {}",
                from_ip46(&a.address),
                a.weight,
                counts.get(&ai).copied().unwrap_or(0),
                ai,
                if a.used { "used" } else { " removed" }
            );
        }
    }
}
