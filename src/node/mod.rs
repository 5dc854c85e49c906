//! The node machine: everything the main process decides, for all its
//! resources, as pure code.
//!
//! [`NodeMachine::handle`] takes `(now, input)` and returns [`Action`]s,
//! like the role machines below it. An input is what the main process's
//! event loop saw: a control or listen request, a worker's message or
//! exit, a hook's exit, an outgoing connection's outcome, a reload, a
//! termination signal, or the time it asked for ([`NodeMachine::deadline`]).
//! An action is what the shell in `daemon/` does: fork or signal a
//! worker, run or signal a hook, send to a worker, start an outgoing
//! connection, answer or keep a connection, log, exit. The shell owns
//! the descriptors, processes and clock; every decision about them is
//! here, where the simulation in `tests/` runs the very same code.
//!
//! What lives here, module by module:
//! * [`resource`]: one resource's role, complaints and handshake
//!   priorities (the `ResourceMachine`);
//! * [`hooks`]: one hook at a time per resource, in order, duplicates
//!   dropped, each bounded by `hook_timeout` (SIGTERM, then SIGKILL);
//! * [`workers`]: worker succession (the next worker and its hooks wait
//!   until the one let go is reaped, so a primary's `stop` comes first),
//!   workers' requests, and what an outgoing connection's outcome means;
//! * [`listen`]: who may send what on the listen socket, and the two
//!   stages of a primary's handshake;
//! * [`control`]: `hastmonctl role` and `status`;
//! * [`reload`]: what a new configuration changes;
//! * here: the resource table, the SIGTERM stop sequence, the guardian's
//!   records and the invariants.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::address::Address;
use crate::config::{Config, Key, Resource};
use crate::proto::NvList;
use crate::proto::hmac::Session;
use crate::proto::msg::Token;
use crate::role::{ConnectFailure, Level, Time};
use crate::types::{Role, State};
use crate::worker::msg::{ToMain, ToWorker};

pub mod access;
pub mod control;
pub mod hooks;
pub mod listen;
pub mod reload;
pub mod resource;
pub mod workers;

pub use hooks::{HookExit, LastRun};
pub use resource::{WorkerExit, WorkerId};

use hooks::Hooks;
use resource::{ResourceConfig, ResourceInput, ResourceMachine};
use workers::{Job, WorkerRec};

/// Names one configured resource for as long as it is configured; a
/// resource removed by a reload is freed once its worker and hooks are
/// gone, and one added later gets a new id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResId(pub u32);

/// Names one worker process: its resource, and its number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerRef {
    pub res: ResId,
    pub id: WorkerId,
}

/// Names one hook run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HookId(pub u64);

/// Names an accepted connection of the shell's (control or listen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Names one outgoing connection job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// Turns a configured address into a socket address; the shell's does
/// DNS, the simulation's knows its own nodes. `None`: unreachable.
pub type Resolver<'a> = &'a dyn Fn(&Address) -> Option<SocketAddr>;

/// How long shutdown waits for workers to stop their resources and for
/// hooks to finish, beyond twice the longest hook time limit.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(10);

/// A request that arrived on the listen socket, with what the shell
/// knows of its connection.
pub struct ListenInput<'a> {
    pub conn: ConnId,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub nv: &'a NvList,
    /// The connection's HMAC-SHA256 session, if it opened one.
    pub session: Option<&'a Session>,
    /// Wall-clock seconds, for the 0.3.4 digest's time window.
    pub wall: u64,
    /// A fresh random token, used if this is a handshake's first stage
    /// and it is accepted.
    pub token: Token,
}

/// What happened, as the shell saw it.
pub enum Input<'a> {
    /// The daemon started: every resource takes `role_on_start`.
    Start,
    /// The time asked for by `deadline()` has come.
    Tick,
    /// A request on the local control socket.
    Control {
        conn: ConnId,
        request: &'a NvList,
    },
    /// A request on the listen socket.
    Listen(ListenInput<'a>),
    /// The poller's TCP acknowledged the answer to a network status poll:
    /// that counts as contact for these resources' primaries (an answer
    /// merely written may sit in a send buffer behind a cut link).
    PollAnswered {
        resources: Vec<ResId>,
    },
    /// A `Fork` succeeded.
    WorkerStarted {
        worker: WorkerRef,
        pid: i32,
    },
    FromWorker {
        worker: WorkerRef,
        msg: ToMain,
    },
    WorkerExited {
        worker: WorkerRef,
        exit: WorkerExit,
    },
    /// A `RunHook` started: its process group.
    HookStarted {
        hook: HookId,
        pid: i32,
    },
    HookExited {
        hook: HookId,
        exit: HookExit,
    },
    JobDone {
        job: JobId,
        outcome: JobOutcome,
    },
    /// A new configuration, already checked and with its sockets open.
    Reload {
        config: &'a Config,
        resolve: Resolver<'a>,
    },
    /// SIGTERM or SIGINT: stop every primary's resource and exit.
    Terminate,
}

