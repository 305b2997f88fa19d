//! The simulator's wire behaviour, through a raw socket and the generated codec: handshake ids,
//! every lb message and its encoding quirks, silent drops, fault knobs, journal, restart and
//! the stats segment it keeps in step.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::common::Raw;
use vpp_binapi::api::{ip, ip_types, lb, lb_types, memclnt, vlib, vpe};
use vpp_binapi::codec::{self, Message};
use vpp_binapi::stats::{StatValue, StatsClient};
use vpp_sim::{SimConfig, SimHandle, Simulator};

async fn start() -> (tempfile::TempDir, SimHandle) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(dir.path().join("api.sock"));
    cfg.stats_socket = Some(dir.path().join("stats.sock"));
    let sim = Simulator::start(cfg).await.unwrap();
    (dir, sim)
}

fn addr(a: &str) -> ip_types::Address {
    let mut un = [0u8; 16];
    match a.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => {
            un[..4].copy_from_slice(&v4.octets());
            ip_types::Address {
                af: ip_types::AddressFamily::ADDRESS_IP4,
                un: ip_types::AddressUnion(un),
            }
        }
        IpAddr::V6(v6) => ip_types::Address {
            af: ip_types::AddressFamily::ADDRESS_IP6,
            un: ip_types::AddressUnion(v6.octets()),
        },
    }
}

fn pfx(a: &str, len: u8) -> ip_types::Prefix {
    ip_types::Prefix {
        address: addr(a),
        len,
    }
}

fn add_vip(a: &str, len: u8, port: u16, table: u32) -> lb::LbAddDelVipV2 {
    let encap = if a.contains(':') {
        lb_types::LbEncapType::LB_API_ENCAP_TYPE_GRE6
    } else {
        lb_types::LbEncapType::LB_API_ENCAP_TYPE_GRE4
    };
    lb::LbAddDelVipV2 {
        pfx: pfx(a, len),
        protocol: 6,
        port,
        encap,
        new_flows_table_length: table,
        ..Default::default()
    }
}

fn add_as(vip: &str, port: u16, a: &str, weight: u8) -> lb::LbAddDelAsV2 {
    lb::LbAddDelAsV2 {
        pfx: pfx(vip, 32),
        protocol: 6,
        port,
        as_address: addr(a),
        weight,
        ..Default::default()
    }
}

#[tokio::test]
async fn handshake_assigns_memclnt_fixed_ids_and_lists_every_message() {
    let (_d, sim) = start().await;
    let raw = Raw::connect(sim.api_socket()).await;
    assert_eq!(raw.client_index, 0x8000_0001);
    assert_eq!(raw.ids[memclnt::SockclntCreate::NAME_CRC], 15);
    assert_eq!(raw.ids[memclnt::SockclntCreateReply::NAME_CRC], 16);
    assert_eq!(raw.ids[memclnt::ControlPing::NAME_CRC], 23);
    assert_eq!(raw.ids[memclnt::GetApiJsonReply::NAME_CRC], 28);
    assert_eq!(raw.ids[memclnt::MemclntCreate::NAME_CRC], 1);
    for m in vpp_binapi::api::MESSAGES {
        assert!(
            raw.ids.contains_key(m.name_crc),
            "{} missing from the table",
            m.name_crc
        );
    }
    let mut ids: Vec<u16> = raw.ids.values().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), raw.ids.len(), "ids are unique");
    assert!(ids.iter().all(|&i| i > 0));
    // A second connection gets the next registration index.
    let raw2 = Raw::connect(sim.api_socket()).await;
    assert_eq!(raw2.client_index, 0x8000_0002);
}

