//! The lb adapter: what VPP reports, as a [`VppState`]; plan operations, as request messages.
//!
//! Everything here is pure except [`dump_state`], which sends a sync's three reads together.
//!
//! | VPP                                   | here                                                   |
//! |---------------------------------------|--------------------------------------------------------|
//! | `lb_vip_dump` (ignores its filter)    | every VIP: key, encap, table length ([`state_from_dumps`]) |
//! | `lb_as_v2_dump`, unfiltered           | the ASes whose USED flag (bit 0 of `flags`) is set     |
//! | `cli_inband "show lb vips verbose"`   | [`ShownVip`]: `src_ip_sticky`, `removed`, pool index, per-AS buckets ([`parse_show_lb_vips`]) |
//! | `lb_add_del_vip_v2`, `lb_add_del_as_v2`, `lb_as_set_weight` | [`LbRequest`], from an [`Op`] by [`request`] |
//!
//! VPP's filters cannot be trusted (product spec A.4: `lb_as_v2_dump` with a prefix returns
//! nothing for IPv4 VIPs, `lb_vip_dump` ignores its filter), so everything is dumped and
//! filtered here. `lb_vip_details` lacks `src_ip_sticky`; it comes from the CLI, and when the
//! CLI cannot be read the desired value is assumed, so that a missing fact never recreates a
//! VIP.

use std::collections::HashMap;
use std::net::IpAddr;

use maglev_core::plan::{As, Encap, Op, Vip, VipKey, VppState};
use vpp_binapi::api::{ip_types, lb, lb_types, vlib};
use vpp_binapi::client::{Client, ClientError, CompatReport};
use vpp_binapi::codec::{DynMessage, Message};

use crate::error::{DumpError, Incompatible};

/// The CLI command whose output [`parse_show_lb_vips`] reads.
pub const SHOW_LB_VIPS_VERBOSE: &str = "show lb vips verbose";

/// Bit of `lb_as_v2_details.flags` set while an AS is in use (not deleted).
pub const AS_FLAG_USED: u8 = 1;

/// The messages the adapter sends or expects, as `(name, crc)`. `cli_inband` is not among
/// them: without it, stickiness is taken from the desired state.
#[must_use]
pub fn required_messages() -> [(&'static str, u32); 8] {
    [
        (lb::LbConf::NAME, lb::LbConf::CRC),
        (lb::LbAddDelVipV2::NAME, lb::LbAddDelVipV2::CRC),
        (lb::LbAddDelAsV2::NAME, lb::LbAddDelAsV2::CRC),
        (lb::LbAsSetWeight::NAME, lb::LbAsSetWeight::CRC),
        (lb::LbVipDump::NAME, lb::LbVipDump::CRC),
        (lb::LbVipDetails::NAME, lb::LbVipDetails::CRC),
        (lb::LbAsV2Dump::NAME, lb::LbAsV2Dump::CRC),
        (lb::LbAsV2Details::NAME, lb::LbAsV2Details::CRC),
    ]
}

/// Checks a connected VPP's message table against [`required_messages`].
///
/// # Errors
/// [`Incompatible`] with every missing or differently defined message.
pub fn check_compat(client: &Client) -> Result<(), Incompatible> {
    compat_problems(&client.compat(&required_messages()))
}

/// The [`check_compat`] verdict on a report (pure).
///
/// # Errors
/// [`Incompatible`] with the report's problems, if any.
pub fn compat_problems(report: &CompatReport) -> Result<(), Incompatible> {
    let problems: Vec<_> = report.problems().cloned().collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Incompatible { problems })
    }
}

/// One request message of the lb plugin that a plan operation turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbRequest {
    /// Adds or deletes a VIP.
    Vip(lb::LbAddDelVipV2),
    /// Adds or deletes an AS.
    As(lb::LbAddDelAsV2),
    /// Changes an AS's weight, optionally flushing its flows.
    Weight(lb::LbAsSetWeight),
}