/// How an outgoing connection job ended (its descriptors stay with the
/// shell until `GiveConnection`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Connected,
    Polled { role: Role, state: State },
    Complained,
    Failed(ConnectFailure),
}

/// What an outgoing connection job is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A primary worker's connection to a secondary.
    Handshake { priority: i32, heartbeat_ms: u32 },
    /// A watchdog worker's status poll.
    Poll,
    /// A watchdog worker's complaint (no answer is read).
    Complain,
}

/// Everything the shell needs to make an outgoing connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRequest {
    pub name: String,
    pub addr: SocketAddr,
    /// Our listen address, when it is a specific one: peers check who we
    /// are by the address we connect from.
    pub source: Option<IpAddr>,
    pub key: Option<Key>,
    pub timeout: Duration,
    pub purpose: Purpose,
}

/// The connections of an accepted handshake, for a secondary worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    pub remote: usize,
    /// Stage 1's connection: heartbeats arrive on it.
    pub first: ConnId,
    /// Stage 2's: replies go back on it.
    pub second: ConnId,
}

/// How a worker is let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// A primary stops the resource on its way out (SIGTERM).
    StopResource,
    /// A primary leaves the resource as it is (SIGHUP): a new worker with
    /// new settings takes it over.
    KeepResource,
}

/// Whether a log message may repeat every heartbeat, and is then
/// rate-limited: messages are the same when their keys are, or without a
/// key, their texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limit {
    Never,
    Text,
    Key(String),
}

/// What the shell does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fork a worker for `worker.res` (its settings: `resource()`).
    Fork {
        worker: WorkerRef,
        role: Role,
        /// A promotion: check and start at once (Q56).
        urgent: bool,
        /// For a secondary: the heartbeat interval its primary announced.
        primary_heartbeat: Option<Duration>,
        handoff: Option<Handoff>,
    },
    Signal {
        worker: WorkerRef,
        leave: Leave,
    },
    ToWorker {
        worker: WorkerRef,
        msg: ToWorker,
    },
    /// Hand a finished handshake job's connections to the worker.
    GiveConnection {
        worker: WorkerRef,
        job: JobId,
        remote: usize,
    },
    Connect {
        job: JobId,
        request: JobRequest,
    },
    /// Abandon a job; its outcome is no longer wanted.
    CancelJob {
        job: JobId,
    },
    /// Run `exec args...` in its own process group.
    RunHook {
        hook: HookId,
        exec: String,
        args: Vec<String>,
    },
    /// SIGTERM (or SIGKILL with `kill`) to a hook's process group.
    SignalHook {
        hook: HookId,
        kill: bool,
    },
    /// Send `reply` if any (sealed in the connection's session) and close.
    Reply {
        conn: ConnId,
        reply: Option<NvList>,
    },
    /// `Reply` to a network status poll: once the poller's TCP
    /// acknowledged the reply, the shell feeds `PollAnswered` for
    /// `resources`.
    ReplyPoll {
        conn: ConnId,
        reply: Option<NvList>,
        resources: Vec<ResId>,
    },
    /// Send `reply` if any, then keep the connection open, off the
    /// request deadline, until a `Fork` hands it over or `Drop` closes it.
    Hold {
        conn: ConnId,
        reply: Option<NvList>,
    },
    Drop {
        conn: ConnId,
    },
    Log {
        level: Level,
        msg: String,
        limit: Limit,
    },
    /// Everything is stopped (or the shutdown deadline passed): exit.
    Exit,
}

