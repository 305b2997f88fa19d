//! Every message type, built by `arbitrary`: value -> encode -> decode must give the value back,
//! for the body and for the whole message with its header. The message type is chosen by the
//! input, via `vpp_binapi::api::visit_messages`.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use vpp_binapi::codec::{
    MessageVisitor, VisitedMessage, decode_body, decode_message, encode_body_to_vec,
    encode_message_to_vec,
};

struct Pick<'a, 'b> {
    target: usize,
    index: usize,
    u: &'a mut Unstructured<'b>,
}

impl MessageVisitor for Pick<'_, '_> {
    fn visit<M: VisitedMessage>(&mut self) {
        let mine = self.index == self.target;
        self.index += 1;
        if !mine {
            return;
        }
        let Ok(x) = M::arbitrary(self.u) else {
            return;
        };
        let body = encode_body_to_vec(&x);
        assert_eq!(body.len(), x.body_len(), "{}: body_len", M::NAME_CRC);
        let y: M = decode_body(&body).expect("our own encoding decodes");
        assert_eq!(y, x, "{}: decode(encode(x)) != x", M::NAME_CRC);
        let whole = encode_message_to_vec(&x, 77, 0x8000_0001, 0xfeed_f00d);
        let (h, z) = decode_message::<M>(&whole).expect("whole message decodes");
        assert_eq!(z, x, "{}: whole-message round trip", M::NAME_CRC);
        assert_eq!(h.msg_id, 77);
        assert_eq!(encode_body_to_vec(&y), body, "{}: re-encoding", M::NAME_CRC);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(target) = u.choose_index(vpp_binapi::api::MESSAGES.len()) else {
        return;
    };
    let mut pick = Pick {
        target,
        index: 0,
        u: &mut u,
    };
    vpp_binapi::api::visit_messages(&mut pick);
});
