//! The committed generated code and descriptor set match what the generator makes from the
//! proto now.

use std::path::Path;

use maglev_api::codegen::{self, Mode};

#[test]
fn committed_generated_code_is_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = codegen::run(dir, Mode::Check) {
        panic!("{e}");
    }
}

#[test]
fn committed_code_is_what_generate_returns() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = codegen::generate(dir).expect("the proto compiles");
    assert_eq!(fresh.descriptor_set, maglev_api::FILE_DESCRIPTOR_SET);
    assert!(fresh.code.starts_with("// @generated"));
    assert!(fresh.code.contains(r#"#[cfg(feature = "client")]"#));
    assert!(fresh.code.contains(r#"#[cfg(feature = "server")]"#));
}

#[test]
fn check_mode_reports_a_stale_file_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto_dir = tmp.path().join("proto/maglev/v1");
    std::fs::create_dir_all(&proto_dir).unwrap();
    std::fs::create_dir_all(tmp.path().join("src/gen")).unwrap();
    std::fs::copy(
        src.join(codegen::PROTO_FILE),
        tmp.path().join(codegen::PROTO_FILE),
    )
    .unwrap();
    std::fs::copy(
        src.join(codegen::CODE_FILE),
        tmp.path().join(codegen::CODE_FILE),
    )
    .unwrap();
    std::fs::write(tmp.path().join(codegen::DESCRIPTOR_FILE), b"stale").unwrap();

    match codegen::run(tmp.path(), Mode::Check) {
        Err(codegen::CodegenError::Stale(files)) => {
            assert_eq!(
                files,
                vec![Path::new(codegen::DESCRIPTOR_FILE).to_path_buf()]
            );
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(tmp.path().join(codegen::DESCRIPTOR_FILE)).unwrap(),
        b"stale"
    );

    let written = codegen::run(tmp.path(), Mode::Write).unwrap();
    assert_eq!(
        written,
        vec![Path::new(codegen::DESCRIPTOR_FILE).to_path_buf()]
    );
    codegen::run(tmp.path(), Mode::Check).expect("fresh after a write");
}

#[test]
fn a_broken_proto_is_a_compile_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proto/maglev/v1")).unwrap();
    std::fs::write(
        tmp.path().join(codegen::PROTO_FILE),
        "syntax = \"proto3\";\npackage maglev.v1;\nmessage {",
    )
    .unwrap();
    let err = codegen::generate(tmp.path()).unwrap_err();
    assert!(matches!(err, codegen::CodegenError::Compile(_)), "{err:?}");
}
