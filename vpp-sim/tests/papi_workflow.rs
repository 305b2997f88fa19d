//! Cross-check with VPP's own Python client: `tests/papi/lb_workflow.py` (vpp_papi) runs the lb
//! workflow against an in-process simulator and must exit 0.

use std::path::{Path, PathBuf};
use std::process::Command;

use vpp_sim::{SimConfig, Simulator};

fn api_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VPP_API_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vpp-api")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_papi_runs_the_lb_workflow() {
    let probe = Command::new("python3")
        .args(["-c", "import vpp_papi"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 cannot import vpp_papi: run `pip install vpp-papi`\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run python3 ({e}); install python3 and `pip install vpp-papi`"),
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let stats = dir.path().join("stats.sock");
    let mut cfg = SimConfig::new(&sock);
    cfg.stats_socket = Some(stats.clone());
    let sim = Simulator::start(cfg).await.unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/papi/lb_workflow.py");
    let apidir = api_dir();
    assert!(
        apidir.is_dir(),
        "VPP api dir {} missing (set VPP_API_DIR)",
        apidir.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(&sock)
            .arg(apidir)
            .arg(&stats)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lb_workflow.py failed ({})\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(stdout.contains("stats checked"), "{stdout}");
    // The script's mutating calls all reached the simulator, in order.
    let journal = sim.journal();
    assert_eq!(journal.first().map(|e| e.name), Some("lb_conf"));
    assert!(
        journal
            .iter()
            .any(|e| e.name == "lb_as_set_weight" && e.retval == 0)
    );
    assert!(
        journal
            .iter()
            .any(|e| e.name == "lb_add_del_vip_v2" && e.retval == -81)
    );
    sim.shutdown();
}
