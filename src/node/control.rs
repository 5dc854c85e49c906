//! The answers to control requests (`hastmonctl role` and `status`).

use super::{Action, ConnId, NodeMachine, ResId, log};
use crate::proto::NvList;
use crate::proto::msg::{
    ControlCmd, ControlRequest, HookOutcome, HookRun, LastChange, RemoteStatus, ResourceStatus,
    RoleEntry, RoleOutcome, RoleReply, StatusEntry, StatusExtra, StatusOutcome, StatusReply,
    WorkerStatus, ehast, error_reply,
};
use crate::role::{HookResult, Level, Time};
use crate::types::Role;

impl NodeMachine {
    /// The named resources; `all` first means every one. An unknown name
    /// is `None` in its place.
    fn lookup(&self, names: &[String]) -> Vec<(String, Option<ResId>)> {
        if names.first().is_some_and(|n| n == "all") {
            return self
                .active()
                .map(|id| (self.res[&id].cfg.name.clone(), Some(id)))
                .collect();
        }
        names.iter().map(|n| (n.clone(), self.find(n))).collect()
    }

    /// Answers the control request that arrived on `conn`: now, or, for a
    /// role change that lets a primary go, once its `stop` has run.
    pub(super) fn control_request(
        &mut self,
        conn: ConnId,
        request: &NvList,
        out: &mut Vec<Action>,
    ) -> Option<NvList> {
        match self.control(request, out) {
            Answer::Now(reply) => reply,
            Answer::AfterStop(entries) => {
                out.push(Action::Hold { conn, reply: None });
                self.role_replies.push(RoleWait {
                    conn,
                    since: self.now,
                    entries,
                });
                None
            }
        }
    }

    /// Answers the role changes whose primaries are done stopping: the
    /// role it had, or that the resource was not stopped.
    pub(super) fn answer_role_changes(&mut self, out: &mut Vec<Action>) {
        let mut waits = std::mem::take(&mut self.role_replies);
        waits.retain(|w| {
            let busy = w
                .entries
                .iter()
                .any(|(_, id, _)| id.is_some_and(|id| self.stopping(id)));
            if busy {
                return true;
            }
            let entries = w
                .entries
                .iter()
                .map(|(name, id, outcome)| RoleEntry {
                    resource: name.clone(),
                    outcome: id
                        .and_then(|id| self.stop_failure(id, w.since))
                        .unwrap_or_else(|| outcome.clone()),
                })
                .collect();
            let reply = RoleReply {
                entries,
                error: None,
            };
            out.push(Action::Reply {
                conn: w.conn,
                reply: Some(reply.to_nv()),
            });
            false
        });
        self.role_replies = waits;
    }

    /// How the last `stop` since `since` failed, if it did.
    fn stop_failure(&self, id: ResId, since: Time) -> Option<RoleOutcome> {
        let (_, run) = self
            .res
            .get(&id)?
            .hooks
            .last_runs()
            .find(|(word, _)| *word == "stop")?;
        (run.ended >= since && !run.result.succeeded()).then(|| RoleOutcome::StopFailed {
            reason: format!("stop {}", run.result),
        })
    }

    /// Answers one control request; `Now(None)` means close without a
    /// reply, as 0.3.4 does for a request without `cmd`.
    fn control(&mut self, request: &NvList, out: &mut Vec<Action>) -> Answer {
        let Ok(req) = ControlRequest::from_nv(request) else {
            log(out, Level::Notice, "Control header is missing 'cmd' field.");
            return Answer::Now(None);
        };
        if req.resources.is_empty() {
            return Answer::Now(Some(error_reply(ehast::INVALID)));
        }
        let targets = self.lookup(&req.resources);
        match req.cmd {
            ControlCmd::SetRole => {
                let role = match req.role {
                    Some(r @ (Role::Init | Role::Primary | Role::Secondary | Role::Watchdog)) => r,
                    _ => return Answer::Now(Some(error_reply(ehast::INVALID))),
                };
                let mut waits = false;
                let mut kept = Vec::new();
                for (name, id) in targets {
                    let outcome = match id {
                        None => RoleOutcome::Error(ehast::NOENTRY),
                        Some(id) => {
                            let old = self.res[&id].machine.role();
                            self.resource_input(
                                id,
                                super::resource::ResourceInput::SetRole(role),
                                out,
                            );
                            // A primary let go: the answer waits for its
                            // `stop`, so that what the operator does next
                            // never meets the resource still running here.
                            waits |= old == Role::Primary && self.stopping(id);
                            RoleOutcome::Previous(old.to_string())
                        }
                    };
                    kept.push((name, id, outcome));
                }
                if waits {
                    return Answer::AfterStop(kept);
                }
                let entries = kept
                    .into_iter()
                    .map(|(resource, _, outcome)| RoleEntry { resource, outcome })
                    .collect();
                Answer::Now(Some(
                    RoleReply {
                        entries,
                        error: None,
                    }
                    .to_nv(),
                ))
            }
            ControlCmd::Status => {
                let entries = targets
                    .iter()
                    .map(|(name, id)| StatusEntry {
                        outcome: match id {
                            None => StatusOutcome::Error(ehast::NOENTRY),
                            Some(id) => StatusOutcome::Status(self.status(*id)),
                        },
                        resource: name.clone(),
                    })
                    .collect();
                let mut reply = StatusReply {
                    entries,
                    error: None,
                }
                .to_nv();
                // After everything 0.3.4 sends, and only when asked.
                if req.extended {
                    for (n, (_, id)) in targets.iter().enumerate() {
                        if let Some(id) = id {
                            self.extra(*id).write(&mut reply, n);
                        }
                    }
                }
                Answer::Now(Some(reply))
            }
            ControlCmd::Other(_) if targets.is_empty() => Answer::Now(Some(NvList::new())),
            ControlCmd::Other(_) => Answer::Now(Some(error_reply(ehast::UNIMPLEMENTED))),
        }
    }

