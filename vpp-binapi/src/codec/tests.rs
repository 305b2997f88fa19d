//! Unit tests of the codec runtime against generated messages and VPP golden encodings.

use super::*;
use crate::api::ip_types::{Address, AddressFamily, Prefix};
use crate::api::{lb, lb_types, memclnt, vlib};
use std::net::Ipv4Addr;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn v4_prefix(a: [u8; 4], len: u8) -> Prefix {
    Prefix {
        address: Ipv4Addr::from(a).into(),
        len,
    }
}

/// vpp_papi 2.4.2 encoding of `lb_add_del_as` (VPP protocol notes §7.2).
#[test]
fn lb_add_del_as_matches_papi_golden_vector() {
    let msg = lb::LbAddDelAs {
        pfx: v4_prefix([10, 0, 0, 1], 32),
        protocol: 6,
        port: 80,
        as_address: Ipv4Addr::new(10, 1, 1, 1).into(),
        is_del: false,
        is_flush: false,
    };
    let want = hex(
        "0258 80000001 00000007 00 0a000001 000000000000000000000000 20 06 0050 00 0a010101 000000000000000000000000 00 00",
    );
    let got = encode_message_to_vec(&msg, 600, 0x8000_0001, 7);
    assert_eq!(got, want);
    assert_eq!(got.len(), 50);
    let (h, back) = decode_message::<lb::LbAddDelAs>(&got).unwrap();
    assert_eq!(h, Header::new(600, 0x8000_0001, 7));
    assert_eq!(back, msg);
    assert_eq!(read_context(&got, HeaderKind::Request), Some(7));
    assert_eq!(read_msg_id(&got), Some(600));
}

/// vpp_papi 2.4.2 encoding of `lb_as_v2_details` (VPP protocol notes §7.2).
#[test]
fn lb_as_v2_details_matches_papi_golden_vector() {
    let raw = hex(
        "0259 00000007 00 0a000001 000000000000000000000000 20 06 0050 00 0a010101 000000000000000000000000 01 00000005 64 00000155",
    );
    assert_eq!(raw.len(), 54);
    let (h, m) = decode_message::<lb::LbAsV2Details>(&raw).unwrap();
    assert_eq!(h.msg_id, 601);
    assert_eq!(h.context, Some(7));
    assert_eq!(h.client_index, None);
    assert_eq!(m.vip.pfx, v4_prefix([10, 0, 0, 1], 32));
    assert_eq!(m.vip.protocol.0, 6);
    assert_eq!(m.vip.port, 80);
    assert_eq!(m.app_srv.to_ip().unwrap(), Ipv4Addr::new(10, 1, 1, 1));
    assert_eq!(
        (m.flags, m.in_use_since, m.weight, m.num_buckets),
        (1, 5, 100, 341)
    );
    assert_eq!(encode_message_to_vec(&m, 601, 0, 7), raw);
    assert_eq!(read_context(&raw, lb::LbAsV2Details::HEADER), Some(7));
}

#[test]
fn exact_decode_rejects_trailing_bytes_lenient_accepts() {
    let msg = lb::LbAddDelAsV2::default();
    let mut raw = encode_message_to_vec(&msg, 1, 2, 3);
    raw.push(0xff);
    let err = decode_message::<lb::LbAddDelAsV2>(&raw).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::TrailingBytes { extra: 1 });
    assert_eq!(err.message, "lb_add_del_as_v2");
    assert_eq!(err.offset, raw.len() - 1);
    let (_, back) = decode_message_lenient::<lb::LbAddDelAsV2>(&raw).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn defaults_come_from_the_api_json() {
    let m = lb::LbAddDelAsV2::default();
    assert_eq!(m.weight, 100);
    assert_eq!(m.protocol, 255);
    let v = lb::LbAddDelVip::default();
    assert_eq!(v.new_flows_table_length, 1024);
}

