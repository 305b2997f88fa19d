//! The pipeline against the simulator: it converges from empty and from drift, sends nothing
//! without drift, keeps each VIP's dependency order, isolates a refused operation to its VIP,
//! and ends with an error when the connection drops mid-sync.

use maglev_core::plan::{As, Encap, FlushSet, Op, Scope, Vip, plan};
use maglev_vpp::adapter::dump_state;
use maglev_vpp::pipeline::{Phase, Schedule, execute};
use vpp_binapi::api::ApiError;
use vpp_binapi::client::ClientError;

use crate::{Sim, backend, converged, desired, key, seq_of, sync};

/// Drives a schedule with every operation applied, returning the release waves.
fn run_schedule(ops: &[Op], refuse: Option<usize>) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut schedule = Schedule::new(ops);
    let mut waves = Vec::new();
    loop {
        let wave: Vec<usize> = std::iter::from_fn(|| schedule.next_ready()).collect();
        if wave.is_empty() {
            break;
        }
        for &i in &wave {
            schedule.complete(i, Some(i) != refuse);
        }
        waves.push(wave);
    }
    assert!(schedule.is_done());
    (waves, schedule.skipped().to_vec())
}

fn as_add(v: u8, a: u8) -> Op {
    Op::AsAdd {
        key: key(v, 80),
        address: backend(a),
        weight: 100,
    }
}

fn as_del(v: u8, a: u8) -> Op {
    Op::AsDel {
        key: key(v, 80),
        address: backend(a),
        flush: true,
    }
}

fn vip_add(v: u8) -> Op {
    Op::VipAdd {
        key: key(v, 80),
        encap: Encap::Gre4,
        src_ip_sticky: false,
        table_len: 1024,
    }
}

fn vip_del(v: u8) -> Op {
    Op::VipDel {
        key: key(v, 80),
        encap: Encap::Gre4,
        src_ip_sticky: true,
    }
}

#[test]
fn schedule_releases_phases_in_order_and_vips_together() {
    let weight = Op::AsSetWeight {
        key: key(2, 80),
        address: backend(1),
        weight: 0,
        flush: true,
    };
    let ops = [
        // VIP 1: a recreate.
        as_del(1, 1),
        as_del(1, 2),
        vip_del(1),
        vip_add(1),
        as_add(1, 1),
        as_add(1, 2),
        // VIP 2: grow, then shrink.
        as_add(2, 3),
        weight,
        as_del(2, 2),
        // VIP 3: new.
        vip_add(3),
        as_add(3, 1),
    ];
    assert_eq!(Phase::of(&weight), Phase::Grow);
    let (waves, skipped) = run_schedule(&ops, None);
    assert_eq!(
        waves,
        [vec![0, 1, 6, 7, 9], vec![2, 8, 10], vec![3], vec![4, 5],]
    );
    assert!(skipped.is_empty());
}

