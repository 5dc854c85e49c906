use std::time::Duration;

use super::*;

fn machine(role_on_start: Role) -> ResourceMachine {
    ResourceMachine::new(
        ResourceConfig {
            role_on_start,
            priority: 2,
            complaint_count: 2,
            complaint_interval: Duration::from_secs(60),
        },
        Time(0),
    )
}

fn without_logs(actions: Vec<ResourceAction>) -> Vec<ResourceAction> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, ResourceAction::Log { .. }))
        .collect()
}

fn run(m: &mut ResourceMachine, now: u64, input: ResourceInput) -> Vec<ResourceAction> {
    without_logs(m.handle(Time(now), input))
}

fn hs1(peer: &str, priority: Option<i32>) -> ResourceInput {
    ResourceInput::Handshake1 {
        peer: peer.into(),
        own: "10.0.0.2".into(),
        priority,
    }
}

fn hs2(peer: &str) -> ResourceInput {
    ResourceInput::Handshake2 { peer: peer.into() }
}

fn spawn(id: u64, role: Role) -> ResourceAction {
    ResourceAction::SpawnWorker {
        id: WorkerId(id),
        role,
        urgent: false,
    }
}

fn promote(id: u64) -> ResourceAction {
    ResourceAction::SpawnWorker {
        id: WorkerId(id),
        role: Role::Primary,
        urgent: true,
    }
}

fn auto_hook(old: Role, new: Role) -> ResourceAction {
    ResourceAction::RunRoleHook {
        old,
        new,
        automatic: true,
    }
}

/// A secondary serving the primary at 10.0.0.1 (priority 1) with worker 1.
fn serving() -> ResourceMachine {
    let mut m = machine(Role::Secondary);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        run(&mut m, 1, hs1("10.0.0.1", Some(1))),
        [ResourceAction::AcceptHandshake]
    );
    assert_eq!(
        run(&mut m, 2, hs2("10.0.0.1")),
        [ResourceAction::AcceptHandshake, spawn(1, Role::Secondary)]
    );
    m
}

#[test]
fn start_applies_role_on_start_with_a_worker_and_a_role_hook() {
    let mut m = machine(Role::Primary);
    assert_eq!(
        run(&mut m, 0, ResourceInput::Start),
        [
            spawn(1, Role::Primary),
            ResourceAction::RunRoleHook {
                old: Role::Init,
                new: Role::Primary,
                automatic: false
            }
        ]
    );
    let mut m = machine(Role::Secondary);
    assert_eq!(
        run(&mut m, 0, ResourceInput::Start),
        [ResourceAction::RunRoleHook {
            old: Role::Init,
            new: Role::Secondary,
            automatic: false
        }]
    );
    assert_eq!(m.worker(), None);
    let mut m = machine(Role::Init);
    assert!(run(&mut m, 0, ResourceInput::Start).is_empty());
}

#[test]
fn operator_change_stops_the_worker_and_records_the_previous_role() {
    let mut m = machine(Role::Watchdog);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        run(&mut m, 5, ResourceInput::SetRole(Role::Primary)),
        [
            ResourceAction::StopWorker {
                id: WorkerId(1),
                stop_resource: true
            },
            spawn(2, Role::Primary),
            ResourceAction::RunRoleHook {
                old: Role::Watchdog,
                new: Role::Primary,
                automatic: false
            }
        ]
    );
    assert_eq!(m.previous_role(), Role::Watchdog);
    assert!(run(&mut m, 6, ResourceInput::SetRole(Role::Primary)).is_empty());
    // The stopped worker's exit is not taken for the new one's.
    assert!(
        run(
            &mut m,
            7,
            ResourceInput::WorkerExited {
                id: WorkerId(1),
                exit: WorkerExit::Code(0)
            }
        )
        .is_empty()
    );
    // The primary gives up: back to watchdog, with its worker (Q19).
    assert_eq!(
        run(
            &mut m,
            8,
            ResourceInput::WorkerExited {
                id: WorkerId(2),
                exit: WorkerExit::Code(exit::UNAVAILABLE)
            }
        ),
        [
            spawn(3, Role::Watchdog),
            auto_hook(Role::Primary, Role::Watchdog)
        ]
    );
    assert_eq!(m.role(), Role::Watchdog);
}