impl LbRequest {
    /// The message name (`lb_add_del_vip_v2`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Vip(_) => lb::LbAddDelVipV2::NAME,
            Self::As(_) => lb::LbAddDelAsV2::NAME,
            Self::Weight(_) => lb::LbAsSetWeight::NAME,
        }
    }

    /// The message, type-erased (to compare with what a peer received, or to encode it).
    #[must_use]
    pub fn message(&self) -> &dyn DynMessage {
        match self {
            Self::Vip(m) => m,
            Self::As(m) => m,
            Self::Weight(m) => m,
        }
    }

    /// Sends the request and returns VPP's `retval` (0 when applied).
    ///
    /// # Errors
    /// A transport-level failure of the client.
    pub async fn send(&self, client: &Client) -> Result<i32, ClientError> {
        Ok(match self {
            Self::Vip(m) => client.request(m).await?.retval,
            Self::As(m) => client.request(m).await?.retval,
            Self::Weight(m) => client.request(m).await?.retval,
        })
    }
}

/// The request message that carries `op` (pure).
#[must_use]
pub fn request(op: &Op) -> LbRequest {
    let key = op.key();
    let pfx = ip_types::Prefix::from(key.prefix);
    let (protocol, port) = (key.protocol, key.port);
    let vip = |is_del: bool, encap: Encap, src_ip_sticky: bool, table_len: Option<u32>| {
        LbRequest::Vip(lb::LbAddDelVipV2 {
            pfx,
            protocol,
            port,
            encap: lb_types::LbEncapType(encap.api_value()),
            src_ip_sticky,
            is_del,
            new_flows_table_length: table_len
                .unwrap_or(lb::LbAddDelVipV2::default().new_flows_table_length),
            ..lb::LbAddDelVipV2::default()
        })
    };
    let as_ = |is_del: bool, address: IpAddr, weight: u8, is_flush: bool| {
        LbRequest::As(lb::LbAddDelAsV2 {
            pfx,
            protocol,
            port,
            as_address: address.into(),
            weight,
            is_del,
            is_flush,
        })
    };
    match *op {
        Op::VipAdd {
            encap,
            src_ip_sticky,
            table_len,
            ..
        } => vip(false, encap, src_ip_sticky, Some(table_len)),
        Op::VipDel {
            encap,
            src_ip_sticky,
            ..
        } => vip(true, encap, src_ip_sticky, None),
        Op::AsAdd {
            address, weight, ..
        } => as_(false, address, weight, false),
        Op::AsDel { address, flush, .. } => as_(true, address, 0, flush),
        Op::AsSetWeight {
            address,
            weight,
            flush,
            ..
        } => LbRequest::Weight(lb::LbAsSetWeight {
            pfx,
            protocol,
            port,
            as_address: address.into(),
            weight,
            is_flush: flush,
        }),
    }
}

/// What VPP holds, read with the three reads of a sync sent together (pipelined on one
/// connection): `lb_vip_dump`, an unfiltered `lb_as_v2_dump` and `show lb vips verbose`.
///
/// When VPP refuses the CLI (non-zero retval, or no `cli_inband` message), stickiness comes
/// from `desired` (see [`state_from_dumps`]).
///
/// # Errors
/// [`DumpError`] when a read fails at the transport level.
pub async fn dump_state(client: &Client, desired: &VppState) -> Result<VppState, DumpError> {
    let as_dump = lb::LbAsV2Dump {
        protocol: 255,
        ..lb::LbAsV2Dump::default()
    };
    let cli = vlib::CliInband {
        cmd: SHOW_LB_VIPS_VERBOSE.to_owned(),
    };
    let vip_dump = lb::LbVipDump::default();
    let (vips, ases, shown) = tokio::join!(
        client.dump(&vip_dump),
        client.dump(&as_dump),
        client.request(&cli),
    );
    let failed = |message: &'static str| move |source| DumpError { message, source };
    let vips = vips.map_err(failed(lb::LbVipDump::NAME))?;
    let ases = ases.map_err(failed(lb::LbAsV2Dump::NAME))?;
    let shown = match shown {
        Ok(reply) if reply.retval == 0 => Some(parse(&reply.reply, AsLines::Skip)),
        Ok(reply) => {
            tracing::warn!(name: "vpp-cli-refused", retval = reply.retval, detail = "src-ip-sticky taken from the desired state", "vpp-cli-refused");
            None
        }
        Err(ClientError::UnknownMessage { .. } | ClientError::CrcMismatch { .. }) => None,
        Err(source) => {
            return Err(DumpError {
                message: vlib::CliInband::NAME,
                source,
            });
        }
    };
    Ok(state_from_dumps(&vips, &ases, shown.as_deref(), desired))
}

