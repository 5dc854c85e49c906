use std::time::Duration;

use super::*;
use crate::proto::msg::HeartbeatReply;
use crate::role::HookResult;

const HB: Duration = Duration::from_secs(10);

fn cfg(remotes: &[(&str, bool)]) -> PrimaryConfig {
    PrimaryConfig {
        heartbeat: HB,
        timeout: Duration::from_secs(5),
        attempts: 2,
        complaint_count: 3,
        silence_limit: Some(HB * 3 + Duration::from_secs(5)),
        remotes: remotes
            .iter()
            .map(|(a, r)| RemoteSpec {
                addr: a.to_string(),
                reachable: *r,
            })
            .collect(),
        urgent: false,
    }
}

fn hooks(actions: &[Action]) -> Vec<HookEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RunHook(e) => Some(*e),
            _ => None,
        })
        .collect()
}

fn exit_code(actions: &[Action]) -> Option<i32> {
    actions.iter().find_map(|a| match a {
        Action::Exit(c) => Some(*c),
        _ => None,
    })
}

fn status(p: &mut Primary, now: Time, code: i32) -> Vec<Action> {
    p.handle(
        now,
        Input::HookDone {
            event: HookEvent::Status,
            result: HookResult::Exited(code),
        },
    )
}

#[test]
fn q12_a_standalone_primary_checks_starts_and_never_stops_for_silence() {
    let mut p = Primary::new(cfg(&[("none", false)]), Time(0));
    let a = p.handle(Time(0), Input::Start);
    assert_eq!(hooks(&a), [HookEvent::Status]);
    assert_eq!(p.deadline(), Some(Time(10_000)));
    assert_eq!(hooks(&status(&mut p, Time(50), 1)), [HookEvent::Start]);
    assert_eq!(p.report().state, State::Starting);
    assert_eq!(p.report().attempts, 1);
    // Nothing more until the next cycle.
    assert!(
        hooks(&p.handle(
            Time(60),
            Input::HookDone {
                event: HookEvent::Start,
                result: HookResult::Exited(0)
            }
        ))
        .is_empty()
    );
    assert_eq!(
        hooks(&p.handle(Time(10_000), Input::Tick)),
        [HookEvent::Status]
    );
    assert!(hooks(&status(&mut p, Time(10_050), 0)).is_empty());
    assert_eq!(p.report().state, State::Run);
    assert_eq!(p.report().attempts, 0);
    // With only `none`, silence never stops it (Q12).
    for n in 2..20 {
        let a = p.handle(Time(n * 10_000), Input::Tick);
        assert_eq!(hooks(&a), [HookEvent::Status], "cycle {n}");
        assert!(hooks(&status(&mut p, Time(n * 10_000 + 5), 0)).is_empty());
    }
}

#[test]
fn attempts_are_counted_and_exhaustion_stops_and_exits_69() {
    let mut p = Primary::new(cfg(&[("none", false)]), Time(0));
    p.handle(Time(0), Input::Start);
    assert_eq!(hooks(&status(&mut p, Time(1), 1)), [HookEvent::Start]);
    p.handle(Time(10_000), Input::Tick);
    // Unknown counts as not running.
    assert_eq!(hooks(&status(&mut p, Time(10_001), 3)), [HookEvent::Start]);
    assert_eq!(p.report().attempts, 2);
    p.handle(Time(20_000), Input::Tick);
    let a = status(&mut p, Time(20_001), 1);
    assert_eq!(hooks(&a), [HookEvent::Stop]);
    assert_eq!(exit_code(&a), Some(exit::UNAVAILABLE));
    assert_eq!(p.deadline(), None);
    assert!(p.handle(Time(30_000), Input::Tick).is_empty());
}

#[test]
fn q04_q05_a_timed_out_status_reads_unknown_and_is_never_asked_twice() {
    let mut p = Primary::new(cfg(&[("none", false)]), Time(0));
    p.handle(Time(0), Input::Start);
    assert!(hooks(&p.handle(Time(10_000), Input::Tick)).is_empty());
    assert!(hooks(&p.handle(Time(20_000), Input::Tick)).is_empty());
    // A status that timed out reads as unknown, never as running (Q4).
    let a = p.handle(
        Time(25_000),
        Input::HookDone {
            event: HookEvent::Status,
            result: HookResult::TimedOut,
        },
    );
    assert_eq!(hooks(&a), [HookEvent::Start]);
}

#[test]
fn termination_stops_the_resource_but_reload_leaves_it_running() {
    let mut p = Primary::new(cfg(&[("none", false)]), Time(0));
    p.handle(Time(0), Input::Start);
    let a = p.handle(Time(5), Input::Terminate { stop: true });
    assert_eq!(hooks(&a), [HookEvent::Stop]);
    assert_eq!(exit_code(&a), Some(0));

    let mut p = Primary::new(cfg(&[("none", false)]), Time(0));
    p.handle(Time(0), Input::Start);
    let a = p.handle(Time(5), Input::Terminate { stop: false });
    assert!(hooks(&a).is_empty());
    assert_eq!(exit_code(&a), Some(0));
}