#[tokio::test]
async fn memclnt_and_vpe_basics() {
    let (_d, sim) = start().await;
    let mut raw = Raw::connect(sim.api_socket()).await;
    let r: memclnt::ControlPingReply = raw.call(&memclnt::ControlPing {}).await;
    assert_eq!(r.retval, 0);
    assert_eq!(r.client_index, raw.client_index);
    let v: vpe::ShowVersionReply = raw.call(&vpe::ShowVersion {}).await;
    assert_eq!((v.retval, v.program.as_str()), (0, "vpe"));
    let c: vlib::CliInbandReply = raw
        .call(&vlib::CliInband {
            cmd: "show version".into(),
        })
        .await;
    assert!(
        c.reply.starts_with(&format!("vpp v{}", v.version)),
        "{}",
        c.reply
    );
    let c: vlib::CliInbandReply = raw
        .call(&vlib::CliInband {
            cmd: "bogus cmd".into(),
        })
        .await;
    assert!(c.reply.contains("unknown input"), "{}", c.reply);
    let a: memclnt::ApiVersionsReply = raw.call(&memclnt::ApiVersions {}).await;
    let lbv = a.api_versions.iter().find(|m| m.name == "lb").unwrap();
    assert_eq!((lbv.major, lbv.minor, lbv.patch), (1, 2, 0));
    let k: memclnt::MemclntKeepaliveReply = raw.call(&memclnt::MemclntKeepalive {}).await;
    assert_eq!(k.retval, 0);
    let f: memclnt::GetFirstMsgIdReply = raw
        .call(&memclnt::GetFirstMsgId {
            name: "lb_12345678".into(),
        })
        .await;
    assert_eq!(f.retval, 0);
    let first_lb = lb::MESSAGES
        .iter()
        .map(|m| raw.ids[m.name_crc])
        .min()
        .unwrap();
    assert_eq!(f.first_msg_id, first_lb);
    // sockclnt_delete answers 1 and closes.
    let index = raw.client_index;
    let d: memclnt::SockclntDeleteReply = raw.call(&memclnt::SockclntDelete { index }).await;
    assert_eq!(d.response, 1);
    assert!(
        raw.read_frame().await.is_none(),
        "socket closed after sockclnt_delete"
    );
}

