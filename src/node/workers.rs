//! Workers: carrying out what a resource's machine decides (forks,
//! signals, hooks), worker succession, what workers ask for, and what an
//! outgoing connection's outcome means to the worker that asked.
//!
//! Succession: a worker let go stays in the resource's list, `leaving`,
//! until it is reaped; every action decided after it waits (`held`)
//! until then, so that a primary's `stop` runs before the next role's
//! `role` hook and before its worker starts.

use super::hooks::HookReq;
use super::resource::{ResourceAction, ResourceInput};
use super::{
    Action, JobId, JobOutcome, JobRequest, Leave, Limit, NodeMachine, Purpose, ResId, WorkerExit,
    WorkerId, WorkerRef, failure_text, log, log_limited,
};
use crate::exit;
use crate::proto::msg::HookEvent;
use crate::role::{ConnectFailure, Level, Report};
use crate::types::Role;
use crate::worker::msg::{ToMain, ToWorker};

/// A worker process as the node knows it.
#[derive(Clone, Debug)]
pub struct WorkerRec {
    pub id: WorkerId,
    pub role: Role,
    /// Once forked.
    pub pid: Option<i32>,
    /// What it reported last, its times on the node's clock.
    pub report: Option<Report>,
    /// Let go: its exit is expected, and nothing new for the resource
    /// starts until it is reaped.
    pub leaving: bool,
    /// Let go with the resource to be stopped (a primary's SIGTERM).
    pub must_stop: bool,
    /// It asked for `stop`.
    pub asked_stop: bool,
}

/// An outgoing connection job under way.
#[derive(Clone, Debug)]
pub struct Job {
    pub worker: WorkerRef,
    pub remote: usize,
    /// A poll's watchdog cycle, returned with its answer.
    pub cycle: u64,
    pub complaint: bool,
    pub poll: bool,
    pub handshake: bool,
}

/// The hook argument for a worker's event (`complaint` runs `complain`).
pub fn hook_word(event: HookEvent) -> &'static str {
    match event {
        HookEvent::Connect => "connect",
        HookEvent::Disconnect => "disconnect",
        HookEvent::Start => "start",
        HookEvent::Stop => "stop",
        HookEvent::Status => "status",
        HookEvent::Complaint => "complain",
    }
}

impl NodeMachine {
    pub(super) fn worker_mut(&mut self, w: WorkerRef) -> Option<&mut WorkerRec> {
        self.res
            .get_mut(&w.res)?
            .workers
            .iter_mut()
            .find(|x| x.id == w.id)
    }

    /// Feeds one input to a resource's machine and carries out, or holds,
    /// what it decides.
    pub(super) fn resource_input(
        &mut self,
        id: ResId,
        input: ResourceInput,
        out: &mut Vec<Action>,
    ) {
        let actions = self.machine_step(id, input, out);
        self.hold(id, actions, out);
    }

    /// Feeds one input to a resource's machine; returns what it decided,
    /// its repeatable log lines already said.
    pub(super) fn machine_step(
        &mut self,
        id: ResId,
        input: ResourceInput,
        out: &mut Vec<Action>,
    ) -> Vec<ResourceAction> {
        let now = self.now;
        let Some(r) = self.res.get_mut(&id) else {
            return Vec::new();
        };
        let actions = r.machine.handle(now, input);
        repeatable_logs(&r.cfg.name, actions, out)
    }

    /// Queues a machine's decisions and carries out what need not wait.
    pub(super) fn hold(&mut self, id: ResId, actions: Vec<ResourceAction>, out: &mut Vec<Action>) {
        if let Some(r) = self.res.get_mut(&id) {
            r.held.extend(actions);
        }
        self.run_held(id, out);
    }

    /// Carries out held actions until one must wait for a leaving worker.
    pub(super) fn run_held(&mut self, id: ResId, out: &mut Vec<Action>) {
        loop {
            let Some(r) = self.res.get_mut(&id) else {
                return;
            };
            if r.workers.iter().any(|w| w.leaving) {
                return;
            }
            let Some(action) = r.held.pop_front() else {
                return;
            };
            self.act(id, action, out);
        }
    }

