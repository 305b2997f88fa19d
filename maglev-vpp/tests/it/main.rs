//! Integration tests of maglev-vpp against the VPP simulator.

mod adapter;
mod counters;
mod e2e;
mod harness;
mod pipeline;
mod syncer;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use maglev_core::plan::{As, Encap, FlushSet, Op, Plan, Scope, Vip, VipKey, VppState, plan};
use maglev_vpp::adapter::{dump_state, request};
use maglev_vpp::pipeline::{Report, execute};
use vpp_binapi::client::{Client, ClientOptions};
use vpp_sim::{JournalEntry, SimConfig, SimHandle, Simulator};

/// A simulator on a socket in its own temporary directory.
pub(crate) struct Sim {
    pub(crate) handle: SimHandle,
    _dir: tempfile::TempDir,
}

impl Sim {
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let handle = Simulator::start(SimConfig::new(dir.path().join("api.sock")))
            .await
            .unwrap();
        Self { handle, _dir: dir }
    }

    pub(crate) async fn connect(&self) -> Client {
        let opts = ClientOptions::default().timeout(Duration::from_secs(5));
        Client::connect(self.handle.api_socket(), opts)
            .await
            .unwrap()
    }
}

pub(crate) fn key(i: u8, port: u16) -> VipKey {
    VipKey::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)).into(), 6, port)
}

pub(crate) fn backend(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))
}

/// `vips` VIPs (192.0.2.1.. tcp:80) with `ases` ASes each (10.0.0.1..), weight 100.
pub(crate) fn desired(vips: u8, ases: u8) -> VppState {
    let mut state = VppState::new();
    for v in 1..=vips {
        let mut vip = Vip::new(Encap::Gre4, false, 1024);
        for a in 1..=ases {
            vip.ases.insert(backend(a), As::new(100));
        }
        state.vips.insert(key(v, 80), vip);
    }
    state
}

/// Dumps, plans a full sync towards `want`, and runs it.
pub(crate) async fn sync(client: &Client, want: &VppState) -> (Plan, Report) {
    let current = dump_state(client, want).await.unwrap();
    let ops = plan(&current, want, Scope::All, &FlushSet::new());
    let report = execute(client, &ops.ops).await.unwrap();
    (ops, report)
}

/// Whether VPP, read on `client`, holds `want`.
pub(crate) async fn converged(client: &Client, want: &VppState) -> bool {
    dump_state(client, want).await.unwrap().converged(want)
}

/// The journal position of the message `op` turns into (the last one, if sent twice).
pub(crate) fn seq_of(journal: &[JournalEntry], op: &Op) -> Option<u64> {
    let req = request(op);
    journal
        .iter()
        .rev()
        .find(|e| e.message.eq_dyn(req.message()))
        .map(|e| e.seq)
}
