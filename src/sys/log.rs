//! Logging as hastmon always did it: syslog (facility daemon, with the pid)
//! and, in the foreground, one line per record on stdout/stderr:
//! `[LEVEL] prefix message`, with `[DEBUG][n]` for debug level n.
//!
//! The daemon is single-threaded and each worker is its own process, so
//! one logger per process, behind a mutex only to satisfy `static`. The
//! syslog client is our own ([`super::syslog`]): local time stamps, and a
//! reconnect when syslogd is restarted.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use super::ratelimit::{RateLimit, mask_ports};
pub use super::syslog::Syslog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warning,
    Notice,
    Info,
    /// Debug level 1 (decisions, connections) or 2 (per-heartbeat tracing).
    Debug(u8),
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Emerg => "EMERG",
            Level::Alert => "ALERT",
            Level::Crit => "CRIT",
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Notice => "NOTICE",
            Level::Info => "INFO",
            Level::Debug(_) => "DEBUG",
        }
    }

    /// The syslog severity (LOG_EMERG .. LOG_DEBUG).
    pub fn severity(self) -> u8 {
        match self {
            Level::Emerg => 0,
            Level::Alert => 1,
            Level::Crit => 2,
            Level::Error => 3,
            Level::Warning => 4,
            Level::Notice => 5,
            Level::Info => 6,
            Level::Debug(_) => 7,
        }
    }
}

struct State {
    foreground: bool,
    debug: u8,
    prefix: String,
    syslog: Option<Syslog>,
    /// Repeated messages logged through [`log_limited`].
    limiter: RateLimit<Level>,
}

static STATE: Mutex<State> = Mutex::new(State {
    foreground: true,
    debug: 0,
    prefix: String::new(),
    syslog: None,
    limiter: RateLimit::new(),
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts logging for this process. `ident` is the syslog tag. The
/// connection to syslogd is made now (LOG_NDELAY), before a worker enters
/// its sandbox; every record carries the pid of the process sending it.
pub fn init(ident: &str, foreground: bool, use_syslog: bool, debug: u8) {
    let mut s = state();
    s.foreground = foreground;
    s.debug = debug;
    // A forked worker starts with nothing held back.
    s.limiter = RateLimit::new();
    s.syslog = use_syslog.then(|| Syslog::open(&super::syslog::path(), ident));
}

/// Closes the syslog connection: a forked worker does so before checking
/// its descriptors, then opens its own with `init`.
pub fn close_syslog() {
    state().syslog = None;
}

/// The descriptors of the syslog connection, if there is one: the socket
/// and, where the platform reconnects through one, the directory holding
/// syslogd's socket (a worker narrows their rights before it enters the
/// sandbox).
pub fn syslog_fds() -> (Option<std::os::fd::RawFd>, Option<std::os::fd::RawFd>) {
    let s = state();
    match &s.syslog {
        Some(sl) => (sl.socket_fd(), sl.dir_fd()),
        None => (None, None),
    }
}

/// Whether records go to syslog (the daemon runs in the background).
pub fn uses_syslog() -> bool {
    state().syslog.is_some()
}

/// Sets the `[resource] (role) ` prefix of every following record.
pub fn set_prefix(prefix: impl Into<String>) {
    state().prefix = prefix.into();
}

pub fn debug_level() -> u8 {
    state().debug
}

pub fn log(level: Level, args: fmt::Arguments<'_>) {
    let mut s = state();
    if let Level::Debug(n) = level
        && n > s.debug
    {
        return;
    }
    let msg = format!("{}{}", s.prefix, args);
    if let Some(sl) = s.syslog.as_mut() {
        // A lost syslog record must not stop the daemon.
        let _ = sl.send(level.severity(), &msg);
    }
    if s.foreground {
        let line = match level {
            Level::Debug(n) => format!("[DEBUG][{n}] {msg}\n"),
            l => format!("[{}] {msg}\n", l.name()),
        };
        if level <= Level::Warning {
            let _ = std::io::stderr().write_all(line.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Logs like [`log`], but a message that keeps recurring is logged once
/// and then summarized (see [`super::ratelimit`]). Messages are the same
/// when their `key`s are, or without a key, their texts with ports masked.
pub fn log_limited(level: Level, key: Option<&str>, args: fmt::Arguments<'_>) {
    if let Level::Debug(n) = level
        && n > debug_level()
    {
        return;
    }
    let text = args.to_string();
    let key = key.map_or_else(|| mask_ports(&text), str::to_string);
    let lines = state()
        .limiter
        .check(std::time::Instant::now(), &key, level, &text);
    for (level, line) in lines {
        log(level, format_args!("{line}"));
    }
}

#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::sys::log::log($crate::sys::log::Level::Error, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_warning { ($($t:tt)*) => { $crate::sys::log::log($crate::sys::log::Level::Warning, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_notice { ($($t:tt)*) => { $crate::sys::log::log($crate::sys::log::Level::Notice, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::sys::log::log($crate::sys::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_debug { ($n:expr, $($t:tt)*) => { $crate::sys::log::log($crate::sys::log::Level::Debug($n), format_args!($($t)*)) } }
/// `log_limited!(Warning, "...", args)`: a rate-limited record keyed by
/// its text.
#[macro_export]
macro_rules! log_limited { ($level:ident, $($t:tt)*) => { $crate::sys::log::log_limited($crate::sys::log::Level::$level, None, format_args!($($t)*)) } }
