//! Our typed client against the simulator: every lb message, dumps, pipelined batches, forced
//! retvals and a server that dies in the middle of a dump.

use std::net::IpAddr;
use std::time::Duration;

use vpp_binapi::api::{ip, ip_types, lb, lb_types, vlib, vpe};
use vpp_binapi::client::{Client, ClientError, ClientOptions};
use vpp_sim::{SimConfig, SimHandle, Simulator};

async fn start() -> (tempfile::TempDir, SimHandle, Client) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig::new(dir.path().join("api.sock")))
        .await
        .unwrap();
    let opts = ClientOptions::default().timeout(Duration::from_secs(5));
    let c = Client::connect(sim.api_socket(), opts).await.unwrap();
    (dir, sim, c)
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

fn vip(a: &str, port: u16) -> lb::LbAddDelVipV2 {
    lb::LbAddDelVipV2 {
        pfx: pfx(a, 32),
        protocol: 6,
        port,
        encap: lb_types::LbEncapType::LB_API_ENCAP_TYPE_GRE4,
        new_flows_table_length: 1024,
        ..Default::default()
    }
}

fn as_v2(v: &str, a: &str, weight: u8) -> lb::LbAddDelAsV2 {
    lb::LbAddDelAsV2 {
        pfx: pfx(v, 32),
        protocol: 6,
        port: 80,
        as_address: addr(a),
        weight,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_lb_message_through_the_typed_client() {
    let (_d, sim, c) = start().await;
    let r = c
        .request(&lb::LbConf {
            ip4_src_address: ip_types::Ip4Address([192, 0, 2, 1]),
            ip6_src_address: ip_types::Ip6Address([0; 16]),
            sticky_buckets_per_core: 4096,
            flow_timeout: 10,
        })
        .await
        .unwrap();
    assert_eq!(r.retval, 0);
    let g = c.request(&lb::LbConfGet {}).await.unwrap();
    assert_eq!((g.sticky_buckets_per_core, g.flow_timeout), (4096, 10));

    let v1 = lb::LbAddDelVip {
        pfx: pfx("10.0.0.2", 32),
        protocol: 17,
        port: 53,
        encap: lb_types::LbEncapType::LB_API_ENCAP_TYPE_GRE4,
        new_flows_table_length: 16,
        ..Default::default()
    };
    assert_eq!(c.request(&v1).await.unwrap().retval, 0);
    assert_eq!(c.request(&vip("10.0.0.1", 80)).await.unwrap().retval, 0);
    assert_eq!(c.request(&vip("10.0.0.1", 80)).await.unwrap().retval, -81);

    // Pipelined AS adds, in address order, as the daemon sends them.
    let adds: Vec<_> = (1..=4)
        .map(|i| as_v2("10.0.0.1", &format!("10.1.0.{i}"), 100))
        .collect();
    let replies = c.batch(&adds).await.unwrap();
    assert!(replies.iter().all(|r| r.retval == 0));
    let v1as = lb::LbAddDelAs {
        pfx: pfx("10.0.0.2", 32),
        protocol: 17,
        port: 53,
        as_address: addr("10.2.0.1"),
        ..Default::default()
    };
    assert_eq!(c.request(&v1as).await.unwrap().retval, 0);
    let sw = lb::LbAsSetWeight {
        pfx: pfx("10.0.0.1", 32),
        protocol: 6,
        port: 80,
        as_address: addr("10.1.0.4"),
        weight: 0,
        is_flush: true,
    };
    assert_eq!(c.request(&sw).await.unwrap().retval, 0);
    let fl = lb::LbFlushVip {
        pfx: pfx("10.0.0.1", 32),
        protocol: 6,
        port: 80,
    };
    assert_eq!(c.request(&fl).await.unwrap().retval, 0);

    let vips = c.dump(&lb::LbVipDump::default()).await.unwrap();
    assert_eq!(vips.len(), 2);
    let rows = c.dump(&lb::LbAsV2Dump::default()).await.unwrap();
    assert_eq!(rows.len(), 5);
    let vip80: Vec<(IpAddr, u8, u32)> = rows
        .iter()
        .filter(|r| r.vip.port == 80)
        .map(|r| {
            let b = r.app_srv.un.0;
            (
                IpAddr::from([b[0], b[1], b[2], b[3]]),
                r.weight,
                r.num_buckets,
            )
        })
        .collect();
    assert_eq!(vip80.len(), 4);
    assert_eq!(vip80.iter().map(|r| r.2).sum::<u32>(), 1024);
    assert_eq!(vip80[3].1, 0);
    assert_eq!(vip80[3].2, 0, "weight 0 owns no bucket");
    let rows = c.dump(&lb::LbAsDump::default()).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.flags == 1));

    let out = c
        .request(&vlib::CliInband {
            cmd: "show lb vips verbose".into(),
        })
        .await
        .unwrap();
    assert!(
        out.reply.contains(" ip4-gre4 [2] 10.0.0.1/32\n"),
        "{}",
        out.reply
    );
    let v = c.request(&vpe::ShowVersion {}).await.unwrap();
    assert_eq!(v.retval, 0);
    let lk = c
        .request(&ip::IpRouteLookup {
            table_id: 0,
            exact: 1,
            prefix: pfx("10.0.0.1", 32),
        })
        .await
        .unwrap();
    assert_eq!(lk.retval, 0);
    assert_eq!(
        Some(lk.route.stats_index),
        sim.route_stats_index("10.0.0.1".parse().unwrap(), 32)
    );

    let names: Vec<&str> = sim.journal().iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "lb_conf",
            "lb_add_del_vip",
            "lb_add_del_vip_v2",
            "lb_add_del_vip_v2",
            "lb_add_del_as_v2",
            "lb_add_del_as_v2",
            "lb_add_del_as_v2",
            "lb_add_del_as_v2",
            "lb_add_del_as",
            "lb_as_set_weight",
            "lb_flush_vip",
        ]
    );
}

#[tokio::test]
async fn forced_retval_reaches_the_caller() {
    let (_d, sim, c) = start().await;
    sim.force_retval("lb_add_del_vip_v2", -81, Some(1));
    assert_eq!(c.request(&vip("10.0.0.1", 80)).await.unwrap().retval, -81);
    assert_eq!(c.request(&vip("10.0.0.1", 80)).await.unwrap().retval, 0);
}

#[tokio::test]
async fn server_dying_mid_dump_fails_the_dump() {
    let (_d, sim, c) = start().await;
    assert_eq!(c.request(&vip("10.0.0.1", 80)).await.unwrap().retval, 0);
    let adds: Vec<_> = (1..=10)
        .map(|i| as_v2("10.0.0.1", &format!("10.1.0.{i}"), 100))
        .collect();
    c.batch(&adds).await.unwrap();
    sim.drop_after_sent(3);
    let err = c.dump(&lb::LbAsV2Dump::default()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Closed | ClientError::Io(_)),
        "{err:?}"
    );
    assert!(c.is_closed());
}

#[tokio::test]
async fn delayed_dump_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig::new(dir.path().join("api.sock")))
        .await
        .unwrap();
    let opts = ClientOptions::default().timeout(Duration::from_millis(100));
    let c = Client::connect(sim.api_socket(), opts).await.unwrap();
    sim.set_reply_delay(Some(Duration::from_millis(300)));
    let err = c.dump(&lb::LbVipDump::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
}
