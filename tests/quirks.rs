//! Regression tests, on the pure layers, for the weaknesses of hastmon
//! 0.3.4 listed in doc/quirks.md. Each is named after its entry and fails on
//! the original's behaviour. (More live next to the code they cover, in
//! the role machines' unit tests, and on real daemons in quirks_daemon.rs.)

use std::time::Duration;

use hastmon::config::{NodeNames, Syntax, parse_bytes};
use hastmon::proto::msg::{HeartbeatReply, HeartbeatRequest, HeartbeatStatus, HookEvent};
use hastmon::proto::{FrameReader, NvList, decode_frame};
use hastmon::role::primary::{Primary, PrimaryConfig, RemoteSpec};
use hastmon::role::secondary::{Secondary, SecondaryConfig};
use hastmon::role::watchdog::{Watchdog, WatchdogConfig};
use hastmon::role::{Action, ConnectFailure, HookResult, Input, Time};
use hastmon::types::{Role, State};
use hastmon::worker::channel::Channel;
use proptest::prelude::*;

const HB: Duration = Duration::from_secs(1);

fn remotes(n: usize) -> Vec<RemoteSpec> {
    (0..n)
        .map(|i| RemoteSpec {
            addr: format!("tcp4://10.0.0.{i}:8458"),
            reachable: true,
        })
        .collect()
}

fn primary(n: usize) -> Primary {
    Primary::new(
        PrimaryConfig {
            heartbeat: HB,
            timeout: HB,
            attempts: 3,
            complaint_count: 3,
            silence_limit: Some(HB * 4),
            remotes: remotes(n),
            urgent: false,
        },
        Time(0),
    )
}

fn hooks(a: &[Action]) -> Vec<HookEvent> {
    a.iter()
        .filter_map(|a| match a {
            Action::RunHook(e) => Some(*e),
            _ => None,
        })
        .collect()
}

