//! A worker process: one resource in one role, forked by the main
//! process. It runs one event loop around its role machine: the machine
//! decides, this module carries the decisions out over the channel to the
//! main process (hooks, connections) and turns signals, timers and channel
//! messages into the machine's inputs.

pub mod channel;
pub mod msg;

use std::os::fd::AsFd;

use nix::sys::signal::Signal;

use crate::config::Resource;
use crate::event::{Event, Interest, Poller, TimerId, Token};
use crate::role::primary::{Primary, PrimaryConfig};
use crate::role::{Action, Input, Level, Report, Time};
use crate::types::Role;
use crate::{exit, log_debug, log_error, log_info, log_notice, log_warning};
use channel::Channel;
use msg::{ToMain, ToWorker};

const CHANNEL: Token = Token(1);
const DEADLINE: TimerId = TimerId(1);
const SIGNALS: &[Signal] = &[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

pub struct Setup {
    pub resource: Resource,
    pub role: Role,
    pub channel: Channel,
    pub debug: u8,
    pub foreground: bool,
    pub use_syslog: bool,
}

/// The machine of the worker's role.
enum Machine {
    Primary(Primary),
}

impl Machine {
    fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        match self {
            Machine::Primary(m) => m.handle(now, input),
        }
    }

    fn deadline(&self) -> Option<Time> {
        match self {
            Machine::Primary(m) => m.deadline(),
        }
    }

    fn report(&self) -> Report {
        match self {
            Machine::Primary(m) => m.report(),
        }
    }
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
    match Worker::new(setup) {
        Ok(mut w) => w.run(),
        Err(e) => {
            log_error!("Unable to set up the worker: {e}.");
            exit::TEMPFAIL
        }
    }
}

struct Worker {
    poller: Poller,
    channel: Channel,
    machine: Machine,
    clock: std::time::Instant,
    last_report: Option<Report>,
}

impl Worker {
    fn new(setup: Setup) -> std::io::Result<Worker> {
        let mut poller = Poller::new()?;
        poller.watch_signals(SIGNALS)?;
        poller.register(setup.channel.as_fd(), CHANNEL, Interest::Read)?;
        let clock = std::time::Instant::now();
        let machine = match setup.role {
            Role::Primary => Machine::Primary(Primary::new(
                PrimaryConfig::from_resource(&setup.resource),
                Time(0),
            )),
            other => {
                return Err(std::io::Error::other(format!(
                    "no worker exists for role {other}"
                )));
            }
        };
        Ok(Worker {
            poller,
            channel: setup.channel,
            machine,
            clock,
            last_report: None,
        })
    }

    fn now(&self) -> Time {
        Time(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn run(&mut self) -> i32 {
        if let Some(code) = self.feed(Input::Start) {
            return code;
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
                    Event::Signal(_) => Input::Terminate { stop: true },
                    Event::Timer(_) => Input::Tick,
                    Event::Readable(CHANNEL) => match self.receive() {
                        Ok(Some(input)) => input,
                        Ok(None) => continue,
                        Err(code) => return code,
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
            Ok(Some((nv, _fds))) => match ToWorker::from_nv(&nv) {
                Some(ToWorker::HookDone { event, result }) => {
                    Ok(Some(Input::HookDone { event, result }))
                }
                Some(ToWorker::Polled { remote }) => Ok(Some(Input::StatusPolled { remote })),
                Some(ToWorker::Connected { remote }) => Ok(Some(Input::Connected { remote })),
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

    /// Runs one input through the machine and carries out its actions;
    /// `Some(code)` when the worker is to exit.
    fn feed(&mut self, input: Input) -> Option<i32> {
        let now = self.now();
        let actions = self.machine.handle(now, input);
        let mut exit_code = None;
        for action in actions {
            match action {
                Action::RunHook(event) => self.send(&ToMain::RunHook(event)),
                Action::Connect { remote } => self.send(&ToMain::Connect { remote }),
                Action::Disconnect { .. } | Action::Heartbeat { .. } => {}
                Action::Log { level, msg } => match level {
                    Level::Error => log_error!("{msg}"),
                    Level::Warning => log_warning!("{msg}"),
                    Level::Notice => log_notice!("{msg}"),
                    Level::Info => log_info!("{msg}"),
                    Level::Debug => log_debug!(1, "{msg}"),
                },
                Action::Exit(code) => exit_code = Some(code),
            }
        }
        let report = self.machine.report();
        if self.last_report.as_ref() != Some(&report) {
            self.send(&ToMain::Report(report.clone()));
            self.last_report = Some(report);
        }
        if exit_code.is_some() {
            return exit_code;
        }
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

    fn send(&self, msg: &ToMain) {
        if let Err(e) = self.channel.send(&msg.to_nv(), &[]) {
            log_error!("Unable to send to the main process: {e}.");
        }
    }
}
