//! Forking a worker: the child closes every descriptor of the main
//! process, then runs `worker::run` and never returns here.

use std::os::fd::RawFd;

use nix::unistd::{ForkResult, Pid};

use crate::config::Resource;
use crate::types::Role;
use crate::worker::{self, channel::Channel};

/// What a new worker is.
pub struct Spawn<'a> {
    pub resource: &'a Resource,
    pub role: Role,
    /// For a secondary: the remote that is its primary, and the heartbeat
    /// interval it announced.
    pub primary: Option<usize>,
    pub primary_heartbeat: Option<std::time::Duration>,
    /// A promoted primary (see `PrimaryConfig::urgent`).
    pub urgent: bool,
    pub debug: u8,
    pub foreground: bool,
    pub sandbox: crate::sandbox::Plan,
}

/// Forks a worker. `close` lists every descriptor of the main process;
/// the child closes them all before it does anything else.
pub fn fork(close: &[RawFd], spawn: Spawn<'_>) -> std::io::Result<(Pid, Channel)> {
    let (ours, theirs) = Channel::pair()?;
    let use_syslog = crate::sys::log::uses_syslog();
    // SAFETY: the main process is single-threaded, so the child starts
    // with consistent memory; it never returns into the main loop.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok((child, ours)),
        ForkResult::Child => {
            drop(ours);
            // SAFETY: the owners of these descriptors belong to the main
            // process's state, which this child never touches again: it
            // leaves through process::exit below.
            unsafe { crate::sys::fd::close_raw(close) };
            let code = worker::run(worker::Setup {
                resource: spawn.resource.clone(),
                role: spawn.role,
                primary: spawn.primary,
                primary_heartbeat: spawn.primary_heartbeat,
                urgent: spawn.urgent,
                channel: theirs,
                debug: spawn.debug,
                foreground: spawn.foreground,
                use_syslog,
                sandbox: spawn.sandbox,
            });
            std::process::exit(code)
        }
    }
}
