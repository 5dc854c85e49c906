//! The `Poller` contract (see `src/event/mod.rs`), run against whichever
//! backend this platform has. Signals live in `event_signals.rs`: the
//! signal mask is per thread and these tests run in threads.
//!
//! Timing: tests only assert order and outcome. Waits for something that
//! must happen are bounded by a generous `DEADLINE`; checks that something
//! does *not* happen watch for `QUIET`, which can only make them pass
//! wrongly on a slow machine, never fail wrongly.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use hastmon::event::{Event, ExitStatus, Interest, Poller, TimerId, Token};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

const DEADLINE: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// Waits until `done` holds for the events seen so far (all of them, in
/// order), or panics after `DEADLINE`.
fn wait_until(poller: &mut Poller, what: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut batch = Vec::new();
    while !done(&seen) {
        let left = DEADLINE
            .checked_sub(start.elapsed())
            .unwrap_or_else(|| panic!("timed out waiting for {what}; saw {seen:?}"));
        poller.wait(&mut batch, Some(left)).expect("wait");
        seen.extend_from_slice(&batch);
    }
    seen
}

fn wait_for(poller: &mut Poller, event: Event) -> Vec<Event> {
    wait_until(poller, &format!("{event:?}"), |seen| seen.contains(&event))
}

/// Every event reported within `QUIET`.
fn events_within_quiet(poller: &mut Poller) -> Vec<Event> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut batch = Vec::new();
    while let Some(left) = QUIET.checked_sub(start.elapsed()) {
        poller.wait(&mut batch, Some(left)).expect("wait");
        seen.extend_from_slice(&batch);
    }
    seen
}

/// Forks a child that runs `child` (which must only make async-signal-safe
/// calls: the test binary has other threads) and never returns.
fn spawn_child(child: fn() -> !) -> Pid {
    // SAFETY: the child only runs `child`, which makes async-signal-safe
    // calls and ends in _exit; it never returns into the test harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => child(),
        ForkResult::Parent { child } => child,
    }
}

fn exit_7() -> ! {
    // SAFETY: _exit is async-signal-safe and ends the forked child at once.
    unsafe { libc::_exit(7) }
}

fn sleep_forever() -> ! {
    loop {
        // SAFETY: pause is async-signal-safe; the parent kills us.
        unsafe { libc::pause() };
    }
}

#[test]
fn readable_only_after_write_and_not_after_deregister() {
    let mut poller = Poller::new().unwrap();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    poller
        .register(a.as_fd(), Token(1), Interest::Read)
        .unwrap();

    assert_eq!(
        events_within_quiet(&mut poller),
        vec![],
        "nothing written yet"
    );
    b.write_all(b"x").unwrap();
    wait_for(&mut poller, Event::Readable(Token(1)));

    let mut buf = [0u8; 8];
    assert_eq!(a.read(&mut buf).unwrap(), 1);
    poller.deregister(a.as_fd()).unwrap();
    b.write_all(b"y").unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![], "deregistered");
}

#[test]
fn readable_is_level_triggered() {
    let mut poller = Poller::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    poller
        .register(a.as_fd(), Token(3), Interest::Read)
        .unwrap();
    b.write_all(b"unread").unwrap();
    wait_for(&mut poller, Event::Readable(Token(3)));
    wait_for(&mut poller, Event::Readable(Token(3)));
}

#[test]
fn writable_when_buffer_has_space() {
    let mut poller = Poller::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    poller
        .register(a.as_fd(), Token(2), Interest::Write)
        .unwrap();
    let seen = wait_for(&mut poller, Event::Writable(Token(2)));
    assert!(!seen.contains(&Event::Readable(Token(2))), "{seen:?}");
}

#[test]
fn peer_close_is_readable_eof() {
    let mut poller = Poller::new().unwrap();
    let (mut a, b) = UnixStream::pair().unwrap();
    poller
        .register(a.as_fd(), Token(9), Interest::Read)
        .unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![]);
    drop(b);
    wait_for(&mut poller, Event::Readable(Token(9)));
    assert_eq!(a.read(&mut [0u8; 8]).unwrap(), 0, "EOF");
}

