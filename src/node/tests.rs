use std::net::SocketAddr;

use super::*;
use crate::config::{NodeNames, Syntax, parse_bytes};
use crate::proto::msg::{Handshake1, Handshake2, HookEvent};
use crate::role::HookResult;

const CONF: &str = "
hook_timeout 2
resource r {
    exec /bin/true
    on a { remote 10.0.0.2 priority 2 role_on_start ROLE }
    on b { remote 10.0.0.1 priority 1 }
}
";

fn config(role: &str, extra: &str) -> Config {
    let text = CONF.replace("ROLE", role).replace("hook_timeout 2", extra);
    parse_bytes(text.as_bytes(), Syntax::Conf, &NodeNames::exact("a")).expect("valid")
}

fn resolve(a: &Address) -> Option<SocketAddr> {
    a.literal()
}

fn node(role: &str) -> NodeMachine {
    NodeMachine::new(&config(role, "hook_timeout 2"), &resolve, Time(0))
}

fn without_logs(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Log { .. }))
        .collect()
}

fn forked(actions: &[Action]) -> Option<WorkerRef> {
    actions.iter().find_map(|a| match a {
        Action::Fork { worker, .. } => Some(*worker),
        _ => None,
    })
}

fn hook_args(actions: &[Action]) -> Vec<(HookId, Vec<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RunHook { hook, args, .. } => Some((*hook, args.clone())),
            _ => None,
        })
        .collect()
}

/// A node started as primary: its worker forked and the `role` hook run.
fn started_primary() -> (NodeMachine, WorkerRef, HookId) {
    let mut n = node("primary");
    let a = n.handle(Time(0), Input::Start);
    let w = forked(&a).expect("a primary worker");
    let hooks = hook_args(&a);
    assert_eq!(hooks.len(), 1, "{a:?}");
    assert_eq!(hooks[0].1, ["role", "r", "init", "primary"]);
    n.handle(
        Time(1),
        Input::WorkerStarted {
            worker: w,
            pid: 100,
        },
    );
    (n, w, hooks[0].0)
}

#[test]
fn hooks_run_one_at_a_time_in_order_and_duplicates_are_dropped() {
    let (mut n, w, role) = started_primary();
    let ask = |n: &mut NodeMachine, e| {
        n.handle(
            Time(2),
            Input::FromWorker {
                worker: w,
                msg: ToMain::RunHook(e),
            },
        )
    };
    // `role` still runs: `status` waits, and a second `status` is dropped.
    assert!(hook_args(&ask(&mut n, HookEvent::Status)).is_empty());
    assert!(hook_args(&ask(&mut n, HookEvent::Status)).is_empty());
    assert!(hook_args(&ask(&mut n, HookEvent::Start)).is_empty());
    let res = n.active().next().unwrap();
    assert_eq!(
        n.get(res).unwrap().hooks.pending_words(),
        ["role", "status", "start"]
    );
    let a = n.handle(
        Time(3),
        Input::HookExited {
            hook: role,
            exit: HookExit::Exited(0),
        },
    );
    let next = hook_args(&a);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1, ["status", "r"]);
    let a = n.handle(
        Time(4),
        Input::HookExited {
            hook: next[0].0,
            exit: HookExit::Exited(1),
        },
    );
    // The worker hears of its own hook, and `start` follows.
    assert!(a.contains(&Action::ToWorker {
        worker: w,
        msg: ToWorker::HookDone {
            event: HookEvent::Status,
            result: HookResult::Exited(1),
        },
    }));
    assert_eq!(hook_args(&a)[0].1, ["start", "r"]);
}

