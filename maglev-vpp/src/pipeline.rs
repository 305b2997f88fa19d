//! Runs a sync's operations through the client's in-flight window, back to back, holding an
//! operation back only for a real dependency.
//!
//! [`Schedule`] is the decision, sans-IO: it groups the operations by VIP and, within a VIP,
//! into phases that follow each other; [`execute`] is the driver that sends what the schedule
//! releases and reports each reply back to it.
//!
//! Phases within one VIP, in the plan's order (a new phase starts where the kind changes):
//!
//! | operation                    | phase     | waits for                                         |
//! |------------------------------|-----------|---------------------------------------------------|
//! | `VipAdd`                     | create    | the VIP's earlier phases (a recreate's delete)    |
//! | `AsAdd`, `AsSetWeight`       | grow      | the VIP's creation                                |
//! | `AsDel`                      | shrink    | the adds and weight changes (no capacity lost)    |
//! | `VipDel`                     | destroy   | its AS deletions (VPP refuses a VIP with ASes)    |
//!
//! Operations of one phase are sent together; different VIPs never wait for each other.
//! When VPP refuses an operation (non-zero retval), the rest of that VIP's operations are
//! skipped (those of its phase already in flight still complete), other VIPs proceed, and the
//! [`Report`] asks for a full sync. A transport error ends [`execute`] with an [`ExecError`].

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::task::Poll;

use maglev_core::plan::{Op, VipKey};
use vpp_binapi::api::ApiError;
use vpp_binapi::client::Client;

use crate::adapter::request;
pub use crate::error::{ExecError, OpFailure};

/// Where an operation sits in its VIP's order; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// `VipAdd`.
    Create,
    /// `AsAdd` and `AsSetWeight`.
    Grow,
    /// `AsDel`.
    Shrink,
    /// `VipDel`.
    Destroy,
}

impl Phase {
    /// The phase of an operation.
    #[must_use]
    pub fn of(op: &Op) -> Self {
        match op {
            Op::VipAdd { .. } => Self::Create,
            Op::AsAdd { .. } | Op::AsSetWeight { .. } => Self::Grow,
            Op::AsDel { .. } => Self::Shrink,
            Op::VipDel { .. } => Self::Destroy,
        }
    }
}

/// One VIP's operations: `stages[i]` is a range of [`Schedule::order`].
#[derive(Debug)]
struct Group {
    stages: Vec<Range<usize>>,
    /// The stage in flight (or next to release).
    stage: usize,
    /// Operations of the current stage not answered yet.
    outstanding: usize,
    failed: bool,
}

/// The sans-IO dependency schedule of one sync's operations (see the [module docs](self)).
///
/// Feed it with [`Schedule::complete`] as replies arrive, take what it releases with
/// [`Schedule::next_ready`]. Operations are named by their index in the slice given to
/// [`Schedule::new`].
#[derive(Debug)]
pub struct Schedule {
    /// Operation indices grouped by VIP, in plan order within a VIP.
    order: Vec<usize>,
    /// The group of each operation.
    group_of: Vec<u32>,
    groups: Vec<Group>,
    ready: VecDeque<usize>,
    skipped: Vec<usize>,
    in_flight: usize,
}

impl Schedule {
    /// Schedules `ops` (in plan order). The first phase of every VIP is ready at once.
    #[must_use]
    pub fn new(ops: &[Op]) -> Self {
        let mut group_index: HashMap<VipKey, u32> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut last: Option<(VipKey, u32)> = None;
        let mut group_of = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let key = *op.key();
            let g = match last {
                Some((k, g)) if k == key => g,
                _ => {
                    let g = *group_index.entry(key).or_insert_with(|| {
                        members.push(Vec::new());
                        u32::try_from(members.len() - 1).unwrap_or(u32::MAX)
                    });
                    last = Some((key, g));
                    g
                }
            };
            members[g as usize].push(i);
            group_of.push(g);
        }
        let mut order = Vec::with_capacity(ops.len());
        let mut groups = Vec::with_capacity(members.len());
        for indices in members {
            let mut stages: Vec<Range<usize>> = Vec::new();
            let mut phase = None;
            for i in indices {
                let p = Phase::of(&ops[i]);
                match stages.last_mut() {
                    Some(stage) if phase == Some(p) => stage.end += 1,
                    _ => stages.push(order.len()..order.len() + 1),
                }
                phase = Some(p);
                order.push(i);
            }
            groups.push(Group {
                stages,
                stage: 0,
                outstanding: 0,
                failed: false,
            });
        }
        let mut schedule = Self {
            order,
            group_of,
            groups,
            ready: VecDeque::new(),
            skipped: Vec::new(),
            in_flight: 0,
        };
        for g in 0..schedule.groups.len() {
            schedule.release(g);
        }
        schedule
    }

    /// Makes the current stage of group `g` ready.
    fn release(&mut self, g: usize) {
        let group = &mut self.groups[g];
        if let Some(stage) = group.stages.get(group.stage) {
            group.outstanding = stage.len();
            self.ready.extend(&self.order[stage.clone()]);
        }
    }

    /// The next operation that may be sent now, if any. Every operation returned must later
    /// be reported with [`Schedule::complete`].
    pub fn next_ready(&mut self) -> Option<usize> {
        let i = self.ready.pop_front()?;
        self.in_flight += 1;
        Some(i)
    }

    /// Reports the answer to operation `index`: `applied` when VPP answered retval 0. A
    /// refusal skips the rest of its VIP's operations; the last answer of a stage releases
    /// the next one. An index out of range is ignored.
    pub fn complete(&mut self, index: usize, applied: bool) {
        let Some(&g) = self.group_of.get(index) else {
            return;
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        let g = g as usize;
        let group = &mut self.groups[g];
        group.failed |= !applied;
        group.outstanding = group.outstanding.saturating_sub(1);
        if group.outstanding > 0 {
            return;
        }
        group.stage += 1;
        if group.failed {
            let rest = group.stages[group.stage.min(group.stages.len())..]
                .iter()
                .flat_map(Clone::clone);
            let skipped: Vec<usize> = rest.map(|at| self.order[at]).collect();
            group.stage = group.stages.len();
            self.skipped.extend(skipped);
        } else {
            self.release(g);
        }
    }

    /// Whether every operation was answered or skipped.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.ready.is_empty() && self.in_flight == 0
    }

    /// The operations skipped because an earlier one of their VIP was refused.
    #[must_use]
    pub fn skipped(&self) -> &[usize] {
        &self.skipped
    }
}

