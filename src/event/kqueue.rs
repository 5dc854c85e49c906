//! FreeBSD backend: one kqueue for everything. Implements the contract in
//! `mod.rs`.
//!
//! | event | filter | ident |
//! |---|---|---|
//! | descriptor | `EVFILT_READ`, `EVFILT_WRITE` | the descriptor |
//! | process exit | `EVFILT_PROC` + `NOTE_EXIT` (one-shot) | the pid |
//! | timer | `EVFILT_TIMER` + `NOTE_MSECONDS`, or `NOTE_SECONDS` past 2^31 ms (`EV_ONESHOT` unless periodic) | a small number standing for the timer id |
//! | signal | `EVFILT_SIGNAL` | the signal number |
//!
//! The kernel keeps processes by ident, so apart from the caller's tokens
//! (which do not fit `udata` on 32-bit systems) and the timers' idents
//! nothing is kept here. A timer id is not its ident: idents are
//! `uintptr_t`, 32 bits on i386, armv7 and powerpc, and the main process's
//! timer ids start at 2^32 (`common::TimerIdents` hands out small ones).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use super::common::{self, Reaped};
use super::{Event, Interest, TimerId, Token};

/// Kernel events fetched per `kevent`; more simply wait for the next.
const BATCH: usize = 64;

#[derive(Debug)]
pub(super) struct Selector {
    kq: Kqueue,
    io: HashMap<RawFd, (Token, Interest)>,
    /// Events found outside `kevent` (see `watch_signals`, `watch_process`),
    /// reported by the next `wait`.
    pending: Vec<Event>,
    timers: common::TimerIdents,
    buf: Vec<KEvent>,
}

fn change(
    ident: usize,
    filter: EventFilter,
    flags: EvFlags,
    fflags: FilterFlag,
    data: isize,
) -> KEvent {
    KEvent::new(ident, filter, flags, fflags, data, 0)
}

fn filters(interest: Interest) -> impl Iterator<Item = EventFilter> {
    let read = interest.is_read().then_some(EventFilter::EVFILT_READ);
    let write = interest.is_write().then_some(EventFilter::EVFILT_WRITE);
    read.into_iter().chain(write)
}

fn ident_fd(fd: RawFd) -> io::Result<usize> {
    usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))
}

fn duration_timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits the 32-bit `long` of i386 too.
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// Consumes a pending instance of `sig`, if there is one, so that it is not
/// delivered later should the mask ever be lifted (kqueue only observes
/// signals; blocked ones stay pending). Returns whether one was pending.
fn take_pending(sig: Signal) -> bool {
    let mut set = SigSet::empty();
    set.add(sig);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `set` and `zero` are valid for the call; a null siginfo
    // pointer is allowed and means "don't report details".
    let rc = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero) };
    rc == sig as libc::c_int
}

impl Selector {
    pub(super) fn new() -> io::Result<Selector> {
        let kq = Kqueue::new()?;
        fcntl(kq.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        let blank = change(
            0,
            EventFilter::EVFILT_READ,
            EvFlags::empty(),
            FilterFlag::empty(),
            0,
        );
        Ok(Selector {
            kq,
            io: HashMap::new(),
            pending: Vec::new(),
            timers: common::TimerIdents::default(),
            buf: vec![blank; BATCH],
        })
    }

    /// Applies one change to the kqueue.
    fn apply(&self, ev: KEvent) -> io::Result<()> {
        // With no room for events kevent only applies the change and
        // returns at once, reporting its error as the call's error.
        self.kq.kevent(&[ev], &mut [], None)?;
        Ok(())
    }

    /// Removes a filter; one the kernel already dropped is not an error.
    fn delete(&self, ident: usize, filter: EventFilter) -> io::Result<()> {
        match self.apply(change(
            ident,
            filter,
            EvFlags::EV_DELETE,
            FilterFlag::empty(),
            0,
        )) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other,
        }
    }

