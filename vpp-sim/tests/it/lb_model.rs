//! Unit tests of the lb plugin model: retvals, pool indices, dump quirks, GC and CLI format.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vpp_sim::lb::{AS_FLAG_USED, AsDumpFilter, LbError, LbModel, VipKey, VipSpec, encap};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(prefix: &str, protocol: u8, port: u16) -> VipKey {
    let prefix = ip(prefix);
    let plen = if prefix.is_ipv4() { 32 } else { 128 };
    VipKey {
        prefix,
        plen,
        protocol,
        port,
    }
}

fn spec(k: VipKey, enc: u32, len: u32) -> VipSpec {
    VipSpec {
        key: k,
        encap: enc,
        dscp: 0,
        srv_type: 0,
        target_port: 0,
        new_flows_table_length: len,
        src_ip_sticky: false,
    }
}

fn gre(k: VipKey) -> VipSpec {
    let e = if k.prefix.is_ipv4() {
        encap::GRE4
    } else {
        encap::GRE6
    };
    spec(k, e, 1024)
}

#[test]
fn vip_indices_start_at_one_and_reuse_lifo_after_gc() {
    let mut m = LbModel::new();
    let a = m.add_vip(&gre(key("10.0.0.1", 6, 80)), 1).unwrap();
    let b = m.add_vip(&gre(key("10.0.0.2", 6, 80)), 1).unwrap();
    let c = m.add_vip(&gre(key("10.0.0.3", 6, 80)), 1).unwrap();
    assert_eq!((a, b, c), (1, 2, 3));
    m.del_vip(&key("10.0.0.1", 6, 80), 2).unwrap();
    m.del_vip(&key("10.0.0.2", 6, 80), 2).unwrap();
    // Deleted but not collected: the slots stay taken.
    assert_eq!(m.add_vip(&gre(key("10.0.0.4", 6, 80)), 3).unwrap(), 4);
    let freed = m.collect_garbage(4, true);
    assert_eq!(freed, vec![1, 2]);
    // vppinfra pools hand out the most recently freed slot first.
    assert_eq!(m.add_vip(&gre(key("10.0.0.5", 6, 80)), 5).unwrap(), 2);
    assert_eq!(m.add_vip(&gre(key("10.0.0.6", 6, 80)), 5).unwrap(), 1);
    assert_eq!(m.add_vip(&gre(key("10.0.0.7", 6, 80)), 5).unwrap(), 5);
}

#[test]
fn retvals_match_vpp() {
    let mut m = LbModel::new();
    let k = key("10.0.0.1", 6, 80);
    m.add_vip(&gre(k), 0).unwrap();
    assert_eq!(m.add_vip(&gre(k), 0).unwrap_err().retval(), -81);
    // Table length not a power of two.
    let bad = spec(key("10.0.0.9", 6, 80), encap::GRE4, 1000);
    assert_eq!(m.add_vip(&bad, 0).unwrap_err().retval(), -70);
    let zero = spec(key("10.0.0.9", 6, 80), encap::GRE4, 0);
    assert_eq!(m.add_vip(&zero, 0), Err(LbError::InvalidMemorySize));
    // IPv4 VIP with an IPv6-only encap.
    let fam = spec(key("10.0.0.9", 6, 80), encap::NAT6, 1024);
    assert_eq!(m.add_vip(&fam, 0).unwrap_err().retval(), -97);
    // All-port VIP next to a per-port one, and vice versa.
    assert_eq!(
        m.add_vip(&gre(key("10.0.0.1", 255, 0)), 0)
            .unwrap_err()
            .retval(),
        -81
    );
    m.add_vip(&gre(key("10.0.0.2", 0, 0)), 0).unwrap();
    assert_eq!(
        m.add_vip(&gre(key("10.0.0.2", 6, 443)), 0)
            .unwrap_err()
            .retval(),
        -81
    );
    // Per-port VIPs on one prefix must share the type.
    let other = spec(key("10.0.0.1", 17, 53), encap::GRE6, 1024);
    assert_eq!(m.add_vip(&other, 0).unwrap_err().retval(), -73);
    // AS on an unknown VIP, twice the same AS, unknown AS.
    assert_eq!(
        m.add_as(&key("10.9.9.9", 6, 80), ip("10.1.1.1"), 100, 0)
            .unwrap_err()
            .retval(),
        -6
    );
    m.add_as(&k, ip("10.1.1.1"), 100, 0).unwrap();
    assert_eq!(
        m.add_as(&k, ip("10.1.1.1"), 100, 0).unwrap_err().retval(),
        -81
    );
    assert_eq!(m.del_as(&k, ip("10.1.1.2"), 0).unwrap_err().retval(), -6);
    assert_eq!(
        m.set_as_weight(&k, ip("10.1.1.2"), 5).unwrap_err().retval(),
        -6
    );
    // AS family must follow the encap.
    assert_eq!(
        m.add_as(&k, ip("2001:db8::1"), 100, 0)
            .unwrap_err()
            .retval(),
        -97
    );
    // Deleting an unknown VIP fails; flushing one does not (VPP answers 0 either way).
    assert_eq!(
        m.del_vip(&key("10.9.9.9", 6, 80), 0).unwrap_err().retval(),
        -6
    );
    let before = m.show_vips(true);
    m.flush_vip(&key("10.9.9.9", 6, 80));
    m.flush_vip(&k);
    assert_eq!(m.show_vips(true), before);
    // lb_conf: buckets must be a power of two; ~0 keeps.
    let v4 = Ipv4Addr::new(192, 0, 2, 1);
    let v6 = Ipv6Addr::LOCALHOST;
    assert_eq!(m.set_conf(v4, v6, 1000, 30).unwrap_err().retval(), -70);
    m.set_conf(v4, v6, u32::MAX, 30).unwrap();
    assert_eq!(m.conf().sticky_buckets_per_core, 1024);
    assert_eq!(m.conf().flow_timeout, 30);
    assert_eq!(m.conf().ip4_src_address, v4);
}