#[test]
fn a_hook_past_its_limit_gets_sigterm_then_sigkill_and_counts_as_timed_out() {
    let (mut n, w, role) = started_primary();
    n.handle(
        Time(5),
        Input::HookStarted {
            hook: role,
            pid: 200,
        },
    );
    assert_eq!(n.deadline(), Some(Time(2000)));
    let a = without_logs(n.handle(Time(2000), Input::Tick));
    assert_eq!(
        a,
        [Action::SignalHook {
            hook: role,
            kill: false
        }]
    );
    assert_eq!(n.deadline(), Some(Time(2000) + hooks::KILL_GRACE));
    let a = without_logs(n.handle(Time(7000), Input::Tick));
    assert_eq!(
        a,
        [Action::SignalHook {
            hook: role,
            kill: true
        }]
    );
    assert_eq!(n.deadline(), None);
    let a = n.handle(
        Time(7001),
        Input::HookExited {
            hook: role,
            exit: HookExit::Signaled(9),
        },
    );
    let logged_timeout = a.iter().any(|x| {
        matches!(x, Action::Log { level: Level::Error, msg, .. } if msg.contains("timed out after 2 s"))
    });
    assert!(logged_timeout, "{a:?}");
    let res = n.active().next().unwrap();
    let last = n.get(res).unwrap().hooks.last_runs().next().unwrap();
    assert_eq!(last.0, "role");
    assert_eq!(last.1.result, HookResult::TimedOut);
    let _ = w;
}

#[test]
fn a_demoted_primary_stops_before_the_new_role_begins() {
    let (mut n, w, role) = started_primary();
    n.handle(
        Time(2),
        Input::HookExited {
            hook: role,
            exit: HookExit::Exited(0),
        },
    );
    let res = w.res;
    let request = crate::proto::msg::ControlRequest {
        cmd: crate::proto::msg::ControlCmd::SetRole,
        role: Some(Role::Secondary),
        resources: vec!["r".into()],
        auth: None,
        extended: false,
    }
    .to_nv();
    let a = n.handle(
        Time(3),
        Input::Control {
            conn: ConnId(1),
            request: &request,
        },
    );
    // The primary worker is told to stop the resource; the `role` hook
    // waits until it is reaped.
    assert!(a.contains(&Action::Signal {
        worker: w,
        leave: Leave::StopResource
    }));
    assert!(hook_args(&a).is_empty(), "{a:?}");
    // On its way out the worker runs `stop`, which goes first.
    let a = n.handle(
        Time(4),
        Input::FromWorker {
            worker: w,
            msg: ToMain::RunHook(HookEvent::Stop),
        },
    );
    assert_eq!(hook_args(&a)[0].1, ["stop", "r"]);
    assert!(n.guardian().any(|g| g.res == res && g.primary));
    let a = n.handle(
        Time(5),
        Input::WorkerExited {
            worker: w,
            exit: WorkerExit::Code(0),
        },
    );
    // Reaped: the held `role` hook queues behind `stop`.
    assert!(hook_args(&a).is_empty());
    assert_eq!(n.get(res).unwrap().hooks.pending_words(), ["stop", "role"]);
    assert!(
        n.guardian().any(|g| g.res == res && g.primary),
        "stop still owed"
    );
}

#[test]
fn a_handshake_hands_both_connections_to_a_new_secondary_worker() {
    let mut n = node("secondary");
    n.handle(Time(0), Input::Start);
    let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let local: SocketAddr = "10.0.0.1:8458".parse().unwrap();
    let listen = |n: &mut NodeMachine, conn, nv: &NvList, token| {
        n.handle(
            Time(10),
            Input::Listen(ListenInput {
                conn: ConnId(conn),
                peer,
                local,
                nv,
                session: None,
                wall: 0,
                token,
            }),
        )
    };
    let h1 = Handshake1 {
        resource: "r".into(),
        priority: Some(1),
        auth: None,
        heartbeat_ms: Some(500),
    }
    .to_nv();
    let a = without_logs(listen(&mut n, 7, &h1, [9; 16]));
    assert!(
        matches!(
            &a[..],
            [Action::Hold {
                conn: ConnId(7),
                reply: Some(_)
            }]
        ),
        "{a:?}"
    );
    let wrong = Handshake2 {
        auth: None,
        resource: "r".into(),
        token: [1; 16],
        resuid: 0,
    }
    .to_nv();
    let a = without_logs(listen(&mut n, 8, &wrong, [0; 16]));
    assert!(
        matches!(
            &a[..],
            [Action::Reply {
                conn: ConnId(8),
                reply: Some(_)
            }]
        ),
        "{a:?}"
    );
    let right = Handshake2 {
        auth: None,
        resource: "r".into(),
        token: [9; 16],
        resuid: 0,
    }
    .to_nv();
    let a = listen(&mut n, 9, &right, [0; 16]);
    let fork = a.iter().find_map(|x| match x {
        Action::Fork {
            role,
            handoff,
            primary_heartbeat,
            ..
        } => Some((*role, *handoff, *primary_heartbeat)),
        _ => None,
    });
    assert_eq!(
        fork,
        Some((
            Role::Secondary,
            Some(Handoff {
                remote: 0,
                first: ConnId(7),
                second: ConnId(9)
            }),
            Some(std::time::Duration::from_millis(500))
        ))
    );
}

