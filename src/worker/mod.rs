//! A worker process: one resource in one role, forked by the main
//! process. It runs one event loop around its role machine: the machine
//! decides, this module carries the decisions out over the channel to the
//! main process (hooks, connections) and turns signals, timers and channel
//! messages into the machine's inputs.

pub mod channel;
mod links;
pub mod msg;
#[cfg(feature = "sandbox-probe")]
mod probe;

use std::collections::VecDeque;
use std::os::fd::AsFd;

use nix::sys::signal::Signal;

use crate::config::Resource;
use crate::event::{Event, Interest, Poller, TimerId, Token};
use crate::proto::hmac::{Session, SessionState};
use crate::proto::msg::{Handshake2Confirm, HeartbeatReply, HeartbeatRequest};
use crate::role::{Action, Input, Level, Report, Time};
use crate::role::{RoleMachine, WorkerSetup};
use crate::types::Role;
use crate::{exit, log_error, log_warning};
use channel::Channel;
use links::{Links, Received};
use msg::{ToMain, ToWorker};

const CHANNEL: Token = Token(1);
const DEADLINE: TimerId = TimerId(1);
#[cfg(not(feature = "sandbox-probe"))]
const SIGNALS: &[Signal] = &[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];
/// Test builds also take SIGUSR1: "try what the sandbox forbids".
#[cfg(feature = "sandbox-probe")]
const SIGNALS: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
];

pub struct Setup {
    pub resource: Resource,
    pub role: Role,
    /// For a secondary: which remote is the primary it serves. Its two
    /// connections follow as the first message on the channel.
    pub primary: Option<usize>,
    /// For a secondary: the heartbeat interval its primary announced.
    pub primary_heartbeat: Option<std::time::Duration>,
    /// A promoted primary: checks and starts at once (doc/quirks.md Q56).
    pub urgent: bool,
    pub channel: Channel,
    pub debug: u8,
    pub foreground: bool,
    pub use_syslog: bool,
    pub sandbox: crate::sandbox::Plan,
}

/// Runs the worker; returns its exit code. The caller has closed every
/// descriptor of the main process except the standard ones, the syslog
/// connection, and this worker's channel.
pub fn run(setup: Setup) -> i32 {
    let name = &setup.resource.name;
    crate::sys::proctitle::set(&format!("{name} ({})", setup.role));
    // Checked before our own syslog connection exists, so that anything
    // open now was inherited by mistake.
    crate::sys::log::close_syslog();
    let stray = crate::sys::fd::unexpected(&[setup.channel.raw_fd()]);
    crate::sys::log::init("hastmon", setup.foreground, setup.use_syslog, setup.debug);
    crate::sys::log::set_prefix(format!("[{name}] ({}) ", setup.role));
    if !stray.is_empty() {
        for (fd, kind) in stray {
            log_error!("Descriptor {fd} is open ({kind}), but should be closed.");
        }
        std::process::abort();
    }
    let plan = setup.sandbox.clone();
    let mut worker = match Worker::new(setup) {
        Ok(w) => w,
        Err(e) => {
            log_error!("Unable to set up the worker: {e}.");
            return exit::TEMPFAIL;
        }
    };
    if let Err(e) = worker.confine(&plan) {
        if plan.required {
            log_error!(
                "Unable to enter the sandbox: {e}; refusing to run (hastmon -S allows running without one)."
            );
            return exit::OSERR;
        }
        log_warning!("Running without a sandbox, as -S allows: {e}.");
    }
    worker.run()
}

struct Worker {
    poller: Poller,
    channel: Channel,
    machine: RoleMachine,
    role: Role,
    links: Links,
    /// Inputs raised while carrying out actions (a send that failed).
    queue: VecDeque<Input>,
    /// A secondary starts once its connections have arrived.
    started: bool,
    clock: std::time::Instant,
    last_report: Option<Report>,
    /// The remotes' addresses, for the log.
    remotes: Vec<String>,
    /// The resource's name and secret when its key is HMAC-SHA256: the
    /// connections' sessions continue with them.
    hmac: Option<(String, Vec<u8>)>,
}

