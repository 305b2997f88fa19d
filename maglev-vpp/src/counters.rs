//! The VIP counters scrape: each VIP's four lb counters and its `/net/route/to` traffic, read
//! from VPP's stats segment in one pass and summed over threads.
//!
//! Where a VIP's counters live is known only from VPP's API, so the scrape has two halves:
//!
//! | step | when | what | I/O |
//! |---|---|---|---|
//! | [`lookup_index`] | after a sync that added or removed a VIP ([`needs_refresh`]), and once per session | `show lb vips verbose` gives each live VIP's pool index; `ip_route_lookup` (exact, table 0) each prefix's FIB stats index | the API socket |
//! | [`scrape`] | every [`SyncerOptions::scrape_interval`](crate::syncer::SyncerOptions::scrape_interval) (5 s) | one read of the five entries [`filter`] names | the stats segment |
//! | [`snapshot_from`] | on the read's entries | the [`CounterSnapshot`], per VIP | none (pure) |
//!
//! The lb counters are simple counter vectors `[thread][pool index]`, named without a leading
//! `/` ([`LbCounter::stat_name`]); VPP creates them with the first VIP, so a VPP that never had
//! one has none and every VIP reads 0. `/net/route/to` is a combined counter vector
//! `[thread][FIB stats index]`; a VIP whose route was not found has no route counters.
//!
//! The driver ([`crate::syncer`]) runs these steps and publishes the snapshot through
//! [`LbSyncer::counters`](crate::syncer::LbSyncer::counters); it clears it on disconnect.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ipnet::IpNet;
use maglev_core::plan::{PlanStats, VipKey};
use vpp_binapi::api::{ip, ip_types, vlib};
use vpp_binapi::client::{Client, ClientError};
use vpp_binapi::codec::Message as _;
use vpp_binapi::stats::{Combined, StatEntry, StatValue, StatsClient, StatsError, StatsFilter};

use crate::adapter::{SHOW_LB_VIPS_VERBOSE, ShownVip, parse_show_lb_vips};
use crate::error::DumpError;

/// The FIB's per-route counters, `[thread][stats index]`.
pub const ROUTE_TO: &str = "/net/route/to";

/// One of the lb plugin's four per-VIP counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LbCounter {
    /// A packet of an existing session (sticky-table hit).
    Next,
    /// The first packet of a session, assigned from the new-flow table.
    First,
    /// A packet forwarded without tracking (sticky table full).
    Untracked,
    /// A new flow whose bucket holds no application server.
    NoServer,
}

impl LbCounter {
    /// All four, in the order of [`VipCounters::lb`].
    pub const ALL: [Self; 4] = [Self::Next, Self::First, Self::Untracked, Self::NoServer];

    /// The entry's name in the stats segment (no leading `/`, with spaces, as VPP names it).
    #[must_use]
    pub fn stat_name(self) -> &'static str {
        match self {
            Self::Next => "packet from existing sessions",
            Self::First => "first session packet",
            Self::Untracked => "untracked packet",
            Self::NoServer => "no server configured",
        }
    }

    /// The short name used as a metric label (`kind`) and in the API: `next`, `first`,
    /// `untracked`, `no-server`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::First => "first",
            Self::Untracked => "untracked",
            Self::NoServer => "no-server",
        }
    }

    /// The position in [`LbCounter::ALL`] and [`VipCounters::lb`].
    #[must_use]
    pub fn position(self) -> usize {
        match self {
            Self::Next => 0,
            Self::First => 1,
            Self::Untracked => 2,
            Self::NoServer => 3,
        }
    }

    fn from_stat_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.stat_name() == name)
    }
}

/// Where one VIP's counters are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipIndex {
    /// Its pool index: the column of its lb counters.
    pub pool: u32,
    /// The stats index of its prefix's FIB entry, when `ip_route_lookup` found it.
    pub fib: Option<u32>,
}

/// Where every live VIP's counters are, from [`lookup_index`] (or [`CounterIndex::from_parts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterIndex {
    vips: BTreeMap<VipKey, VipIndex>,
}

impl CounterIndex {
    /// The index of the live (not `removed`) VIPs of `shown`, with the FIB stats index of
    /// their prefix from `routes` (pure).
    #[must_use]
    pub fn from_parts(shown: &[ShownVip], routes: &BTreeMap<IpNet, u32>) -> Self {
        let vips = shown
            .iter()
            .filter(|v| !v.removed)
            .map(|v| {
                let index = VipIndex {
                    pool: v.index,
                    fib: routes.get(&v.key.prefix).copied(),
                };
                (v.key, index)
            })
            .collect();
        Self { vips }
    }

    /// Where `key`'s counters are, if VPP has it.
    #[must_use]
    pub fn get(&self, key: &VipKey) -> Option<VipIndex> {
        self.vips.get(key).copied()
    }

    /// The VIPs and their indices, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&VipKey, &VipIndex)> {
        self.vips.iter()
    }

    /// How many VIPs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.vips.len()
    }

    /// Whether there is no VIP.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.vips.is_empty()
    }
}

/// Whether a sync that planned `stats` may have moved a VIP to another pool slot or FIB entry
/// (a VIP added, recreated or removed), so the index must be looked up again.
#[must_use]
pub fn needs_refresh(stats: &PlanStats) -> bool {
    stats.vip_add > 0 || stats.vip_del > 0
}

