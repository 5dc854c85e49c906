//! The event loop: one [`Poller`] over kqueue (FreeBSD) or epoll (Linux).
//!
//! The daemon and its workers are single-threaded and run one loop each:
//! `poller.wait(&mut events, ..)`, handle every event, repeat. Everything a
//! loop waits for arrives as one [`Event`]: a descriptor became readable or
//! writable, a child process exited (already reaped), a timer fired, or a
//! signal arrived.
//!
//! # The backend contract
//!
//! This module is platform-neutral. The platform lives in exactly one backend
//! module, chosen at compile time and imported here as `sys`:
//!
//! | platform | module | built from |
//! |---|---|---|
//! | FreeBSD | `kqueue.rs` | one kqueue: `EVFILT_READ`/`EVFILT_WRITE`, `EVFILT_PROC` + `NOTE_EXIT`, `EVFILT_TIMER` + `NOTE_MSECONDS`, `EVFILT_SIGNAL` |
//! | Linux | `epoll.rs` | one epoll plus one pidfd per process, one timerfd (`CLOCK_MONOTONIC`) per timer, one signalfd |
//!
//! Every backend provides `struct Selector` with these methods, which
//! [`Poller`] forwards to and documents once:
//!
//! ```text
//! fn new() -> io::Result<Selector>
//! fn register(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()>
//! fn reregister(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()>
//! fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()>
//! fn registrations(&self) -> usize
//! fn watch_process(&mut self, pid: Pid) -> io::Result<()>
//! fn set_timer(&mut self, id: TimerId, after: Duration, periodic: bool) -> io::Result<()>
//! fn cancel_timer(&mut self, id: TimerId) -> io::Result<()>
//! fn watch_signals(&mut self, signals: &SigSet) -> io::Result<()>
//! fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>
//! fn discard_in_child(self)
//! fn descriptors(&self, out: &mut Vec<RawFd>)
//! ```
//!
//! and must give the same observable behaviour on every platform:
//!
//! - **Descriptors** are level-triggered: a descriptor that is still
//!   readable is reported again by the next `wait`. Hang-up and error are
//!   reported as [`Event::Readable`] (so the caller's read sees EOF or the
//!   error); on a descriptor registered for writing only they are reported
//!   as [`Event::Writable`]. Registering a descriptor twice fails with
//!   `AlreadyExists`; re-registering or deregistering one that is not
//!   registered fails with `NotFound`. Deregister before closing.
//! - **Processes** must be children of this process. The exit is reported
//!   exactly once, as [`Event::ProcessExited`], after the poller has reaped
//!   the child (no zombie is left). A child that already exited when it was
//!   watched is reported at the next `wait`. SIGCHLD must not be ignored
//!   (`SIG_IGN` or `SA_NOCLDWAIT` makes the kernel reap children before
//!   we can); `watch_process` refuses to start in that case. Nothing else
//!   in the process may reap watched children (no `waitpid(-1)`): a child
//!   reaped behind the poller's back is still reported on FreeBSD (the
//!   kqueue carries the status) but is lost on Linux.
//! - **Timers** have millisecond resolution (a delay is rounded up to the
//!   next millisecond, at least 1 ms) and run on the monotonic clock.
//!   Setting an id that is already set replaces it, including any
//!   expiration not yet reported. A one-shot timer is forgotten once it
//!   fired; a periodic one fires until cancelled, and expirations that
//!   happened between two `wait`s are reported once. Cancelling an unknown
//!   or already fired timer is not an error.
//! - **Signals** passed to `watch_signals` are blocked in the calling thread
//!   (call it before any thread exists: the daemon has none) and arrive only
//!   as [`Event::Signal`]; several deliveries of one signal between two
//!   `wait`s may be reported once, as the kernel coalesces them anyway, and
//!   one that races with `watch_signals` itself may be reported twice, so
//!   handle signals idempotently (reload, shut down). The
//!   mask stays blocked when the poller is dropped, and is inherited by
//!   forked children, which must unblock what they want delivered.
//! - **`wait`** clears `events`, then blocks until at least one event is
//!   ready or the timeout passes (`None`: no limit). Interrupted by a signal
//!   (EINTR), it returns `Ok` with no events.
//! - **fork**: a poller belongs to the process that created it. A forked
//!   child must not use its parent's poller: on FreeBSD the kqueue is not
//!   inherited at all (the descriptor number is not open in the child), on
//!   Linux the epoll, timer, process and signal descriptors are shared with
//!   the parent, so a child using them would steal the parent's events. In
//!   the child call [`Poller::discard_in_child`] (never plain `drop`, which
//!   on FreeBSD would close whatever the child opened under the kqueue's old
//!   number) and create a new poller.
//! - All descriptors the poller creates are close-on-exec and, where they
//!   are read, non-blocking. Descriptors it created are closed when what
//!   they served is gone (a reaped process, a fired one-shot timer, a
//!   cancelled timer) and when the poller is dropped.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

mod common;