    pub(super) fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        if self.io.contains_key(&raw) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "descriptor is already registered",
            ));
        }
        let ident = ident_fd(raw)?;
        for filter in filters(interest) {
            if let Err(e) = self.apply(change(
                ident,
                filter,
                EvFlags::EV_ADD,
                FilterFlag::empty(),
                0,
            )) {
                // Leave nothing half registered.
                for added in filters(interest).take_while(|f| *f != filter) {
                    let _ = self.delete(ident, added);
                }
                return Err(e);
            }
        }
        self.io.insert(raw, (token, interest));
        Ok(())
    }

    pub(super) fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let Some(&(_, old)) = self.io.get(&raw) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "descriptor is not registered",
            ));
        };
        let ident = ident_fd(raw)?;
        for filter in filters(interest).filter(|f| !filters(old).any(|o| o == *f)) {
            self.apply(change(
                ident,
                filter,
                EvFlags::EV_ADD,
                FilterFlag::empty(),
                0,
            ))?;
        }
        for filter in filters(old).filter(|f| !filters(interest).any(|n| n == *f)) {
            self.delete(ident, filter)?;
        }
        self.io.insert(raw, (token, interest));
        Ok(())
    }

    pub(super) fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let Some((_, interest)) = self.io.remove(&raw) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "descriptor is not registered",
            ));
        };
        let ident = ident_fd(raw)?;
        for filter in filters(interest) {
            self.delete(ident, filter)?;
        }
        Ok(())
    }

    pub(super) fn registrations(&self) -> usize {
        self.io.len()
    }

    pub(super) fn watch_process(&mut self, pid: Pid) -> io::Result<()> {
        let ident =
            usize::try_from(pid.as_raw()).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
        let flags = EvFlags::EV_ADD | EvFlags::EV_ONESHOT;
        match self.apply(change(
            ident,
            EventFilter::EVFILT_PROC,
            flags,
            FilterFlag::NOTE_EXIT,
            0,
        )) {
            // A kernel that can not attach to a zombie: the child already
            // exited, so reap it now and report it at the next wait.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => match common::reap(pid, false)? {
                Reaped::Now(status) => {
                    self.pending.push(Event::ProcessExited { pid, status });
                    Ok(())
                }
                Reaped::Running | Reaped::Gone => Err(e),
            },
            other => other,
        }
    }

    pub(super) fn set_timer(
        &mut self,
        id: TimerId,
        after: Duration,
        periodic: bool,
    ) -> io::Result<()> {
        // `data` is an intptr_t to nix: 32 bits on i386, where milliseconds
        // run out after 24 days; longer delays are given in seconds,
        // rounded up.
        let (unit, amount) = match isize::try_from(after.as_millis()) {
            Ok(ms) => (FilterFlag::NOTE_MSECONDS, ms),
            Err(_) => {
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                let secs = isize::try_from(secs)
                    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                (FilterFlag::NOTE_SECONDS, secs)
            }
        };
        // An existing knote re-added keeps its EV_ONESHOT flag and, on
        // kernels without a timer `f_touch`, keeps running on its old
        // schedule (kqueue_register() in kern_event.c updates only udata,
        // fflags and data). Deleting first also drops an expiration still
        // queued, which "setting replaces" requires.
        if let Some(ident) = self.timers.get(id) {
            self.delete(ident, EventFilter::EVFILT_TIMER)?;
        }
        let ident = self.timers.assign(id, periodic);
        let mut flags = EvFlags::EV_ADD;
        if !periodic {
            flags |= EvFlags::EV_ONESHOT;
        }
        let added = self.apply(change(
            ident,
            EventFilter::EVFILT_TIMER,
            flags,
            unit,
            amount,
        ));
        if added.is_err() {
            self.timers.release(id);
        }
        added
    }

    pub(super) fn cancel_timer(&mut self, id: TimerId) -> io::Result<()> {
        match self.timers.release(id) {
            Some(ident) => self.delete(ident, EventFilter::EVFILT_TIMER),
            None => Ok(()), // never set, or a one-shot that fired
        }
    }

    pub(super) fn watch_signals(&mut self, set: &SigSet) -> io::Result<()> {
        for sig in set.iter() {
            let ident = sig as libc::c_int as usize;
            self.apply(change(
                ident,
                EventFilter::EVFILT_SIGNAL,
                EvFlags::EV_ADD,
                FilterFlag::empty(),
                0,
            ))?;
            // The filter only sees deliveries from now on; one that came
            // after the signal was blocked is pending, not lost.
            if take_pending(sig) {
                self.pending.push(Event::Signal(sig));
            }
        }
        Ok(())
    }

    pub(super) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let timeout = if self.pending.is_empty() {
            timeout.map(duration_timespec)
        } else {
            Some(duration_timespec(Duration::ZERO))
        };
        events.append(&mut self.pending);
        let n = match self.kq.kevent(&[], &mut self.buf, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for i in 0..n {
            let ev = self.buf[i];
            self.translate(ev, events);
        }
        Ok(())
    }

    /// Turns one kernel event into the caller's event.
    fn translate(&mut self, ev: KEvent, events: &mut Vec<Event>) {
        if ev.flags().contains(EvFlags::EV_ERROR) {
            return; // only changes report errors, and we pass none here
        }
        let ident = ev.ident();
        match ev.filter() {
            Ok(EventFilter::EVFILT_READ) => {
                if let Some(&(token, _)) =
                    RawFd::try_from(ident).ok().and_then(|fd| self.io.get(&fd))
                {
                    events.push(Event::Readable(token));
                }
            }
            Ok(EventFilter::EVFILT_WRITE) => {
                if let Some(&(token, _)) =
                    RawFd::try_from(ident).ok().and_then(|fd| self.io.get(&fd))
                {
                    events.push(Event::Writable(token));
                }
            }
            Ok(EventFilter::EVFILT_PROC) if ev.fflags().contains(FilterFlag::NOTE_EXIT) => {
                let Ok(raw) = libc::pid_t::try_from(ident) else {
                    return;
                };
                let pid = Pid::from_raw(raw);
                // NOTE_EXIT is posted inside exit1() just before the child
                // turns zombie, so a WNOHANG wait could still find it
                // running: wait for the last few instructions instead. The
                // event's data is the same wait status, for a child someone
                // else reaped.
                let status = match common::reap(pid, true) {
                    Ok(Reaped::Now(status)) => status,
                    _ => common::decode_wait_status(ev.data() as libc::c_int),
                };
                events.push(Event::ProcessExited { pid, status });
            }
            Ok(EventFilter::EVFILT_TIMER) => {
                // Unknown: cancelled or re-set while this event was in
                // flight; its expiration is not to be reported.
                let Some((id, periodic)) = self.timers.lookup(ident) else {
                    return;
                };
                // The kernel dropped a one-shot knote as it returned it.
                if !periodic {
                    self.timers.release(id);
                }
                events.push(Event::Timer(id));
            }
            Ok(EventFilter::EVFILT_SIGNAL) => {
                if let Ok(sig) = Signal::try_from(ident as libc::c_int) {
                    take_pending(sig);
                    events.push(Event::Signal(sig));
                }
            }
            _ => {}
        }
    }

    /// A kqueue is not inherited by fork(2): its number is not open in the
    /// child, or is open for something the child opened since. Forget it
    /// without closing.
    pub(super) fn discard_in_child(self) {
        let _ = OwnedFd::from(self.kq).into_raw_fd();
    }

    pub(super) fn queue_fd(&self) -> BorrowedFd<'_> {
        self.kq.as_fd()
    }

    /// None: a forked child does not inherit the kqueue.
    pub(super) fn descriptors(&self, _out: &mut Vec<RawFd>) {}
}
