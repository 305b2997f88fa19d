//! The reconcile plan: operations that bring VPP from what it holds to what it should hold.
//!
//! [`VppState`] describes the `lb` plugin's VIPs and their application servers (ASes), either
//! as VPP reports them or as they should be. [`plan`] compares two states and returns the
//! [`Op`]s to send, in order. It is a merge walk over sorted maps: a sync with no drift costs
//! one comparison per AS and yields an empty plan, so no mutating message is sent.
//!
//! Rules (product spec A.3, A.4 and B §4.3):
//!
//! - [`Scope::All`] removes stale VIPs (their ASes deleted with flush first, then the VIP);
//!   [`Scope::Vip`] touches one VIP and never removes it.
//! - A change of encap, of `src-ip-sticky` or of the table length recreates the VIP: its ASes
//!   are deleted with flush, the VIP deleted, added back, and its ASes added.
//! - Within a VIP, AS adds and weight changes come first, in numeric address order (IPv4 before
//!   IPv6), then AS deletions, in the same order: the VIP never loses capacity it keeps.
//! - An AS deletion always flushes. A weight change flushes when the new weight is 0 and the
//!   desired AS asks for it ([`As::flush`], a backend in a flushing state). A backend in the
//!   [`FlushSet`] (a transition into a flushing state just happened) gets
//!   `weight 0, flush` even when VPP already has weight 0. Otherwise a weight already at 0 is
//!   never touched.
//! - A new VIP's table length is always a power of two, never 0: an invalid desired length
//!   becomes [`DEFAULT_TABLE_LEN`].

mod ases;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

pub use ases::{AsMap, Iter as AsIter};

pub use crate::maglev::DEFAULT_TABLE_LEN;
use crate::maglev::{MaglevError, Table};

/// Identifies a VIP in VPP: prefix, IP protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VipKey {
    /// The VIP prefix (`/32` or `/128` for a single address).
    pub prefix: IpNet,
    /// IP protocol number: 6 TCP, 17 UDP, 255 for an all-port VIP.
    pub protocol: u8,
    /// Port; 0 for an all-port VIP.
    pub port: u16,
}

impl VipKey {
    /// A key from its parts.
    #[must_use]
    pub fn new(prefix: IpNet, protocol: u8, port: u16) -> Self {
        Self {
            prefix,
            protocol,
            port,
        }
    }
}

impl fmt::Display for VipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            6 => write!(f, "{} tcp:{}", self.prefix, self.port),
            17 => write!(f, "{} udp:{}", self.prefix, self.port),
            255 => write!(f, "{} any", self.prefix),
            p => write!(f, "{} proto-{p}:{}", self.prefix, self.port),
        }
    }
}

/// Encapsulation of a VIP (the `lb_encap_type` API enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Encap {
    /// GRE over IPv4 (`LB_API_ENCAP_TYPE_GRE4` = 0).
    Gre4,
    /// GRE over IPv6 (`LB_API_ENCAP_TYPE_GRE6` = 1).
    Gre6,
    /// L3 DSR (`L3DSR` = 2); never created by us.
    L3dsr,
    /// NAT4 (`NAT4` = 3); never created by us.
    Nat4,
    /// NAT6 (`NAT6` = 4); never created by us.
    Nat6,
}

impl Encap {
    /// The `lb_encap_type` value.
    #[must_use]
    pub fn api_value(self) -> u32 {
        match self {
            Self::Gre4 => 0,
            Self::Gre6 => 1,
            Self::L3dsr => 2,
            Self::Nat4 => 3,
            Self::Nat6 => 4,
        }
    }

    /// The encap for an `lb_encap_type` value, if it is one.
    #[must_use]
    pub fn from_api_value(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::Gre4,
            1 => Self::Gre6,
            2 => Self::L3dsr,
            3 => Self::Nat4,
            4 => Self::Nat6,
            _ => return None,
        })
    }

    /// The lower-case name VPP's CLI uses (`gre4`, `gre6`, `l3dsr`, `nat4`, `nat6`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gre4 => "gre4",
            Self::Gre6 => "gre6",
            Self::L3dsr => "l3dsr",
            Self::Nat4 => "nat4",
            Self::Nat6 => "nat6",
        }
    }
}