#[test]
fn port_zero_forces_protocol_255() {
    let mut m = LbModel::new();
    m.add_vip(&gre(key("10.0.0.1", 6, 0)), 0).unwrap();
    let v = &m.vip_dump()[0];
    assert_eq!((v.protocol, v.port, v.plen), (255, 0, 32));
    // Any protocol with port 0 finds it.
    assert_eq!(m.find_vip(&key("10.0.0.1", 17, 0)), Ok(1));
}

fn buckets(m: &LbModel, addr: &str) -> Vec<(u8, u32)> {
    m.as_dump(None)
        .into_iter()
        .filter(|a| a.address == ip(addr))
        .map(|a| (a.flags, a.num_buckets))
        .collect()
}

#[test]
fn num_buckets_follow_the_weighted_maglev_table() {
    let mut m = LbModel::new();
    let k = key("10.0.0.1", 6, 80);
    m.add_vip(&gre(k), 0).unwrap();
    m.add_as(&k, ip("10.0.0.1"), 100, 0).unwrap();
    m.add_as(&k, ip("10.0.0.2"), 50, 0).unwrap();
    m.add_as(&k, ip("10.0.0.3"), 0, 0).unwrap();
    // Reference vector from the protocol notes (N = 1024, weights 100/50/0).
    assert_eq!(buckets(&m, "10.0.0.1"), vec![(AS_FLAG_USED, 674)]);
    assert_eq!(buckets(&m, "10.0.0.2"), vec![(AS_FLAG_USED, 350)]);
    assert_eq!(buckets(&m, "10.0.0.3"), vec![(AS_FLAG_USED, 0)]);
    // Equal weights of 1 reproduce the unweighted table: 342/341/341.
    for a in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        m.set_as_weight(&k, ip(a), 1).unwrap();
    }
    let got: Vec<u32> = m.as_dump(None).iter().map(|a| a.num_buckets).collect();
    assert_eq!(got, vec![342, 341, 341]);
    // N = 16, all weights 100: [2,1,1,1,1,2,2,2,2,3,3,3,1,1,3,3] -> 6/5/5.
    let k16 = key("10.0.0.16", 6, 80);
    m.add_vip(&spec(k16, encap::GRE4, 16), 0).unwrap();
    for a in ["10.0.0.3", "10.0.0.1", "10.0.0.2"] {
        m.add_as(&k16, ip(a), 100, 0).unwrap();
    }
    let got: Vec<(IpAddr, u32)> = m
        .as_dump(None)
        .into_iter()
        .filter(|a| a.vip.port == 80 && a.vip.prefix == ip("10.0.0.16"))
        .map(|a| (a.address, a.num_buckets))
        .collect();
    assert_eq!(
        got,
        vec![
            (ip("10.0.0.3"), 5),
            (ip("10.0.0.1"), 6),
            (ip("10.0.0.2"), 5)
        ]
    );
}