/// One resource as the node holds it.
pub struct Res {
    pub cfg: Resource,
    pub machine: ResourceMachine,
    /// The current worker, and ones let go but not yet reaped.
    pub workers: Vec<WorkerRec>,
    /// Actions held until every leaving worker is reaped.
    held: std::collections::VecDeque<resource::ResourceAction>,
    pub hooks: Hooks,
    remotes: Vec<Option<SocketAddr>>,
    friends: Vec<SocketAddr>,
    /// The interval the primary being handed over announced (Q22).
    primary_heartbeat: Option<Duration>,
    /// The connections for the secondary worker about to start.
    handoff: Option<Handoff>,
    /// Removed by a reload: answers to nobody, freed once quiet.
    retired: bool,
}

impl Res {
    fn new(cfg: &Resource, resolve: Resolver<'_>, now: Time) -> Res {
        let (remotes, friends) = peers(cfg, resolve);
        Res {
            machine: ResourceMachine::new(ResourceConfig::from_resource(cfg), now),
            workers: Vec::new(),
            held: Default::default(),
            hooks: Hooks::default(),
            remotes,
            friends,
            primary_heartbeat: None,
            handoff: None,
            retired: false,
            cfg: cfg.clone(),
        }
    }

    /// The worker the resource has now (not one let go).
    pub fn worker(&self) -> Option<&WorkerRec> {
        self.workers.iter().find(|w| !w.leaving)
    }

    pub fn retired(&self) -> bool {
        self.retired
    }
}

/// A resource's remotes (in configuration order, `None` where an address
/// does not resolve) and friends, as socket addresses.
type Peers = (Vec<Option<SocketAddr>>, Vec<SocketAddr>);

fn peers(cfg: &Resource, resolve: Resolver<'_>) -> Peers {
    (
        cfg.remote.iter().map(resolve).collect(),
        cfg.friends.iter().filter_map(resolve).collect(),
    )
}

/// The guardian's view of one resource.
pub struct GuardianView<'a> {
    pub res: ResId,
    /// The resource may be up here: primary, a primary worker not yet
    /// reaped, or a `stop` still owed.
    pub primary: bool,
    /// The process group of the hook to kill first should the main
    /// process die.
    pub hook_group: Option<i32>,
    pub cfg: &'a Resource,
}

pub struct NodeMachine {
    res: BTreeMap<ResId, Res>,
    next_res: u32,
    next_hook: u64,
    next_job: u64,
    /// Which resource runs each running hook.
    hook_owner: HashMap<HookId, ResId>,
    jobs: HashMap<JobId, Job>,
    first_stages: listen::FirstStages,
    /// Role changes whose answer waits for a primary's `stop`.
    role_replies: Vec<control::RoleWait>,
    /// The configuration in force.
    config: Config,
    /// Global friends.
    friends: Vec<SocketAddr>,
    /// Where outgoing connections come from.
    source: Option<IpAddr>,
    shutdown_at: Option<Time>,
    exited: bool,
    /// The time of the input being handled.
    now: Time,
}

/// Checks an invariant the node relies on: a bug to crash on in tests,
/// to log loudly in production.
macro_rules! invariant {
    ($out:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            let msg = format!("Invariant broken: {}", format_args!($($msg)+));
            debug_assert!(false, "{msg}");
            $out.push(Action::Log { level: Level::Error, msg, limit: Limit::Never });
        }
    };
}

impl NodeMachine {
    pub fn new(cfg: &Config, resolve: Resolver<'_>, now: Time) -> NodeMachine {
        let mut node = NodeMachine {
            res: BTreeMap::new(),
            next_res: 0,
            next_hook: 1,
            next_job: 1,
            hook_owner: HashMap::new(),
            jobs: HashMap::new(),
            first_stages: HashMap::new(),
            role_replies: Vec::new(),
            config: cfg.clone(),
            friends: Vec::new(),
            source: None,
            shutdown_at: None,
            exited: false,
            now,
        };
        node.set_globals(cfg, resolve);
        for r in &cfg.resources {
            node.add(r, resolve);
        }
        node
    }

    fn set_globals(&mut self, cfg: &Config, resolve: Resolver<'_>) {
        self.friends = cfg.friends.iter().filter_map(resolve).collect();
        self.source = resolve(&cfg.listen)
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
    }

    fn add(&mut self, r: &Resource, resolve: Resolver<'_>) -> ResId {
        let id = ResId(self.next_res);
        self.next_res += 1;
        self.res.insert(id, Res::new(r, resolve, self.now));
        id
    }

    /// The configured resource of that name.
    pub fn find(&self, name: &str) -> Option<ResId> {
        self.res
            .iter()
            .find(|(_, r)| !r.retired && r.cfg.name == name)
            .map(|(id, _)| *id)
    }