    fn act(&mut self, id: ResId, action: ResourceAction, out: &mut Vec<Action>) {
        let Some(r) = self.res.get_mut(&id) else {
            return;
        };
        let name = r.cfg.name.clone();
        match action {
            ResourceAction::SpawnWorker {
                id: wid,
                role,
                urgent,
            } => {
                let handoff = if role == Role::Secondary {
                    match r.handoff.take() {
                        Some(h) => Some(h),
                        None => {
                            log(
                                out,
                                Level::Error,
                                format!("[{name}] No connections for the secondary worker."),
                            );
                            let exit = WorkerExit::Code(exit::SOFTWARE);
                            return self.resource_input(
                                id,
                                ResourceInput::WorkerExited { id: wid, exit },
                                out,
                            );
                        }
                    }
                } else {
                    None
                };
                let primary_heartbeat = if role == Role::Secondary {
                    r.primary_heartbeat
                } else {
                    None
                };
                r.workers.push(WorkerRec {
                    id: wid,
                    role,
                    pid: None,
                    report: None,
                    leaving: false,
                    must_stop: false,
                    asked_stop: false,
                });
                out.push(Action::Fork {
                    worker: WorkerRef { res: id, id: wid },
                    role,
                    urgent,
                    primary_heartbeat,
                    handoff,
                });
            }
            ResourceAction::StopWorker {
                id: wid,
                stop_resource,
            } => {
                let Some(w) = r.workers.iter_mut().find(|w| w.id == wid) else {
                    return;
                };
                let leave = if !stop_resource && w.role == Role::Primary {
                    Leave::KeepResource
                } else {
                    Leave::StopResource
                };
                log(
                    out,
                    Level::Notice,
                    format!(
                        "[{name}] Terminating worker process (role={}, pid={}).",
                        w.role,
                        w.pid.map_or_else(|| "?".into(), |p| p.to_string())
                    ),
                );
                w.leaving = true;
                w.must_stop = leave == Leave::StopResource;
                out.push(Action::Signal {
                    worker: WorkerRef { res: id, id: wid },
                    leave,
                });
            }
            ResourceAction::RunRoleHook {
                old,
                new,
                automatic,
            } => {
                if automatic {
                    log(
                        out,
                        Level::Info,
                        format!("[{name}] Running the role hook for an automatic change."),
                    );
                }
                let args = vec!["role".into(), name, old.to_string(), new.to_string()];
                self.queue_hook(id, HookReq { args, caller: None }, out);
            }
            ResourceAction::RunComplainHook => {
                let args = vec!["complain".into(), name];
                self.queue_hook(id, HookReq { args, caller: None }, out);
            }
            // Handshake answers are taken by `listen` from the actions.
            ResourceAction::AcceptHandshake | ResourceAction::RefuseHandshake { .. } => {}
            ResourceAction::Log { level, msg } => log(out, level, format!("[{name}] {msg}")),
        }
    }

    pub(super) fn tell_current_worker(&mut self, id: ResId, msg: ToWorker, out: &mut Vec<Action>) {
        let Some(w) = self.res.get(&id).and_then(|r| r.worker()) else {
            return;
        };
        out.push(Action::ToWorker {
            worker: WorkerRef { res: id, id: w.id },
            msg,
        });
    }