#[test]
fn first_cycle_waits_for_the_first_connection_attempts() {
    let mut p = Primary::new(cfg(&[("tcp4://b", true), ("none", false)]), Time(0));
    let a = p.handle(Time(0), Input::Start);
    assert_eq!(a, [Action::Connect { remote: 0 }]);
    let a = p.handle(Time(100), Input::Connected { remote: 0 });
    assert_eq!(hooks(&a), [HookEvent::Connect, HookEvent::Status]);
    assert!(a.contains(&Action::Heartbeat {
        remote: 0,
        msg: HeartbeatRequest::new(State::Unknown, 1)
    }));
    assert_eq!(
        p.report().remotes,
        [
            RemoteReport::Link { connected: true },
            RemoteReport::Link { connected: false }
        ]
    );
    assert_eq!(p.report().seen, [Some(Time(100)), None]);
}

#[test]
fn q01_q18_a_round_with_one_remote_is_evaluated_and_never_joins_or_abandons_a_running_remote() {
    let mut p = Primary::new(cfg(&[("tcp4://b", true)]), Time(0));
    p.handle(Time(0), Input::Start);
    p.handle(Time(1), Input::Connected { remote: 0 });
    p.handle(
        Time(2),
        Input::Reply {
            remote: 0,
            msg: HeartbeatReply {
                seq: Some(1),
                status: HeartbeatStatus::State(State::Run),
            },
        },
    );
    assert!(hooks(&status(&mut p, Time(3), 1)).is_empty());
    assert_eq!(p.report().attempts, 0);
    assert_eq!(p.report().seen, [Some(Time(2))], "a reply is contact");
    // If both run it, the primary keeps its copy: the secondary's worker
    // stops the other one (Q18).
    p.handle(Time(10_000), Input::Tick);
    p.handle(
        Time(10_002),
        Input::Reply {
            remote: 0,
            msg: HeartbeatReply {
                seq: Some(2),
                status: HeartbeatStatus::State(State::Run),
            },
        },
    );
    let a = status(&mut p, Time(10_003), 0);
    assert!(hooks(&a).is_empty(), "{a:?}");
    assert!(
        matches!(
            &a[..],
            [Action::Log {
                level: Level::Error,
                ..
            }]
        ),
        "{a:?}"
    );
    assert_eq!(p.report().state, State::Run);
}

#[test]
fn q06_a_missing_reply_disconnects_and_counts_as_not_running() {
    let mut p = Primary::new(cfg(&[("tcp4://b", true)]), Time(0));
    p.handle(Time(0), Input::Start);
    p.handle(Time(1), Input::Connected { remote: 0 });
    assert_eq!(p.deadline(), Some(Time(5_001)));
    let a = p.handle(
        Time(2),
        Input::Reply {
            remote: 0,
            msg: HeartbeatReply {
                seq: Some(7),
                status: HeartbeatStatus::State(State::Run),
            },
        },
    );
    assert!(matches!(
        a[..],
        [Action::Log {
            level: Level::Debug,
            ..
        }]
    ));
    let a = p.handle(Time(5_001), Input::Tick);
    assert!(a.contains(&Action::Disconnect { remote: 0 }));
    assert_eq!(hooks(&a), [HookEvent::Disconnect]);
    // An errored remote is "not running": the resource starts here (Q6).
    assert_eq!(hooks(&status(&mut p, Time(5_002), 1)), [HookEvent::Start]);
}

#[test]
fn q13_silence_beyond_the_nodes_own_limit_stops_the_resource_unless_a_watchdog_polls() {
    let mut p = Primary::new(cfg(&[("tcp4://b", true)]), Time(0));
    p.handle(Time(0), Input::Start);
    p.handle(
        Time(5_000),
        Input::ConnectFailed {
            remote: 0,
            reason: ConnectFailure::Unreachable("timed out".into()),
        },
    );
    // Polled from the network at 25 s: the limit (30 s + 5 s) counts from there.
    p.handle(Time(25_000), Input::StatusPolled { remote: true });
    let exit_at = loop {
        let t = p.deadline().unwrap().0;
        let a = p.handle(Time(t), Input::Tick);
        if let Some(code) = exit_code(&a) {
            assert_eq!(code, exit::NOHOST);
            assert_eq!(hooks(&a), [HookEvent::Stop]);
            break t;
        }
        p.handle(
            Time(t),
            Input::ConnectFailed {
                remote: 0,
                reason: ConnectFailure::Unreachable("x".into()),
            },
        );
        assert!(t < 100_000);
    };
    // Checked at its own deadline, not at the next cycle.
    assert_eq!(exit_at, 60_001);
}

#[test]
fn q14_a_stronger_primary_even_with_priority_0_makes_this_one_stop_and_exit_77() {
    let mut p = Primary::new(cfg(&[("tcp4://b", true)]), Time(0));
    p.handle(Time(0), Input::Start);
    let a = p.handle(
        Time(1),
        Input::ConnectFailed {
            remote: 0,
            reason: ConnectFailure::StrongerPrimary {
                errmsg: "Remote node acts as primary with higher priority (prioty number 0)."
                    .into(),
                priority: 0,
            },
        },
    );
    assert_eq!(hooks(&a), [HookEvent::Stop]);
    assert_eq!(exit_code(&a), Some(exit::NOPERM));
}

