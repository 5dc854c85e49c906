//! The exec hooks of each resource: one at a time, in the order asked, so
//! that `status` never races `start` and `stop` never overlaps `start`
//! (Q5); a request equal to one already waiting is dropped. A hook that
//! outlives `hook_timeout` gets SIGTERM on its process group, then
//! SIGKILL after `KILL_GRACE`, and counts as timed out. The last run of
//! each event is remembered for `status -j`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::{Action, HookId, NodeMachine, ResId, WorkerId, WorkerRef, log, log_limited};
use crate::proto::msg::HookEvent;
use crate::role::{HookResult, Level, Time};
use crate::worker::msg::ToWorker;

/// Between SIGTERM and SIGKILL for a hook past its time limit.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// How a hook process ended, as the shell saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookExit {
    Exited(i32),
    Signaled(i32),
    /// It could not be started; the reason.
    NotRun(String),
}

/// One hook to run: the arguments after argv[0] (the event word, the
/// resource name, extras), and the worker that waits for its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookReq {
    pub args: Vec<String>,
    pub caller: Option<(WorkerId, HookEvent)>,
}

impl HookReq {
    fn word(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }
}

/// How the last run of a hook event ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastRun {
    pub result: HookResult,
    pub took: Duration,
    pub ended: Time,
}

#[derive(Debug)]
struct Running {
    id: HookId,
    req: HookReq,
    exec: String,
    timeout: Duration,
    pid: Option<i32>,
    started: Time,
    /// When the next signal is due; `None` once SIGKILL was sent.
    deadline: Option<Time>,
    /// SIGTERM was sent: whatever the exit, it timed out.
    killing: bool,
}