#[test]
fn reregister_changes_token_and_interest() {
    let mut poller = Poller::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"pending").unwrap();
    poller
        .register(a.as_fd(), Token(1), Interest::Read)
        .unwrap();
    wait_for(&mut poller, Event::Readable(Token(1)));

    poller
        .reregister(a.as_fd(), Token(2), Interest::Write)
        .unwrap();
    let seen = wait_for(&mut poller, Event::Writable(Token(2)));
    assert!(
        seen.iter().all(|e| *e == Event::Writable(Token(2))),
        "{seen:?}"
    );

    poller
        .reregister(a.as_fd(), Token(3), Interest::ReadWrite)
        .unwrap();
    wait_until(&mut poller, "readable and writable", |seen| {
        seen.contains(&Event::Readable(Token(3))) && seen.contains(&Event::Writable(Token(3)))
    });
}

#[test]
fn registration_errors() {
    let mut poller = Poller::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    assert_eq!(
        poller.deregister(a.as_fd()).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(
        poller
            .reregister(a.as_fd(), Token(1), Interest::Read)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );
    poller
        .register(a.as_fd(), Token(1), Interest::Read)
        .unwrap();
    assert_eq!(
        poller
            .register(a.as_fd(), Token(1), Interest::Read)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::AlreadyExists
    );
}

#[test]
fn child_exit_code_is_reported_once_and_reaped() {
    let mut poller = Poller::new().unwrap();
    let pid = spawn_child(exit_7);
    poller.watch_process(pid).unwrap();
    let exited = Event::ProcessExited {
        pid,
        status: ExitStatus::Exited(7),
    };
    let seen = wait_until(&mut poller, "exit", |seen| {
        seen.iter()
            .any(|e| matches!(e, Event::ProcessExited { .. }))
    });
    assert_eq!(seen, vec![exited]);
    assert_eq!(waitpid(pid, None), Err(Errno::ECHILD), "no zombie left");
    assert_eq!(events_within_quiet(&mut poller), vec![], "reported once");
}

#[test]
fn child_killed_by_signal() {
    let mut poller = Poller::new().unwrap();
    let pid = spawn_child(sleep_forever);
    poller.watch_process(pid).unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![], "still running");
    kill(pid, Signal::SIGKILL).unwrap();
    let status = ExitStatus::Signaled(Signal::SIGKILL as i32);
    wait_for(&mut poller, Event::ProcessExited { pid, status });
    assert_eq!(status.signal(), Some(Signal::SIGKILL));
    assert_eq!(waitpid(pid, None), Err(Errno::ECHILD), "no zombie left");
}

#[test]
fn child_that_exited_before_watch_is_reported() {
    let mut poller = Poller::new().unwrap();
    let pid = spawn_child(exit_7);
    // Let it become a zombie first, without reaping it (WNOWAIT).
    let start = Instant::now();
    let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    while waitid(Id::Pid(pid), peek).unwrap() == WaitStatus::StillAlive {
        assert!(start.elapsed() < DEADLINE, "child did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    poller.watch_process(pid).unwrap();
    wait_for(
        &mut poller,
        Event::ProcessExited {
            pid,
            status: ExitStatus::Exited(7),
        },
    );
    assert_eq!(waitpid(pid, None), Err(Errno::ECHILD));
}

#[test]
fn watching_a_process_that_is_not_our_child_fails() {
    let mut poller = Poller::new().unwrap();
    let err = poller.watch_process(Pid::from_raw(1)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECHILD), "{err}");
}

#[test]
fn one_shot_timer_fires_once() {
    let mut poller = Poller::new().unwrap();
    poller
        .set_timer(TimerId(1), Duration::from_millis(20), false)
        .unwrap();
    let seen = wait_for(&mut poller, Event::Timer(TimerId(1)));
    assert_eq!(seen, vec![Event::Timer(TimerId(1))]);
    assert_eq!(events_within_quiet(&mut poller), vec![]);
    poller.cancel_timer(TimerId(1)).unwrap(); // already gone: not an error
}

#[test]
fn periodic_timer_repeats_until_cancelled() {
    let mut poller = Poller::new().unwrap();
    let tick = Event::Timer(TimerId(7));
    poller
        .set_timer(TimerId(7), Duration::from_millis(20), true)
        .unwrap();
    wait_until(&mut poller, "three ticks", |seen| {
        seen.iter().filter(|e| **e == tick).count() >= 3
    });
    poller.cancel_timer(TimerId(7)).unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![], "cancelled");
}