#[test]
fn short_input_names_field_and_offset() {
    let msg = lb::LbAddDelAsV2::default();
    let raw = encode_message_to_vec(&msg, 1, 2, 3);
    let err = decode_message::<lb::LbAddDelAsV2>(&raw[..raw.len() - 2]).unwrap_err();
    assert_eq!(err.field, "is_del");
    assert_eq!(err.offset, raw.len() - 2);
    assert!(matches!(
        err.kind,
        DecodeErrorKind::TooShort {
            needed: 1,
            remaining: 0
        }
    ));
    let err = decode_message::<lb::LbAddDelAsV2>(&raw[..5]).unwrap_err();
    assert_eq!(err.field, "client_index");
}

#[test]
fn vla_count_is_written_from_vec_and_checked_before_allocating() {
    let reply = memclnt::SockclntCreateReply {
        response: 0,
        index: 0x8000_0001,
        message_table: vec![
            memclnt::MessageTableEntry {
                index: 15,
                name: "sockclnt_create_455fb9c4".into(),
            },
            memclnt::MessageTableEntry {
                index: 16,
                name: "sockclnt_create_reply_35166268".into(),
            },
        ],
    };
    assert_eq!(memclnt::SockclntCreateReply::HEADER, HeaderKind::Request);
    let raw = encode_message_to_vec(&reply, 16, 0, 0x7b);
    assert_eq!(raw.len(), 20 + 2 * 66);
    assert_eq!(&raw[18..20], &[0, 2]); // u16 count
    assert_eq!(read_context(&raw, HeaderKind::Request), Some(0x7b));
    let (_, back) = decode_message::<memclnt::SockclntCreateReply>(&raw).unwrap();
    assert_eq!(back, reply);

    // a huge count with few bytes must fail before allocating
    let mut bad = raw[..20].to_vec();
    bad[18] = 0xff;
    bad[19] = 0xff;
    let err = decode_message::<memclnt::SockclntCreateReply>(&bad).unwrap_err();
    assert_eq!(err.field, "message_table");
    assert!(matches!(
        err.kind,
        DecodeErrorKind::CountTooLarge { count: 65535, .. }
    ));
}

#[test]
fn fixed_strings_are_truncated_and_nul_padded() {
    let long = "x".repeat(100);
    let m = memclnt::SockclntCreate { name: long };
    let body = encode_body_to_vec(&m);
    assert_eq!(body.len(), 64);
    assert_eq!(body[63], 0);
    let back: memclnt::SockclntCreate = decode_body(&body).unwrap();
    assert_eq!(back.name, "x".repeat(63));
    // never split a UTF-8 character
    let m = memclnt::SockclntCreate {
        name: format!("{}é", "a".repeat(62)),
    };
    let back: memclnt::SockclntCreate = decode_body(&encode_body_to_vec(&m)).unwrap();
    assert_eq!(back.name, "a".repeat(62));
    // sockclnt_create is reply-shaped: context at offset 2, name at 6
    assert_eq!(memclnt::SockclntCreate::HEADER, HeaderKind::Reply);
}

#[test]
fn invalid_utf8_is_a_typed_error() {
    let mut body = vec![0u8; 64];
    body[0] = 0xff;
    let err = decode_body::<memclnt::SockclntCreate>(&body).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidUtf8);
    assert_eq!(err.field, "name");
}

#[test]
fn variable_strings_round_trip_and_reject_bad_lengths() {
    let m = vlib::CliInband {
        cmd: "show version".into(),
    };
    let body = encode_body_to_vec(&m);
    assert_eq!(&body[..4], &[0, 0, 0, 12]);
    assert_eq!(decode_body::<vlib::CliInband>(&body).unwrap(), m);
    let err = decode_body::<vlib::CliInband>(&[0xff, 0xff, 0xff, 0xff, b'a']).unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::CountTooLarge { .. }));
}

#[test]
fn f64_is_little_endian() {
    let m = vlib::GetF64EndianValue::default();
    assert_eq!(m.f64_one, 1.0);
    let body = encode_body_to_vec(&m);
    assert_eq!(body, 1.0f64.to_le_bytes());
}

