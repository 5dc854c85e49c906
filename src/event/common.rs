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

/// Small kernel idents for the caller's timer ids. A kqueue timer is
/// named by its `ident`, a `uintptr_t`: 32 bits on i386, armv7 and
/// powerpc, where the main process's ids (2^32 and up) do not fit. Each
/// armed timer gets the lowest free ident instead, as epoll's backend names
/// its timers by their (small) descriptor numbers.
#[derive(Debug, Default)]
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub(super) struct TimerIdents {
    by_id: std::collections::HashMap<super::TimerId, usize>,
    by_ident: std::collections::HashMap<usize, (super::TimerId, bool)>,
    /// Idents released, reused before new ones are taken.
    free: Vec<usize>,
    next: usize,
}

#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
impl TimerIdents {
    /// The ident of an armed timer.
    pub(super) fn get(&self, id: super::TimerId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// The ident for `id`, armed as `periodic`: the one it has, or a new one.
    pub(super) fn assign(&mut self, id: super::TimerId, periodic: bool) -> usize {
        let ident = match self.by_id.get(&id) {
            Some(&ident) => ident,
            None => {
                let ident = self.free.pop().unwrap_or_else(|| {
                    // Ident 0 is left unused: it is the blank event's.
                    self.next += 1;
                    self.next
                });
                self.by_id.insert(id, ident);
                ident
            }
        };
        self.by_ident.insert(ident, (id, periodic));
        ident
    }

    /// The timer an ident names, and whether it repeats.
    pub(super) fn lookup(&self, ident: usize) -> Option<(super::TimerId, bool)> {
        self.by_ident.get(&ident).copied()
    }

    /// Forgets `id` (cancelled, or a one-shot that fired); returns the
    /// ident it had.
    pub(super) fn release(&mut self, id: super::TimerId) -> Option<usize> {
        let ident = self.by_id.remove(&id)?;
        self.by_ident.remove(&ident);
        self.free.push(ident);
        Some(ident)
    }
}

#[cfg(test)]
mod tests {
    use super::super::TimerId;
    use super::TimerIdents;

    #[test]
    fn timer_ids_above_32_bits_get_small_idents() {
        let mut t = TimerIdents::default();
        let ids: Vec<TimerId> = (1..=9u64).map(|k| TimerId((k << 32) + k)).collect();
        let idents: Vec<usize> = ids.iter().map(|&id| t.assign(id, false)).collect();
        assert_eq!(idents, (1..=9).collect::<Vec<_>>());
        for (&id, &ident) in ids.iter().zip(&idents) {
            assert!(u32::try_from(ident).is_ok());
            assert_eq!(t.get(id), Some(ident));
            assert_eq!(t.lookup(ident), Some((id, false)));
        }
    }

    #[test]
    fn rearming_keeps_the_ident_and_takes_the_new_mode() {
        let mut t = TimerIdents::default();
        let id = TimerId(3 << 32);
        let ident = t.assign(id, true);
        assert_eq!(t.assign(id, false), ident);
        assert_eq!(t.lookup(ident), Some((id, false)));
    }

    #[test]
    fn released_idents_are_reused_and_no_longer_name_the_old_timer() {
        let mut t = TimerIdents::default();
        let a = TimerId(1 << 32);
        let b = TimerId(2 << 32);
        let c = TimerId(u64::MAX);
        let ia = t.assign(a, false);
        let ib = t.assign(b, true);
        assert_eq!(t.release(a), Some(ia));
        assert_eq!(t.release(a), None);
        assert_eq!(t.get(a), None);
        assert_eq!(t.lookup(ia), None);
        assert_eq!(t.assign(c, false), ia);
        assert_eq!(t.lookup(ia), Some((c, false)));
        assert_eq!(t.lookup(ib), Some((b, true)));
    }
}
