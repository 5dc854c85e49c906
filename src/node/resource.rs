//! What the main process decides for one resource: its role, its worker,
//! its complaints, and who may become its primary. Pure, like the worker
//! machines: the glue feeds [`ResourceInput`]s and carries out
//! [`ResourceAction`]s (forking and signalling workers, running hooks,
//! answering handshakes), and feeds [`ResourceInput::Tick`] at
//! [`ResourceMachine::deadline`].
//!
//! Departures from 0.3.4, all on purpose (doc/quirks.md):
//! * The previous role is recorded on every role change (Q19), so a
//!   primary that gives up returns to whatever it was before, and every
//!   automatic change is logged with its cause and reported as a `role`
//!   hook flagged `automatic` (0.3.4 runs no hook for those; the glue
//!   decides whether to run them).
//! * Complaints are cleared on every role change and when a primary
//!   completes its handshake, and are not counted while a primary is
//!   connected: a promotion needs `complaint_count + 1` complaints that
//!   all arrived after the primary was lost, so old complaints never
//!   shorten a failover (Q11).
//! * A handshake without `priority` is refused (Q15); priorities tie-break
//!   on the nodes' identities, so that exactly one of two equal primaries
//!   yields (Q14); a secondary serving a primary refuses a weaker newcomer
//!   instead of following whoever connected last (Q16).
//! * A worker restart is a deadline, not a sleep of the whole main loop.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::Resource;
use crate::exit;
use crate::proto::msg::errmsg;
use crate::role::{Level, Time};
use crate::types::Role;

/// How long a crashed worker waits before it is started again.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceConfig {
    pub role_on_start: Role,
    /// Lower is stronger.
    pub priority: i32,
    pub complaint_count: u32,
    pub complaint_interval: Duration,
}

impl ResourceConfig {
    pub fn from_resource(r: &Resource) -> ResourceConfig {
        ResourceConfig {
            role_on_start: r.role_on_start,
            priority: i32::try_from(r.priority).unwrap_or(i32::MAX),
            complaint_count: r.complaint_count,
            complaint_interval: r.complaint_interval,
        }
    }
}