#[test]
fn a_stranger_is_refused_before_the_machine_hears_of_it() {
    let mut n = node("secondary");
    n.handle(Time(0), Input::Start);
    let h1 = Handshake1 {
        resource: "r".into(),
        priority: Some(1),
        auth: None,
        heartbeat_ms: None,
    }
    .to_nv();
    let a = without_logs(n.handle(
        Time(1),
        Input::Listen(ListenInput {
            conn: ConnId(3),
            peer: "10.9.9.9:5000".parse().unwrap(),
            local: "10.0.0.1:8458".parse().unwrap(),
            nv: &h1,
            session: None,
            wall: 0,
            token: [0; 16],
        }),
    ));
    assert!(
        matches!(
            &a[..],
            [Action::Reply {
                conn: ConnId(3),
                reply: Some(_)
            }]
        ),
        "{a:?}"
    );
}

#[test]
fn terminate_stops_every_worker_and_exits_once_all_is_quiet() {
    let (mut n, w, role) = started_primary();
    let a = without_logs(n.handle(Time(10), Input::Terminate));
    assert_eq!(
        a,
        [Action::Signal {
            worker: w,
            leave: Leave::StopResource
        }]
    );
    // Twice the longest hook limit and a margin.
    assert_eq!(n.deadline(), Some(Time(2000)));
    n.handle(Time(11), Input::HookStarted { hook: role, pid: 5 });
    // The primary stops the resource on its way out.
    n.handle(
        Time(12),
        Input::FromWorker {
            worker: w,
            msg: ToMain::RunHook(HookEvent::Stop),
        },
    );
    let a = n.handle(
        Time(12),
        Input::WorkerExited {
            worker: w,
            exit: WorkerExit::Code(0),
        },
    );
    assert!(!a.contains(&Action::Exit), "the role hook still runs");
    let a = n.handle(
        Time(13),
        Input::HookExited {
            hook: role,
            exit: HookExit::Exited(0),
        },
    );
    assert!(!a.contains(&Action::Exit), "the stop still runs");
    let stop = hook_args(&a)[0].0;
    let a = n.handle(
        Time(14),
        Input::HookExited {
            hook: stop,
            exit: HookExit::Exited(0),
        },
    );
    assert!(a.contains(&Action::Exit));
    assert!(
        n.handle(Time(15), Input::Tick).is_empty(),
        "nothing after exit"
    );
}

#[test]
fn a_removed_resource_is_retired_then_freed_once_its_worker_is_gone() {
    let (mut n, w, role) = started_primary();
    n.handle(
        Time(2),
        Input::HookExited {
            hook: role,
            exit: HookExit::Exited(0),
        },
    );
    let empty = parse_bytes(
        b"on a { control uds:///tmp/x }\nresource other {\n exec /bin/true\n on a { remote none }\n}\n",
        Syntax::Conf,
        &NodeNames::exact("a"),
    )
    .unwrap();
    let a = n.handle(
        Time(3),
        Input::Reload {
            config: &empty,
            resolve: &resolve,
        },
    );
    assert!(a.contains(&Action::Signal {
        worker: w,
        leave: Leave::StopResource
    }));
    assert!(n.find("r").is_none(), "retired");
    assert!(n.get(w.res).is_some(), "held until its worker is gone");
    n.handle(
        Time(4),
        Input::FromWorker {
            worker: w,
            msg: ToMain::RunHook(HookEvent::Stop),
        },
    );
    n.handle(
        Time(4),
        Input::WorkerExited {
            worker: w,
            exit: WorkerExit::Code(0),
        },
    );
    // Its stop and the role hook (primary -> init) still run, then it is
    // freed.
    assert_eq!(
        n.get(w.res).unwrap().hooks.pending_words(),
        ["stop", "role"]
    );
    for t in [5, 6] {
        let hook = n.get(w.res).unwrap().hooks.running().unwrap();
        n.handle(
            Time(t),
            Input::HookExited {
                hook,
                exit: HookExit::Exited(0),
            },
        );
    }
    assert!(n.get(w.res).is_none(), "freed");
    assert!(n.find("other").is_some());
}

