//! The committed descriptor set: it decodes, names every RPC of the contract, and documents
//! every message, field, enum, enum value and RPC (the proto's comments reach reflection
//! clients).

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// Every RPC of `maglev.v1.Maglev`, in declaration order, with whether it streams replies.
const RPCS: &[(&str, bool)] = &[
    ("ListFrontends", false),
    ("GetFrontend", false),
    ("ListBackends", false),
    ("GetBackend", false),
    ("PauseBackend", false),
    ("ResumeBackend", false),
    ("EnableBackend", false),
    ("DisableBackend", false),
    ("ListHealthChecks", false),
    ("GetHealthCheck", false),
    ("SetFrontendPoolBackendWeight", false),
    ("WatchEvents", true),
    ("CheckConfig", false),
    ("ReloadConfig", false),
    ("GetVPPInfo", false),
    ("GetVPPLBState", false),
    ("SyncVPPLBState", false),
    ("GetVPPLBCounters", false),
    ("PlanVPPLBSync", false),
    ("PreviewChange", false),
    ("GetVersion", false),
];

fn file() -> FileDescriptorProto {
    let set = FileDescriptorSet::decode(maglev_api::FILE_DESCRIPTOR_SET).expect("decodes");
    assert_eq!(set.file.len(), 1, "maglev.v1 imports nothing");
    set.file.into_iter().next().unwrap()
}

#[test]
fn the_descriptor_set_names_every_rpc() {
    let file = file();
    assert_eq!(file.name(), "maglev/v1/maglev.proto");
    assert_eq!(file.package(), "maglev.v1");
    assert_eq!(file.service.len(), 1);
    let service = &file.service[0];
    assert_eq!(
        format!("{}.{}", file.package(), service.name()),
        maglev_api::SERVICE_NAME
    );
    let got: Vec<(&str, bool)> = service
        .method
        .iter()
        .map(|m| (m.name(), m.server_streaming()))
        .collect();
    assert_eq!(got, RPCS);
    assert!(service.method.iter().all(|m| !m.client_streaming()));
}

#[test]
fn requests_that_name_one_thing_carry_name() {
    let file = file();
    for request in [
        "GetFrontendRequest",
        "GetBackendRequest",
        "BackendRequest",
        "GetHealthCheckRequest",
    ] {
        let message = file
            .message_type
            .iter()
            .find(|m| m.name() == request)
            .unwrap_or_else(|| panic!("{request} missing"));
        let fields: Vec<&str> = message.field.iter().map(|f| f.name()).collect();
        assert_eq!(fields, ["name"], "{request}");
    }
}

/// Source-info paths (descriptor.proto field numbers): message_type = 4, its field = 2,
/// enum_type = 5, its value = 2, service = 6, its method = 2.
#[test]
fn every_message_field_enum_value_and_rpc_is_documented() {
    let file = file();
    let info = file.source_code_info.as_ref().expect("source info kept");
    let documented = |path: &[i32]| {
        info.location.iter().any(|l| {
            l.path == path
                && l.leading_comments
                    .as_deref()
                    .is_some_and(|c| !c.trim().is_empty())
        })
    };
    let mut missing = Vec::new();
    for (i, message) in file.message_type.iter().enumerate() {
        let i = i32::try_from(i).unwrap();
        if !documented(&[4, i]) {
            missing.push(message.name().to_owned());
        }
        for (j, field) in message.field.iter().enumerate() {
            if !documented(&[4, i, 2, i32::try_from(j).unwrap()]) {
                missing.push(format!("{}.{}", message.name(), field.name()));
            }
        }
        assert!(message.nested_type.is_empty() && message.enum_type.is_empty());
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        let i = i32::try_from(i).unwrap();
        if !documented(&[5, i]) {
            missing.push(e.name().to_owned());
        }
        for (j, value) in e.value.iter().enumerate() {
            if !documented(&[5, i, 2, i32::try_from(j).unwrap()]) {
                missing.push(format!("{}.{}", e.name(), value.name()));
            }
        }
        assert_eq!(e.value[0].number(), 0);
        assert!(e.value[0].name().ends_with("_UNSPECIFIED"), "{}", e.name());
    }
    for (i, service) in file.service.iter().enumerate() {
        let i = i32::try_from(i).unwrap();
        if !documented(&[6, i]) {
            missing.push(service.name().to_owned());
        }
        for (j, method) in service.method.iter().enumerate() {
            if !documented(&[6, i, 2, i32::try_from(j).unwrap()]) {
                missing.push(format!("rpc {}", method.name()));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}