/// Builds the current state from the reads of [`dump_state`] (pure).
///
/// - Every VIP of `vips` with a readable prefix and a known encap (others are logged as
///   `vpp-dump-skip` and left out).
/// - `src_ip_sticky` from the live (not `removed`) VIPs of `shown`; a VIP it does not list is
///   not sticky. With no `shown` (CLI unavailable), the desired value.
/// - The ASes of `ases` with the USED flag, attached to their VIP; ASes of VIPs that
///   `vips` does not list are ignored.
#[must_use]
pub fn state_from_dumps(
    vips: &[lb::LbVipDetails],
    ases: &[lb::LbAsV2Details],
    shown: Option<&[ShownVip]>,
    desired: &VppState,
) -> VppState {
    let sticky: Option<HashMap<VipKey, bool>> = shown.map(|shown| {
        shown
            .iter()
            .filter(|v| !v.removed)
            .map(|v| (v.key, v.src_ip_sticky))
            .collect()
    });
    let mut state = VppState::new();
    for details in vips {
        let Some(key) = key_of(&details.vip) else {
            tracing::warn!(name: "vpp-dump-skip", vip = ?details.vip, detail = "unreadable prefix", "vpp-dump-skip");
            continue;
        };
        let Some(encap) = Encap::from_api_value(details.encap.0) else {
            tracing::warn!(name: "vpp-dump-skip", vip = %key, encap = details.encap.0, detail = "unknown encap", "vpp-dump-skip");
            continue;
        };
        let src_ip_sticky = match &sticky {
            Some(map) => map.get(&key).copied().unwrap_or(false),
            None => desired.vips.get(&key).is_some_and(|v| v.src_ip_sticky),
        };
        state.vips.insert(
            key,
            Vip::new(encap, src_ip_sticky, u32::from(details.flow_table_length)),
        );
    }
    // Details come grouped by VIP: look each VIP up once per run of its ASes, and add the
    // run in one go (one sort at most, in whatever order VPP lists them).
    let mut run: Option<(lb_types::LbVip, Option<&mut Vip>)> = None;
    let mut found = Vec::new();
    for details in ases {
        if details.flags & AS_FLAG_USED == 0 {
            continue;
        }
        if run.as_ref().is_none_or(|(raw, _)| *raw != details.vip) {
            if let Some((_, Some(vip))) = run.take() {
                vip.ases.extend(found.drain(..));
            }
            let vip = key_of(&details.vip).and_then(|key| state.vips.get_mut(&key));
            run = Some((details.vip, vip));
        }
        if let Some((_, Some(_))) = run
            && let Ok(address) = details.app_srv.to_ip()
        {
            found.push((address, As::new(details.weight)));
        }
    }
    if let Some((_, Some(vip))) = run {
        vip.ases.extend(found);
    }
    state
}

fn key_of(vip: &lb_types::LbVip) -> Option<VipKey> {
    let prefix = vip.pfx.to_ipnet().ok()?;
    Some(VipKey::new(prefix, vip.protocol.0, vip.port))
}

/// One VIP block of `show lb vips verbose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownVip {
    /// The VIP's pool index in VPP (`[n]`): the index of its lb counters in the stats segment.
    pub index: u32,
    /// The VIP: prefix, then protocol and port from the `protocol:<p> port:<n>` line (an
    /// all-port VIP has none: protocol 255, port 0).
    pub key: VipKey,
    /// The encap of the VIP type (`ip4-gre4` is GRE4), when known.
    pub encap: Option<Encap>,
    /// `src_ip_sticky` is set.
    pub src_ip_sticky: bool,
    /// The VIP is deleted but not yet garbage-collected.
    pub removed: bool,
    /// The new-flow table length (`new_size:<n>`), when printed.
    pub new_size: Option<u32>,
    /// The VIP's ASes, in VPP's order.
    pub ases: Vec<ShownAs>,
}

/// One AS line of a [`ShownVip`], in either of VPP's formats:
///
/// - master: `<address> weight:<w> buckets:<n> flows:<n> dpo:<i>  used|removed`;
/// - older: `<address> <n> buckets <n> flows  dpo:<i> used|removed` (no weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownAs {
    /// The AS address.
    pub address: IpAddr,
    /// Its weight (master only).
    pub weight: Option<u8>,
    /// New-flow table buckets it holds.
    pub buckets: u32,
    /// Flows it currently has.
    pub flows: u64,
    /// Its DPO index, when printed.
    pub dpo: Option<u32>,
    /// In use (`used`), rather than deleted and awaiting garbage collection (`removed`).
    pub used: bool,
}

