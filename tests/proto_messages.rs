//! Typed messages: golden frames worked out by hand from doc/protocol.md for
//! messages that were not captured, and the decoders' presence rules.

use hastmon::proto::auth::AuthFields;
use hastmon::proto::msg::{
    Complaint, ControlCmd, ControlRequest, CtrlRequest, EventRequest, Handshake1, Handshake1Reply,
    Handshake2, Handshake2Confirm, HeartbeatReply, HeartbeatRequest, HeartbeatStatus, HookEvent,
    ListenRequest, MsgError, Refusal, RemoteStatus, ResourceStatus, RoleOutcome, RoleReply,
    StatusEntry, StatusOutcome, StatusReply, WorkerRemote, WorkerStatus, WorkerStatusReply, ehast,
    errmsg, error_reply,
};
use hastmon::proto::{NvList, decode_frame, encode_frame};
use hastmon::types::{Role, State};

/// Hex with any whitespace, as written in the spec's tables.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|d| u8::from_str_radix(std::str::from_utf8(d).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn golden_stage2_token_mismatch() {
    let frame = hex("00 26 00 00 00
        11 07 15 00 00 00  65 72 72 6d 73 67 00 00
        54 6f 6b 65 6e 20 64 6f 65 73 6e 27 74 20 6d 61 74 63 68 2e 00 00 00 00");
    let refusal = Refusal::new(errmsg::TOKEN_MISMATCH);
    assert_eq!(encode_frame(&refusal.to_nv()).unwrap(), frame);
    let nv = decode_frame(&frame).unwrap();
    assert_eq!(
        Handshake2Confirm::from_nv(&nv),
        Err(MsgError::Refused {
            errmsg: "Token doesn't match.".into()
        })
    );
}

#[test]
fn golden_empty_reply() {
    let frame = hex("00 00 00 00 00");
    assert_eq!(
        encode_frame(&StatusReply::default().to_nv()).unwrap(),
        frame
    );
    assert_eq!(encode_frame(&RoleReply::default().to_nv()).unwrap(), frame);
    let nv = decode_frame(&frame).unwrap();
    assert_eq!(StatusReply::from_nv(&nv), StatusReply::default());
}