impl From<crate::config::Encap> for Encap {
    fn from(encap: crate::config::Encap) -> Self {
        match encap {
            crate::config::Encap::Gre4 => Self::Gre4,
            crate::config::Encap::Gre6 => Self::Gre6,
        }
    }
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One application server of a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct As {
    /// Weight, 0 to 100 (0 = drained).
    pub weight: u8,
    /// Desired side only: the backend is in a flushing state, so a weight change to 0 also
    /// flushes its flows. Ignored on the current side (VPP has no such flag); set it `false`.
    pub flush: bool,
}

impl As {
    /// An AS with this weight and no flush hint.
    #[must_use]
    pub fn new(weight: u8) -> Self {
        Self {
            weight,
            flush: false,
        }
    }
}

/// One VIP with its ASes.
///
/// Build one with [`Vip::new`] and insert ASes into [`Vip::ases`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// Encapsulation.
    pub encap: Encap,
    /// Source-IP stickiness (`lb_add_del_vip_v2.src_ip_sticky`).
    pub src_ip_sticky: bool,
    /// New-flow table length (`new_flows_table_length`). On the current side, 0 means "not
    /// known" and never triggers a recreate: VPP reports the length as a `u16`, so 65,536 reads
    /// as 0, and VPP up to 26.06 reports garbage here.
    pub table_len: u32,
    /// ASes by address, in numeric order, IPv4 before IPv6.
    pub ases: AsMap,
}

impl Vip {
    /// A VIP without ASes.
    #[must_use]
    pub fn new(encap: Encap, src_ip_sticky: bool, table_len: u32) -> Self {
        Self {
            encap,
            src_ip_sticky,
            table_len,
            ases: AsMap::new(),
        }
    }

    /// The Maglev new-flow table VPP (master) builds for this VIP: each AS's bucket share.
    /// A table length of 0 or not a power of two counts as [`DEFAULT_TABLE_LEN`].
    ///
    /// # Errors
    /// When the ASes mix IPv4 and IPv6 (VPP refuses that).
    pub fn maglev_table(&self) -> Result<Table, MaglevError> {
        let ases: Vec<(IpAddr, u8)> = self.ases.iter().map(|(a, x)| (*a, x.weight)).collect();
        Table::build(effective_table_len(self.table_len), &ases)
    }
}

/// What VPP holds, or should hold.
///
/// **On the current side, include only ASes with the USED flag** (bit 0 of
/// `lb_as_v2_details.flags`): VPP keeps deleted ASes, and those of deleted VIPs, in its dumps
/// until garbage collection, and they are not real.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VppState {
    /// VIPs by key.
    pub vips: BTreeMap<VipKey, Vip>,
}

impl VppState {
    /// An empty state.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether both states hold the same VIPs, settings and AS weights, ignoring the desired
    /// side's flush hints and a current table length of 0 (unknown).
    #[must_use]
    pub fn converged(&self, desired: &Self) -> bool {
        self.vips.len() == desired.vips.len()
            && self
                .vips
                .iter()
                .zip(&desired.vips)
                .all(|((ck, cv), (dk, dv))| {
                    ck == dk && !needs_recreate(cv, dv) && same_ases(cv, dv)
                })
    }
}

fn same_ases(current: &Vip, desired: &Vip) -> bool {
    current.ases.len() == desired.ases.len()
        && current
            .ases
            .iter()
            .zip(&desired.ases)
            .all(|((ca, c), (da, d))| ca == da && c.weight == d.weight)
}

/// Which VIPs a sync covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every VIP: VIPs in VPP but not desired are removed.
    All,
    /// One VIP (one frontend). It is created, updated or recreated, never left removed; other
    /// VIPs are not looked at. When `desired` lacks the VIP the plan is empty (the caller
    /// reports the unknown frontend).
    Vip(VipKey),
}

/// Backends whose state transition asks for a one-time flush, per VIP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlushSet {
    by_vip: BTreeMap<VipKey, BTreeSet<IpAddr>>,
}

impl FlushSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for a flush of AS `address` of VIP `vip`.
    pub fn insert(&mut self, vip: VipKey, address: IpAddr) {
        self.by_vip.entry(vip).or_default().insert(address);
    }

    /// Whether AS `address` of VIP `vip` is to be flushed.
    #[must_use]
    pub fn contains(&self, vip: &VipKey, address: &IpAddr) -> bool {
        self.by_vip.get(vip).is_some_and(|s| s.contains(address))
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_vip.is_empty()
    }

    /// Every (VIP, AS address) pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&VipKey, &IpAddr)> + '_ {
        self.by_vip
            .iter()
            .flat_map(|(k, set)| set.iter().map(move |a| (k, a)))
    }
}