    /// The configured resources, in configuration order.
    pub fn active(&self) -> impl Iterator<Item = ResId> + '_ {
        self.res
            .iter()
            .filter(|(_, r)| !r.retired)
            .map(|(id, _)| *id)
    }

    pub fn get(&self, id: ResId) -> Option<&Res> {
        self.res.get(&id)
    }

    /// Every resource held, retired ones included.
    pub fn all(&self) -> impl Iterator<Item = (ResId, &Res)> {
        self.res.iter().map(|(id, r)| (*id, r))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether resource `id` is still being stopped here: a primary
    /// worker let go and not yet reaped, or a `stop` queued or running.
    pub fn stopping(&self, id: ResId) -> bool {
        self.res.get(&id).is_some_and(|r| {
            r.workers
                .iter()
                .any(|w| w.leaving && w.role == Role::Primary)
                || r.hooks.owes_stop()
        })
    }

    /// Whether the answer on `conn` waits (a role change held for a
    /// primary's `stop`).
    fn holds(&self, conn: ConnId) -> bool {
        self.role_replies.iter().any(|w| w.conn == conn)
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown_at.is_some()
    }

    /// When the node next wants a `Tick`.
    pub fn deadline(&self) -> Option<Time> {
        let res = self
            .res
            .values()
            .flat_map(|r| [r.machine.deadline(), r.hooks.deadline()]);
        res.chain([self.shutdown_at]).flatten().min()
    }

    /// What the guardian must know of each resource.
    pub fn guardian(&self) -> impl Iterator<Item = GuardianView<'_>> {
        self.res.iter().map(|(id, r)| GuardianView {
            res: *id,
            primary: r.machine.role() == Role::Primary
                || r.workers.iter().any(|w| w.role == Role::Primary)
                || r.hooks.owes_stop(),
            hook_group: r.hooks.running_group(),
            cfg: &r.cfg,
        })
    }

    pub fn handle(&mut self, now: Time, input: Input<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        if self.exited {
            return out;
        }
        self.now = now;
        match input {
            Input::Start => {
                let ids: Vec<ResId> = self.res.keys().copied().collect();
                for id in ids {
                    self.resource_input(id, ResourceInput::Start, &mut out);
                }
            }
            Input::Tick => self.tick(&mut out),
            Input::Control { conn, request } => {
                let reply = self.control_request(conn, request, &mut out);
                if !self.holds(conn) {
                    out.push(Action::Reply { conn, reply });
                }
            }
            Input::Listen(l) => self.listen(l, &mut out),
            Input::PollAnswered { resources } => {
                for id in resources {
                    self.tell_current_worker(id, ToWorker::Polled { remote: true }, &mut out);
                }
            }
            Input::WorkerStarted { worker, pid } => {
                if let Some(w) = self.worker_mut(worker) {
                    w.pid = Some(pid);
                }
            }
            Input::FromWorker { worker, msg } => self.worker_said(worker, msg, &mut out),
            Input::WorkerExited { worker, exit } => self.worker_exited(worker, exit, &mut out),
            Input::HookStarted { hook, pid } => self.hook_started(hook, pid),
            Input::HookExited { hook, exit } => self.hook_exited(hook, exit, &mut out),
            Input::JobDone { job, outcome } => self.job_done(job, outcome, &mut out),
            Input::Reload { config, resolve } => self.reload(config, resolve, &mut out),
            Input::Terminate => self.terminate(&mut out),
        }
        self.answer_role_changes(&mut out);
        self.collect_retired();
        self.check_shutdown(&mut out);
        self.check(&mut out);
        out
    }

    fn tick(&mut self, out: &mut Vec<Action>) {
        let now = self.now;
        let due: Vec<ResId> = self
            .res
            .iter()
            .filter(|(_, r)| r.machine.deadline().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.resource_input(id, ResourceInput::Tick, out);
        }
        for r in self.res.values_mut() {
            r.hooks.tick(now, &r.cfg.name, out);
        }
        if self.shutdown_at.is_some_and(|t| t <= now) {
            log(
                out,
                Level::Warning,
                "Workers or hooks still running at the shutdown deadline; exiting anyway.",
            );
            self.exited = true;
            out.push(Action::Exit);
        }
    }

    /// SIGTERM: every worker is let go, primaries stopping their
    /// resources; the node exits once no worker and no hook is left, or
    /// at the deadline.
    fn terminate(&mut self, out: &mut Vec<Action>) {
        if self.shutdown_at.is_some() {
            return;
        }
        log(out, Level::Notice, "Termination signal received, exiting.");
        let longest = self
            .res
            .values()
            .map(|r| r.cfg.hook_timeout)
            .max()
            .unwrap_or_default();
        self.shutdown_at = Some(self.now + longest * 2 + SHUTDOWN_MARGIN);
        for (id, r) in &mut self.res {
            r.held.clear();
            for w in &mut r.workers {
                w.leaving = true;
                w.must_stop = true;
                out.push(Action::Signal {
                    worker: WorkerRef { res: *id, id: w.id },
                    leave: Leave::StopResource,
                });
            }
        }
    }

    fn check_shutdown(&mut self, out: &mut Vec<Action>) {
        if self.shutdown_at.is_none() || self.exited {
            return;
        }
        let quiet = self
            .res
            .values()
            .all(|r| r.workers.is_empty() && r.hooks.idle());
        if quiet {
            self.exited = true;
            out.push(Action::Exit);
        }
    }

    /// Frees resources removed by a reload once nothing refers to them.
    fn collect_retired(&mut self) {
        let jobs = &self.jobs;
        self.res.retain(|id, r| {
            !(r.retired
                && r.workers.is_empty()
                && r.hooks.idle()
                && r.held.is_empty()
                && r.handoff.is_none()
                && !jobs.values().any(|j| j.worker.res == *id))
        });
    }

    /// The invariants every decision keeps.
    fn check(&self, out: &mut Vec<Action>) {
        for (id, r) in &self.res {
            let current = r.workers.iter().filter(|w| !w.leaving).count();
            invariant!(
                out,
                current <= 1,
                "resource {} has {current} current workers",
                r.cfg.name
            );
            invariant!(
                out,
                r.worker().is_none_or(|w| Some(w.id) == r.machine.worker()),
                "resource {}: the worker the machine knows is not the one running",
                r.cfg.name
            );
            if let Some(h) = r.hooks.running() {
                invariant!(
                    out,
                    self.hook_owner.get(&h) == Some(id),
                    "hook {} of resource {} is not recorded as running",
                    h.0,
                    r.cfg.name
                );
            }
        }
        invariant!(
            out,
            self.hook_owner.len()
                == self
                    .res
                    .values()
                    .filter(|r| r.hooks.running().is_some())
                    .count(),
            "a hook runs for a resource that is gone"
        );
    }

    fn next_hook_id(&mut self) -> HookId {
        let id = HookId(self.next_hook);
        self.next_hook += 1;
        id
    }

    fn next_job_id(&mut self) -> JobId {
        let id = JobId(self.next_job);
        self.next_job += 1;
        id
    }
}

