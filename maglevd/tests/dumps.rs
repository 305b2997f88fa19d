//! VPP dumps to the current state: USED ASes only, ASes of unknown VIPs ignored, stickiness
//! from `show lb vips verbose`, and the parser of that output.

use std::collections::BTreeMap;
use std::net::IpAddr;

use maglev_core::plan::{Encap, Vip, VipKey, VppState};
use maglevd::vpp::{parse_show_lb_vips, state_from_dumps};
use vpp_binapi::api::{ip_types, lb, lb_types};

fn key(prefix: &str, proto: u8, port: u16) -> VipKey {
    VipKey::new(prefix.parse().unwrap(), proto, port)
}

fn lb_vip(k: &VipKey) -> lb_types::LbVip {
    lb_types::LbVip {
        pfx: ip_types::Prefix::from(k.prefix),
        protocol: ip_types::IpProto(k.protocol),
        port: k.port,
    }
}

fn vip_details(k: &VipKey, encap: u32, table: u16) -> lb::LbVipDetails {
    lb::LbVipDetails {
        vip: lb_vip(k),
        encap: lb_types::LbEncapType(encap),
        flow_table_length: table,
        ..Default::default()
    }
}

fn as_details(k: &VipKey, address: &str, weight: u8, used: bool) -> lb::LbAsV2Details {
    lb::LbAsV2Details {
        vip: lb_vip(k),
        app_srv: address.parse::<IpAddr>().unwrap().into(),
        flags: u8::from(used),
        in_use_since: 0,
        weight,
        num_buckets: 0,
    }
}

#[test]
fn only_used_ases_of_listed_vips_count() {
    let web = key("192.0.2.80/32", 6, 80);
    let gone = key("192.0.2.81/32", 6, 80);
    let vips = [vip_details(&web, 0, 1024)];
    let ases = [
        as_details(&web, "10.0.0.2", 50, true),
        as_details(&web, "10.0.0.1", 100, true),
        // Deleted but not yet garbage-collected: not real.
        as_details(&web, "10.0.0.3", 100, false),
        // An AS of a deleted VIP (not in lb_vip_dump).
        as_details(&gone, "10.0.0.9", 100, true),
    ];
    let sticky = BTreeMap::from([(web, true)]);
    let state = state_from_dumps(&vips, &ases, Some(&sticky), &VppState::new());
    assert_eq!(state.vips.len(), 1);
    let vip = &state.vips[&web];
    assert_eq!(vip.encap, Encap::Gre4);
    assert!(vip.src_ip_sticky);
    assert_eq!(vip.table_len, 1024);
    let weights: Vec<(String, u8)> = vip
        .ases
        .iter()
        .map(|(a, s)| (a.to_string(), s.weight))
        .collect();
    assert_eq!(
        weights,
        [("10.0.0.1".to_owned(), 100), ("10.0.0.2".to_owned(), 50)]
    );
}

#[test]
fn stickiness_falls_back_to_desired_without_cli_output() {
    let web = key("2001:db8::80/128", 17, 53);
    let mut desired = VppState::new();
    desired.vips.insert(web, Vip::new(Encap::Gre6, true, 1024));
    let state = state_from_dumps(&[vip_details(&web, 1, 0)], &[], None, &desired);
    assert!(state.vips[&web].src_ip_sticky);
    assert_eq!(state.vips[&web].encap, Encap::Gre6);
    // With CLI output, a VIP it does not list as sticky is not sticky.
    let state = state_from_dumps(
        &[vip_details(&web, 1, 0)],
        &[],
        Some(&BTreeMap::new()),
        &desired,
    );
    assert!(!state.vips[&web].src_ip_sticky);
}

#[test]
fn vip_with_unknown_encap_is_skipped() {
    let web = key("192.0.2.80/32", 6, 80);
    let state = state_from_dumps(&[vip_details(&web, 77, 0)], &[], None, &VppState::new());
    assert!(state.vips.is_empty());
}

const SHOW: &str = " gre4 [1] 192.0.2.80/32
  new_size:1024
  protocol:6 port:80
  counters:
    packet from existing sessions: 0
  #as:2
    10.0.0.1 512 buckets   0 flows  dpo:1 used
    10.0.0.2 512 buckets   0 flows  dpo:2 used

 gre4 [2] 192.0.2.53/32 src_ip_sticky
  new_size:1024
  protocol:17 port:53
  #as:0

 gre4 [3] 192.0.2.0/28 src_ip_sticky
  new_size:4096
  #as:0

 gre6 [4] 2001:db8::80/128 src_ip_sticky removed
  new_size:1024
  protocol:6 port:80
  #as:0
";

#[test]
fn show_lb_vips_verbose_gives_stickiness_per_live_vip() {
    let parsed = parse_show_lb_vips(SHOW);
    let expected = BTreeMap::from([
        (key("192.0.2.80/32", 6, 80), false),
        (key("192.0.2.53/32", 17, 53), true),
        // No protocol line: an all-port VIP.
        (key("192.0.2.0/28", 255, 0), true),
    ]);
    assert_eq!(parsed, expected);
}

#[test]
fn garbage_cli_output_parses_to_nothing() {
    assert!(parse_show_lb_vips("").is_empty());
    assert!(parse_show_lb_vips("unknown input `show lb vips verbose'\n").is_empty());
    assert!(parse_show_lb_vips(" gre4 [1] not-a-prefix\n  protocol:6 port:80\n").is_empty());
    // A malformed protocol line leaves the block as an all-port VIP rather than failing.
    let parsed = parse_show_lb_vips(" gre4 [1] 192.0.2.1/32\n  protocol:x port:80\n");
    assert_eq!(parsed.len(), 1);
}

#[test]
fn refused_operations_name_vpp_s_error() {
    let error = maglevd::vpp::SyncError::Retval {
        msg: "lb_add_del_as_v2",
        retval: -97,
    };
    let text = error.to_string();
    assert!(
        text.starts_with("lb_add_del_as_v2: retval -97 (invalid address family"),
        "{text}"
    );
    assert_eq!(maglevd::vpp::retval_name(-1234), "vpp error");
}
