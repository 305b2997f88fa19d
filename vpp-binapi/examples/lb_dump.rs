//! Connects to VPP's binary API socket and dumps the lb plugin's state: its global config,
//! every VIP and every application server (AS) with its weight and bucket count.
//!
//! ```sh
//! cargo run -p vpp-binapi --example lb_dump -- /run/vpp/api.sock
//! ```

use std::error::Error;
use std::io::Write;

use vpp_binapi::api::lb;
use vpp_binapi::client::{Client, ClientOptions};

/// Connects to the API socket `args[0]` and prints the lb state.
pub(crate) async fn run(args: &[String], out: &mut impl Write) -> Result<(), Box<dyn Error>> {
    let [api_socket] = args else {
        return Err("usage: lb_dump <api.sock>".into());
    };
    let vpp = Client::connect(api_socket, ClientOptions::default().name("lb-dump")).await?;
    // Refuse to go on when this VPP speaks other versions of the messages used here.
    vpp.message_id::<lb::LbVipDump>()?;
    vpp.message_id::<lb::LbAsV2Dump>()?;
    let conf = vpp.request(&lb::LbConfGet::default()).await?;
    writeln!(
        out,
        "lb conf: ip4-src {} ip6-src {} sticky-buckets-per-core {} flow-timeout {}s",
        std::net::Ipv4Addr::from(conf.ip4_src_address.0),
        std::net::Ipv6Addr::from(conf.ip6_src_address.0),
        conf.sticky_buckets_per_core,
        conf.flow_timeout
    )?;
    for vip in vpp.dump(&lb::LbVipDump::default()).await? {
        writeln!(
            out,
            "vip {} protocol {:?} port {} encap {:?} table {}",
            vip.vip.pfx.to_ipnet()?,
            vip.vip.protocol,
            vip.vip.port,
            vip.encap,
            vip.flow_table_length
        )?;
    }
    for server in vpp.dump(&lb::LbAsV2Dump::default()).await? {
        writeln!(
            out,
            "as {} vip {} port {} weight {} buckets {}",
            server.app_srv.to_ip()?,
            server.vip.pfx.to_ipnet()?,
            server.vip.port,
            server.weight,
            server.num_buckets
        )?;
    }
    vpp.close().await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args, &mut std::io::stdout()).await
}