#[tokio::test]
async fn every_lb_message_and_its_wire_quirks() {
    let (_d, sim) = start().await;
    let mut raw = Raw::connect(sim.api_socket()).await;
    let r: lb::LbConfReply = raw
        .call(&lb::LbConf {
            ip4_src_address: ip_types::Ip4Address([192, 0, 2, 1]),
            ip6_src_address: ip_types::Ip6Address(Ipv6Addr::LOCALHOST.octets()),
            sticky_buckets_per_core: u32::MAX,
            flow_timeout: 20,
        })
        .await;
    assert_eq!(r.retval, 0);
    let g: lb::LbConfGetReply = raw.call(&lb::LbConfGet {}).await;
    assert_eq!((g.sticky_buckets_per_core, g.flow_timeout), (1024, 20));
    assert_eq!(g.ip4_src_address.0, [192, 0, 2, 1]);

    // lb_add_del_vip (v1) with NAT4 NODEPORT: srv_type travels in the first wire byte.
    let v1 = lb::LbAddDelVip {
        pfx: pfx("10.0.0.50", 32),
        protocol: 17,
        port: 53,
        encap: lb_types::LbEncapType::LB_API_ENCAP_TYPE_NAT4,
        r#type: lb_types::LbSrvType(1 << 24),
        target_port: 5353,
        new_flows_table_length: 65536,
        ..Default::default()
    };
    let r: lb::LbAddDelVipReply = raw.call(&v1).await;
    assert_eq!(r.retval, 0);
    let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.1", 32, 80, 1024)).await;
    assert_eq!(r.retval, 0);
    let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.1", 32, 80, 1024)).await;
    assert_eq!(r.retval, -81);

    let vips: Vec<lb::LbVipDetails> = raw.dump(&lb::LbVipDump::default()).await;
    assert_eq!(vips.len(), 2);
    let nat = &vips[0];
    assert_eq!(nat.vip.pfx.len, 32);
    assert_eq!(nat.vip.protocol.0, 17);
    assert_eq!(nat.encap, lb_types::LbEncapType::LB_API_ENCAP_TYPE_NAT4);
    assert_eq!(nat.srv_type.0, 1 << 24, "u8 in the first wire byte");
    assert_eq!(
        nat.target_port,
        5353u16.swap_bytes(),
        "byte-swapped target port"
    );
    assert_eq!(nat.flow_table_length, 0, "65536 truncated to u16");
    assert_eq!(vips[1].flow_table_length, 1024);

    // ASes: v1 adds with weight 100; v2 with its weight; set weight.
    let v1as = lb::LbAddDelAs {
        pfx: pfx("10.0.0.1", 32),
        protocol: 6,
        port: 80,
        as_address: addr("10.0.0.1"),
        ..Default::default()
    };
    let r: lb::LbAddDelAsReply = raw.call(&v1as).await;
    assert_eq!(r.retval, 0);
    let r: lb::LbAddDelAsV2Reply = raw.call(&add_as("10.0.0.1", 80, "10.0.0.2", 50)).await;
    assert_eq!(r.retval, 0);
    let r: lb::LbAddDelAsV2Reply = raw.call(&add_as("10.0.0.1", 80, "10.0.0.3", 0)).await;
    assert_eq!(r.retval, 0);
    let r: lb::LbAddDelAsV2Reply = raw.call(&add_as("10.9.9.9", 80, "10.0.0.3", 0)).await;
    assert_eq!(r.retval, -6);
    let rows: Vec<lb::LbAsV2Details> = raw.dump(&lb::LbAsV2Dump::default()).await;
    let got: Vec<(u8, u8, u32)> = rows
        .iter()
        .map(|a| (a.flags, a.weight, a.num_buckets))
        .collect();
    assert_eq!(got, vec![(1, 100, 674), (1, 50, 350), (1, 0, 0)]);
    let sw = lb::LbAsSetWeight {
        pfx: pfx("10.0.0.1", 32),
        protocol: 6,
        port: 80,
        as_address: addr("10.0.0.3"),
        weight: 100,
        is_flush: false,
    };
    let r: lb::LbAsSetWeightReply = raw.call(&sw).await;
    assert_eq!(r.retval, 0);
    let rows: Vec<lb::LbAsDetails> = raw.dump(&lb::LbAsDump::default()).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|a| a.flags == 1 && a.vip.port == 80));
    // Prefix-filtered AS dump: nothing for IPv4 VIPs.
    let filtered = lb::LbAsV2Dump {
        pfx: pfx("10.0.0.1", 32),
        protocol: 6,
        port: 80,
    };
    let rows: Vec<lb::LbAsV2Details> = raw.dump(&filtered).await;
    assert!(rows.is_empty());
    let r: lb::LbFlushVipReply = raw
        .call(&lb::LbFlushVip {
            pfx: pfx("10.0.0.1", 32),
            protocol: 6,
            port: 80,
        })
        .await;
    assert_eq!(r.retval, 0);
    // VPP answers 0 to a flush of a VIP that does not exist, too.
    let r: lb::LbFlushVipReply = raw
        .call(&lb::LbFlushVip {
            pfx: pfx("10.9.9.9", 32),
            protocol: 6,
            port: 80,
        })
        .await;
    assert_eq!(r.retval, 0);

    // ip_route_lookup gives the VIP's FIB stats index; the stats segment has it and the lb
    // counters indexed by pool index.
    let lk: ip::IpRouteLookupReply = raw
        .call(&ip::IpRouteLookup {
            table_id: 0,
            exact: 1,
            prefix: pfx("10.0.0.1", 32),
        })
        .await;
    assert_eq!(lk.retval, 0);
    let want = sim
        .route_stats_index(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 32)
        .unwrap();
    assert_eq!(lk.route.stats_index, want);
    let miss: ip::IpRouteLookupReply = raw
        .call(&ip::IpRouteLookup {
            table_id: 0,
            exact: 1,
            prefix: pfx("10.7.7.7", 32),
        })
        .await;
    assert_eq!(miss.retval, -6);
    let lpm: ip::IpRouteLookupReply = raw
        .call(&ip::IpRouteLookup {
            table_id: 0,
            exact: 0,
            prefix: pfx("10.0.0.1", 32),
        })
        .await;
    assert_eq!(lpm.route.stats_index, want);

    let out: vlib::CliInbandReply = raw
        .call(&vlib::CliInband {
            cmd: "show lb vips verbose".into(),
        })
        .await;
    assert!(
        out.reply.contains(" ip4-gre4 [2] 10.0.0.1/32\n"),
        "{}",
        out.reply
    );
    assert!(
        out.reply.contains(" ip4-nat4 [1] 10.0.0.50/32\n"),
        "{}",
        out.reply
    );
    // one line per AS, as master prints it, agreeing with lb_as_v2_dump
    let rows: Vec<lb::LbAsV2Details> = raw.dump(&lb::LbAsV2Dump::default()).await;
    assert_eq!(rows.len(), 3);
    for a in &rows {
        let line = format!(
            "    {} weight:{} buckets:{} flows:0 dpo:",
            IpAddr::try_from(a.app_srv).unwrap(),
            a.weight,
            a.num_buckets
        );
        assert!(out.reply.contains(&line), "{line:?} in {}", out.reply);
    }
    assert!(sim.bump_vip_counter(2, 1, 7));
    let stats = StatsClient::connect(sim.stats_socket().unwrap())
        .await
        .unwrap();
    let first = stats.get("first session packet").unwrap();
    match first.value {
        StatValue::SimpleCounters(c) => {
            assert_eq!(c.get(0, 2), Some(7));
            assert_eq!(c.get(0, 1), Some(0));
        }
        other => panic!("unexpected {other:?}"),
    }
    match stats.get("/net/route/to").unwrap().value {
        StatValue::CombinedCounters(c) => assert_eq!(c.get(0, want as usize).unwrap().packets, 0),
        other => panic!("unexpected {other:?}"),
    }
    assert!(sim.bump_route_counter(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 32, 3, 300));
    assert!(!sim.bump_route_counter(IpAddr::V4(Ipv4Addr::new(10, 7, 7, 7)), 32, 3, 300));
    match stats.get("/net/route/to").unwrap().value {
        StatValue::CombinedCounters(c) => {
            let v = c.get(0, want as usize).unwrap();
            assert_eq!((v.packets, v.bytes), (3, 300));
        }
        other => panic!("unexpected {other:?}"),
    }

    // The journal saw every mutating call in order, with its retval.
    let j: Vec<(&str, i32)> = sim.journal().iter().map(|e| (e.name, e.retval)).collect();
    assert_eq!(
        j,
        vec![
            ("lb_conf", 0),
            ("lb_add_del_vip", 0),
            ("lb_add_del_vip_v2", 0),
            ("lb_add_del_vip_v2", -81),
            ("lb_add_del_as", 0),
            ("lb_add_del_as_v2", 0),
            ("lb_add_del_as_v2", 0),
            ("lb_add_del_as_v2", -6),
            ("lb_as_set_weight", 0),
            ("lb_flush_vip", 0),
            ("lb_flush_vip", 0),
        ]
    );
    let e = &sim.journal()[5];
    let m = e
        .message
        .as_any()
        .downcast_ref::<lb::LbAddDelAsV2>()
        .unwrap();
    assert_eq!((m.weight, m.as_address), (50, addr("10.0.0.2")));
}

