//! Properties: hostile bytes never panic any decoder, decoded content never
//! outgrows its input, and encode → decode is the identity.

use hastmon::proto::frame::{FrameError, FrameReader, HEADER_LEN, MAX_PAYLOAD};
use hastmon::proto::msg::{
    Complaint, ControlRequest, CtrlRequest, EventReply, EventRequest, Handshake1, Handshake1Reply,
    Handshake2, Handshake2Confirm, HeartbeatReply, HeartbeatRequest, ListenRequest, RoleReply,
    StatusPoll, StatusReply, WorkerStatusReply,
};
use hastmon::proto::{NvList, Value, decode_frame, encode_frame};
use proptest::collection::vec;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i8>().prop_map(Value::I8),
        any::<u8>().prop_map(Value::U8),
        any::<i16>().prop_map(Value::I16),
        any::<u16>().prop_map(Value::U16),
        any::<i32>().prop_map(Value::I32),
        any::<u32>().prop_map(Value::U32),
        any::<i64>().prop_map(Value::I64),
        any::<u64>().prop_map(Value::U64),
        vec(any::<i8>(), 1..20).prop_map(Value::I8Array),
        vec(any::<u8>(), 1..40).prop_map(Value::U8Array),
        vec(any::<i16>(), 1..10).prop_map(Value::I16Array),
        vec(any::<u16>(), 1..10).prop_map(Value::U16Array),
        vec(any::<i32>(), 1..10).prop_map(Value::I32Array),
        vec(any::<u32>(), 1..10).prop_map(Value::U32Array),
        vec(any::<i64>(), 1..5).prop_map(Value::I64Array),
        vec(any::<u64>(), 1..5).prop_map(Value::U64Array),
        vec(1u8..=255, 0..40).prop_map(Value::String),
    ]
}