#[test]
fn a_refusal_skips_the_rest_of_its_vip_only() {
    let ops = [
        vip_add(1),
        as_add(1, 1),
        as_add(1, 2),
        as_del(1, 3),
        vip_add(2),
        as_add(2, 1),
    ];
    // VIP 1's creation is refused: its ASes are skipped, VIP 2 goes on.
    let (waves, skipped) = run_schedule(&ops, Some(0));
    assert_eq!(waves, [vec![0, 4], vec![5]]);
    assert_eq!(skipped, [1, 2, 3]);
    // A refusal within a phase lets the phase's other operations finish, then stops.
    let (waves, skipped) = run_schedule(&ops, Some(1));
    assert_eq!(waves, [vec![0, 4], vec![1, 2, 5]]);
    assert_eq!(skipped, [3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaches_the_desired_state_from_empty_and_from_drift() {
    let sim = Sim::start().await;
    let client = sim.connect().await;
    let want = desired(5, 16);
    let (ops, report) = sync(&client, &want).await;
    assert_eq!(ops.len(), 5 + 5 * 16);
    assert!(report.is_clean() && !report.needs_full_sync());
    assert_eq!(report.applied, ops.len());
    assert!(converged(&client, &want).await);

    // Drift: weights, an added and a removed AS, a recreate, a stale VIP, a new VIP.
    let mut drifted = want.clone();
    drifted.vips.remove(&key(5, 80));
    let one = drifted.vips.get_mut(&key(1, 80)).unwrap();
    one.ases.get_mut(&backend(1)).unwrap().weight = 0;
    one.ases.remove(&backend(2));
    one.ases.insert(backend(40), As::new(30));
    drifted.vips.get_mut(&key(2, 80)).unwrap().src_ip_sticky = true;
    let mut fresh = Vip::new(Encap::Gre4, false, 2048);
    fresh.ases.insert(backend(9), As::new(1));
    drifted.vips.insert(key(9, 80), fresh);
    sim.handle.clear_journal();
    let (ops, report) = sync(&client, &drifted).await;
    assert!(report.is_clean(), "{report:?}");
    assert!(converged(&client, &drifted).await);

    // The journal keeps each VIP's order.
    let journal = sim.handle.journal();
    let seq = |op: &Op| seq_of(&journal, op).unwrap_or_else(|| panic!("{op} not sent"));
    assert_eq!(journal.len(), ops.len());
    for (i, a) in ops.iter().enumerate() {
        for b in &ops.ops[i + 1..] {
            if a.key() == b.key() && Phase::of(a) != Phase::of(b) {
                assert!(seq(a) < seq(b), "{a} after {b}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_without_drift_sends_no_mutating_message() {
    let sim = Sim::start().await;
    let client = sim.connect().await;
    let want = desired(3, 8);
    sync(&client, &want).await;
    sim.handle.clear_journal();
    let (ops, report) = sync(&client, &want).await;
    assert!(ops.is_empty());
    assert_eq!(report.applied, 0);
    assert!(sim.handle.journal().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_operation_is_reported_and_confined_to_its_vip() {
    let sim = Sim::start().await;
    let client = sim.connect().await;
    let want = desired(3, 8);
    sync(&client, &want).await;

    // VIPs 1 and 2: a weight change, then a deletion; VIP 3: an addition.
    let mut drifted = want.clone();
    for v in [1, 2] {
        let vip = drifted.vips.get_mut(&key(v, 80)).unwrap();
        vip.ases.get_mut(&backend(1)).unwrap().weight = 50;
        vip.ases.remove(&backend(8));
    }
    drifted
        .vips
        .get_mut(&key(3, 80))
        .unwrap()
        .ases
        .insert(backend(20), As::new(100));
    sim.handle.force_retval("lb_as_set_weight", -6, Some(1));
    sim.handle.clear_journal();
    let (ops, report) = sync(&client, &drifted).await;
    assert_eq!(ops.len(), 5);

    let weight_1 = Op::AsSetWeight {
        key: key(1, 80),
        address: backend(1),
        weight: 50,
        flush: false,
    };
    assert_eq!(report.failed.len(), 1);
    let failure = &report.failed[0];
    assert_eq!(failure.op, weight_1);
    assert_eq!(failure.error, ApiError::NoSuchEntry);
    assert!(
        failure
            .to_string()
            .ends_with("VNET_API_ERROR_NO_SUCH_ENTRY (-6): no such entry"),
        "{failure}"
    );
    assert_eq!(report.skipped, [as_del(1, 8)]);
    assert!(report.needs_full_sync());
    assert_eq!(report.applied, 3);
    let journal = sim.handle.journal();
    assert_eq!(seq_of(&journal, &as_del(1, 8)), None);
    assert!(seq_of(&journal, &as_del(2, 8)).is_some());
    assert!(seq_of(&journal, &as_add(3, 20)).is_some());

    // The follow-up sync converges.
    let (ops, report) = sync(&client, &drifted).await;
    assert_eq!(ops.len(), 2, "{ops}");
    assert!(report.is_clean());
    assert!(converged(&client, &drifted).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_vip_skips_its_ases_in_a_cold_sync() {
    let sim = Sim::start().await;
    let client = sim.connect().await;
    let want = desired(4, 8);
    sim.handle.force_retval("lb_add_del_vip_v2", -81, Some(1));
    let (_, report) = sync(&client, &want).await;
    assert_eq!(report.failed.len(), 1);
    let refused = report.failed[0].op;
    assert!(matches!(refused, Op::VipAdd { .. }));
    assert_eq!(report.failed[0].error, ApiError::ValueExist);
    assert_eq!(report.skipped.len(), 8);
    assert!(report.skipped.iter().all(|op| op.key() == refused.key()));
    assert_eq!(report.applied, 3 * 9);
    let (_, report) = sync(&client, &want).await;
    assert!(report.is_clean());
    assert!(converged(&client, &want).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_ends_the_sync_and_a_new_one_converges() {
    let sim = Sim::start().await;
    let client = sim.connect().await;
    let want = desired(4, 32);
    let current = dump_state(&client, &want).await.unwrap();
    let ops = plan(&current, &want, Scope::All, &FlushSet::new());
    sim.handle.drop_after_received(60);
    let error = execute(&client, &ops.ops).await.unwrap_err();
    assert!(matches!(error.source, ClientError::Closed), "{error:?}");
    assert!(error.applied < ops.len());
    assert!(client.is_closed());

    let client = sim.connect().await;
    let (ops, report) = sync(&client, &want).await;
    assert!(!ops.is_empty());
    assert!(report.is_clean());
    assert!(converged(&client, &want).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_smaller_than_the_sync_still_converges_in_order() {
    let sim = Sim::start().await;
    let opts = vpp_binapi::client::ClientOptions::default()
        .max_in_flight(3)
        .timeout(std::time::Duration::from_secs(5));
    let client = vpp_binapi::client::Client::connect(sim.handle.api_socket(), opts)
        .await
        .unwrap();
    assert_eq!(client.max_in_flight(), 3);
    let want = desired(4, 20);
    let (ops, report) = sync(&client, &want).await;
    assert_eq!(report.applied, ops.len());
    assert!(converged(&client, &want).await);
    let journal = sim.handle.journal();
    for v in 1..=4 {
        let added = seq_of(&journal, &vip_add(v)).unwrap();
        assert!((1..=20).all(|a| seq_of(&journal, &as_add(v, a)).unwrap() > added));
    }
}
