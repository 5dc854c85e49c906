//! The primary: keeps the resource running here, heartbeats the remotes,
//! and gives up when starting keeps failing or the network goes silent.
//!
//! One cycle every `heartbeat_interval`, on a fixed schedule: send a
//! heartbeat to every connected remote, retry the ones that are down, and
//! ask for `status` unless one is still on its way. Each `status` result
//! is evaluated exactly once, against the remotes' latest replies
//! (doc/quirks.md Q1, Q6). Hooks of a resource run one at a time in the main
//! process, so a `status` asked after `start` reports on the finished
//! `start` (Q5), and the state evaluated is always a fresh `status`
//! result, never STARTING or STOPPING (Q7).

use std::time::Duration;

use super::{Action, ConnectFailure, Input, Level, RemoteReport, Report, Time, log};
use crate::config::Resource;
use crate::exit;
use crate::proto::msg::{HeartbeatRequest, HeartbeatStatus, HookEvent, errmsg};
use crate::types::State;

/// What the primary needs of the resource's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimaryConfig {
    pub heartbeat: Duration,
    pub timeout: Duration,
    pub attempts: u32,
    pub complaint_count: u32,
    /// No contact for longer than this stops the resource (the
    /// network-silence rule); `None`: never.
    pub silence_limit: Option<Duration>,
    pub remotes: Vec<RemoteSpec>,
    /// Start checking (and starting) the resource before the first
    /// connection attempts end. Set for a promotion, whose old primary is
    /// presumed gone (doc/quirks.md Q56); otherwise a remote that already runs
    /// the resource is heard first.
    pub urgent: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSpec {
    pub addr: String,
    /// `false` for `none`: never connected, never counted.
    pub reachable: bool,
}