/// Whatever role it had before, a primary that stopped for network
/// silence is the cluster's standby once the network heals.
#[test]
fn a_primary_silenced_by_the_network_becomes_secondary() {
    let mut m = machine(Role::Primary);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        run(
            &mut m,
            8,
            ResourceInput::WorkerExited {
                id: WorkerId(1),
                exit: WorkerExit::Code(exit::NOHOST)
            }
        ),
        [auto_hook(Role::Primary, Role::Secondary)]
    );
    assert_eq!(m.role(), Role::Secondary);
}

#[test]
fn a_crashed_or_tempfailed_worker_is_restarted_after_a_second() {
    let mut m = machine(Role::Primary);
    run(&mut m, 0, ResourceInput::Start);
    let exited = |id, exit| ResourceInput::WorkerExited {
        id: WorkerId(id),
        exit,
    };
    assert!(run(&mut m, 100, exited(1, WorkerExit::Signal(6))).is_empty());
    assert_eq!(m.deadline(), Some(Time(1_100)));
    assert!(run(&mut m, 1_000, ResourceInput::Tick).is_empty());
    assert_eq!(
        run(&mut m, 1_100, ResourceInput::Tick),
        [spawn(2, Role::Primary)]
    );
    assert_eq!(m.deadline(), None);
    assert!(run(&mut m, 2_000, exited(2, WorkerExit::Code(exit::TEMPFAIL))).is_empty());
    assert_eq!(
        run(&mut m, 3_000, ResourceInput::Tick),
        [spawn(3, Role::Primary)]
    );
    // Any other code: back to the previous role, init, without a worker.
    assert_eq!(
        run(&mut m, 4_000, exited(3, WorkerExit::Code(exit::NOPERM))),
        [auto_hook(Role::Primary, Role::Init)]
    );
    assert_eq!(m.worker(), None);
}

#[test]
fn complaints_promote_a_secondary_without_a_primary_after_more_than_the_count() {
    let mut m = machine(Role::Secondary);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        run(&mut m, 1_000, ResourceInput::Complaint),
        [ResourceAction::RunComplainHook]
    );
    // 61 s later the first one has expired (strictly older than ci).
    run(&mut m, 2_000, ResourceInput::Complaint);
    assert_eq!(m.complaints(Time(61_000)), 2);
    assert_eq!(m.complaints(Time(61_001)), 1);
    assert_eq!(
        run(&mut m, 61_001, ResourceInput::Complaint),
        [ResourceAction::RunComplainHook]
    );
    assert_eq!(
        run(&mut m, 62_000, ResourceInput::Complaint),
        [
            ResourceAction::RunComplainHook,
            promote(1),
            auto_hook(Role::Secondary, Role::Primary)
        ]
    );
    assert_eq!(m.previous_role(), Role::Secondary);
    assert_eq!(m.complaints(Time(62_000)), 0);
    // A primary is not promoted again.
    for t in 0..4 {
        assert_eq!(
            run(&mut m, 63_000 + t, ResourceInput::Complaint),
            [ResourceAction::RunComplainHook]
        );
    }
}

#[test]
fn q11_complaints_while_a_primary_is_connected_do_not_count() {
    let mut m = serving();
    for t in 0..5 {
        assert_eq!(
            run(&mut m, 10 + t, ResourceInput::Complaint),
            [ResourceAction::RunComplainHook]
        );
    }
    assert_eq!(m.complaints(Time(20)), 0);
    run(
        &mut m,
        30,
        ResourceInput::WorkerExited {
            id: WorkerId(1),
            exit: WorkerExit::Code(exit::TEMPFAIL),
        },
    );
    assert_eq!(m.serving(), None);
    run(&mut m, 40, ResourceInput::Complaint);
    run(&mut m, 50, ResourceInput::Complaint);
    assert_eq!(m.role(), Role::Secondary);
    assert_eq!(
        run(&mut m, 60, ResourceInput::Complaint),
        [
            ResourceAction::RunComplainHook,
            promote(2),
            auto_hook(Role::Secondary, Role::Primary)
        ]
    );
}