/// Names as the wire allows them: no NUL, up to 254 bytes, with the
/// hastmon field names over-represented so typed decoders find fields.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(1u8..=255, 0..=254),
        prop::sample::select(vec![
            "resource",
            "priority",
            "token",
            "resuid",
            "errmsg",
            "cmd",
            "state",
            "seq",
            "error",
            "type",
            "role",
            "now",
            "auth_hash",
            "resource0",
            "resource1",
            "role0",
            "error0",
            "exec0",
            "remoteaddr0.0",
            "remotestate0.0",
            "state0",
            "attempts0",
            "remotestate0",
            "event",
            "remote",
            "status",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

fn nvlist() -> impl Strategy<Value = NvList> {
    vec((name(), value()), 0..12).prop_map(|elements| {
        let mut nv = NvList::new();
        for (n, v) in elements {
            nv.push(n, v);
        }
        nv
    })
}

/// Runs every decoder; none may panic whatever the list holds.
fn decode_all(nv: &NvList) {
    let _ = Handshake1::from_nv(nv);
    let _ = Handshake1Reply::from_nv(nv);
    let _ = Handshake2::from_nv(nv);
    let _ = Handshake2Confirm::from_nv(nv);
    let _ = HeartbeatRequest::from_nv(nv);
    let _ = HeartbeatReply::from_nv(nv);
    let _ = ListenRequest::from_nv(nv);
    let _ = ControlRequest::from_nv(nv);
    let _ = StatusPoll::from_nv(nv);
    let _ = Complaint::from_nv(nv);
    let _ = RoleReply::from_nv(nv);
    let _ = StatusReply::from_nv(nv);
    let _ = EventRequest::from_nv(nv);
    let _ = EventReply::from_nv(nv);
    let _ = CtrlRequest::from_nv(nv);
    let _ = WorkerStatusReply::from_nv(nv);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_payloads_never_panic_and_never_outgrow_the_input(bytes in vec(any::<u8>(), 0..600)) {
        if let Ok(nv) = NvList::decode(&bytes) {
            // Each decoded element re-encodes to exactly the bytes it came
            // from (padding aside), so the decoded content is bounded by
            // the input: no length field can inflate it.
            prop_assert!(nv.encoded_len() <= bytes.len());
            prop_assert_eq!(NvList::decode(&nv.encode()).unwrap(), nv.clone());
            decode_all(&nv);
        }
    }

    #[test]
    fn well_formed_headers_with_garbage_payloads_never_panic(
        elements in vec((any::<u8>(), any::<u8>(), any::<u32>(), vec(any::<u8>(), 0..40)), 1..6),
    ) {
        // Plausible element headers make the walk go deeper than pure noise.
        let mut payload = Vec::new();
        for (t, ns, ds, body) in elements {
            payload.push(t % 20);
            payload.push(ns);
            payload.extend_from_slice(&(ds % 64).to_le_bytes());
            payload.extend_from_slice(&body);
        }
        if let Ok(nv) = NvList::decode(&payload) {
            prop_assert!(nv.encoded_len() <= payload.len());
            decode_all(&nv);
        }
    }

    #[test]
    fn arbitrary_lists_round_trip(nv in nvlist()) {
        let payload = nv.encode();
        prop_assert_eq!(payload.len(), nv.encoded_len());
        prop_assert_eq!(NvList::decode(&payload).unwrap(), nv.clone());
        let frame = encode_frame(&nv).unwrap();
        prop_assert_eq!(decode_frame(&frame).unwrap(), nv.clone());
        decode_all(&nv);
    }

    #[test]
    fn arbitrary_streams_never_panic_the_reader(
        bytes in vec(any::<u8>(), 0..2000),
        cuts in vec(1usize..64, 1..40),
    ) {
        let mut r = FrameReader::new();
        let mut rest = &bytes[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
            rest = tail;
            r.push(chunk);
            prop_assert!(r.buffered() <= bytes.len());
            loop {
                match r.next_list() {
                    Ok(Some(nv)) => decode_all(&nv),
                    Ok(None) => break,
                    Err(FrameError::Payload(_)) => {}
                    Err(_) => break,
                }
            }
        }
        let _ = decode_frame(&bytes);
    }

    #[test]
    fn streams_of_valid_frames_reassemble_from_any_cut(
        lists in vec(nvlist(), 1..5),
        cuts in vec(1usize..50, 1..20),
    ) {
        let stream: Vec<u8> = lists.iter().flat_map(|nv| encode_frame(nv).unwrap()).collect();
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
            rest = tail;
            r.push(chunk);
            while let Some(nv) = r.next_list().unwrap() {
                got.push(nv);
            }
        }
        prop_assert_eq!(got, lists);
        prop_assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn headers_over_the_cap_are_refused_before_any_payload(length in (MAX_PAYLOAD as u32 + 1)..=u32::MAX) {
        let mut r = FrameReader::new();
        let l = length.to_le_bytes();
        r.push(&[0, l[0], l[1], l[2], l[3]]);
        prop_assert_eq!(r.next_payload(), Err(FrameError::Oversize { length: u64::from(length), limit: MAX_PAYLOAD }));
        prop_assert!(r.needed() == 0 && r.buffered() == 0);
    }

    #[test]
    fn headers_within_the_cap_never_ask_for_more_than_the_cap(length in 0u32..=MAX_PAYLOAD as u32) {
        let mut r = FrameReader::new();
        let l = length.to_le_bytes();
        r.push(&[0, l[0], l[1], l[2], l[3]]);
        prop_assert_eq!(r.needed(), length as usize);
        prop_assert!(HEADER_LEN + r.needed() <= HEADER_LEN + MAX_PAYLOAD);
    }

    #[test]
    fn handshake1_round_trips(resource in "[a-z0-9._-]{1,20}", priority in proptest::option::of(any::<i32>())) {
        let hs = Handshake1 { resource, priority, auth: None, heartbeat_ms: None };
        prop_assert_eq!(Handshake1::from_nv(&hs.to_nv()).unwrap(), hs);
    }
}
