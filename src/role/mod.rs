//! The role machines: what a worker decides, as pure code.
//!
//! A machine takes `(now, input)` and returns [`Action`]s; it owns no
//! socket, clock or process. The worker turns descriptors, timers and
//! channel messages into [`Input`]s and carries the actions out; the
//! simulation in `tests/` does the same with a fake network and clock.
//! Each machine also tells when it next wants a [`Input::Tick`]
//! (`deadline()`), so the caller keeps exactly one timer per machine.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use crate::proto::msg::{HeartbeatReply, HeartbeatRequest, HookEvent};
use crate::types::{Role, State};

pub mod primary;
pub mod secondary;
pub mod watchdog;

/// A point on a monotonic clock, in milliseconds from an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.since(earlier)
    }
}

/// How a hook ended, as the main process saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookResult {
    Exited(i32),
    Signaled(i32),
    /// Killed after `hook_timeout`.
    TimedOut,
    /// Could not be started at all.
    NotRun,
}

impl HookResult {
    /// The meaning of a `status` hook's result: 0 running, 1 stopped,
    /// anything else, including a kill or a hook that never ran, unknown
    /// (doc/quirks.md Q4: 0.3.4 read the last cases as running).
    pub fn status_state(self) -> State {
        match self {
            HookResult::Exited(0) => State::Run,
            HookResult::Exited(1) => State::Stopped,
            _ => State::Unknown,
        }
    }

    pub fn succeeded(self) -> bool {
        self == HookResult::Exited(0)
    }
}

impl fmt::Display for HookResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookResult::Exited(c) => write!(f, "exit code {c}"),
            HookResult::Signaled(s) => write!(f, "killed by signal {s}"),
            HookResult::TimedOut => f.write_str("timed out"),
            HookResult::NotRun => f.write_str("not run"),
        }
    }
}

/// Why an outgoing connection (and its handshake) did not come up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// No connection, or it broke, or the peer did not answer in time.
    Unreachable(String),
    /// The peer answered with `errmsg`.
    Refused(String),
    /// The peer is a primary with a stronger priority.
    StrongerPrimary { errmsg: String, priority: i32 },
}

/// Everything that can happen to a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The worker started; always the first input.
    Start,
    /// The time the machine asked for (`deadline()`) has come.
    Tick,
    /// A hook the machine asked for ended.
    HookDone {
        event: HookEvent,
        result: HookResult,
    },
    /// The connection to a remote, handshake included, is up.
    Connected { remote: usize },
    ConnectFailed {
        remote: usize,
        reason: ConnectFailure,
    },
    /// A remote's heartbeat reply (primary).
    Reply { remote: usize, msg: HeartbeatReply },
    /// The primary's heartbeat request (secondary).
    Heartbeat { msg: HeartbeatRequest },
    /// The answer to a [`Action::Poll`] (watchdog): the role and state the
    /// remote reported, or why there is none, for the poll of `cycle`.
    Polled {
        remote: usize,
        cycle: u64,
        result: Result<(Role, State), String>,
    },
    /// An established connection to a remote broke.
    PeerLost { remote: usize },
    /// The main process asked for this worker's status; `remote` when the
    /// question came over the network (a watchdog's poll). A network poll
    /// counts as contact for the primary's silence rule, so the glue sets
    /// `remote` only once the poller has taken our reply (its TCP acked
    /// it before closing): a poll whose answer is lost must not keep a cut
    /// off primary running while the watchdog complains about it.
    StatusPolled { remote: bool },
    /// Asked to exit: with `stop` the resource is stopped first (SIGTERM,
    /// SIGINT), without it left running (SIGHUP, reload).
    Terminate { stop: bool },
}

/// Log levels a machine uses for what it wants said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Level {
    /// The log's level for what a machine wants said.
    pub fn to_log(self) -> crate::sys::log::Level {
        use crate::sys::log::Level as L;
        match self {
            Level::Error => L::Error,
            Level::Warning => L::Warning,
            Level::Notice => L::Notice,
            Level::Info => L::Info,
            Level::Debug => L::Debug(1),
        }
    }
}

/// Everything a machine can ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    RunHook(HookEvent),
    Connect {
        remote: usize,
    },
    Disconnect {
        remote: usize,
    },
    Heartbeat {
        remote: usize,
        msg: HeartbeatRequest,
    },
    /// The answer to the primary's heartbeat (secondary).
    Reply {
        msg: HeartbeatReply,
    },
    /// Ask a remote for its status over a new connection (watchdog); it
    /// replaces a poll of that remote still in flight. `Disconnect` for
    /// the same remote abandons it.
    Poll {
        remote: usize,
        /// The watchdog's cycle, which the answer brings back: an answer
        /// of an earlier cycle never counts for a later one.
        cycle: u64,
    },
    /// Send a complaint to a remote (watchdog); no answer is awaited.
    Complain {
        remote: usize,
    },
    Log {
        level: Level,
        msg: String,
    },
    /// The worker is done: exit with this code once every action before
    /// it was carried out.
    Exit(i32),
}

/// What a worker tells `hastmonctl status` through the main process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub state: State,
    pub attempts: u32,
    /// One per configured remote, in configuration order.
    pub remotes: Vec<RemoteReport>,
    /// Per remote, in the same order: when the last exchange that went
    /// both ways with it ended (a completed handshake, a heartbeat or its
    /// reply, a refusal, a poll's answer); `None` before the first.
    pub seen: Vec<Option<Time>>,
}

