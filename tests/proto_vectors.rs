//! Every captured frame in tests/vectors: decodes to exactly the fields
//! index.json lists, re-encodes byte for byte (name padding zeroed), and
//! keyed frames authenticate exactly as the original did.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use hastmon::proto::auth::{self, Algorithm, AuthError, AuthFields};
use hastmon::proto::msg::{
    Complaint, ControlRequest, Handshake1, Handshake1Reply, Handshake2, Handshake2Confirm,
    HeartbeatReply, HeartbeatRequest, ListenRequest, RoleReply, StatusPoll, StatusReply,
};
use hastmon::proto::{NvList, Value, decode_frame, encode_frame};
use serde_json::Value as Json;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn index() -> Vec<Json> {
    let text = std::fs::read_to_string(dir().join("index.json")).unwrap();
    let json: Json = serde_json::from_str(&text).unwrap();
    json["vectors"].as_array().unwrap().clone()
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn frame_bytes(v: &Json) -> Vec<u8> {
    unhex(&std::fs::read_to_string(dir().join(v["file"].as_str().unwrap())).unwrap())
}

/// The frame with the uninitialised name padding of the capture zeroed.
fn canonical(v: &Json) -> Vec<u8> {
    let mut bytes = frame_bytes(v);
    for range in v["name_padding_nonzero"].as_array().unwrap() {
        let r = range["offsets"].as_array().unwrap();
        let (start, end) = (
            r[0].as_u64().unwrap() as usize,
            r[1].as_u64().unwrap() as usize,
        );
        bytes[start..end].fill(0);
    }
    bytes
}

fn json_value(type_code: u8, value: &Json) -> Value {
    let int = || value.as_i64().unwrap();
    match type_code {
        2 => Value::U8(int() as u8),
        3 => Value::I16(int() as i16),
        5 => Value::I32(int() as i32),
        6 => Value::U32(int() as u32),
        8 => Value::U64(value.as_u64().unwrap()),
        10 => Value::U8Array(unhex(value.as_str().unwrap())),
        17 => Value::string(value.as_str().unwrap()),
        other => panic!("index.json uses type {other}, not expected in captures"),
    }
}

fn listed(v: &Json) -> NvList {
    let mut nv = NvList::new();
    for f in v["fields"].as_array().unwrap() {
        let code = f["type"].as_u64().unwrap() as u8;
        nv.push(f["name"].as_str().unwrap(), json_value(code, &f["value"]));
    }
    nv
}

/// Decodes with the typed message the vector's name says it is, and
/// encodes it again.
fn typed_round_trip(name: &str, nv: &NvList) -> NvList {
    if name.starts_with("hs1_request") {
        Handshake1::from_nv(nv).unwrap().to_nv()
    } else if name.starts_with("hs1_reply") {
        Handshake1Reply::from_nv(nv).unwrap().to_nv()
    } else if name.starts_with("hs2_request") {
        Handshake2::from_nv(nv).unwrap().to_nv()
    } else if name.starts_with("hs2_confirm") {
        Handshake2Confirm::from_nv(nv).unwrap().to_nv()
    } else if name.starts_with("hb_request") {
        HeartbeatRequest::from_nv(nv).to_nv()
    } else if name.starts_with("hb_reply") {
        HeartbeatReply::from_nv(nv).to_nv()
    } else if name.starts_with("wd_poll_request") {
        StatusPoll::from_nv(nv).unwrap().to_nv()
    } else if name.starts_with("complaint") {
        Complaint::from_nv(nv).unwrap().to_nv()
    } else if name.ends_with("_request") {
        ControlRequest::from_nv(nv).unwrap().to_nv()
    } else if name.starts_with("ctl_role") {
        RoleReply::from_nv(nv).to_nv()
    } else if name.starts_with("wd_poll_reply") || name.starts_with("ctl_status") {
        StatusReply::from_nv(nv).to_nv()
    } else {
        panic!("no typed message for vector {name}")
    }
}

#[test]
fn every_vector_file_is_indexed() {
    let mut indexed: Vec<String> = index()
        .iter()
        .map(|v| v["file"].as_str().unwrap().to_owned())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".hex"))
        .collect();
    indexed.sort();
    files.sort();
    assert_eq!(indexed, files);
    assert!(files.len() >= 40);
}