#[test]
fn deleted_ases_stay_listed_unused_until_gc() {
    let mut m = LbModel::new();
    let k = key("10.0.0.1", 6, 80);
    m.add_vip(&gre(k), 0).unwrap();
    m.add_as(&k, ip("10.1.1.1"), 100, 0).unwrap();
    m.add_as(&k, ip("10.1.1.2"), 100, 0).unwrap();
    m.del_as(&k, ip("10.1.1.1"), 7).unwrap();
    let d = m.as_dump(None);
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].flags, d[0].num_buckets, d[0].in_use_since), (0, 0, 7));
    assert_eq!((d[1].flags, d[1].num_buckets), (AS_FLAG_USED, 1024));
    // Re-adding reuses the unused AS (same pool index) with the new weight.
    let idx = d[0].index;
    assert_eq!(m.add_as(&k, ip("10.1.1.1"), 30, 8).unwrap(), idx);
    assert_eq!(m.as_dump(None)[0].weight, 30);
    // Deleting the VIP: gone from lb_vip_dump, but its ASes stay, unused.
    m.del_vip(&k, 9).unwrap();
    assert!(m.vip_dump().is_empty());
    let d = m.as_dump(None);
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .all(|a| a.flags == 0 && a.num_buckets == 0 && !a.vip.used)
    );
    // Re-creating the VIP with the same key lists old unused and new used ASes.
    let new = m.add_vip(&gre(k), 10).unwrap();
    assert_eq!(new, 2);
    m.add_as(&k, ip("10.1.1.1"), 100, 10).unwrap();
    let d = m.as_dump(None);
    assert_eq!(d.len(), 3);
    assert_eq!(d.iter().filter(|a| a.flags & AS_FLAG_USED != 0).count(), 1);
    assert_eq!(d[2].vip.index, 2);
    // A timed collection before the flow timeout frees nothing.
    assert!(m.collect_garbage(30, false).is_empty());
    assert_eq!(m.as_dump(None).len(), 3);
    // Once the per-VIP GC period (60 s) and the flow timeout (40 s) have passed, it does.
    assert_eq!(m.collect_garbage(100, false), vec![1]);
    let d = m.as_dump(None);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].vip.index, 2);
}

#[test]
fn as_dump_filter_quirk_misses_ipv4_vips() {
    let mut m = LbModel::new();
    let k4 = key("10.0.0.1", 6, 80);
    let k6 = key("2001:db8::1", 6, 80);
    m.add_vip(&gre(k4), 0).unwrap();
    m.add_vip(&gre(k6), 0).unwrap();
    m.add_as(&k4, ip("10.1.1.1"), 100, 0).unwrap();
    m.add_as(&k6, ip("2001:db8::10"), 100, 0).unwrap();
    // A client puts the IPv4 address in the first 4 union bytes: no match.
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&[10, 0, 0, 1]);
    let f = AsDumpFilter {
        raw_address: raw,
        protocol: 6,
        port: 80,
    };
    assert!(m.as_dump(Some(&f)).is_empty());
    // In bytes 12..16 it matches.
    let mut raw = [0u8; 16];
    raw[12..].copy_from_slice(&[10, 0, 0, 1]);
    let f = AsDumpFilter {
        raw_address: raw,
        protocol: 6,
        port: 80,
    };
    assert_eq!(m.as_dump(Some(&f)).len(), 1);
    // IPv6 filters work as expected.
    let raw6 = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
    let f = AsDumpFilter {
        raw_address: raw6,
        protocol: 6,
        port: 80,
    };
    let d = m.as_dump(Some(&f));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].address, ip("2001:db8::10"));
    // All-zero dumps everything.
    let f = AsDumpFilter {
        raw_address: [0; 16],
        protocol: 1,
        port: 2,
    };
    assert_eq!(m.as_dump(Some(&f)).len(), 2);
}

