//! Unit tests of the generator on small hand-written fixtures in the `.api.json` format
//! (`tests/fixtures/<module>.fixture.json`), covering every shape of the format. Tests that
//! search a directory get the fixtures copied under their `.api.json` names.

use std::path::{Path, PathBuf};

use crate::model::{Prim, Shape};
use crate::{
    ApiSet, Config, Error, errors, generate, generate_errors, generate_module, message_list,
    parse_api_json,
};

const FIXTURE_MODULES: [&str; 2] = ["base_types", "shapes"];

fn fixture_path(module: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{module}.fixture.json"))
}

fn fixture_text(module: &str) -> String {
    std::fs::read_to_string(fixture_path(module)).unwrap()
}

/// A directory holding the fixtures as `<module>.api.json`, as `ApiSet::load` looks for them.
fn staged_fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for module in FIXTURE_MODULES {
        std::fs::copy(
            fixture_path(module),
            dir.path().join(format!("{module}.api.json")),
        )
        .unwrap();
    }
    dir
}

fn fixture_set() -> ApiSet {
    ApiSet::load(staged_fixtures().path(), &["shapes"]).unwrap()
}

#[test]
fn parses_every_field_shape() {
    let f = parse_api_json("shapes.api.json", &fixture_text("shapes")).unwrap();
    assert_eq!(f.module, "shapes");
    assert_eq!(f.version.as_deref(), Some("0.1.0"));
    assert_eq!(f.api_crc, Some(0x0bad_cafe));
    assert_eq!(f.imports, vec!["base_types".to_owned()]);

    let add = f.messages.iter().find(|m| m.name == "thing_add").unwrap();
    assert_eq!(add.crc, 0x314b_09e4);
    assert_eq!(add.fields[0].name, "client_index", "_vl_msg_id is dropped");
    let field = |n: &str| add.fields.iter().find(|x| x.name == n).unwrap();
    assert_eq!(field("name").shape, Shape::Array(16));
    assert_eq!(field("words").shape, Shape::Array(4));
    assert_eq!(field("protocol").default(), Some(&serde_json::json!(255)));
    assert_eq!(field("enable").default(), Some(&serde_json::json!("true")));
    assert!(add.options.contains_key("vat_help"));
    assert!(
        add.comment
            .as_deref()
            .unwrap()
            .contains("\\brief Add a thing")
    );

    let details = f
        .messages
        .iter()
        .find(|m| m.name == "thing_details")
        .unwrap();
    assert_eq!(
        details.fields[2].shape,
        Shape::Rest,
        "string x[] is a variable string"
    );
    let route = f.types.iter().find(|t| t.name == "route").unwrap();
    assert_eq!(route.fields[3].shape, Shape::Vla("n_hops".into()));
    let ev = f.messages.iter().find(|m| m.name == "thing_event").unwrap();
    assert_eq!(ev.fields.last().unwrap().shape, Shape::Rest, "legacy vla");

    let value = &f.unions[0];
    assert_eq!(value.fields[0].options["case"], "VALUE_NUMBER");
    let perm = f.enums.iter().find(|e| e.name == "perm").unwrap();
    assert!(perm.flags);
    assert_eq!(perm.width, Prim::U16);
    let tt = f.enums.iter().find(|e| e.name == "thing_type").unwrap();
    assert_eq!(tt.values.last().unwrap().1, 4_294_967_295);
    let mac = f.aliases.iter().find(|a| a.name == "mac_address").unwrap();
    assert_eq!((mac.target.as_str(), mac.length), ("u8", Some(6)));

    let svc = |n: &str| f.services.iter().find(|s| s.request == n).unwrap();
    assert_eq!(svc("thing_poke").reply, None);
    assert!(svc("thing_dump").stream);
    assert_eq!(
        svc("thing_get").stream_msg.as_deref(),
        Some("thing_get_details")
    );
    assert_eq!(
        svc("want_thing_events").events,
        vec!["thing_event".to_owned()]
    );
}

#[test]
fn duplicate_types_are_deduplicated() {
    let text =
        r#"{"types": [["t", ["u8", "a"]], ["t", ["u8", "a"]]], "unions": [], "messages": []}"#;
    let f = parse_api_json("dup.api.json", text).unwrap();
    assert_eq!(f.types.len(), 1);
}

#[test]
fn fixture_crcs_verify() {
    let set = fixture_set();
    let names: Vec<&str> = set.modules().collect();
    assert_eq!(names, vec!["base_types", "shapes"]);
}

