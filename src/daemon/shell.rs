//! The main process's event loop around the node machine: it turns what
//! the poller saw into [`Input`]s and the machine's [`Action`]s into
//! system calls. It decides nothing the machine could.

use std::collections::{HashMap, VecDeque};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::control::{self, ControlServer};
use super::guardian::Guardian;
use super::hooks::{self, Hooks};
use super::inbox::send_sealed;
use super::listen::{self, ListenServer};
use super::outbound::{self, Outbound, Outcome};
use super::procs::{self, Procs};
use super::{Options, peers, reload, secure, workers};
use crate::event::{Event, ExitStatus, Poller, TimerId, Token};
use crate::node::{
    Action, ConnId, HookExit, Input, JobId, JobOutcome, Leave, Limit, ListenInput, NodeMachine,
    ResId, WorkerExit, WorkerRef,
};
use crate::proto::NvList;
use crate::proto::hmac::{Hello, Session, SessionState};
use crate::proto::msg::Token as HandshakeToken;
use crate::role::{Level, Time};
use crate::sys::log;
use crate::worker::msg::{ToMain, ToWorker};
use crate::{log_error, log_warning};

/// The node machine's one timer.
const NODE_TIMER: TimerId = TimerId(4 << 32);
/// While answers to status polls wait for their acknowledgement.
const ACK_TIMER: TimerId = TimerId((4 << 32) + 1);
/// How often those are checked, and for how long at most.
const ACK_CHECK: std::time::Duration = std::time::Duration::from_millis(5);
const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the main process holds around the node machine.
pub struct Shell<'o> {
    opts: &'o Options,
    poller: Poller,
    node: NodeMachine,
    clock: Instant,
    /// The deadline the node timer is armed for.
    armed: Option<Time>,
    procs: Procs,
    hooks: Hooks,
    outbound: Outbound,
    /// Finished handshake jobs' connections, until given to the worker.
    connections: HashMap<JobId, (OwnedFd, OwnedFd, Option<[SessionState; 2]>)>,
    control: Option<ControlServer>,
    listen: ListenServer,
    /// Listen connections the machine keeps for a secondary worker.
    held: HashMap<ConnId, (TcpStream, Option<Session>)>,
    /// Control connections whose answer waits (a role change).
    held_control: HashMap<ConnId, std::os::unix::net::UnixStream>,
    guardian: Guardian,
    pid_fd: Option<RawFd>,
    sandbox: crate::sandbox::Plan,
    /// The configuration whose sockets are open.
    current: crate::config::Config,
    exit: bool,
    /// Inputs that carrying out actions produced.
    pending: VecDeque<Input<'static>>,
    /// Answers to network status polls, until the poller's TCP has
    /// acknowledged them: only then are they contact (the silence rule).
    acks: Vec<(TcpStream, Vec<ResId>, Instant)>,
}