#[test]
fn q11_a_completed_handshake_clears_complaints() {
    let mut m = machine(Role::Secondary);
    run(&mut m, 0, ResourceInput::Start);
    run(&mut m, 1, ResourceInput::Complaint);
    run(&mut m, 2, ResourceInput::Complaint);
    run(&mut m, 3, hs1("10.0.0.1", Some(1)));
    assert_eq!(m.complaints(Time(3)), 2);
    run(&mut m, 4, hs2("10.0.0.1"));
    assert_eq!(m.complaints(Time(4)), 0);
}

#[test]
fn q15_handshakes_without_priority_or_to_a_non_secondary_are_refused() {
    let mut m = machine(Role::Secondary);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        run(&mut m, 1, hs1("10.0.0.1", None)),
        [ResourceAction::RefuseHandshake {
            errmsg: "Priority is missing.".into(),
            priority: None
        }]
    );
    // Stage 2 without stage 1 (Q29).
    assert_eq!(
        run(&mut m, 2, hs2("10.0.0.1")),
        [ResourceAction::RefuseHandshake {
            errmsg: "Token doesn't match.".into(),
            priority: None
        }]
    );
    let mut m = machine(Role::Watchdog);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        run(&mut m, 1, hs1("10.0.0.1", Some(1))),
        [ResourceAction::RefuseHandshake {
            errmsg: "Remote node acts as watchdog for the resource and not as secondary.".into(),
            priority: None
        }]
    );
}

#[test]
fn a_primary_refuses_a_weaker_primary_and_yields_to_a_stronger_one() {
    let mut m = machine(Role::Primary);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        run(&mut m, 1, hs1("10.0.0.3", Some(3))),
        [ResourceAction::RefuseHandshake {
            errmsg: "Remote node acts as primary with higher priority (prioty number 2).".into(),
            priority: Some(2)
        }]
    );
    // Previous role init: yield, then refuse as init.
    assert_eq!(
        run(&mut m, 2, hs1("10.0.0.1", Some(1))),
        [
            ResourceAction::StopWorker {
                id: WorkerId(1),
                stop_resource: true
            },
            auto_hook(Role::Primary, Role::Init),
            ResourceAction::RefuseHandshake {
                errmsg: "Remote node acts as init for the resource and not as secondary.".into(),
                priority: None
            }
        ]
    );
}

#[test]
fn a_promoted_primary_yields_and_serves_the_stronger_one() {
    let mut m = machine(Role::Secondary);
    run(&mut m, 0, ResourceInput::Start);
    for t in 1..4 {
        run(&mut m, t, ResourceInput::Complaint);
    }
    assert_eq!(m.role(), Role::Primary);
    assert_eq!(
        run(&mut m, 10, hs1("10.0.0.1", Some(1))),
        [
            ResourceAction::StopWorker {
                id: WorkerId(1),
                stop_resource: true
            },
            auto_hook(Role::Primary, Role::Secondary),
            ResourceAction::AcceptHandshake
        ]
    );
    assert_eq!(
        run(&mut m, 11, hs2("10.0.0.1")),
        [ResourceAction::AcceptHandshake, spawn(2, Role::Secondary)]
    );
    assert_eq!(m.serving(), Some("10.0.0.1"));
}

#[test]
fn q14_equal_priorities_are_broken_by_identity_the_same_way_on_both_sides() {
    let decide = |own: &str, peer: &str| {
        let mut m = machine(Role::Primary);
        run(&mut m, 0, ResourceInput::Start);
        run(
            &mut m,
            1,
            ResourceInput::Handshake1 {
                peer: peer.into(),
                own: own.into(),
                priority: Some(2),
            },
        );
        m.role()
    };
    // Exactly one of the two stays primary.
    assert_eq!(decide("10.0.0.1", "10.0.0.2"), Role::Primary);
    assert_eq!(decide("10.0.0.2", "10.0.0.1"), Role::Init);
}