#[tokio::test]
async fn short_unknown_and_foreign_requests_are_dropped_silently() {
    let (_d, sim) = start().await;
    let mut raw = Raw::connect(sim.api_socket()).await;
    // Short: an lb_conf cut after the header.
    let full = codec::encode_message_to_vec(
        &lb::LbConf::default(),
        raw.id::<lb::LbConf>(),
        raw.client_index,
        5,
    );
    raw.send_payload(&full[..12]).await;
    // Unknown id.
    let mut unknown = full.clone();
    unknown[..2].copy_from_slice(&0x7fffu16.to_be_bytes());
    raw.send_payload(&unknown).await;
    // Wrong client_index.
    let foreign =
        codec::encode_message_to_vec(&lb::LbConf::default(), raw.id::<lb::LbConf>(), 7, 6);
    raw.send_payload(&foreign).await;
    // Longer than defined: accepted.
    let mut longer = codec::encode_message_to_vec(
        &lb::LbConfGet {},
        raw.id::<lb::LbConfGet>(),
        raw.client_index,
        8,
    );
    longer.extend_from_slice(&[0; 5]);
    raw.send_payload(&longer).await;
    let f = raw.read_frame().await.unwrap();
    assert_eq!(codec::read_msg_id(&f), Some(raw.id::<lb::LbConfGetReply>()));
    assert!(
        raw.ping().await,
        "only the long request and the ping were answered"
    );
    assert!(sim.journal().is_empty());
}