/// Names one worker for its whole life, so that the exit of a worker we
/// already let go is never taken for the exit of its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    Code(i32),
    Signal(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceInput {
    /// The daemon started: apply `role_on_start`.
    Start,
    /// The time asked for by `deadline()` has come.
    Tick,
    /// An operator's `hastmonctl role`, or a remote control request.
    SetRole(Role),
    /// A role set by a configuration reload (a resource removed, or back).
    ReloadRole(Role),
    /// A watchdog's complaint arrived and passed the access checks.
    Complaint,
    /// Our own watchdog worker complained (counted for the status display).
    ComplaintSent,
    /// Stage 1 of a primary's handshake, after the access checks. `peer`
    /// and `own` identify the two ends for tie-breaks: they must be texts
    /// that the peer, evaluating the same connection from its side, sees
    /// swapped — the IP addresses (without ports) of the accepted
    /// connection's remote and local ends do. (Our configured listen
    /// address may be a wildcard, so it cannot serve.)
    Handshake1 {
        peer: String,
        own: String,
        priority: Option<i32>,
    },
    /// Stage 2 of a handshake from `peer`, token already checked.
    Handshake2 { peer: String },
    /// A worker exited.
    WorkerExited { id: WorkerId, exit: WorkerExit },
    /// New settings from a configuration reload. With `restart_worker`,
    /// a primary's or watchdog's worker is replaced by one with the new
    /// settings; the resource is left as it is (no hook, no role change).
    Reconfigure {
        cfg: ResourceConfig,
        restart_worker: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceAction {
    /// Fork a worker. A secondary worker takes the two connections of the
    /// handshake being handled.
    SpawnWorker {
        id: WorkerId,
        role: Role,
        /// A promotion: the old primary is presumed gone, so the new one
        /// checks and starts the resource at once instead of first waiting
        /// for its connection attempts (doc/quirks.md Q56).
        urgent: bool,
    },
    /// Let a worker go: `stop_resource` asks a primary to stop the
    /// resource on its way out (SIGTERM/SIGINT); otherwise it leaves it as
    /// it is (SIGHUP for a primary; any signal for the others).
    StopWorker {
        id: WorkerId,
        stop_resource: bool,
    },
    /// Run `role <res> <old> <new>`. `automatic` marks changes no operator
    /// asked for (promotion, yielding, falling back), for which 0.3.4 runs
    /// no hook.
    RunRoleHook {
        old: Role,
        new: Role,
        automatic: bool,
    },
    /// Run `complain <res>` (not awaited).
    RunComplainHook,
    /// Answer the handshake at hand: stage 1 with a token, stage 2 by
    /// keeping the connection for the worker spawned next.
    AcceptHandshake,
    /// Answer the handshake at hand with `{errmsg, [priority]}` and close.
    RefuseHandshake {
        errmsg: String,
        priority: Option<i32>,
    },
    Log {
        level: Level,
        msg: String,
    },
}

/// A role change as `hastmonctl status -j` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    pub at: Time,
    pub from: Role,
    pub to: Role,
    pub cause: String,
}

/// Causes of changes no machine rule made.
pub const CAUSE_START: &str = "Daemon started (role_on_start)";
pub const CAUSE_REQUEST: &str = "Role requested";
pub const CAUSE_RELOAD: &str = "Configuration reloaded";

/// The primary a secondary serves, or one that asked to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Candidate {
    id: String,
    priority: i32,
}

impl Candidate {
    /// The order both sides agree on: lower priority number first, then
    /// the identity's text.
    fn beats(&self, other: &Candidate) -> bool {
        (self.priority, &self.id) < (other.priority, &other.id)
    }
}

#[derive(Debug)]
pub struct ResourceMachine {
    cfg: ResourceConfig,
    role: Role,
    previous: Role,
    worker: Option<WorkerId>,
    next_worker: u64,
    restart_at: Option<Time>,
    complaints: VecDeque<Time>,
    serving: Option<Candidate>,
    /// Stage-1 handshakes waiting for their stage 2, by peer.
    pending: Vec<Candidate>,
    /// The next spawn is a promotion (see `SpawnWorker::urgent`).
    promoting: bool,
    /// The time of the input being handled, for `last_change`.
    now: Time,
    last_change: Option<RoleChange>,
}

impl ResourceMachine {
    pub fn new(cfg: ResourceConfig, now: Time) -> ResourceMachine {
        ResourceMachine {
            cfg,
            role: Role::Init,
            previous: Role::Init,
            worker: None,
            next_worker: 1,
            restart_at: None,
            complaints: VecDeque::new(),
            serving: None,
            pending: Vec::new(),
            promoting: false,
            now,
            last_change: None,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn previous_role(&self) -> Role {
        self.previous
    }

    pub fn worker(&self) -> Option<WorkerId> {
        self.worker
    }

    /// The last role change, the one to `role_on_start` included; `None`
    /// while the resource has stayed init.
    pub fn last_change(&self) -> Option<&RoleChange> {
        self.last_change.as_ref()
    }

    /// The arrival times of the complaints `complaints()` counts, oldest
    /// first.
    pub fn complaint_times(&self, now: Time) -> impl Iterator<Item = Time> + '_ {
        self.complaints
            .iter()
            .copied()
            .filter(move |&t| now.since(t) <= self.cfg.complaint_interval)
    }

    /// Complaints younger than `complaint_interval` (at most that old).
    pub fn complaints(&self, now: Time) -> usize {
        self.complaints
            .iter()
            .filter(|&&t| now.since(t) <= self.cfg.complaint_interval)
            .count()
    }

    /// The identity of the primary our secondary worker serves.
    pub fn serving(&self) -> Option<&str> {
        self.serving.as_ref().map(|c| c.id.as_str())
    }

    pub fn deadline(&self) -> Option<Time> {
        self.restart_at
    }

    pub fn handle(&mut self, now: Time, input: ResourceInput) -> Vec<ResourceAction> {
        let mut out = Vec::new();
        self.now = now;
        match input {
            ResourceInput::Start => self.start(&mut out),
            ResourceInput::Tick => {
                if self.restart_at.is_some_and(|at| now >= at) {
                    self.restart_at = None;
                    log(&mut out, Level::Notice, "Restarting worker process.");
                    self.spawn_for_role(&mut out);
                }
            }
            ResourceInput::SetRole(role) => self.set_role(role, CAUSE_REQUEST, &mut out),
            ResourceInput::ReloadRole(role) => self.set_role(role, CAUSE_RELOAD, &mut out),
            ResourceInput::Complaint => {
                out.push(ResourceAction::RunComplainHook);
                self.complaint(now, &mut out);
            }
            ResourceInput::ComplaintSent => {
                self.add_complaint(now);
            }
            ResourceInput::Handshake1 {
                peer,
                own,
                priority,
            } => self.handshake1(peer, own, priority, &mut out),
            ResourceInput::Handshake2 { peer } => self.handshake2(&peer, &mut out),
            ResourceInput::WorkerExited { id, exit } => self.worker_exited(now, id, exit, &mut out),
            ResourceInput::Reconfigure {
                cfg,
                restart_worker,
            } => self.reconfigure(cfg, restart_worker, &mut out),
        }
        out
    }

    fn reconfigure(
        &mut self,
        cfg: ResourceConfig,
        restart_worker: bool,
        out: &mut Vec<ResourceAction>,
    ) {
        self.cfg = cfg;
        if !restart_worker || !matches!(self.role, Role::Primary | Role::Watchdog) {
            return;
        }
        if let Some(id) = self.worker.take() {
            log(
                out,
                Level::Notice,
                "Restarting the worker with the new settings.",
            );
            out.push(ResourceAction::StopWorker {
                id,
                stop_resource: false,
            });
            self.spawn(self.role, out);
        }
    }

    fn start(&mut self, out: &mut Vec<ResourceAction>) {
        let role = self.cfg.role_on_start;
        log(
            out,
            Level::Notice,
            format!("Role set to {role} (role_on_start)."),
        );
        if role == Role::Init {
            return;
        }
        self.role = role;
        self.record_change(Role::Init, CAUSE_START);
        self.spawn_for_role(out);
        out.push(ResourceAction::RunRoleHook {
            old: Role::Init,
            new: role,
            automatic: false,
        });
    }

    fn set_role(&mut self, role: Role, cause: &'static str, out: &mut Vec<ResourceAction>) {
        if role == self.role {
            log(out, Level::Debug, "Role unchanged.");
            return;
        }
        let old = self.role;
        let why = if cause == CAUSE_RELOAD {
            "by the reloaded configuration"
        } else {
            "on request"
        };
        log(
            out,
            Level::Notice,
            format!("Role changed from {old} to {role} {why}."),
        );
        self.change_role(role, cause, true, out);
        out.push(ResourceAction::RunRoleHook {
            old,
            new: role,
            automatic: false,
        });
    }

    /// An automatic role change: logged with its cause, hook flagged.
    fn change_role_because(&mut self, role: Role, cause: &str, out: &mut Vec<ResourceAction>) {
        let old = self.role;
        log(
            out,
            Level::Warning,
            format!("{cause}; changing resource role from {old} to {role}."),
        );
        self.change_role(role, cause, true, out);
        out.push(ResourceAction::RunRoleHook {
            old,
            new: role,
            automatic: true,
        });
    }

    /// Lets the current worker go (if any), switches roles and starts the
    /// new role's worker.
    fn change_role(
        &mut self,
        role: Role,
        cause: &str,
        stop_resource: bool,
        out: &mut Vec<ResourceAction>,
    ) {
        if let Some(id) = self.worker.take() {
            out.push(ResourceAction::StopWorker { id, stop_resource });
        }
        self.restart_at = None;
        self.serving = None;
        self.complaints.clear();
        self.previous = self.role;
        self.role = role;
        self.record_change(self.previous, cause);
        self.spawn_for_role(out);
    }

    fn record_change(&mut self, from: Role, cause: &str) {
        self.last_change = Some(RoleChange {
            at: self.now,
            from,
            to: self.role,
            cause: cause.to_string(),
        });
    }

    /// Primaries and watchdogs always have a worker; a secondary gets one
    /// only from a handshake.
    fn spawn_for_role(&mut self, out: &mut Vec<ResourceAction>) {
        if matches!(self.role, Role::Primary | Role::Watchdog) {
            self.spawn(self.role, out);
        }
    }

    fn spawn(&mut self, role: Role, out: &mut Vec<ResourceAction>) {
        let id = WorkerId(self.next_worker);
        self.next_worker += 1;
        self.worker = Some(id);
        let urgent = std::mem::take(&mut self.promoting);
        out.push(ResourceAction::SpawnWorker { id, role, urgent });
    }

    /// Where a primary or watchdog goes when it gives up: the role it had
    /// before, but never back to primary (a watchdog that was a primary
    /// must not start the resource because its worker died).
    fn fallback(&self) -> Role {
        match self.previous {
            Role::Primary | Role::Undef => Role::Init,
            r => r,
        }
    }

    fn add_complaint(&mut self, now: Time) -> usize {
        self.complaints.push_back(now);
        let ci = self.cfg.complaint_interval;
        while self.complaints.front().is_some_and(|&t| now.since(t) > ci) {
            self.complaints.pop_front();
        }
        self.complaints.len()
    }

    fn complaint(&mut self, now: Time, out: &mut Vec<ResourceAction>) {
        if let Some(primary) = &self.serving {
            // The primary still talks to us, so whoever complains cannot
            // see it, but it is alive: counting this would let a later
            // loss of the primary promote us at the first complaint.
            let msg = format!("Ignoring complaint: primary {} is connected.", primary.id);
            log(out, Level::Debug, msg);
            return;
        }
        let n = self.add_complaint(now);
        if n as u64 <= u64::from(self.cfg.complaint_count) {
            log(out, Level::Debug, format!("Complaint {n} counted."));
            return;
        }
        if self.role != Role::Secondary {
            let msg = format!(
                "Ignoring complaints because I am {} (not secondary).",
                self.role
            );
            log(out, Level::Debug, msg);
            return;
        }
        let cause = format!(
            "Complaint limit reached ({n} within {} s), no primary connected",
            self.cfg.complaint_interval.as_secs_f64()
        );
        self.promoting = true;
        self.change_role_because(Role::Primary, &cause, out);
    }

    fn handshake1(
        &mut self,
        peer: String,
        own: String,
        priority: Option<i32>,
        out: &mut Vec<ResourceAction>,
    ) {
        let Some(priority) = priority else {
            log(
                out,
                Level::Warning,
                format!("Handshake from {peer} without priority."),
            );
            return refuse(out, errmsg::PRIORITY_MISSING, None);
        };
        let newcomer = Candidate { id: peer, priority };
        if self.role == Role::Primary {
            let me = Candidate {
                id: own,
                priority: self.cfg.priority,
            };
            if !newcomer.beats(&me) {
                log(
                    out,
                    Level::Notice,
                    format!(
                        "Primary {} (priority {}) is weaker than us (priority {}).",
                        newcomer.id, newcomer.priority, me.priority
                    ),
                );
                return refuse(
                    out,
                    &errmsg::stronger_primary(me.priority),
                    Some(me.priority),
                );
            }
            let cause = format!(
                "Stronger primary {} (priority {}) connected",
                newcomer.id, newcomer.priority
            );
            self.change_role_because(self.fallback(), &cause, out);
        }
        if self.role != Role::Secondary {
            return refuse(out, &errmsg::not_secondary(self.role), None);
        }
        if let Some(refusal) = self.refuse_weaker(&newcomer, out) {
            return out.push(refusal);
        }
        self.pending.retain(|c| c.id != newcomer.id);
        self.pending.push(newcomer);
        out.push(ResourceAction::AcceptHandshake);
    }

    /// A secondary follows the strongest primary that reaches it (Q16).
    fn refuse_weaker(
        &self,
        newcomer: &Candidate,
        out: &mut Vec<ResourceAction>,
    ) -> Option<ResourceAction> {
        let current = self.serving.as_ref()?;
        if current.id == newcomer.id || newcomer.beats(current) {
            return None;
        }
        log(
            out,
            Level::Notice,
            format!(
                "Refusing primary {} (priority {}): serving {} (priority {}).",
                newcomer.id, newcomer.priority, current.id, current.priority
            ),
        );
        Some(ResourceAction::RefuseHandshake {
            errmsg: errmsg::serving_stronger_primary(current.priority),
            priority: Some(current.priority),
        })
    }

    fn handshake2(&mut self, peer: &str, out: &mut Vec<ResourceAction>) {
        let Some(at) = self.pending.iter().position(|c| c.id == peer) else {
            log(
                out,
                Level::Warning,
                format!("Stage 2 from {peer} without stage 1."),
            );
            return refuse(out, errmsg::TOKEN_MISMATCH, None);
        };
        let newcomer = self.pending.remove(at);
        if self.role != Role::Secondary {
            return refuse(out, &errmsg::not_secondary(self.role), None);
        }
        if let Some(refusal) = self.refuse_weaker(&newcomer, out) {
            return out.push(refusal);
        }
        if let Some(id) = self.worker.take() {
            out.push(ResourceAction::StopWorker {
                id,
                stop_resource: false,
            });
        }
        log(
            out,
            Level::Info,
            format!(
                "Serving primary {} (priority {}).",
                newcomer.id, newcomer.priority
            ),
        );
        self.complaints.clear();
        self.serving = Some(newcomer);
        out.push(ResourceAction::AcceptHandshake);
        self.spawn(Role::Secondary, out);
    }

    fn worker_exited(
        &mut self,
        now: Time,
        id: WorkerId,
        how: WorkerExit,
        out: &mut Vec<ResourceAction>,
    ) {
        let text = match how {
            WorkerExit::Code(c) => format!("exit code {c}"),
            WorkerExit::Signal(s) => format!("signal {s}"),
        };
        if self.worker != Some(id) {
            log(
                out,
                Level::Debug,
                format!("Former worker {} ended ({text}).", id.0),
            );
            return;
        }
        self.worker = None;
        match (self.role, how) {
            (Role::Primary | Role::Watchdog, WorkerExit::Signal(_))
            | (Role::Primary | Role::Watchdog, WorkerExit::Code(exit::TEMPFAIL)) => {
                log(
                    out,
                    Level::Error,
                    format!("Worker process ended ({text}); restarting it in 1 s."),
                );
                self.restart_at = Some(now + RESTART_DELAY);
            }
            // Stopped for network silence: it was the cut-off side of a
            // partition, and another node has likely taken over. As
            // secondary it is the standby again once the network heals,
            // and never pre-empts the new primary.
            (Role::Primary, WorkerExit::Code(exit::NOHOST)) => {
                let cause = format!("Network silence limit reached ({text})");
                self.change_role_because(Role::Secondary, &cause, out);
            }
            (Role::Primary | Role::Watchdog, WorkerExit::Code(_)) => {
                let cause = format!("Worker process exited ({text})");
                self.change_role_because(self.fallback(), &cause, out);
            }
            _ => {
                log(
                    out,
                    Level::Info,
                    format!("Secondary worker ended ({text}); waiting for a primary."),
                );
                self.serving = None;
            }
        }
    }
}

fn refuse(out: &mut Vec<ResourceAction>, errmsg: &str, priority: Option<i32>) {
    out.push(ResourceAction::RefuseHandshake {
        errmsg: errmsg.to_string(),
        priority,
    });
}

fn log(out: &mut Vec<ResourceAction>, level: Level, msg: impl Into<String>) {
    out.push(ResourceAction::Log {
        level,
        msg: msg.into(),
    });
}

#[cfg(test)]
mod tests;
