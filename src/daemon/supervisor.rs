//! The resources as the main process holds them: each one's role, its
//! worker, and the hooks run for it. Role changes, worker exits and hook
//! results meet here.

use std::os::fd::{AsFd, RawFd};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::hooks::{self, Finished, Hooks};
use super::workers;
use crate::config::{Config, Resource};
use crate::event::{ExitStatus, Interest, Poller, TimerId, Token};
use crate::proto::msg::HookEvent;
use crate::role::{ConnectFailure, Report};
use crate::types::Role;
use crate::worker::channel::Channel;
use crate::worker::msg::{ToMain, ToWorker};
use crate::{exit, log_debug, log_error, log_notice, log_warning};

/// Channel tokens are `WORKER_BASE + worker id`; the restart timer of
/// resource `i` is `RESTART_BASE + i`.
const WORKER_BASE: u64 = 3 << 32;
const RESTART_BASE: u64 = 4 << 32;
const RESTART_END: u64 = 5 << 32;
/// A crashed worker is started again after this long (roles.md §1.8), on
/// a timer rather than 0.3.4's blocking sleep.
const RESTART_DELAY: Duration = Duration::from_secs(1);

pub fn owns(id: u64) -> bool {
    (WORKER_BASE..RESTART_END).contains(&id)
}

/// What the main process must hand the supervisor whenever it may fork:
/// its poller, and the descriptors it holds outside the supervisor, which
/// a new worker closes.
pub struct Ctx<'a> {
    pub poller: &'a mut Poller,
    pub outside: Vec<RawFd>,
}

pub struct Worker {
    pub pid: Pid,
    pub id: u64,
    pub role: Role,
    channel: Option<Channel>,
    pub report: Option<Report>,
    /// Sent SIGTERM (or SIGINT) by us: its exit is expected.
    terminating: bool,
}

pub struct ResourceState {
    pub cfg: Resource,
    pub role: Role,
    /// Where a primary or watchdog returns when its worker gives up.
    pub previous: Role,
    pub worker: Option<Worker>,
    /// A role change waiting for the old worker to be gone: the role it
    /// came from, for the `role` hook.
    changing_from: Option<Role>,
}

pub struct Supervisor {
    pub list: Vec<ResourceState>,
    hooks: Hooks,
    next_worker: u64,
    debug: u8,
    foreground: bool,
}

impl Supervisor {
    pub fn new(cfg: &Config, debug: u8, foreground: bool) -> Supervisor {
        Supervisor {
            list: cfg
                .resources
                .iter()
                .map(|r| ResourceState {
                    cfg: r.clone(),
                    role: Role::Init,
                    previous: Role::Init,
                    worker: None,
                    changing_from: None,
                })
                .collect(),
            hooks: Hooks::new(),
            next_worker: WORKER_BASE,
            debug,
            foreground,
        }
    }

    /// Applies `role_on_start` to every resource, in configuration order.
    pub fn set_initial_roles(&mut self, ctx: &mut Ctx<'_>) {
        for i in 0..self.list.len() {
            let role = self.list[i].cfg.role_on_start;
            log_notice!("[{}] Role set to {role}.", self.list[i].cfg.name);
            if role != Role::Init {
                self.list[i].role = role;
                self.start_worker(ctx, i);
                self.run_role_hook(ctx.poller, i, Role::Init, role);
            }
        }
    }

    /// An operator's role change; returns the role the resource had.
    pub fn set_role(&mut self, ctx: &mut Ctx<'_>, i: usize, role: Role) -> Role {
        let r = &mut self.list[i];
        let old = r.role;
        if old == role {
            log_debug!(2, "[{}] ({old}) Role unchanged.", r.cfg.name);
            return old;
        }
        log_notice!("[{}] ({old}) Role changed to {role}.", r.cfg.name);
        r.role = role;
        // The role hook and the new worker wait until the old worker is
        // gone, so a primary's `stop` comes first.
        if r.changing_from.is_none() {
            r.changing_from = Some(old);
        }
        if r.worker.is_some() {
            self.terminate(ctx.poller, i, Signal::SIGTERM);
        } else {
            self.finish_change(ctx, i);
        }
        old
    }

    /// The old worker is gone: start the new role's worker, then run the
    /// `role` hook.
    fn finish_change(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let Some(old) = self.list[i].changing_from.take() else {
            return;
        };
        let new = self.list[i].role;
        if new == old {
            return;
        }
        self.start_worker(ctx, i);
        self.run_role_hook(ctx.poller, i, old, new);
    }

