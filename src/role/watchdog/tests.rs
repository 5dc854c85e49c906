use std::time::Duration;

use super::*;

const HB: Duration = Duration::from_secs(10);

fn watchdog(remotes: &[(&str, bool)]) -> Watchdog {
    Watchdog::new(
        WatchdogConfig {
            heartbeat: HB,
            timeout: Duration::from_secs(5),
            remotes: remotes
                .iter()
                .map(|(a, r)| RemoteSpec {
                    addr: a.to_string(),
                    reachable: *r,
                })
                .collect(),
        },
        Time(0),
    )
}

/// An answer to this cycle's poll.
fn polled(w: &mut Watchdog, now: u64, remote: usize, role: Role, state: State) -> Vec<Action> {
    let cycle = w.cycle;
    w.handle(
        Time(now),
        Input::Polled {
            remote,
            cycle,
            result: Ok((role, state)),
        },
    )
}

fn poll(remote: usize, cycle: u64) -> Action {
    Action::Poll { remote, cycle }
}

fn without_logs(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Log { .. }))
        .collect()
}

#[test]
fn polls_every_reachable_remote_at_once_and_every_interval() {
    let mut w = watchdog(&[("tcp4://a", true), ("none", false), ("tcp4://b", true)]);
    assert_eq!(w.handle(Time(0), Input::Start), [poll(0, 1), poll(2, 1)]);
    assert_eq!(w.deadline(), Some(Time(5_000)));
    assert!(polled(&mut w, 10, 0, Role::Primary, State::Starting).is_empty());
    // Evaluated once both answered: a primary that is only starting is in
    // charge, so no complaint.
    assert!(polled(&mut w, 20, 2, Role::Secondary, State::Stopped).is_empty());
    assert_eq!(w.report().state, State::Run);
    assert_eq!(
        w.report().remotes,
        [
            RemoteReport::Seen {
                role: Role::Primary,
                state: State::Starting
            },
            RemoteReport::Seen {
                role: Role::Undef,
                state: State::Unknown
            },
            RemoteReport::Seen {
                role: Role::Secondary,
                state: State::Stopped
            },
        ]
    );
    assert_eq!(w.report().seen, [Some(Time(10)), None, Some(Time(20))]);
    // A late second answer is not a second evaluation.
    assert!(polled(&mut w, 30, 2, Role::Secondary, State::Stopped).is_empty());
    assert_eq!(w.deadline(), Some(Time(10_000)));
    assert_eq!(
        w.handle(Time(10_000), Input::Tick),
        [poll(0, 2), poll(2, 2)]
    );
}

#[test]
fn q21_an_unanswered_poll_expires_once_and_no_primary_means_complaints() {
    let mut w = watchdog(&[("tcp4://a", true), ("tcp4://b", true)]);
    w.handle(Time(0), Input::Start);
    assert!(polled(&mut w, 10, 1, Role::Secondary, State::Stopped).is_empty());
    let a = w.handle(Time(5_000), Input::Tick);
    assert_eq!(
        without_logs(a),
        [
            Action::Disconnect { remote: 0 },
            Action::Complain { remote: 1 },
            Action::RunHook(HookEvent::Complaint),
        ]
    );
    assert_eq!(w.report().state, State::Unknown);
    // The answer that comes too late is ignored.
    assert!(polled(&mut w, 6_000, 0, Role::Primary, State::Run).is_empty());
    assert_eq!(
        w.report().remotes[0],
        RemoteReport::Seen {
            role: Role::Undef,
            state: State::Unknown
        }
    );
    assert_eq!(w.report().seen, [None, Some(Time(10))]);
    // Next cycle: the primary answers again, complaints stop.
    w.handle(Time(10_000), Input::Tick);
    polled(&mut w, 10_010, 0, Role::Primary, State::Stopped);
    assert!(polled(&mut w, 10_020, 1, Role::Secondary, State::Stopped).is_empty());
    assert_eq!(w.report().state, State::Run);
}

#[test]
fn errors_read_as_unknown_and_without_secondaries_nobody_is_complained_to() {
    let mut w = watchdog(&[("tcp4://a", true), ("tcp4://b", true)]);
    w.handle(Time(0), Input::Start);
    let a = w.handle(
        Time(1),
        Input::Polled {
            remote: 0,
            cycle: 1,
            result: Err("Connection refused".into()),
        },
    );
    assert!(matches!(
        a[..],
        [Action::Log {
            level: Level::Warning,
            ..
        }]
    ));
    assert!(polled(&mut w, 2, 1, Role::Init, State::Unknown).is_empty());
    assert_eq!(w.report().state, State::Run);
}

