//! The main process: configuration, pidfile, control socket, signals, one
//! event loop.

mod control;
mod guardian;
mod hooks;
mod inbox;
mod listen;
mod outbound;
mod peers;
mod procs;
mod reload;
mod secure;
mod shell;
mod workers;

use std::os::fd::RawFd;
use std::path::PathBuf;

use nix::sys::signal::Signal;

use crate::config::Config;
use crate::config::address::Kind;
use crate::exit;
use crate::sys::pidfile::{Pidfile, PidfileError};
use crate::{log_error, log_warning};
use control::ControlServer;
use listen::ListenServer;

/// The signals the main process handles in its loop.
const SIGNALS: &[Signal] = &[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

pub struct Options {
    pub config_path: PathBuf,
    pub config: Config,
    pub foreground: bool,
    pub debug: u8,
    pub pidfile: PathBuf,
    /// The node name given with -n, kept for reloads.
    pub node: Option<String>,
    /// The user workers run as (when the daemon is root); `None`: the
    /// default, `hastmon`, or `nobody` where that does not exist.
    pub user: Option<String>,
    /// Refuse to run workers that cannot enter the sandbox.
    pub sandbox_required: bool,
}

/// Runs the daemon; returns the process exit code.
pub fn run(opts: Options) -> i32 {
    crate::sys::fd::close_from_3();
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
    let sandbox = match crate::sandbox::Plan::for_user(opts.user.as_deref(), opts.sandbox_required)
    {
        Ok((p, warnings)) => {
            for w in warnings {
                log_warning!("{w}");
            }
            p
        }
        Err(e) => {
            log_error!("{e}");
            if let Some(p) = pidfile {
                p.remove();
            }
            return exit::NOUSER;
        }
    };
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
    let listen = match peers::resolve(&opts.config.listen)
        .ok_or_else(|| std::io::Error::other("the address does not resolve"))
        .and_then(|addr| ListenServer::bind(addr, peers::known_peers(&opts.config)))
    {
        Ok(l) => l,
        Err(e) => {
            log_error!("Unable to listen on address {}: {e}.", opts.config.listen);
            control.discard();
            if let Some(p) = pidfile {
                p.remove();
            }
            return exit::OSERR;
        }
    };
    if !opts.foreground
        && let Err(e) = crate::sys::daemonize()
    {
        log_error!("Unable to daemonize: {e}.");
        control.discard();
        return exit::OSERR;
    }
    crate::sys::log::init("hastmon", opts.foreground, true, opts.debug);
    if !opts.foreground {
        write_pid(pidfile.as_mut());
    }
    let pid_fd = pidfile.as_ref().map(Pidfile::raw_fd);
    let code = match serve(&opts, control, listen, pid_fd, sandbox) {
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

fn serve(
    opts: &Options,
    control: ControlServer,
    listen: ListenServer,
    pid_fd: Option<RawFd>,
    sandbox: crate::sandbox::Plan,
) -> std::io::Result<()> {
    shell::Shell::new(opts, control, listen, pid_fd, sandbox)?.run()
}
