//! The guardian: a small process forked at start-up that outlives a
//! crashed main process and stops the resources this node was primary
//! for (doc/quirks.md Q10). Without it, a main process killed by a signal
//! leaves its resource running while the other nodes, no longer hearing
//! from this one, start it elsewhere.
//!
//! The main process tells it over a pipe, one JSON record a line, which
//! resources are primary here and how to stop each (`{"i", "primary",
//! "name", "exec", "hook_timeout_ms"}`; records carry what they need, so a
//! reload that adds resources or changes `exec` needs nothing else), and
//! says `{"bye": true}` when it exits cleanly. End of file without `bye`
//! means the main process died: the guardian runs `<exec> stop
//! <resource>` for each resource last reported primary, one at a time,
//! each bounded by its `hook_timeout`, then exits.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{ForkResult, Pid, pipe};

use crate::config::Resource;
use crate::{log_error, log_notice, log_warning};

/// One resource as the guardian needs it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub i: usize,
    pub primary: bool,
    pub name: String,
    pub exec: String,
    pub hook_timeout_ms: u64,
    /// The process group of the hook running for it: killed before the
    /// guardian's `stop`, so that a `start` cannot end after it.
    pub hook_group: Option<i32>,
}

impl Record {
    fn describes(&self, primary: bool, group: Option<i32>, r: &Resource) -> bool {
        self.primary == primary
            && self.hook_group == group
            && self.name == r.name
            && self.exec == r.exec
            && u128::from(self.hook_timeout_ms) == r.hook_timeout.as_millis()
    }

    pub fn of(i: usize, primary: bool, r: &Resource) -> Record {
        Record {
            i,
            primary,
            name: r.name.clone(),
            exec: r.exec.clone(),
            hook_timeout_ms: u64::try_from(r.hook_timeout.as_millis()).unwrap_or(u64::MAX),
            hook_group: None,
        }
    }
}

/// The main process's end.
pub struct Guardian {
    pub pid: Pid,
    pipe: std::fs::File,
    /// What the guardian was last told, per resource.
    told: BTreeMap<usize, Record>,
}

impl Guardian {
    /// Forks the guardian. `close` lists the main process's descriptors,
    /// which the guardian must not keep (the pidfile's lock among them).
    pub fn start(close: &[RawFd]) -> std::io::Result<Guardian> {
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
                    told: BTreeMap::new(),
                })
            }
            ForkResult::Child => {
                drop(write);
                // SAFETY: the owners belong to the main process's state,
                // which this child never touches again.
                unsafe { crate::sys::fd::close_raw(close) };
                crate::sys::proctitle::set("guardian");
                crate::sys::log::set_prefix("(guardian) ");
                // The main process blocked its signals before forking us.
                // SIGTERM must end the guardian (`kill -TERM`); SIGINT and
                // SIGHUP stay blocked, so a terminal's ^C or hang-up, sent
                // to the whole group, leaves it to the main process, which
                // dismisses it or reloads. Its hooks start unblocked (std
                // clears the mask before exec).
                let mut term = nix::sys::signal::SigSet::empty();
                term.add(Signal::SIGTERM);
                if let Err(e) = term.thread_unblock() {
                    log_warning!("Unable to unblock SIGTERM: {e}.");
                }
                let code = watch(read);
                std::process::exit(code)
            }
        }
    }

    /// Tells the guardian about every resource whose record changed:
    /// `(position, must be stopped, running hook's group, settings)`.
    /// Called every loop iteration, so a record is only built on a change.
    pub fn update<'a>(
        &mut self,
        state: impl Iterator<Item = (usize, bool, Option<i32>, &'a Resource)>,
    ) {
        for (i, primary, group, res) in state {
            let unchanged = match self.told.get(&i) {
                Some(t) => t.describes(primary, group, res),
                None => !primary,
            };
            if unchanged {
                continue;
            }
            let mut r = Record::of(i, primary, res);
            r.hook_group = group;
            let Ok(line) = serde_json::to_string(&r) else {
                continue;
            };
            if let Err(e) = writeln!(self.pipe, "{line}") {
                log_warning!("Unable to update the guardian: {e}.");
                return;
            }
            self.told.insert(r.i, r);
        }
    }

    /// A clean exit: the guardian goes without stopping anything.
    pub fn dismiss(mut self) {
        let _ = writeln!(self.pipe, "{{\"bye\":true}}");
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
fn watch(read: OwnedFd) -> i32 {
    let mut primary: BTreeMap<usize, Record> = BTreeMap::new();
    for line in BufReader::new(std::fs::File::from(read)).lines() {
        let Ok(line) = line else { break };
        if line.contains("\"bye\"") {
            return 0;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(r) if r.primary => {
                primary.insert(r.i, r);
            }
            Ok(r) => {
                primary.remove(&r.i);
            }
            Err(e) => log_warning!("Ignoring a malformed record from the main process: {e}."),
        }
    }
    for r in primary.values() {
        log_error!(
            "[{}] The main process died while primary; stopping the resource.",
            r.name
        );
        if let Some(group) = r.hook_group {
            end_group(&r.name, Pid::from_raw(group));
        }
        stop(r);
    }
    0
}

/// Ends a hook's process group the main process left running: SIGTERM,
/// then SIGKILL if it is still there 5 s later.
fn end_group(name: &str, group: Pid) {
    if killpg(group, Signal::SIGTERM).is_err() {
        return;
    }
    log_notice!("[{name}] Ended the hook still running (process group {group}).");
    let started = Instant::now();
    while killpg(group, None).is_ok() {
        if started.elapsed() >= Duration::from_secs(5) {
            let _ = killpg(group, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `<exec> stop <resource>` and waits for it, bounded by the
/// resource's `hook_timeout` (then SIGTERM and, 5 s later, SIGKILL to its
/// process group).
fn stop(r: &Record) {
    let child = super::hooks::command(r.exec.as_ref(), &["stop", &r.name]).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log_error!("[{}] Unable to execute {}: {e}.", r.name, r.exec);
            return;
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    let limit = Duration::from_millis(r.hook_timeout_ms);
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
            None if past >= limit => Some(Signal::SIGTERM),
            Some(Signal::SIGTERM) if past >= limit + Duration::from_secs(5) => {
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