#[test]
fn show_lb_vips_verbose_format() {
    let mut m = LbModel::new();
    let k = key("10.0.0.1", 6, 80);
    m.add_vip(&gre(k), 0).unwrap();
    m.add_as(&k, ip("10.1.1.1"), 100, 0).unwrap();
    m.add_as(&k, ip("10.1.1.2"), 100, 0).unwrap();
    m.del_as(&k, ip("10.1.1.2"), 1).unwrap();
    let mut s6 = spec(key("2001:db8::1", 0, 0), encap::GRE6, 16);
    s6.src_ip_sticky = true;
    m.add_vip(&s6, 0).unwrap();
    m.bump_counter(1, 1, 5);
    let out = m.show_vips(true);
    let expected = " ip4-gre4 [1] 10.0.0.1/32
  new_size:1024
  protocol:6 port:80
  counters:
    packet from existing sessions: 0
    first session packet: 5
    untracked packet: 0
    no server configured: 0
  #as:2
    10.1.1.1 weight:100 buckets:1024 flows:0 dpo:1 used
    10.1.1.2 weight:100 buckets:0 flows:0 dpo:2  removed

 ip6-gre6 [2] 2001:db8::1/128 src_ip_sticky
  new_size:16
  counters:
    packet from existing sessions: 0
    first session packet: 0
    untracked packet: 0
    no server configured: 0
  #as:0

";
    assert_eq!(out, expected);
    m.del_vip(&k, 2).unwrap();
    let out = m.show_vips(false);
    assert_eq!(
        out,
        "ip4-gre4 10.0.0.1/32 new_size:1024 #as:2 removed  protocol:6 port:80 \n\
         ip6-gre6 2001:db8::1/128 new_size:16 #as:0\n"
    );
}

/// Each AS line carries its weight next to its buckets, as master prints them.
#[test]
fn show_lb_vips_verbose_lists_weights_and_buckets_per_as() {
    let mut m = LbModel::new();
    let k = key("10.0.0.1", 6, 80);
    m.add_vip(&gre(k), 0).unwrap();
    m.add_as(&k, ip("10.1.1.1"), 100, 0).unwrap();
    m.add_as(&k, ip("10.1.1.2"), 50, 0).unwrap();
    m.add_as(&k, ip("10.1.1.3"), 0, 0).unwrap();
    let out = m.show_vips(true);
    let rows: Vec<(IpAddr, u8, u32)> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [addr, w, b, flows, dpo, used] = f.as_slice() else {
                return None;
            };
            assert_eq!((*flows, *used), ("flows:0", "used"), "{l}");
            assert!(dpo.starts_with("dpo:"), "{l}");
            Some((
                addr.parse().ok()?,
                w.strip_prefix("weight:")?.parse().ok()?,
                b.strip_prefix("buckets:")?.parse().ok()?,
            ))
        })
        .collect();
    let dumped: Vec<(IpAddr, u8, u32)> = m
        .as_dump(None)
        .iter()
        .map(|a| (a.address, a.weight, a.num_buckets))
        .collect();
    assert_eq!(rows, dumped);
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![100, 50, 0]
    );
    assert_eq!(rows.iter().map(|r| r.2).sum::<u32>(), 1024);
    assert!(
        rows[0].2 > rows[1].2 && rows[1].2 > 0 && rows[2].2 == 0,
        "{rows:?}"
    );
}

/// A NAT VIP's `type:` line has no newline in VPP: `counters:` follows on the same line.
#[test]
fn show_lb_vips_verbose_nat_line_runs_into_counters() {
    let mut m = LbModel::new();
    let mut s = spec(key("10.0.0.1", 6, 80), encap::NAT4, 16);
    s.srv_type = 1;
    s.target_port = 8080;
    m.add_vip(&s, 0).unwrap();
    let out = m.show_vips(true);
    // VPP also byte-swaps the host-order ports on this line
    let line = format!(
        "  protocol:6 port:80\n  type:nodeport port:{} target_port:{}  counters:\n",
        80u16.swap_bytes(),
        8080u16.swap_bytes()
    );
    assert!(out.contains(&line), "{out}");
}

#[test]
fn as_dump_walks_the_vip_as_pool_in_slot_order_with_lifo_reuse() {
    let mut m = LbModel::new();
    let k = key("10.0.0.1", 6, 80);
    m.add_vip(&gre(k), 0).unwrap();
    for a in ["10.1.1.1", "10.1.1.2", "10.1.1.3"] {
        m.add_as(&k, ip(a), 100, 0).unwrap();
    }
    m.del_as(&k, ip("10.1.1.1"), 1).unwrap();
    m.del_as(&k, ip("10.1.1.2"), 1).unwrap();
    m.collect_garbage(2, true);
    m.add_as(&k, ip("10.1.1.4"), 100, 3).unwrap();
    m.add_as(&k, ip("10.1.1.5"), 100, 3).unwrap();
    let order: Vec<IpAddr> = m.as_dump(None).into_iter().map(|a| a.address).collect();
    // Slots 0 and 1 were freed; 1 (freed last) is reused first.
    assert_eq!(order, vec![ip("10.1.1.5"), ip("10.1.1.4"), ip("10.1.1.3")]);
    assert!(m.show_vips(true).contains("  #as:3\n"));
}