#[test]
fn enums_keep_unknown_values() {
    let m = lb::LbAddDelVip {
        encap: lb_types::LbEncapType(77),
        ..Default::default()
    };
    let back: lb::LbAddDelVip = decode_body(&encode_body_to_vec(&m)).unwrap();
    assert_eq!(back.encap, lb_types::LbEncapType(77));
    assert_eq!(format!("{:?}", back.encap), "LbEncapType(77)");
    assert_eq!(
        lb_types::LbEncapType::LB_API_ENCAP_TYPE_L3DSR.name(),
        Some("LB_API_ENCAP_TYPE_L3DSR")
    );
    assert_eq!(AddressFamily::ADDRESS_IP6, AddressFamily(1));
}

#[test]
fn header_kinds_and_offsets() {
    assert_eq!(HeaderKind::Request.header_len(), 10);
    assert_eq!(HeaderKind::Reply.context_offset(), Some(2));
    assert_eq!(HeaderKind::Event.context_offset(), None);
    assert_eq!(HeaderKind::Event.client_index_offset(), Some(2));
    assert_eq!(HeaderKind::Other.header_len(), 2);
    assert_eq!(memclnt::MemclntDelete::HEADER, HeaderKind::Other);
    assert_eq!(memclnt::ControlPingReply::HEADER, HeaderKind::Reply);
    // control_ping_reply keeps client_index as a body field
    let r = memclnt::ControlPingReply {
        retval: -3,
        client_index: 9,
        vpe_pid: 42,
    };
    let raw = encode_message_to_vec(&r, 20, 1234, 55);
    assert_eq!(raw.len(), 2 + 4 + 12);
    assert_eq!(read_context(&raw, HeaderKind::Reply), Some(55));
    assert_eq!(read_context(&raw[..3], HeaderKind::Reply), None);
}

