//! The typed messages of the main ↔ worker channel. Internal to one node
//! (both ends are the same binary), so the encoding only has to be exact,
//! not compatible: an nv list with a `cmd` and one field per value.

use crate::proto::NvList;
use crate::proto::hmac::{Nonce, SessionState, Side};
use crate::proto::msg::HookEvent;
use crate::role::{ConnectFailure, HookResult, RemoteReport, Report, Time};
use crate::types::{Role, State};

/// Main process → worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToWorker {
    /// A hook the worker asked for ended.
    HookDone {
        event: HookEvent,
        result: HookResult,
    },
    /// Someone asked for this resource's status; `remote` when it came
    /// over the network.
    Polled { remote: bool },
    /// The connection asked for is up; its descriptors come with this
    /// message, and with an HMAC-SHA256 key the state of each one's session
    /// (the worker takes the key from its own configuration).
    Connected {
        remote: usize,
        sessions: Option<[SessionState; 2]>,
    },
    ConnectFailed {
        remote: usize,
        reason: ConnectFailure,
    },
    /// The answer to a watchdog's poll of cycle `cycle`.
    PollResult {
        remote: usize,
        cycle: u64,
        result: Result<(Role, State), String>,
    },
}

/// Worker → main process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToMain {
    RunHook(HookEvent),
    /// The worker's current status, sent whenever it changes, so that the
    /// main process answers `hastmonctl status` without asking. `at` is
    /// the worker's clock when it was sent, to read the report's times.
    Report {
        report: Report,
        at: Time,
    },
    /// Connect to this remote and hand the connection over.
    Connect {
        remote: usize,
    },
    /// Ask this remote for its status for the watchdog's cycle `cycle`
    /// (a new poll replaces one in flight).
    Poll {
        remote: usize,
        cycle: u64,
    },
    /// Send this remote a complaint.
    Complain {
        remote: usize,
    },
}

fn idx(nv: &NvList, name: &str) -> Option<usize> {
    nv.get_u32(name).map(|v| v as usize)
}

fn put_idx(nv: &mut NvList, name: &str, v: usize) {
    nv.add_u32(name, u32::try_from(v).unwrap_or(u32::MAX));
}

fn put_session(nv: &mut NvList, j: usize, s: &SessionState) {
    let side = match s.side {
        Side::Client => 0,
        Side::Server => 1,
    };
    nv.add_u8(format!("side{j}"), side)
        .add_u8_array(format!("nc{j}"), &s.client_nonce)
        .add_u8_array(format!("ns{j}"), &s.server_nonce)
        .add_u64(format!("sent{j}"), s.sent)
        .add_u64(format!("received{j}"), s.received);
}

fn session(nv: &NvList, j: usize) -> Option<SessionState> {
    let nonce = |name: String| Nonce::try_from(nv.get_u8_array(&name)?).ok();
    Some(SessionState {
        side: match nv.get_u8(&format!("side{j}"))? {
            0 => Side::Client,
            1 => Side::Server,
            _ => return None,
        },
        client_nonce: nonce(format!("nc{j}"))?,
        server_nonce: nonce(format!("ns{j}"))?,
        sent: nv.get_u64(&format!("sent{j}"))?,
        received: nv.get_u64(&format!("received{j}"))?,
    })
}