#[test]
fn wrong_crc_is_refused_naming_file_and_message() {
    let text = fixture_text("shapes").replace("0x53b48f5d", "0x53b48f5e");
    let mut set = ApiSet::new();
    let err = set.add_json("shapes.api.json", &text).unwrap_err();
    match &err {
        Error::CrcMismatch {
            file,
            message,
            expected,
            computed,
        } => {
            assert_eq!(file, "shapes.api.json");
            assert_eq!(message, "thing_get_reply");
            assert_eq!(*expected, 0x53b4_8f5e);
            assert_eq!(*computed, 0x53b4_8f5d);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("thing_get_reply"));
}

/// Facts from VPP's memclnt.api (CRCs 0x35166268 and 0x5f0d99d6, VPP protocol notes §3.3):
/// VLAs of typedefs and fixed strings must fold into the CRC exactly like vppapigen.
#[test]
fn real_memclnt_crcs_recompute() {
    let text = r#"{
      "types": [
        ["module_version", ["u32", "major"], ["u32", "minor"], ["u32", "patch"], ["string", "name", 64]],
        ["message_table_entry", ["u16", "index"], ["string", "name", 64]]
      ],
      "messages": [
        ["sockclnt_create_reply", ["u16", "_vl_msg_id"], ["u32", "client_index"], ["u32", "context"],
         ["i32", "response"], ["u32", "index"], ["u16", "count"],
         ["vl_api_message_table_entry_t", "message_table", 0, "count"], {"crc": "0x35166268"}],
        ["api_versions_reply", ["u16", "_vl_msg_id"], ["u32", "context"], ["i32", "retval"],
         ["u32", "count"], ["vl_api_module_version_t", "api_versions", 0, "count"], {"crc": "0x5f0d99d6"}],
        ["control_ping", ["u16", "_vl_msg_id"], ["u32", "client_index"], ["u32", "context"], {"crc": "0x51077d14"}]
      ]
    }"#;
    let mut set = ApiSet::new();
    set.add_json("memclnt.api.json", text).unwrap();
    let list = message_list(&set, "memclnt").unwrap();
    let got: Vec<(String, &str)> = list.iter().map(|m| (m.name_crc(), m.header)).collect();
    assert_eq!(
        got,
        vec![
            ("api_versions_reply_5f0d99d6".to_owned(), "reply"),
            ("control_ping_51077d14".to_owned(), "request"),
            ("sockclnt_create_reply_35166268".to_owned(), "request"),
        ]
    );
}

#[test]
fn header_kinds_are_classified_from_fields() {
    let set = fixture_set();
    let list = message_list(&set, "shapes").unwrap();
    let kind = |n: &str| list.iter().find(|m| m.name == n).unwrap().header;
    assert_eq!(kind("thing_add"), "request");
    assert_eq!(kind("thing_add_reply"), "reply");
    assert_eq!(kind("thing_details"), "reply");
    assert_eq!(kind("thing_event"), "event");
    assert_eq!(kind("thing_shaped_reply"), "request");
    assert_eq!(kind("thing_poke"), "other");
}

#[test]
fn imported_types_are_owned_by_their_module() {
    let set = fixture_set();
    let own = set.own_types("shapes");
    assert!(own.contains("route") && own.contains("value") && own.contains("perm"));
    assert!(!own.contains("point") && !own.contains("color") && !own.contains("mac_address"));
    assert_eq!(set.owner_of("shapes", "point"), Some("base_types"));
    let code = generate_module(&set, "shapes", &Config::default()).unwrap();
    assert!(code.contains("pub at: crate::api::base_types::Point"));
    assert!(!code.contains("pub struct Point"));
    let base = generate_module(&set, "base_types", &Config::default()).unwrap();
    assert!(base.contains("pub struct Point"));
}

#[test]
fn generated_code_is_deterministic_and_marked() {
    let set = fixture_set();
    let a = generate(&set, &["shapes", "base_types"], &Config::default()).unwrap();
    let b = generate(
        &fixture_set(),
        &["base_types", "shapes"],
        &Config::default(),
    )
    .unwrap();
    assert_eq!(a, b);
    let names: Vec<&String> = a.keys().collect();
    assert_eq!(names, ["base_types.rs", "errors.rs", "mod.rs", "shapes.rs"]);
    assert!(a["shapes.rs"].starts_with(
        "//! Generated by `cargo xtask codegen` from shapes.api.json, do not edit.\n"
    ));
    for text in a.values() {
        syn::parse_file(text).unwrap();
    }
}

