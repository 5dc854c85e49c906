//! The control socket: a UNIX socket, mode 0600, each connection read
//! without blocking the loop and dropped when it misses its deadline.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::event::{Poller, TimerId, Token};
use crate::proto::{FrameReader, NvList, encode_frame};
use crate::{log_debug, log_warning};

/// A control client gets this long to send its one request (0.3.4 waited
/// for ever, freezing the daemon: Q27).
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

pub struct ControlServer {
    path: PathBuf,
    listener: UnixListener,
    conns: HashMap<u64, Conn>,
    next_id: u64,
}

struct Conn {
    stream: UnixStream,
    reader: FrameReader,
}

/// Tokens and timer ids of control connections live in their own range.
pub const LISTENER: Token = Token(1);
const CONN_BASE: u64 = 1 << 32;
const CONN_END: u64 = 2 << 32;

pub fn owns(id: u64) -> bool {
    (CONN_BASE..CONN_END).contains(&id)
}

impl ControlServer {
    /// Binds the socket, replacing a stale one left by a crashed daemon but
    /// never one a running daemon still answers on.
    pub fn bind(path: &Path) -> std::io::Result<ControlServer> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    ErrorKind::AddrInUse,
                    "another daemon answers on it",
                ));
            }
            std::fs::remove_file(path)?;
        }
        // Created 0600 from the start: no window in which others may connect.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(old);
        let listener = bound?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            listener,
            conns: HashMap::new(),
            next_id: CONN_BASE,
        })
    }

    pub fn register(&self, poller: &mut Poller) -> std::io::Result<()> {
        poller.register(
            self.listener.as_fd(),
            LISTENER,
            crate::event::Interest::Read,
        )
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self, poller: &mut Poller) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let id = self.next_id;
                    self.next_id = if id + 1 >= CONN_END {
                        CONN_BASE
                    } else {
                        id + 1
                    };
                    if let Err(e) = stream.set_nonblocking(true).and_then(|()| {
                        poller.register(stream.as_fd(), Token(id), crate::event::Interest::Read)?;
                        poller.set_timer(TimerId(id), REQUEST_DEADLINE, false)
                    }) {
                        log_warning!("Unable to accept control connection: {e}.");
                        let _ = poller.deregister(stream.as_fd());
                        continue;
                    }
                    self.conns.insert(
                        id,
                        Conn {
                            stream,
                            reader: FrameReader::new(),
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log_warning!("Unable to accept control connection: {e}.");
                    return;
                }
            }
        }
    }

    /// Reads from a connection; returns its request once complete. A
    /// connection that errs, closes early or sends garbage is dropped.
    pub fn read(&mut self, poller: &mut Poller, token: Token) -> Option<(u64, NvList)> {
        let conn = self.conns.get_mut(&token.0)?;
        let mut buf = [0u8; 8192];
        loop {
            match conn.reader.next_list() {
                Ok(Some(list)) => return Some((token.0, list)),
                Ok(None) => {}
                Err(e) => {
                    log_warning!("Unable to receive control request: {e}.");
                    self.close(poller, token.0);
                    return None;
                }
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    log_debug!(1, "Control connection closed before a full request.");
                    self.close(poller, token.0);
                    return None;
                }
                Ok(n) => conn.reader.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log_warning!("Unable to receive control request: {e}.");
                    self.close(poller, token.0);
                    return None;
                }
            }
        }
    }

    /// Sends the reply (if any) and closes. Replies are small; a client
    /// that does not take one at once loses it rather than stall the loop.
    pub fn reply(&mut self, poller: &mut Poller, id: u64, reply: Option<NvList>) {
        if let (Some(reply), Some(conn)) = (reply, self.conns.get_mut(&id)) {
            match encode_frame(&reply) {
                Ok(frame) => {
                    let _ = conn.stream.set_nonblocking(false);
                    let _ = conn
                        .stream
                        .set_write_timeout(Some(Duration::from_millis(100)));
                    if let Err(e) = conn.stream.write_all(&frame) {
                        log_warning!("Unable to send control reply: {e}.");
                    }
                }
                Err(e) => log_warning!("Unable to encode control reply: {e}."),
            }
        }
        self.close(poller, id);
    }

    /// A connection's deadline passed.
    pub fn expire(&mut self, poller: &mut Poller, id: u64) {
        if self.conns.contains_key(&id) {
            log_warning!("Control client sent no complete request in time; closing.");
            self.close(poller, id);
        }
    }

    fn close(&mut self, poller: &mut Poller, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            let _ = poller.deregister(conn.stream.as_fd());
            let _ = poller.cancel_timer(TimerId(id));
        }
    }

    /// Every descriptor this holds, for a forked worker to close.
    pub fn descriptors(&self, out: &mut Vec<std::os::fd::RawFd>) {
        use std::os::fd::AsRawFd;
        out.push(self.listener.as_raw_fd());
        out.extend(self.conns.values().map(|c| c.stream.as_raw_fd()));
    }

    /// Removes the socket file; the descriptor closes when dropped.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