impl ToWorker {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        match self {
            ToWorker::HookDone { event, result } => {
                let (how, code) = match *result {
                    HookResult::Exited(c) => (0, c),
                    HookResult::Signaled(s) => (1, s),
                    HookResult::TimedOut => (2, 0),
                    HookResult::NotRun => (3, 0),
                };
                nv.add_u8("cmd", 1)
                    .add_u8("event", event.code())
                    .add_u8("how", how)
                    .add_i32("code", code);
            }
            ToWorker::Polled { remote } => {
                nv.add_u8("cmd", 2).add_u8("remote", u8::from(*remote));
            }
            ToWorker::Connected { remote, sessions } => {
                nv.add_u8("cmd", 3);
                put_idx(&mut nv, "remote", *remote);
                if let Some(sessions) = sessions {
                    nv.add_u8("sessions", 2);
                    for (j, s) in sessions.iter().enumerate() {
                        put_session(&mut nv, j, s);
                    }
                }
            }
            ToWorker::ConnectFailed { remote, reason } => {
                nv.add_u8("cmd", 4);
                put_idx(&mut nv, "remote", *remote);
                match reason {
                    ConnectFailure::Unreachable(t) => nv.add_u8("kind", 0).add_string("text", t),
                    ConnectFailure::Refused(t) => nv.add_u8("kind", 1).add_string("text", t),
                    ConnectFailure::StrongerPrimary { errmsg, priority } => nv
                        .add_u8("kind", 2)
                        .add_string("text", errmsg)
                        .add_i32("priority", *priority),
                };
            }
            ToWorker::PollResult {
                remote,
                cycle,
                result,
            } => {
                nv.add_u8("cmd", 5).add_u64("cycle", *cycle);
                put_idx(&mut nv, "remote", *remote);
                match result {
                    Ok((role, state)) => {
                        nv.add_u8("role", role.code()).add_u8("state", state.code());
                    }
                    Err(text) => {
                        nv.add_string("error", text);
                    }
                }
            }
        }
        nv
    }

    /// `None` for anything that is not a well-formed message.
    pub fn from_nv(nv: &NvList) -> Option<ToWorker> {
        Some(match nv.get_u8("cmd")? {
            1 => ToWorker::HookDone {
                event: HookEvent::from_code(nv.get_u8("event")?)?,
                result: match (nv.get_u8("how")?, nv.get_i32("code")?) {
                    (0, c) => HookResult::Exited(c),
                    (1, s) => HookResult::Signaled(s),
                    (2, _) => HookResult::TimedOut,
                    (3, _) => HookResult::NotRun,
                    _ => return None,
                },
            },
            2 => ToWorker::Polled {
                remote: nv.get_u8("remote")? != 0,
            },
            3 => ToWorker::Connected {
                remote: idx(nv, "remote")?,
                sessions: match nv.get_u8("sessions") {
                    None => None,
                    Some(_) => Some([session(nv, 0)?, session(nv, 1)?]),
                },
            },
            4 => {
                let text = nv.get_str("text")?.to_string();
                ToWorker::ConnectFailed {
                    remote: idx(nv, "remote")?,
                    reason: match nv.get_u8("kind")? {
                        0 => ConnectFailure::Unreachable(text),
                        1 => ConnectFailure::Refused(text),
                        2 => ConnectFailure::StrongerPrimary {
                            errmsg: text,
                            priority: nv.get_i32("priority")?,
                        },
                        _ => return None,
                    },
                }
            }
            5 => ToWorker::PollResult {
                remote: idx(nv, "remote")?,
                cycle: nv.get_u64("cycle")?,
                result: match nv.get_str("error") {
                    Some(text) => Err(text.to_string()),
                    None => Ok((
                        Role::from_code(nv.get_u8("role")?),
                        State::from_code(nv.get_u8("state")?),
                    )),
                },
            },
            _ => return None,
        })
    }
}

