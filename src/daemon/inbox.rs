//! Accepted connections that each bring one framed request: read without
//! blocking the loop, dropped when they miss their deadline. Shared by
//! the control socket and the listen socket. A listen connection may
//! first open an HMAC-SHA256 session: then its request is the second
//! frame, within the same deadline, and every frame either way is sealed.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use crate::event::{Interest, Poller, TimerId, Token};
use crate::proto::hmac::Session;
use crate::proto::{FrameReader, NvList, encode_frame_within};
use crate::{log_debug, log_warning};

/// A client gets this long to send its request (0.3.4 waited for ever on
/// the control socket, freezing the daemon: Q27).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// A reply must leave at once: a client that does not take it loses it
/// rather than stall the loop.
const REPLY_TIMEOUT: Duration = Duration::from_millis(100);
/// The same on the local control socket, whose replies may be large.
const LOCAL_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

pub trait Stream: Read + Write + AsFd {
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
    /// Who is at the other end, for the log.
    fn peer(&self) -> String;
    /// The largest reply it takes, and how long writing it may take.
    fn reply_limits(&self) -> (usize, Duration) {
        (crate::proto::MAX_PAYLOAD, REPLY_TIMEOUT)
    }
}

impl Stream for std::os::unix::net::UnixStream {
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        std::os::unix::net::UnixStream::set_nonblocking(self, on)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, t)
    }
    fn peer(&self) -> String {
        "a control client".into()
    }
    /// The local administrator's: a status reply for every resource of a
    /// large node, written to a client that reads it at once.
    fn reply_limits(&self) -> (usize, Duration) {
        (crate::proto::MAX_LOCAL_PAYLOAD, LOCAL_REPLY_TIMEOUT)
    }
}

impl Stream for std::net::TcpStream {
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        std::net::TcpStream::set_nonblocking(self, on)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, t)
    }
    fn peer(&self) -> String {
        self.peer_addr()
            .map_or("an unknown peer".into(), |a| a.to_string())
    }
}

pub struct Conn<S> {
    pub stream: S,
    reader: FrameReader,
    session: Option<Session>,
}

/// Connections of one listener; their ids (tokens and timer ids) are
/// taken from `[base, end)`.
pub struct Inbox<S> {
    what: &'static str,
    conns: HashMap<u64, Conn<S>>,
    base: u64,
    end: u64,
    next_id: u64,
}

impl<S: Stream> Inbox<S> {
    pub fn new(what: &'static str, base: u64, end: u64) -> Inbox<S> {
        Inbox {
            what,
            conns: HashMap::new(),
            base,
            end,
            next_id: base,
        }
    }

    /// Starts reading a new connection.
    pub fn add(&mut self, poller: &mut Poller, stream: S) {
        let id = self.next_id;
        self.next_id = if id + 1 >= self.end {
            self.base
        } else {
            id + 1
        };
        if let Err(e) = stream.set_nonblocking(true).and_then(|()| {
            poller.register(stream.as_fd(), Token(id), Interest::Read)?;
            poller.set_timer(TimerId(id), REQUEST_DEADLINE, false)
        }) {
            log_warning!("Unable to accept {} connection: {e}.", self.what);
            let _ = poller.deregister(stream.as_fd());
            return;
        }
        self.conns.insert(
            id,
            Conn {
                stream,
                reader: FrameReader::new(),
                session: None,
            },
        );
    }

