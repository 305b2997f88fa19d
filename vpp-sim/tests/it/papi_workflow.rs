//! Cross-check with VPP's own Python client: `tests/papi/lb_workflow.py` (vpp_papi) runs the lb
//! workflow against an in-process simulator and must exit 0. Without VPP's `.api.json` files
//! (see `vpp_binapi_gen::apidir`) it is skipped with a notice, except under CI (`CI=true`).

use std::path::Path;
use std::process::Command;

use vpp_sim::{SimConfig, Simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_papi_runs_the_lb_workflow() {
    // VPP's .api.json files: a notice and a skip when missing, a failure under CI
    let Some(apidir) = vpp_binapi_gen::apidir::api_dir_for_test(
        "vpp_papi_runs_the_lb_workflow",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        vpp_binapi::api::MODULES,
    ) else {
        return;
    };
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