impl ToMain {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        match self {
            ToMain::RunHook(event) => {
                nv.add_u8("cmd", 1).add_u8("event", event.code());
            }
            ToMain::Report { report: r, at } => {
                nv.add_u8("cmd", 2)
                    .add_u8("state", r.state.code())
                    .add_u32("attempts", r.attempts)
                    .add_u64("at", at.0);
                put_idx(&mut nv, "remotes", r.remotes.len());
                for (j, remote) in r.remotes.iter().enumerate() {
                    match *remote {
                        RemoteReport::Link { connected } => {
                            nv.add_u8(format!("connected{j}"), u8::from(connected));
                        }
                        RemoteReport::Seen { role, state } => {
                            nv.add_u8(format!("role{j}"), role.code())
                                .add_u8(format!("state{j}"), state.code());
                        }
                    }
                    if let Some(Some(t)) = r.seen.get(j) {
                        nv.add_u64(format!("seen{j}"), t.0);
                    }
                }
            }
            ToMain::Connect { remote } => {
                nv.add_u8("cmd", 3);
                put_idx(&mut nv, "remote", *remote);
            }
            ToMain::Poll { remote, cycle } => {
                nv.add_u8("cmd", 4).add_u64("cycle", *cycle);
                put_idx(&mut nv, "remote", *remote);
            }
            ToMain::Complain { remote } => {
                nv.add_u8("cmd", 5);
                put_idx(&mut nv, "remote", *remote);
            }
        }
        nv
    }

    pub fn from_nv(nv: &NvList) -> Option<ToMain> {
        Some(match nv.get_u8("cmd")? {
            1 => ToMain::RunHook(HookEvent::from_code(nv.get_u8("event")?)?),
            2 => {
                let n = idx(nv, "remotes")?;
                if n > nv.len() {
                    return None;
                }
                let remotes = (0..n)
                    .map(|j| {
                        if let Some(c) = nv.get_u8(&format!("connected{j}")) {
                            return Some(RemoteReport::Link { connected: c != 0 });
                        }
                        Some(RemoteReport::Seen {
                            role: Role::from_code(nv.get_u8(&format!("role{j}"))?),
                            state: State::from_code(nv.get_u8(&format!("state{j}"))?),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                let seen = (0..n)
                    .map(|j| nv.get_u64(&format!("seen{j}")).map(Time))
                    .collect();
                ToMain::Report {
                    report: Report {
                        state: State::from_code(nv.get_u8("state")?),
                        attempts: nv.get_u32("attempts")?,
                        remotes,
                        seen,
                    },
                    at: Time(nv.get_u64("at")?),
                }
            }
            3 => ToMain::Connect {
                remote: idx(nv, "remote")?,
            },
            4 => ToMain::Poll {
                remote: idx(nv, "remote")?,
                cycle: nv.get_u64("cycle")?,
            },
            5 => ToMain::Complain {
                remote: idx(nv, "remote")?,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let to_worker = [
            ToWorker::HookDone {
                event: HookEvent::Status,
                result: HookResult::Exited(1),
            },
            ToWorker::HookDone {
                event: HookEvent::Start,
                result: HookResult::Signaled(9),
            },
            ToWorker::HookDone {
                event: HookEvent::Stop,
                result: HookResult::TimedOut,
            },
            ToWorker::HookDone {
                event: HookEvent::Connect,
                result: HookResult::NotRun,
            },
            ToWorker::Polled { remote: true },
            ToWorker::Connected {
                remote: 2,
                sessions: None,
            },
            ToWorker::Connected {
                remote: 1,
                sessions: Some([
                    SessionState {
                        side: Side::Client,
                        client_nonce: [1; 16],
                        server_nonce: [2; 16],
                        sent: 1,
                        received: 3,
                    },
                    SessionState {
                        side: Side::Server,
                        client_nonce: [3; 16],
                        server_nonce: [4; 16],
                        sent: u64::MAX,
                        received: 0,
                    },
                ]),
            },
            ToWorker::PollResult {
                remote: 1,
                cycle: 7,
                result: Ok((Role::Primary, State::Run)),
            },
            ToWorker::PollResult {
                remote: 0,
                cycle: u64::MAX,
                result: Err("Connection refused".into()),
            },
            ToWorker::ConnectFailed {
                remote: 0,
                reason: ConnectFailure::Unreachable("Connection refused".into()),
            },
            ToWorker::ConnectFailed {
                remote: 1,
                reason: ConnectFailure::StrongerPrimary {
                    errmsg: "x".into(),
                    priority: 0,
                },
            },
        ];
        for m in to_worker {
            assert_eq!(ToWorker::from_nv(&m.to_nv()), Some(m));
        }
        let to_main = [
            ToMain::RunHook(HookEvent::Complaint),
            ToMain::Connect { remote: 3 },
            ToMain::Poll {
                remote: 1,
                cycle: 3,
            },
            ToMain::Complain { remote: 2 },
            ToMain::Report {
                report: Report {
                    state: State::Run,
                    attempts: 4,
                    remotes: vec![
                        RemoteReport::Link { connected: true },
                        RemoteReport::Seen {
                            role: Role::Secondary,
                            state: State::Stopped,
                        },
                    ],
                    seen: vec![Some(Time(1234)), None],
                },
                at: Time(5678),
            },
        ];
        for m in to_main {
            assert_eq!(ToMain::from_nv(&m.to_nv()), Some(m));
        }
    }

    #[test]
    fn report_times_move_to_the_main_clock() {
        let report = Report {
            state: State::Run,
            attempts: 0,
            remotes: vec![RemoteReport::Link { connected: true }; 2],
            seen: vec![Some(Time(1000)), None],
        };
        // Sent at worker time 1500, received at main time 9000.
        let moved = report.rebase(Time(1500), Time(9000));
        assert_eq!(moved.seen, [Some(Time(8500)), None]);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let mut nv = NvList::new();
        assert_eq!(ToMain::from_nv(&nv), None);
        nv.add_u8("cmd", 1).add_u8("event", 99);
        assert_eq!(ToMain::from_nv(&nv), None);
        let mut nv = NvList::new();
        nv.add_u8("cmd", 2)
            .add_u8("state", 3)
            .add_u32("attempts", 0)
            .add_u32("remotes", 1_000_000);
        assert_eq!(ToMain::from_nv(&nv), None);
        let mut nv = NvList::new();
        nv.add_u8("cmd", 1)
            .add_u8("event", 5)
            .add_u8("how", 7)
            .add_i32("code", 0);
        assert_eq!(ToWorker::from_nv(&nv), None);
        // A session announced but incomplete is not taken for none.
        let mut nv = NvList::new();
        nv.add_u8("cmd", 3)
            .add_u32("remote", 0)
            .add_u8("sessions", 2)
            .add_u8("side0", 0);
        assert_eq!(ToWorker::from_nv(&nv), None);
    }
}