    fn run_role_hook(&mut self, poller: &mut Poller, i: usize, old: Role, new: Role) {
        let r = &self.list[i];
        let args = vec![
            "role".to_string(),
            r.cfg.name.clone(),
            old.to_string(),
            new.to_string(),
        ];
        let req = self.hook_request(i, args, None);
        let done = self.hooks.request(poller, req);
        self.deliver(done);
    }

    fn hook_request(
        &self,
        i: usize,
        args: Vec<String>,
        caller: Option<(u64, HookEvent)>,
    ) -> hooks::Request {
        let c = &self.list[i].cfg;
        hooks::Request {
            resource: i,
            name: c.name.clone(),
            exec: c.exec.clone().into(),
            timeout: c.hook_timeout,
            args,
            caller,
        }
    }

    /// Forks the worker of the resource's role, if that role has one.
    fn start_worker(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let role = self.list[i].role;
        if !workers::has_worker(role) || self.list[i].worker.is_some() {
            return;
        }
        let mut close = ctx.outside.clone();
        ctx.poller.descriptors(&mut close);
        self.hooks.descriptors(&mut close);
        for w in self.list.iter().filter_map(|r| r.worker.as_ref()) {
            close.extend(w.channel.as_ref().map(Channel::raw_fd));
        }
        let spawned = workers::fork(&close, &self.list[i].cfg, role, self.debug, self.foreground);
        let (pid, channel) = match spawned {
            Ok(p) => p,
            Err(e) => {
                log_error!(
                    "[{}] Unable to start a {role} worker: {e}.",
                    self.list[i].cfg.name
                );
                self.schedule_restart(ctx.poller, i);
                return;
            }
        };
        let id = self.next_worker;
        self.next_worker = if id + 1 >= RESTART_BASE {
            WORKER_BASE
        } else {
            id + 1
        };
        let watched = ctx
            .poller
            .register(channel.as_fd(), Token(id), Interest::Read)
            .and_then(|()| ctx.poller.watch_process(pid));
        if let Err(e) = watched {
            log_error!(
                "[{}] Unable to watch worker (pid={pid}): {e}.",
                self.list[i].cfg.name
            );
        }
        log_debug!(
            1,
            "[{}] Worker started (pid={pid}, role={role}).",
            self.list[i].cfg.name
        );
        self.list[i].worker = Some(Worker {
            pid,
            id,
            role,
            channel: Some(channel),
            report: None,
            terminating: false,
        });
    }

    fn terminate(&mut self, poller: &mut Poller, i: usize, signal: Signal) {
        let r = &mut self.list[i];
        let Some(w) = r.worker.as_mut() else { return };
        log_notice!(
            "[{}] Terminating worker process (role={}, pid={}).",
            r.cfg.name,
            w.role,
            w.pid
        );
        w.terminating = true;
        if let Err(e) = kill(w.pid, signal) {
            log_warning!(
                "[{}] Unable to signal worker (pid={}): {e}.",
                r.cfg.name,
                w.pid
            );
        }
        let _ = poller;
    }

    /// Terminates every worker (daemon shutdown).
    pub fn terminate_all(&mut self, poller: &mut Poller) {
        for i in 0..self.list.len() {
            self.terminate(poller, i, Signal::SIGTERM);
        }
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
        self.list.iter().all(|r| r.worker.is_none()) && self.hooks.idle()
    }

    /// Routes a poller event on one of our tokens or timers.
    pub fn readable(&mut self, ctx: &mut Ctx<'_>, id: u64) {
        if hooks::owns(id) {
            self.hooks.readable(ctx.poller, id);
            return;
        }
        let Some(i) = self.by_worker(id) else { return };
        loop {
            let Some(ch) = self.list[i]
                .worker
                .as_ref()
                .and_then(|w| w.channel.as_ref())
            else {
                return;
            };
            match ch.recv() {
                Ok(Some((nv, _fds))) => match ToMain::from_nv(&nv) {
                    Some(msg) => self.worker_said(ctx, i, id, msg),
                    None => log_warning!(
                        "[{}] Ignoring a malformed message from the worker.",
                        self.list[i].cfg.name
                    ),
                },
                Ok(None) => {
                    self.close_channel(ctx.poller, i);
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log_warning!(
                        "[{}] Unable to receive from the worker: {e}.",
                        self.list[i].cfg.name
                    );
                    self.close_channel(ctx.poller, i);
                    return;
                }
            }
        }
    }

    fn by_worker(&self, id: u64) -> Option<usize> {
        self.list
            .iter()
            .position(|r| r.worker.as_ref().is_some_and(|w| w.id == id))
    }

    fn close_channel(&mut self, poller: &mut Poller, i: usize) {
        if let Some(ch) = self.list[i].worker.as_mut().and_then(|w| w.channel.take()) {
            let _ = poller.deregister(ch.as_fd());
        }
    }

