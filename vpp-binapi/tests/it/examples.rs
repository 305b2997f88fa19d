//! The runnable examples (`examples/`), run against the VPP simulator: each example is a thin
//! `main` over a `run` function, which these tests call with the simulator's socket paths.

use std::time::Duration;

use vpp_binapi::api::{ip_types, lb, lb_types};
use vpp_binapi::client::{Client, ClientOptions};
use vpp_sim::{SimConfig, SimHandle, Simulator};

#[allow(dead_code)]
#[path = "../../examples/lb_dump.rs"]
mod lb_dump;
#[allow(dead_code)]
#[path = "../../examples/show_version.rs"]
mod show_version;
#[allow(dead_code)]
#[path = "../../examples/stats_counter.rs"]
mod stats_counter;

async fn start() -> (tempfile::TempDir, SimHandle) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(dir.path().join("api.sock"));
    cfg.stats_socket = Some(dir.path().join("stats.sock"));
    cfg.version = "26.10-example".to_owned();
    let sim = Simulator::start(cfg).await.unwrap();
    (dir, sim)
}

fn path_arg(path: &std::path::Path) -> Vec<String> {
    vec![path.display().to_string()]
}

#[tokio::test]
async fn show_version_prints_the_simulators_version() {
    let (_dir, sim) = start().await;
    let mut out = Vec::new();
    show_version::run(&path_arg(sim.api_socket()), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("26.10-example"), "{text}");
    assert!(text.contains("ping ok"), "{text}");
    sim.shutdown();
}

#[tokio::test]
async fn lb_dump_prints_the_vips_and_servers_a_client_added() {
    let (_dir, sim) = start().await;
    let vpp = Client::connect(
        sim.api_socket(),
        ClientOptions::default().timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let vip: ip_types::Prefix = "192.0.2.80/32".parse::<ipnet::IpNet>().unwrap().into();
    let conf = lb::LbConf {
        ip4_src_address: ip_types::Ip4Address([192, 0, 2, 1]),
        ip6_src_address: ip_types::Ip6Address([
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ]),
        sticky_buckets_per_core: 1024,
        flow_timeout: 40,
    };
    assert_eq!(vpp.request(&conf).await.unwrap().retval, 0);
    let add_vip = lb::LbAddDelVipV2 {
        pfx: vip,
        protocol: 6,
        port: 80,
        encap: lb_types::LbEncapType::LB_API_ENCAP_TYPE_GRE4,
        new_flows_table_length: 1024,
        ..Default::default()
    };
    assert_eq!(vpp.request(&add_vip).await.unwrap().retval, 0);
    let add_as = lb::LbAddDelAsV2 {
        pfx: vip,
        protocol: 6,
        port: 80,
        as_address: "198.51.100.11".parse::<std::net::IpAddr>().unwrap().into(),
        weight: 70,
        ..Default::default()
    };
    assert_eq!(vpp.request(&add_as).await.unwrap().retval, 0);
    vpp.close().await.unwrap();

    let mut out = Vec::new();
    lb_dump::run(&path_arg(sim.api_socket()), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("ip4-src 192.0.2.1"), "{text}");
    assert!(text.contains("flow-timeout 40s"), "{text}");
    assert!(text.contains("vip 192.0.2.80/32"), "{text}");
    assert!(
        text.contains("as 198.51.100.11 vip 192.0.2.80/32 port 80 weight 70 buckets 1024"),
        "{text}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn stats_counter_reads_the_boot_time() {
    let (_dir, sim) = start().await;
    let stats = sim.stats_socket().unwrap().to_path_buf();
    let args = vec![stats.display().to_string(), "^/sys/boottime$".to_owned()];
    let text = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        stats_counter::run(&args, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    })
    .await
    .unwrap();
    let value: u64 = text
        .strip_prefix("/sys/boottime = ")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(value > 1_600_000_000, "{text}");
    sim.shutdown();
}

#[tokio::test]
async fn examples_refuse_missing_arguments() {
    let mut out = Vec::new();
    let err = lb_dump::run(&[], &mut out).await.unwrap_err();
    assert!(err.to_string().starts_with("usage:"), "{err}");
    let err = show_version::run(&[], &mut out).await.unwrap_err();
    assert!(err.to_string().starts_with("usage:"), "{err}");
    let err = stats_counter::run(&[], &mut out).unwrap_err();
    assert!(err.to_string().starts_with("usage:"), "{err}");
}