/// One VPP operation. Each carries what its message needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `lb_add_del_vip_v2` (add).
    VipAdd {
        /// The VIP.
        key: VipKey,
        /// Encapsulation.
        encap: Encap,
        /// Source-IP stickiness.
        src_ip_sticky: bool,
        /// `new_flows_table_length`: a power of two, never 0.
        table_len: u32,
    },
    /// `lb_add_del_vip_v2` (`is_del`). Sent only once the VIP has no AS left.
    VipDel {
        /// The VIP.
        key: VipKey,
        /// Its encapsulation, as VPP reported it.
        encap: Encap,
        /// Its source-IP stickiness, as reported.
        src_ip_sticky: bool,
    },
    /// `lb_add_del_as_v2` (add).
    AsAdd {
        /// The VIP.
        key: VipKey,
        /// AS address.
        address: IpAddr,
        /// Initial weight.
        weight: u8,
    },
    /// `lb_add_del_as_v2` (`is_del`).
    AsDel {
        /// The VIP.
        key: VipKey,
        /// AS address.
        address: IpAddr,
        /// `is_flush`: always true in plans made here.
        flush: bool,
    },
    /// `lb_as_set_weight`.
    AsSetWeight {
        /// The VIP.
        key: VipKey,
        /// AS address.
        address: IpAddr,
        /// New weight.
        weight: u8,
        /// `is_flush`: drop the AS's existing flows.
        flush: bool,
    },
}

impl Op {
    /// The VIP the operation is about.
    #[must_use]
    pub fn key(&self) -> &VipKey {
        match self {
            Self::VipAdd { key, .. }
            | Self::VipDel { key, .. }
            | Self::AsAdd { key, .. }
            | Self::AsDel { key, .. }
            | Self::AsSetWeight { key, .. } => key,
        }
    }

    /// The log event name of the product spec (`vpp-lbsync-vip-add`, ...).
    #[must_use]
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::VipAdd { .. } => "vpp-lbsync-vip-add",
            Self::VipDel { .. } => "vpp-lbsync-vip-del",
            Self::AsAdd { .. } => "vpp-lbsync-as-add",
            Self::AsDel { .. } => "vpp-lbsync-as-del",
            Self::AsSetWeight { .. } => "vpp-lbsync-as-weight",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VipAdd {
                key,
                encap,
                src_ip_sticky,
                table_len,
            } => write!(
                f,
                "vip add {key} encap {encap} src-ip-sticky {src_ip_sticky} table-length {table_len}"
            ),
            Self::VipDel { key, .. } => write!(f, "vip del {key}"),
            Self::AsAdd {
                key,
                address,
                weight,
            } => write!(f, "as add {key} {address} weight {weight}"),
            Self::AsDel {
                key,
                address,
                flush,
            } => write!(f, "as del {key} {address}{}", flush_word(*flush)),
            Self::AsSetWeight {
                key,
                address,
                weight,
                flush,
            } => write!(
                f,
                "as weight {key} {address} weight {weight}{}",
                flush_word(*flush)
            ),
        }
    }
}

fn flush_word(flush: bool) -> &'static str {
    if flush { " flush" } else { "" }
}

/// Operation counts of a plan (the `vpp-lbsync-done` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanStats {
    /// VIPs added.
    pub vip_add: usize,
    /// VIPs deleted.
    pub vip_del: usize,
    /// ASes added.
    pub as_add: usize,
    /// ASes deleted.
    pub as_del: usize,
    /// AS weight changes (including flush-only ones).
    pub as_weight: usize,
}

/// The operations of one sync, in the order to send them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The operations.
    pub ops: Vec<Op>,
}

impl Plan {
    /// Whether there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The number of operations.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Iterates over the operations in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Op> {
        self.ops.iter()
    }

    /// Counts per kind.
    #[must_use]
    pub fn stats(&self) -> PlanStats {
        let mut s = PlanStats::default();
        for op in &self.ops {
            match op {
                Op::VipAdd { .. } => s.vip_add += 1,
                Op::VipDel { .. } => s.vip_del += 1,
                Op::AsAdd { .. } => s.as_add += 1,
                Op::AsDel { .. } => s.as_del += 1,
                Op::AsSetWeight { .. } => s.as_weight += 1,
            }
        }
        s
    }
}

impl<'a> IntoIterator for &'a Plan {
    type Item = &'a Op;
    type IntoIter = std::slice::Iter<'a, Op>;
    fn into_iter(self) -> Self::IntoIter {
        self.ops.iter()
    }
}

