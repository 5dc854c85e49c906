//! A worker's peer connections: the two TCP connections of one
//! primary–secondary pair, handed over by the main process. One carries
//! what this side sends, the other what it receives (doc/protocol.md §4.3).
//! With an HMAC-SHA256 key each connection continues the session the main
//! process opened on it: everything sent is sealed, everything received
//! must open.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};

use crate::event::{Interest, Poller, Token};
use crate::proto::hmac::Session;
use crate::proto::{FrameReader, NvList, encode_frame};

/// Link `r` reads with token `BASE + r`.
const BASE: u64 = 100;

pub fn remote_of(token: Token) -> Option<usize> {
    token.0.checked_sub(BASE).map(|r| r as usize)
}

struct Link {
    send_on: TcpStream,
    recv_on: TcpStream,
    reader: FrameReader,
    /// The sessions of `send_on` and `recv_on`.
    sessions: Option<(Session, Session)>,
}

#[derive(Default)]
pub struct Links {
    links: HashMap<usize, Link>,
}

/// What reading a link gave.
pub enum Received {
    Lists(Vec<NvList>),
    /// Closed, failed, or sent something that is not a frame or that its
    /// session refuses.
    Lost(String),
}

impl Links {
    pub fn add(
        &mut self,
        poller: &mut Poller,
        remote: usize,
        send_on: OwnedFd,
        recv_on: OwnedFd,
        sessions: Option<(Session, Session)>,
    ) -> std::io::Result<()> {
        self.remove(poller, remote);
        // Both arrive non-blocking (see `Worker::connected`).
        let send_on = TcpStream::from(send_on);
        let recv_on = TcpStream::from(recv_on);
        poller.register(recv_on.as_fd(), Token(BASE + remote as u64), Interest::Read)?;
        self.links.insert(
            remote,
            Link {
                send_on,
                recv_on,
                reader: FrameReader::new(),
                sessions,
            },
        );
        Ok(())
    }

    /// The remote of the one link a secondary has.
    pub fn only(&self) -> Option<usize> {
        self.links.keys().next().copied()
    }

    pub fn remove(&mut self, poller: &mut Poller, remote: usize) {
        if let Some(l) = self.links.remove(&remote) {
            let _ = poller.deregister(l.recv_on.as_fd());
        }
    }

    /// Sends one frame on the link's sending connection, or, with
    /// `on_recv`, on the receiving one (the secondary's handshake
    /// confirmation). Frames are small and peers read them at once; a
    /// full socket buffer means the peer is gone.
    pub fn send(&mut self, remote: usize, list: &NvList, on_recv: bool) -> Result<(), String> {
        let link = self.links.get_mut(&remote).ok_or("not connected")?;
        let (stream, session) = match (on_recv, link.sessions.as_mut()) {
            (false, s) => (&mut link.send_on, s.map(|(s, _)| s)),
            (true, s) => (&mut link.recv_on, s.map(|(_, r)| r)),
        };
        let sealed;
        let list = match session {
            Some(s) => {
                sealed = s.seal(list);
                &sealed
            }
            None => list,
        };
        let frame = encode_frame(list).map_err(|e| e.to_string())?;
        match stream.write(&frame) {
            Ok(n) if n == frame.len() => Ok(()),
            Ok(_) => Err("the remote node does not take what we send".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn read(&mut self, remote: usize) -> Received {
        let Some(link) = self.links.get_mut(&remote) else {
            return Received::Lists(Vec::new());
        };
        let mut lists = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match link.recv_on.read(&mut buf) {
                Ok(0) => return Received::Lost("connection closed by the remote node".into()),
                Ok(n) => link.reader.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Received::Lost(e.to_string()),
            }
        }
        loop {
            let payload = match link.reader.next_payload() {
                Ok(Some(p)) => p,
                Ok(None) => return Received::Lists(lists),
                Err(e) => return Received::Lost(e.to_string()),
            };
            let list = match link.sessions.as_mut() {
                Some((_, s)) => s
                    .open(&payload)
                    .map_err(|e| format!("refusing a frame: {e}")),
                None => NvList::decode(&payload).map_err(|e| format!("invalid payload: {e}")),
            };
            match list {
                Ok(l) => lists.push(l),
                Err(e) => return Received::Lost(e),
            }
        }
    }
}