#[test]
fn golden_bit_7_set_reads_little_endian() {
    let frame = hex("00 16 00 00 00  88 04 08 00 00 00  73 65 71 00 00 00 00 00
        2a 00 00 00 00 00 00 00");
    let reply = HeartbeatReply::from_nv(&decode_frame(&frame).unwrap());
    assert_eq!(reply.seq, Some(42));
    assert_eq!(reply.status, HeartbeatStatus::State(State::Unknown));
}

#[test]
fn golden_trailing_zeros_are_ignored() {
    let frame = hex("00 1e 00 00 00  08 07 08 00 00 00  72 65 73 75 69 64 00 00
        07 00 00 00 00 00 00 00  00 ff ff ff ff ff ff ff");
    let confirm = Handshake2Confirm::from_nv(&decode_frame(&frame).unwrap());
    assert_eq!(confirm, Ok(Handshake2Confirm { resuid: 7 }));
}

#[test]
fn golden_stage1_without_priority_keeps_the_absence() {
    let frame = hex("00 1e 00 00 00  11 09 03 00 00 00
        72 65 73 6f 75 72 63 65 00 00 00 00 00 00 00 00  72 31 00 00 00 00 00 00");
    let hs = Handshake1::from_nv(&decode_frame(&frame).unwrap()).unwrap();
    assert_eq!(
        hs,
        Handshake1 {
            resource: "r1".into(),
            priority: None,
            auth: None,
            heartbeat_ms: None
        }
    );
    assert_eq!(encode_frame(&hs.to_nv()).unwrap(), frame);
}

#[test]
fn golden_keyed_complaint_puts_auth_first() {
    let frame = hex("00 70 00 00 00
        08 04 08 00 00 00  6e 6f 77 00 00 00 00 00  01 00 00 00 00 00 00 00
        0a 0a 10 00 00 00  61 75 74 68 5f 68 61 73 68 00 00 00 00 00 00 00
        ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab
        11 09 03 00 00 00  72 65 73 6f 75 72 63 65 00 00 00 00 00 00 00 00
        72 31 00 00 00 00 00 00
        02 05 01 00 00 00  74 79 70 65 00 00 00 00  02 00 00 00 00 00 00 00");
    let c = Complaint {
        auth: Some(AuthFields {
            now: 1,
            hash: vec![0xab; 16],
        }),
        resource: "r1".into(),
    };
    assert_eq!(encode_frame(&c.to_nv()).unwrap(), frame);
    match ListenRequest::from_nv(&decode_frame(&frame).unwrap()) {
        Ok(ListenRequest::Complaint(got)) => assert_eq!(got, c),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errmsg_texts_are_byte_exact() {
    assert_eq!(
        errmsg::stronger_primary(7),
        "Remote node acts as primary with higher priority (prioty number 7)."
    );
    assert_eq!(
        errmsg::not_secondary(Role::Init),
        "Remote node acts as init for the resource and not as secondary."
    );
    assert_eq!(errmsg::RESOURCE_NOT_CONFIGURED, "Resource not configured.");
    assert_eq!(errmsg::NO_ACCESS, "No access to the resource.");
    assert_eq!(
        errmsg::unable_to_send("Broken pipe"),
        "Remote node was unable to send response: Broken pipe."
    );
    assert_eq!(
        errmsg::unable_to_prepare("Cannot allocate memory"),
        "Remote node was unable to prepare return header: Cannot allocate memory."
    );
}

#[test]
fn stronger_primary_with_priority_zero_is_still_recognised() {
    let reply = Handshake1Reply::from_nv(&Handshake1Reply::stronger_primary(0).to_nv()).unwrap();
    assert!(matches!(
        reply,
        Handshake1Reply::Refused {
            priority: Some(0),
            ..
        }
    ));
    let mut plain = NvList::new();
    plain.add_string("errmsg", errmsg::NO_ACCESS);
    let reply = Handshake1Reply::from_nv(&plain).unwrap();
    assert_eq!(
        reply,
        Handshake1Reply::Refused {
            errmsg: errmsg::NO_ACCESS.into(),
            priority: None
        }
    );
}

#[test]
fn stage1_reply_needs_a_16_byte_token() {
    let mut nv = NvList::new();
    assert_eq!(
        Handshake1Reply::from_nv(&nv),
        Err(MsgError::MissingField { field: "token" })
    );
    nv.add_u8_array("token", &[1; 15]);
    assert_eq!(
        Handshake1Reply::from_nv(&nv),
        Err(MsgError::TokenSize { found: 15 })
    );
}

#[test]
fn stage1_auth_fields_follow_priority_and_our_interval_comes_last() {
    let mut hs = Handshake1 {
        resource: "r1".into(),
        priority: Some(3),
        auth: Some(AuthFields {
            now: 5,
            hash: vec![1; 20],
        }),
        heartbeat_ms: None,
    };
    let nv = hs.to_nv();
    let names: Vec<&[u8]> = nv.elements().iter().map(|e| e.name()).collect();
    assert_eq!(names, [&b"resource"[..], b"priority", b"now", b"auth_hash"]);
    assert_eq!(Handshake1::from_nv(&nv), Ok(hs.clone()));
    // Q22: the primary's interval, after everything 0.3.4 reads.
    hs.heartbeat_ms = Some(200);
    let nv = hs.to_nv();
    let names: Vec<&[u8]> = nv.elements().iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            &b"resource"[..],
            b"priority",
            b"now",
            b"auth_hash",
            b"heartbeat_ms"
        ]
    );
    assert_eq!(Handshake1::from_nv(&nv), Ok(hs));
}

#[test]
fn stage2_auth_fields_come_first() {
    let hs = Handshake2 {
        auth: Some(AuthFields {
            now: 5,
            hash: vec![1; 16],
        }),
        resource: "r1".into(),
        token: [9; 16],
        resuid: 0,
    };
    let nv = hs.to_nv();
    let names: Vec<&[u8]> = nv.elements().iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [&b"now"[..], b"auth_hash", b"resource", b"token", b"resuid"]
    );
    assert_eq!(Handshake2::from_nv(&nv), Ok(hs));
}

#[test]
fn listen_requests_are_classified_like_the_acceptor() {
    let mut nv = NvList::new();
    nv.add_u8("type", 2);
    assert_eq!(
        ListenRequest::from_nv(&nv),
        Err(MsgError::MissingField { field: "resource" })
    );
    nv.add_string("resource", "r1")
        .add_u8_array("token", &[0; 17]);
    assert_eq!(
        ListenRequest::from_nv(&nv),
        Err(MsgError::TokenSize { found: 17 })
    );

    let mut nv = NvList::new();
    nv.add_string("resource", "r1").add_u8("type", 3);
    assert!(matches!(
        ListenRequest::from_nv(&nv),
        Ok(ListenRequest::Handshake1(_))
    ));
    nv.add_u8_array("token", &[0; 16]);
    assert!(matches!(
        ListenRequest::from_nv(&nv),
        Ok(ListenRequest::Handshake2(_))
    ));

    let mut nv = NvList::new();
    nv.add_u8("type", 1);
    assert_eq!(
        ListenRequest::from_nv(&nv),
        Err(MsgError::MissingField { field: "cmd" })
    );
}

#[test]
fn heartbeat_reply_keeps_seq_presence_and_error() {
    let mut nv = NvList::new();
    nv.add_u8("state", 3);
    assert_eq!(
        HeartbeatReply::from_nv(&nv),
        HeartbeatReply {
            seq: None,
            status: HeartbeatStatus::State(State::Run)
        }
    );
    let mut nv = NvList::new();
    nv.add_u64("seq", 4).add_i16("error", 0);
    assert_eq!(
        HeartbeatReply::from_nv(&nv).status,
        HeartbeatStatus::Error(0)
    );
    assert_eq!(
        HeartbeatRequest::from_nv(&NvList::new()),
        HeartbeatRequest {
            cmd: 0,
            state: State::Unknown,
            seq: 0
        }
    );
}

#[test]
fn control_request_needs_a_nonzero_cmd_and_reads_resources_to_the_first_gap() {
    let mut nv = NvList::new();
    assert_eq!(
        ControlRequest::from_nv(&nv),
        Err(MsgError::MissingField { field: "cmd" })
    );
    nv.add_u8("cmd", 0);
    assert_eq!(
        ControlRequest::from_nv(&nv),
        Err(MsgError::MissingField { field: "cmd" })
    );

    let mut nv = NvList::new();
    nv.add_u8("cmd", 9)
        .add_u8("role", 7)
        .add_string("resource0", "a")
        .add_string("resource2", "c");
    let req = ControlRequest::from_nv(&nv).unwrap();
    assert_eq!(req.cmd, ControlCmd::Other(9));
    assert_eq!(req.role, Some(Role::Undef));
    assert_eq!(req.resources, ["a"]);
    assert_eq!(error_reply(ehast::UNIMPLEMENTED).get_i16("error"), Some(4));
}

#[test]
fn role_and_status_replies_round_trip_with_errors() {
    let role = RoleReply {
        entries: vec![
            hastmon::proto::msg::RoleEntry {
                resource: "r1".into(),
                outcome: RoleOutcome::Previous("init".into()),
            },
            hastmon::proto::msg::RoleEntry {
                resource: "nosuch".into(),
                outcome: RoleOutcome::Error(ehast::NOENTRY),
            },
        ],
        error: None,
    };
    assert_eq!(RoleReply::from_nv(&role.to_nv()), role);

    let status = StatusReply {
        entries: vec![
            StatusEntry {
                resource: "r1".into(),
                outcome: StatusOutcome::Status(ResourceStatus {
                    exec: "/x".into(),
                    attempts_max: 5,
                    remotes: vec![
                        RemoteStatus {
                            addr: "tcp4://a".into(),
                            state: Some("run".into()),
                            role: Some("primary".into()),
                        },
                        RemoteStatus {
                            addr: "tcp4://b".into(),
                            state: None,
                            role: None,
                        },
                    ],
                    role: Role::Watchdog,
                    workerpid: 12,
                    complaints: 1,
                    complaints_critical: 3,
                    complaints_interval: 60,
                    heartbeat: 10,
                    worker: Some(WorkerStatus {
                        state: State::Run,
                        attempts: 2,
                    }),
                }),
            },
            StatusEntry {
                resource: "nosuch".into(),
                outcome: StatusOutcome::Error(1),
            },
        ],
        error: Some(54),
    };
    assert_eq!(StatusReply::from_nv(&status.to_nv()), status);
}

#[test]
fn internal_channel_messages_round_trip() {
    let ev = EventRequest {
        event: Some(HookEvent::Complaint),
    };
    assert_eq!(ev.to_nv().get_u8("event"), Some(6));
    assert_eq!(EventRequest::from_nv(&ev.to_nv()), ev);
    for c in [
        CtrlRequest::Status { remote: true },
        CtrlRequest::Status { remote: false },
        CtrlRequest::HookExited {
            event: 3,
            status: 1,
        },
    ] {
        assert_eq!(CtrlRequest::from_nv(&c.to_nv()), Some(c));
    }
    assert_eq!(CtrlRequest::Status { remote: false }.to_nv().len(), 1);
    let reply = WorkerStatusReply {
        remotes: vec![WorkerRemote {
            state: "run".into(),
            role: Some("primary".into()),
        }],
        state: State::Run,
        attempts: 3,
    };
    assert_eq!(WorkerStatusReply::from_nv(&reply.to_nv()), reply);
}