#[tokio::test]
async fn fault_knobs() {
    let (_d, sim) = start().await;
    let mut raw = Raw::connect(sim.api_socket()).await;
    // Forced retval, twice, then back to normal; the model is untouched.
    sim.force_retval("lb_add_del_vip_v2", -99, Some(2));
    for _ in 0..2 {
        let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.1", 32, 80, 1024)).await;
        assert_eq!(r.retval, -99);
    }
    assert!(sim.with_lb(|m| m.vip_dump().is_empty()));
    let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.1", 32, 80, 1024)).await;
    assert_eq!(r.retval, 0);
    for i in 1..=5 {
        let r: lb::LbAddDelAsV2Reply = raw
            .call(&add_as("10.0.0.1", 80, &format!("10.1.0.{i}"), 100))
            .await;
        assert_eq!(r.retval, 0);
    }
    // Garbage frame between replies: the stream stays in sync.
    sim.send_garbage_frame();
    let g = raw.read_frame().await.unwrap();
    assert_eq!(codec::read_msg_id(&g), Some(0xffff));
    assert!(raw.ping().await);
    // Delay: the reply comes after the delay.
    sim.set_reply_delay(Some(Duration::from_millis(300)));
    let t = tokio::time::Instant::now();
    assert!(raw.ping().await);
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.set_reply_delay(None);
    // Dies mid-dump: 2 details out of 5, then EOF.
    sim.drop_after_sent(2);
    let ctx = raw.next_ctx();
    raw.send(&lb::LbAsV2Dump::default(), ctx).await;
    raw.send(&memclnt::ControlPing {}, ctx).await;
    let details = raw.id::<lb::LbAsV2Details>();
    assert_eq!(
        raw.read_frame().await.map(|f| codec::read_msg_id(&f)),
        Some(Some(details))
    );
    assert_eq!(
        raw.read_frame().await.map(|f| codec::read_msg_id(&f)),
        Some(Some(details))
    );
    assert!(raw.read_frame().await.is_none());
    // Drop on receive: the next request closes the connection unanswered.
    let mut raw = Raw::connect(sim.api_socket()).await;
    sim.drop_after_received(1);
    assert!(!raw.ping().await);
    let mut raw = Raw::connect(sim.api_socket()).await;
    assert!(raw.ping().await, "the knob fired once");
}

#[tokio::test]
async fn restart_forgets_everything_and_serves_a_fresh_stats_segment() {
    let (_d, sim) = start().await;
    let mut raw = Raw::connect(sim.api_socket()).await;
    let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.1", 32, 80, 1024)).await;
    assert_eq!(r.retval, 0);
    let seg_before = sim.stats_segment().unwrap();
    assert!(seg_before.entry("first session packet").is_some());
    sim.restart().await.unwrap();
    assert!(
        raw.read_frame().await.is_none(),
        "connections are closed by a restart"
    );
    assert_eq!(sim.boot_count(), 2);
    let mut raw = Raw::connect(sim.api_socket()).await;
    assert_eq!(raw.client_index, 0x8000_0001);
    let vips: Vec<lb::LbVipDetails> = raw.dump(&lb::LbVipDump::default()).await;
    assert!(vips.is_empty());
    let stats = StatsClient::connect(sim.stats_socket().unwrap())
        .await
        .unwrap();
    assert!(
        stats.get("first session packet").is_err(),
        "no lb counters before the first VIP"
    );
    let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.2", 32, 80, 1024)).await;
    assert_eq!(r.retval, 0);
    let out: vlib::CliInbandReply = raw
        .call(&vlib::CliInband {
            cmd: "show lb vips verbose".into(),
        })
        .await;
    assert!(
        out.reply.starts_with(" ip4-gre4 [1] 10.0.0.2/32"),
        "{}",
        out.reply
    );
}

