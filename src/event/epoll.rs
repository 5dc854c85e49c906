//! Linux backend: one epoll; a pidfd per watched process, a timerfd per
//! timer, one signalfd for all watched signals. Implements the contract in
//! `mod.rs`. Needs Linux 5.3 (`pidfd_open`).
//!
//! Every descriptor in the epoll set is keyed by its own number (the epoll
//! data word), and `sources` says what it stands for. The caller's tokens
//! are therefore free to use all 64 bits.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::unistd::Pid;

use super::common::{self, Reaped};
use super::{Event, Interest, TimerId, Token};

/// Kernel events fetched per `epoll_wait`; more simply wait for the next.
const BATCH: usize = 64;

/// What a descriptor in the epoll set stands for.
#[derive(Debug)]
enum Source {
    Io { token: Token, interest: Interest },
    Timer(TimerId),
    Process(Pid),
    Signals,
}

#[derive(Debug)]
struct Timer {
    fd: TimerFd,
    periodic: bool,
}

#[derive(Debug)]
pub(super) struct Selector {
    epoll: Epoll,
    sources: HashMap<RawFd, Source>,
    timers: HashMap<TimerId, Timer>,
    processes: HashMap<Pid, OwnedFd>,
    /// The signalfd and the signals it reads, once any are watched.
    signals: Option<(SignalFd, SigSet)>,
    buf: Vec<EpollEvent>,
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "descriptor is not registered")
}

fn io_flags(interest: Interest) -> EpollFlags {
    let mut flags = EpollFlags::empty();
    if interest.is_read() {
        flags |= EpollFlags::EPOLLIN;
    }
    if interest.is_write() {
        flags |= EpollFlags::EPOLLOUT;
    }
    flags
}

