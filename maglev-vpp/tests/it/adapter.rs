//! The adapter: `show lb vips verbose` in both AS line formats, operations to requests, dumps
//! to the current state, the required-messages check.

use std::net::IpAddr;

use maglev_core::plan::{Encap, Op, Vip, VipKey, VppState};
use maglev_vpp::adapter::{
    LbRequest, ShownAs, check_compat, compat_problems, dump_state, parse_show_lb_vips, request,
    required_messages, state_from_dumps,
};
use vpp_binapi::api::{ip_types, lb, lb_types};
use vpp_binapi::client::{CompatEntry, CompatReport, CompatStatus};

use crate::{Sim, backend, desired, key, sync};

fn vkey(prefix: &str, proto: u8, port: u16) -> VipKey {
    VipKey::new(prefix.parse().unwrap(), proto, port)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The older AS line format (VPP up to 26.06, and the simulator before master's format).
const OLDER: &str = " ip4-gre4 [1] 192.0.2.80/32
  new_size:1024
  protocol:6 port:80
  counters:
    packet from existing sessions: 0
    first session packet: 7
    untracked packet: 0
    no server configured: 0
  #as:3
    10.0.0.1 341 buckets   0 flows  dpo:1 used
    10.0.0.2 683 buckets   5 flows  dpo:2 used
    10.0.0.3 0 buckets   0 flows  dpo:3  removed

 ip4-gre4 [2] 192.0.2.0/28 src_ip_sticky
  new_size:4096
  counters:
    packet from existing sessions: 0
  #as:0

 ip6-gre6 [4] 2001:db8::80/128 src_ip_sticky removed
  new_size:1024
  protocol:17 port:53
  #as:0
";

/// Master's AS line format.
const MASTER: &str = " ip6-gre6 [7] 2001:db8::53/128 src_ip_sticky
  new_size:65536
  protocol:17 port:53
  counters:
    packet from existing sessions: 3
    first session packet: 1
    untracked packet: 0
    no server configured: 0
  #as:2
    2001:db8::1 weight:100 buckets:43690 flows:12 dpo:9  used
    2001:db8::2 weight:0 buckets:0 flows:0 dpo:10  removed
";

#[test]
fn older_format_gives_every_vip_with_its_ases() {
    let shown = parse_show_lb_vips(OLDER);
    assert_eq!(shown.len(), 3);

    let web = &shown[0];
    assert_eq!(
        (web.index, web.key, web.encap),
        (1, vkey("192.0.2.80/32", 6, 80), Some(Encap::Gre4))
    );
    assert!(!web.src_ip_sticky && !web.removed);
    assert_eq!(web.new_size, Some(1024));
    assert_eq!(
        web.ases,
        [
            ShownAs {
                address: ip("10.0.0.1"),
                weight: None,
                buckets: 341,
                flows: 0,
                dpo: Some(1),
                used: true,
            },
            ShownAs {
                address: ip("10.0.0.2"),
                weight: None,
                buckets: 683,
                flows: 5,
                dpo: Some(2),
                used: true,
            },
            ShownAs {
                address: ip("10.0.0.3"),
                weight: None,
                buckets: 0,
                flows: 0,
                dpo: Some(3),
                used: false,
            },
        ]
    );

    // No protocol line: an all-port VIP.
    let all_port = &shown[1];
    assert_eq!(
        (all_port.index, all_port.key),
        (2, vkey("192.0.2.0/28", 255, 0))
    );
    assert!(all_port.src_ip_sticky && !all_port.removed);
    assert_eq!(all_port.new_size, Some(4096));
    assert!(all_port.ases.is_empty());

    let removed = &shown[2];
    assert_eq!(
        (removed.index, removed.key, removed.encap),
        (4, vkey("2001:db8::80/128", 17, 53), Some(Encap::Gre6))
    );
    assert!(removed.src_ip_sticky && removed.removed);
}

#[test]
fn master_format_gives_weights_buckets_and_flows() {
    let shown = parse_show_lb_vips(MASTER);
    assert_eq!(shown.len(), 1);
    let vip = &shown[0];
    assert_eq!(vip.index, 7);
    assert_eq!(vip.key, vkey("2001:db8::53/128", 17, 53));
    assert!(vip.src_ip_sticky);
    assert_eq!(vip.new_size, Some(65536));
    assert_eq!(
        vip.ases,
        [
            ShownAs {
                address: ip("2001:db8::1"),
                weight: Some(100),
                buckets: 43690,
                flows: 12,
                dpo: Some(9),
                used: true,
            },
            ShownAs {
                address: ip("2001:db8::2"),
                weight: Some(0),
                buckets: 0,
                flows: 0,
                dpo: Some(10),
                used: false,
            },
        ]
    );
}

#[test]
fn unreadable_parts_are_skipped_not_misattributed() {
    assert!(parse_show_lb_vips("").is_empty());
    assert!(parse_show_lb_vips("unknown input `show lb vips verbose'\n").is_empty());
    // An unreadable header skips its whole block: its AS line joins no other VIP.
    let text = " ip4-gre4 [1] 192.0.2.1/32
    10.0.0.1 1 buckets 0 flows dpo:1 used
 ip4-gre4 [2] not-a-prefix
    10.0.0.9 1 buckets 0 flows dpo:2 used
 ip4-gre4 [x] 192.0.2.3/32
    10.0.0.8 weight:x buckets:1 flows:0 dpo:3  used
    10.0.0.7 weight:5 buckets:1 flows:0 dpo:4
  protocol:x port:80
";
    let shown = parse_show_lb_vips(text);
    assert_eq!(shown.len(), 1);
    let addresses: Vec<IpAddr> = shown[0].ases.iter().map(|a| a.address).collect();
    // 10.0.0.9 belongs to the unreadable block; `[x]` is no header, so its lines stay with
    // VIP 1, where the malformed weight and the line without a state are dropped.
    assert_eq!(addresses, [ip("10.0.0.1")]);
    // A malformed protocol line leaves the VIP all-port rather than failing.
    assert_eq!(shown[0].key, vkey("192.0.2.1/32", 255, 0));
}

fn prefix(s: &str) -> ip_types::Prefix {
    ip_types::Prefix::from(s.parse::<ipnet::IpNet>().unwrap())
}

#[test]
fn each_operation_is_one_request() {
    let web = vkey("192.0.2.80/32", 6, 80);
    let pfx = prefix("192.0.2.80/32");
    let a = ip("10.0.0.1");
    let cases = [
        (
            Op::VipAdd {
                key: web,
                encap: Encap::Gre6,
                src_ip_sticky: true,
                table_len: 4096,
            },
            LbRequest::Vip(lb::LbAddDelVipV2 {
                pfx,
                protocol: 6,
                port: 80,
                encap: lb_types::LbEncapType(1),
                new_flows_table_length: 4096,
                src_ip_sticky: true,
                is_del: false,
                ..Default::default()
            }),
        ),
        (
            Op::VipDel {
                key: web,
                encap: Encap::Gre4,
                src_ip_sticky: false,
            },
            LbRequest::Vip(lb::LbAddDelVipV2 {
                pfx,
                protocol: 6,
                port: 80,
                encap: lb_types::LbEncapType(0),
                is_del: true,
                ..Default::default()
            }),
        ),
        (
            Op::AsAdd {
                key: web,
                address: a,
                weight: 42,
            },
            LbRequest::As(lb::LbAddDelAsV2 {
                pfx,
                protocol: 6,
                port: 80,
                as_address: a.into(),
                weight: 42,
                is_del: false,
                is_flush: false,
            }),
        ),
        (
            Op::AsDel {
                key: web,
                address: a,
                flush: true,
            },
            LbRequest::As(lb::LbAddDelAsV2 {
                pfx,
                protocol: 6,
                port: 80,
                as_address: a.into(),
                weight: 0,
                is_del: true,
                is_flush: true,
            }),
        ),
        (
            Op::AsSetWeight {
                key: web,
                address: a,
                weight: 0,
                flush: true,
            },
            LbRequest::Weight(lb::LbAsSetWeight {
                pfx,
                protocol: 6,
                port: 80,
                as_address: a.into(),
                weight: 0,
                is_flush: true,
            }),
        ),
    ];
    let mut names = Vec::new();
    for (op, want) in cases {
        let got = request(&op);
        assert_eq!(got, want, "{op}");
        names.push(got.name());
    }
    assert_eq!(
        names,
        [
            "lb_add_del_vip_v2",
            "lb_add_del_vip_v2",
            "lb_add_del_as_v2",
            "lb_add_del_as_v2",
            "lb_as_set_weight"
        ]
    );
}

fn vip_details(k: &VipKey, encap: u32, table: u16) -> lb::LbVipDetails {
    lb::LbVipDetails {
        vip: lb_vip(k),
        encap: lb_types::LbEncapType(encap),
        flow_table_length: table,
        ..Default::default()
    }
}

fn lb_vip(k: &VipKey) -> lb_types::LbVip {
    lb_types::LbVip {
        pfx: ip_types::Prefix::from(k.prefix),
        protocol: ip_types::IpProto(k.protocol),
        port: k.port,
    }
}

fn as_details(k: &VipKey, address: &str, weight: u8, used: bool) -> lb::LbAsV2Details {
    lb::LbAsV2Details {
        vip: lb_vip(k),
        app_srv: ip(address).into(),
        flags: u8::from(used),
        weight,
        ..Default::default()
    }
}

#[test]
fn only_used_ases_of_listed_vips_count_and_stickiness_comes_from_the_cli() {
    let web = vkey("192.0.2.80/32", 6, 80);
    let gone = vkey("192.0.2.81/32", 6, 80);
    let vips = [vip_details(&web, 0, 1024)];
    let ases = [
        as_details(&web, "10.0.0.2", 50, true),
        as_details(&web, "10.0.0.1", 100, true),
        // Deleted but not yet garbage-collected: not real.
        as_details(&web, "10.0.0.3", 100, false),
        // An AS of a deleted VIP (not in lb_vip_dump).
        as_details(&gone, "10.0.0.9", 100, true),
    ];
    let shown =
        parse_show_lb_vips(" ip4-gre4 [1] 192.0.2.80/32 src_ip_sticky\n  protocol:6 port:80\n");
    let state = state_from_dumps(&vips, &ases, Some(&shown), &VppState::new());
    assert_eq!(state.vips.len(), 1);
    let vip = &state.vips[&web];
    assert_eq!(
        (vip.encap, vip.src_ip_sticky, vip.table_len),
        (Encap::Gre4, true, 1024)
    );
    let weights: Vec<(IpAddr, u8)> = vip.ases.iter().map(|(a, s)| (*a, s.weight)).collect();
    assert_eq!(weights, [(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 50)]);
}

#[test]
fn ases_in_any_order_and_split_runs_attach_to_their_vip_sorted() {
    let web = vkey("192.0.2.80/32", 6, 80);
    let dns = vkey("192.0.2.53/32", 17, 53);
    let vips = [vip_details(&web, 0, 1024), vip_details(&dns, 0, 1024)];
    // VPP lists ASes in pool order: after churn, not in address order, and one VIP's ASes
    // need not be contiguous. Many in descending order, then `web` again after `dns`.
    let mut ases: Vec<lb::LbAsV2Details> = (1..=200u8)
        .rev()
        .map(|i| as_details(&web, &format!("10.0.1.{i}"), i / 2, true))
        .collect();
    ases.push(as_details(&dns, "10.0.2.2", 7, true));
    ases.push(as_details(&dns, "10.0.2.1", 8, true));
    ases.push(as_details(&web, "10.0.0.1", 100, true));
    let state = state_from_dumps(&vips, &ases, None, &VppState::new());
    let weights = |k: &VipKey| -> Vec<(IpAddr, u8)> {
        state.vips[k]
            .ases
            .iter()
            .map(|(a, s)| (*a, s.weight))
            .collect()
    };
    let mut want_web: Vec<(IpAddr, u8)> = (1..=200u8)
        .map(|i| (ip(&format!("10.0.1.{i}")), i / 2))
        .collect();
    want_web.insert(0, (ip("10.0.0.1"), 100));
    assert_eq!(weights(&web), want_web);
    assert_eq!(weights(&dns), [(ip("10.0.2.1"), 8), (ip("10.0.2.2"), 7)]);
}

#[test]
fn stickiness_falls_back_to_desired_without_cli_output() {
    let web = vkey("2001:db8::80/128", 17, 53);
    let mut want = VppState::new();
    want.vips.insert(web, Vip::new(Encap::Gre6, true, 1024));
    let vips = [vip_details(&web, 1, 0)];
    let state = state_from_dumps(&vips, &[], None, &want);
    assert!(state.vips[&web].src_ip_sticky);
    // With CLI output, a VIP it does not list as sticky is not sticky; nor is a removed one.
    let shown = parse_show_lb_vips(
        " ip6-gre6 [3] 2001:db8::80/128 src_ip_sticky removed\n  protocol:17 port:53\n",
    );
    let state = state_from_dumps(&vips, &[], Some(&shown), &want);
    assert!(!state.vips[&web].src_ip_sticky);
    // An unknown encap is left out.
    let state = state_from_dumps(&[vip_details(&web, 77, 0)], &[], None, &want);
    assert!(state.vips.is_empty());
}

#[test]
fn incompatible_vpp_names_every_problem() {
    let report = CompatReport {
        entries: vec![
            CompatEntry {
                name: "lb_conf".to_owned(),
                crc: 0x56cd_3261,
                status: CompatStatus::Present { id: 1 },
            },
            CompatEntry {
                name: "lb_as_set_weight".to_owned(),
                crc: 0x1234_5678,
                status: CompatStatus::Missing,
            },
        ],
    };
    let error = compat_problems(&report).unwrap_err();
    assert_eq!(error.problems.len(), 1);
    assert!(error.to_string().contains("lb_as_set_weight"), "{error}");
}

#[tokio::test]
async fn the_simulator_has_every_required_message() {
    let sim = Sim::start().await;
    let client = sim.connect().await;
    check_compat(&client).unwrap();
    assert_eq!(required_messages().len(), 8);
}

#[tokio::test]
async fn dump_state_reads_what_vpp_holds_with_the_pool_index() {
    let sim = Sim::start().await;
    let client = sim.connect().await;
    assert!(
        dump_state(&client, &VppState::new())
            .await
            .unwrap()
            .vips
            .is_empty()
    );

    let mut want = desired(3, 4);
    want.vips.get_mut(&key(2, 80)).unwrap().src_ip_sticky = true;
    want.vips
        .get_mut(&key(3, 80))
        .unwrap()
        .ases
        .get_mut(&backend(1))
        .unwrap()
        .weight = 7;
    let (_, report) = sync(&client, &want).await;
    assert!(report.is_clean());

    // Stickiness is read from the CLI, not copied from what is desired.
    let state = dump_state(&client, &desired(3, 4)).await.unwrap();
    assert_eq!(state, {
        let mut got = want.clone();
        for vip in got.vips.values_mut() {
            vip.ases.values_mut().for_each(|a| a.flush = false);
        }
        got
    });
    // The CLI's pool indices are the simulator's.
    let text = sim.handle.with_lb(|lb| lb.show_vips(true));
    let shown = parse_show_lb_vips(&text);
    let indices: Vec<u32> = shown.iter().map(|v| v.index).collect();
    assert_eq!(indices, sim.handle.with_lb(|lb| lb.vip_indices()));
    let weights: Vec<usize> = shown.iter().map(|v| v.ases.len()).collect();
    assert_eq!(weights, [4, 4, 4]);
    assert!(
        shown
            .iter()
            .all(|v| v.ases.iter().all(|a| a.used && a.buckets > 0))
    );
}
