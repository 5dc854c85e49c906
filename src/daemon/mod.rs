//! The main process: configuration, pidfile, control socket, signals, one
//! event loop.

mod acceptor;
mod control;
mod guardian;
mod hooks;
mod inbox;
mod listen;
mod outbound;
mod peers;
mod reload;
mod requests;
mod secure;
mod supervisor;
mod workers;

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::config::Config;
use crate::config::address::Kind;
use crate::event::{Event, Poller, TimerId, Token};
use crate::exit;
use crate::sys::pidfile::{Pidfile, PidfileError};
use crate::{log_error, log_notice, log_warning};
use acceptor::Acceptor;
use control::ControlServer;
use guardian::Guardian;
use listen::ListenServer;
use requests::Requests;
use supervisor::{Ctx, Supervisor};

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
    if !opts.foreground {
        if let Err(e) = crate::sys::daemonize() {
            log_error!("Unable to daemonize: {e}.");
            control.discard();
            return exit::OSERR;
        }
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

/// How long shutdown waits for workers to stop their resources and for
/// hooks to finish, beyond the longest hook time limit.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(10);

fn serve(
    opts: &Options,
    control: ControlServer,
    mut listen: ListenServer,
    pid_fd: Option<RawFd>,
    sandbox: crate::sandbox::Plan,
) -> std::io::Result<()> {
    // Forked before anything else exists, so it holds only what `close`
    // leaves it.
    let mut close: Vec<RawFd> = pid_fd.into_iter().collect();
    control.descriptors(&mut close);
    listen.descriptors(&mut close);
    let mut guardian = Guardian::start(&close)?;
    let guardian_fd = guardian.raw_fd();
    // Made after daemonizing: a kqueue does not survive fork.
    let mut poller = Poller::new()?;
    poller.watch_process(guardian.pid)?;
    poller.watch_signals(SIGNALS)?;
    control.register(&mut poller)?;
    listen.register(&mut poller)?;
    let mut control = Some(control);
    let mut current = opts.config.clone();
    let mut sup = Supervisor::new(&opts.config, opts.debug, opts.foreground, sandbox);
    let mut acceptor = Acceptor::new(&opts.config);
    let outside = |control: &Option<ControlServer>, listen: &ListenServer, acceptor: &Acceptor| {
        let mut fds: Vec<RawFd> = pid_fd.into_iter().chain([guardian_fd]).collect();
        if let Some(c) = control {
            c.descriptors(&mut fds);
        }
        listen.descriptors(&mut fds);
        acceptor.descriptors(&mut fds);
        fds
    };
    sup.set_initial_roles(&mut Ctx {
        outside: outside(&control, &listen, &acceptor),
        poller: &mut poller,
    });
    let mut shutdown: Option<Instant> = None;
    let mut events = Vec::new();
    loop {
        guardian.update(sup.guardian_state());
        if let Some(deadline) = shutdown {
            if sup.quiet() {
                guardian.dismiss();
                listen.deregister(&mut poller);
                // Everything registered was deregistered before it closed;
                // anything left is a descriptor closed under the poller.
                let left = poller.registrations();
                if left > 0 {
                    log_warning!("{left} descriptors were still registered at shutdown.");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                log_warning!(
                    "Workers or hooks still running at the shutdown deadline; exiting anyway."
                );
                guardian.dismiss();
                return Ok(());
            }
        }
        let wait = shutdown.map(|d| d.saturating_duration_since(Instant::now()));
        poller.wait(&mut events, wait)?;
        for ev in events.drain(..) {
            let mut ctx = Ctx {
                outside: outside(&control, &listen, &acceptor),
                poller: &mut poller,
            };
            match ev {
                Event::Signal(Signal::SIGTERM | Signal::SIGINT) => {
                    if shutdown.is_some() {
                        continue;
                    }
                    log_notice!("Termination signal received, exiting.");
                    // No new requests: the socket goes away first.
                    if let Some(c) = control.take() {
                        c.remove(ctx.poller);
                    }
                    sup.terminate_all();
                    shutdown =
                        Some(Instant::now() + sup.longest_hook_timeout() * 2 + SHUTDOWN_MARGIN);
                }
                Event::Signal(Signal::SIGHUP) => {
                    if shutdown.is_some() {
                        continue;
                    }
                    let reloaded = reload::reload(
                        opts,
                        &mut current,
                        &mut control,
                        &mut listen,
                        &mut acceptor,
                        ctx.poller,
                    );
                    if let Some(new) = reloaded {
                        // Forks from here on close the new sockets too.
                        ctx.outside = outside(&control, &listen, &acceptor);
                        let said = reload::reconfigure(&mut sup, &mut ctx, &new);
                        for line in &said {
                            log_notice!("{line}");
                        }
                        if said.is_empty() && new == current {
                            log_notice!("Configuration unchanged.");
                        }
                        current = new;
                        log_notice!("Configuration reloaded successfully.");
                    }
                }
                Event::Readable(control::LISTENER) => {
                    if let Some(c) = control.as_mut() {
                        c.accept(ctx.poller);
                    }
                }
                Event::Readable(Token(id)) if control::owns(id) => {
                    if let Some(c) = control.as_mut()
                        && let Some(request) = c.read(ctx.poller, id)
                    {
                        let reply = Requests { sup: &mut sup }.handle(&mut ctx, &request);
                        c.reply(ctx.poller, id, reply);
                    }
                }
                Event::Readable(listen::LISTENER) => listen.accept(ctx.poller),
                Event::Readable(Token(id)) if listen::owns(id) => {
                    if let Some(request) = listen.inbox.read(ctx.poller, id) {
                        acceptor.handle(&mut sup, &mut ctx, &mut listen, id, request);
                    }
                }
                Event::Readable(Token(id)) | Event::Writable(Token(id)) => {
                    sup.readable(&mut ctx, id);
                }
                Event::Timer(TimerId(id)) if control::owns(id) => {
                    if let Some(c) = control.as_mut() {
                        c.expire(ctx.poller, id);
                    }
                }
                Event::Timer(TimerId(id)) if listen::owns(id) => {
                    listen.inbox.expire(ctx.poller, id)
                }
                Event::Timer(id) => sup.expired(&mut ctx, id),
                Event::ProcessExited { pid, status } if pid == guardian.pid => log_error!(
                    "The guardian exited ({status:?}): resources will not be stopped should this process die."
                ),
                Event::ProcessExited { pid, status } => sup.exited(&mut ctx, pid, status),
                _ => {}
            }
        }
    }
}