impl<'o> Shell<'o> {
    pub fn new(
        opts: &'o Options,
        control: ControlServer,
        listen: ListenServer,
        pid_fd: Option<RawFd>,
        sandbox: crate::sandbox::Plan,
    ) -> std::io::Result<Shell<'o>> {
        // Forked before anything else exists, so it holds only what
        // `close` leaves it.
        let mut close: Vec<RawFd> = pid_fd.into_iter().collect();
        control.descriptors(&mut close);
        listen.descriptors(&mut close);
        let guardian = Guardian::start(&close)?;
        // Made after daemonizing: a kqueue does not survive fork.
        let mut poller = Poller::new()?;
        poller.watch_process(guardian.pid)?;
        poller.watch_signals(super::SIGNALS)?;
        control.register(&mut poller)?;
        listen.register(&mut poller)?;
        let node = NodeMachine::new(&opts.config, &peers::resolve, Time(0));
        Ok(Shell {
            opts,
            poller,
            node,
            clock: Instant::now(),
            armed: None,
            procs: Procs::default(),
            hooks: Hooks::new(),
            outbound: Outbound::new(),
            connections: HashMap::new(),
            control: Some(control),
            listen,
            held: HashMap::new(),
            held_control: HashMap::new(),
            guardian,
            pid_fd,
            sandbox,
            current: opts.config.clone(),
            exit: false,
            pending: VecDeque::new(),
            acks: Vec::new(),
        })
    }

    fn now(&self) -> Time {
        Time(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Runs the loop until the node machine says exit.
    pub fn run(mut self) -> std::io::Result<()> {
        self.feed(Input::Start);
        let mut events = Vec::new();
        loop {
            let views = self
                .node
                .guardian()
                .map(|g| (g.res.0 as usize, g.primary, g.hook_group, g.cfg));
            self.guardian.update(views);
            if self.exit {
                self.guardian.dismiss();
                self.listen.deregister(&mut self.poller);
                // Everything registered was deregistered before it closed;
                // anything left is a descriptor closed under the poller.
                let left = self.poller.registrations();
                if left > 0 {
                    log_warning!("{left} descriptors were still registered at shutdown.");
                }
                return Ok(());
            }
            self.arm()?;
            self.poller.wait(&mut events, None)?;
            for ev in events.drain(..) {
                self.event(ev);
            }
        }
    }

    /// Keeps the node timer armed for the machine's deadline.
    fn arm(&mut self) -> std::io::Result<()> {
        let deadline = self.node.deadline();
        if deadline == self.armed {
            return Ok(());
        }
        match deadline {
            Some(at) => {
                let wait = at.since(self.now());
                self.poller.set_timer(NODE_TIMER, wait, false)?;
            }
            None => self.poller.cancel_timer(NODE_TIMER)?,
        }
        self.armed = deadline;
        Ok(())
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::Signal(Signal::SIGTERM | Signal::SIGINT) => {
                // No new requests: the socket goes away first.
                if let Some(c) = self.control.take() {
                    c.remove(&mut self.poller);
                }
                self.feed(Input::Terminate);
            }
            Event::Signal(Signal::SIGHUP) => self.reload(),
            Event::Readable(control::LISTENER) => {
                if let Some(c) = self.control.as_mut() {
                    c.accept(&mut self.poller);
                }
            }
            Event::Readable(Token(id)) if control::owns(id) => {
                let request = self
                    .control
                    .as_mut()
                    .and_then(|c| c.read(&mut self.poller, id));
                if let Some(request) = request {
                    let conn = ConnId(id);
                    self.feed(Input::Control {
                        conn,
                        request: &request,
                    });
                }
            }
            Event::Readable(listen::LISTENER) => self.listen.accept(&mut self.poller),
            Event::Readable(Token(id)) if listen::owns(id) => self.listen_readable(id),
            Event::Readable(Token(id)) if hooks::owns(id) => {
                self.hooks.readable(&mut self.poller, id)
            }
            Event::Readable(Token(id)) | Event::Writable(Token(id)) if outbound::owns(id) => {
                if let Some((job, outcome)) = self.outbound.ready(&mut self.poller, id) {
                    self.job_done(job, outcome);
                }
            }
            Event::Readable(Token(id)) if procs::owns(id) => {
                if let Some(worker) = self.procs.by_token(id) {
                    self.drain(worker);
                }
            }
            Event::Timer(ACK_TIMER) => self.check_acks(),
            Event::Timer(NODE_TIMER) => {
                self.armed = None;
                self.feed(Input::Tick);
            }
            Event::Timer(TimerId(id)) if control::owns(id) => {
                if let Some(c) = self.control.as_mut() {
                    c.expire(&mut self.poller, id);
                }
            }
            Event::Timer(TimerId(id)) if listen::owns(id) => {
                self.listen.inbox.expire(&mut self.poller, id)
            }
            Event::Timer(id) if outbound::owns(id.0) => {
                if let Some((job, outcome)) = self.outbound.expired(&mut self.poller, id) {
                    self.job_done(job, outcome);
                }
            }
            Event::ProcessExited { pid, status } if pid == self.guardian.pid => log_error!(
                "The guardian exited ({status:?}): resources will not be stopped should this process die."
            ),
            Event::ProcessExited { pid, status } => self.exited(pid, status),
            _ => {}
        }
    }

    fn reload(&mut self) {
        if self.node.shutting_down() {
            return;
        }
        let reloaded = reload::reload(
            self.opts,
            &mut self.current,
            &mut self.control,
            &mut self.listen,
            &mut self.poller,
        );
        if let Some(new) = reloaded {
            self.feed(Input::Reload {
                config: &new,
                resolve: &peers::resolve,
            });
        }
    }

    fn listen_readable(&mut self, id: u64) {
        let Some(nv) = self.listen.inbox.read(&mut self.poller, id) else {
            return;
        };
        let Some(stream) = self.listen.inbox.get(id) else {
            return;
        };
        let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
            return self.listen.inbox.close(&mut self.poller, id);
        };
        let session = self.listen.inbox.session(id).cloned();
        if session.is_none()
            && let Some(hello) = Hello::from_nv(&nv)
        {
            // The request follows in the session, maybe already buffered.
            if secure::greet(
                &self.node,
                &mut self.poller,
                &mut self.listen,
                id,
                &hello,
                peer,
            ) {
                self.listen_readable(id);
            }
            return;
        }
        let mut token = HandshakeToken::default();
        if let Err(e) = getrandom::fill(&mut token) {
            log_error!("Unable to make a token: {e}.");
            return self.listen.inbox.close(&mut self.poller, id);
        }
        self.feed(Input::Listen(ListenInput {
            conn: ConnId(id),
            peer,
            local,
            nv: &nv,
            session: session.as_ref(),
            wall: peers::unix_now(),
            token,
        }));
    }

    /// Reads everything a worker sent.
    fn drain(&mut self, worker: WorkerRef) {
        loop {
            let Some(ch) = self.procs.channel(worker) else {
                return;
            };
            match ch.recv() {
                Ok(Some((nv, _fds))) => match ToMain::from_nv(&nv) {
                    Some(msg) => self.feed(Input::FromWorker { worker, msg }),
                    None => log_warning!("Ignoring a malformed message from a worker."),
                },
                Ok(None) => return self.procs.close_channel(&mut self.poller, worker),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // A worker that exits with our messages unread resets its
                // end; Linux reports that once, then still delivers what
                // the worker sent before (its last `stop` among them).
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(e) => {
                    log_warning!("Unable to receive from a worker: {e}.");
                    return self.procs.close_channel(&mut self.poller, worker);
                }
            }
        }
    }

    fn job_done(&mut self, job: JobId, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Connected {
                out,
                back,
                sessions,
            } => {
                self.connections.insert(job, (out, back, sessions));
                JobOutcome::Connected
            }
            Outcome::Polled { role, state } => JobOutcome::Polled { role, state },
            Outcome::Complained => JobOutcome::Complained,
            Outcome::Failed(reason) => JobOutcome::Failed(reason),
        };
        self.feed(Input::JobDone { job, outcome });
        // Connections nobody took are closed.
        self.connections.remove(&job);
    }

    /// A child exited: a hook or a worker.
    fn exited(&mut self, pid: Pid, status: ExitStatus) {
        if let Some(hook) = self.hooks.exited(pid) {
            let exit = match status {
                ExitStatus::Exited(c) => HookExit::Exited(c),
                ExitStatus::Signaled(s) => HookExit::Signaled(s),
            };
            return self.feed(Input::HookExited { hook, exit });
        }
        let Some(worker) = self.procs.by_pid(pid) else {
            crate::log_debug!(1, "Unknown process pid={pid}.");
            return;
        };
        // What the worker said last (a primary's `stop`) counts.
        self.drain(worker);
        self.procs.remove(&mut self.poller, worker);
        let exit = match status {
            ExitStatus::Exited(c) => WorkerExit::Code(c),
            ExitStatus::Signaled(s) => WorkerExit::Signal(s),
        };
        self.feed(Input::WorkerExited { worker, exit });
    }

    /// Feeds the node machine, carries out what it decides, and feeds
    /// what that produced in turn.
    fn feed(&mut self, input: Input<'_>) {
        let actions = self.node.handle(self.now(), input);
        self.carry_out(actions);
        while let Some(next) = self.pending.pop_front() {
            let actions = self.node.handle(self.now(), next);
            self.carry_out(actions);
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for a in actions {
            self.act(a);
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Fork {
                worker,
                role,
                urgent,
                primary_heartbeat,
                handoff,
            } => self.fork(worker, role, urgent, primary_heartbeat, handoff),
            Action::Signal { worker, leave } => {
                let signal = match leave {
                    Leave::StopResource => Signal::SIGTERM,
                    Leave::KeepResource => Signal::SIGHUP,
                };
                self.procs.signal(worker, signal);
            }
            Action::ToWorker { worker, msg } => self.procs.send(worker, &msg, &[]),
            Action::GiveConnection {
                worker,
                job,
                remote,
            } => {
                if let Some((out, back, sessions)) = self.connections.remove(&job) {
                    let msg = ToWorker::Connected { remote, sessions };
                    self.procs.send(worker, &msg, &[out.as_fd(), back.as_fd()]);
                }
            }
            Action::Connect { job, request } => {
                if let Some((job, outcome)) = self.outbound.start(&mut self.poller, job, request) {
                    let outcome = match outcome {
                        Outcome::Failed(reason) => JobOutcome::Failed(reason),
                        _ => JobOutcome::Complained,
                    };
                    self.pending.push_back(Input::JobDone { job, outcome });
                }
            }
            Action::CancelJob { job } => {
                self.outbound.cancel(&mut self.poller, job);
                self.connections.remove(&job);
            }
            Action::RunHook { hook, exec, args } => {
                let name = args.get(1).cloned().unwrap_or_default();
                match self
                    .hooks
                    .spawn(&mut self.poller, hook, &name, &exec, &args)
                {
                    Ok(pid) => self.pending.push_back(Input::HookStarted {
                        hook,
                        pid: pid.as_raw(),
                    }),
                    Err(e) => self.pending.push_back(Input::HookExited {
                        hook,
                        exit: HookExit::NotRun(e.to_string()),
                    }),
                }
            }
            Action::SignalHook { hook, kill } => self.hooks.signal(hook, kill),
            Action::Reply { conn, reply } => {
                self.reply(conn, reply);
            }
            Action::ReplyPoll {
                conn,
                reply,
                resources,
            } => {
                let Some((mut stream, mut session)) =
                    self.listen.inbox.take_secure(&mut self.poller, conn.0)
                else {
                    return;
                };
                let sent =
                    reply.is_some_and(|r| send_sealed(&mut stream, session.as_mut(), r, "status"));
                if sent {
                    if self.acks.is_empty()
                        && let Err(e) = self.poller.set_timer(ACK_TIMER, ACK_CHECK, false)
                    {
                        log_error!("Unable to arm a timer: {e}.");
                    }
                    self.acks
                        .push((stream, resources, Instant::now() + ACK_WAIT));
                }
            }
            Action::Hold { conn, reply: None } if control::owns(conn.0) => {
                if let Some(stream) = self
                    .control
                    .as_mut()
                    .and_then(|c| c.take(&mut self.poller, conn.0))
                {
                    self.held_control.insert(conn, stream);
                }
            }
            Action::Hold { conn, reply } => {
                let Some((mut stream, mut session)) =
                    self.listen.inbox.take_secure(&mut self.poller, conn.0)
                else {
                    return;
                };
                if let Some(reply) = reply
                    && !send_sealed(&mut stream, session.as_mut(), reply, "handshake")
                {
                    return;
                }
                self.held.insert(conn, (stream, session));
            }
            Action::Drop { conn } => {
                if self.held.remove(&conn).is_none() {
                    self.listen.inbox.close(&mut self.poller, conn.0);
                }
            }
            Action::Log { level, msg, limit } => say(level, &msg, limit),
            Action::Exit => self.exit = true,
        }
    }

    /// Answers to status polls that the poller's TCP acknowledged are
    /// contact; those not acknowledged in time are dropped.
    fn check_acks(&mut self) {
        let now = Instant::now();
        let mut answered = Vec::new();
        self.acks.retain(|(stream, resources, deadline)| {
            match crate::sys::sockq::unacknowledged(stream.as_fd()) {
                Ok(0) => {
                    answered.extend(resources.iter().copied());
                    false
                }
                Ok(_) => now < *deadline,
                Err(_) => false,
            }
        });
        if !self.acks.is_empty()
            && let Err(e) = self.poller.set_timer(ACK_TIMER, ACK_CHECK, false)
        {
            log_error!("Unable to arm a timer: {e}.");
        }
        if !answered.is_empty() {
            self.feed(Input::PollAnswered {
                resources: answered,
            });
        }
    }

    /// Sends a reply (if any) on a control, listen or held connection and
    /// closes it; true if a reply was sent.
    fn reply(&mut self, conn: ConnId, reply: Option<NvList>) -> bool {
        let id = conn.0;
        if let Some(mut stream) = self.held_control.remove(&conn) {
            return reply.is_some_and(|r| super::inbox::send_now(&mut stream, &r, "control"));
        }
        if control::owns(id) {
            let sent = reply.is_some();
            if let Some(c) = self.control.as_mut() {
                c.reply(&mut self.poller, id, reply);
            }
            return sent;
        }
        let taken = match self.held.remove(&conn) {
            Some(held) => Some(held),
            None => self.listen.inbox.take_secure(&mut self.poller, id),
        };
        let Some((mut stream, mut session)) = taken else {
            return false;
        };
        match reply {
            Some(reply) => send_sealed(&mut stream, session.as_mut(), reply, "listen"),
            None => false,
        }
    }

    fn fork(
        &mut self,
        worker: WorkerRef,
        role: crate::types::Role,
        urgent: bool,
        primary_heartbeat: Option<std::time::Duration>,
        handoff: Option<crate::node::Handoff>,
    ) {
        let Some(cfg) = self.node.get(worker.res).map(|r| r.cfg.clone()) else {
            return;
        };
        let name = cfg.name.clone();
        let conns = match handoff {
            Some(h) => match (self.held.remove(&h.first), self.held.remove(&h.second)) {
                (Some(a), Some(b)) => Some((h.remote, a, b)),
                _ => {
                    log_error!("[{name}] The handshake's connections are gone.");
                    let exit = WorkerExit::Code(crate::exit::SOFTWARE);
                    self.pending.push_back(Input::WorkerExited { worker, exit });
                    return;
                }
            },
            None => None,
        };
        let mut close = self.descriptors();
        if let Some((_, (a, _), (b, _))) = &conns {
            close.extend([a.as_raw_fd(), b.as_raw_fd()]);
        }
        let setup = workers::Spawn {
            resource: &cfg,
            role,
            primary: conns.as_ref().map(|(r, ..)| *r),
            primary_heartbeat,
            urgent,
            debug: self.opts.debug,
            foreground: self.opts.foreground,
            sandbox: self.sandbox.clone(),
        };
        let (pid, channel) = match workers::fork(&close, setup) {
            Ok(p) => p,
            Err(e) => {
                log_error!("[{name}] Unable to start a {role} worker: {e}.");
                let exit = WorkerExit::Code(crate::exit::TEMPFAIL);
                self.pending.push_back(Input::WorkerExited { worker, exit });
                return;
            }
        };
        if let Err(e) = self.procs.add(&mut self.poller, worker, pid, channel) {
            // Killed and reaped: its end takes the usual way (restart or
            // fall back).
            log_error!("[{name}] Unable to watch worker (pid={pid}): {e}; killed it.");
            let exit = WorkerExit::Code(crate::exit::TEMPFAIL);
            self.pending.push_back(Input::WorkerExited { worker, exit });
            return;
        }
        if let Some((remote, (first, s1), (second, s2))) = conns {
            let sessions = match (s1, s2) {
                (Some(a), Some(b)) => Some([a.state(), b.state()]),
                _ => None,
            };
            let msg = ToWorker::Connected { remote, sessions };
            self.procs
                .send(worker, &msg, &[first.as_fd(), second.as_fd()]);
        }
        crate::log_debug!(1, "[{name}] Worker started (pid={pid}, role={role}).");
        self.pending.push_back(Input::WorkerStarted {
            worker,
            pid: pid.as_raw(),
        });
    }

    /// Every descriptor of the main process, for a new worker to close.
    fn descriptors(&self) -> Vec<RawFd> {
        let mut fds: Vec<RawFd> = self
            .pid_fd
            .into_iter()
            .chain([self.guardian.raw_fd()])
            .collect();
        if let Some(c) = &self.control {
            c.descriptors(&mut fds);
        }
        self.listen.descriptors(&mut fds);
        self.poller.descriptors(&mut fds);
        self.hooks.descriptors(&mut fds);
        self.outbound.descriptors(&mut fds);
        self.procs.descriptors(&mut fds);
        fds.extend(self.acks.iter().map(|(s, ..)| s.as_raw_fd()));
        for (out, back, _) in self.connections.values() {
            fds.extend([out.as_raw_fd(), back.as_raw_fd()]);
        }
        fds.extend(self.held.values().map(|(s, _)| s.as_raw_fd()));
        fds.extend(self.held_control.values().map(AsRawFd::as_raw_fd));
        fds
    }
}

/// Says what the node machine wants logged.
fn say(level: Level, msg: &str, limit: Limit) {
    let level = level.to_log();
    match limit {
        Limit::Never => log::log(level, format_args!("{msg}")),
        Limit::Text => log::log_limited(level, None, format_args!("{msg}")),
        Limit::Key(key) => log::log_limited(level, Some(&key), format_args!("{msg}")),
    }
}
