//! A worker's peer connections: the two TCP connections of one
//! primary–secondary pair, handed over by the main process. One carries
//! what this side sends, the other what it receives (protocol.md §4.3).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};

use crate::event::{Interest, Poller, Token};
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
}

#[derive(Default)]
pub struct Links {
    links: HashMap<usize, Link>,
}

/// What reading a link gave.
pub enum Received {
    Lists(Vec<NvList>),
    /// Closed, failed, or sent something that is not a frame.
    Lost(String),
}

impl Links {
    pub fn add(
        &mut self,
        poller: &mut Poller,
        remote: usize,
        send_on: OwnedFd,
        recv_on: OwnedFd,
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
        let frame = encode_frame(list).map_err(|e| e.to_string())?;
        let stream = if on_recv {
            &mut link.recv_on
        } else {
            &mut link.send_on
        };
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
            match link.reader.next_list() {
                Ok(Some(l)) => lists.push(l),
                Ok(None) => return Received::Lists(lists),
                Err(e) => return Received::Lost(e.to_string()),
            }
        }
    }
}