/// One VIP's counters, summed over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipCounters {
    /// The pool index they were read at.
    pub pool_index: u32,
    /// The lb counters, in [`LbCounter::ALL`] order (0 when VPP has no lb counters yet).
    pub lb: [u64; 4],
    /// The route's packets and bytes, when its FIB entry is known.
    pub route: Option<Combined>,
}

impl VipCounters {
    /// One lb counter.
    #[must_use]
    pub fn get(&self, counter: LbCounter) -> u64 {
        self.lb[counter.position()]
    }
}

/// One scrape: every live VIP's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// When the segment was read.
    pub scraped_at: SystemTime,
    /// Per VIP.
    pub vips: BTreeMap<VipKey, VipCounters>,
    /// Whether the segment had the lb counters (VPP creates them with its first VIP).
    pub lb_counters: bool,
}

/// The filter of the one stats read a scrape makes: the four lb counters and `/net/route/to`.
///
/// # Panics
///
/// Never: the patterns are fixed and valid.
#[must_use]
pub fn filter() -> StatsFilter {
    let patterns: Vec<String> = LbCounter::ALL
        .iter()
        .map(|c| c.stat_name())
        .chain([ROUTE_TO])
        .map(|name| format!("^{}$", regex_escape(name)))
        .collect();
    StatsFilter::new(&patterns).expect("fixed, valid patterns")
}

/// Escapes the few regex metacharacters a stat name could hold.
fn regex_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Builds the snapshot from the entries of one stats read (pure). Entries other than the
/// five of [`filter`] are ignored; a VIP whose column is beyond a vector reads 0.
#[must_use]
pub fn snapshot_from(
    entries: &[StatEntry],
    index: &CounterIndex,
    scraped_at: SystemTime,
) -> CounterSnapshot {
    let mut lb: [Option<&vpp_binapi::stats::SimpleCounters>; 4] = [None; 4];
    let mut route = None;
    for entry in entries {
        match (&entry.value, LbCounter::from_stat_name(&entry.name)) {
            (StatValue::SimpleCounters(c), Some(counter)) => lb[counter.position()] = Some(c),
            (StatValue::CombinedCounters(c), None) if entry.name == ROUTE_TO => route = Some(c),
            _ => {}
        }
    }
    let vips = index
        .iter()
        .map(|(key, at)| {
            let pool = at.pool as usize;
            let counters = VipCounters {
                pool_index: at.pool,
                lb: lb.map(|c| c.map_or(0, |c| c.sum_index(pool))),
                route: at
                    .fib
                    .and_then(|fib| route.map(|r| r.sum_index(fib as usize))),
            };
            (*key, counters)
        })
        .collect();
    CounterSnapshot {
        scraped_at,
        vips,
        lb_counters: lb.iter().any(Option::is_some),
    }
}

/// One scrape: a single read of the segment through `filter` (from [`filter`]), then
/// [`snapshot_from`].
///
/// # Errors
///
/// [`StatsError::Busy`] when VPP kept the segment busy, or a corruption error.
pub fn scrape(
    stats: &StatsClient,
    filter: &StatsFilter,
    index: &CounterIndex,
) -> Result<CounterSnapshot, StatsError> {
    let entries = stats.dump_filter(filter)?;
    Ok(snapshot_from(&entries, index, SystemTime::now()))
}

/// Looks up where the counters of VPP's live VIPs are: `show lb vips verbose` for the pool
/// indices, then one exact `ip_route_lookup` per distinct prefix (pipelined) for the FIB stats
/// indices. A refused CLI gives an empty index; a prefix VPP has no route for gets none.
///
/// # Errors
///
/// [`DumpError`] when a request fails at the transport level.
pub async fn lookup_index(client: &Client) -> Result<CounterIndex, DumpError> {
    let cli = vlib::CliInband {
        cmd: SHOW_LB_VIPS_VERBOSE.to_owned(),
    };
    let shown = match client.request(&cli).await {
        Ok(reply) if reply.retval == 0 => parse_show_lb_vips(&reply.reply),
        Ok(_) | Err(ClientError::UnknownMessage { .. } | ClientError::CrcMismatch { .. }) => {
            Vec::new()
        }
        Err(source) => {
            return Err(DumpError {
                message: vlib::CliInband::NAME,
                source,
            });
        }
    };
    let prefixes: Vec<IpNet> = shown
        .iter()
        .filter(|v| !v.removed)
        .map(|v| v.key.prefix)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut routes = BTreeMap::new();
    if !prefixes.is_empty() && client.message_id::<ip::IpRouteLookup>().is_ok() {
        let lookups: Vec<ip::IpRouteLookup> = prefixes
            .iter()
            .map(|p| ip::IpRouteLookup {
                table_id: 0,
                exact: 1,
                prefix: ip_types::Prefix::from(*p),
            })
            .collect();
        let replies = client.batch(&lookups).await.map_err(|source| DumpError {
            message: ip::IpRouteLookup::NAME,
            source,
        })?;
        for (prefix, reply) in prefixes.iter().zip(replies) {
            if reply.retval == 0 {
                routes.insert(*prefix, reply.route.stats_index);
            }
        }
    }
    Ok(CounterIndex::from_parts(&shown, &routes))
}