    fn worker_said(&mut self, ctx: &mut Ctx<'_>, i: usize, id: u64, msg: ToMain) {
        match msg {
            ToMain::RunHook(event) => {
                let args = vec![hook_word(event).to_string(), self.list[i].cfg.name.clone()];
                let req = self.hook_request(i, args, Some((id, event)));
                let done = self.hooks.request(ctx.poller, req);
                self.deliver(done);
            }
            ToMain::Report(report) => {
                if let Some(w) = self.list[i].worker.as_mut() {
                    w.report = Some(report);
                }
            }
            ToMain::Connect { remote } => {
                // Outgoing connections come with the failover protocol.
                let reason =
                    ConnectFailure::Unreachable("outgoing connections are not available".into());
                self.send(i, &ToWorker::ConnectFailed { remote, reason });
            }
        }
    }

    /// Tells workers how their hooks ended.
    fn deliver(&mut self, done: Vec<Finished>) {
        for f in done {
            let current = self.list[f.resource]
                .worker
                .as_ref()
                .is_some_and(|w| w.id == f.caller);
            if current {
                self.send(
                    f.resource,
                    &ToWorker::HookDone {
                        event: f.event,
                        result: f.result,
                    },
                );
            }
        }
    }

    fn send(&mut self, i: usize, msg: &ToWorker) {
        let r = &self.list[i];
        let Some(w) = r.worker.as_ref() else { return };
        let Some(ch) = w.channel.as_ref() else { return };
        if let Err(e) = ch.send(&msg.to_nv(), &[]) {
            // A worker that stopped reading is stuck; it is replaced.
            log_error!(
                "[{}] Unable to send to the worker (pid={}): {e}.",
                r.cfg.name,
                w.pid
            );
            let _ = kill(w.pid, Signal::SIGKILL);
        }
    }

    /// A child exited: a hook or a worker.
    pub fn exited(&mut self, ctx: &mut Ctx<'_>, pid: Pid, status: ExitStatus) {
        if let Some(done) = self.hooks.exited(ctx.poller, pid, status) {
            self.deliver(done);
            return;
        }
        let Some(i) = self
            .list
            .iter()
            .position(|r| r.worker.as_ref().is_some_and(|w| w.pid == pid))
        else {
            log_debug!(1, "Unknown process pid={pid}.");
            return;
        };
        // Drain what the worker said last (a primary's `stop`) before
        // forgetting it.
        if let Some(id) = self.list[i].worker.as_ref().map(|w| w.id) {
            self.readable(ctx, id);
        }
        self.close_channel(ctx.poller, i);
        let Some(w) = self.list[i].worker.take() else {
            return;
        };
        self.hooks.forget_caller(w.id);
        let name = self.list[i].cfg.name.clone();
        match status {
            ExitStatus::Exited(0) => {
                log_debug!(1, "[{name}] Worker process exited gracefully (pid={pid}).")
            }
            ExitStatus::Exited(c) => {
                log_error!("[{name}] Worker process exited ungracefully (pid={pid}, exitcode={c}).")
            }
            ExitStatus::Signaled(s) => {
                log_error!("[{name}] Worker process killed (pid={pid}, signal={s}).")
            }
        }
        if w.terminating {
            self.finish_change(ctx, i);
            return;
        }
        let r = &mut self.list[i];
        match (w.role, status) {
            (Role::Primary | Role::Watchdog, ExitStatus::Signaled(_))
            | (Role::Primary | Role::Watchdog, ExitStatus::Exited(exit::TEMPFAIL)) => {
                self.schedule_restart(ctx.poller, i);
            }
            (Role::Primary | Role::Watchdog, _) => {
                log_notice!("[{name}] Changing resource role back to {}.", r.previous);
                r.role = r.previous;
            }
            _ => {}
        }
    }

    fn schedule_restart(&mut self, poller: &mut Poller, i: usize) {
        if let Err(e) = poller.set_timer(TimerId(RESTART_BASE + i as u64), RESTART_DELAY, false) {
            log_error!(
                "[{}] Unable to schedule a worker restart: {e}.",
                self.list[i].cfg.name
            );
        }
    }

    pub fn timer(&mut self, ctx: &mut Ctx<'_>, id: TimerId) {
        if hooks::owns(id.0) {
            self.hooks.timer(ctx.poller, id);
            return;
        }
        if (RESTART_BASE..RESTART_END).contains(&id.0) {
            let i = (id.0 - RESTART_BASE) as usize;
            if i < self.list.len() && self.list[i].worker.is_none() {
                log_notice!("[{}] Restarting worker process.", self.list[i].cfg.name);
                self.start_worker(ctx, i);
            }
        }
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
