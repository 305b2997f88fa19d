//! Cross-validation with VPP's own Python client: golden vectors produced fresh by
//! `tests/papi/golden.py` with `vpp_papi`'s serializer must match our encoder byte for byte, and
//! our decoder must read papi's bytes back to the same values.
//!
//! Needs `python3` with `vpp_papi` (`pip install vpp-papi`; CI installs it) and VPP's
//! `.api.json` files, found by `vpp_binapi_gen::apidir` (`$VPP_API_DIR`, else
//! `../shared/vpp-api` beside the repository, else `/usr/share/vpp/api`); without them the test
//! is skipped with a notice, except under CI (`CI=true`), where it fails. Runs with the
//! `serde` feature (`cargo test -p vpp-binapi --features serde,arbitrary`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use vpp_binapi::codec::{MessageVisitor, VisitedMessage, decode_message, encode_message_to_vec};

/// Runs the script into a temporary file and parses its output; `None` when VPP's definitions
/// are missing outside CI (the test is then skipped with a notice).
fn golden_vectors() -> Option<Vec<Value>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let api_dir = vpp_binapi_gen::apidir::api_dir_for_test(
        "encoder_and_decoder_agree_with_vpp_papi",
        &root,
        vpp_binapi::api::MODULES,
    )?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/papi/golden.py");
    let out = tempfile::NamedTempFile::new().expect("create a temporary file");
    let status = Command::new("python3")
        .arg(&script)
        .env(vpp_binapi_gen::apidir::ENV_VAR, &api_dir)
        .stdout(Stdio::from(
            out.reopen().expect("reopen the temporary file"),
        ))
        .stderr(Stdio::inherit())
        .status()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        status.code() != Some(3),
        "`import vpp_papi` failed: install VPP's Python client with `pip install vpp-papi` \
         (CI installs it) to run the papi golden-vector test"
    );
    assert!(
        status.success(),
        "{} failed: {status} (its message is above; the API dir is {})",
        script.display(),
        api_dir.display()
    );
    let text = std::fs::read_to_string(out.path()).expect("read the golden vectors");
    let doc: Value = serde_json::from_str(&text).expect("golden.py prints JSON");
    println!("vpp_papi version {}", doc["papi_version"]);
    Some(
        doc["vectors"]
            .as_array()
            .expect("a `vectors` array")
            .clone(),
    )
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn u32_of(v: &Value, key: &str) -> u32 {
    v[key]
        .as_u64()
        .and_then(|x| u32::try_from(x).ok())
        .unwrap_or_else(|| panic!("vector field {key} is not a u32: {v}"))
}

/// Checks every vector whose `name_crc` is that of the visited message type.
struct Checker<'a> {
    vectors: &'a [Value],
    checked: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl MessageVisitor for Checker<'_> {
    fn visit<M: VisitedMessage>(&mut self) {
        for v in self
            .vectors
            .iter()
            .filter(|v| v["name_crc"].as_str() == Some(M::NAME_CRC))
        {
            let what = format!("{} ({})", M::NAME_CRC, v["variant"]);
            let msg: M = match serde_json::from_value(v["values"].clone()) {
                Ok(m) => m,
                Err(e) => {
                    self.failures
                        .push(format!("{what}: values do not deserialize: {e}"));
                    continue;
                }
            };
            let papi = unhex(v["bytes"].as_str().expect("hex bytes"));
            let msg_id = u16::try_from(u32_of(v, "msg_id")).expect("u16 msg id");
            let client_index = u32_of(v, "client_index");
            let context = u32_of(v, "context");

            // values -> bytes: our encoder must produce papi's bytes exactly
            let ours = encode_message_to_vec(&msg, msg_id, client_index, context);
            if ours != papi {
                let at = ours
                    .iter()
                    .zip(&papi)
                    .position(|(a, b)| a != b)
                    .unwrap_or(ours.len().min(papi.len()));
                self.failures.push(format!(
                    "{what}: encoding differs from papi at byte {at} (ours {} bytes, papi {} bytes)",
                    ours.len(),
                    papi.len()
                ));
            }

            // bytes -> values: our decoder must read papi's bytes back to the same values
            match decode_message::<M>(&papi) {
                Ok((h, decoded)) => {
                    if decoded != msg {
                        self.failures
                            .push(format!("{what}: decoded {decoded:?}\n  expected {msg:?}"));
                    }
                    if h.msg_id != msg_id
                        || h.context.is_some_and(|c| c != context)
                        || h.client_index.is_some_and(|c| c != client_index)
                    {
                        self.failures
                            .push(format!("{what}: header decoded as {h:?}"));
                    }
                }
                Err(e) => self.failures.push(format!("{what}: decode failed: {e}")),
            }
            *self.checked.entry(M::NAME_CRC).or_default() += 1;
        }
    }
}

#[test]
fn encoder_and_decoder_agree_with_vpp_papi() {
    let Some(vectors) = golden_vectors() else {
        return;
    };
    let mut c = Checker {
        vectors: &vectors,
        checked: BTreeMap::new(),
        failures: vec![],
    };
    vpp_binapi::api::visit_messages(&mut c);

    let total: usize = c.checked.values().sum();
    println!(
        "checked {total} papi golden vectors over {} message types",
        c.checked.len()
    );
    assert!(
        c.failures.is_empty(),
        "{} mismatches with vpp_papi:\n{}",
        c.failures.len(),
        c.failures.join("\n")
    );
    // every vector must belong to a generated message with the same CRC
    let unmatched: Vec<&str> = vectors
        .iter()
        .filter_map(|v| v["name_crc"].as_str())
        .filter(|n| !c.checked.contains_key(n))
        .collect();
    assert!(
        unmatched.is_empty(),
        "vectors for messages we do not generate (or with another CRC): {unmatched:?}"
    );
    assert_eq!(total, vectors.len());
    // the required coverage: every lb message and the named memclnt/vpe/vlib/ip ones
    for name in [
        "sockclnt_create",
        "sockclnt_create_reply",
        "control_ping",
        "control_ping_reply",
        "show_version",
        "show_version_reply",
        "cli_inband",
        "cli_inband_reply",
        "ip_route_lookup",
        "ip_route_lookup_reply",
    ] {
        assert!(
            c.checked
                .keys()
                .any(|k| k.rsplit_once('_').map(|p| p.0) == Some(name)),
            "no golden vector for {name}"
        );
    }
    let lb_types = vpp_binapi::api::MESSAGES
        .iter()
        .filter(|m| m.module == "lb")
        .count();
    let lb_checked = c.checked.keys().filter(|k| k.starts_with("lb_")).count();
    assert_eq!(lb_checked, lb_types, "every lb message has golden vectors");
}