#[test]
fn a_cycle_still_open_when_the_next_is_due_is_closed_first() {
    let mut w = Watchdog::new(
        WatchdogConfig {
            heartbeat: HB,
            timeout: Duration::from_secs(30),
            remotes: vec![
                RemoteSpec {
                    addr: "a".into(),
                    reachable: true,
                },
                RemoteSpec {
                    addr: "b".into(),
                    reachable: true,
                },
            ],
        },
        Time(0),
    );
    w.handle(Time(0), Input::Start);
    assert_eq!(w.deadline(), Some(Time(10_000)));
    polled(&mut w, 5, 1, Role::Secondary, State::Stopped);
    let a = w.handle(Time(10_000), Input::Tick);
    assert_eq!(
        without_logs(a),
        [
            Action::Disconnect { remote: 0 },
            Action::Complain { remote: 1 },
            Action::RunHook(HookEvent::Complaint),
            poll(0, 2),
            poll(1, 2),
        ]
    );
    assert_eq!(
        w.handle(Time(10_001), Input::Terminate { stop: true }),
        [Action::Exit(0)]
    );
    assert_eq!(w.deadline(), None);
}

#[test]
fn q01_a_cycle_is_evaluated_once_after_every_remote_answered() {
    let mut w = watchdog(&[("a", true), ("b", true)]);
    w.handle(Time(0), Input::Start);
    // One answer is not the whole cycle: nothing is decided yet.
    assert!(without_logs(polled(&mut w, 5, 1, Role::Secondary, State::Stopped)).is_empty());
    assert_eq!(
        w.report().remotes[1],
        RemoteReport::Seen {
            role: Role::Undef,
            state: State::Unknown
        }
    );
    // The last answer closes it, once: no primary, so B is complained to.
    assert_eq!(
        without_logs(polled(&mut w, 6, 0, Role::Init, State::Unknown)),
        [
            Action::Complain { remote: 1 },
            Action::RunHook(HookEvent::Complaint)
        ]
    );
    assert!(without_logs(polled(&mut w, 7, 0, Role::Init, State::Unknown)).is_empty());
}

#[test]
fn q11_a_primary_that_answers_draws_no_complaint_whatever_its_state() {
    for state in [State::Starting, State::Stopped, State::Unknown, State::Run] {
        let mut w = watchdog(&[("a", true), ("b", true)]);
        w.handle(Time(0), Input::Start);
        polled(&mut w, 5, 1, Role::Secondary, State::Stopped);
        let a = polled(&mut w, 6, 0, Role::Primary, state);
        assert!(
            !a.iter().any(|a| matches!(a, Action::Complain { .. })),
            "{state:?}: {a:?}"
        );
        assert_eq!(w.report().state, State::Run);
    }
}

/// An answer that comes back after its cycle closed never counts for
/// the next one, even when it arrives while the next one waits for the
/// same remote.
#[test]
fn an_answer_of_an_earlier_cycle_is_dropped() {
    let mut w = watchdog(&[("tcp4://a", true), ("tcp4://b", true)]);
    w.handle(Time(0), Input::Start);
    polled(&mut w, 10, 1, Role::Secondary, State::Stopped);
    // Cycle 1 closes without a's answer; cycle 2 polls again.
    w.handle(Time(5_000), Input::Tick);
    assert_eq!(
        w.handle(Time(10_000), Input::Tick),
        [poll(0, 2), poll(1, 2)]
    );
    // Cycle 1's answer from a, primary, turns up now: not for cycle 2.
    let late = w.handle(
        Time(10_001),
        Input::Polled {
            remote: 0,
            cycle: 1,
            result: Ok((Role::Primary, State::Run)),
        },
    );
    assert!(late.is_empty(), "{late:?}");
    polled(&mut w, 10_002, 1, Role::Secondary, State::Stopped);
    // Cycle 2 waits for a's own answer: a is unseen, and b is told.
    let a = without_logs(w.handle(Time(15_000), Input::Tick));
    assert!(a.contains(&Action::Complain { remote: 1 }), "{a:?}");
}