    /// A resource's status as 0.3.4 reports it.
    pub fn status(&self, id: ResId) -> ResourceStatus {
        let r = &self.res[&id];
        let c = &r.cfg;
        let worker = r.worker();
        let report = worker.and_then(|w| w.report.as_ref());
        ResourceStatus {
            exec: c.exec.clone(),
            attempts_max: clamp(c.attempts as u64),
            remotes: c
                .remote
                .iter()
                .enumerate()
                .map(|(j, a)| {
                    let seen = report.and_then(|rep| rep.remotes.get(j));
                    RemoteStatus {
                        addr: a.to_string(),
                        state: seen.map(|s| s.state_text().to_string()),
                        role: seen.and_then(|s| s.role_text()).map(str::to_string),
                    }
                })
                .collect(),
            role: r.machine.role(),
            workerpid: worker.and_then(|w| w.pid).unwrap_or(0),
            complaints: clamp(r.machine.complaints(self.now) as u64),
            complaints_critical: clamp(c.complaint_count as u64),
            complaints_interval: whole_seconds(c.complaint_interval),
            heartbeat: whole_seconds(c.heartbeat_interval),
            worker: report.map(|rep| WorkerStatus {
                state: rep.state,
                attempts: clamp(u64::from(rep.attempts)),
            }),
        }
    }

    /// What `hastmonctl status -j` shows beyond the text.
    pub fn extra(&self, id: ResId) -> StatusExtra {
        let r = &self.res[&id];
        let now = self.now;
        let ago = |t| millis(now.since(t));
        let report = r.worker().and_then(|w| w.report.as_ref());
        let mut complaint_ages: Vec<u64> = r.machine.complaint_times(now).map(ago).collect();
        complaint_ages.reverse();
        StatusExtra {
            heartbeat_ms: millis(r.cfg.heartbeat_interval),
            complaint_interval_ms: millis(r.cfg.complaint_interval),
            complaint_ages_ms: complaint_ages,
            remote_seen_ms: (0..r.cfg.remote.len())
                .map(|j| Some(ago(report?.seen.get(j).copied().flatten()?)))
                .collect(),
            last_change: r.machine.last_change().map(|c| LastChange {
                ago_ms: ago(c.at),
                from: c.from,
                cause: c.cause.clone(),
            }),
            hooks: r
                .hooks
                .last_runs()
                .map(|(word, run)| HookRun {
                    event: word.to_string(),
                    outcome: match run.result {
                        HookResult::Exited(c) => HookOutcome::Exited(c),
                        HookResult::Signaled(s) => HookOutcome::Killed(s),
                        HookResult::TimedOut => HookOutcome::TimedOut,
                        HookResult::NotRun => HookOutcome::NotRun,
                    },
                    took_ms: millis(run.took),
                    ago_ms: ago(run.ended),
                })
                .collect(),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn clamp(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The wire carries whole seconds: a fraction is rounded up, so a
/// sub-second interval never reads as 0.
fn whole_seconds(d: std::time::Duration) -> i32 {
    clamp(d.as_millis().div_ceil(1000) as u64)
}

/// A control request's answer: now, or once the primaries a role change
/// let go have stopped (each named resource, its id, and its outcome
/// unless its `stop` fails).
enum Answer {
    Now(Option<NvList>),
    AfterStop(Vec<(String, Option<ResId>, RoleOutcome)>),
}

/// A role change waiting for its primaries' `stop`.
#[derive(Debug)]
pub struct RoleWait {
    pub conn: ConnId,
    since: Time,
    /// Each named resource and the outcome it has unless its stop failed.
    entries: Vec<(String, Option<ResId>, RoleOutcome)>,
}