impl Report {
    /// The same report with its times moved from a clock that reads
    /// `from` to one that reads `to` at the same instant (the worker's
    /// clock to the main process's).
    pub fn rebase(mut self, from: Time, to: Time) -> Report {
        for t in self.seen.iter_mut().flatten() {
            *t = Time(to.0.saturating_sub(from.0.saturating_sub(t.0)));
        }
        self
    }
}

/// How a worker sees one remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteReport {
    /// Primary and secondary: whether the connection is up.
    Link { connected: bool },
    /// Watchdog: the role and state the remote reported at the last poll.
    Seen { role: Role, state: State },
}

impl RemoteReport {
    /// `remotestate<j>` as 0.3.4 sends it.
    pub fn state_text(self) -> &'static str {
        match self {
            RemoteReport::Link { connected: true } => "connected",
            RemoteReport::Link { connected: false } => "disconnected",
            RemoteReport::Seen { state, .. } => state.as_str(),
        }
    }

    /// `remoterole<j>`: watchdogs only.
    pub fn role_text(self) -> Option<&'static str> {
        match self {
            RemoteReport::Link { .. } => None,
            RemoteReport::Seen { role, .. } => Some(role.as_str()),
        }
    }
}

/// The first point of a fixed schedule (`scheduled`, `scheduled + period`,
/// ...) that lies after `now`: late handling never shifts later slots
/// (doc/quirks.md Q8). A zero period reads as 1 ms so that time advances.
fn next_slot(scheduled: Time, now: Time, period: Duration) -> Time {
    let period = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
    if scheduled > now {
        return scheduled;
    }
    let missed = (now.0 - scheduled.0) / period + 1;
    Time(scheduled.0.saturating_add(missed.saturating_mul(period)))
}

fn log(out: &mut Vec<Action>, level: Level, msg: impl Into<String>) {
    out.push(Action::Log {
        level,
        msg: msg.into(),
    });
}

/// The machine of one worker's role, built the one way both the worker
/// process and the simulation build it.
pub enum RoleMachine {
    Primary(primary::Primary),
    Secondary(secondary::Secondary),
    Watchdog(watchdog::Watchdog),
}

/// What a new worker is, beyond its resource's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerSetup {
    pub role: Role,
    /// For a secondary: the remote that is its primary, and the heartbeat
    /// interval it announced (Q22).
    pub primary: Option<usize>,
    pub primary_heartbeat: Option<Duration>,
    /// A promotion: check and start at once (Q56).
    pub urgent: bool,
}

impl RoleMachine {
    /// `None` for a role that has no worker (init, undef).
    pub fn new(r: &crate::config::Resource, s: WorkerSetup, now: Time) -> Option<RoleMachine> {
        Some(match s.role {
            Role::Primary => RoleMachine::Primary(primary::Primary::new(
                primary::PrimaryConfig {
                    urgent: s.urgent,
                    ..primary::PrimaryConfig::from_resource(r)
                },
                now,
            )),
            Role::Secondary => RoleMachine::Secondary(secondary::Secondary::new(
                secondary::SecondaryConfig::from_resource(r, s.primary)
                    .with_primary_interval(s.primary_heartbeat),
                now,
            )),
            Role::Watchdog => RoleMachine::Watchdog(watchdog::Watchdog::new(
                watchdog::WatchdogConfig::from_resource(r),
                now,
            )),
            Role::Init | Role::Undef => return None,
        })
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        match self {
            RoleMachine::Primary(m) => m.handle(now, input),
            RoleMachine::Secondary(m) => m.handle(now, input),
            RoleMachine::Watchdog(m) => m.handle(now, input),
        }
    }

    pub fn deadline(&self) -> Option<Time> {
        match self {
            RoleMachine::Primary(m) => m.deadline(),
            RoleMachine::Secondary(m) => m.deadline(),
            RoleMachine::Watchdog(m) => m.deadline(),
        }
    }

    pub fn report(&self) -> Report {
        match self {
            RoleMachine::Primary(m) => m.report(),
            RoleMachine::Secondary(m) => m.report(),
            RoleMachine::Watchdog(m) => m.report(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NodeNames, Syntax, parse_bytes};

    fn resource() -> crate::config::Resource {
        let text = b"resource r {\n exec /bin/true\n on a { remote 10.0.0.2 }\n}\n";
        parse_bytes(text, Syntax::Conf, &NodeNames::exact("a"))
            .unwrap()
            .resources
            .remove(0)
    }

    fn setup(urgent: bool) -> WorkerSetup {
        WorkerSetup {
            role: Role::Primary,
            primary: None,
            primary_heartbeat: None,
            urgent,
        }
    }

    /// The worker process once built its primary without the promotion's
    /// `urgent`, so a promoted primary waited for its connection attempts
    /// after all (Q56 held only in a copy of the glue).
    #[test]
    fn q56_a_promoted_primary_checks_its_resource_at_once() {
        let r = resource();
        let mut m = RoleMachine::new(&r, setup(true), Time(0)).unwrap();
        let a = m.handle(Time(0), Input::Start);
        assert!(a.contains(&Action::RunHook(HookEvent::Status)), "{a:?}");
        let mut m = RoleMachine::new(&r, setup(false), Time(0)).unwrap();
        let a = m.handle(Time(0), Input::Start);
        assert!(!a.contains(&Action::RunHook(HookEvent::Status)), "{a:?}");
        assert!(a.contains(&Action::Connect { remote: 0 }), "{a:?}");
    }

    #[test]
    fn init_has_no_worker() {
        let r = resource();
        let s = WorkerSetup {
            role: Role::Init,
            ..setup(false)
        };
        assert!(RoleMachine::new(&r, s, Time(0)).is_none());
    }
}
