//! The worker processes the main process has forked: pid, channel and
//! channel token of each, by the node machine's name for it.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, RawFd};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::event::{Poller, Token};
use crate::log_error;
use crate::node::WorkerRef;
use crate::worker::channel::Channel;
use crate::worker::msg::ToWorker;

/// Channel tokens are `BASE + n`.
const BASE: u64 = 3 << 32;
const END: u64 = 4 << 32;

pub fn owns(id: u64) -> bool {
    (BASE..END).contains(&id)
}

struct Proc {
    pid: Pid,
    token: u64,
    /// Gone once the worker closed its end.
    channel: Option<Channel>,
}

#[derive(Default)]
pub struct Procs {
    procs: HashMap<WorkerRef, Proc>,
    by_token: HashMap<u64, WorkerRef>,
    next: u64,
}

impl Procs {
    /// Watches a forked worker: its channel and its exit. On failure the
    /// worker is killed and reaped, nothing of it stays registered, and
    /// the error is returned.
    pub fn add(
        &mut self,
        poller: &mut Poller,
        worker: WorkerRef,
        pid: Pid,
        channel: Channel,
    ) -> std::io::Result<()> {
        let token = BASE + self.next;
        self.next = (self.next + 1) % (END - BASE);
        super::workers::watch(poller, &channel, Token(token), pid)?;
        self.by_token.insert(token, worker);
        self.procs.insert(
            worker,
            Proc {
                pid,
                token,
                channel: Some(channel),
            },
        );
        Ok(())
    }

    pub fn by_token(&self, token: u64) -> Option<WorkerRef> {
        self.by_token.get(&token).copied()
    }

    pub fn by_pid(&self, pid: Pid) -> Option<WorkerRef> {
        self.procs
            .iter()
            .find(|(_, p)| p.pid == pid)
            .map(|(w, _)| *w)
    }

    pub fn channel(&self, worker: WorkerRef) -> Option<&Channel> {
        self.procs.get(&worker)?.channel.as_ref()
    }

    /// Stops reading a worker's channel.
    pub fn close_channel(&mut self, poller: &mut Poller, worker: WorkerRef) {
        if let Some(ch) = self.procs.get_mut(&worker).and_then(|p| p.channel.take()) {
            let _ = poller.deregister(ch.as_fd());
        }
    }

    /// A worker was reaped.
    pub fn remove(&mut self, poller: &mut Poller, worker: WorkerRef) {
        self.close_channel(poller, worker);
        if let Some(p) = self.procs.remove(&worker) {
            self.by_token.remove(&p.token);
        }
    }

    pub fn signal(&self, worker: WorkerRef, signal: Signal) {
        let Some(p) = self.procs.get(&worker) else {
            return;
        };
        if let Err(e) = kill(p.pid, signal) {
            crate::log_warning!("Unable to signal worker (pid={}): {e}.", p.pid);
        }
    }

    /// Sends to a worker; one that stopped reading is stuck, and is
    /// replaced.
    pub fn send(&self, worker: WorkerRef, msg: &ToWorker, fds: &[BorrowedFd<'_>]) {
        let Some(p) = self.procs.get(&worker) else {
            return;
        };
        let Some(ch) = p.channel.as_ref() else { return };
        if let Err(e) = ch.send(&msg.to_nv(), fds) {
            log_error!("Unable to send to the worker (pid={}): {e}.", p.pid);
            let _ = kill(p.pid, Signal::SIGKILL);
        }
    }

    pub fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.extend(
            self.procs
                .values()
                .filter_map(|p| p.channel.as_ref().map(Channel::raw_fd)),
        );
    }
}