impl Worker {
    fn new(setup: Setup) -> std::io::Result<Worker> {
        let mut poller = Poller::new()?;
        poller.watch_signals(SIGNALS)?;
        poller.register(setup.channel.as_fd(), CHANNEL, Interest::Read)?;
        let clock = std::time::Instant::now();
        let r = &setup.resource;
        let ws = WorkerSetup {
            role: setup.role,
            primary: setup.primary,
            primary_heartbeat: setup.primary_heartbeat,
            urgent: setup.urgent,
        };
        let Some(machine) = RoleMachine::new(r, ws, Time(0)) else {
            return Err(std::io::Error::other(format!(
                "no worker exists for role {}",
                setup.role
            )));
        };
        Ok(Worker {
            poller,
            channel: setup.channel,
            machine,
            role: setup.role,
            links: Links::default(),
            queue: VecDeque::new(),
            started: false,
            clock,
            last_report: None,
            remotes: r.remote.iter().map(ToString::to_string).collect(),
            hmac: r
                .key
                .as_ref()
                .and_then(crate::config::Key::hmac_secret)
                .map(|s| (r.name.clone(), s.to_vec())),
        })
    }

    /// Narrows every descriptor held, chroots, becomes the unprivileged
    /// user, and enters the sandbox. Everything the worker will ever use is open by
    /// now, except peer connections, which arrive over the channel and are
    /// narrowed as they come.
    fn confine(&self, plan: &crate::sandbox::Plan) -> std::io::Result<()> {
        use crate::sandbox::{Use, enter, isolate, limit};
        limit(self.channel.as_fd(), Use::Channel)?;
        limit(self.poller.queue_fd(), Use::Events)?;
        let (syslog, syslog_dir) = crate::sys::log::syslog_fds();
        for fd in syslog.into_iter().chain(0..=2) {
            // SAFETY: the standard descriptors and the syslog connection
            // stay open for the worker's whole life.
            limit(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, Use::Log)?;
        }
        if let Some(fd) = syslog_dir {
            // SAFETY: as above: held by the logger for the worker's life.
            let dir = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            limit(dir, Use::LogDirectory)?;
        }
        isolate(plan)?;
        enter()
    }

