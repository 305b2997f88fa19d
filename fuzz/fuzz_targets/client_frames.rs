//! The client's socket frame decoder fed arbitrary server-side bytes in arbitrary chunks.
//!
//! Never panics, never buffers more than it was fed, never returns a payload above the limit,
//! and accounts for every byte: payloads + 16-byte headers + buffered == fed (until a framing
//! error, after which it stays failed). Complete frames are also run through the handshake
//! reply decoder (`sockclnt_create_reply`) and the message table, as the client does.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use vpp_binapi::client::{FRAME_HEADER_LEN, FrameDecoder, MessageTable};
use vpp_binapi::codec::decode_message_lenient;
use vpp_binapi::api::memclnt::SockclntCreateReply;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(limit) = u.int_in_range(0u32..=1 << 20) else {
        return;
    };
    let mut dec = FrameDecoder::new(limit);
    let (mut fed, mut popped, mut failed) = (0usize, 0usize, false);
    while !u.is_empty() {
        let Ok(n) = u.int_in_range(1usize..=4096) else {
            break;
        };
        let Ok(chunk) = u.bytes(n.min(u.len())) else {
            break;
        };
        dec.feed(chunk);
        if !failed {
            fed += chunk.len();
        }
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= limit as usize);
                    popped += FRAME_HEADER_LEN + frame.len();
                    if let Ok((_, reply)) = decode_message_lenient::<SockclntCreateReply>(&frame) {
                        let table = MessageTable::from_entries(
                            reply
                                .message_table
                                .iter()
                                .map(|e| (e.index, e.name.clone())),
                        );
                        assert!(table.len() <= reply.message_table.len());
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    assert!(dec.next_frame().is_err(), "a framing error is sticky");
                    break;
                }
            }
        }
        if !failed {
            assert_eq!(
                popped + dec.buffered(),
                fed,
                "every fed byte is accounted for"
            );
        }
    }
});