fn status_poll(n: &mut NodeMachine, peer: &str) -> Vec<Action> {
    let poll = crate::proto::msg::ControlRequest {
        cmd: crate::proto::msg::ControlCmd::Status,
        role: None,
        resources: vec!["r".into()],
        auth: None,
        extended: false,
    }
    .to_nv();
    without_logs(n.handle(
        Time(1),
        Input::Listen(ListenInput {
            conn: ConnId(4),
            peer: peer.parse().unwrap(),
            local: "10.0.0.1:8458".parse().unwrap(),
            nv: &poll,
            session: None,
            wall: 0,
            token: [0; 16],
        }),
    ))
}

/// Status polls over TCP are checked like complaints: only a remote or a
/// friend of the resource gets an answer, and only an acknowledged
/// answer counts as contact (Q25).
#[test]
fn q25_a_status_poll_from_a_stranger_gets_no_answer() {
    let (mut n, w, _) = started_primary();
    let a = status_poll(&mut n, "10.9.9.9:5000");
    assert_eq!(
        a,
        [Action::Reply {
            conn: ConnId(4),
            reply: None
        }]
    );
    let a = status_poll(&mut n, "10.0.0.2:5000");
    let answered = matches!(&a[..], [Action::ReplyPoll { conn: ConnId(4), reply: Some(_), resources }] if resources == &[w.res]);
    assert!(answered, "{a:?}");
}

fn set_role(n: &mut NodeMachine, at: u64, conn: u64, role: Role) -> Vec<Action> {
    let request = crate::proto::msg::ControlRequest {
        cmd: crate::proto::msg::ControlCmd::SetRole,
        role: Some(role),
        resources: vec!["r".into()],
        auth: None,
        extended: false,
    }
    .to_nv();
    n.handle(
        Time(at),
        Input::Control {
            conn: ConnId(conn),
            request: &request,
        },
    )
}

fn role_reply(actions: &[Action], conn: u64) -> Option<crate::proto::msg::RoleReply> {
    actions.iter().find_map(|a| match a {
        Action::Reply {
            conn: c,
            reply: Some(nv),
        } if c.0 == conn => Some(crate::proto::msg::RoleReply::from_nv(nv)),
        _ => None,
    })
}

/// Demotes the started primary: its worker asks for `stop` on its way
/// out and is reaped; returns the `stop` hook.
fn demote(n: &mut NodeMachine, w: WorkerRef, role_hook: HookId) -> HookId {
    n.handle(
        Time(2),
        Input::HookExited {
            hook: role_hook,
            exit: HookExit::Exited(0),
        },
    );
    let a = set_role(n, 3, 1 << 32, Role::Secondary);
    assert!(a.contains(&Action::Hold {
        conn: ConnId(1 << 32),
        reply: None
    }));
    assert!(
        role_reply(&a, 1 << 32).is_none(),
        "answered before the stop"
    );
    let a = n.handle(
        Time(4),
        Input::FromWorker {
            worker: w,
            msg: ToMain::RunHook(HookEvent::Stop),
        },
    );
    let stop = hook_args(&a)[0].0;
    let a = n.handle(
        Time(5),
        Input::WorkerExited {
            worker: w,
            exit: WorkerExit::Code(0),
        },
    );
    assert!(
        role_reply(&a, 1 << 32).is_none(),
        "answered before the stop"
    );
    stop
}

#[test]
fn a_role_change_that_lets_a_primary_go_is_answered_once_it_stopped() {
    let (mut n, w, role) = started_primary();
    let stop = demote(&mut n, w, role);
    let a = n.handle(
        Time(9),
        Input::HookExited {
            hook: stop,
            exit: HookExit::Exited(0),
        },
    );
    let reply = role_reply(&a, 1 << 32).expect("answered once stopped");
    assert_eq!(
        reply.entries[0].outcome,
        crate::proto::msg::RoleOutcome::Previous("primary".into())
    );
}

