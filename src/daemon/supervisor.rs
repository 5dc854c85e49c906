//! The resources as the main process holds them: each one's
//! [`ResourceMachine`] (role, complaints, handshakes), its worker process,
//! the hooks run for it, and the connections made for its worker. The
//! machine decides; this module forks, signals, runs and connects.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::hooks::{self, Finished, Hooks};
use super::outbound::{self, Outbound, Outcome, Purpose};
use super::{peers, workers};
use crate::config::{Config, Resource};
use crate::event::{ExitStatus, Poller, TimerId, Token};
use crate::proto::hmac::Session;
use crate::proto::msg::HookEvent;
use crate::role::resource::{
    ResourceAction, ResourceConfig, ResourceInput, ResourceMachine, WorkerExit, WorkerId,
};
use crate::role::{ConnectFailure, Level, Report, Time};
use crate::types::Role;
use crate::worker::channel::Channel;
use crate::worker::msg::{ToMain, ToWorker};
use crate::{log_debug, log_error, log_info, log_notice, log_warning};

/// Channel tokens are `WORKER_BASE + n`; the machine deadline of resource
/// `i` is timer `DEADLINE_BASE + i`.
const WORKER_BASE: u64 = 3 << 32;
const DEADLINE_BASE: u64 = 4 << 32;
const DEADLINE_END: u64 = 5 << 32;

/// What the main process hands the supervisor whenever it may fork: its
/// poller, and the descriptors it holds outside the supervisor, which a
/// new worker closes.
pub struct Ctx<'a> {
    pub poller: &'a mut Poller,
    pub outside: Vec<RawFd>,
}

pub struct Worker {
    pub pid: Pid,
    /// The machine's name for it.
    pub id: WorkerId,
    /// Its channel's token.
    token: u64,
    pub role: Role,
    channel: Option<Channel>,
    pub report: Option<Report>,
    /// Let go by the machine: its exit is expected, and nothing new for
    /// the resource starts until it is reaped.
    leaving: bool,
}

pub struct ResourceState {
    pub cfg: Resource,
    pub machine: ResourceMachine,
    /// The current worker, and ones let go but not yet reaped.
    pub workers: Vec<Worker>,
    /// Actions held until every leaving worker is gone, so that a
    /// primary's `stop` runs before the next role's hooks and worker.
    held: VecDeque<ResourceAction>,
    /// Resolved remote addresses, in configuration order.
    pub remotes: Vec<Option<SocketAddr>>,
    /// Resolved friends of this resource (the global ones are the
    /// acceptor's).
    pub friends: Vec<SocketAddr>,
    /// The heartbeat interval the primary being handed over announced in
    /// its handshake (Q22); its secondary measures silence by it.
    pub primary_heartbeat: Option<Duration>,
    /// Removed from the configuration by a reload. The entry stays (hooks,
    /// timers and workers refer to resources by position) but answers to
    /// nobody, and comes back if the resource does.
    pub retired: bool,
    /// A handshake's two connections and the remote they came from, for
    /// the secondary worker about to start.
    handoff: Option<Handoff>,
}

/// The remote, both connections, and their HMAC-SHA256 sessions if the
/// resource's key makes them.
pub type Handoff = (usize, TcpStream, TcpStream, Option<[Session; 2]>);

impl ResourceState {
    pub(super) fn new(r: &Resource) -> ResourceState {
        ResourceState {
            machine: ResourceMachine::new(ResourceConfig::from_resource(r), Time(0)),
            remotes: r.remote.iter().map(peers::resolve).collect(),
            friends: r.friends.iter().filter_map(peers::resolve).collect(),
            retired: false,
            primary_heartbeat: None,
            cfg: r.clone(),
            workers: Vec::new(),
            held: VecDeque::new(),
            handoff: None,
        }
    }

    pub fn worker(&self) -> Option<&Worker> {
        self.workers.iter().find(|w| !w.leaving)
    }
}

pub struct Supervisor {
    pub list: Vec<ResourceState>,
    hooks: Hooks,
    outbound: Outbound,
    next_token: u64,
    clock: Instant,
    debug: u8,
    foreground: bool,
    /// The daemon is exiting: worker exits are no longer decisions.
    shutting_down: bool,
    /// How workers are confined.
    sandbox: crate::sandbox::Plan,
    /// Where outgoing connections come from (see `outbound::Request`).
    source: Option<std::net::IpAddr>,
}