#[cfg(target_os = "freebsd")]
mod kqueue;
#[cfg(target_os = "freebsd")]
use kqueue as sys;

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(target_os = "linux")]
use epoll as sys;

/// The caller's name for a registered descriptor, returned in its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// The caller's name for a timer, returned in [`Event::Timer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// What a registered descriptor is watched for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable, peer closed, or error.
    Read,
    /// Writable (buffer space available).
    Write,
    /// Both; each is reported as its own event.
    ReadWrite,
}

impl Interest {
    /// Whether readability is watched.
    pub fn is_read(self) -> bool {
        matches!(self, Interest::Read | Interest::ReadWrite)
    }

    /// Whether writability is watched.
    pub fn is_write(self) -> bool {
        matches!(self, Interest::Write | Interest::ReadWrite)
    }
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit` with this code (0..=255).
    Exited(i32),
    /// It was killed by this signal number. A number rather than a
    /// [`Signal`] because real-time signals have no `Signal` variant.
    Signaled(i32),
}

impl ExitStatus {
    /// The killing signal, if it was killed by one `Signal` can name.
    pub fn signal(self) -> Option<Signal> {
        match self {
            ExitStatus::Signaled(n) => Signal::try_from(n).ok(),
            ExitStatus::Exited(_) => None,
        }
    }
}

/// Something the loop has to handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The descriptor registered with this token is readable, at EOF, or
    /// in error: a read will not block.
    Readable(Token),
    /// The descriptor registered with this token is writable.
    Writable(Token),
    /// A watched child exited; it has been reaped.
    ProcessExited {
        /// The child.
        pid: Pid,
        /// How it ended.
        status: ExitStatus,
    },
    /// The timer with this id expired.
    Timer(TimerId),
    /// A watched signal arrived.
    Signal(Signal),
}

/// One event loop's kernel queue. See the module documentation for the
/// guarantees every platform gives.
#[derive(Debug)]
pub struct Poller {
    sys: sys::Selector,
}

impl Poller {
    /// Creates a poller (one kqueue or epoll descriptor, close-on-exec).
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            sys: sys::Selector::new()?,
        })
    }

    /// Watches `fd` for `interest`; its events carry `token`.
    pub fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.sys.register(fd, token, interest)
    }

    /// Changes the token and interest of a registered descriptor.
    pub fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.sys.reregister(fd, token, interest)
    }

    /// How many descriptors are registered (with [`Poller::register`]) now.
    /// A descriptor closed while registered stays counted: the count shows
    /// such leaks.
    pub fn registrations(&self) -> usize {
        self.sys.registrations()
    }

    /// Stops watching `fd`; no event for it is reported afterwards.
    pub fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.sys.deregister(fd)
    }

    /// Reports the exit of child `pid` once, as [`Event::ProcessExited`],
    /// after reaping it. Watching a pid twice is the same as once.
    ///
    /// Fails with `ECHILD` if `pid` is not a child of this process, and with
    /// `InvalidInput` if SIGCHLD is ignored (children would be reaped by the
    /// kernel and their status lost).
    pub fn watch_process(&mut self, pid: Pid) -> io::Result<()> {
        common::check_children_waitable()?;
        common::check_is_child(pid)?;
        self.sys.watch_process(pid)
    }

    /// Arms timer `id` to fire `after` from now, and then every `after`
    /// again if `periodic`. Replaces a timer already set under `id`.
    pub fn set_timer(&mut self, id: TimerId, after: Duration, periodic: bool) -> io::Result<()> {
        self.sys.set_timer(id, common::timer_delay(after), periodic)
    }

    /// Disarms timer `id`; no expiration of it is reported afterwards.
    pub fn cancel_timer(&mut self, id: TimerId) -> io::Result<()> {
        self.sys.cancel_timer(id)
    }

    /// Blocks `signals` in the calling thread and reports them as
    /// [`Event::Signal`] from now on. Adds to the signals already watched.
    pub fn watch_signals(&mut self, signals: &[Signal]) -> io::Result<()> {
        let set = common::sigset(signals);
        // Block first: a signal arriving between the two steps then stays
        // pending and is picked up, instead of running its default action.
        set.thread_block().map_err(io::Error::from)?;
        self.sys.watch_signals(&set)
    }

    /// Waits for events; see the module documentation.
    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.sys.wait(events, timeout)
    }

    /// The kernel queue's own descriptor (a sandboxed worker narrows its
    /// rights).
    pub fn queue_fd(&self) -> BorrowedFd<'_> {
        self.sys.queue_fd()
    }

    /// The descriptors this poller holds that a forked child inherits.
    /// The child closes them (it must never use them: see the module
    /// documentation on fork) when it cannot take the poller by value for
    /// [`Poller::discard_in_child`].
    pub fn descriptors(&self, out: &mut Vec<std::os::fd::RawFd>) {
        self.sys.descriptors(out);
    }

    /// Gets rid of a poller inherited from the parent, in a forked child,
    /// without touching the parent's registrations. Create a new poller
    /// afterwards if the child needs one.
    pub fn discard_in_child(self) {
        self.sys.discard_in_child();
    }
}
