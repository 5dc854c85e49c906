//! Forking a worker: the child closes every descriptor of the main
//! process, then runs `worker::run` and never returns here.

use std::os::fd::RawFd;

use nix::unistd::{ForkResult, Pid};

use crate::config::Resource;
use crate::types::Role;
use crate::worker::{self, channel::Channel};

/// Roles that run a worker process. The secondary's is started when a
/// primary connects, so it is not started on a role change.
pub fn has_worker(role: Role) -> bool {
    role == Role::Primary
}

/// Forks a worker for `resource` in `role`. `close` lists every
/// descriptor of the main process; the child closes them all before it
/// does anything else.
pub fn fork(
    close: &[RawFd],
    resource: &Resource,
    role: Role,
    debug: u8,
    foreground: bool,
) -> std::io::Result<(Pid, Channel)> {
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
                resource: resource.clone(),
                role,
                channel: theirs,
                debug,
                foreground,
                use_syslog,
            });
            std::process::exit(code)
        }
    }
}