#[test]
fn only_two_way_exchanges_count_as_contact() {
    // Connected at 1 s, then no reply ever: the link being up is not
    // contact, so the limit counts from the connection.
    let mut p = Primary::new(cfg(&[("tcp4://b", true), ("tcp4://w", true)]), Time(0));
    p.handle(Time(0), Input::Start);
    p.handle(Time(1_000), Input::Connected { remote: 0 });
    // A refused handshake is an answer: contact at 2 s.
    p.handle(
        Time(2_000),
        Input::ConnectFailed {
            remote: 1,
            reason: ConnectFailure::Refused("Remote node acts as watchdog.".into()),
        },
    );
    let mut exit_at = None;
    while exit_at.is_none() {
        let t = p.deadline().unwrap();
        let a = p.handle(t, Input::Tick);
        for act in &a {
            if let Action::Connect { remote } = act {
                p.handle(
                    t,
                    Input::ConnectFailed {
                        remote: *remote,
                        reason: ConnectFailure::Unreachable("timed out".into()),
                    },
                );
            }
        }
        if exit_code(&a).is_some() {
            exit_at = Some(t);
        }
    }
    assert_eq!(exit_at, Some(Time(37_001)));
}

#[test]
fn q56_a_promoted_primary_checks_at_once_while_it_connects() {
    let mut p = Primary::new(
        PrimaryConfig {
            urgent: true,
            ..cfg(&[("tcp4://old-primary", true)])
        },
        Time(0),
    );
    let a = p.handle(Time(0), Input::Start);
    assert!(a.contains(&Action::Connect { remote: 0 }));
    assert_eq!(hooks(&a), [HookEvent::Status]);
    // Not running, nobody connected yet: start without waiting for the
    // connection attempt to the old primary (Q56).
    assert_eq!(hooks(&status(&mut p, Time(5), 1)), [HookEvent::Start]);
}

#[test]
fn q12_without_a_silence_limit_an_unreachable_secondary_never_stops_the_primary() {
    let mut p = Primary::new(
        PrimaryConfig {
            silence_limit: None,
            ..cfg(&[("tcp4://b", true)])
        },
        Time(0),
    );
    p.handle(Time(0), Input::Start);
    for n in 0..100u64 {
        let t = Time(n * 10_000 + 1);
        p.handle(
            t,
            Input::ConnectFailed {
                remote: 0,
                reason: ConnectFailure::Unreachable("refused".into()),
            },
        );
        let a = p.handle(Time((n + 1) * 10_000), Input::Tick);
        assert_eq!(exit_code(&a), None, "stopped after {n} cycles");
    }
}

/// A remote that refuses the handshake because it is still stopping its
/// copy holds our `start`, cycle after cycle, until it accepts us.
#[test]
fn a_remote_still_stopping_holds_the_start_until_it_accepts() {
    let mut p = Primary::new(cfg(&[("b", true)]), Time(0));
    p.handle(Time(0), Input::Start);
    let busy = || Input::ConnectFailed {
        remote: 0,
        reason: ConnectFailure::Refused(errmsg::STOPPING.into()),
    };
    // Refused: the first cycle checks the resource and tries again.
    let a = p.handle(Time(10), busy());
    assert_eq!(hooks(&a), [HookEvent::Status]);
    assert!(a.contains(&Action::Connect { remote: 0 }), "{a:?}");
    assert!(hooks(&status(&mut p, Time(20), 1)).is_empty(), "started");
    // Still stopping at the next try, and the next cycle's.
    p.handle(Time(30), busy());
    let t = p.deadline().unwrap();
    let a = p.handle(t, Input::Tick);
    assert!(a.contains(&Action::Connect { remote: 0 }), "{a:?}");
    p.handle(t + Duration::from_millis(10), busy());
    let done = status(&mut p, t + Duration::from_millis(20), 1);
    assert!(hooks(&done).is_empty(), "started");
    assert_eq!(p.report().attempts, 0, "waiting is no failed attempt");
    // Stopped there: it accepts us, and we start.
    let t = p.deadline().unwrap();
    p.handle(t, Input::Tick);
    p.handle(
        t + Duration::from_millis(10),
        Input::Connected { remote: 0 },
    );
    let done = status(&mut p, t + Duration::from_millis(20), 1);
    assert_eq!(hooks(&done), [HookEvent::Start]);
}

/// Any other refusal (a watchdog, an init node) says nothing about the
/// resource: it does not hold the start.
#[test]
fn another_refusal_does_not_hold_the_start() {
    let mut p = Primary::new(cfg(&[("w", true)]), Time(0));
    p.handle(Time(0), Input::Start);
    p.handle(
        Time(10),
        Input::ConnectFailed {
            remote: 0,
            reason: ConnectFailure::Refused(errmsg::not_secondary(crate::types::Role::Watchdog)),
        },
    );
    assert_eq!(hooks(&status(&mut p, Time(20), 1)), [HookEvent::Start]);
}
