//! HMAC-SHA256 sessions (doc/quirks.md Q23): the key mode that authenticates
//! every frame of a connection, in both directions, and needs no clock.
//!
//! A connection opens with the client's hello, `{hmac_hello: Nc (uint8[16]),
//! hmac_resource: name}`, which is not authenticated: it only says whose key
//! to use. It has no `resource` field, so a node that does not know this
//! mode closes the connection without acting on it. The server answers
//! `{hmac_nonce: Ns (uint8[16])}` sealed, which proves to the client that
//! the server holds the key; from then on every frame either way is sealed.
//!
//! Sealing appends one element `mac` (uint8[32]) as the last element:
//!
//! ```text
//! mac = HMAC-SHA256(secret, LABEL || sender || counter || Nc || Ns
//!                           || len(resource) || resource || body)
//! ```
//!
//! `LABEL` is the 22 bytes `hastmon-hmac-sha256-v1`, `sender` one byte
//! (`C` from the client, `S` from the server), `counter` the number of
//! frames the sender sealed before on this connection (u64 LE), `len` a
//! u32 LE, and `body` the payload bytes before the `mac` element, exactly
//! as received. The counter is not sent: each side counts, so a replayed,
//! dropped, reordered or reflected frame fails the check.
//!
//! Pure: the caller supplies both nonces and does the I/O.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::nv::{NvError, NvList};

/// The configuration name of this mode.
pub const ALGORITHM: &str = "HMAC-SHA256";
pub const NONCE_LEN: usize = 16;
pub const MAC_LEN: usize = 32;
pub type Nonce = [u8; NONCE_LEN];

pub const FIELD_HELLO: &str = "hmac_hello";
pub const FIELD_RESOURCE: &str = "hmac_resource";
pub const FIELD_NONCE: &str = "hmac_nonce";
pub const FIELD_MAC: &str = "mac";

const LABEL: &[u8; 22] = b"hastmon-hmac-sha256-v1";

/// The `mac` element as our encoder writes it: type uint8 array (10),
/// namesize 4, dsize 32, `mac` and its NUL padded to 8, then the value.
const MAC_HEADER: [u8; 14] = [10, 4, 32, 0, 0, 0, b'm', b'a', b'c', 0, 0, 0, 0, 0];
const MAC_ELEMENT_LEN: usize = MAC_HEADER.len() + MAC_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Opened the connection and sent the hello.
    Client,
    Server,
}

impl Side {
    fn byte(self) -> u8 {
        match self {
            Side::Client => b'C',
            Side::Server => b'S',
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HmacError {
    /// The payload does not end with a `mac` element.
    MacMissing,
    /// The MAC is wrong.
    Mismatch,
    /// The MAC is right but the body is not an nv list.
    Payload(NvError),
    /// The server's first answer has no 16-byte `hmac_nonce`.
    NonceMissing,
}

impl fmt::Display for HmacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HmacError::MacMissing => f.write_str("the frame has no MAC"),
            HmacError::Mismatch => f.write_str(
                "MAC mismatch (another key, or an altered, replayed or reordered frame)",
            ),
            HmacError::Payload(e) => write!(f, "invalid payload: {e}"),
            HmacError::NonceMissing => f.write_str("the answer to the hello has no nonce"),
        }
    }
}

impl std::error::Error for HmacError {}

/// The client's first frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub resource: String,
    pub nonce: Nonce,
}

impl Hello {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_u8_array(FIELD_HELLO, &self.nonce)
            .add_string(FIELD_RESOURCE, &self.resource);
        nv
    }

    /// `None` unless the list is a well-formed hello.
    pub fn from_nv(nv: &NvList) -> Option<Hello> {
        Some(Hello {
            nonce: Nonce::try_from(nv.get_u8_array(FIELD_HELLO)?).ok()?,
            resource: String::from_utf8_lossy(nv.get_string_bytes(FIELD_RESOURCE)?).into_owned(),
        })
    }
}

/// What a session must remember between frames, without the key: handed
/// from the main process to a worker with the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub side: Side,
    pub client_nonce: Nonce,
    pub server_nonce: Nonce,
    /// Frames sealed so far.
    pub sent: u64,
    /// Frames opened so far.
    pub received: u64,
}

/// One TCP connection's HMAC session.
#[derive(Clone)]
pub struct Session {
    key: Vec<u8>,
    resource: String,
    state: SessionState,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Session")
            .field("resource", &self.resource)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn from_state(secret: &[u8], resource: &str, state: SessionState) -> Session {
        Session {
            key: secret.to_vec(),
            resource: resource.to_string(),
            state,
        }
    }

    /// The server's session for a hello; its first sealed frame is
    /// `greeting()`.
    pub fn server(secret: &[u8], hello: &Hello, server_nonce: Nonce) -> Session {
        Session::from_state(
            secret,
            &hello.resource,
            SessionState {
                side: Side::Server,
                client_nonce: hello.nonce,
                server_nonce,
                sent: 0,
                received: 0,
            },
        )
    }