#[test]
fn vectors_decode_to_the_listed_fields() {
    for v in index() {
        let name = v["name"].as_str().unwrap();
        let bytes = frame_bytes(&v);
        assert_eq!(
            bytes.len() as u64,
            v["size"].as_u64().unwrap(),
            "{name}: size"
        );
        let announced = u32::from_le_bytes(bytes[1..5].try_into().unwrap());
        assert_eq!(
            u64::from(announced),
            v["payload_length"].as_u64().unwrap(),
            "{name}"
        );
        let nv = decode_frame(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fields = v["fields"].as_array().unwrap();
        assert_eq!(nv.len(), fields.len(), "{name}: field count");
        for (e, f) in nv.elements().iter().zip(fields) {
            let code = f["type"].as_u64().unwrap() as u8;
            assert_eq!(e.name(), f["name"].as_str().unwrap().as_bytes(), "{name}");
            assert_eq!(e.value().type_code(), code, "{name}: {}", f["name"]);
            assert_eq!(
                e.value(),
                &json_value(code, &f["value"]),
                "{name}: {}",
                f["name"]
            );
        }
    }
}

#[test]
fn vectors_reencode_byte_for_byte() {
    for v in index() {
        let name = v["name"].as_str().unwrap();
        let expected = canonical(&v);
        assert_eq!(
            encode_frame(&listed(&v)).unwrap(),
            expected,
            "{name}: from the index"
        );
        let decoded = decode_frame(&frame_bytes(&v)).unwrap();
        if name.ends_with("_SYNTHETIC") {
            continue; // not written by any hastmon; no typed sender makes it
        }
        let typed = typed_round_trip(name, &decoded);
        assert_eq!(encode_frame(&typed).unwrap(), expected, "{name}: typed");
    }
}

#[test]
fn synthetic_heartbeat_without_state_reads_leniently() {
    let v = index()
        .into_iter()
        .find(|v| v["name"] == "hb_request_bad_cmd_SYNTHETIC")
        .unwrap();
    let hb = HeartbeatRequest::from_nv(&decode_frame(&frame_bytes(&v)).unwrap());
    assert_eq!(
        (hb.cmd, hb.state, hb.seq),
        (7, hastmon::types::State::Unknown, 42)
    );
}

#[test]
fn captured_listen_port_requests_classify_as_the_acceptor_does() {
    for v in index() {
        let name = v["name"].as_str().unwrap();
        if v["transport"] != "tcp" || !(name.contains("request") || name == "complaint") {
            continue;
        }
        if name.starts_with("hb_") {
            continue; // heartbeats follow the handshake on an open connection
        }
        let nv = decode_frame(&frame_bytes(&v)).unwrap();
        let kind = ListenRequest::from_nv(&nv).unwrap();
        let ok = match kind {
            ListenRequest::Handshake1(_) => name.starts_with("hs1_"),
            ListenRequest::Handshake2(_) => name.starts_with("hs2_"),
            ListenRequest::Control(_) => name.starts_with("wd_poll_"),
            ListenRequest::Complaint(_) => name == "complaint",
        };
        assert!(ok, "{name} classified as {kind:?}");
    }
}

fn tcp4(s: &str) -> SocketAddrV4 {
    s.strip_prefix("tcp4://").unwrap().parse().unwrap()
}

#[test]
fn keyed_vectors_authenticate_like_the_original() {
    let mut keyed = 0;
    for v in index() {
        let a = &v["auth"];
        if a.is_null() {
            continue;
        }
        keyed += 1;
        let name = v["name"].as_str().unwrap();
        let alg: Algorithm = a["algorithm"].as_str().unwrap().parse().unwrap();
        let secret = a["secret"].as_str().unwrap().as_bytes();
        let now = a["now"].as_u64().unwrap();
        let (client, server) = (
            tcp4(a["client_address"].as_str().unwrap()),
            tcp4(a["server_address"].as_str().unwrap()),
        );
        assert_eq!(
            auth::digest_input(now, client, server, secret),
            a["digest_input"].as_str().unwrap().as_bytes(),
            "{name}"
        );
        let nv = decode_frame(&frame_bytes(&v)).unwrap();
        let fields = AuthFields::compute(alg, secret, now, client, server);
        assert_eq!(
            fields.hash,
            unhex(a["digest_hex"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(Some(fields), AuthFields::from_nv(&nv), "{name}");

        let check = |at: u64, secret: &[u8]| auth::verify(&nv, alg, secret, at, client, server);
        assert_eq!(check(now, secret), Ok(()), "{name}");
        assert_eq!(check(now - 9, secret), Ok(()), "{name}");
        assert_eq!(check(now + 9, secret), Ok(()), "{name}");
        for at in [now - 10, now + 10] {
            assert_eq!(
                check(at, secret),
                Err(AuthError::TimeSkew {
                    receiver_now: at,
                    sender_now: now
                }),
                "{name}"
            );
        }
        assert_eq!(check(now, b"wrong"), Err(AuthError::HashMismatch), "{name}");
        assert_eq!(
            auth::verify(&nv, alg, secret, now, server, client),
            Err(AuthError::HashMismatch),
            "{name}: addresses swapped"
        );
    }
    assert!(keyed >= 6, "only {keyed} keyed vectors");
}

fn vector(name: &str) -> Json {
    index().into_iter().find(|v| v["name"] == name).unwrap()
}

fn captured_auth(v: &Json) -> AuthFields {
    let a = &v["auth"];
    AuthFields::compute(
        a["algorithm"].as_str().unwrap().parse().unwrap(),
        a["secret"].as_str().unwrap().as_bytes(),
        a["now"].as_u64().unwrap(),
        tcp4(a["client_address"].as_str().unwrap()),
        tcp4(a["server_address"].as_str().unwrap()),
    )
}

/// Messages built from scratch (not decoded first) match the captures.
#[test]
fn typed_constructors_match_captures() {
    use hastmon::proto::msg::{
        ControlCmd, RemoteStatus, ResourceStatus, StatusEntry, StatusOutcome, WorkerStatus,
    };
    use hastmon::types::{Role, State};

    let check = |name: &str, nv: NvList| {
        assert_eq!(
            encode_frame(&nv).unwrap(),
            canonical(&vector(name)),
            "{name}"
        );
    };
    check(
        "hb_request_state3_run",
        HeartbeatRequest::new(State::Run, 1).to_nv(),
    );
    check(
        "hs1_request",
        Handshake1 {
            resource: "r1".into(),
            priority: Some(0),
            auth: None,
            heartbeat_ms: None,
        }
        .to_nv(),
    );
    check(
        "hs1_reply_errmsg_stronger_primary",
        Handshake1Reply::stronger_primary(0).to_nv(),
    );
    let v = vector("hs1_request_sha256");
    let hs = Handshake1 {
        resource: "r1".into(),
        priority: Some(0),
        auth: Some(captured_auth(&v)),
        heartbeat_ms: None,
    };
    check("hs1_request_sha256", hs.to_nv());
    let v = vector("hs2_request_md5");
    let hs = Handshake2 {
        auth: Some(captured_auth(&v)),
        resource: "r1".into(),
        token: unhex("a013dd897e7c07bbf1a902f3dc84f2e9")
            .try_into()
            .unwrap(),
        resuid: 0,
    };
    check("hs2_request_md5", hs.to_nv());
    let v = vector("wd_poll_request_sha256");
    let poll = StatusPoll {
        auth: Some(captured_auth(&v)),
        resource: "r1".into(),
    };
    check("wd_poll_request_sha256", poll.to_nv());
    let req = ControlRequest {
        cmd: ControlCmd::SetRole,
        role: Some(Role::Primary),
        resources: vec!["r1".into()],
        auth: None,
        extended: false,
    };
    check("ctl_role_primary_r1_request", req.to_nv());
    // A plain status request is 0.3.4's; only `status -j` adds `extended`.
    let mut req = ControlRequest {
        cmd: ControlCmd::Status,
        role: None,
        resources: vec!["all".into()],
        auth: None,
        extended: false,
    };
    let plain = req.to_nv();
    check("ctl_status_all_request", plain.clone());
    req.extended = true;
    let extended = req.to_nv();
    assert_eq!(extended.get_u8("extended"), Some(1));
    assert_eq!(extended.len(), plain.len() + 1);
    assert_eq!(ControlRequest::from_nv(&extended).unwrap(), req);
    let remote = |addr: &str, state: &str, role: &str| RemoteStatus {
        addr: addr.into(),
        state: Some(state.into()),
        role: Some(role.into()),
    };
    let reply = StatusReply {
        entries: vec![StatusEntry {
            resource: "r1".into(),
            outcome: StatusOutcome::Status(ResourceStatus {
                exec: "/usr/local/sbin/hookC".into(),
                attempts_max: 5,
                remotes: vec![
                    remote("tcp4://10.77.0.11", "run", "primary"),
                    remote("tcp4://10.77.0.12", "stopped", "secondary"),
                ],
                role: Role::Watchdog,
                workerpid: 12913,
                complaints: 6,
                complaints_critical: 50,
                complaints_interval: 10,
                heartbeat: 1,
                worker: Some(WorkerStatus {
                    state: State::Run,
                    attempts: 0,
                }),
            }),
        }],
        error: None,
    };
    check("ctl_status_all_watchdog_reply", reply.to_nv());
}