impl PrimaryConfig {
    pub fn from_resource(r: &Resource) -> PrimaryConfig {
        PrimaryConfig {
            heartbeat: r.heartbeat_interval,
            timeout: r.timeout,
            attempts: r.attempts,
            complaint_count: r.complaint_count,
            remotes: r
                .remote
                .iter()
                .map(|a| RemoteSpec {
                    addr: a.to_string(),
                    reachable: !a.is_none(),
                })
                .collect(),
            // Zero in the configuration turns the rule off. Its default,
            // `complaint_count` intervals as in 0.3.4 plus `timeout`, because
            // contact is now a reply, and on a healthy link replies come
            // up to `heartbeat + timeout` apart.
            silence_limit: (!r.silence_limit.is_zero()).then_some(r.silence_limit),
            urgent: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Down,
    Connecting,
    /// `awaiting`: the sequence number and reply deadline of the
    /// heartbeat in flight.
    Up {
        awaiting: Option<(u64, Time)>,
        state: State,
    },
}

#[derive(Debug)]
pub struct Primary {
    cfg: PrimaryConfig,
    local: State,
    attempts: u32,
    links: Vec<Link>,
    seq: u64,
    /// The first cycle waits for the first connection attempts, so that a
    /// remote already running the resource is heard before we start it.
    cycling: bool,
    next_cycle: Time,
    status_pending: bool,
    /// The last time a remote proved that it hears us and we hear it: a
    /// completed handshake, a heartbeat reply, a refused handshake.
    last_contact: Time,
    /// The last acknowledged status poll from the network (a watchdog's).
    last_remote_check: Time,
    /// Per remote, its last contact (for the report).
    heard: Vec<Option<Time>>,
    /// Per remote: it refused our handshake because it is still stopping
    /// the resource; nothing starts here until it accepts or goes away.
    stopping: Vec<bool>,
    done: bool,
}

impl Primary {
    pub fn new(cfg: PrimaryConfig, now: Time) -> Primary {
        let links = vec![Link::Down; cfg.remotes.len()];
        Primary {
            heard: vec![None; cfg.remotes.len()],
            stopping: vec![false; cfg.remotes.len()],
            next_cycle: now + cfg.heartbeat,
            cfg,
            local: State::Unknown,
            attempts: 0,
            links,
            seq: 0,
            cycling: false,
            status_pending: false,
            last_contact: now,
            last_remote_check: now,
            done: false,
        }
    }

    /// When the machine next wants a [`Input::Tick`].
    pub fn deadline(&self) -> Option<Time> {
        if self.done {
            return None;
        }
        let replies = self.links.iter().filter_map(|l| match l {
            Link::Up {
                awaiting: Some((_, at)),
                ..
            } => Some(*at),
            _ => None,
        });
        replies
            .chain([self.next_cycle])
            .chain(self.silence_deadline())
            .min()
    }

    pub fn report(&self) -> Report {
        Report {
            state: self.local,
            attempts: self.attempts,
            remotes: self
                .links
                .iter()
                .map(|l| RemoteReport::Link {
                    connected: matches!(l, Link::Up { .. }),
                })
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
            Input::Start => self.start(now, &mut out),
            Input::Tick => self.tick(now, &mut out),
            Input::Connected { remote } => self.connected(now, remote, &mut out),
            Input::ConnectFailed { remote, reason } => {
                self.connect_failed(now, remote, reason, &mut out)
            }
            Input::Reply { remote, msg } => {
                if let Some(Link::Up { awaiting, state }) = self.links.get_mut(remote) {
                    match *awaiting {
                        Some((seq, _)) if msg.seq == Some(seq) => {
                            *awaiting = None;
                            self.last_contact = now;
                            self.heard[remote] = Some(now);
                            *state = match msg.status {
                                HeartbeatStatus::State(s) => s,
                                HeartbeatStatus::Error(_) => State::Unknown,
                            };
                        }
                        _ => log(
                            &mut out,
                            Level::Debug,
                            format!(
                                "Ignoring a reply from {} with an unexpected sequence number.",
                                self.cfg.remotes[remote].addr
                            ),
                        ),
                    }
                }
            }
            Input::PeerLost { remote } => self.lose(remote, &mut out),
            Input::HookDone {
                event: HookEvent::Status,
                result,
            } => {
                self.status_pending = false;
                self.local = result.status_state();
                self.evaluate(&mut out);
            }
            Input::HookDone { .. } | Input::Heartbeat { .. } | Input::Polled { .. } => {}
            Input::StatusPolled { remote } => {
                if remote {
                    self.last_remote_check = now;
                }
            }
            Input::Terminate { stop: true } => {
                log(
                    &mut out,
                    Level::Notice,
                    "Termination signal received, exiting.",
                );
                self.exit(exit::OK, &mut out);
            }
            Input::Terminate { stop: false } => {
                log(&mut out, Level::Notice, "Terminating due to reload.");
                self.done = true;
                out.push(Action::Exit(exit::OK));
            }
        }
        out
    }

    fn start(&mut self, now: Time, out: &mut Vec<Action>) {
        self.connect_all(out);
        if self.cfg.urgent || !self.connecting() {
            self.cycle(now, out);
        }
    }

    fn connecting(&self) -> bool {
        self.links.contains(&Link::Connecting)
    }

    fn connect_all(&mut self, out: &mut Vec<Action>) {
        for (i, spec) in self.cfg.remotes.iter().enumerate() {
            if spec.reachable && self.links[i] == Link::Down {
                self.links[i] = Link::Connecting;
                out.push(Action::Connect { remote: i });
            }
        }
    }

    fn tick(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.silent(now) {
            log(
                out,
                Level::Error,
                format!(
                    "Network silence limit ({} sec) reached.",
                    self.cfg.silence_limit.unwrap_or_default().as_secs_f64()
                ),
            );
            self.exit(exit::NOHOST, out);
            return;
        }
        for i in 0..self.links.len() {
            if let Link::Up {
                awaiting: Some((_, at)),
                ..
            } = self.links[i]
                && now >= at
            {
                log(
                    out,
                    Level::Warning,
                    format!(
                        "No heartbeat reply from {} within {} ms.",
                        self.cfg.remotes[i].addr,
                        self.cfg.timeout.as_millis()
                    ),
                );
                self.lose(i, out);
            }
        }
        if now >= self.next_cycle {
            self.cycle(now, out);
        }
    }

    /// One heartbeat period.
    fn cycle(&mut self, now: Time, out: &mut Vec<Action>) {
        // A fixed schedule: late cycles do not push the later ones (Q8).
        self.next_cycle = if self.cycling {
            self.next_cycle + self.cfg.heartbeat
        } else {
            now + self.cfg.heartbeat
        };
        self.cycling = true;
        if self.next_cycle <= now {
            self.next_cycle = now + self.cfg.heartbeat;
        }
        self.seq += 1;
        for (i, link) in self.links.iter_mut().enumerate() {
            if let Link::Up { awaiting, .. } = link {
                *awaiting = Some((self.seq, now + self.cfg.timeout));
                out.push(Action::Heartbeat {
                    remote: i,
                    msg: HeartbeatRequest::new(self.local, self.seq),
                });
            }
        }
        self.connect_all(out);
        if !self.status_pending {
            self.status_pending = true;
            out.push(Action::RunHook(HookEvent::Status));
        }
    }

    /// The network-silence rule: with remotes to talk to, no contact and
    /// no remote status poll for longer than the limit means we are cut
    /// off. A primary with only `none` has nobody to lose (Q12).
    ///
    /// Contact is counted only for exchanges that went both ways (a reply,
    /// a handshake answer), never for a link merely believed up: a remote
    /// that hears us while we do not hear it must not keep us running past
    /// the limit, because it may be promoting itself meanwhile.
    ///
    /// The rule is checked at its own deadline, not at the next cycle, so
    /// that the resource stops as soon as the limit is passed: the bound on
    /// how long two nodes may run it together depends on it.
    fn silent(&self, now: Time) -> bool {
        self.silence_deadline().is_some_and(|at| now >= at)
    }

    /// The first instant strictly more than the limit after the last
    /// contact; `None` without remotes to talk to.
    fn silence_deadline(&self) -> Option<Time> {
        if !self.cfg.remotes.iter().any(|r| r.reachable) {
            return None;
        }
        let last = self.last_contact.max(self.last_remote_check);
        Some(last + self.cfg.silence_limit? + Duration::from_millis(1))
    }

    fn connected(&mut self, now: Time, i: usize, out: &mut Vec<Action>) {
        if self.links.get(i) != Some(&Link::Connecting) {
            return;
        }
        self.links[i] = Link::Up {
            awaiting: None,
            state: State::Unknown,
        };
        self.last_contact = now;
        self.heard[i] = Some(now);
        self.stopping[i] = false;
        log(
            out,
            Level::Notice,
            format!("Connected to {}.", self.cfg.remotes[i].addr),
        );
        out.push(Action::RunHook(HookEvent::Connect));
        if !self.cycling && !self.connecting() {
            self.cycle(now, out);
        }
    }

    fn connect_failed(
        &mut self,
        now: Time,
        i: usize,
        reason: ConnectFailure,
        out: &mut Vec<Action>,
    ) {
        if self.links.get(i) != Some(&Link::Connecting) {
            return;
        }
        self.links[i] = Link::Down;
        self.stopping[i] = matches!(&reason, ConnectFailure::Refused(e) if e == errmsg::STOPPING);
        let addr = &self.cfg.remotes[i].addr;
        match reason {
            ConnectFailure::Unreachable(why) => log(
                out,
                Level::Warning,
                format!("Unable to connect to {addr}: {why}."),
            ),
            ConnectFailure::Refused(errmsg) => {
                // An answer, even a refusal, proves the path works both ways.
                self.last_contact = now;
                self.heard[i] = Some(now);
                log(out, Level::Warning, format!("{addr}: {errmsg}"));
            }
            ConnectFailure::StrongerPrimary { errmsg, .. } => {
                log(out, Level::Warning, format!("{addr}: {errmsg}"));
                log(out, Level::Error, "Primary with higher priority exists.");
                self.exit(exit::NOPERM, out);
                return;
            }
        }
        if !self.cycling && !self.connecting() {
            self.cycle(now, out);
        }
    }

    fn lose(&mut self, i: usize, out: &mut Vec<Action>) {
        if !matches!(self.links.get(i), Some(Link::Up { .. })) {
            return;
        }
        self.links[i] = Link::Down;
        log(
            out,
            Level::Warning,
            format!("Disconnected from {}.", self.cfg.remotes[i].addr),
        );
        out.push(Action::Disconnect { remote: i });
        out.push(Action::RunHook(HookEvent::Disconnect));
    }

    /// Decides on a fresh `status` result.
    fn evaluate(&mut self, out: &mut Vec<Action>) {
        let running_remote = self
            .links
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, l)| match l {
                Link::Up {
                    state: State::Run | State::Starting | State::Stopping,
                    ..
                } => Some(i),
                // Refused us while it stops its own copy (and we may be
                // trying again).
                Link::Down | Link::Connecting if self.stopping[i] => Some(i),
                _ => None,
            });
        match (running_remote, self.local) {
            (None, State::Run) => self.attempts = 0,
            (None, _) => {
                self.attempts += 1;
                if self.attempts > self.cfg.attempts {
                    log(
                        out,
                        Level::Error,
                        format!(
                            "Unable to start service after {} attempts.",
                            self.cfg.attempts
                        ),
                    );
                    self.exit(exit::UNAVAILABLE, out);
                    return;
                }
                self.local = State::Starting;
                out.push(Action::RunHook(HookEvent::Start));
            }
            // A secondary's worker stops whatever runs there, so the
            // primary keeps its own copy (0.3.4 stopped it too, for an
            // outage until the next round: Q18) and only holds back a
            // start until the secondary has stopped.
            (Some(i), _) if self.stopping[i] => log(
                out,
                Level::Notice,
                format!(
                    "Waiting for {} to stop the resource before starting it.",
                    self.cfg.remotes[i].addr
                ),
            ),
            (Some(i), _) => log(
                out,
                Level::Error,
                format!(
                    "Resource on secondary {} is not STOPPED.",
                    self.cfg.remotes[i].addr
                ),
            ),
        }
    }

    /// Stops the resource and ends the worker.
    fn exit(&mut self, code: i32, out: &mut Vec<Action>) {
        self.done = true;
        self.local = State::Stopping;
        out.push(Action::RunHook(HookEvent::Stop));
        out.push(Action::Exit(code));
    }
}

#[cfg(test)]
mod tests;
