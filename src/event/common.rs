//! Pieces both backends share: delays, signal sets, checks on children,
//! and reaping.

use std::io;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use super::ExitStatus;

/// Rounds a timer delay up to whole milliseconds, at least one: the
/// resolution the contract promises on every platform (and a zero delay
/// would disarm a timerfd instead of firing it).
pub(super) fn timer_delay(after: Duration) -> Duration {
    let ms = after
        .as_nanos()
        .div_ceil(1_000_000)
        .clamp(1, u64::MAX.into());
    Duration::from_millis(ms as u64)
}

pub(super) fn sigset(signals: &[Signal]) -> SigSet {
    let mut set = SigSet::empty();
    for &sig in signals {
        set.add(sig);
    }
    set
}

/// Fails if the kernel would reap our children itself (SIGCHLD set to
/// `SIG_IGN`, or `SA_NOCLDWAIT`): their exit status would be lost.
pub(super) fn check_children_waitable() -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value of this plain C struct;
    // it is only written by the kernel below.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries the current one into `old`,
    // which is a valid, writable sigaction.
    let rc = unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    if old.sa_sigaction == libc::SIG_IGN || old.sa_flags & libc::SA_NOCLDWAIT != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "SIGCHLD is ignored: children are reaped by the kernel and their status is lost",
        ));
    }
    Ok(())
}

/// Fails with `ECHILD` unless `pid` is a child of ours that has not been
/// reaped yet. Does not reap it.
pub(super) fn check_is_child(pid: Pid) -> io::Result<()> {
    if pid.as_raw() <= 0 {
        // Not a single process (0 and negatives name process groups).
        return Err(io::Error::from_raw_os_error(libc::ECHILD));
    }
    // Positive, so it fits id_t (u32 on Linux, i64 on FreeBSD).
    let id = pid.as_raw() as libc::id_t;
    // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid, writable siginfo_t; WNOWAIT leaves the
    // child waitable, WNOHANG makes the call return at once.
    let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, flags) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What became of a child we tried to reap.
pub(super) enum Reaped {
    /// Reaped now; this is how it ended.
    Now(ExitStatus),
    /// Still running (or not yet a zombie); not reaped.
    Running,
    /// Not our child any more: somebody else reaped it.
    Gone,
}

/// Reaps child `pid`: waits for it if `block`, else only if it is already a
/// zombie.
pub(super) fn reap(pid: Pid, block: bool) -> io::Result<Reaped> {
    let options = if block { 0 } else { libc::WNOHANG };
    loop {
        let mut raw = 0;
        // SAFETY: `raw` is a valid, writable int for the status.
        let rc = unsafe { libc::waitpid(pid.as_raw(), &mut raw, options) };
        if rc == pid.as_raw() {
            return Ok(Reaped::Now(decode_wait_status(raw)));
        }
        if rc == 0 {
            return Ok(Reaped::Running);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(Reaped::Gone),
            _ => return Err(err),
        }
    }
}

/// Decodes a `wait(2)` status word of a terminated process.
pub(super) fn decode_wait_status(raw: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(raw) {
        ExitStatus::Signaled(libc::WTERMSIG(raw))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(raw))
    }
}