#[test]
fn q02_the_worker_channel_keeps_every_message_whole_and_in_order() {
    let (a, b) = Channel::pair().unwrap();
    let mut received = 0u32;
    let mut sent = 0u32;
    let file = std::fs::File::open("/dev/null").unwrap();
    while received < 2_000 {
        // Fill until the socket pushes back, then drain: messages of
        // varying sizes, some with a descriptor attached.
        while sent < 2_000 {
            let mut nv = NvList::new();
            nv.add_u32("n", sent)
                .add_string("pad", "x".repeat((sent % 97) as usize));
            let fds = [std::os::fd::AsFd::as_fd(&file)];
            let with = if sent.is_multiple_of(10) {
                &fds[..]
            } else {
                &[]
            };
            match a.send(&nv, with) {
                Ok(()) => sent += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        loop {
            match b.recv() {
                Ok(Some((nv, fds))) => {
                    assert_eq!(nv.get_u32("n"), Some(received));
                    assert_eq!(nv.get_str("pad").unwrap().len(), (received % 97) as usize);
                    assert_eq!(fds.len(), usize::from(received.is_multiple_of(10)));
                    received += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn q03_empty_frame_is_an_empty_list() {
    assert_eq!(decode_frame(&[0, 0, 0, 0, 0]).unwrap(), NvList::new());
    let mut r = FrameReader::new();
    r.push(&[0, 0, 0, 0, 0]);
    assert_eq!(r.next_list().unwrap(), Some(NvList::new()));
    // A length past the cap is refused before anything is allocated.
    let mut r = FrameReader::new();
    r.push(&[0, 0xff, 0xff, 0xff, 0x7f]);
    assert!(r.next_list().is_err());
}

#[test]
fn q04_a_status_that_did_not_finish_is_unknown_never_running() {
    for r in [
        HookResult::Signaled(9),
        HookResult::TimedOut,
        HookResult::NotRun,
        HookResult::Exited(70),
    ] {
        assert_eq!(r.status_state(), State::Unknown, "{r:?}");
    }
    assert_eq!(HookResult::Exited(0).status_state(), State::Run);
    assert_eq!(HookResult::Exited(1).status_state(), State::Stopped);
}

#[test]
fn q06_an_errored_remote_is_not_running_and_never_stale() {
    let mut p = primary(1);
    p.handle(Time(0), Input::Start);
    p.handle(Time(1), Input::Connected { remote: 0 });
    // A reply that carries an error reads as unknown: the resource starts.
    let reply = HeartbeatReply {
        seq: Some(1),
        status: HeartbeatStatus::Error(22),
    };
    p.handle(
        Time(2),
        Input::Reply {
            remote: 0,
            msg: reply,
        },
    );
    let a = p.handle(
        Time(3),
        Input::HookDone {
            event: HookEvent::Status,
            result: HookResult::Exited(1),
        },
    );
    assert_eq!(hooks(&a), [HookEvent::Start]);
}

fn any_input() -> impl Strategy<Value = Input> {
    let state = (0u8..8).prop_map(State::from_code);
    let event = (1u8..7).prop_map(|c| HookEvent::from_code(c).unwrap());
    let result = prop_oneof![
        (-1i32..3).prop_map(HookResult::Exited),
        Just(HookResult::TimedOut),
        Just(HookResult::NotRun),
        Just(HookResult::Signaled(9)),
    ];
    prop_oneof![
        Just(Input::Tick),
        (event, result).prop_map(|(event, result)| Input::HookDone { event, result }),
        (0usize..3).prop_map(|remote| Input::Connected { remote }),
        (0usize..3, any::<bool>()).prop_map(|(remote, stronger)| Input::ConnectFailed {
            remote,
            reason: if stronger {
                ConnectFailure::StrongerPrimary {
                    errmsg: "x".into(),
                    priority: 0,
                }
            } else {
                ConnectFailure::Unreachable("x".into())
            },
        }),
        (0usize..3, 0u64..5, state.clone()).prop_map(|(remote, seq, s)| Input::Reply {
            remote,
            msg: HeartbeatReply {
                seq: Some(seq),
                status: HeartbeatStatus::State(s),
            },
        }),
        (0u64..5, state.clone()).prop_map(|(seq, s)| Input::Heartbeat {
            msg: HeartbeatRequest::new(s, seq),
        }),
        (0usize..3, 0u64..4, 0u8..5, state).prop_map(|(remote, cycle, role, s)| {
            Input::Polled {
                remote,
                cycle,
                result: Ok((Role::from_code(role), s)),
            }
        }),
        (0usize..3).prop_map(|remote| Input::PeerLost { remote }),
        any::<bool>().prop_map(|remote| Input::StatusPolled { remote }),
        any::<bool>().prop_map(|stop| Input::Terminate { stop }),
    ]
}

proptest! {
    /// 0.3.4's primary asserted on a STOPPING state reaching its round
    /// evaluation (Q7). No sequence of inputs, in any role, may panic, and
    /// an exiting machine exits once and then stays silent.
    #[test]
    fn q07_no_input_sequence_upsets_a_role_machine(
        steps in prop::collection::vec((0u64..3_000, any_input()), 0..80),
        role in 0u8..3,
    ) {
        let mut now = 0;
        let mut exited = false;
        let mut feed: Box<dyn FnMut(Time, Input) -> Vec<Action>> = match role {
            0 => {
                let mut m = primary(3);
                Box::new(move |t, i| m.handle(t, i))
            }
            1 => {
                let mut m = Secondary::new(
                    SecondaryConfig { heartbeat: HB, silence_limit: HB * 2, remotes: 3, primary: Some(0) },
                    Time(0),
                );
                Box::new(move |t, i| m.handle(t, i))
            }
            _ => {
                let mut m = Watchdog::new(
                    WatchdogConfig { heartbeat: HB, timeout: HB, remotes: remotes(3) },
                    Time(0),
                );
                Box::new(move |t, i| m.handle(t, i))
            }
        };
        feed(Time(0), Input::Start);
        for (dt, input) in steps {
            now += dt;
            let actions = feed(Time(now), input);
            if exited {
                prop_assert!(actions.is_empty(), "acted after exiting: {actions:?}");
            }
            let exits = actions.iter().filter(|a| matches!(a, Action::Exit(_))).count();
            prop_assert!(exits <= 1);
            exited |= exits == 1;
        }
    }
}

#[test]
fn q20_an_unresolvable_remote_is_unreachable_and_retried_not_fatal() {
    let mut p = primary(1);
    p.handle(Time(0), Input::Start);
    let a = p.handle(
        Time(1),
        Input::ConnectFailed {
            remote: 0,
            reason: ConnectFailure::Unreachable("the address does not resolve".into()),
        },
    );
    assert!(!a.iter().any(|a| matches!(a, Action::Exit(_))), "{a:?}");
    assert_eq!(hooks(&a), [HookEvent::Status]);
    // Each cycle tries again (until the silence limit, 4 s here).
    for n in 1..4u64 {
        let fail = Input::ConnectFailed {
            remote: 0,
            reason: ConnectFailure::Unreachable("the address does not resolve".into()),
        };
        p.handle(Time(n * 1_000 - 500), fail);
        let a = p.handle(Time(n * 1_000 + 1), Input::Tick);
        assert!(a.contains(&Action::Connect { remote: 0 }), "{n}: {a:?}");
        assert!(!a.iter().any(|a| matches!(a, Action::Exit(_))), "{a:?}");
    }
}

fn resolve(text: &str, node: &str) -> Result<hastmon::config::Config, String> {
    parse_bytes(text.as_bytes(), Syntax::Conf, &NodeNames::exact(node))
        .map_err(|e| format!("{e:?}"))
}

#[test]
fn q13_the_silence_limit_comes_from_the_nodes_own_settings() {
    let text = "resource r {\n exec /bin/true\n heartbeat_interval 2\n timeout 1\n complaint_count 4\n \
                on a { remote tcp4://10.0.0.2 }\n on b { remote tcp4://10.0.0.1 heartbeat_interval 5 }\n}\n";
    let a = resolve(text, "a").unwrap();
    let b = resolve(text, "b").unwrap();
    assert_eq!(a.resources[0].silence_limit, Duration::from_secs(4 * 2 + 1));
    assert_eq!(b.resources[0].silence_limit, Duration::from_secs(4 * 5 + 1));
}

#[test]
fn q39_priority_in_a_top_level_on_section_is_accepted() {
    let text = "on a { priority 7 }\nresource r {\n exec /bin/true\n on a { remote none }\n}\n";
    assert_eq!(resolve(text, "a").unwrap().resources[0].priority, 7);
}

#[test]
fn q40_node_names_match_exactly_never_by_prefix() {
    let text = "resource r {\n exec /bin/true\n on node10 { remote none priority 10 }\n on node1 { remote none priority 1 }\n}\n";
    assert_eq!(resolve(text, "node1").unwrap().resources[0].priority, 1);
    assert_eq!(resolve(text, "node10").unwrap().resources[0].priority, 10);
    assert!(resolve(text, "node").is_err());
}
