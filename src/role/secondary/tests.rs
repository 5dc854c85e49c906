use std::time::Duration;

use super::*;
use crate::proto::msg::HeartbeatRequest;
use crate::role::HookResult;

const HB: Duration = Duration::from_secs(10);

fn secondary() -> Secondary {
    let cfg = SecondaryConfig {
        heartbeat: HB,
        silence_limit: HB * 2,
        remotes: 2,
        primary: Some(1),
    };
    let mut s = Secondary::new(cfg, Time(0));
    assert_eq!(
        s.handle(Time(0), Input::Start),
        [
            Action::RunHook(HookEvent::Connect),
            Action::RunHook(HookEvent::Status)
        ]
    );
    s
}

fn status(s: &mut Secondary, now: u64, code: i32) -> Vec<Action> {
    s.handle(
        Time(now),
        Input::HookDone {
            event: HookEvent::Status,
            result: HookResult::Exited(code),
        },
    )
}

fn without_logs(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Log { .. }))
        .collect()
}

#[test]
fn heartbeats_are_answered_with_the_local_state_or_einval() {
    let mut s = secondary();
    let a = s.handle(
        Time(5),
        Input::Heartbeat {
            msg: HeartbeatRequest::new(State::Run, 7),
        },
    );
    assert_eq!(
        a,
        [Action::Reply {
            msg: HeartbeatReply {
                seq: Some(7),
                status: HeartbeatStatus::State(State::Unknown)
            }
        }]
    );
    assert!(status(&mut s, 6, 1).is_empty());
    let a = s.handle(
        Time(7),
        Input::Heartbeat {
            msg: HeartbeatRequest {
                cmd: 9,
                state: State::Run,
                seq: 8,
            },
        },
    );
    assert_eq!(
        a,
        [Action::Reply {
            msg: HeartbeatReply {
                seq: Some(8),
                status: HeartbeatStatus::Error(22)
            }
        }]
    );
    let a = s.handle(
        Time(8),
        Input::Heartbeat {
            msg: HeartbeatRequest::new(State::Run, 9),
        },
    );
    assert_eq!(
        a,
        [Action::Reply {
            msg: HeartbeatReply {
                seq: Some(9),
                status: HeartbeatStatus::State(State::Stopped)
            }
        }]
    );
}

#[test]
fn status_every_interval_one_at_a_time_and_stop_when_not_stopped() {
    let mut s = secondary();
    assert_eq!(s.deadline(), Some(Time(10_000)));
    // The first status is still running: no second one.
    s.handle(
        Time(9_000),
        Input::Heartbeat {
            msg: HeartbeatRequest::new(State::Run, 1),
        },
    );
    assert!(s.handle(Time(10_000), Input::Tick).is_empty());
    // Unknown is not stopped.
    assert_eq!(
        without_logs(status(&mut s, 12_000, 3)),
        [Action::RunHook(HookEvent::Stop)]
    );
    assert_eq!(s.report().state, State::Stopping);
    s.handle(
        Time(19_000),
        Input::Heartbeat {
            msg: HeartbeatRequest::new(State::Run, 2),
        },
    );
    assert_eq!(
        s.handle(Time(20_000), Input::Tick),
        [Action::RunHook(HookEvent::Status)]
    );
    // A stop still on its way is not asked for again.
    assert!(without_logs(status(&mut s, 20_500, 0)).is_empty());
    s.handle(
        Time(21_000),
        Input::HookDone {
            event: HookEvent::Stop,
            result: HookResult::Exited(0),
        },
    );
    s.handle(
        Time(29_000),
        Input::Heartbeat {
            msg: HeartbeatRequest::new(State::Run, 3),
        },
    );
    assert_eq!(
        s.handle(Time(30_000), Input::Tick),
        [Action::RunHook(HookEvent::Status)]
    );
    assert!(status(&mut s, 30_100, 1).is_empty());
    assert_eq!(s.report().state, State::Stopped);
    assert_eq!(
        s.report().remotes,
        [
            RemoteReport::Link { connected: false },
            RemoteReport::Link { connected: true }
        ]
    );
    assert_eq!(s.report().seen, [None, Some(Time(29_000))]);
}

#[test]
fn silence_beyond_twice_the_interval_disconnects_and_exits_75() {
    let mut s = secondary();
    status(&mut s, 100, 1);
    s.handle(Time(10_000), Input::Tick);
    s.handle(
        Time(15_000),
        Input::Heartbeat {
            msg: HeartbeatRequest::new(State::Run, 1),
        },
    );
    status(&mut s, 15_100, 1);
    s.handle(Time(20_000), Input::Tick);
    status(&mut s, 20_100, 1);
    s.handle(Time(30_000), Input::Tick);
    status(&mut s, 30_100, 1);
    assert_eq!(s.deadline(), Some(Time(35_000)));
    let a = s.handle(Time(35_000), Input::Tick);
    assert_eq!(
        without_logs(a),
        [
            Action::RunHook(HookEvent::Disconnect),
            Action::Exit(exit::TEMPFAIL)
        ]
    );
    assert_eq!(s.deadline(), None);
    assert!(s.handle(Time(40_000), Input::Tick).is_empty());
}

#[test]
fn a_lost_connection_disconnects_and_termination_exits_quietly() {
    let mut s = secondary();
    let a = s.handle(Time(5), Input::PeerLost { remote: 0 });
    assert_eq!(
        without_logs(a),
        [
            Action::RunHook(HookEvent::Disconnect),
            Action::Exit(exit::TEMPFAIL)
        ]
    );
    let mut s = secondary();
    let a = s.handle(Time(5), Input::Terminate { stop: true });
    assert_eq!(a, [Action::Exit(exit::OK)]);
}

#[test]
fn q22_silence_is_measured_against_the_primarys_announced_interval() {
    let cfg = SecondaryConfig {
        heartbeat: HB,
        silence_limit: HB * 2,
        remotes: 1,
        primary: Some(0),
    };
    let slow = cfg.clone().with_primary_interval(Some(HB * 5));
    assert_eq!(slow.silence_limit, HB * 10);
    assert_eq!(cfg.clone().with_primary_interval(None), cfg);
}