    /// Reads from a connection; returns its request once complete (opened,
    /// if the connection has a session). A connection that errs, closes
    /// early, sends garbage or a frame its session refuses is dropped.
    pub fn read(&mut self, poller: &mut Poller, id: u64) -> Option<NvList> {
        let conn = self.conns.get_mut(&id)?;
        let mut buf = [0u8; 8192];
        loop {
            let next = match conn.reader.next_payload() {
                Ok(Some(payload)) => Some(open(conn, &payload)),
                Ok(None) => None,
                Err(e) => Some(Err(e.to_string())),
            };
            match next {
                Some(Ok(list)) => return Some(list),
                None => {}
                Some(Err(e)) => {
                    match &conn.session {
                        Some(s) => log_warning!(
                            "[{}] Refusing a frame from {}: {e}; closing.",
                            s.resource(),
                            conn.stream.peer()
                        ),
                        None => log_warning!("Unable to receive {} request: {e}.", self.what),
                    }
                    self.close(poller, id);
                    return None;
                }
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    log_debug!(
                        1,
                        "The {} connection closed before a full request.",
                        self.what
                    );
                    self.close(poller, id);
                    return None;
                }
                Ok(n) => conn.reader.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log_warning!("Unable to receive {} request: {e}.", self.what);
                    self.close(poller, id);
                    return None;
                }
            }
        }
    }

    pub fn get(&self, id: u64) -> Option<&S> {
        self.conns.get(&id).map(|c| &c.stream)
    }

    /// The connection's session, if it opened one.
    pub fn session(&self, id: u64) -> Option<&Session> {
        self.conns.get(&id)?.session.as_ref()
    }

    /// Seals everything on the connection from now on, and sends the
    /// session's greeting; the connection stays open for its request.
    /// False if it was closed.
    pub fn secure(&mut self, poller: &mut Poller, id: u64, session: Session) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        let greeting = session.greeting();
        conn.session = Some(session);
        let sent = send_sealed(&mut conn.stream, conn.session.as_mut(), greeting, self.what)
            && conn.stream.set_nonblocking(true).is_ok();
        if !sent {
            self.close(poller, id);
        }
        sent
    }

    /// Sends the reply (if any; sealed with the session) and closes.
    pub fn reply(&mut self, poller: &mut Poller, id: u64, reply: Option<NvList>) {
        if let (Some(reply), Some(conn)) = (reply, self.conns.get_mut(&id)) {
            send_sealed(&mut conn.stream, conn.session.as_mut(), reply, self.what);
        }
        self.close(poller, id);
    }

    /// Stops watching a connection and hands it over (kept open).
    pub fn take(&mut self, poller: &mut Poller, id: u64) -> Option<S> {
        self.take_secure(poller, id).map(|(stream, _)| stream)
    }

    /// `take`, with the connection's session.
    pub fn take_secure(&mut self, poller: &mut Poller, id: u64) -> Option<(S, Option<Session>)> {
        let conn = self.conns.remove(&id)?;
        let _ = poller.deregister(conn.stream.as_fd());
        let _ = poller.cancel_timer(TimerId(id));
        Some((conn.stream, conn.session))
    }

    /// A connection's deadline passed.
    pub fn expire(&mut self, poller: &mut Poller, id: u64) {
        if self.conns.contains_key(&id) {
            log_warning!(
                "A {} client sent no complete request in time; closing.",
                self.what
            );
            self.close(poller, id);
        }
    }

    pub fn close_all(&mut self, poller: &mut Poller) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(poller, id);
        }
    }

    pub fn close(&mut self, poller: &mut Poller, id: u64) {
        drop(self.take(poller, id));
    }

    pub fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.extend(self.conns.values().map(|c| c.stream.as_fd().as_raw_fd()));
    }
}

fn open<S>(conn: &mut Conn<S>, payload: &[u8]) -> Result<NvList, String> {
    match conn.session.as_mut() {
        Some(s) => s.open(payload).map_err(|e| e.to_string()),
        None => NvList::decode(payload).map_err(|e| format!("invalid payload: {e}")),
    }
}

/// `send_now`, sealing with `session` if there is one.
pub fn send_sealed<S: Stream>(
    stream: &mut S,
    session: Option<&mut Session>,
    list: NvList,
    what: &str,
) -> bool {
    let list = match session {
        Some(s) => s.seal(&list),
        None => list,
    };
    send_now(stream, &list, what)
}

/// Writes one frame with a short timeout, leaving the stream blocking.
pub fn send_now<S: Stream>(stream: &mut S, list: &NvList, what: &str) -> bool {
    let (limit, timeout) = stream.reply_limits();
    match encode_frame_within(list, limit) {
        Ok(frame) => {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(timeout));
            match stream.write_all(&frame) {
                Ok(()) => true,
                Err(e) => {
                    log_warning!("Unable to send {what} reply: {e}.");
                    false
                }
            }
        }
        Err(e) => {
            log_warning!("Unable to encode {what} reply: {e}.");
            false
        }
    }
}
