//! The main process: configuration, pidfile, control socket, signals, one
//! event loop.

mod control;
mod resources;

use std::path::PathBuf;

use nix::sys::signal::Signal;

use crate::config::Config;
use crate::config::address::Kind;
use crate::event::{Event, Poller, TimerId};
use crate::exit;
use crate::sys::pidfile::{Pidfile, PidfileError};
use crate::{log_error, log_notice, log_warning};
use control::ControlServer;
use resources::Resources;

/// The signals the main process handles in its loop.
const SIGNALS: &[Signal] = &[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

pub struct Options {
    pub config_path: PathBuf,
    pub config: Config,
    pub foreground: bool,
    pub debug: u8,
    pub pidfile: PathBuf,
}

/// Runs the daemon; returns the process exit code.
pub fn run(opts: Options) -> i32 {
    crate::sys::log::init("hastmon", true, false, opts.debug);
    // Held pending from the start: a signal that arrives before the event
    // loop exists is handled by it, not by the default action.
    let mut mask = nix::sys::signal::SigSet::empty();
    for s in SIGNALS {
        mask.add(*s);
    }
    if let Err(e) = mask.thread_block() {
        log_error!("Unable to block signals: {e}.");
        return exit::OSERR;
    }
    let mut pidfile = match Pidfile::acquire(&opts.pidfile) {
        Ok(p) => Some(p),
        Err(PidfileError::Locked { pid }) => {
            let pid = pid.map_or_else(|| "unknown".to_string(), |p| p.to_string());
            log_error!("Another hastmon is already running, pid: {pid}.");
            return exit::TEMPFAIL;
        }
        Err(PidfileError::Io(e)) => {
            log_warning!(
                "Unable to open or create pidfile {}: {e}.",
                opts.pidfile.display()
            );
            None
        }
    };
    // In the foreground the pid is final now; a daemon writes it after fork.
    if opts.foreground {
        write_pid(pidfile.as_mut());
    }
    let Kind::Unix(control_path) = opts.config.control.kind() else {
        log_error!(
            "Control address {} is not a UNIX socket.",
            opts.config.control
        );
        return exit::CONFIG;
    };
    let control = match ControlServer::bind(control_path) {
        Ok(c) => c,
        Err(e) => {
            log_error!(
                "Unable to listen on control address {}: {e}.",
                opts.config.control
            );
            if let Some(p) = pidfile {
                p.remove();
            }
            return exit::OSERR;
        }
    };
    if !opts.foreground {
        if let Err(e) = crate::sys::daemonize() {
            log_error!("Unable to daemonize: {e}.");
            control.remove();
            return exit::OSERR;
        }
    }
    crate::sys::log::init("hastmon", opts.foreground, true, opts.debug);
    if !opts.foreground {
        write_pid(pidfile.as_mut());
    }
    let code = match serve(&opts, control) {
        Ok(()) => exit::OK,
        Err(e) => {
            log_error!("Event loop failed: {e}.");
            exit::OSERR
        }
    };
    if let Some(p) = pidfile {
        p.remove();
    }
    code
}

fn write_pid(pidfile: Option<&mut Pidfile>) {
    if let Some(p) = pidfile
        && let Err(e) = p.write_pid()
    {
        log_warning!("Unable to write pidfile {}: {e}.", p.path().display());
    }
}

fn serve(opts: &Options, mut control: ControlServer) -> std::io::Result<()> {
    // Made after daemonizing: a kqueue does not survive fork.
    let mut poller = Poller::new()?;
    poller.watch_signals(SIGNALS)?;
    control.register(&mut poller)?;
    let mut resources = Resources::new(&opts.config);
    resources.set_initial_roles();
    let mut events = Vec::new();
    loop {
        poller.wait(&mut events, None)?;
        for ev in events.drain(..) {
            match ev {
                Event::Signal(Signal::SIGTERM | Signal::SIGINT) => {
                    log_notice!("Termination signal received, exiting.");
                    control.remove();
                    return Ok(());
                }
                Event::Signal(Signal::SIGHUP) => {
                    log_warning!(
                        "Configuration reload is not supported by this version; SIGHUP ignored."
                    );
                }
                Event::Readable(control::LISTENER) => control.accept(&mut poller),
                Event::Readable(t) if control::owns(t) => {
                    if let Some((id, request)) = control.read(&mut poller, t) {
                        let reply = resources.handle(&request);
                        control.reply(&mut poller, id, reply);
                    }
                }
                Event::Timer(TimerId(id)) => control.expire(&mut poller, id),
                _ => {}
            }
        }
    }
}
