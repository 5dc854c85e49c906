//! The exec hooks, run by the main process only (hooks.md).
//!
//! Each runs as `<exec> <event> <resource> [args]` in its own process
//! group, with stdin on /dev/null and stdout/stderr on pipes that are read
//! line by line into the log. Hooks of one resource run one at a time in
//! the order asked, so `status` never races `start` and `stop` never
//! overlaps `start` (quirks.md Q5). A hook that outlives `hook_timeout`
//! gets SIGTERM on its process group, then SIGKILL, and counts as failed.
//! Exits arrive as poller events; nothing here ever waits. The last run
//! of each event of each resource is remembered for `status -j`, and a
//! failure that repeats every heartbeat is logged once, then summarized.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::event::{ExitStatus, Interest, Poller, TimerId, Token};
use crate::proto::msg::HookEvent;
use crate::role::HookResult;
use crate::sys::log::{Level, log_limited};
use crate::{log_debug, log_info, log_warning};

/// Between SIGTERM and SIGKILL for a hook past its time limit.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// A longer line is logged in pieces of this size.
const MAX_LINE: usize = 1024;

/// Token and timer ids of hooks live in their own range.
const BASE: u64 = 2 << 32;
const END: u64 = 3 << 32;

pub fn owns(id: u64) -> bool {
    (BASE..END).contains(&id)
}

/// One hook to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub resource: usize,
    /// Used in log lines.
    pub name: String,
    pub exec: PathBuf,
    pub timeout: Duration,
    /// After argv[0]: the event word, the resource name, and any extras.
    pub args: Vec<String>,
    /// Set when a worker asked for it and wants the result.
    pub caller: Option<(u64, HookEvent)>,
}

impl Request {
    fn command_line(&self) -> String {
        let mut s = self.exec.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// A hook that ended, for the worker that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    pub resource: usize,
    pub caller: u64,
    pub event: HookEvent,
    pub result: HookResult,
}

/// How the last run of a hook event ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastRun {
    pub result: HookResult,
    pub took: Duration,
    pub ended: Instant,
}

struct Running {
    req: Request,
    pid: Pid,
    started: Instant,
    timer: TimerId,
    /// The signal sent to its process group, once past the time limit.
    killing: Option<Signal>,
}

struct Output {
    pipe: File,
    buf: Vec<u8>,
    label: String,
    stderr: bool,
}

#[derive(Default)]
pub struct Hooks {
    queued: HashMap<usize, VecDeque<Request>>,
    running: HashMap<usize, Running>,
    outputs: HashMap<u64, Output>,
    next_id: u64,
    /// By resource name (which outlives a reload's renumbering) and event
    /// word; the words are a fixed set.
    last: BTreeMap<(String, String), LastRun>,
}

impl Hooks {
    pub fn new() -> Hooks {
        Hooks {
            next_id: BASE,
            ..Hooks::default()
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = if id + 1 >= END { BASE } else { id + 1 };
        id
    }

    /// Queues a hook; it starts now if its resource has none running.
    /// Returns the results of hooks that could not even be started.
    pub fn request(&mut self, poller: &mut Poller, req: Request) -> Vec<Finished> {
        let queue = self.queued.entry(req.resource).or_default();
        if queue.contains(&req) {
            log_debug!(1, "[{}] Hook {} is already queued.", req.name, req.args[0]);
            return Vec::new();
        }
        queue.push_back(req.clone());
        self.start_next(poller, req.resource)
    }

    /// The last run of each event of resource `name` that ended, by event
    /// word.
    pub fn last_runs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a LastRun)> {
        self.last
            .range((name.to_string(), String::new())..)
            .take_while(move |((r, _), _)| r == name)
            .map(|((_, word), run)| (word.as_str(), run))
    }

    fn remember(&mut self, req: &Request, result: HookResult, took: Duration) {
        let run = LastRun {
            result,
            took,
            ended: Instant::now(),
        };
        self.last
            .insert((req.name.clone(), req.args[0].clone()), run);
    }

    /// The process group of the hook running for `resource`, if any.
    pub fn running_group(&self, resource: usize) -> Option<i32> {
        self.running.get(&resource).map(|r| r.pid.as_raw())
    }

    /// Whether a `stop` of `resource` is queued or running: the resource
    /// may still be up, and the guardian must stop it should this process
    /// die before the `stop` ran.
    pub fn owes_stop(&self, resource: usize) -> bool {
        let is_stop = |r: &Request| r.args.first().is_some_and(|a| a == "stop");
        self.running.get(&resource).is_some_and(|r| is_stop(&r.req))
            || self
                .queued
                .get(&resource)
                .is_some_and(|q| q.iter().any(is_stop))
    }