    pub(super) fn worker_said(&mut self, worker: WorkerRef, msg: ToMain, out: &mut Vec<Action>) {
        let now = self.now;
        let Some(r) = self.res.get_mut(&worker.res) else {
            return;
        };
        if !r.workers.iter().any(|w| w.id == worker.id) {
            return;
        }
        let name = r.cfg.name.clone();
        match msg {
            ToMain::RunHook(event) => {
                if event == HookEvent::Stop
                    && let Some(w) = self.worker_mut(worker)
                {
                    w.asked_stop = true;
                }
                let args = vec![hook_word(event).to_string(), name];
                let req = HookReq {
                    args,
                    caller: Some((worker.id, event)),
                };
                self.queue_hook(worker.res, req, out);
            }
            // The report's times are the worker's; kept on ours.
            ToMain::Report { report, at } => {
                if let Some(w) = self.worker_mut(worker) {
                    w.report = Some(report.rebase(at, now));
                }
            }
            ToMain::Connect { remote } => {
                let c = &r.cfg;
                let purpose = Purpose::Handshake {
                    priority: i32::try_from(c.priority).unwrap_or(i32::MAX),
                    heartbeat_ms: u32::try_from(c.heartbeat_interval.as_millis())
                        .unwrap_or(u32::MAX),
                };
                if !self.connect(worker, remote, purpose, 0, out) {
                    let reason = ConnectFailure::Unreachable("the address does not resolve".into());
                    let msg = ToWorker::ConnectFailed { remote, reason };
                    out.push(Action::ToWorker { worker, msg });
                }
            }
            ToMain::Poll { remote, cycle } => {
                // An answer to the poll in flight would be taken for the
                // new one's.
                let stale: Vec<JobId> = self
                    .jobs
                    .iter()
                    .filter(|(_, j)| j.worker == worker && j.remote == remote && j.poll)
                    .map(|(id, _)| *id)
                    .collect();
                for job in stale {
                    self.jobs.remove(&job);
                    out.push(Action::CancelJob { job });
                }
                if !self.connect(worker, remote, Purpose::Poll, cycle, out) {
                    let result = Err("the address does not resolve".into());
                    let msg = ToWorker::PollResult {
                        remote,
                        cycle,
                        result,
                    };
                    out.push(Action::ToWorker { worker, msg });
                }
            }
            ToMain::Complain { remote } => {
                self.connect(worker, remote, Purpose::Complain, 0, out);
                self.resource_input(worker.res, ResourceInput::ComplaintSent, out);
            }
        }
    }

    /// Starts a job for a worker; false if the remote has no address.
    fn connect(
        &mut self,
        worker: WorkerRef,
        remote: usize,
        purpose: Purpose,
        cycle: u64,
        out: &mut Vec<Action>,
    ) -> bool {
        let job = self.next_job_id();
        let source = self.source;
        let Some(r) = self.res.get(&worker.res) else {
            return false;
        };
        let Some(addr) = r.remotes.get(remote).copied().flatten() else {
            return false;
        };
        self.jobs.insert(
            job,
            Job {
                worker,
                remote,
                cycle,
                complaint: purpose == Purpose::Complain,
                poll: purpose == Purpose::Poll,
                handshake: matches!(purpose, Purpose::Handshake { .. }),
            },
        );
        let request = JobRequest {
            name: r.cfg.name.clone(),
            addr,
            source,
            key: r.cfg.key.clone(),
            timeout: r.cfg.timeout,
            purpose,
        };
        out.push(Action::Connect { job, request });
        true
    }

    /// Gives a finished job's result to the worker that asked.
    pub(super) fn job_done(&mut self, job: JobId, outcome: JobOutcome, out: &mut Vec<Action>) {
        let Some(j) = self.jobs.remove(&job) else {
            return;
        };
        let Some(r) = self.res.get(&j.worker.res) else {
            return;
        };
        let (worker, remote, cycle) = (j.worker, j.remote, j.cycle);
        let present = r.workers.iter().any(|w| w.id == worker.id);
        match outcome {
            JobOutcome::Connected if present && j.handshake => {
                out.push(Action::GiveConnection {
                    worker,
                    job,
                    remote,
                });
            }
            JobOutcome::Failed(reason) if j.complaint => {
                let addr = r.cfg.remote.get(remote).map(ToString::to_string);
                let msg = format!(
                    "[{}] Unable to send a complaint to {}: {}.",
                    r.cfg.name,
                    addr.unwrap_or_default(),
                    failure_text(&reason)
                );
                log_limited(out, Level::Warning, msg, None);
            }
            JobOutcome::Failed(reason) if present && j.handshake => {
                let msg = ToWorker::ConnectFailed { remote, reason };
                out.push(Action::ToWorker { worker, msg });
            }
            JobOutcome::Polled { role, state } if present && j.poll => {
                let result = Ok((role, state));
                let msg = ToWorker::PollResult {
                    remote,
                    cycle,
                    result,
                };
                out.push(Action::ToWorker { worker, msg });
            }
            JobOutcome::Failed(reason) if present && j.poll => {
                let result = Err(failure_text(&reason));
                let msg = ToWorker::PollResult {
                    remote,
                    cycle,
                    result,
                };
                out.push(Action::ToWorker { worker, msg });
            }
            // Nobody waits for it (the worker is gone), or it is a
            // complaint delivered.
            _ => {}
        }
    }

