//! Forking a worker: the child closes every descriptor of the main
//! process, then runs `worker::run` and never returns here.

use std::os::fd::{AsFd, RawFd};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid};

use crate::event::{Interest, Poller, Token};

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

/// Watches a new worker: its channel for reading under `token`, and its
/// exit. On failure nothing of it stays registered, and the worker is
/// killed and reaped here: a worker whose exit the poller would never
/// report must not live on unseen.
pub fn watch(
    poller: &mut Poller,
    channel: &Channel,
    token: Token,
    pid: Pid,
) -> std::io::Result<()> {
    let watched = poller
        .register(channel.as_fd(), token, Interest::Read)
        .and_then(|()| {
            poller.watch_process(pid).inspect_err(|_| {
                let _ = poller.deregister(channel.as_fd());
            })
        });
    if watched.is_err() {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
    watched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_cannot_be_watched_is_killed_and_nothing_stays_registered() {
        let (ours, _theirs) = Channel::pair().unwrap();
        // SAFETY: the child only calls pause(2) until it is killed; it
        // never returns into the test harness.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            ForkResult::Child => loop {
                // SAFETY: async-signal-safe; SIGKILL ends it.
                unsafe { libc::pause() };
            },
            ForkResult::Parent { child } => child,
        };
        let mut poller = Poller::new().unwrap();
        // The channel is taken already: registering it again fails.
        poller
            .register(ours.as_fd(), Token(1), Interest::Read)
            .unwrap();
        let err = watch(&mut poller, &ours, Token(2), pid).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        // Killed and reaped: no such process any more.
        assert_eq!(kill(pid, None), Err(nix::errno::Errno::ESRCH));
        assert_eq!(poller.registrations(), 1, "only the test's own");
    }

    #[test]
    fn a_watched_worker_is_registered_once() {
        let (ours, _theirs) = Channel::pair().unwrap();
        // SAFETY: the child exits at once through _exit.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            // SAFETY: _exit(2) is async-signal-safe and ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(0) },
            ForkResult::Parent { child } => child,
        };
        let mut poller = Poller::new().unwrap();
        watch(&mut poller, &ours, Token(2), pid).unwrap();
        assert_eq!(poller.registrations(), 1);
        let mut events = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !events
            .iter()
            .any(|e| matches!(e, crate::event::Event::ProcessExited { .. }))
        {
            assert!(std::time::Instant::now() < deadline, "no exit reported");
            poller
                .wait(&mut events, Some(std::time::Duration::from_millis(100)))
                .unwrap();
        }
    }
}