#[tokio::test(start_paused = true)]
async fn timed_garbage_collection_frees_removed_vips() {
    let (_d, sim) = start().await;
    let mut raw = Raw::connect(sim.api_socket()).await;
    let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.1", 32, 80, 1024)).await;
    assert_eq!(r.retval, 0);
    let r: lb::LbAddDelAsV2Reply = raw.call(&add_as("10.0.0.1", 80, "10.1.1.1", 100)).await;
    assert_eq!(r.retval, 0);
    let mut del = add_as("10.0.0.1", 80, "10.1.1.1", 0);
    del.is_del = true;
    let r: lb::LbAddDelAsV2Reply = raw.call(&del).await;
    assert_eq!(r.retval, 0);
    let mut vdel = add_vip("10.0.0.1", 32, 80, 1024);
    vdel.is_del = true;
    let r: lb::LbAddDelVipV2Reply = raw.call(&vdel).await;
    assert_eq!(r.retval, 0);
    let rows: Vec<lb::LbAsV2Details> = raw.dump(&lb::LbAsV2Dump::default()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].flags, 0);
    // Two GC periods later (flow timeout 40 s, GC every 60 s) the slot is free.
    tokio::time::sleep(Duration::from_secs(125)).await;
    let rows: Vec<lb::LbAsV2Details> = raw.dump(&lb::LbAsV2Dump::default()).await;
    assert!(rows.is_empty());
    assert!(sim.with_lb(|m| m.vip_indices().is_empty()));
}

#[tokio::test]
async fn a_vip_with_table_length_zero_crashes_vpp() {
    let (_d, sim) = start().await;
    let mut raw = Raw::connect(sim.api_socket()).await;
    let r: lb::LbAddDelVipV2Reply = raw.call(&add_vip("10.0.0.1", 32, 80, 1024)).await;
    assert_eq!(r.retval, 0);
    let ctx = raw.next_ctx();
    raw.send(&add_vip("10.0.0.2", 32, 80, 0), ctx).await;
    assert!(
        raw.read_frame().await.is_none(),
        "no reply, connection gone"
    );
    // The restart runs in the background; wait for it.
    for _ in 0..100 {
        if sim.boot_count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.boot_count(), 2);
    assert!(sim.with_lb(|m| m.vip_indices().is_empty()));
}

