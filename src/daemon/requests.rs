//! The answers to control requests (`hastmonctl role` and `status`).

use super::supervisor::{Ctx, Supervisor};
use crate::log_notice;
use crate::proto::NvList;
use crate::proto::msg::{
    ControlCmd, ControlRequest, HookOutcome, HookRun, LastChange, RemoteStatus, ResourceStatus,
    RoleEntry, RoleOutcome, RoleReply, StatusEntry, StatusExtra, StatusOutcome, StatusReply,
    WorkerStatus, ehast, error_reply,
};
use crate::role::HookResult;
use crate::types::Role;

/// Answers control requests from what the supervisor holds.
pub struct Requests<'s> {
    pub sup: &'s mut Supervisor,
}

impl Requests<'_> {
    /// Indices of the named resources; `all` first means every one. An
    /// unknown name is `None` in its place.
    fn lookup(&self, names: &[String]) -> Vec<(String, Option<usize>)> {
        if names.first().is_some_and(|n| n == "all") {
            return self
                .sup
                .active()
                .into_iter()
                .map(|i| (self.sup.list[i].cfg.name.clone(), Some(i)))
                .collect();
        }
        names
            .iter()
            .map(|n| (n.clone(), self.sup.find(n)))
            .collect()
    }

    /// Answers one control request; `None` means close without a reply,
    /// as 0.3.4 does for a request without `cmd`.
    pub fn handle(&mut self, ctx: &mut Ctx<'_>, request: &NvList) -> Option<NvList> {
        let Ok(req) = ControlRequest::from_nv(request) else {
            log_notice!("Control header is missing 'cmd' field.");
            return None;
        };
        if req.resources.is_empty() {
            return Some(error_reply(ehast::INVALID));
        }
        let targets = self.lookup(&req.resources);
        match req.cmd {
            ControlCmd::SetRole => {
                let role = match req.role {
                    Some(r @ (Role::Init | Role::Primary | Role::Secondary | Role::Watchdog)) => r,
                    _ => return Some(error_reply(ehast::INVALID)),
                };
                let entries = targets
                    .into_iter()
                    .map(|(name, idx)| RoleEntry {
                        outcome: match idx {
                            None => RoleOutcome::Error(ehast::NOENTRY),
                            Some(i) => {
                                RoleOutcome::Previous(self.sup.set_role(ctx, i, role).to_string())
                            }
                        },
                        resource: name,
                    })
                    .collect();
                Some(
                    RoleReply {
                        entries,
                        error: None,
                    }
                    .to_nv(),
                )
            }
            ControlCmd::Status => {
                let entries = targets
                    .iter()
                    .map(|(name, idx)| StatusEntry {
                        outcome: match idx {
                            None => StatusOutcome::Error(ehast::NOENTRY),
                            Some(i) => StatusOutcome::Status(self.status(*i)),
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
                    for (n, (_, idx)) in targets.iter().enumerate() {
                        if let Some(i) = idx {
                            self.extra(*i).write(&mut reply, n);
                        }
                    }
                }
                Some(reply)
            }
            ControlCmd::Other(_) if targets.is_empty() => Some(NvList::new()),
            ControlCmd::Other(_) => Some(error_reply(ehast::UNIMPLEMENTED)),
        }
    }

    fn status(&self, i: usize) -> ResourceStatus {
        let r = &self.sup.list[i];
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
            workerpid: worker.map_or(0, |w| w.pid.as_raw()),
            complaints: clamp(self.sup.list[i].machine.complaints(self.sup.now()) as u64),
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
    fn extra(&self, i: usize) -> StatusExtra {
        let r = &self.sup.list[i];
        let now = self.sup.now();
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
            hooks: self
                .sup
                .hook_runs(i)
                .map(|(word, run)| HookRun {
                    event: word.to_string(),
                    outcome: match run.result {
                        HookResult::Exited(c) => HookOutcome::Exited(c),
                        HookResult::Signaled(s) => HookOutcome::Killed(s),
                        HookResult::TimedOut => HookOutcome::TimedOut,
                        HookResult::NotRun => HookOutcome::NotRun,
                    },
                    took_ms: millis(run.took),
                    ago_ms: millis(run.ended.elapsed()),
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
