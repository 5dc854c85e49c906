//! HMAC-SHA256 sessions (doc/quirks.md Q23) on real daemons: a keyed cluster
//! behaves like an unkeyed one, and what is not sealed with the key in
//! the current session (another secret, a replay, an altered frame, the
//! 0.3.4 digest) is refused and logged.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::cluster::{ABW, cluster_with, field, kill_node, remote_line, settled};
use common::{Node, free_port, wait_for};
use hastmon::config::{self, NodeNames, Syntax};
use hastmon::proto::auth::{Algorithm, AuthFields};
use hastmon::proto::hmac::{Hello, Session};
use hastmon::proto::msg::{
    Complaint, Handshake1, Handshake1Reply, Handshake2, Handshake2Confirm, HeartbeatReply,
    HeartbeatRequest, HeartbeatStatus, StatusOutcome, StatusPoll, StatusReply,
};
use hastmon::proto::{NvList, encode_frame};
use hastmon::types::{Role, State};

const SECRET: &str = "a secret with spaces";

fn hmac_key(secret: &str) -> String {
    format!("key {{ algorithm HMAC-SHA256 secret \"{secret}\" }}")
}

#[test]
fn q23_the_algorithm_is_configured_by_name_with_any_secret() {
    let text = format!(
        "resource r {{ exec /x {} on me {{ remote none }} }}",
        hmac_key("a \\\"quoted\\\" # secret")
    );
    let me = NodeNames::exact("me");
    let cfg = config::parse_bytes(text.as_bytes(), Syntax::Conf, &me).unwrap();
    let key = cfg.resources[0].key.clone().unwrap();
    assert_eq!(key.algorithm, "HMAC-SHA256");
    assert_eq!(key.hmac_secret(), Some(&b"a \"quoted\" # secret"[..]));
    let all: Vec<_> = cfg.resources.iter().collect();
    let conf = config::dump::conf(&cfg, &all);
    let again = config::parse_bytes(conf.as_bytes(), Syntax::Conf, &me).unwrap();
    assert_eq!(again.resources[0].key, Some(key.clone()));
    let toml = config::dump::toml(&cfg, &all);
    let again = config::parse_bytes(toml.as_bytes(), Syntax::Toml, &me).unwrap();
    assert_eq!(again.resources[0].key, Some(key));
    let legacy = "resource r { exec /x key { algorithm SHA256 secret s } on me { remote none } }";
    let cfg = config::parse_bytes(legacy.as_bytes(), Syntax::Conf, &me).unwrap();
    assert_eq!(cfg.resources[0].key.as_ref().unwrap().hmac_secret(), None);
}

#[test]
fn q23_an_hmac_keyed_cluster_settles_and_fails_over_like_an_unkeyed_one() {
    let nodes = cluster_with("hmac-takeover", ABW, |_| hmac_key(SECRET));
    settled(&nodes);
    let [a, b, w] = &nodes[..] else {
        unreachable!()
    };
    // Heartbeats keep flowing on the sealed connections.
    std::thread::sleep(Duration::from_secs(1));
    assert!(remote_line(b, "127.0.0.1").ends_with("(connected)"));
    assert!(remote_line(a, "127.0.0.2").ends_with("(connected)"));
    for n in &nodes {
        let log = n.log();
        assert!(!log.contains("Refusing"), "{log}");
        assert!(!log.contains("authenticat"), "{log}");
        assert!(!log.contains(" lost: "), "{log}");
    }

    kill_node(a);
    wait_for(30, "B to run the resource", || b.running().then_some(()));
    wait_for(10, "every status to agree", || {
        (field(b, "role") == "primary"
            && field(b, "state") == "run"
            && remote_line(w, "127.0.0.2").ends_with("(primary/run)")
            && remote_line(w, "127.0.0.1").ends_with("(unknown/unknown)"))
        .then_some(())
    });
    assert!(b.hooks().contains(&"complain www".to_string()));
    assert!(b.log().contains("Complaint limit reached"));
}

#[test]
fn q23_a_node_with_another_hmac_secret_is_refused_logged_and_fails_nothing_over() {
    let nodes = cluster_with("hmac-wrong-key", ABW, |name| {
        hmac_key(if name == "b" { "two" } else { SECRET })
    });
    let [a, b, w] = &nodes[..] else {
        unreachable!()
    };
    wait_for(20, "A to run unchallenged", || {
        (field(a, "state") == "run" && remote_line(w, "127.0.0.1").ends_with("(primary/run)"))
            .then_some(())
    });
    let refused = |n: &Node, what: &str| {
        n.log().lines().any(|l| {
            l.contains(&format!("{what} tcp4://127.0.0.2:"))
                && l.contains("the remote node failed to authenticate: MAC mismatch")
        })
    };
    wait_for(10, "A and W to log the refusal", || {
        (refused(a, "Unable to connect to") && refused(w, "Unable to poll")).then_some(())
    });
    assert!(remote_line(a, "127.0.0.2").ends_with("(disconnected)"));
    kill_node(a);
    std::thread::sleep(Duration::from_secs(4));
    assert!(!b.running(), "a node with another key caused a failover");
    assert_eq!(field(b, "role"), "secondary");
    assert!(!b.hooks().contains(&"complain www".to_string()));
}

