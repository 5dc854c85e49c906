//! `Poller` checks that change process-wide state: the signal mask, the
//! descriptor table, fork. This binary has no test harness (`harness =
//! false` in Cargo.toml), so `main` runs on the only thread: a signal
//! blocked here is blocked in the whole process, so `kill(getpid(), ..)`
//! can not land on some other thread that still has it unblocked, and
//! descriptor numbers are not disturbed by parallel tests. The checks run in
//! order; the first failure panics and fails the binary.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use hastmon::event::{Event, ExitStatus, Poller, TimerId};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, raise, sigprocmask};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, getpid};

const DEADLINE: Duration = Duration::from_secs(5);

fn main() {
    let checks: &[(&str, fn())] = &[
        (
            "descriptors are closed when done",
            descriptors_are_closed_when_done,
        ),
        (
            "watched signals arrive as events",
            watched_signals_arrive_as_events,
        ),
        (
            "signal pending before watch is reported",
            signal_pending_before_watch_is_reported,
        ),
        (
            "forked child discards and recreates",
            forked_child_discards_and_recreates,
        ),
    ];
    for (name, check) in checks {
        check();
        println!("{name} ... ok");
    }
    println!("\nevent_signals: {} checks passed", checks.len());
}

/// Waits until every one of `wanted` is among the events seen, or panics.
fn wait_for_all(poller: &mut Poller, wanted: &[Event]) -> Vec<Event> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut batch = Vec::new();
    while !wanted.iter().all(|event| seen.contains(event)) {
        let left = DEADLINE
            .checked_sub(start.elapsed())
            .unwrap_or_else(|| panic!("timed out waiting for {wanted:?}; saw {seen:?}"));
        poller.wait(&mut batch, Some(left)).expect("wait");
        seen.extend_from_slice(&batch);
    }
    seen
}

fn wait_for(poller: &mut Poller, event: Event) -> Vec<Event> {
    wait_for_all(poller, &[event])
}

fn is_pending(sig: Signal) -> bool {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the whole sigset_t it is given.
    assert_eq!(unsafe { libc::sigpending(raw.as_mut_ptr()) }, 0);
    // SAFETY: initialised by the successful sigpending above.
    let set = unsafe { SigSet::from_sigset_t_unchecked(raw.assume_init()) };
    set.contains(sig)
}

/// The number the next descriptor will get: the lowest one free.
fn next_fd() -> RawFd {
    File::open("/dev/null").unwrap().as_raw_fd()
}

fn descriptors_are_closed_when_done() {
    let before = next_fd();
    let mut poller = Poller::new().unwrap();
    let with_poller = next_fd();
    assert!(with_poller > before, "the poller holds a descriptor");

    // A fired one-shot timer, a cancelled periodic one, a reaped child.
    poller
        .set_timer(TimerId(1), Duration::from_millis(10), false)
        .unwrap();
    poller
        .set_timer(TimerId(2), Duration::from_secs(60), true)
        .unwrap();
    // SAFETY: single-threaded; the child only calls _exit.
    let pid = match unsafe { fork() }.unwrap() {
        // SAFETY: _exit(2) is async-signal-safe and ends the child at once.
        ForkResult::Child => unsafe { libc::_exit(3) },
        ForkResult::Parent { child } => child,
    };
    poller.watch_process(pid).unwrap();
    let exited = Event::ProcessExited {
        pid,
        status: ExitStatus::Exited(3),
    };
    wait_for_all(&mut poller, &[Event::Timer(TimerId(1)), exited]);
    poller.cancel_timer(TimerId(2)).unwrap();
    assert_eq!(next_fd(), with_poller, "timer or process descriptor leaked");

    drop(poller);
    assert_eq!(next_fd(), before, "poller descriptor leaked");
}

fn watched_signals_arrive_as_events() {
    let mut poller = Poller::new().unwrap();
    poller
        .watch_signals(&[Signal::SIGUSR1, Signal::SIGHUP])
        .unwrap();

    // Default action of both is to terminate: reaching the next line at all
    // shows they were not delivered the ordinary way.
    kill(getpid(), Signal::SIGUSR1).unwrap();
    wait_for(&mut poller, Event::Signal(Signal::SIGUSR1));
    assert!(!is_pending(Signal::SIGUSR1), "reported signal left pending");

    raise(Signal::SIGHUP).unwrap();
    kill(getpid(), Signal::SIGUSR1).unwrap();
    let both = [
        Event::Signal(Signal::SIGHUP),
        Event::Signal(Signal::SIGUSR1),
    ];
    wait_for_all(&mut poller, &both);
}

fn signal_pending_before_watch_is_reported() {
    // Blocked and raised before the poller watches it: it is pending, and
    // must be reported rather than lost.
    let mut usr2 = SigSet::empty();
    usr2.add(Signal::SIGUSR2);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr2), None).unwrap();
    raise(Signal::SIGUSR2).unwrap();
    assert!(is_pending(Signal::SIGUSR2));

    let mut poller = Poller::new().unwrap();
    poller.watch_signals(&[Signal::SIGUSR2]).unwrap();
    wait_for(&mut poller, Event::Signal(Signal::SIGUSR2));
    assert!(!is_pending(Signal::SIGUSR2));
}

fn forked_child_discards_and_recreates() {
    let mut poller = Poller::new().unwrap();
    poller
        .set_timer(TimerId(10), Duration::from_millis(200), false)
        .unwrap();
    // SAFETY: single-threaded, so the child may use the allocator; it ends
    // in _exit and never returns into main.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let ok = std::panic::catch_unwind(move || {
                poller.discard_in_child();
                let mut own = Poller::new().unwrap();
                own.set_timer(TimerId(20), Duration::from_millis(10), false)
                    .unwrap();
                let seen = wait_for(&mut own, Event::Timer(TimerId(20)));
                seen == [Event::Timer(TimerId(20))]
            });
            // SAFETY: ends the child without running the parent's exit code.
            unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            assert_eq!(
                waitpid(child, None).unwrap(),
                WaitStatus::Exited(child, 0),
                "child's own poller failed"
            );
            // The parent's poller is untouched by what the child did.
            let seen = wait_for(&mut poller, Event::Timer(TimerId(10)));
            assert_eq!(seen, [Event::Timer(TimerId(10))]);
        }
    }
}