#[test]
fn timers_fire_in_delay_order() {
    let mut poller = Poller::new().unwrap();
    poller
        .set_timer(TimerId(1), Duration::from_millis(400), false)
        .unwrap();
    poller
        .set_timer(TimerId(2), Duration::from_millis(30), false)
        .unwrap();
    let seen = wait_for(&mut poller, Event::Timer(TimerId(1)));
    assert_eq!(
        seen,
        vec![Event::Timer(TimerId(2)), Event::Timer(TimerId(1))]
    );
}

#[test]
fn resetting_a_timer_replaces_it() {
    let mut poller = Poller::new().unwrap();
    let long = Duration::from_secs(3600);

    // A far deadline replaced by a near one fires, once.
    poller.set_timer(TimerId(5), long, true).unwrap();
    poller
        .set_timer(TimerId(5), Duration::from_millis(20), false)
        .unwrap();
    wait_for(&mut poller, Event::Timer(TimerId(5)));
    assert_eq!(events_within_quiet(&mut poller), vec![]);

    // A near deadline replaced by a far one does not fire, and neither does
    // an expiration that happened but was not reported yet.
    poller
        .set_timer(TimerId(6), Duration::from_millis(10), false)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    poller.set_timer(TimerId(6), long, false).unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![]);
    poller.cancel_timer(TimerId(6)).unwrap();
}

#[test]
fn a_one_shot_timer_reset_as_periodic_repeats() {
    let mut poller = Poller::new().unwrap();
    let tick = Event::Timer(TimerId(9));
    poller
        .set_timer(TimerId(9), Duration::from_secs(3600), false)
        .unwrap();
    poller
        .set_timer(TimerId(9), Duration::from_millis(20), true)
        .unwrap();
    wait_until(&mut poller, "three ticks", |seen| {
        seen.iter().filter(|e| **e == tick).count() >= 3
    });
    poller.cancel_timer(TimerId(9)).unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![], "cancelled");
}

/// The main process's timer ids start at 2^32 (on FreeBSD they must not
/// be the kqueue's ident, which is 32 bits wide on i386).
#[test]
fn timer_ids_beyond_32_bits_fire_under_their_own_id() {
    let mut poller = Poller::new().unwrap();
    let ids = [TimerId(1 << 32), TimerId((2 << 32) + 1), TimerId(u64::MAX)];
    for (n, &id) in ids.iter().enumerate() {
        let after = Duration::from_millis(20 * (n as u64 + 1));
        poller.set_timer(id, after, false).unwrap();
    }
    let seen = wait_for(&mut poller, Event::Timer(TimerId(u64::MAX)));
    assert_eq!(seen, ids.map(Event::Timer).to_vec());
    // A fired one-shot's number is free again; reusing it must not revive
    // the old id.
    poller
        .set_timer(TimerId(3 << 32), Duration::from_millis(20), false)
        .unwrap();
    let seen = wait_for(&mut poller, Event::Timer(TimerId(3 << 32)));
    assert_eq!(seen, vec![Event::Timer(TimerId(3 << 32))]);
    assert_eq!(events_within_quiet(&mut poller), vec![]);
}

/// 30 days is past 2^31 ms, the most a 32-bit kqueue `data` holds.
#[test]
fn a_timer_of_thirty_days_can_be_set_and_cancelled() {
    let mut poller = Poller::new().unwrap();
    let month = Duration::from_secs(30 * 24 * 3600);
    poller.set_timer(TimerId(4), month, false).unwrap();
    poller.set_timer(TimerId(5), month, true).unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![]);
    poller.cancel_timer(TimerId(4)).unwrap();
    poller.cancel_timer(TimerId(5)).unwrap();
}

#[test]
fn cancelled_timer_with_unreported_expiry_stays_quiet() {
    let mut poller = Poller::new().unwrap();
    poller
        .set_timer(TimerId(8), Duration::from_millis(10), false)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    poller.cancel_timer(TimerId(8)).unwrap();
    assert_eq!(events_within_quiet(&mut poller), vec![]);
}

#[test]
fn wait_times_out_with_no_events() {
    let mut poller = Poller::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    poller
        .register(a.as_fd(), Token(1), Interest::Read)
        .unwrap();
    let mut events = vec![Event::Timer(TimerId(99))]; // cleared by wait
    let start = Instant::now();
    poller
        .wait(&mut events, Some(Duration::from_millis(100)))
        .unwrap();
    let took = start.elapsed();
    assert_eq!(events, vec![]);
    assert!(
        took >= Duration::from_millis(50),
        "returned without waiting: {took:?}"
    );
    assert!(took < DEADLINE, "{took:?}");
}