#[test]
fn generating_without_imports_fails() {
    let set = fixture_set();
    let err = generate(&set, &["shapes"], &Config::default()).unwrap_err();
    assert!(
        matches!(&err, Error::MissingModule { module, imported_by: Some(by) } if module == "base_types" && by == "shapes"),
        "{err:?}"
    );
    let err = ApiSet::load(staged_fixtures().path(), &["nope"]).unwrap_err();
    assert!(matches!(err, Error::MissingModule { .. }));
}

#[test]
fn keywords_and_names_are_rust_safe() {
    let set = fixture_set();
    let code = generate_module(&set, "shapes", &Config::default()).unwrap();
    assert!(code.contains("pub r#type: ThingType"));
    assert!(code.contains("pub struct WantThingEventsReply"));
    assert!(code.contains("pub const THING_MAX: Self = Self(4294967295);"));
    // duplicate enum values: the first name wins in `name()`
    assert!(code.contains("1 => Some(\"THING_B\")"));
    assert!(!code.contains("1 => Some(\"THING_ALSO_B\")"));
}

#[test]
fn services_become_trait_impls() {
    let set = fixture_set();
    let code = generate_module(&set, "shapes", &Config::default()).unwrap();
    for want in [
        "impl crate::codec::Request for ThingAdd {\n    type Reply = ThingAddReply;",
        "impl crate::codec::Dump for ThingDump {\n    type Details = ThingDetails;",
        "impl crate::codec::CursorGet for ThingGet {\n    type Reply = ThingGetReply;\n    type Details = ThingGetDetails;",
        "impl crate::codec::EventSubscribe for WantThingEvents {\n    type Event = ThingEvent;",
        "impl crate::codec::OneWay for ThingPoke {}",
    ] {
        assert!(code.contains(want), "missing {want}");
    }
}

#[test]
fn unknown_type_and_bad_vla_are_errors() {
    let text = r#"{"messages": [["m", ["u16", "_vl_msg_id"], ["vl_api_nope_t", "x"], {"crc": "0x00000000"}]]}"#;
    let err = ApiSet::new().add_json("bad.api.json", text).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownType { type_name, .. } if type_name == "vl_api_nope_t"),
        "{err:?}"
    );

    let text = r#"{"types": [["t", ["u8", "data", 0, "n"], ["u8", "n"]]]}"#;
    let mut set = ApiSet::new();
    set.add_json("late.api.json", text).unwrap();
    let err = generate(&set, &["late"], &Config::default()).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");

    let err = parse_api_json("x.api.json", "[1, 2").unwrap_err();
    assert!(matches!(err, Error::Json { .. }));
    let err = parse_api_json("x.api.json", r#"{"messages": [["m", ["u32", "a"]]]}"#).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
}

