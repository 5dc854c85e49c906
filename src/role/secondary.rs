//! The secondary: exists while a primary is connected, answers its
//! heartbeats and keeps the resource stopped here.
//!
//! Every `heartbeat_interval`, on a fixed schedule, it asks for `status`
//! (never two at a time); a fresh result that is not STOPPED asks for
//! `stop`, unless a `stop` is still on its way. The main process runs a
//! resource's hooks one at a time, so a `status` asked after a `stop`
//! reports on the finished `stop`, and no extra wait is needed.
//!
//! Silence from the primary for longer than the silence limit (2 × hb),
//! or a broken connection, ends the worker with `disconnect` and exit 75;
//! the main process then leaves the node secondary without a worker,
//! which is what makes it eligible for promotion.

use std::time::Duration;

use super::{Action, Input, Level, RemoteReport, Report, Time, log, next_slot};
use crate::config::Resource;
use crate::exit;
use crate::proto::msg::{HIO_STATE, HeartbeatReply, HeartbeatStatus, HookEvent};
use crate::types::State;

/// `EINVAL`, the reply's error for a heartbeat with an unknown `cmd`.
const EINVAL: i16 = 22;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryConfig {
    pub heartbeat: Duration,
    /// How long the primary may stay silent before we let it go.
    pub silence_limit: Duration,
    /// Number of configured remotes (for the report).
    pub remotes: usize,
    /// Which of them is the primary we serve, if the acceptor knows.
    pub primary: Option<usize>,
}

impl SecondaryConfig {
    /// The silence limit is 2 × our own interval until the primary's is
    /// known (see `with_primary_interval`).
    pub fn from_resource(r: &Resource, primary: Option<usize>) -> SecondaryConfig {
        SecondaryConfig {
            heartbeat: r.heartbeat_interval,
            silence_limit: r.heartbeat_interval * 2,
            remotes: r.remote.len(),
            primary,
        }
    }

    /// Silence is measured against the interval the primary announced in
    /// its handshake, when it did: 0.3.4's does not, and with it a primary
    /// slower than this node was let go too early (doc/quirks.md Q22).
    pub fn with_primary_interval(mut self, primary: Option<Duration>) -> SecondaryConfig {
        if let Some(hb) = primary {
            self.silence_limit = hb * 2;
        }
        self
    }
}

#[derive(Debug)]
pub struct Secondary {
    cfg: SecondaryConfig,
    local: State,
    last_heard: Time,
    next_check: Time,
    status_pending: bool,
    stop_pending: bool,
    done: bool,
}

impl Secondary {
    pub fn new(cfg: SecondaryConfig, now: Time) -> Secondary {
        Secondary {
            next_check: now,
            last_heard: now,
            cfg,
            local: State::Unknown,
            status_pending: false,
            stop_pending: false,
            done: false,
        }
    }

    /// When the machine next wants a [`Input::Tick`].
    pub fn deadline(&self) -> Option<Time> {
        if self.done {
            return None;
        }
        Some(
            self.next_check
                .min(self.last_heard + self.cfg.silence_limit),
        )
    }

    pub fn report(&self) -> Report {
        Report {
            state: self.local,
            attempts: 0,
            remotes: (0..self.cfg.remotes)
                .map(|i| RemoteReport::Link {
                    connected: !self.done && self.cfg.primary == Some(i),
                })
                .collect(),
            // The handshake that made this worker is the first contact.
            seen: (0..self.cfg.remotes)
                .map(|i| (self.cfg.primary == Some(i)).then_some(self.last_heard))
                .collect(),
        }
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        match input {
            Input::Start => {
                self.last_heard = now;
                out.push(Action::RunHook(HookEvent::Connect));
                self.check(now, &mut out);
            }
            Input::Heartbeat { msg } => {
                self.last_heard = now;
                let status = if msg.cmd == HIO_STATE {
                    HeartbeatStatus::State(self.local)
                } else {
                    HeartbeatStatus::Error(EINVAL)
                };
                out.push(Action::Reply {
                    msg: HeartbeatReply {
                        seq: Some(msg.seq),
                        status,
                    },
                });
            }
            Input::Tick => {
                if now >= self.last_heard + self.cfg.silence_limit {
                    log(
                        &mut out,
                        Level::Warning,
                        format!(
                            "No heartbeat from the primary for {} ms.",
                            now.since(self.last_heard).as_millis()
                        ),
                    );
                    self.disconnect(&mut out);
                } else if now >= self.next_check {
                    self.check(now, &mut out);
                }
            }
            Input::HookDone {
                event: HookEvent::Status,
                result,
            } => {
                self.status_pending = false;
                self.local = result.status_state();
                if self.local != State::Stopped && !self.stop_pending {
                    log(
                        &mut out,
                        Level::Warning,
                        format!("Resource is {} here, stopping it.", self.local),
                    );
                    self.local = State::Stopping;
                    self.stop_pending = true;
                    out.push(Action::RunHook(HookEvent::Stop));
                }
            }
            Input::HookDone {
                event: HookEvent::Stop,
                ..
            } => self.stop_pending = false,
            Input::HookDone { .. } => {}
            Input::PeerLost { .. } => {
                log(&mut out, Level::Warning, "Connection to the primary lost.");
                self.disconnect(&mut out);
            }
            Input::Terminate { .. } => {
                self.done = true;
                out.push(Action::Exit(exit::OK));
            }
            Input::Connected { .. }
            | Input::ConnectFailed { .. }
            | Input::Reply { .. }
            | Input::StatusPolled { .. }
            | Input::Polled { .. } => {}
        }
        out
    }

    /// One `status` per interval, on a fixed schedule.
    fn check(&mut self, now: Time, out: &mut Vec<Action>) {
        self.next_check = next_slot(self.next_check, now, self.cfg.heartbeat);
        if !self.status_pending {
            self.status_pending = true;
            out.push(Action::RunHook(HookEvent::Status));
        }
    }

    fn disconnect(&mut self, out: &mut Vec<Action>) {
        self.done = true;
        out.push(Action::RunHook(HookEvent::Disconnect));
        out.push(Action::Exit(exit::TEMPFAIL));
    }
}

#[cfg(test)]
mod tests;
