//! Logging as hastmon always did it: syslog (facility daemon, with the pid)
//! and, in the foreground, one line per record on stdout/stderr:
//! `[LEVEL] prefix message`, with `[DEBUG][n]` for debug level n.
//!
//! The daemon is single-threaded and each worker is its own process, so
//! one logger per process, behind a mutex only to satisfy `static`.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use super::ratelimit::{RateLimit, mask_ports};

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
}

struct State {
    foreground: bool,
    debug: u8,
    prefix: String,
    syslog: Option<Logger<LoggerBackend, Formatter3164>>,
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

/// Starts logging for this process. `ident` is the syslog tag; a worker
/// calls this again after fork so its records carry its own pid.
pub fn init(ident: &str, foreground: bool, use_syslog: bool, debug: u8) {
    let mut s = state();
    s.foreground = foreground;
    s.debug = debug;
    // A forked worker starts with nothing held back.
    s.limiter = RateLimit::new();
    s.syslog = if use_syslog {
        syslog::unix(Formatter3164 {
            facility: Facility::LOG_DAEMON,
            hostname: None,
            process: ident.to_string(),
            pid: std::process::id(),
        })
        .ok()
    } else {
        None
    };
}

/// Closes the syslog connection: a forked worker does so before checking
/// its descriptors, then opens its own with `init`.
pub fn close_syslog() {
    state().syslog = None;
}

/// The descriptor of the syslog connection, if there is one (a worker
/// narrows its rights before it enters the sandbox).
pub fn syslog_fd() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let s = state();
    Some(match &s.syslog.as_ref()?.backend {
        LoggerBackend::Unix(d) => d.as_raw_fd(),
        LoggerBackend::UnixStream(w) => w.get_ref().as_raw_fd(),
        LoggerBackend::Udp(u, _) => u.as_raw_fd(),
        LoggerBackend::Tcp(w) => w.get_ref().as_raw_fd(),
    })
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
        let _ = match level {
            Level::Emerg => sl.emerg(&msg),
            Level::Alert => sl.alert(&msg),
            Level::Crit => sl.crit(&msg),
            Level::Error => sl.err(&msg),
            Level::Warning => sl.warning(&msg),
            Level::Notice => sl.notice(&msg),
            Level::Info => sl.info(&msg),
            Level::Debug(_) => sl.debug(&msg),
        };
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