#[test]
fn a_stop_that_fails_is_reported_to_whoever_changed_the_role() {
    let (mut n, w, role) = started_primary();
    let stop = demote(&mut n, w, role);
    let a = n.handle(
        Time(9),
        Input::HookExited {
            hook: stop,
            exit: HookExit::Exited(1),
        },
    );
    let reply = role_reply(&a, 1 << 32).expect("answered");
    assert_eq!(
        reply.entries[0].outcome,
        crate::proto::msg::RoleOutcome::StopFailed {
            reason: "stop exit code 1".into()
        }
    );
}

/// While its `stop` runs, a node accepts no new primary (which would
/// start at once) and counts no complaint (about itself).
#[test]
fn while_stopping_handshakes_are_refused_and_complaints_ignored() {
    let (mut n, w, role) = started_primary();
    let stop = demote(&mut n, w, role);
    let h1 = Handshake1 {
        resource: "r".into(),
        priority: Some(1),
        auth: None,
        heartbeat_ms: None,
    }
    .to_nv();
    let listen = |n: &mut NodeMachine, nv: &NvList| {
        without_logs(n.handle(
            Time(6),
            Input::Listen(ListenInput {
                conn: ConnId(7),
                peer: "10.0.0.2:5000".parse().unwrap(),
                local: "10.0.0.1:8458".parse().unwrap(),
                nv,
                session: None,
                wall: 0,
                token: [3; 16],
            }),
        ))
    };
    let a = listen(&mut n, &h1);
    let refusal = crate::proto::msg::Refusal::new(crate::proto::msg::errmsg::STOPPING).to_nv();
    assert_eq!(
        a,
        [Action::Reply {
            conn: ConnId(7),
            reply: Some(refusal)
        }]
    );
    let complaint = crate::proto::msg::Complaint {
        auth: None,
        resource: "r".into(),
    }
    .to_nv();
    listen(&mut n, &complaint);
    let res = n.active().next().unwrap();
    assert_eq!(n.get(res).unwrap().machine.complaints(Time(6)), 0);
    // Stopped: the next primary is welcome.
    n.handle(
        Time(9),
        Input::HookExited {
            hook: stop,
            exit: HookExit::Exited(0),
        },
    );
    let hooks = n.get(res).unwrap().hooks.running();
    if let Some(hook) = hooks {
        n.handle(
            Time(10),
            Input::HookExited {
                hook,
                exit: HookExit::Exited(0),
            },
        );
    }
    let a = listen(&mut n, &h1);
    assert!(
        matches!(
            &a[..],
            [Action::Hold {
                conn: ConnId(7),
                ..
            }]
        ),
        "{a:?}"
    );
}

/// A primary worker that gives up must leave the resource stopped: if
/// its own `stop` never reached the main process, the node runs it,
/// before the `role` hook of the fall-back.
#[test]
fn a_primary_that_gave_up_without_its_stop_gets_one() {
    let (mut n, w, role) = started_primary();
    n.handle(
        Time(2),
        Input::HookExited {
            hook: role,
            exit: HookExit::Exited(0),
        },
    );
    let a = n.handle(
        Time(3),
        Input::WorkerExited {
            worker: w,
            exit: WorkerExit::Code(crate::exit::NOHOST),
        },
    );
    assert_eq!(hook_args(&a)[0].1, ["stop", "r"], "{a:?}");
    let res = n.get(w.res).unwrap();
    assert_eq!(res.hooks.pending_words(), ["stop", "role"]);
}

#[test]
fn a_primary_that_stopped_itself_is_not_stopped_twice() {
    let (mut n, w, role) = started_primary();
    n.handle(
        Time(2),
        Input::HookExited {
            hook: role,
            exit: HookExit::Exited(0),
        },
    );
    n.handle(
        Time(3),
        Input::FromWorker {
            worker: w,
            msg: ToMain::RunHook(HookEvent::Stop),
        },
    );
    n.handle(
        Time(4),
        Input::WorkerExited {
            worker: w,
            exit: WorkerExit::Code(crate::exit::NOHOST),
        },
    );
    let res = n.get(w.res).unwrap();
    assert_eq!(res.hooks.pending_words(), ["stop", "role"]);
}