#[tokio::test]
async fn release_2606_flavor_reproduces_the_old_lb_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(dir.path().join("api.sock"));
    cfg.lb_flavor = vpp_sim::lb::LbFlavor::Release2606;
    let sim = Simulator::start(cfg).await.unwrap();
    let mut raw = Raw::connect(sim.api_socket()).await;
    // The weight messages and lb_conf_get do not exist; the rest of lb does.
    for m in [
        lb::LbConfGet::NAME_CRC,
        lb::LbAddDelAsV2::NAME_CRC,
        lb::LbAsSetWeight::NAME_CRC,
        lb::LbAsV2Dump::NAME_CRC,
    ] {
        assert!(!raw.ids.contains_key(m), "{m}");
    }
    assert!(raw.ids.contains_key(lb::LbAddDelVipV2::NAME_CRC));
    let a: memclnt::ApiVersionsReply = raw.call(&memclnt::ApiVersions {}).await;
    let lbv = a.api_versions.iter().find(|m| m.name == "lb").unwrap();
    assert_eq!((lbv.major, lbv.minor), (1, 1));
    // An IPv4 VIP needs len + 96; GRE6 must be sent little-endian.
    let mut v = add_vip("10.0.0.1", 128, 80, 1024);
    let r: lb::LbAddDelVipV2Reply = raw.call(&v).await;
    assert_eq!(r.retval, 0);
    v.pfx = pfx("10.0.0.2", 128);
    v.encap = lb_types::LbEncapType(1); // GRE6 big-endian: unknown to 26.06
    let r: lb::LbAddDelVipV2Reply = raw.call(&v).await;
    assert_eq!(r.retval, -97);
    v.encap = lb_types::LbEncapType(1u32.swap_bytes());
    let r: lb::LbAddDelVipV2Reply = raw.call(&v).await;
    assert_eq!(r.retval, 0);
    // ASes on the /128-encoded VIP; unweighted Maglev: 342/341/341.
    for a in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        let req = lb::LbAddDelAs {
            pfx: pfx("10.0.0.1", 128),
            protocol: 6,
            port: 80,
            as_address: addr(a),
            ..Default::default()
        };
        let r: lb::LbAddDelAsReply = raw.call(&req).await;
        assert_eq!(r.retval, 0, "{a}");
    }
    let buckets: Vec<u32> = sim.with_lb(|m| {
        m.as_dump(None)
            .iter()
            .filter(|a| a.vip.index == 1)
            .map(|a| a.num_buckets)
            .collect()
    });
    assert_eq!(buckets, vec![342, 341, 341]);
    // Details carry the old bugs; deleted VIPs are still listed.
    let mut del = add_vip("10.0.0.2", 128, 80, 1024);
    del.is_del = true;
    let r: lb::LbAddDelVipV2Reply = raw.call(&del).await;
    assert_eq!(r.retval, 0);
    let vips: Vec<lb::LbVipDetails> = raw.dump(&lb::LbVipDump::default()).await;
    assert_eq!(vips.len(), 2);
    assert_eq!(vips[0].vip.pfx.len, 128);
    assert_eq!(vips[0].vip.protocol.0, 0);
    assert_eq!(vips[0].encap.0, 3, "internal IP4_GRE4");
    assert_eq!(vips[1].encap.0, 2, "internal IP4_GRE6");
    assert_eq!(vips[0].flow_table_length, 0);
    // lb_as_dump's port filter only matches when the port is sent byte-swapped.
    let mut raw_v4 = [0u8; 16];
    raw_v4[12..].copy_from_slice(&[10, 0, 0, 1]);
    let mut f = lb::LbAsDump {
        pfx: pfx("10.0.0.1", 128),
        protocol: 6,
        port: 80,
    };
    f.pfx.address.un = ip_types::AddressUnion(raw_v4);
    let rows: Vec<lb::LbAsDetails> = raw.dump(&f).await;
    assert!(rows.is_empty());
    f.port = 80u16.swap_bytes();
    let rows: Vec<lb::LbAsDetails> = raw.dump(&f).await;
    assert_eq!(rows.len(), 3);
}

#[tokio::test]
async fn registrations_of_a_previous_boot_are_not_released_into_the_new_one() {
    let (_d, sim) = start().await;
    let mut old = Raw::connect(sim.api_socket()).await;
    assert_eq!(old.client_index, 0x8000_0001);
    // Keep the old connection busy in a delayed request across the restart.
    sim.set_reply_delay(Some(Duration::from_millis(300)));
    let ctx = old.next_ctx();
    old.send(&memclnt::ControlPing {}, ctx).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.restart().await.unwrap();
    sim.set_reply_delay(None);
    let b = Raw::connect(sim.api_socket()).await;
    assert_eq!(b.client_index, 0x8000_0001);
    // The old connection is gone before the third client arrives.
    assert!(old.read_frame().await.is_none());
    for _ in 0..200 {
        if sim.connection_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sim.connection_count(), 1);
    let c = Raw::connect(sim.api_socket()).await;
    assert_eq!(
        c.client_index, 0x8000_0002,
        "slot 1 still belongs to the live client"
    );
}