impl Running {
    fn command_line(&self) -> String {
        let mut s = self.exec.clone();
        for a in &self.req.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// One resource's hooks.
#[derive(Debug, Default)]
pub struct Hooks {
    queued: VecDeque<HookReq>,
    running: Option<Running>,
    /// By event word; the words are a fixed set.
    last: BTreeMap<String, LastRun>,
}

impl Hooks {
    pub fn running(&self) -> Option<HookId> {
        self.running.as_ref().map(|r| r.id)
    }

    /// The process group of the hook running now, once started.
    pub fn running_group(&self) -> Option<i32> {
        self.running.as_ref().and_then(|r| r.pid)
    }

    pub fn idle(&self) -> bool {
        self.running.is_none() && self.queued.is_empty()
    }

    /// Whether a `stop` is queued or running: the resource may still be
    /// up, and the guardian must stop it should the main process die.
    pub fn owes_stop(&self) -> bool {
        let is_stop = |r: &HookReq| r.word() == "stop";
        self.running.as_ref().is_some_and(|r| is_stop(&r.req)) || self.queued.iter().any(is_stop)
    }

    /// The events queued or running, in order (for tests and traces).
    pub fn pending_words(&self) -> Vec<&str> {
        let running = self.running.as_ref().map(|r| r.req.word());
        running
            .into_iter()
            .chain(self.queued.iter().map(HookReq::word))
            .collect()
    }

    pub fn deadline(&self) -> Option<Time> {
        self.running.as_ref().and_then(|r| r.deadline)
    }

    /// The last run of each event that ended, by event word.
    pub fn last_runs(&self) -> impl Iterator<Item = (&str, &LastRun)> {
        self.last.iter().map(|(w, r)| (w.as_str(), r))
    }

    /// The worker is gone: its hooks still run, nobody hears of them.
    pub fn forget_caller(&mut self, id: WorkerId) {
        let reqs = self
            .running
            .iter_mut()
            .map(|r| &mut r.req)
            .chain(self.queued.iter_mut());
        for req in reqs {
            if req.caller.is_some_and(|(c, _)| c == id) {
                req.caller = None;
            }
        }
    }

    /// The time limit of the running hook: SIGTERM, then SIGKILL.
    pub fn tick(&mut self, now: Time, name: &str, out: &mut Vec<Action>) {
        let Some(run) = self.running.as_mut() else {
            return;
        };
        if run.deadline.is_none_or(|t| t > now) {
            return;
        }
        let kill = run.killing;
        let pid = run.pid.map_or_else(|| "?".into(), |p| p.to_string());
        if kill {
            log_limited(
                out,
                Level::Warning,
                format!("[{name}] Hook ignored SIGTERM (pid={pid}); sending SIGKILL."),
                Some(failure_key(name, run.req.word(), "SIGKILL")),
            );
            run.deadline = None;
        } else {
            log_limited(
                out,
                Level::Warning,
                format!(
                    "[{name}] Hook is running for {} s, its limit (pid={pid}, cmd=[{}]); sending SIGTERM.",
                    run.timeout.as_secs_f64(),
                    run.command_line()
                ),
                Some(failure_key(name, run.req.word(), "SIGTERM")),
            );
            run.killing = true;
            run.deadline = Some(now + KILL_GRACE);
        }
        out.push(Action::SignalHook { hook: run.id, kill });
    }
}

impl NodeMachine {
    /// Queues a hook of resource `id`; it starts now if none runs.
    pub(super) fn queue_hook(&mut self, id: ResId, req: HookReq, out: &mut Vec<Action>) {
        let Some(r) = self.res.get_mut(&id) else {
            return;
        };
        if r.hooks.queued.contains(&req) {
            let msg = format!("[{}] Hook {} is already queued.", r.cfg.name, req.word());
            log(out, Level::Debug, msg);
            return;
        }
        r.hooks.queued.push_back(req);
        self.start_hook(id, out);
    }

    fn start_hook(&mut self, id: ResId, out: &mut Vec<Action>) {
        let hook = self.next_hook_id();
        let now = self.now;
        let Some(r) = self.res.get_mut(&id) else {
            return;
        };
        if r.hooks.running.is_some() {
            return;
        }
        let Some(req) = r.hooks.queued.pop_front() else {
            return;
        };
        let exec = r.cfg.exec.clone();
        out.push(Action::RunHook {
            hook,
            exec: exec.clone(),
            args: req.args.clone(),
        });
        r.hooks.running = Some(Running {
            id: hook,
            req,
            exec,
            timeout: r.cfg.hook_timeout,
            pid: None,
            started: now,
            deadline: Some(now + r.cfg.hook_timeout),
            killing: false,
        });
        self.hook_owner.insert(hook, id);
    }

    pub(super) fn hook_started(&mut self, hook: HookId, pid: i32) {
        let Some(id) = self.hook_owner.get(&hook) else {
            return;
        };
        if let Some(run) = self.res.get_mut(id).and_then(|r| r.hooks.running.as_mut()) {
            run.pid = Some(pid);
        }
    }

    /// A hook ended: log it, remember it, tell the worker that waits for
    /// it, and start the next one.
    pub(super) fn hook_exited(&mut self, hook: HookId, exit: HookExit, out: &mut Vec<Action>) {
        let Some(id) = self.hook_owner.remove(&hook) else {
            return;
        };
        let now = self.now;
        let Some(r) = self.res.get_mut(&id) else {
            return;
        };
        let Some(run) = r.hooks.running.take_if(|run| run.id == hook) else {
            return;
        };
        let result = match (&exit, run.killing) {
            (HookExit::NotRun(_), _) => HookResult::NotRun,
            (_, true) => HookResult::TimedOut,
            (HookExit::Exited(c), false) => HookResult::Exited(*c),
            (HookExit::Signaled(s), false) => HookResult::Signaled(*s),
        };
        let took = now.since(run.started);
        log_exit(&r.cfg.name, &run, &exit, result, took, out);
        r.hooks.last.insert(
            run.req.word().to_string(),
            LastRun {
                result,
                took,
                ended: now,
            },
        );
        if let Some((caller, event)) = run.req.caller {
            let worker = WorkerRef {
                res: id,
                id: caller,
            };
            let present = r.workers.iter().any(|w| w.id == caller);
            if present {
                out.push(Action::ToWorker {
                    worker,
                    msg: ToWorker::HookDone { event, result },
                });
            }
        }
        self.start_hook(id, out);
    }
}

fn log_exit(
    name: &str,
    run: &Running,
    exit: &HookExit,
    result: HookResult,
    took: Duration,
    out: &mut Vec<Action>,
) {
    let cmd = run.command_line();
    let secs = took.as_secs_f64();
    let pid = run.pid.map_or_else(|| "?".into(), |p| p.to_string());
    let word = run.req.word();
    let key = |what: &str| Some(failure_key(name, word, what));
    match (exit, result) {
        (HookExit::NotRun(e), _) => log_limited(
            out,
            Level::Error,
            format!("[{name}] Unable to execute {}: {e}.", run.exec),
            key("not run"),
        ),
        (_, HookResult::Exited(0)) => log(
            out,
            Level::Debug,
            format!("[{name}] Hook exited (pid={pid}, exitcode=0, {secs:.3} s, cmd=[{cmd}])."),
        ),
        // `status` says "stopped" with 1: an answer, not a failure.
        (_, HookResult::Exited(1)) if word == "status" => log(
            out,
            Level::Debug,
            format!("[{name}] Hook exited (pid={pid}, exitcode=1, {secs:.3} s, cmd=[{cmd}])."),
        ),
        (_, HookResult::Exited(c)) => log_limited(
            out,
            Level::Warning,
            format!("[{name}] Hook failed (pid={pid}, exitcode={c}, {secs:.3} s, cmd=[{cmd}])."),
            key(&result.to_string()),
        ),
        (_, HookResult::Signaled(s)) => log_limited(
            out,
            Level::Warning,
            format!("[{name}] Hook was killed (pid={pid}, signal={s}, cmd=[{cmd}])."),
            key(&result.to_string()),
        ),
        (_, HookResult::TimedOut | HookResult::NotRun) => log_limited(
            out,
            Level::Error,
            format!(
                "[{name}] Hook timed out after {} s and was killed (pid={pid}, cmd=[{cmd}]).",
                run.timeout.as_secs_f64()
            ),
            key(&result.to_string()),
        ),
    }
}

/// What makes two hook failures the same for the log's rate limit: the
/// pid, duration and arguments of each run differ.
fn failure_key(name: &str, word: &str, what: &str) -> String {
    format!("[{name}] hook {word}: {what}")
}