    /// True when no hook runs or waits.
    pub fn idle(&self) -> bool {
        self.running.is_empty() && self.queued.values().all(VecDeque::is_empty)
    }

    /// The worker `caller` is gone: its hooks still run, but nobody is
    /// told their results.
    pub fn forget_caller(&mut self, caller: u64) {
        let reqs = self
            .running
            .values_mut()
            .map(|r| &mut r.req)
            .chain(self.queued.values_mut().flatten());
        for req in reqs {
            if req.caller.is_some_and(|(c, _)| c == caller) {
                req.caller = None;
            }
        }
    }

    fn start_next(&mut self, poller: &mut Poller, resource: usize) -> Vec<Finished> {
        let mut done = Vec::new();
        while !self.running.contains_key(&resource) {
            let Some(req) = self.queued.get_mut(&resource).and_then(VecDeque::pop_front) else {
                break;
            };
            if let Err(e) = self.spawn(poller, req.clone()) {
                log_limited(
                    Level::Error,
                    Some(&failure_key(&req, "not run")),
                    format_args!(
                        "[{}] Unable to execute {}: {e}.",
                        req.name,
                        req.exec.display()
                    ),
                );
                self.remember(&req, HookResult::NotRun, Duration::ZERO);
                done.extend(finished(&req, HookResult::NotRun));
            }
        }
        done
    }