impl fmt::Display for Plan {
    /// One operation per line (the dry-run output).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in &self.ops {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

/// The table length a new VIP gets: the desired one if it is a power of two, else
/// [`DEFAULT_TABLE_LEN`].
#[must_use]
pub fn effective_table_len(len: u32) -> u32 {
    if len.is_power_of_two() {
        len
    } else {
        DEFAULT_TABLE_LEN
    }
}

/// Computes the operations that turn `current` (what VPP reports, USED ASes only) into
/// `desired`, within `scope`. `flush_now` lists the backends whose transition asks for a
/// one-time flush; see the module documentation for every rule.
#[must_use]
pub fn plan(current: &VppState, desired: &VppState, scope: Scope, flush_now: &FlushSet) -> Plan {
    let mut ops = Vec::new();
    match scope {
        Scope::Vip(key) => {
            if let Some(d) = desired.vips.get(&key) {
                sync_vip(&mut ops, &key, current.vips.get(&key), d, flush_now);
            }
        }
        Scope::All => {
            // Stale VIPs first, then every desired VIP in key order.
            let mut desired_keys = desired.vips.keys().peekable();
            for (key, vip) in &current.vips {
                while desired_keys.next_if(|k| *k < key).is_some() {}
                if desired_keys.peek() != Some(&key) {
                    remove_vip(&mut ops, key, vip);
                }
            }
            let mut cur = current.vips.iter().peekable();
            for (key, d) in &desired.vips {
                while cur.next_if(|(k, _)| *k < key).is_some() {}
                let c = cur.next_if(|(k, _)| *k == key).map(|(_, v)| v);
                sync_vip(&mut ops, key, c, d, flush_now);
            }
        }
    }
    Plan { ops }
}

fn needs_recreate(current: &Vip, desired: &Vip) -> bool {
    current.encap != desired.encap
        || current.src_ip_sticky != desired.src_ip_sticky
        || (current.table_len != 0 && current.table_len != effective_table_len(desired.table_len))
}

fn remove_vip(ops: &mut Vec<Op>, key: &VipKey, vip: &Vip) {
    for address in vip.ases.keys() {
        ops.push(Op::AsDel {
            key: *key,
            address: *address,
            flush: true,
        });
    }
    ops.push(Op::VipDel {
        key: *key,
        encap: vip.encap,
        src_ip_sticky: vip.src_ip_sticky,
    });
}

fn add_vip(ops: &mut Vec<Op>, key: &VipKey, vip: &Vip) {
    ops.push(Op::VipAdd {
        key: *key,
        encap: vip.encap,
        src_ip_sticky: vip.src_ip_sticky,
        table_len: effective_table_len(vip.table_len),
    });
    for (address, a) in &vip.ases {
        ops.push(Op::AsAdd {
            key: *key,
            address: *address,
            weight: a.weight,
        });
    }
}

fn sync_vip(
    ops: &mut Vec<Op>,
    key: &VipKey,
    current: Option<&Vip>,
    desired: &Vip,
    flush_now: &FlushSet,
) {
    let Some(current) = current else {
        add_vip(ops, key, desired);
        return;
    };
    if needs_recreate(current, desired) {
        remove_vip(ops, key, current);
        add_vip(ops, key, desired);
        return;
    }
    let flush_set = flush_now.by_vip.get(key);
    // Fast path, the common case of a periodic sync: nothing to do for this VIP.
    if flush_set.is_none() && same_ases(current, desired) {
        return;
    }
    let mut deletes = false;
    let mut cur = current.ases.iter().peekable();
    for (address, d) in &desired.ases {
        while cur.next_if(|(a, _)| *a < address).is_some() {
            deletes = true;
        }
        match cur.next_if(|(a, _)| *a == address) {
            None => ops.push(Op::AsAdd {
                key: *key,
                address: *address,
                weight: d.weight,
            }),
            Some((_, c)) => {
                let flush_requested =
                    d.weight == 0 && flush_set.is_some_and(|s| s.contains(address));
                if c.weight != d.weight || flush_requested {
                    ops.push(Op::AsSetWeight {
                        key: *key,
                        address: *address,
                        weight: d.weight,
                        flush: flush_requested || (d.weight == 0 && d.flush),
                    });
                }
            }
        }
    }
    if deletes || cur.peek().is_some() {
        // Deletions after adds and weight changes, in numeric order.
        let mut des = desired.ases.keys().peekable();
        for address in current.ases.keys() {
            while des.next_if(|a| *a < address).is_some() {}
            if des.peek().map(|a| a.cmp(&address)) != Some(Ordering::Equal) {
                ops.push(Op::AsDel {
                    key: *key,
                    address: *address,
                    flush: true,
                });
            }
        }
    }
}