/// What [`execute`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Operations VPP applied (retval 0).
    pub applied: usize,
    /// Operations VPP refused, with its reason.
    pub failed: Vec<OpFailure>,
    /// Operations not sent because an earlier operation of their VIP was refused.
    pub skipped: Vec<Op>,
}

impl Report {
    /// Whether every operation was applied.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }

    /// Whether VPP's state is not what the plan meant, so a full sync should follow.
    #[must_use]
    pub fn needs_full_sync(&self) -> bool {
        !self.is_clean()
    }
}

type Call<'a> =
    Pin<Box<dyn Future<Output = Result<i32, vpp_binapi::client::ClientError>> + Send + 'a>>;

/// Sends `ops` (one sync's plan, in plan order) pipelined through `client`'s window, in the
/// order [`Schedule`] allows, and reports what VPP applied, refused and what was skipped.
///
/// Every applied operation is logged under its event name (`vpp-lbsync-as-add`, ...), every
/// refusal as `vpp-lbsync-error`.
///
/// # Errors
/// [`ExecError`] when a call fails at the transport level (connection dropped, timeout):
/// the remaining operations are abandoned.
pub async fn execute(client: &Client, ops: &[Op]) -> Result<Report, ExecError> {
    let mut schedule = Schedule::new(ops);
    let mut report = Report::default();
    // Calls in send order; VPP answers one connection's requests in order, so waiting on the
    // oldest first loses nothing.
    let mut in_flight: VecDeque<(usize, Call<'_>)> = VecDeque::new();
    // Only the oldest call is polled again, so no call may wait for a window slot: keep at most
    // a window's worth pending. Refill once half the window has drained, so that requests go
    // out (and VPP reads them) in bursts rather than one per reply.
    let depth = client.max_in_flight().max(1);
    let refill_at = depth / 2;
    loop {
        let refill = in_flight.len() <= refill_at;
        while refill
            && in_flight.len() < depth
            && let Some(i) = schedule.next_ready()
        {
            let req = request(&ops[i]);
            let mut call: Call<'_> = Box::pin(async move { req.send(client).await });
            // One poll puts the request on the wire (and registers this task's waker).
            match std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
                Poll::Ready(result) => answer(&mut schedule, &mut report, ops, i, result)?,
                Poll::Pending => in_flight.push_back((i, call)),
            }
        }
        let Some((i, call)) = in_flight.pop_front() else {
            break;
        };
        let result = call.await;
        answer(&mut schedule, &mut report, ops, i, result)?;
    }
    debug_assert!(schedule.is_done());
    report.skipped = schedule.skipped().iter().map(|&i| ops[i]).collect();
    Ok(report)
}

fn answer(
    schedule: &mut Schedule,
    report: &mut Report,
    ops: &[Op],
    i: usize,
    result: Result<i32, vpp_binapi::client::ClientError>,
) -> Result<(), ExecError> {
    let op = ops[i];
    let retval = result.map_err(|source| ExecError {
        op: Box::new(op),
        applied: report.applied,
        source,
    })?;
    let refused = ApiError::from_retval(retval);
    schedule.complete(i, refused.is_none());
    match refused {
        None => {
            report.applied += 1;
            log_op(&op);
        }
        Some(error) => {
            let failure = OpFailure { op, error };
            tracing::error!(name: "vpp-lbsync-error", vip = %op.key(), op = %op, retval, error = %failure, "vpp-lbsync-error");
            report.failed.push(failure);
        }
    }
    Ok(())
}

/// Logs an applied operation under its product event name, with the fields of its kind.
fn log_op(op: &Op) {
    match *op {
        Op::VipAdd {
            key,
            encap,
            src_ip_sticky,
            table_len,
        } => {
            tracing::info!(name: "vpp-lbsync-vip-add", vip = %key, encap = %encap, src_ip_sticky, table_len, "vpp-lbsync-vip-add");
        }
        Op::VipDel { key, .. } => {
            tracing::info!(name: "vpp-lbsync-vip-del", vip = %key, "vpp-lbsync-vip-del");
        }
        Op::AsAdd {
            key,
            address,
            weight,
        } => {
            tracing::info!(name: "vpp-lbsync-as-add", vip = %key, address = %address, weight, "vpp-lbsync-as-add");
        }
        Op::AsDel {
            key,
            address,
            flush,
        } => {
            tracing::info!(name: "vpp-lbsync-as-del", vip = %key, address = %address, flush, "vpp-lbsync-as-del");
        }
        Op::AsSetWeight {
            key,
            address,
            weight,
            flush,
        } => {
            tracing::info!(name: "vpp-lbsync-as-weight", vip = %key, address = %address, weight, flush, "vpp-lbsync-as-weight");
        }
    }
}