impl Supervisor {
    pub fn new(
        cfg: &Config,
        debug: u8,
        foreground: bool,
        sandbox: crate::sandbox::Plan,
    ) -> Supervisor {
        let clock = Instant::now();
        Supervisor {
            list: cfg.resources.iter().map(ResourceState::new).collect(),
            hooks: Hooks::new(),
            outbound: Outbound::new(),
            next_token: WORKER_BASE,
            clock,
            debug,
            foreground,
            shutting_down: false,
            sandbox,
            source: peers::resolve(&cfg.listen)
                .map(|a| a.ip())
                .filter(|ip| !ip.is_unspecified()),
        }
    }

    /// The position of a configured resource.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.list
            .iter()
            .position(|r| !r.retired && r.cfg.name == name)
    }

    /// The positions of the configured resources, in configuration order.
    pub fn active(&self) -> Vec<usize> {
        (0..self.list.len())
            .filter(|&i| !self.list[i].retired)
            .collect()
    }

    pub fn now(&self) -> Time {
        Time(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Feeds one input to a resource's machine and carries out what it
    /// decides.
    pub fn input(&mut self, ctx: &mut Ctx<'_>, i: usize, input: ResourceInput) {
        let now = self.now();
        let actions = self.list[i].machine.handle(now, input);
        let actions = self.log_repeatable(i, actions);
        self.list[i].held.extend(actions);
        self.run_held(ctx, i);
        let timer = TimerId(DEADLINE_BASE + i as u64);
        match self.list[i].machine.deadline() {
            Some(at) => {
                let _ = ctx.poller.set_timer(timer, at.since(now), false);
            }
            None => {
                let _ = ctx.poller.cancel_timer(timer);
            }
        }
    }

    /// Carries out held actions until one must wait for a leaving worker.
    fn run_held(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        while !self.list[i].workers.iter().any(|w| w.leaving) {
            let Some(action) = self.list[i].held.pop_front() else {
                return;
            };
            self.act(ctx, i, action);
        }
    }

    fn act(&mut self, ctx: &mut Ctx<'_>, i: usize, action: ResourceAction) {
        let name = self.list[i].cfg.name.clone();
        match action {
            ResourceAction::SpawnWorker { id, role, urgent } => {
                self.spawn(ctx, i, id, role, urgent)
            }
            ResourceAction::StopWorker { id, stop_resource } => {
                let signal = match (stop_resource, self.worker_role(i, id)) {
                    (false, Some(Role::Primary)) => Signal::SIGHUP,
                    _ => Signal::SIGTERM,
                };
                self.terminate(i, id, signal);
            }
            ResourceAction::RunRoleHook {
                old,
                new,
                automatic,
            } => {
                if automatic {
                    log_info!("[{name}] Running the role hook for an automatic change.");
                }
                let args = vec!["role".into(), name, old.to_string(), new.to_string()];
                self.hook(ctx.poller, i, args, None);
            }
            ResourceAction::RunComplainHook => {
                self.hook(ctx.poller, i, vec!["complain".into(), name], None);
            }
            // Handshake answers are taken by the acceptor from `answers`.
            ResourceAction::AcceptHandshake | ResourceAction::RefuseHandshake { .. } => {}
            ResourceAction::Log { level, msg } => match level {
                Level::Error => log_error!("[{name}] {msg}"),
                Level::Warning => log_warning!("[{name}] {msg}"),
                Level::Notice => log_notice!("[{name}] {msg}"),
                Level::Info => log_info!("[{name}] {msg}"),
                Level::Debug => log_debug!(1, "[{name}] {msg}"),
            },
        }
    }

    /// Feeds a handshake input and returns the machine's answer to it,
    /// after carrying out everything else it decided. `None`: accepted.
    pub fn handshake(
        &mut self,
        ctx: &mut Ctx<'_>,
        i: usize,
        input: ResourceInput,
    ) -> Option<(String, Option<i32>)> {
        let now = self.now();
        let actions = self.list[i].machine.handle(now, input);
        let mut answer = Some((crate::proto::msg::errmsg::NO_ACCESS.to_string(), None));
        for a in &actions {
            match a {
                ResourceAction::AcceptHandshake => answer = None,
                ResourceAction::RefuseHandshake { errmsg, priority } => {
                    answer = Some((errmsg.clone(), *priority));
                }
                _ => {}
            }
        }
        let actions = self.log_repeatable(i, actions);
        self.list[i].held.extend(actions);
        self.run_held(ctx, i);
        answer
    }

    /// Logs now, rate-limited, what the machine says about a decision that
    /// leaves the role as it is (a refused handshake, which a remote
    /// retries every heartbeat); returns the other actions. A role change
    /// is logged in full and in order, each time.
    fn log_repeatable(&self, i: usize, actions: Vec<ResourceAction>) -> Vec<ResourceAction> {
        let changes_role = actions
            .iter()
            .any(|a| matches!(a, ResourceAction::RunRoleHook { .. }));
        if changes_role {
            return actions;
        }
        let name = &self.list[i].cfg.name;
        actions
            .into_iter()
            .filter(|a| match a {
                ResourceAction::Log { level, msg }
                    if matches!(level, Level::Error | Level::Warning | Level::Notice) =>
                {
                    crate::worker::log_decision(*level, &format!("[{name}] {msg}"));
                    false
                }
                _ => true,
            })
            .collect()
    }

    /// Keeps a completed handshake's connections for the secondary worker
    /// the machine is about to start.
    pub fn hand_off(
        &mut self,
        i: usize,
        remote: usize,
        first: TcpStream,
        second: TcpStream,
        sessions: Option<[Session; 2]>,
    ) {
        self.list[i].handoff = Some((remote, first, second, sessions));
    }

    /// Takes back the connections of a refused stage 2.
    pub fn take_handoff(&mut self, i: usize) -> Option<Handoff> {
        self.list[i].handoff.take()
    }

    /// Applies `role_on_start` to every resource, in configuration order.
    pub fn set_initial_roles(&mut self, ctx: &mut Ctx<'_>) {
        for i in 0..self.list.len() {
            self.input(ctx, i, ResourceInput::Start);
        }
    }

    /// An operator's role change; returns the role the resource had.
    pub fn set_role(&mut self, ctx: &mut Ctx<'_>, i: usize, role: Role) -> Role {
        let old = self.list[i].machine.role();
        self.input(ctx, i, ResourceInput::SetRole(role));
        old
    }

    fn worker_role(&self, i: usize, id: WorkerId) -> Option<Role> {
        self.list[i]
            .workers
            .iter()
            .find(|w| w.id == id)
            .map(|w| w.role)
    }

    fn hook(
        &mut self,
        poller: &mut Poller,
        i: usize,
        args: Vec<String>,
        caller: Option<(u64, HookEvent)>,
    ) {
        let c = &self.list[i].cfg;
        let req = hooks::Request {
            resource: i,
            name: c.name.clone(),
            exec: c.exec.clone().into(),
            timeout: c.hook_timeout,
            args,
            caller,
        };
        let done = self.hooks.request(poller, req);
        self.deliver(done);
    }

    /// Forks a worker. A secondary's connections follow on its channel.
    fn spawn(&mut self, ctx: &mut Ctx<'_>, i: usize, id: WorkerId, role: Role, urgent: bool) {
        let name = self.list[i].cfg.name.clone();
        let handoff = if role == Role::Secondary {
            match self.list[i].handoff.take() {
                Some(h) => Some(h),
                None => {
                    log_error!("[{name}] No connections for the secondary worker.");
                    return self.input(ctx, i, exited(id, WorkerExit::Code(crate::exit::SOFTWARE)));
                }
            }
        } else {
            None
        };
        let mut close = ctx.outside.clone();
        ctx.poller.descriptors(&mut close);
        self.hooks.descriptors(&mut close);
        self.outbound.descriptors(&mut close);
        for r in &self.list {
            for w in &r.workers {
                close.extend(w.channel.as_ref().map(Channel::raw_fd));
            }
            if let Some((_, a, b, _)) = &r.handoff {
                close.extend([
                    std::os::fd::AsRawFd::as_raw_fd(a),
                    std::os::fd::AsRawFd::as_raw_fd(b),
                ]);
            }
        }
        if let Some((_, a, b, _)) = &handoff {
            close.extend([
                std::os::fd::AsRawFd::as_raw_fd(a),
                std::os::fd::AsRawFd::as_raw_fd(b),
            ]);
        }
        let setup = workers::Spawn {
            resource: &self.list[i].cfg,
            role,
            primary: handoff.as_ref().map(|(r, ..)| *r),
            primary_heartbeat: self.list[i].primary_heartbeat,
            urgent,
            debug: self.debug,
            foreground: self.foreground,
            sandbox: self.sandbox.clone(),
        };
        let (pid, channel) = match workers::fork(&close, setup) {
            Ok(p) => p,
            Err(e) => {
                log_error!("[{name}] Unable to start a {role} worker: {e}.");
                return self.input(ctx, i, exited(id, WorkerExit::Code(crate::exit::TEMPFAIL)));
            }
        };
        let token = self.next_token;
        self.next_token = if token + 1 >= DEADLINE_BASE {
            WORKER_BASE
        } else {
            token + 1
        };
        if let Err(e) = workers::watch(ctx.poller, &channel, Token(token), pid) {
            // Unwatched, its exit would never be seen: end it now, and let
            // the exit take the usual way (restart or fall back).
            log_error!("[{name}] Unable to watch worker (pid={pid}): {e}; killing it.");
            return self.input(ctx, i, exited(id, WorkerExit::Code(crate::exit::TEMPFAIL)));
        }
        if let Some((remote, first, second, sessions)) = handoff {
            let sessions = sessions.map(|s| s.map(|s| s.state()));
            let msg = ToWorker::Connected { remote, sessions }.to_nv();
            if let Err(e) = channel.send(&msg, &[first.as_fd(), second.as_fd()]) {
                log_error!("[{name}] Unable to hand the connections to the worker: {e}.");
            }
        }
        log_debug!(1, "[{name}] Worker started (pid={pid}, role={role}).");
        self.list[i].workers.push(Worker {
            pid,
            id,
            token,
            role,
            channel: Some(channel),
            report: None,
            leaving: false,
        });
    }

    fn terminate(&mut self, i: usize, id: WorkerId, signal: Signal) {
        let r = &mut self.list[i];
        let Some(w) = r.workers.iter_mut().find(|w| w.id == id) else {
            return;
        };
        log_notice!(
            "[{}] Terminating worker process (role={}, pid={}).",
            r.cfg.name,
            w.role,
            w.pid
        );
        w.leaving = true;
        if let Err(e) = kill(w.pid, signal) {
            log_warning!(
                "[{}] Unable to signal worker (pid={}): {e}.",
                r.cfg.name,
                w.pid
            );
        }
    }

    /// Terminates every worker (daemon shutdown); primaries stop their
    /// resources on the way out.
    pub fn terminate_all(&mut self) {
        self.shutting_down = true;
        for i in 0..self.list.len() {
            let ids: Vec<WorkerId> = self.list[i].workers.iter().map(|w| w.id).collect();
            for id in ids {
                self.terminate(i, id, Signal::SIGTERM);
            }
        }
    }

    /// The last run of each hook event of resource `i`, for `status -j`.
    pub fn hook_runs(&self, i: usize) -> impl Iterator<Item = (&str, &hooks::LastRun)> {
        self.hooks.last_runs(&self.list[i].cfg.name)
    }

    /// What the guardian must know of each resource: whether it must be
    /// stopped should this process die (primary, a primary worker not yet
    /// gone, or a `stop` still owed), and the hook to kill first.
    pub fn guardian_state(&self) -> impl Iterator<Item = (usize, bool, Option<i32>, &Resource)> {
        self.list.iter().enumerate().map(|(i, r)| {
            let primary = r.machine.role() == Role::Primary
                || r.workers.iter().any(|w| w.role == Role::Primary)
                || self.hooks.owes_stop(i);
            (i, primary, self.hooks.running_group(i), &r.cfg)
        })
    }

    pub fn longest_hook_timeout(&self) -> Duration {
        self.list
            .iter()
            .map(|r| r.cfg.hook_timeout)
            .max()
            .unwrap_or_default()
    }

    /// True once no worker and no hook is left.
    pub fn quiet(&self) -> bool {
        self.list.iter().all(|r| r.workers.is_empty()) && self.hooks.idle()
    }

    /// Routes a readable token of ours.
    pub fn readable(&mut self, ctx: &mut Ctx<'_>, id: u64) {
        if hooks::owns(id) {
            return self.hooks.readable(ctx.poller, id);
        }
        if outbound::owns(id) {
            if let Some((req, outcome)) = self.outbound.ready(ctx.poller, id) {
                self.outbound_done(ctx, req, outcome);
            }
            return;
        }
        let Some((i, w)) = self.by_token(id) else {
            return;
        };
        loop {
            let Some(ch) = self.list[i].workers[w].channel.as_ref() else {
                return;
            };
            match ch.recv() {
                Ok(Some((nv, _fds))) => match ToMain::from_nv(&nv) {
                    Some(msg) => self.worker_said(ctx, i, w, msg),
                    None => log_warning!(
                        "[{}] Ignoring a malformed message from the worker.",
                        self.list[i].cfg.name
                    ),
                },
                Ok(None) => return self.close_channel(ctx.poller, i, w),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log_warning!(
                        "[{}] Unable to receive from the worker: {e}.",
                        self.list[i].cfg.name
                    );
                    return self.close_channel(ctx.poller, i, w);
                }
            }
        }
    }

    fn by_token(&self, token: u64) -> Option<(usize, usize)> {
        self.list.iter().enumerate().find_map(|(i, r)| {
            let w = r.workers.iter().position(|w| w.token == token)?;
            Some((i, w))
        })
    }

    fn close_channel(&mut self, poller: &mut Poller, i: usize, w: usize) {
        if let Some(ch) = self.list[i].workers[w].channel.take() {
            let _ = poller.deregister(ch.as_fd());
        }
    }

    fn worker_said(&mut self, ctx: &mut Ctx<'_>, i: usize, w: usize, msg: ToMain) {
        let token = self.list[i].workers[w].token;
        let remote_req = |sup: &Supervisor, remote: usize, purpose: Purpose| {
            let r = &sup.list[i];
            Some(outbound::Request {
                resource: i,
                name: r.cfg.name.clone(),
                worker: token,
                remote,
                addr: (*r.remotes.get(remote)?)?,
                source: sup.source,
                key: r.cfg.key.clone(),
                timeout: r.cfg.timeout,
                purpose,
            })
        };
        match msg {
            ToMain::RunHook(event) => {
                let args = vec![hook_word(event).to_string(), self.list[i].cfg.name.clone()];
                self.hook(ctx.poller, i, args, Some((token, event)));
            }
            // The report's times are the worker's; kept on our clock.
            ToMain::Report { report, at } => {
                self.list[i].workers[w].report = Some(report.rebase(at, self.now()));
            }
            ToMain::Connect { remote } => {
                let c = &self.list[i].cfg;
                let priority = i32::try_from(c.priority).unwrap_or(i32::MAX);
                let heartbeat_ms =
                    u32::try_from(c.heartbeat_interval.as_millis()).unwrap_or(u32::MAX);
                let purpose = Purpose::Handshake {
                    priority,
                    heartbeat_ms,
                };
                match remote_req(self, remote, purpose) {
                    Some(req) => self.connect(ctx, req),
                    None => {
                        let reason =
                            ConnectFailure::Unreachable("the address does not resolve".into());
                        self.send(i, token, &ToWorker::ConnectFailed { remote, reason }, &[]);
                    }
                }
            }
            ToMain::Poll { remote } => {
                self.outbound.cancel_poll(ctx.poller, token, remote);
                match remote_req(self, remote, Purpose::Poll) {
                    Some(req) => self.connect(ctx, req),
                    None => {
                        let result = Err("the address does not resolve".into());
                        self.send(i, token, &ToWorker::PollResult { remote, result }, &[]);
                    }
                }
            }
            ToMain::Complain { remote } => {
                if let Some(req) = remote_req(self, remote, Purpose::Complain) {
                    self.connect(ctx, req);
                }
                self.input(ctx, i, ResourceInput::ComplaintSent);
            }
        }
    }

    fn connect(&mut self, ctx: &mut Ctx<'_>, req: outbound::Request) {
        if let Some((req, outcome)) = self.outbound.start(ctx.poller, req) {
            self.outbound_done(ctx, req, outcome);
        }
    }

    /// Gives a finished outgoing job's result to the worker that asked.
    fn outbound_done(&mut self, ctx: &mut Ctx<'_>, req: outbound::Request, outcome: Outcome) {
        let (i, remote, token) = (req.resource, req.remote, req.worker);
        let addr = self.list[i].cfg.remote[remote].to_string();
        match (req.purpose, outcome) {
            (
                _,
                Outcome::Connected {
                    out,
                    back,
                    sessions,
                },
            ) => {
                let fds: [&OwnedFd; 2] = [&out, &back];
                let fds = fds.map(|f| f.as_fd());
                let msg = ToWorker::Connected { remote, sessions };
                self.send(i, token, &msg, &fds);
            }
            (Purpose::Handshake { .. }, Outcome::Failed(reason)) => {
                self.send(i, token, &ToWorker::ConnectFailed { remote, reason }, &[]);
            }
            (Purpose::Poll, Outcome::Polled { role, state }) => {
                let result = Ok((role, state));
                self.send(i, token, &ToWorker::PollResult { remote, result }, &[]);
            }
            (Purpose::Poll, Outcome::Failed(reason)) => {
                let result = Err(failure_text(&reason));
                self.send(i, token, &ToWorker::PollResult { remote, result }, &[]);
            }
            (Purpose::Complain, Outcome::Failed(reason)) => crate::log_limited!(
                Warning,
                "[{}] Unable to send a complaint to {addr}: {}.",
                self.list[i].cfg.name,
                failure_text(&reason)
            ),
            _ => {}
        }
        let _ = ctx;
    }

    pub fn expired(&mut self, ctx: &mut Ctx<'_>, id: TimerId) {
        if hooks::owns(id.0) {
            return self.hooks.timer(ctx.poller, id);
        }
        if outbound::owns(id.0) {
            if let Some((req, outcome)) = self.outbound.expired(ctx.poller, id) {
                self.outbound_done(ctx, req, outcome);
            }
            return;
        }
        if (DEADLINE_BASE..DEADLINE_END).contains(&id.0) {
            let i = (id.0 - DEADLINE_BASE) as usize;
            if i < self.list.len() {
                self.input(ctx, i, ResourceInput::Tick);
            }
        }
    }

    /// Tells workers how their hooks ended.
    fn deliver(&mut self, done: Vec<Finished>) {
        for f in done {
            let msg = ToWorker::HookDone {
                event: f.event,
                result: f.result,
            };
            self.send(f.resource, f.caller, &msg, &[]);
        }
    }

    /// Sends to the worker with channel token `token`, if it is still
    /// there.
    fn send(&mut self, i: usize, token: u64, msg: &ToWorker, fds: &[std::os::fd::BorrowedFd<'_>]) {
        let r = &self.list[i];
        let Some(w) = r.workers.iter().find(|w| w.token == token) else {
            return;
        };
        let Some(ch) = w.channel.as_ref() else { return };
        if let Err(e) = ch.send(&msg.to_nv(), fds) {
            // A worker that stopped reading is stuck; it is replaced.
            log_error!(
                "[{}] Unable to send to the worker (pid={}): {e}.",
                r.cfg.name,
                w.pid
            );
            let _ = kill(w.pid, Signal::SIGKILL);
        }
    }

    /// Tells the resource's current worker that it was asked for its
    /// status (over the network when `remote`).
    pub fn polled(&mut self, i: usize, remote: bool) {
        if let Some(token) = self.list[i].worker().map(|w| w.token) {
            self.send(i, token, &ToWorker::Polled { remote }, &[]);
        }
    }

    /// A child exited: a hook or a worker.
    pub fn exited(&mut self, ctx: &mut Ctx<'_>, pid: Pid, status: ExitStatus) {
        if let Some(done) = self.hooks.exited(ctx.poller, pid, status) {
            return self.deliver(done);
        }
        let Some((i, w)) = self
            .list
            .iter()
            .enumerate()
            .find_map(|(i, r)| Some((i, r.workers.iter().position(|w| w.pid == pid)?)))
        else {
            log_debug!(1, "Unknown process pid={pid}.");
            return;
        };
        // What the worker said last (a primary's `stop`) counts.
        let token = self.list[i].workers[w].token;
        self.readable(ctx, token);
        let Some(w) = self.list[i].workers.iter().position(|x| x.token == token) else {
            return;
        };
        self.close_channel(ctx.poller, i, w);
        let worker = self.list[i].workers.remove(w);
        self.hooks.forget_caller(worker.token);
        self.outbound.forget_worker(ctx.poller, worker.token);
        let name = self.list[i].cfg.name.clone();
        let how = match status {
            ExitStatus::Exited(0) => {
                log_debug!(1, "[{name}] Worker process exited gracefully (pid={pid}).");
                WorkerExit::Code(0)
            }
            ExitStatus::Exited(c) => {
                log_error!(
                    "[{name}] Worker process exited ungracefully (pid={pid}, exitcode={c})."
                );
                WorkerExit::Code(c)
            }
            ExitStatus::Signaled(s) => {
                log_error!("[{name}] Worker process killed (pid={pid}, signal={s}).");
                WorkerExit::Signal(s)
            }
        };
        if !self.shutting_down {
            self.input(ctx, i, exited(worker.id, how));
        }
    }
}

fn exited(id: WorkerId, exit: WorkerExit) -> ResourceInput {
    ResourceInput::WorkerExited { id, exit }
}

fn failure_text(reason: &ConnectFailure) -> String {
    match reason {
        ConnectFailure::Unreachable(t) | ConnectFailure::Refused(t) => t.clone(),
        ConnectFailure::StrongerPrimary { errmsg, .. } => errmsg.clone(),
    }
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