    /// The server's answer to the hello, to be sealed.
    pub fn greeting(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_u8_array(FIELD_NONCE, &self.state.server_nonce);
        nv
    }

    /// The client's session, from the server's sealed answer to `hello`:
    /// fails unless the server sealed it with the same key.
    pub fn client(secret: &[u8], hello: &Hello, payload: &[u8]) -> Result<Session, HmacError> {
        let body = split(payload)?.0;
        let list = NvList::decode(body).map_err(|_| HmacError::NonceMissing)?;
        let server_nonce = list
            .get_u8_array(FIELD_NONCE)
            .and_then(|n| Nonce::try_from(n).ok())
            .ok_or(HmacError::NonceMissing)?;
        let mut session = Session::from_state(
            secret,
            &hello.resource,
            SessionState {
                side: Side::Client,
                client_nonce: hello.nonce,
                server_nonce,
                sent: 0,
                received: 0,
            },
        );
        session.open(payload)?;
        Ok(session)
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Whether the session uses this secret (both come from the local
    /// configuration, so the comparison need not be constant-time).
    pub fn has_secret(&self, secret: &[u8]) -> bool {
        self.key == secret
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    /// `list` with its `mac` appended.
    pub fn seal(&mut self, list: &NvList) -> NvList {
        let tag = self
            .mac(self.state.side, self.state.sent, &list.encode())
            .finalize()
            .into_bytes();
        self.state.sent += 1;
        let mut sealed = list.clone();
        sealed.add_u8_array(FIELD_MAC, &tag);
        sealed
    }

    /// Checks the next frame from the other side and returns it without
    /// its `mac`. After an error the connection must be closed: the
    /// counters no longer agree.
    pub fn open(&mut self, payload: &[u8]) -> Result<NvList, HmacError> {
        let (body, tag) = split(payload)?;
        let sender = self.state.side.other();
        self.mac(sender, self.state.received, body)
            .verify_slice(tag)
            .map_err(|_| HmacError::Mismatch)?;
        let list = NvList::decode(body).map_err(HmacError::Payload)?;
        self.state.received += 1;
        Ok(list)
    }

    fn mac(&self, sender: Side, counter: u64, body: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        m.update(LABEL);
        m.update(&[sender.byte()]);
        m.update(&counter.to_le_bytes());
        m.update(&self.state.client_nonce);
        m.update(&self.state.server_nonce);
        // Names are at most 254 bytes (config), so this cannot truncate.
        m.update(&(self.resource.len() as u32).to_le_bytes());
        m.update(self.resource.as_bytes());
        m.update(body);
        m
    }
}

/// The body and the MAC of a sealed payload, whose last element must be
/// exactly the `mac` element our encoder writes.
fn split(payload: &[u8]) -> Result<(&[u8], &[u8]), HmacError> {
    let at = payload
        .len()
        .checked_sub(MAC_ELEMENT_LEN)
        .ok_or(HmacError::MacMissing)?;
    let (body, element) = payload.split_at(at);
    let (header, tag) = element.split_at(MAC_HEADER.len());
    if header != MAC_HEADER {
        return Err(HmacError::MacMissing);
    }
    Ok((body, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NC: Nonce = [1; 16];
    const NS: Nonce = [2; 16];

    fn hello() -> Hello {
        Hello {
            resource: "www".into(),
            nonce: NC,
        }
    }

    /// A server and a client that completed the greeting.
    fn pair(server_key: &[u8], client_key: &[u8]) -> Result<(Session, Session), HmacError> {
        let mut server = Session::server(server_key, &hello(), NS);
        let greeting = server.seal(&server.greeting()).encode();
        let client = Session::client(client_key, &hello(), &greeting)?;
        Ok((server, client))
    }

    fn heartbeat(seq: u64) -> NvList {
        let mut nv = NvList::new();
        nv.add_u8("cmd", 1).add_u8("state", 3).add_u64("seq", seq);
        nv
    }

    #[test]
    fn the_mac_element_is_what_our_encoder_writes() {
        let mut nv = NvList::new();
        nv.add_u8_array(FIELD_MAC, &[7; MAC_LEN]);
        let bytes = nv.encode();
        assert_eq!(bytes[..14], MAC_HEADER);
        assert_eq!(bytes.len(), MAC_ELEMENT_LEN);
    }

    #[test]
    fn hello_round_trips_and_has_no_resource_field() {
        let nv = hello().to_nv();
        assert_eq!(Hello::from_nv(&nv), Some(hello()));
        assert!(!nv.contains("resource"));
        let mut short = NvList::new();
        short
            .add_u8_array(FIELD_HELLO, &[1; 8])
            .add_string(FIELD_RESOURCE, "www");
        assert_eq!(Hello::from_nv(&short), None);
    }

    #[test]
    fn frames_round_trip_both_ways_with_counters() {
        let (mut server, mut client) = pair(b"k", b"k").unwrap();
        for seq in 1..=3 {
            let sealed = client.seal(&heartbeat(seq));
            assert_eq!(server.open(&sealed.encode()), Ok(heartbeat(seq)));
            let sealed = server.seal(&heartbeat(seq + 10));
            assert_eq!(client.open(&sealed.encode()), Ok(heartbeat(seq + 10)));
        }
        assert_eq!(client.state().sent, 3);
        assert_eq!(client.state().received, 4);
        assert_eq!(server.state().sent, 4);
        assert_eq!(server.state().received, 3);
    }

    #[test]
    fn a_session_continues_from_its_state() {
        let (mut server, client) = pair(b"k", b"k").unwrap();
        let mut moved = Session::from_state(b"k", "www", client.state());
        let sealed = moved.seal(&heartbeat(1));
        assert_eq!(server.open(&sealed.encode()), Ok(heartbeat(1)));
    }

    #[test]
    fn changing_any_byte_is_refused() {
        let (server, mut client) = pair(b"k", b"k").unwrap();
        let bytes = client.seal(&heartbeat(1)).encode();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            let mut s = server.clone();
            assert!(s.open(&altered).is_err(), "byte {i}");
            assert_eq!(s.state().received, 0);
        }
        let mut s = server.clone();
        assert_eq!(
            s.open(&bytes[..bytes.len() - 1]),
            Err(HmacError::MacMissing)
        );
        assert_eq!(
            server.clone().open(&heartbeat(1).encode()),
            Err(HmacError::MacMissing)
        );
    }

    #[test]
    fn a_replayed_or_reordered_frame_is_refused() {
        let (mut server, mut client) = pair(b"k", b"k").unwrap();
        let first = client.seal(&heartbeat(1)).encode();
        let second = client.seal(&heartbeat(2)).encode();
        assert_eq!(
            server.clone().open(&second),
            Err(HmacError::Mismatch),
            "out of order"
        );
        assert!(server.open(&first).is_ok());
        assert_eq!(server.open(&first), Err(HmacError::Mismatch), "replay");
        assert!(server.open(&second).is_ok());
    }

    #[test]
    fn a_frame_sent_back_to_its_sender_is_refused() {
        let (_, mut client) = pair(b"k", b"k").unwrap();
        let mine = client.seal(&heartbeat(1)).encode();
        // The client has opened one frame (the greeting) and sealed one.
        let mut c = client.clone();
        c.state.received = 0;
        assert_eq!(c.open(&mine), Err(HmacError::Mismatch));
        assert_eq!(client.open(&mine), Err(HmacError::Mismatch));
    }

    #[test]
    fn another_key_or_resource_or_nonce_is_refused() {
        assert_eq!(pair(b"k", b"other").unwrap_err(), HmacError::Mismatch);
        let mut server = Session::server(b"k", &hello(), NS);
        let greeting = server.seal(&server.greeting()).encode();
        let other = Hello {
            resource: "ftp".into(),
            nonce: NC,
        };
        assert!(Session::client(b"k", &other, &greeting).is_err());
        let fresh = Hello {
            resource: "www".into(),
            nonce: [9; 16],
        };
        assert!(Session::client(b"k", &fresh, &greeting).is_err());
    }

    #[test]
    fn an_answer_without_a_nonce_is_refused() {
        let mut server = Session::server(b"k", &hello(), NS);
        let sealed = server.seal(&heartbeat(1)).encode();
        assert_eq!(
            Session::client(b"k", &hello(), &sealed).unwrap_err(),
            HmacError::NonceMissing
        );
    }

    #[test]
    fn the_mac_input_is_exact() {
        // Computed independently: HMAC-SHA256("k", LABEL 'S' 0u64 Nc Ns
        // 3u32 "www" body) for the greeting's body.
        let mut server = Session::server(b"k", &hello(), NS);
        let body = server.greeting().encode();
        let mut input = LABEL.to_vec();
        input.push(b'S');
        input.extend_from_slice(&0u64.to_le_bytes());
        input.extend_from_slice(&NC);
        input.extend_from_slice(&NS);
        input.extend_from_slice(&3u32.to_le_bytes());
        input.extend_from_slice(b"www");
        input.extend_from_slice(&body);
        let mut m = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        m.update(&input);
        let expected = m.finalize().into_bytes();
        let sealed = server.seal(&server.greeting());
        assert_eq!(sealed.get_u8_array(FIELD_MAC), Some(&expected[..]));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let s = Session::server(b"very secret", &hello(), NS);
        assert!(!format!("{s:?}").contains("very secret"));
        assert!(!format!("{s:?}").contains("118, 101, 114, 121"));
    }
}