#[test]
fn registry_finds_and_decodes_any_message() {
    let info = crate::api::find_message("control_ping_51077d14").unwrap();
    assert_eq!(info.name, "control_ping");
    assert_eq!(info.module, "memclnt");
    let m = crate::api::decode_any("lb_conf_get_51077d14", &[]).unwrap();
    assert_eq!(m.name(), "lb_conf_get");
    assert!(m.eq_dyn(&lb::LbConfGet {}));
    assert!(matches!(
        crate::api::decode_any("nope_00000000", &[]),
        Err(DecodeAnyError::UnknownMessage(_))
    ));
    let names: Vec<&str> = crate::api::MESSAGES.iter().map(|m| m.name_crc).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

#[test]
fn address_default_is_ipv4_any() {
    let a = Address::default();
    assert_eq!(a.af, AddressFamily::ADDRESS_IP4);
    assert_eq!(a.to_ip().unwrap(), Ipv4Addr::UNSPECIFIED);
}

mod fixture_shapes {
    //! Round trips of the generator fixture modules (every `.api.json` shape).

    use super::super::fixture::{base_types, decode_any, shapes};
    use super::super::*;

    fn round_trip<M: Message>(m: &M, id: u16) -> Vec<u8> {
        let raw = encode_message_to_vec(m, id, 0x8000_0001, 0xabcd);
        assert_eq!(
            raw.len(),
            M::HEADER.header_len() + m.body_len(),
            "{}",
            M::NAME
        );
        let (h, back) = decode_message::<M>(&raw).unwrap();
        assert_eq!(&back, m);
        assert_eq!(h.msg_id, id);
        raw
    }

    fn assert_request<R: Request<Reply = P>, P: Message>() {}
    fn assert_dump<D: Dump<Details = P>, P: Message>() {}
    fn assert_cursor<C: CursorGet<Reply = P, Details = Q>, P: Message, Q: Message>() {}
    fn assert_events<E: EventSubscribe<Event = P>, P: Message>() {}
    fn assert_one_way<O: OneWay>() {}

    #[test]
    fn services_map_to_traits() {
        assert_request::<shapes::ThingAdd, shapes::ThingAddReply>();
        assert_dump::<shapes::ThingDump, shapes::ThingDetails>();
        assert_cursor::<shapes::ThingGet, shapes::ThingGetReply, shapes::ThingGetDetails>();
        assert_events::<shapes::WantThingEvents, shapes::ThingEvent>();
        assert_request::<shapes::WantThingEvents, shapes::WantThingEventsReply>();
        assert_one_way::<shapes::ThingPoke>();
    }

    #[test]
    fn request_with_every_scalar_shape() {
        let d = shapes::ThingAdd::default();
        assert_eq!(d.color, base_types::Color::COLOR_BLUE);
        assert_eq!((d.protocol, d.enable, d.scale), (255, true, 1.0));
        let m = shapes::ThingAdd {
            index: 7,
            mac: base_types::MacAddress([1, 2, 3, 4, 5, 6]),
            value: shapes::Value::from_point(base_types::Point { x: -1, y: 2 }),
            perms: shapes::Perm::PERM_READ | shapes::Perm::PERM_EXEC,
            origin: base_types::Point { x: 3, y: -4 },
            name: "thing".into(),
            r#type: shapes::ThingType::THING_MAX,
            words: [1, 2, 3, 0xffff_ffff],
            ..d
        };
        let raw = round_trip(&m, 100);
        assert_eq!(raw.len(), 10 + 75);
        assert_eq!(read_context(&raw, HeaderKind::Request), Some(0xabcd));
        assert_eq!(m.value.point(), base_types::Point { x: -1, y: 2 });
        assert_eq!(
            m.value.number(),
            0xffff_ffff,
            "first 4 bytes of the point arm"
        );
        assert_eq!(shapes::Value::from_number(5).0, [0, 0, 0, 5, 0, 0, 0, 0]);
        assert!(m.perms.contains(shapes::Perm::PERM_EXEC));
        assert!(!m.perms.contains(shapes::Perm::PERM_WRITE));
        assert_eq!(format!("{:?}", m.perms), "Perm(PERM_READ | PERM_EXEC)");
        assert_eq!(
            format!("{:?}", shapes::Perm(8 | 2)),
            "Perm(PERM_WRITE | 0x8)"
        );
    }

    #[test]
    fn details_with_var_string_and_nested_vla() {
        let hop = |x, label: &str| shapes::Labelled {
            at: base_types::Point { x, y: 0 },
            label: label.into(),
            weight: 0.5,
        };
        let m = shapes::ThingDetails {
            index: 3,
            description: "a longer description ✓".into(),
            route: shapes::Route {
                table_id: 9,
                corners: [
                    base_types::Point { x: 1, y: 1 },
                    base_types::Point { x: 2, y: 2 },
                ],
                hops: vec![hop(1, "a"), hop(2, "bb"), hop(3, "ccc")],
            },
        };
        round_trip(&m, 5);
        // the u16 count of hops sits right before the hops
        let body = encode_body_to_vec(&m);
        let count_at = 4 + 4 + m.description.len() + 4 + 16;
        assert_eq!(&body[count_at..count_at + 2], &[0, 3]);
    }

    #[test]
    fn u8_vla_is_truncated_to_the_count_type() {
        let m = shapes::ThingGetDetails {
            blobs: vec![
                shapes::Blob { data: vec![7; 300] },
                shapes::Blob { data: vec![] },
            ],
        };
        let body = encode_body_to_vec(&m);
        assert_eq!(body.len(), m.body_len());
        assert_eq!(body.len(), 4 + 1 + 255 + 1);
        let back: shapes::ThingGetDetails = decode_body(&body).unwrap();
        assert_eq!(back.blobs[0].data, vec![7; 255]);
        assert_eq!(back.blobs[1].data, Vec::<u8>::new());

        let err = decode_body::<shapes::ThingGetDetails>(&[0, 0, 0, 9, 0]).unwrap_err();
        assert_eq!(err.field, "blobs");
        assert!(matches!(
            err.kind,
            DecodeErrorKind::CountTooLarge { count: 9, .. }
        ));
    }

    #[test]
    fn event_other_and_request_shaped_headers() {
        let ev = shapes::ThingEvent {
            pid: 42,
            index: 1,
            stamps: vec![1, u64::MAX],
        };
        let raw = round_trip(&ev, 77);
        assert_eq!(raw.len(), 6 + 8 + 16);
        let (h, _) = decode_message::<shapes::ThingEvent>(&raw).unwrap();
        assert_eq!((h.client_index, h.context), (Some(0x8000_0001), None));
        assert_eq!(read_context(&raw, shapes::ThingEvent::HEADER), None);
        assert_eq!(
            read_client_index(&raw, HeaderKind::Event),
            Some(0x8000_0001)
        );
        // the legacy rest-of-message vla must consume whole elements
        let err = decode_message::<shapes::ThingEvent>(&raw[..raw.len() - 1]).unwrap_err();
        assert_eq!(err.field, "stamps");

        let poke = shapes::ThingPoke { dummy: 3 };
        assert_eq!(round_trip(&poke, 9), vec![0, 9, 3]);

        let shaped = shapes::ThingShapedReply { retval: -1 };
        assert_eq!(shaped.check(), Err(ApiError::Unspecified));
        let raw = round_trip(&shaped, 10);
        assert_eq!(shapes::ThingShapedReply::HEADER, HeaderKind::Request);
        assert_eq!(read_context(&raw, HeaderKind::Request), Some(0xabcd));
    }

    #[test]
    fn fixture_registry_decodes_by_name_crc() {
        let body = encode_body_to_vec(&shapes::ThingGetReply {
            retval: -165,
            cursor: 4,
        });
        let m = decode_any("thing_get_reply_53b48f5d", &body).unwrap();
        assert!(m.eq_dyn(&shapes::ThingGetReply {
            retval: -165,
            cursor: 4
        }));
        let mut again = Vec::new();
        m.encode_body_dyn(&mut again);
        assert_eq!(again, body);
        let err = decode_any("thing_get_reply_53b48f5d", &body[..3]).unwrap_err();
        assert!(matches!(err, DecodeAnyError::Decode(_)));
    }
}

/// Every generated message decodes an all-zero body of exactly its minimum size (every VLA and
/// string empty) and encodes back to the same bytes; shorter bodies fail as too short, longer
/// ones as trailing bytes.
#[test]
fn every_generated_message_round_trips_its_zero_body() {
    let zeros = [0u8; 4096];
    assert_eq!(crate::api::MESSAGES.len(), 173);
    for info in crate::api::MESSAGES {
        let len = (0..zeros.len())
            .find(|&l| (info.decode_body)(&zeros[..l]).is_ok())
            .unwrap_or_else(|| panic!("{} never decodes", info.name_crc));
        let m = (info.decode_body)(&zeros[..len]).unwrap();
        assert_eq!(m.name_crc(), info.name_crc);
        assert_eq!(m.header_kind(), info.header);
        let mut out = Vec::new();
        m.encode_body_dyn(&mut out);
        assert_eq!(out, &zeros[..len], "{}", info.name_crc);
        let err = (info.decode_body)(&zeros[..len + 1]).unwrap_err();
        assert_eq!(
            err.kind,
            DecodeErrorKind::TrailingBytes { extra: 1 },
            "{}",
            info.name_crc
        );
        if len > 0 {
            let err = (info.decode_body)(&zeros[..len - 1]).unwrap_err();
            assert!(
                matches!(err.kind, DecodeErrorKind::TooShort { .. }),
                "{}",
                info.name_crc
            );
        }
    }
}

/// Arbitrary bytes never panic any generated decoder, and whatever decodes re-encodes to a
/// canonical form that is stable under another decode/encode round.
#[test]
fn random_bodies_never_panic_and_canonical_form_is_stable() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut decoded = 0;
    for info in crate::api::MESSAGES {
        for round in 0..300 {
            let len = (next() % 400) as usize;
            // mostly small values so that counts and lengths are often plausible
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    let v = next();
                    if round % 2 == 0 {
                        (v % 3) as u8
                    } else {
                        v as u8
                    }
                })
                .collect();
            let exact = (info.decode_body)(&body);
            let Ok(m) = (info.decode_body_lenient)(&body) else {
                assert!(exact.is_err(), "{}", info.name);
                continue;
            };
            decoded += 1;
            let mut once = Vec::new();
            m.encode_body_dyn(&mut once);
            let again = (info.decode_body)(&once)
                .unwrap_or_else(|e| panic!("{}: canonical form does not decode: {e}", info.name));
            let mut twice = Vec::new();
            again.encode_body_dyn(&mut twice);
            assert_eq!(once, twice, "{}", info.name);
        }
    }
    assert!(decoded > 100, "only {decoded} random bodies decoded");
}

