//! The control socket: a UNIX socket, mode 0600, each connection read
//! without blocking the loop and dropped when it misses its deadline.

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::inbox::Inbox;
use crate::event::{Poller, Token};
use crate::log_warning;
use crate::proto::NvList;

pub struct ControlServer {
    path: PathBuf,
    listener: UnixListener,
    pub inbox: Inbox<UnixStream>,
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
            inbox: Inbox::new("control", CONN_BASE, CONN_END),
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
                Ok((stream, _)) => self.inbox.add(poller, stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log_warning!("Unable to accept control connection: {e}.");
                    return;
                }
            }
        }
    }

    pub fn read(&mut self, poller: &mut Poller, id: u64) -> Option<NvList> {
        self.inbox.read(poller, id)
    }

    /// Takes a connection off its request deadline: its answer waits.
    pub fn take(&mut self, poller: &mut Poller, id: u64) -> Option<UnixStream> {
        self.inbox.take(poller, id)
    }

    pub fn reply(&mut self, poller: &mut Poller, id: u64, reply: Option<NvList>) {
        self.inbox.reply(poller, id, reply);
    }

    pub fn expire(&mut self, poller: &mut Poller, id: u64) {
        self.inbox.expire(poller, id);
    }

    /// Stops watching the socket, and closes its connections (which are
    /// deregistered first: a descriptor closed while registered leaves a
    /// stale registration that a later descriptor of the same number
    /// collides with).
    fn deregister(&mut self, poller: &mut Poller) {
        let _ = poller.deregister(self.listener.as_fd());
        self.inbox.close_all(poller);
    }

    /// Every descriptor this holds, for a forked worker to close.
    pub fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.push(self.listener.as_raw_fd());
        self.inbox.descriptors(out);
    }

    /// Stops watching and closes the socket and its connections, and
    /// removes the socket file.
    pub fn remove(mut self, poller: &mut Poller) {
        self.deregister(poller);
        let _ = std::fs::remove_file(&self.path);
    }

    /// Removes the socket file of a server never registered (start-up
    /// failed before the event loop).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_leaves_nothing_registered() {
        let dir = std::env::temp_dir().join(format!("hastmon-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl");
        let mut poller = Poller::new().unwrap();
        let mut server = ControlServer::bind(&path).unwrap();
        server.register(&mut poller).unwrap();
        let _idle = [
            UnixStream::connect(&path).unwrap(),
            UnixStream::connect(&path).unwrap(),
        ];
        server.accept(&mut poller);
        assert_eq!(poller.registrations(), 3, "the listener and two clients");
        server.remove(&mut poller);
        assert_eq!(poller.registrations(), 0);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
