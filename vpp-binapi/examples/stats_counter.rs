//! Reads counters from VPP's stats segment: every entry whose name matches one of the
//! patterns (regular expressions), with its value summed over threads.
//!
//! ```sh
//! cargo run -p vpp-binapi --example stats_counter -- /run/vpp/stats.sock /sys/boottime '^/lb/'
//! ```

use std::error::Error;
use std::io::Write;

use vpp_binapi::stats::{StatValue, StatsClient};

/// Maps the stats segment of the socket `args[0]` and prints the entries matching
/// `args[1..]` (every entry without patterns).
pub(crate) fn run(args: &[String], out: &mut impl Write) -> Result<(), Box<dyn Error>> {
    let Some((stats_socket, patterns)) = args.split_first() else {
        return Err("usage: stats_counter <stats.sock> [pattern...]".into());
    };
    let stats = StatsClient::connect_blocking(stats_socket)?;
    for entry in stats.dump(patterns)? {
        let value = match &entry.value {
            StatValue::Scalar(v) | StatValue::Gauge(v) => v.to_string(),
            StatValue::SimpleCounters(c) => format!("{} (sum over threads)", c.total()),
            StatValue::CombinedCounters(c) => {
                let total = c.total();
                format!("{} packets {} bytes (sum)", total.packets, total.bytes)
            }
            StatValue::NameVector(names) => format!("{} names", names.len()),
            other => format!("{other:?}"),
        };
        writeln!(out, "{} = {value}", entry.name)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args, &mut std::io::stdout())
}