fn log(out: &mut Vec<Action>, level: Level, msg: impl Into<String>) {
    out.push(Action::Log {
        level,
        msg: msg.into(),
        limit: Limit::Never,
    });
}

/// Logs a message that may repeat every heartbeat: rate-limited, by its
/// text or, with `key`, by what makes two of them the same.
fn log_limited(out: &mut Vec<Action>, level: Level, msg: impl Into<String>, key: Option<String>) {
    out.push(Action::Log {
        level,
        msg: msg.into(),
        limit: key.map_or(Limit::Text, Limit::Key),
    });
}

/// The role and state a node reported for the polled resource; an error
/// or a missing entry reads as unreachable, never as a state (Q6).
pub fn poll_outcome(list: &NvList) -> JobOutcome {
    use crate::proto::msg::{StatusOutcome, StatusReply};
    let reply = StatusReply::from_nv(list);
    match (reply.error, reply.entries.first().map(|e| &e.outcome)) {
        (None | Some(0), Some(StatusOutcome::Status(s))) => JobOutcome::Polled {
            role: s.role,
            state: s.worker.as_ref().map_or(State::Unknown, |w| w.state),
        },
        _ => JobOutcome::Failed(ConnectFailure::Unreachable(
            "the remote node answered with an error".into(),
        )),
    }
}

/// The text of a connection failure, for a watchdog or the log.
pub fn failure_text(reason: &ConnectFailure) -> String {
    match reason {
        ConnectFailure::Unreachable(t) | ConnectFailure::Refused(t) => t.clone(),
        ConnectFailure::StrongerPrimary { errmsg, .. } => errmsg.clone(),
    }
}

#[cfg(test)]
mod tests;
