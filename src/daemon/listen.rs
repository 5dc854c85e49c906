//! The listen socket: TCP connections from peers (primaries' handshakes,
//! watchdogs' polls and complaints). A peer that is listed nowhere in the
//! configuration is closed before a byte is read (Q3).

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use super::inbox::Inbox;
use crate::event::{Interest, Poller, Token};
use crate::log_warning;

pub const LISTENER: Token = Token(2);
const CONN_BASE: u64 = 6 << 32;
const CONN_END: u64 = 7 << 32;

pub fn owns(id: u64) -> bool {
    (CONN_BASE..CONN_END).contains(&id)
}

pub struct ListenServer {
    listener: TcpListener,
    pub inbox: Inbox<TcpStream>,
    known: Vec<IpAddr>,
}

impl ListenServer {
    pub fn bind(addr: SocketAddr, known: Vec<IpAddr>) -> std::io::Result<ListenServer> {
        let listener = crate::sys::net::listen_tcp(addr)?;
        listener.set_nonblocking(true)?;
        Ok(ListenServer {
            listener,
            inbox: Inbox::new("peer", CONN_BASE, CONN_END),
            known,
        })
    }

    pub fn register(&self, poller: &mut Poller) -> std::io::Result<()> {
        poller.register(self.listener.as_fd(), LISTENER, Interest::Read)
    }

    pub fn set_known(&mut self, known: Vec<IpAddr>) {
        self.known = known;
    }

    /// Stops watching the socket and its connections (before it is
    /// replaced by a reload).
    pub fn deregister(&mut self, poller: &mut Poller) {
        let _ = poller.deregister(self.listener.as_fd());
        self.inbox.close_all(poller);
    }

    pub fn accept(&mut self, poller: &mut Poller) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if !self
                        .known
                        .iter()
                        .any(|ip| crate::node::access::same_ip(*ip, peer.ip()))
                    {
                        crate::log_limited!(Warning, "Client {} isn't known.", peer.ip());
                        continue;
                    }
                    crate::log_debug!(
                        1,
                        "Connection from {peer} to {}.",
                        stream.local_addr().map_or("?".into(), |a| a.to_string())
                    );
                    let _ = stream.set_nodelay(true);
                    self.inbox.add(poller, stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log_warning!("Unable to accept a connection: {e}.");
                    return;
                }
            }
        }
    }

    pub fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.push(self.listener.as_raw_fd());
        self.inbox.descriptors(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deregistering_leaves_nothing_registered() {
        let mut poller = Poller::new().unwrap();
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let mut server = ListenServer::bind((loopback, 0).into(), vec![loopback]).unwrap();
        server.register(&mut poller).unwrap();
        let addr = server.listener.local_addr().unwrap();
        let _idle = TcpStream::connect(addr).unwrap();
        // The connection may take a moment to be acceptable.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while poller.registrations() < 2 && std::time::Instant::now() < deadline {
            server.accept(&mut poller);
        }
        assert_eq!(poller.registrations(), 2, "the listener and one peer");
        server.deregister(&mut poller);
        assert_eq!(poller.registrations(), 0);
    }
}
