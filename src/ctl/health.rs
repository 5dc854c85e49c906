//! Whether a resource is as its role wants it, and the exit status of
//! `hastmonctl status` that follows (hastmonctl(8), EXIT STATUS).

use crate::proto::msg::{ResourceStatus, StatusOutcome, StatusReply};
use crate::types::{Role, State};

/// Some named resource is known but not healthy. 0.3.4 exited 0 then; 1
/// stays "unknown resource" (`EHAST_NOENTRY`), the only per-resource
/// error a daemon sends.
pub const UNHEALTHY: i32 = 2;

/// Healthy: init always; a primary whose worker runs the resource; a
/// secondary whose worker serves a connected primary and keeps the
/// resource stopped (without a primary the cluster cannot fail over, so a
/// waiting secondary is not healthy); a watchdog whose worker sees a
/// primary or has nobody to complain to (state run, see status text).
pub fn healthy(s: &ResourceStatus) -> bool {
    let worker = s.workerpid != 0;
    let state = s.worker.map(|w| w.state);
    match s.role {
        Role::Init => true,
        Role::Primary | Role::Watchdog => worker && state == Some(State::Run),
        Role::Secondary => {
            worker
                && state == Some(State::Stopped)
                && s.remotes
                    .iter()
                    .any(|r| r.state.as_deref() == Some("connected"))
        }
        Role::Undef => false,
    }
}

/// The first per-resource error (1 for an unknown resource), else
/// [`UNHEALTHY`] if any resource is not healthy, else 0.
pub fn exit_code(reply: &StatusReply) -> i32 {
    let mut unhealthy = false;
    for e in &reply.entries {
        match &e.outcome {
            StatusOutcome::Error(n) => return i32::from(*n),
            StatusOutcome::Status(s) => unhealthy |= !healthy(s),
        }
    }
    if unhealthy { UNHEALTHY } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{RemoteStatus, StatusEntry, WorkerStatus};

    fn status(role: Role, worker: Option<State>, remote: Option<&str>) -> ResourceStatus {
        ResourceStatus {
            exec: "/x".into(),
            attempts_max: 5,
            remotes: vec![RemoteStatus {
                addr: "tcp4://10.0.0.2".into(),
                state: remote.map(str::to_string),
                role: None,
            }],
            role,
            workerpid: if worker.is_some() { 42 } else { 0 },
            complaints: 0,
            complaints_critical: 3,
            complaints_interval: 60,
            heartbeat: 10,
            worker: worker.map(|state| WorkerStatus { state, attempts: 0 }),
        }
    }

    #[test]
    fn each_role_has_its_healthy_and_unhealthy_cases() {
        use State::*;
        let cases = [
            (Role::Init, None, None, true),
            (Role::Primary, Some(Run), Some("disconnected"), true),
            (Role::Primary, Some(Starting), Some("connected"), false),
            (Role::Primary, None, None, false),
            (Role::Secondary, Some(Stopped), Some("connected"), true),
            (Role::Secondary, Some(Stopping), Some("connected"), false),
            (Role::Secondary, None, None, false),
            (Role::Watchdog, Some(Run), None, true),
            (Role::Watchdog, Some(Unknown), None, false),
            (Role::Watchdog, None, None, false),
            (Role::Undef, None, None, false),
        ];
        for (role, worker, remote, want) in cases {
            assert_eq!(
                healthy(&status(role, worker, remote)),
                want,
                "{role} {worker:?} {remote:?}"
            );
        }
    }

    #[test]
    fn an_unknown_resource_outranks_an_unhealthy_one() {
        let entry = |outcome| StatusEntry {
            resource: "r".into(),
            outcome,
        };
        let healthy = entry(StatusOutcome::Status(status(Role::Init, None, None)));
        let sick = entry(StatusOutcome::Status(status(Role::Primary, None, None)));
        let unknown = entry(StatusOutcome::Error(1));
        let reply = |entries| StatusReply {
            entries,
            error: None,
        };
        assert_eq!(exit_code(&reply(vec![])), 0);
        assert_eq!(exit_code(&reply(vec![healthy.clone()])), 0);
        assert_eq!(
            exit_code(&reply(vec![healthy.clone(), sick.clone()])),
            UNHEALTHY
        );
        assert_eq!(exit_code(&reply(vec![sick, unknown, healthy])), 1);
    }
}