/// Parses `show lb vips verbose` (pure; never fails).
///
/// A VIP block starts with ` <type> [<index>] <prefix>[ src_ip_sticky][ removed]`; within it,
/// `protocol:<p> port:<n>`, `new_size:<n>` and AS lines (see [`ShownAs`]) are read, everything
/// else (counters, `#as:`) is ignored. A block whose header is unreadable is skipped with its
/// lines; an unreadable AS line is skipped.
#[must_use]
pub fn parse_show_lb_vips(text: &str) -> Vec<ShownVip> {
    parse(text, AsLines::Read)
}

/// Whether [`parse`] reads AS lines; a sync needs only the VIP blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AsLines {
    Read,
    Skip,
}

fn parse(text: &str, as_lines: AsLines) -> Vec<ShownVip> {
    let mut out = Vec::new();
    // `None` inside a skipped block.
    let mut current: Option<Option<ShownVip>> = None;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        let second = words.next();
        if let Some(index) = second.and_then(bracketed) {
            if let Some(Some(done)) = current.take() {
                out.push(done);
            }
            current = Some(vip_header(first, index, words));
            continue;
        }
        let Some(Some(vip)) = current.as_mut() else {
            continue;
        };
        if let Some(protocol) = first.strip_prefix("protocol:") {
            if let (Ok(protocol), Some(Ok(port))) = (
                protocol.parse(),
                second.and_then(|w| w.strip_prefix("port:")).map(str::parse),
            ) {
                vip.key.protocol = protocol;
                vip.key.port = port;
            }
        } else if let Some(size) = first.strip_prefix("new_size:") {
            vip.new_size = size.parse().ok();
        } else if as_lines == AsLines::Read
            && let Ok(address) = first.parse::<IpAddr>()
            && let Some(as_) = as_line(address, second.into_iter().chain(words))
        {
            vip.ases.push(as_);
        }
    }
    if let Some(Some(done)) = current {
        out.push(done);
    }
    out
}

fn bracketed(word: &str) -> Option<u32> {
    word.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

fn vip_header<'a>(
    kind: &str,
    index: u32,
    mut words: impl Iterator<Item = &'a str>,
) -> Option<ShownVip> {
    let prefix = words.next()?.parse().ok()?;
    let encap = kind.rsplit('-').next().and_then(|e| match e {
        "gre4" => Some(Encap::Gre4),
        "gre6" => Some(Encap::Gre6),
        "l3dsr" => Some(Encap::L3dsr),
        "nat4" => Some(Encap::Nat4),
        "nat6" => Some(Encap::Nat6),
        _ => None,
    });
    let mut vip = ShownVip {
        index,
        key: VipKey::new(prefix, 255, 0),
        encap,
        src_ip_sticky: false,
        removed: false,
        new_size: None,
        ases: Vec::new(),
    };
    for word in words {
        match word {
            "src_ip_sticky" => vip.src_ip_sticky = true,
            "removed" => vip.removed = true,
            _ => {}
        }
    }
    Some(vip)
}

/// The fields of an AS line after its address. Both formats are read by one rule:
/// `key:value` words name their field, a bare number names the field of the word after it
/// (`341 buckets`), and `used`/`removed` is the state.
fn as_line<'a>(address: IpAddr, words: impl Iterator<Item = &'a str>) -> Option<ShownAs> {
    let mut as_ = ShownAs {
        address,
        weight: None,
        buckets: 0,
        flows: 0,
        dpo: None,
        used: false,
    };
    let mut state = None;
    let mut number: Option<&str> = None;
    for word in words {
        let (field, value) = match word.split_once(':') {
            Some((field, value)) => (field, value),
            None => match (word, number.take()) {
                ("used", _) => {
                    state = Some(true);
                    continue;
                }
                ("removed", _) => {
                    state = Some(false);
                    continue;
                }
                (field @ ("buckets" | "flows"), Some(value)) => (field, value),
                _ => {
                    number = Some(word);
                    continue;
                }
            },
        };
        match field {
            "weight" => as_.weight = Some(value.parse().ok()?),
            "buckets" => as_.buckets = value.parse().ok()?,
            "flows" => as_.flows = value.parse().ok()?,
            "dpo" => as_.dpo = Some(value.parse().ok()?),
            _ => {}
        }
    }
    as_.used = state?;
    Some(as_)
}
