//! The watchdog: polls every node and complains to the secondaries when no
//! node is primary.
//!
//! One cycle every `heartbeat_interval`, on a fixed schedule, starting at
//! once: poll every remote (not `none`). A poll that is not answered
//! within `timeout` (and never later than the next cycle) is abandoned and
//! counts as an error, read as role `unknown`, state `unknown` (doc/quirks.md
//! Q21). When every remote has answered or expired the cycle is evaluated,
//! exactly once (Q1), and complaints go out at once.
//!
//! The rule (Q11 fixed): complain when no remote reports role primary. An
//! unreachable remote is not primary. A primary that answers is left
//! alone whatever its state: while it is starting, or its `status` fails,
//! it is reachable and in charge, and taking over from it would run the
//! resource twice. Its own `attempts` limit decides when it gives up, and
//! once it has given up it no longer reports primary. Complaints go to
//! every remote that reports role secondary; the watchdog's own state is
//! UNKNOWN while it complains and RUN otherwise.

use std::time::Duration;

use super::primary::RemoteSpec;
use super::{Action, Input, Level, RemoteReport, Report, Time, log, next_slot};
use crate::config::Resource;
use crate::exit;
use crate::proto::msg::HookEvent;
use crate::types::{Role, State};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchdogConfig {
    pub heartbeat: Duration,
    /// How long a poll may take.
    pub timeout: Duration,
    pub remotes: Vec<RemoteSpec>,
}

impl WatchdogConfig {
    pub fn from_resource(r: &Resource) -> WatchdogConfig {
        WatchdogConfig {
            heartbeat: r.heartbeat_interval,
            timeout: r.timeout,
            remotes: r
                .remote
                .iter()
                .map(|a| RemoteSpec {
                    addr: a.to_string(),
                    reachable: !a.is_none(),
                })
                .collect(),
        }
    }
}

const UNSEEN: (Role, State) = (Role::Undef, State::Unknown);

#[derive(Debug)]
pub struct Watchdog {
    cfg: WatchdogConfig,
    /// What each remote reported at the last evaluated cycle.
    seen: Vec<(Role, State)>,
    /// Per remote, the answer of this cycle so far, and until when a poll
    /// in flight is waited for.
    answers: Vec<(Role, State)>,
    waiting: Vec<Option<Time>>,
    /// Per remote, when its last answer arrived (for the report).
    heard: Vec<Option<Time>>,
    next_cycle: Time,
    /// Numbers the cycles: a poll's answer counts only for its own.
    cycle: u64,
    state: State,
    done: bool,
}

impl Watchdog {
    pub fn new(cfg: WatchdogConfig, now: Time) -> Watchdog {
        let n = cfg.remotes.len();
        Watchdog {
            cfg,
            seen: vec![UNSEEN; n],
            answers: vec![UNSEEN; n],
            waiting: vec![None; n],
            heard: vec![None; n],
            next_cycle: now,
            cycle: 0,
            state: State::Unknown,
            done: false,
        }
    }

    /// When the machine next wants a [`Input::Tick`].
    pub fn deadline(&self) -> Option<Time> {
        if self.done {
            return None;
        }
        self.waiting
            .iter()
            .flatten()
            .copied()
            .chain([self.next_cycle])
            .min()
    }

    pub fn report(&self) -> Report {
        Report {
            state: self.state,
            attempts: 0,
            remotes: self
                .seen
                .iter()
                .map(|&(role, state)| RemoteReport::Seen { role, state })
                .collect(),
            seen: self.heard.clone(),
        }
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        match input {
            Input::Start => self.cycle(now, &mut out),
            Input::Tick => {
                for i in 0..self.waiting.len() {
                    if self.waiting[i].is_some_and(|at| now >= at) {
                        self.expire(i, &mut out);
                    }
                }
                if now >= self.next_cycle {
                    self.cycle(now, &mut out);
                }
            }
            Input::Polled {
                remote,
                cycle,
                result,
            } => {
                // Late for its cycle: the remote counts as unseen there,
                // and the answer tells nothing of this one.
                if cycle != self.cycle || self.waiting.get(remote).copied().flatten().is_none() {
                    return out;
                }
                self.waiting[remote] = None;
                self.answers[remote] = match result {
                    Ok(seen) => {
                        self.heard[remote] = Some(now);
                        seen
                    }
                    Err(why) => {
                        log(
                            &mut out,
                            Level::Warning,
                            format!("Unable to poll {}: {why}.", self.cfg.remotes[remote].addr),
                        );
                        UNSEEN
                    }
                };
                self.maybe_evaluate(&mut out);
            }
            Input::Terminate { .. } => {
                self.done = true;
                out.push(Action::Exit(exit::OK));
            }
            Input::HookDone { .. }
            | Input::Connected { .. }
            | Input::ConnectFailed { .. }
            | Input::Reply { .. }
            | Input::Heartbeat { .. }
            | Input::PeerLost { .. }
            | Input::StatusPolled { .. } => {}
        }
        out
    }

    fn cycle(&mut self, now: Time, out: &mut Vec<Action>) {
        // A cycle still open when the next is due is closed first: every
        // remote gets one answer or one error per cycle, never two.
        for i in 0..self.waiting.len() {
            if self.waiting[i].is_some() {
                self.expire(i, out);
            }
        }
        self.next_cycle = next_slot(self.next_cycle, now, self.cfg.heartbeat);
        self.cycle += 1;
        let until = now + self.cfg.timeout.min(self.cfg.heartbeat);
        for (i, spec) in self.cfg.remotes.iter().enumerate() {
            self.answers[i] = UNSEEN;
            if spec.reachable {
                self.waiting[i] = Some(until);
                out.push(Action::Poll {
                    remote: i,
                    cycle: self.cycle,
                });
            }
        }
        self.maybe_evaluate(out);
    }

    fn expire(&mut self, i: usize, out: &mut Vec<Action>) {
        self.waiting[i] = None;
        self.answers[i] = UNSEEN;
        log(
            out,
            Level::Warning,
            format!("No status from {} in time.", self.cfg.remotes[i].addr),
        );
        out.push(Action::Disconnect { remote: i });
        self.maybe_evaluate(out);
    }

    fn maybe_evaluate(&mut self, out: &mut Vec<Action>) {
        if self.waiting.iter().any(Option::is_some) {
            return;
        }
        self.seen.clone_from(&self.answers);
        let primary = self.seen.iter().any(|&(role, _)| role == Role::Primary);
        let targets: Vec<usize> = (0..self.seen.len())
            .filter(|&i| self.seen[i].0 == Role::Secondary)
            .collect();
        if primary || targets.is_empty() {
            self.state = State::Run;
            return;
        }
        self.state = State::Unknown;
        let names: Vec<&str> = targets
            .iter()
            .map(|&i| self.cfg.remotes[i].addr.as_str())
            .collect();
        log(
            out,
            Level::Warning,
            format!("No primary reachable; complaining to {}.", names.join(", ")),
        );
        out.extend(
            targets
                .into_iter()
                .map(|remote| Action::Complain { remote }),
        );
        out.push(Action::RunHook(HookEvent::Complaint));
    }
}

#[cfg(test)]
mod tests;