mod api_error {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_named_error_round_trips_through_its_retval() {
        let mut values = HashSet::new();
        let mut names = HashSet::new();
        for e in ApiError::ALL {
            let v = e.retval();
            assert_ne!(v, 0, "{e:?}");
            assert_eq!(ApiError::from_retval(v), Some(e), "{e:?}");
            assert!(values.insert(v), "value {v} twice");
            let name = e.name().unwrap();
            assert!(name.starts_with("VNET_API_ERROR_"), "{name}");
            assert!(names.insert(name), "name {name} twice");
            let msg = e.message().unwrap();
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("{name} ({v}): ")), "{shown}");
            assert!(
                shown.to_lowercase().ends_with(&msg.to_lowercase()),
                "{shown} / {msg}"
            );
        }
        assert!(ApiError::ALL.len() > 100, "{}", ApiError::ALL.len());
    }

    #[test]
    fn display_names_the_error_and_lowercases_its_message() {
        assert_eq!(
            ApiError::NoSuchEntry.to_string(),
            "VNET_API_ERROR_NO_SUCH_ENTRY (-6): no such entry"
        );
        assert_eq!(ApiError::from_retval(-81), Some(ApiError::ValueExist));
        assert_eq!(
            ApiError::ValueExist.to_string(),
            "VNET_API_ERROR_VALUE_EXIST (-81): value already exists"
        );
        // an acronym keeps its case
        assert_eq!(
            ApiError::Ip6MulticastAddressNotPresent.to_string(),
            "VNET_API_ERROR_IP6_MULTICAST_ADDRESS_NOT_PRESENT (-83): IP6 multicast address required"
        );
    }

    #[test]
    fn unknown_values_are_kept_as_numbers() {
        for v in [-1234, -21, 7, i32::MIN, i32::MAX] {
            let e = ApiError::from_retval(v).unwrap();
            assert_eq!(e, ApiError::Unknown(v));
            assert_eq!(e.retval(), v);
            assert_eq!((e.name(), e.message()), (None, None));
            assert_eq!(e.to_string(), format!("unknown VPP API error ({v})"));
        }
        assert_eq!(ApiError::from_retval(0), None);
    }

    #[test]
    fn replies_check_their_retval() {
        assert_eq!(lb::LbAddDelVipV2Reply { retval: 0 }.check(), Ok(()));
        assert_eq!(lb::LbAddDelVipV2Reply { retval: 0 }.retval(), 0);
        let r = lb::LbAsSetWeightReply { retval: -6 };
        assert_eq!(r.check(), Err(ApiError::NoSuchEntry));
        let conf = lb::LbConfGetReply {
            retval: -73,
            ..Default::default()
        };
        let err: Box<dyn std::error::Error> = conf.check().unwrap_err().into();
        assert_eq!(
            err.to_string(),
            "VNET_API_ERROR_INVALID_ARGUMENT (-73): invalid argument"
        );
    }
}