#[test]
fn q16_a_serving_secondary_refuses_a_weaker_newcomer_and_follows_a_stronger_one() {
    let mut m = serving();
    let refusal = ResourceAction::RefuseHandshake {
        errmsg: "Remote node serves a primary with higher priority (priority number 1).".into(),
        priority: Some(1),
    };
    assert_eq!(
        run(&mut m, 3, hs1("10.0.0.3", Some(1))),
        std::slice::from_ref(&refusal)
    );
    assert_eq!(run(&mut m, 4, hs1("10.0.0.3", Some(5))), [refusal]);
    // The current primary reconnecting is accepted and replaces the worker.
    run(&mut m, 5, hs1("10.0.0.1", Some(1)));
    assert_eq!(
        run(&mut m, 6, hs2("10.0.0.1")),
        [
            ResourceAction::StopWorker {
                id: WorkerId(1),
                stop_resource: false
            },
            ResourceAction::AcceptHandshake,
            spawn(2, Role::Secondary)
        ]
    );
    // A stronger one takes over.
    assert_eq!(
        run(&mut m, 7, hs1("10.0.0.0", Some(1))),
        [ResourceAction::AcceptHandshake]
    );
    run(&mut m, 8, hs2("10.0.0.0"));
    assert_eq!(m.serving(), Some("10.0.0.0"));
}

#[test]
fn a_reload_replaces_a_primarys_worker_without_hooks_or_a_role_change() {
    let mut m = machine(Role::Primary);
    run(&mut m, 0, ResourceInput::Start);
    let cfg = ResourceConfig {
        role_on_start: Role::Primary,
        priority: 9,
        complaint_count: 5,
        complaint_interval: Duration::from_secs(30),
    };
    assert_eq!(
        run(
            &mut m,
            10,
            ResourceInput::Reconfigure {
                cfg: cfg.clone(),
                restart_worker: true
            }
        ),
        [
            ResourceAction::StopWorker {
                id: WorkerId(1),
                stop_resource: false
            },
            spawn(2, Role::Primary)
        ]
    );
    assert_eq!(m.role(), Role::Primary);
    // Without a worker change, only the settings move.
    assert!(
        run(
            &mut m,
            20,
            ResourceInput::Reconfigure {
                cfg,
                restart_worker: false
            }
        )
        .is_empty()
    );
    assert_eq!(m.worker(), Some(WorkerId(2)));
}

#[test]
fn the_last_role_change_is_remembered_with_its_time_and_cause() {
    let mut m = machine(Role::Init);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(m.last_change(), None, "init at start is no change");
    run(&mut m, 5, ResourceInput::SetRole(Role::Secondary));
    let change = |at, from, to, cause: &str| RoleChange {
        at: Time(at),
        from,
        to,
        cause: cause.into(),
    };
    assert_eq!(
        m.last_change(),
        Some(&change(5, Role::Init, Role::Secondary, CAUSE_REQUEST))
    );
    run(&mut m, 6, ResourceInput::SetRole(Role::Secondary));
    assert_eq!(m.last_change().unwrap().at, Time(5), "no change, no record");
    for t in [10, 20] {
        run(&mut m, t, ResourceInput::Complaint);
    }
    let ages: Vec<Time> = m.complaint_times(Time(30)).collect();
    assert_eq!(ages, [Time(10), Time(20)]);
    assert_eq!(m.complaint_times(Time(60_015)).count(), 1);
    run(&mut m, 40, ResourceInput::Complaint);
    let last = m.last_change().unwrap();
    assert_eq!(
        (last.at, last.from, last.to),
        (Time(40), Role::Secondary, Role::Primary)
    );
    assert!(
        last.cause
            .starts_with("Complaint limit reached (3 within 60 s)"),
        "{last:?}"
    );

    let mut m = machine(Role::Watchdog);
    run(&mut m, 0, ResourceInput::Start);
    assert_eq!(
        m.last_change(),
        Some(&change(0, Role::Init, Role::Watchdog, CAUSE_START))
    );
}