    fn now(&self) -> Time {
        Time(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn run(&mut self) -> i32 {
        if self.role != Role::Secondary {
            self.started = true;
            if let Some(code) = self.feed(Input::Start) {
                return code;
            }
        }
        let mut events = Vec::new();
        loop {
            if let Err(e) = self.poller.wait(&mut events, None) {
                log_error!("Unable to wait for events: {e}.");
                return exit::TEMPFAIL;
            }
            for ev in std::mem::take(&mut events) {
                let input = match ev {
                    Event::Signal(Signal::SIGHUP) => Input::Terminate { stop: false },
                    #[cfg(feature = "sandbox-probe")]
                    Event::Signal(Signal::SIGUSR1) => {
                        probe::run();
                        continue;
                    }
                    Event::Signal(_) => Input::Terminate { stop: true },
                    Event::Timer(_) => Input::Tick,
                    Event::Readable(CHANNEL) => match self.receive() {
                        Ok(Some(input)) => input,
                        Ok(None) => continue,
                        Err(code) => return code,
                    },
                    Event::Readable(token) => match links::remote_of(token) {
                        Some(remote) => {
                            self.read_link(remote);
                            match self.queue.pop_front() {
                                Some(input) => input,
                                None => continue,
                            }
                        }
                        None => continue,
                    },
                    _ => continue,
                };
                if let Some(code) = self.feed(input) {
                    return code;
                }
            }
        }
    }

    /// One message from the main process, as an input.
    fn receive(&mut self) -> Result<Option<Input>, i32> {
        match self.channel.recv() {
            Ok(Some((nv, fds))) => match ToWorker::from_nv(&nv) {
                Some(ToWorker::Connected { remote, sessions }) => {
                    Ok(self.connected(remote, sessions, fds))
                }
                Some(ToWorker::PollResult {
                    remote,
                    cycle,
                    result,
                }) => Ok(Some(Input::Polled {
                    remote,
                    cycle,
                    result,
                })),
                Some(ToWorker::HookDone { event, result }) => {
                    Ok(Some(Input::HookDone { event, result }))
                }
                Some(ToWorker::Polled { remote }) => Ok(Some(Input::StatusPolled { remote })),
                Some(ToWorker::ConnectFailed { remote, reason }) => {
                    Ok(Some(Input::ConnectFailed { remote, reason }))
                }
                None => {
                    log_warning!("Ignoring a malformed message from the main process.");
                    Ok(None)
                }
            },
            Ok(None) => {
                // Nobody is left to run hooks for us.
                log_error!("The main process is gone, exiting.");
                Err(exit::UNAVAILABLE)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => {
                log_error!("Unable to receive from the main process: {e}.");
                Err(exit::TEMPFAIL)
            }
        }
    }

    /// Installs the two connections of a remote. A primary reads replies
    /// on the second and sends on the first; a secondary the other way
    /// round, and confirms the handshake on the first before it starts.
    fn connected(
        &mut self,
        remote: usize,
        sessions: Option<[SessionState; 2]>,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Option<Input> {
        let mut fds = fds.into_iter();
        let (Some(first), Some(second)) = (fds.next(), fds.next()) else {
            log_error!("The main process sent a connection without its descriptors.");
            return None;
        };
        // Never a connection without sessions when the key asks for them.
        let sessions = match (&self.hmac, sessions) {
            (Some((name, secret)), Some([s1, s2])) => Some([
                Session::from_state(secret, name, s1),
                Session::from_state(secret, name, s2),
            ]),
            (None, None) => None,
            _ => {
                log_error!("The connection's authentication does not match the configured key.");
                let why = "the key does not match the connection".to_string();
                return Some(Input::ConnectFailed {
                    remote,
                    reason: crate::role::ConnectFailure::Unreachable(why),
                });
            }
        };
        for fd in [&first, &second] {
            // Non-blocking first: the narrowed rights keep fcntl but not
            // the ioctl that std would use for it.
            if let Err(e) = crate::sys::fd::set_nonblocking(fd) {
                log_error!("Unable to use the connection: {e}.");
                return Some(Input::PeerLost { remote });
            }
            if let Err(e) = crate::sandbox::limit(fd.as_fd(), crate::sandbox::Use::Peer) {
                log_warning!("Unable to narrow a connection's rights: {e}.");
            }
        }
        let installed = match (self.role, sessions) {
            (Role::Secondary, s) => {
                let s = s.map(|[s1, s2]| (s2, s1));
                self.links.add(&mut self.poller, remote, second, first, s)
            }
            (_, s) => {
                let s = s.map(|[s1, s2]| (s1, s2));
                self.links.add(&mut self.poller, remote, first, second, s)
            }
        };
        if let Err(e) = installed {
            log_error!("Unable to use the connection: {e}.");
            return Some(Input::ConnectFailed {
                remote,
                reason: crate::role::ConnectFailure::Unreachable(e.to_string()),
            });
        }
        if self.role != Role::Secondary {
            return Some(Input::Connected { remote });
        }
        let confirm = Handshake2Confirm { resuid: 0 }.to_nv();
        if let Err(e) = self.links.send(remote, &confirm, true) {
            log_error!("Unable to confirm the handshake: {e}.");
            return Some(Input::PeerLost { remote });
        }
        self.started = true;
        Some(Input::Start)
    }

    fn read_link(&mut self, remote: usize) {
        match self.links.read(remote) {
            Received::Lists(lists) => {
                for list in lists {
                    self.queue.push_back(match self.role {
                        Role::Secondary => Input::Heartbeat {
                            msg: HeartbeatRequest::from_nv(&list),
                        },
                        _ => Input::Reply {
                            remote,
                            msg: HeartbeatReply::from_nv(&list),
                        },
                    });
                }
            }
            Received::Lost(why) => {
                let addr = self.remotes.get(remote).map_or("?", String::as_str);
                log_warning!("Connection to remote {addr} lost: {why}.");
                self.links.remove(&mut self.poller, remote);
                self.queue.push_back(Input::PeerLost { remote });
            }
        }
    }

    /// Runs an input, and every input it raises, through the machine and
    /// carries out the actions; `Some(code)` when the worker is to exit.
    fn feed(&mut self, input: Input) -> Option<i32> {
        self.queue.push_back(input);
        let mut now = self.now();
        while let Some(input) = self.queue.pop_front() {
            if !self.started && input != Input::Start {
                continue;
            }
            now = self.now();
            let actions = self.machine.handle(now, input);
            if let Some(code) = self.carry_out(actions) {
                self.report();
                return Some(code);
            }
        }
        self.report();
        match self.machine.deadline() {
            Some(at) => {
                let wait = at.since(now).max(std::time::Duration::from_millis(1));
                if let Err(e) = self.poller.set_timer(DEADLINE, wait, false) {
                    log_error!("Unable to set a timer: {e}.");
                    return Some(exit::TEMPFAIL);
                }
            }
            None => {
                let _ = self.poller.cancel_timer(DEADLINE);
            }
        }
        None
    }

    fn report(&mut self) {
        let report = self.machine.report();
        if self.last_report.as_ref() != Some(&report) {
            self.send(&ToMain::Report {
                report: report.clone(),
                at: self.now(),
            });
            self.last_report = Some(report);
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>) -> Option<i32> {
        let mut exit_code = None;
        for action in actions {
            match action {
                Action::RunHook(event) => self.send(&ToMain::RunHook(event)),
                Action::Connect { remote } => self.send(&ToMain::Connect { remote }),
                Action::Poll { remote, cycle } => self.send(&ToMain::Poll { remote, cycle }),
                Action::Complain { remote } => self.send(&ToMain::Complain { remote }),
                Action::Disconnect { remote } => self.links.remove(&mut self.poller, remote),
                Action::Heartbeat { remote, msg } => self.send_peer(remote, &msg.to_nv()),
                Action::Reply { msg } => {
                    if let Some(remote) = self.links.only() {
                        self.send_peer(remote, &msg.to_nv());
                    }
                }
                Action::Log { level, msg } => log_decision(level, &msg),
                Action::Exit(code) => exit_code = Some(code),
            }
        }
        exit_code
    }

    fn send_peer(&mut self, remote: usize, list: &crate::proto::NvList) {
        if let Err(e) = self.links.send(remote, list, false) {
            log_warning!("Unable to send to remote {remote}: {e}.");
            self.links.remove(&mut self.poller, remote);
            self.queue.push_back(Input::PeerLost { remote });
        }
    }

    fn send(&self, msg: &ToMain) {
        if let Err(e) = self.channel.send(&msg.to_nv(), &[]) {
            log_error!("Unable to send to the main process: {e}.");
        }
    }
}

/// Logs what a machine said. What syslog shows by default (notice and
/// above) is rate-limited: a machine retrying every heartbeat says the
/// same thing each time ("Unable to connect to ...").
pub(crate) fn log_decision(level: Level, msg: &str) {
    use crate::sys::log::{self, Level as L};
    let level = level.to_log();
    if level <= L::Notice {
        log::log_limited(level, None, format_args!("{msg}"));
    } else {
        log::log(level, format_args!("{msg}"));
    }
}
