//! Connects to VPP's binary API socket and prints VPP's version.
//!
//! ```sh
//! cargo run -p vpp-binapi --example show_version -- /run/vpp/api.sock
//! ```

use std::error::Error;
use std::io::Write;

use vpp_binapi::api::vpe;
use vpp_binapi::client::{Client, ClientOptions};

/// Connects to the API socket `args[0]`, prints VPP's program, version and build date, and
/// checks the connection with a `control_ping`.
pub(crate) async fn run(args: &[String], out: &mut impl Write) -> Result<(), Box<dyn Error>> {
    let [api_socket] = args else {
        return Err("usage: show_version <api.sock>".into());
    };
    let vpp = Client::connect(api_socket, ClientOptions::default().name("show-version")).await?;
    let version = vpp.request(&vpe::ShowVersion::default()).await?;
    writeln!(
        out,
        "{} {} (built {})",
        version.program, version.version, version.build_date
    )?;
    vpp.ping().await?;
    writeln!(out, "client index {}, ping ok", vpp.client_index())?;
    vpp.close().await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args, &mut std::io::stdout()).await
}