    fn spawn(&mut self, poller: &mut Poller, req: Request) -> std::io::Result<()> {
        let mut child = command(&req.exec, &req.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = Pid::from_raw(child.id() as i32);
        let cmd = req.command_line();
        log_debug!(1, "[{}] Hook started (pid={pid}, cmd=[{cmd}]).", req.name);
        let label = format!("[{}] {}[{pid}]", req.name, req.args[0]);
        let pipes = [
            child.stdout.take().map(|p| (OwnedFd::from(p), false)),
            child.stderr.take().map(|p| (OwnedFd::from(p), true)),
        ];
        let mut output_ids = Vec::new();
        for (fd, stderr) in pipes.into_iter().flatten() {
            let id = self.id();
            let _ = crate::sys::fd::set_nonblocking(&fd);
            if let Err(e) = poller.register(fd.as_fd(), Token(id), Interest::Read) {
                log_warning!("{label}: its output is lost: {e}.");
                continue;
            }
            output_ids.push(id);
            self.outputs.insert(
                id,
                Output {
                    pipe: File::from(fd),
                    buf: Vec::new(),
                    label: label.clone(),
                    stderr,
                },
            );
        }
        // The child is reaped through the poller; `child` is dropped
        // without waiting.
        let timer = TimerId(self.id());
        let watched = poller
            .watch_process(pid)
            .and_then(|()| poller.set_timer(timer, req.timeout, false));
        if let Err(e) = watched {
            // Unwatched, it would run unbounded and unreaped: end it, and
            // leave none of its pipes registered.
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            let _ = poller.cancel_timer(timer);
            for id in output_ids {
                if let Some(out) = self.outputs.remove(&id) {
                    let _ = poller.deregister(out.pipe.as_fd());
                }
            }
            return Err(e);
        }
        self.running.insert(
            req.resource,
            Running {
                req,
                pid,
                started: Instant::now(),
                timer,
                killing: None,
            },
        );
        Ok(())
    }

    /// A child exited: if it was a hook, log it, start the next hook of
    /// its resource, and return what is to be reported.
    /// `None` if the pid is not a hook's.
    pub fn exited(
        &mut self,
        poller: &mut Poller,
        pid: Pid,
        status: ExitStatus,
    ) -> Option<Vec<Finished>> {
        let resource = *self
            .running
            .iter()
            .find(|(_, r)| r.pid == pid)
            .map(|(res, _)| res)?;
        let run = self.running.remove(&resource)?;
        let _ = poller.cancel_timer(run.timer);
        let cmd = run.req.command_line();
        let took = run.started.elapsed();
        let secs = took.as_secs_f64();
        let name = &run.req.name;
        let result = match (run.killing, status) {
            (Some(_), _) => HookResult::TimedOut,
            (None, ExitStatus::Exited(c)) => HookResult::Exited(c),
            (None, ExitStatus::Signaled(s)) => HookResult::Signaled(s),
        };
        let key = failure_key(&run.req, &result.to_string());
        let key = Some(key.as_str());
        match result {
            HookResult::Exited(0) => {
                log_debug!(
                    1,
                    "[{name}] Hook exited (pid={pid}, exitcode=0, {secs:.3} s, cmd=[{cmd}])."
                )
            }
            // `status` says "stopped" with 1: an answer, not a failure.
            HookResult::Exited(1) if run.req.args[0] == "status" => {
                log_debug!(
                    1,
                    "[{name}] Hook exited (pid={pid}, exitcode=1, {secs:.3} s, cmd=[{cmd}])."
                )
            }
            HookResult::Exited(c) => log_limited(
                Level::Warning,
                key,
                format_args!(
                    "[{name}] Hook failed (pid={pid}, exitcode={c}, {secs:.3} s, cmd=[{cmd}])."
                ),
            ),
            HookResult::Signaled(s) => log_limited(
                Level::Warning,
                key,
                format_args!("[{name}] Hook was killed (pid={pid}, signal={s}, cmd=[{cmd}])."),
            ),
            HookResult::TimedOut | HookResult::NotRun => log_limited(
                Level::Error,
                key,
                format_args!(
                    "[{name}] Hook timed out after {} s and was killed (pid={pid}, cmd=[{cmd}]).",
                    run.req.timeout.as_secs_f64()
                ),
            ),
        }
        self.remember(&run.req, result, took);
        let mut done: Vec<Finished> = finished(&run.req, result).into_iter().collect();
        done.extend(self.start_next(poller, resource));
        Some(done)
    }

    /// A hook's time limit (or its grace after SIGTERM) ran out.
    pub fn timer(&mut self, poller: &mut Poller, id: TimerId) {
        let Some(run) = self.running.values_mut().find(|r| r.timer == id) else {
            return;
        };
        let signal = if run.killing.is_none() {
            log_limited(
                Level::Warning,
                Some(&failure_key(&run.req, "SIGTERM")),
                format_args!(
                    "[{}] Hook is running for {} s, its limit (pid={}, cmd=[{}]); sending SIGTERM.",
                    run.req.name,
                    run.req.timeout.as_secs_f64(),
                    run.pid,
                    run.req.command_line()
                ),
            );
            let _ = poller.set_timer(id, KILL_GRACE, false);
            Signal::SIGTERM
        } else {
            log_limited(
                Level::Warning,
                Some(&failure_key(&run.req, "SIGKILL")),
                format_args!(
                    "[{}] Hook ignored SIGTERM (pid={}); sending SIGKILL.",
                    run.req.name, run.pid
                ),
            );
            Signal::SIGKILL
        };
        run.killing = Some(signal);
        if let Err(e) = killpg(run.pid, signal) {
            log_warning!(
                "[{}] Unable to signal hook (pid={}): {e}.",
                run.req.name,
                run.pid
            );
        }
    }

    /// A hook's output pipe is readable: log each complete line.
    pub fn readable(&mut self, poller: &mut Poller, id: u64) {
        let Some(out) = self.outputs.get_mut(&id) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let eof = loop {
            match out.pipe.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => {
                    out.buf.extend_from_slice(&chunk[..n]);
                    out.log_lines(false);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        if eof {
            out.log_lines(true);
            let _ = poller.deregister(out.pipe.as_fd());
            self.outputs.remove(&id);
        }
    }

    /// Every descriptor this holds, for a forked worker to close.
    pub fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.extend(self.outputs.values().map(|o| o.pipe.as_raw_fd()));
    }
}

impl Output {
    /// Logs complete lines (and, at the end, what is left); a line longer
    /// than MAX_LINE is cut into pieces rather than buffered for ever.
    fn log_lines(&mut self, end: bool) {
        loop {
            let cut = match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) if i <= MAX_LINE => (i, 1),
                _ if self.buf.len() >= MAX_LINE => (MAX_LINE, 0),
                _ if end && !self.buf.is_empty() => (self.buf.len(), 0),
                _ => return,
            };
            let line: Vec<u8> = self.buf.drain(..cut.0 + cut.1).take(cut.0).collect();
            let text = String::from_utf8_lossy(&line);
            if self.stderr {
                log_warning!("{}: {text}", self.label);
            } else {
                log_info!("{}: {text}", self.label);
            }
        }
    }
}

/// What makes two hook failures the same for the log's rate limit: the
/// pid, duration and arguments of each run differ.
fn failure_key(req: &Request, what: &str) -> String {
    format!("[{}] hook {}: {what}", req.name, req.args[0])
}

fn finished(req: &Request, result: HookResult) -> Option<Finished> {
    let (caller, event) = req.caller?;
    Some(Finished {
        resource: req.resource,
        caller,
        event,
        result,
    })
}

/// `<exec> <args>` as every hook runs: argv[0] the base name of the path,
/// its own process group (what a time limit kills), stdin on /dev/null.
/// std resets the signal mask and dispositions in the child.
pub fn command(exec: &std::path::Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
    let argv0 = exec
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = Command::new(exec);
    cmd.arg0(argv0)
        .args(args)
        .process_group(0)
        .stdin(Stdio::null());
    cmd
}
