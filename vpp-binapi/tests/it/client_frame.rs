//! The frame decoder: reassembly across arbitrary chunk boundaries, length limits, and arbitrary
//! input (no panic, bounded memory).

use proptest::prelude::*;
use vpp_binapi::client::{FRAME_HEADER_LEN, FrameDecoder, FrameError, frame_header};

fn wire(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Vec::new();
    for p in payloads {
        let mut h = frame_header(p.len() as u32);
        // Bytes outside the length field are garbage from VPP's point of view.
        h[..8].copy_from_slice(&[0xFF; 8]);
        h[12..].copy_from_slice(&[0x11; 4]);
        w.extend_from_slice(&h);
        w.extend_from_slice(p);
    }
    w
}

/// Feeds `bytes` in chunks cut at `cuts`, popping every complete frame after each chunk.
fn run(dec: &mut FrameDecoder, bytes: &[u8], cuts: &[usize]) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for cut in cuts {
        dec.feed(&bytes[at..cut]);
        at = cut;
        while let Some(f) = dec.next_frame()? {
            out.push(f.to_vec());
        }
    }
    Ok(out)
}

#[test]
fn header_layout_is_zeros_and_big_endian_length() {
    assert_eq!(
        frame_header(0x0102_0304),
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]
    );
}

#[test]
fn byte_by_byte_reassembly() {
    let payloads = vec![b"hello".to_vec(), vec![], vec![7; 300]];
    let bytes = wire(&payloads);
    let mut dec = FrameDecoder::new(1024);
    let cuts: Vec<usize> = (0..bytes.len()).collect();
    assert_eq!(run(&mut dec, &bytes, &cuts).unwrap(), payloads);
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn length_at_the_limit_is_accepted_and_above_is_rejected_for_good() {
    let mut dec = FrameDecoder::new(4);
    dec.feed(&wire(&[vec![1, 2, 3, 4]]));
    assert_eq!(dec.next_frame().unwrap().unwrap().as_ref(), &[1, 2, 3, 4]);

    dec.feed(&frame_header(5));
    let err = FrameError::TooLarge { len: 5, limit: 4 };
    assert_eq!(dec.next_frame(), Err(err.clone()));
    // The stream is out of sync: the decoder stays failed and drops what it is fed.
    dec.feed(&wire(&[vec![1]]));
    assert_eq!(dec.next_frame(), Err(err));
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn huge_announced_length_is_rejected_from_the_header_alone() {
    let mut dec = FrameDecoder::new(64 << 20);
    dec.feed(&frame_header(u32::MAX)[..FRAME_HEADER_LEN - 1]);
    assert_eq!(dec.next_frame(), Ok(None));
    dec.feed(&[0]);
    assert_eq!(
        dec.next_frame(),
        Err(FrameError::TooLarge {
            len: u32::MAX,
            limit: 64 << 20
        })
    );
}

proptest! {
    #[test]
    fn frames_survive_any_chunking(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let bytes = wire(&payloads);
        let mut dec = FrameDecoder::new(200);
        prop_assert_eq!(run(&mut dec, &bytes, &cuts).unwrap(), payloads);
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_memory_stays_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..512), 0..64),
        limit in 0u32..4096,
    ) {
        let mut dec = FrameDecoder::new(limit);
        let mut failed = false;
        for chunk in &chunks {
            dec.feed(chunk);
            loop {
                match dec.next_frame() {
                    Ok(Some(f)) => prop_assert!(f.len() <= limit as usize),
                    Ok(None) => break,
                    Err(FrameError::TooLarge { len, limit: l }) => {
                        prop_assert!(len > l);
                        failed = true;
                        break;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("unexpected {e:?}"))),
                }
            }
            // Only a frame still being assembled is buffered: header plus at most `limit`.
            prop_assert!(dec.buffered() < FRAME_HEADER_LEN + limit as usize);
            if failed {
                prop_assert_eq!(dec.buffered(), 0);
            }
        }
    }
}