#[test]
fn bad_defaults_are_errors() {
    let text = r#"{"messages": [["m", ["u16", "_vl_msg_id"], ["u8", "x", {"default": 300}], {"crc": "0xc3a3a452"}]]}"#;
    let text = text.replace(
        "0xc3a3a452",
        &format!("{:#010x}", crate::crc::crc32(b"[['u8', 'x']]", 0)),
    );
    let mut set = ApiSet::new();
    set.add_json("d.api.json", &text).unwrap();
    let err = generate(&set, &["d"], &Config::default()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[test]
fn snapshot_fixture_modules() {
    let set = fixture_set();
    let cfg = Config {
        errors: false,
        ..Config::default()
    };
    let files = generate(&set, &["shapes", "base_types"], &cfg).unwrap();
    assert!(!files.contains_key("errors.rs"));
    insta::assert_snapshot!("shapes_rs", files["shapes.rs"]);
    insta::assert_snapshot!("base_types_rs", files["base_types.rs"]);
    insta::assert_snapshot!("mod_rs", files["mod.rs"]);
}

#[test]
fn api_files_are_found_recursively() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("core")).unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        fixture_path("base_types"),
        dir.path().join("core/base_types.api.json"),
    )
    .unwrap();
    std::fs::copy(
        fixture_path("shapes"),
        dir.path().join("plugins/shapes.api.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("plugins/notes.txt"), "ignored").unwrap();
    let found = crate::find_api_files(dir.path()).unwrap();
    let names: Vec<&String> = found.keys().collect();
    assert_eq!(names, ["base_types", "shapes"]);
    let set = ApiSet::load(dir.path(), &["shapes"]).unwrap();
    assert_eq!(set.modules().count(), 2);

    std::fs::copy(
        fixture_path("shapes"),
        dir.path().join("core/shapes.api.json"),
    )
    .unwrap();
    let err = crate::find_api_files(dir.path()).unwrap_err();
    assert!(matches!(err, Error::DuplicateModule { .. }), "{err:?}");
}

#[test]
fn messages_with_a_retval_implement_reply() {
    let files = generate(
        &fixture_set(),
        &["shapes", "base_types"],
        &Config::default(),
    )
    .unwrap();
    let shapes = &files["shapes.rs"];
    let set = fixture_set();
    let file = set.get("shapes").unwrap();
    let mut replies = 0;
    for m in &file.messages {
        let has = m.fields.iter().any(|f| f.name == "retval");
        let line = format!(
            "impl crate::codec::Reply for {} {{",
            crate::emit::camel(&m.name)
        );
        assert_eq!(shapes.contains(&line), has, "{}", m.name);
        replies += usize::from(has);
    }
    assert!(replies >= 3, "{replies}");
    assert!(!files["base_types.rs"].contains("codec::Reply"));
}

#[test]
fn the_shipped_error_table_parses() {
    let table = errors::parse_errno_table(errors::API_ERRNO).unwrap();
    assert!(table.len() > 100, "{}", table.len());
    let find = |name: &str| table.iter().find(|e| e.name == name).unwrap();
    let e = find("NO_SUCH_ENTRY");
    assert_eq!((e.value, e.message.as_str()), (-6, "No such entry"));
    assert_eq!(e.variant(), "NoSuchEntry");
    assert_eq!(e.c_name(), "VNET_API_ERROR_NO_SUCH_ENTRY");
    assert_eq!(find("EAGAIN").value, -165);
    assert_eq!(find("INVALID_VALUE_2").variant(), "InvalidValue2");
}

#[test]
fn bad_error_tables_are_refused() {
    for (text, why) in [
        ("-1 A one\n-1 B two", "clashes"),
        ("-1 A one\n-2 A two", "clashes"),
        ("-1 A_2 one\n-2 A2 two", "clashes"),
        ("0 OK fine", "success"),
        ("x A one", "not an i32"),
        ("-99999999999 A one", "not an i32"),
        ("-1 a one", "not [A-Z]"),
        ("-1 A-B one", "not [A-Z]"),
        ("-1 ONLY_NAME", "expected"),
        ("-1", "expected"),
        ("-1 UNKNOWN what", "reserved"),
    ] {
        let err = errors::parse_errno_table(text).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{text}: {err:?}");
        assert!(err.to_string().contains(why), "{text}: {err}");
    }
    let long = format!("-1 A {}", "x".repeat(201));
    assert!(errors::parse_errno_table(&long).is_err());
    let ok =
        errors::parse_errno_table("# comment\n\n  -2   TWO_WORDS   Two  words  \n7 POS Positive\n")
            .unwrap();
    assert_eq!(
        ok,
        vec![
            errors::ErrnoEntry {
                value: -2,
                name: "TWO_WORDS".into(),
                message: "Two  words".into()
            },
            errors::ErrnoEntry {
                value: 7,
                name: "POS".into(),
                message: "Positive".into()
            },
        ]
    );
}

#[test]
fn snapshot_errors_module() {
    let table = errors::parse_errno_table(
        "-6 NO_SUCH_ENTRY No such entry\n-8 INVALID_VALUE_2 Invalid value #2\n10 IN_PROGRESS Operation in progress\n",
    )
    .unwrap();
    let text = generate_errors(&table).unwrap();
    insta::assert_snapshot!("errors_rs", text);
}

#[test]
fn generate_adds_the_error_module_and_reserves_its_name() {
    let files = generate(
        &fixture_set(),
        &["shapes", "base_types"],
        &Config::default(),
    )
    .unwrap();
    assert!(files["errors.rs"].contains("pub enum ApiError"));
    assert!(files["mod.rs"].contains("pub use errors::ApiError;"));
    assert!(files["mod.rs"].contains(r#"pub const MODULES: &[&str] = &["base_types", "shapes"];"#));

    let mut set = ApiSet::new();
    set.add_json("errors.api.json", r#"{"messages": []}"#)
        .unwrap();
    let err = generate(&set, &["errors"], &Config::default()).unwrap_err();
    assert!(err.to_string().contains("generated error enum"), "{err}");
}
