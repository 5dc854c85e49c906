//! Frame header, the payload cap and the incremental reader.

use hastmon::proto::frame::{FrameError, FrameReader, HEADER_LEN, MAX_PAYLOAD, parse_header};
use hastmon::proto::msg::Handshake1Reply;
use hastmon::proto::{NvList, decode_frame, encode_frame};

fn heartbeat_frame(seq: u64) -> Vec<u8> {
    let mut nv = NvList::new();
    nv.add_u8("cmd", 1).add_u8("state", 3).add_u64("seq", seq);
    encode_frame(&nv).unwrap()
}

#[test]
fn empty_frame_is_an_empty_list() {
    assert!(decode_frame(&[0, 0, 0, 0, 0]).unwrap().is_empty());
    assert_eq!(encode_frame(&NvList::new()).unwrap(), [0, 0, 0, 0, 0]);
    let mut r = FrameReader::new();
    r.push(&[0, 0, 0, 0, 0]);
    assert_eq!(r.next_payload(), Ok(Some(Vec::new())));
    assert_eq!(r.next_payload(), Ok(None));
}

#[test]
fn nonzero_version_is_rejected_and_poisons_the_reader() {
    assert_eq!(
        parse_header([1, 0, 0, 0, 0]),
        Err(FrameError::BadVersion { version: 1 })
    );
    let mut r = FrameReader::new();
    r.push(&[7, 0, 0, 0, 0]);
    assert_eq!(r.next_payload(), Err(FrameError::BadVersion { version: 7 }));
    r.push(&heartbeat_frame(1));
    assert_eq!(r.next_payload(), Err(FrameError::BadVersion { version: 7 }));
    assert_eq!(r.buffered(), 0);
}

#[test]
fn length_above_the_cap_is_rejected_from_the_header_alone() {
    let max = (MAX_PAYLOAD as u32).to_le_bytes();
    assert_eq!(
        parse_header([0, max[0], max[1], max[2], max[3]]),
        Ok(MAX_PAYLOAD)
    );
    let over = (MAX_PAYLOAD as u32 + 1).to_le_bytes();
    let mut r = FrameReader::new();
    r.push(&[0, over[0], over[1], over[2], over[3]]);
    assert_eq!(
        r.next_payload(),
        Err(FrameError::Oversize {
            length: MAX_PAYLOAD as u64 + 1,
            limit: MAX_PAYLOAD
        })
    );
    // The local control socket's reader takes more.
    let mut r = FrameReader::with_limit(hastmon::proto::MAX_LOCAL_PAYLOAD);
    r.push(&[0, over[0], over[1], over[2], over[3]]);
    assert_eq!(r.next_payload(), Ok(None));
    assert_eq!(r.needed(), MAX_PAYLOAD + 1);
    assert_eq!(
        parse_header([0, 0xff, 0xff, 0xff, 0xff]),
        Err(FrameError::Oversize {
            length: u64::from(u32::MAX),
            limit: MAX_PAYLOAD
        })
    );
}

#[test]
fn encoder_refuses_what_the_receiver_would_refuse() {
    let mut nv = NvList::new();
    nv.add_u8_array("blob", &vec![0; MAX_PAYLOAD]);
    assert!(matches!(
        encode_frame(&nv),
        Err(FrameError::Oversize { .. })
    ));
}

#[test]
fn frames_arriving_a_byte_at_a_time_are_reassembled() {
    let stream: Vec<u8> = (1..=3).flat_map(heartbeat_frame).collect();
    let mut r = FrameReader::new();
    let mut got = Vec::new();
    for b in &stream {
        assert!(r.needed() >= 1);
        r.push(std::slice::from_ref(b));
        while let Some(nv) = r.next_list().unwrap() {
            got.push(nv.get_u64("seq").unwrap());
        }
    }
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.needed(), HEADER_LEN);
}

#[test]
fn needed_counts_header_then_payload() {
    let frame = heartbeat_frame(9);
    let mut r = FrameReader::new();
    assert_eq!(r.needed(), 5);
    r.push(&frame[..3]);
    assert_eq!(r.needed(), 2);
    r.push(&frame[3..5]);
    assert_eq!(r.needed(), frame.len() - 5);
    r.push(&frame[5..]);
    assert_eq!(r.needed(), 0);
    assert!(r.next_list().unwrap().is_some());
}

#[test]
fn invalid_payload_is_reported_without_losing_the_framing() {
    let mut bad = vec![0, 8, 0, 0, 0];
    bad.extend_from_slice(&[2, 4, 1, 0, 0, 0, b'a', b'b']); // name runs past the end
    let mut r = FrameReader::new();
    r.push(&bad);
    r.push(&heartbeat_frame(4));
    assert!(matches!(r.next_list(), Err(FrameError::Payload(_))));
    assert_eq!(r.next_list().unwrap().unwrap().get_u64("seq"), Some(4));
}

#[test]
fn decode_frame_wants_exactly_one_frame() {
    let frame = heartbeat_frame(1);
    assert!(decode_frame(&frame).is_ok());
    assert_eq!(
        decode_frame(&frame[..3]),
        Err(FrameError::HeaderTruncated { received: 3 })
    );
    let n = frame.len() - HEADER_LEN;
    assert_eq!(
        decode_frame(&frame[..frame.len() - 1]),
        Err(FrameError::LengthMismatch {
            announced: n,
            received: n - 1
        })
    );
    let mut long = frame.clone();
    long.push(0);
    assert_eq!(
        decode_frame(&long),
        Err(FrameError::LengthMismatch {
            announced: n,
            received: n + 1
        })
    );
}

/// The original's hast_proto_recv() asserts on a reply with a non-zero
/// `size`; we decode it and the messages ignore the field (Q36).
#[test]
fn a_nonzero_size_field_is_just_another_field() {
    let mut nv = NvList::new();
    nv.add_u8_array("token", &[5; 16]).add_u32("size", 1024);
    let decoded = decode_frame(&encode_frame(&nv).unwrap()).unwrap();
    assert_eq!(decoded.get_u32("size"), Some(1024));
    assert_eq!(
        Handshake1Reply::from_nv(&decoded),
        Ok(Handshake1Reply::Token([5; 16]))
    );
}
