//! The guardian: a small process forked at start-up that outlives a
//! crashed main process and stops the resources this node was primary
//! for (quirks.md Q10). Without it, a main process killed by a signal
//! leaves its resource running while the other nodes, no longer hearing
//! from this one, start it elsewhere.
//!
//! The main process tells it over a pipe which resources are primary here
//! (`primary <i>`, `released <i>`) and says `bye` when it exits cleanly.
//! End of file without `bye` means the main process died: the guardian
//! runs `<exec> stop <resource>` for each resource it was told is primary,
//! one at a time, each bounded by its `hook_timeout`, then exits.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{ForkResult, Pid, pipe};

use crate::config::Resource;
use crate::{log_error, log_notice, log_warning};

/// The main process's end.
pub struct Guardian {
    pub pid: Pid,
    pipe: std::fs::File,
    /// What the guardian was last told, per resource.
    told: Vec<bool>,
}

impl Guardian {
    /// Forks the guardian. `close` lists the main process's descriptors,
    /// which the guardian must not keep (the pidfile's lock among them).
    pub fn start(close: &[RawFd], resources: &[Resource]) -> std::io::Result<Guardian> {
        let (read, write) = pipe()?;
        // Neither end may reach a hook or a worker.
        set_cloexec(&read);
        set_cloexec(&write);
        // SAFETY: the main process is single-threaded; the child never
        // returns into its caller (it leaves through process::exit).
        match unsafe { nix::unistd::fork() }? {
            ForkResult::Parent { child } => {
                drop(read);
                Ok(Guardian {
                    pid: child,
                    pipe: write.into(),
                    told: vec![false; resources.len()],
                })
            }
            ForkResult::Child => {
                drop(write);
                // SAFETY: the owners belong to the main process's state,
                // which this child never touches again.
                unsafe { crate::sys::fd::close_raw(close) };
                crate::sys::proctitle::set("guardian");
                crate::sys::log::set_prefix("(guardian) ");
                let code = watch(read, resources);
                std::process::exit(code)
            }
        }
    }

    /// Tells the guardian which resources are primary now; only changes
    /// are written.
    pub fn update(&mut self, primary: impl Iterator<Item = bool>) {
        for (i, now) in primary.enumerate() {
            if self.told.get(i).is_some_and(|&was| was != now) {
                let line = if now { "primary" } else { "released" };
                if let Err(e) = writeln!(self.pipe, "{line} {i}") {
                    log_warning!("Unable to update the guardian: {e}.");
                    return;
                }
                self.told[i] = now;
            }
        }
    }

    /// A clean exit: the guardian goes without stopping anything.
    pub fn dismiss(mut self) {
        let _ = writeln!(self.pipe, "bye");
    }

    pub fn raw_fd(&self) -> RawFd {
        self.pipe.as_raw_fd()
    }
}

fn set_cloexec(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}

/// The guardian's life: follow the main process, and stop what it left
/// running if it dies.
fn watch(read: OwnedFd, resources: &[Resource]) -> i32 {
    let mut primary = vec![false; resources.len()];
    for line in BufReader::new(std::fs::File::from(read)).lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let (Some(what), i) = (
            words.next(),
            words.next().and_then(|n| n.parse::<usize>().ok()),
        ) else {
            continue;
        };
        match (what, i) {
            ("bye", _) => return 0,
            ("primary", Some(i)) if i < primary.len() => primary[i] = true,
            ("released", Some(i)) if i < primary.len() => primary[i] = false,
            _ => {}
        }
    }
    for (r, _) in resources.iter().zip(&primary).filter(|(_, p)| **p) {
        log_error!(
            "[{}] The main process died while primary; stopping the resource.",
            r.name
        );
        stop(r);
    }
    0
}

/// Runs `<exec> stop <resource>` and waits for it, bounded by the
/// resource's `hook_timeout` (then SIGTERM and, 5 s later, SIGKILL to its
/// process group).
fn stop(r: &Resource) {
    let argv0 = std::path::Path::new(&r.exec)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let child = Command::new(&r.exec)
        .arg0(argv0)
        .args(["stop", &r.name])
        .process_group(0)
        .stdin(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log_error!("[{}] Unable to execute {}: {e}.", r.name, r.exec);
            return;
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    let started = Instant::now();
    let mut signal = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                log_notice!("[{}] Stop hook ended ({status}).", r.name);
                return;
            }
            Ok(None) => {}
            Err(e) => {
                log_error!("[{}] Unable to wait for the stop hook: {e}.", r.name);
                return;
            }
        }
        let past = started.elapsed();
        let next = match signal {
            None if past >= r.hook_timeout => Some(Signal::SIGTERM),
            Some(Signal::SIGTERM) if past >= r.hook_timeout + Duration::from_secs(5) => {
                Some(Signal::SIGKILL)
            }
            _ => None,
        };
        if let Some(s) = next {
            log_warning!("[{}] The stop hook runs too long; sending {s}.", r.name);
            let _ = killpg(pid, s);
            signal = Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