    /// A worker was reaped: forget it, let held actions go, and tell the
    /// machine (unless the node is shutting down).
    pub(super) fn worker_exited(
        &mut self,
        worker: WorkerRef,
        how: WorkerExit,
        out: &mut Vec<Action>,
    ) {
        let shutting_down = self.shutdown_at.is_some();
        let Some(r) = self.res.get_mut(&worker.res) else {
            return;
        };
        let Some(at) = r.workers.iter().position(|w| w.id == worker.id) else {
            return;
        };
        let w = r.workers.remove(at);
        r.hooks.forget_caller(worker.id);
        let name = r.cfg.name.clone();
        // A primary worker that gave up, or was told to stop the resource,
        // must leave it stopped; if its own `stop` never reached us (it
        // died first, or its last message was lost), the node runs it.
        let gave_up = matches!(
            how,
            WorkerExit::Code(exit::NOHOST | exit::UNAVAILABLE | exit::NOPERM)
        );
        if w.role == Role::Primary && !w.asked_stop && (gave_up || w.must_stop) {
            log(
                out,
                Level::Warning,
                format!(
                    "[{name}] The primary worker ended without stopping the resource; stopping it."
                ),
            );
            let req = HookReq {
                args: vec!["stop".into(), name.clone()],
                caller: None,
            };
            self.queue_hook(worker.res, req, out);
        }
        // Its jobs' results are wanted by nobody; complaints under way are
        // still delivered.
        let doomed: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.worker == worker && !j.complaint)
            .map(|(id, _)| *id)
            .collect();
        for job in doomed {
            self.jobs.remove(&job);
            out.push(Action::CancelJob { job });
        }
        let pid = w.pid.map_or_else(|| "?".into(), |p| p.to_string());
        let (level, text) = match how {
            WorkerExit::Code(0) => (
                Level::Debug,
                format!("[{name}] Worker process exited gracefully (pid={pid})."),
            ),
            WorkerExit::Code(c) => (
                Level::Error,
                format!("[{name}] Worker process exited ungracefully (pid={pid}, exitcode={c})."),
            ),
            WorkerExit::Signal(s) => (
                Level::Error,
                format!("[{name}] Worker process killed (pid={pid}, signal={s})."),
            ),
        };
        // A worker let go may end any way; only a current one's end is news.
        let level = if w.leaving && level == Level::Error {
            Level::Notice
        } else {
            level
        };
        log(out, level, text);
        if shutting_down {
            return;
        }
        self.resource_input(
            worker.res,
            ResourceInput::WorkerExited {
                id: worker.id,
                exit: how,
            },
            out,
        );
    }
}

/// Logs now, rate-limited, what a machine says about a decision that
/// leaves the role as it is (a refused handshake, which a remote retries
/// every heartbeat); returns the other actions. A role change is logged
/// in full and in order, each time.
fn repeatable_logs(
    name: &str,
    actions: Vec<ResourceAction>,
    out: &mut Vec<Action>,
) -> Vec<ResourceAction> {
    let changes_role = actions
        .iter()
        .any(|a| matches!(a, ResourceAction::RunRoleHook { .. }));
    if changes_role {
        return actions;
    }
    actions
        .into_iter()
        .filter(|a| match a {
            ResourceAction::Log { level, msg }
                if matches!(level, Level::Error | Level::Warning | Level::Notice) =>
            {
                out.push(Action::Log {
                    level: *level,
                    msg: format!("[{name}] {msg}"),
                    limit: Limit::Text,
                });
                false
            }
            _ => true,
        })
        .collect()
}