/// One secondary node on 127.0.0.1 that 127.0.0.3 may talk to; `key` is
/// its key section.
fn lone_node(tag: &str, key: &str) -> (Node, SocketAddr) {
    let port = free_port();
    let conf = format!(
        "on a {{ listen tcp4://127.0.0.1:{port} }}\n\
         resource www {{\n exec {{hook}}\n {key}\n\
         on a {{ remote tcp4://127.0.0.2:{port} friends tcp4://127.0.0.3 role_on_start secondary }}\n}}\n"
    );
    let mut node = Node::new(tag, "a", &conf);
    node.start();
    (node, format!("127.0.0.1:{port}").parse().unwrap())
}

/// A connection from 127.0.0.3 (a friend) to `to`.
fn connect(to: SocketAddr) -> TcpStream {
    connect_from("127.0.0.3", to)
}

fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let stream = common::connect_from(ip, &to.to_string());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// The next frame's payload, or `None` once the node closed the connection.
fn recv(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).ok()?;
    let len = u32::from_le_bytes(header[1..].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    Some(payload)
}

fn frame(list: &NvList) -> Vec<u8> {
    encode_frame(list).unwrap()
}

/// Opens a session as a client: the hello's frame and the session.
fn open_session(stream: &mut TcpStream, nonce: u8) -> (Vec<u8>, Session) {
    let hello = Hello {
        resource: "www".into(),
        nonce: [nonce; 16],
    };
    let bytes = frame(&hello.to_nv());
    stream.write_all(&bytes).unwrap();
    let greeting = recv(stream).expect("a greeting");
    let session = Session::client(SECRET.as_bytes(), &hello, &greeting).unwrap();
    (bytes, session)
}

fn poll() -> NvList {
    StatusPoll {
        auth: None,
        resource: "www".into(),
    }
    .to_nv()
}

fn refusals(node: &Node) -> usize {
    node.log()
        .lines()
        .filter(|l| {
            l.contains("[www] Refusing a frame from 127.0.0.3:") && l.contains("MAC mismatch")
        })
        .count()
}

#[test]
fn q23_a_replayed_or_altered_frame_is_refused_logged_and_closed() {
    let (node, addr) = lone_node("hmac-replay", &hmac_key(SECRET));
    wait_for(10, "the secondary role", || {
        (field(&node, "role") == "secondary").then_some(())
    });

    // A real exchange, recorded.
    let mut stream = connect(addr);
    let (hello, mut session) = open_session(&mut stream, 7);
    let request = frame(&session.seal(&poll()));
    stream.write_all(&request).unwrap();
    let reply = session.open(&recv(&mut stream).unwrap()).unwrap();
    let StatusOutcome::Status(status) = &StatusReply::from_nv(&reply).entries[0].outcome else {
        panic!("{reply:?}")
    };
    assert_eq!(status.role, Role::Secondary);
    assert_eq!(recv(&mut stream), None, "one request per connection");

    // The client's side replayed on a new connection: the node's nonce
    // differs, so the request no longer verifies.
    let mut replay = connect(addr);
    replay.write_all(&hello).unwrap();
    assert!(recv(&mut replay).is_some(), "a fresh greeting");
    replay.write_all(&request).unwrap();
    assert_eq!(recv(&mut replay), None, "closed without an answer");
    wait_for(5, "the replay in the log", || {
        (refusals(&node) == 1).then_some(())
    });

    // A request sealed in the right session but altered on the way: a
    // status poll turned into a role change.
    let mut altered = connect(addr);
    let (_, mut session) = open_session(&mut altered, 8);
    let mut bytes = frame(&session.seal(&poll()));
    // Frame header 5, `type` element 22, `cmd` element header and name 14.
    assert_eq!(bytes[41], 2);
    bytes[41] = 1;
    altered.write_all(&bytes).unwrap();
    assert_eq!(recv(&mut altered), None);
    wait_for(5, "the alteration in the log", || {
        (refusals(&node) == 2).then_some(())
    });

    // The node's own greeting sent back to it.
    let mut reflect = connect(addr);
    let hello = Hello {
        resource: "www".into(),
        nonce: [9; 16],
    };
    reflect.write_all(&frame(&hello.to_nv())).unwrap();
    let greeting = recv(&mut reflect).unwrap();
    assert!(Session::client(SECRET.as_bytes(), &hello, &greeting).is_ok());
    reflect.write_all(&raw_frame(&greeting)).unwrap();
    assert_eq!(recv(&mut reflect), None);
    wait_for(5, "the reflection in the log", || {
        (refusals(&node) == 3).then_some(())
    });
    assert_eq!(field(&node, "role"), "secondary");
}

fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn q23_the_heartbeat_connections_stay_sealed_in_the_workers() {
    let (node, addr) = lone_node("hmac-heartbeats", &hmac_key(SECRET));
    wait_for(10, "the secondary role", || {
        (field(&node, "role") == "secondary").then_some(())
    });
    // The test is the primary, 127.0.0.2, and shakes hands in sessions.
    let mut first = connect_from("127.0.0.2", addr);
    let (_, mut s1) = open_session(&mut first, 1);
    let stage1 = Handshake1 {
        resource: "www".into(),
        priority: Some(1),
        auth: None,
        heartbeat_ms: None,
    };
    first.write_all(&frame(&s1.seal(&stage1.to_nv()))).unwrap();
    let reply = s1.open(&recv(&mut first).unwrap()).unwrap();
    let Ok(Handshake1Reply::Token(token)) = Handshake1Reply::from_nv(&reply) else {
        panic!("{reply:?}")
    };
    let mut second = connect_from("127.0.0.2", addr);
    let (_, mut s2) = open_session(&mut second, 2);
    let stage2 = Handshake2 {
        auth: None,
        resource: "www".into(),
        token,
        resuid: 0,
    };
    second.write_all(&frame(&s2.seal(&stage2.to_nv()))).unwrap();
    // The secondary worker confirms, continuing the first session.
    let confirm = s1.open(&recv(&mut first).unwrap()).unwrap();
    assert_eq!(
        Handshake2Confirm::from_nv(&confirm),
        Ok(Handshake2Confirm { resuid: 0 })
    );

    let heartbeat = frame(&s1.seal(&HeartbeatRequest::new(State::Run, 1).to_nv()));
    first.write_all(&heartbeat).unwrap();
    let reply = HeartbeatReply::from_nv(&s2.open(&recv(&mut second).unwrap()).unwrap());
    assert_eq!(reply.seq, Some(1));
    assert!(
        matches!(reply.status, HeartbeatStatus::State(_)),
        "{reply:?}"
    );
    assert!(remote_line(&node, "127.0.0.2").ends_with("(connected)"));

    // The same heartbeat again: refused, logged, both connections closed.
    first.write_all(&heartbeat).unwrap();
    assert_eq!(recv(&mut second), None);
    wait_for(5, "the refusal in the worker's log", || {
        node.log()
            .lines()
            .any(|l| {
                l.contains("(secondary) Connection to remote tcp4://127.0.0.2:")
                    && l.contains("refusing a frame: MAC mismatch")
            })
            .then_some(())
    });
    assert!(!node.running());
}

#[test]
fn q23_a_request_with_the_legacy_digest_is_refused_by_an_hmac_node() {
    let (node, addr) = lone_node("hmac-legacy", &hmac_key(SECRET));
    wait_for(10, "the secondary role", || {
        (field(&node, "role") == "secondary").then_some(())
    });
    let signed = |stream: &TcpStream| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (SocketAddr::V4(c), SocketAddr::V4(s)) =
            (stream.local_addr().unwrap(), stream.peer_addr().unwrap())
        else {
            unreachable!()
        };
        Some(AuthFields::compute(
            Algorithm::Sha256,
            SECRET.as_bytes(),
            now,
            c,
            s,
        ))
    };
    let mut stream = connect(addr);
    let poll = StatusPoll {
        auth: signed(&stream),
        resource: "www".into(),
    };
    stream.write_all(&frame(&poll.to_nv())).unwrap();
    assert_eq!(recv(&mut stream), None, "no status without a session");

    let mut stream = connect(addr);
    let complaint = Complaint {
        auth: signed(&stream),
        resource: "www".into(),
    };
    stream.write_all(&frame(&complaint.to_nv())).unwrap();
    let refusal = NvList::decode(&recv(&mut stream).unwrap()).unwrap();
    assert_eq!(
        refusal.get_str("errmsg"),
        Some("No access to the resource.")
    );
    wait_for(5, "both refusals in the log", || {
        let log = node.log();
        (log.contains("Control request from 127.0.0.3:")
            && log.lines().any(|l| {
                l.contains("[www] Authentication of 127.0.0.3:")
                    && l.ends_with(
                        "The key is HMAC-SHA256: a request outside a session is refused.",
                    )
            }))
        .then_some(())
    });
    assert!(!node.hooks().contains(&"complain www".to_string()));
}

#[test]
fn q23_a_node_with_the_legacy_digest_refuses_a_hello() {
    let key = format!("key {{ algorithm SHA256 secret \"{SECRET}\" }}");
    let (node, addr) = lone_node("hmac-downgrade", &key);
    let mut stream = connect(addr);
    let hello = Hello {
        resource: "www".into(),
        nonce: [1; 16],
    };
    stream.write_all(&frame(&hello.to_nv())).unwrap();
    let refusal = NvList::decode(&recv(&mut stream).unwrap()).unwrap();
    assert_eq!(
        refusal.get_str("errmsg"),
        Some("No access to the resource.")
    );
    assert_eq!(recv(&mut stream), None);
    wait_for(5, "the refusal in the log", || {
        node.log()
            .contains("[www] Refusing an HMAC-SHA256 hello from 127.0.0.3:")
            .then_some(())
    });
}