/// `pidfd_open(2)`: a descriptor that becomes readable when `pid` exits.
fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value and touches no
    // memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(rc).map_err(|_| io::Error::other("pidfd_open: bad descriptor"))?;
    // SAFETY: the kernel just returned this descriptor (close-on-exec, as
    // pidfd_open always sets it); nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Selector {
    pub(super) fn new() -> io::Result<Selector> {
        Ok(Selector {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            sources: HashMap::new(),
            timers: HashMap::new(),
            processes: HashMap::new(),
            signals: None,
            buf: vec![EpollEvent::empty(); BATCH],
        })
    }

    /// Adds an internal descriptor to the epoll set, for reading.
    fn add_source(&mut self, fd: BorrowedFd<'_>, source: Source) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        self.epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, raw as u64))?;
        self.sources.insert(raw, source);
        Ok(())
    }

    /// Takes an internal descriptor out of the epoll set; the caller then
    /// closes it.
    fn remove_source(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.sources.remove(&fd.as_raw_fd());
        self.epoll.delete(fd)?;
        Ok(())
    }

    pub(super) fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        if self.sources.contains_key(&raw) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "descriptor is already registered",
            ));
        }
        self.epoll
            .add(fd, EpollEvent::new(io_flags(interest), raw as u64))?;
        self.sources.insert(raw, Source::Io { token, interest });
        Ok(())
    }

    pub(super) fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let Some(Source::Io { .. }) = self.sources.get(&raw) else {
            return Err(not_found());
        };
        let mut event = EpollEvent::new(io_flags(interest), raw as u64);
        self.epoll.modify(fd, &mut event)?;
        self.sources.insert(raw, Source::Io { token, interest });
        Ok(())
    }

    pub(super) fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let Some(Source::Io { .. }) = self.sources.get(&fd.as_raw_fd()) else {
            return Err(not_found());
        };
        self.remove_source(fd)
    }

    pub(super) fn registrations(&self) -> usize {
        self.sources
            .values()
            .filter(|s| matches!(s, Source::Io { .. }))
            .count()
    }

    pub(super) fn watch_process(&mut self, pid: Pid) -> io::Result<()> {
        if self.processes.contains_key(&pid) {
            return Ok(());
        }
        // A pidfd of a child that already exited is readable at once, so an
        // early exit is not missed.
        let pidfd = pidfd_open(pid)?;
        self.add_source(pidfd.as_fd(), Source::Process(pid))?;
        self.processes.insert(pid, pidfd);
        Ok(())
    }

    pub(super) fn set_timer(
        &mut self,
        id: TimerId,
        after: Duration,
        periodic: bool,
    ) -> io::Result<()> {
        let first = TimeSpec::from_duration(after);
        let expiration = if periodic {
            Expiration::IntervalDelayed(first, first)
        } else {
            Expiration::OneShot(first)
        };
        // Re-arming an existing timerfd also zeroes its count of unread
        // expirations, which is what "re-setting replaces" requires.
        if let Some(timer) = self.timers.get_mut(&id) {
            timer.fd.set(expiration, TimerSetTimeFlags::empty())?;
            timer.periodic = periodic;
            return Ok(());
        }
        let flags = TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK;
        let fd = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags)?;
        fd.set(expiration, TimerSetTimeFlags::empty())?;
        self.add_source(fd.as_fd(), Source::Timer(id))?;
        self.timers.insert(id, Timer { fd, periodic });
        Ok(())
    }

    pub(super) fn cancel_timer(&mut self, id: TimerId) -> io::Result<()> {
        match self.timers.remove(&id) {
            Some(timer) => self.remove_source(timer.fd.as_fd()),
            None => Ok(()),
        }
    }

    pub(super) fn watch_signals(&mut self, set: &SigSet) -> io::Result<()> {
        if let Some((fd, mask)) = &mut self.signals {
            for sig in set.iter() {
                mask.add(sig);
            }
            return Ok(fd.set_mask(mask)?);
        }
        let fd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        self.add_source(fd.as_fd(), Source::Signals)?;
        self.signals = Some((fd, *set));
        Ok(())
    }

    pub(super) fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            Some(d) => {
                // Round up: a wait that ends before its deadline makes the
                // caller spin.
                let ms = d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
            }
        };
        let n = match self.epoll.wait(&mut self.buf, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for i in 0..n {
            let ready = self.buf[i];
            self.translate(ready.data() as RawFd, ready.events(), events)?;
        }
        Ok(())
    }

    /// Turns one ready descriptor into the caller's events.
    fn translate(
        &mut self,
        fd: RawFd,
        flags: EpollFlags,
        events: &mut Vec<Event>,
    ) -> io::Result<()> {
        match self.sources.get(&fd) {
            Some(&Source::Io { token, interest }) => {
                let broken = flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
                let readable =
                    flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLPRI) || broken;
                if interest.is_read() && readable {
                    events.push(Event::Readable(token));
                }
                let writable =
                    flags.contains(EpollFlags::EPOLLOUT) || (broken && !interest.is_read());
                if interest.is_write() && writable {
                    events.push(Event::Writable(token));
                }
            }
            Some(&Source::Timer(id)) => self.timer_fired(id, events)?,
            Some(&Source::Process(pid)) => self.process_ready(pid, events)?,
            Some(Source::Signals) => self.read_signals(events)?,
            // Removed while handling an earlier event of this batch.
            None => {}
        }
        Ok(())
    }

    fn timer_fired(&mut self, id: TimerId, events: &mut Vec<Event>) -> io::Result<()> {
        let Some(timer) = self.timers.get(&id) else {
            return Ok(());
        };
        // The count of expirations; reading it re-arms readiness.
        let mut count = [0u8; 8];
        match nix::unistd::read(timer.fd.as_fd(), &mut count) {
            Ok(_) => {}
            Err(Errno::EAGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        events.push(Event::Timer(id));
        if !timer.periodic {
            self.cancel_timer(id)?;
        }
        Ok(())
    }

    fn process_ready(&mut self, pid: Pid, events: &mut Vec<Event>) -> io::Result<()> {
        match common::reap(pid, false)? {
            Reaped::Now(status) => events.push(Event::ProcessExited { pid, status }),
            // The pidfd is level-triggered: the next wait will try again.
            Reaped::Running => return Ok(()),
            // Reaped behind our back: the status is lost (see the contract).
            Reaped::Gone => {}
        }
        if let Some(pidfd) = self.processes.remove(&pid) {
            self.remove_source(pidfd.as_fd())?;
        }
        Ok(())
    }

    fn read_signals(&mut self, events: &mut Vec<Event>) -> io::Result<()> {
        let Some((fd, _)) = &self.signals else {
            return Ok(());
        };
        loop {
            match fd.read_signal() {
                Ok(Some(info)) => {
                    if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                        events.push(Event::Signal(sig));
                    }
                }
                Ok(None) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// In a forked child every descriptor here is a copy of the parent's:
    /// closing the copies leaves the parent's epoll set as it is.
    pub(super) fn discard_in_child(self) {
        drop(self);
    }

    pub(super) fn queue_fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }

    pub(super) fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.push(self.epoll.0.as_raw_fd());
        out.extend(self.timers.values().map(|t| t.fd.as_fd().as_raw_fd()));
        out.extend(self.processes.values().map(|p| p.as_raw_fd()));
        if let Some((sfd, _)) = &self.signals {
            out.push(sfd.as_raw_fd());
        }
    }
}
