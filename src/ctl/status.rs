//! The text `hastmonctl status` and `role` print, byte for byte as 0.3.4.

use std::fmt::Write;

use crate::proto::msg::{ResourceStatus, RoleOutcome, RoleReply, StatusOutcome, StatusReply};
use crate::types::{Role, State};

/// The status text and the exit code: the first per-resource error, or 0.
pub fn status_text(reply: &StatusReply) -> (String, i32) {
    let mut out = String::new();
    let mut code = 0;
    for e in &reply.entries {
        let _ = writeln!(out, "{}:", e.resource);
        match &e.outcome {
            StatusOutcome::Error(n) => {
                let _ = writeln!(out, "  error: {n}");
                if code == 0 {
                    code = i32::from(*n);
                }
            }
            StatusOutcome::Status(s) => resource(&mut out, s),
        }
    }
    (out, code)
}

fn resource(out: &mut String, s: &ResourceStatus) {
    let _ = writeln!(out, "  role: {}", s.role);
    if s.workerpid != 0 {
        let _ = writeln!(out, "  workerpid: {}", s.workerpid);
    }
    let _ = writeln!(out, "  exec: {}", s.exec);
    out.push_str("  remote:");
    for r in &s.remotes {
        let _ = write!(out, "\n    {}", r.addr);
        match s.role {
            Role::Primary | Role::Secondary => {
                if let Some(state) = &r.state {
                    let _ = write!(out, " ({state})");
                }
            }
            Role::Watchdog if r.state.is_some() || r.role.is_some() => {
                let unknown = || "unknown".to_string();
                let _ = write!(
                    out,
                    " ({}/{})",
                    r.role.clone().unwrap_or_else(unknown),
                    r.state.clone().unwrap_or_else(unknown)
                );
            }
            _ => {}
        }
    }
    out.push('\n');
    let (state, attempts) = match s.worker {
        Some(w) => (w.state, w.attempts),
        None => (State::Unknown, 0),
    };
    let _ = writeln!(out, "  state: {state}");
    let _ = writeln!(out, "  attempts: {attempts} from {}", s.attempts_max);
    let _ = writeln!(
        out,
        "  complaints: {} for last {} sec (threshold {})",
        s.complaints, s.complaints_interval, s.complaints_critical
    );
    let _ = writeln!(out, "  heartbeat: {} sec", s.heartbeat);
    out.push('\n');
}

/// What `hastmonctl role` reports: lines for stderr (warnings) and for
/// stdout (debug), and the exit code (the first per-resource error).
pub fn role_report(
    reply: &RoleReply,
    requested: Role,
    debug: u8,
) -> (Vec<String>, Vec<String>, i32) {
    let (mut warnings, mut info, mut code) = (Vec::new(), Vec::new(), 0);
    for e in &reply.entries {
        match &e.outcome {
            RoleOutcome::Error(n) => {
                warnings.push(format!(
                    "[WARNING] [{}] Received error {n} from hastmon.",
                    e.resource
                ));
                if code == 0 {
                    code = i32::from(*n);
                }
            }
            RoleOutcome::StopFailed { reason } => {
                warnings.push(format!(
                    "[ERROR] [{}] Role changed to {requested}, but the resource was not stopped: {reason}.",
                    e.resource
                ));
                if code == 0 {
                    code = crate::exit::UNAVAILABLE;
                }
            }
            RoleOutcome::Previous(old) if old == requested.as_str() => {
                if debug >= 2 {
                    info.push(format!(
                        "[DEBUG][2] [{}] Role unchanged ({old}).",
                        e.resource
                    ));
                }
            }
            RoleOutcome::Previous(old) => {
                if debug >= 1 {
                    info.push(format!(
                        "[DEBUG][1] [{}] Role changed from {old} to {requested}.",
                        e.resource
                    ));
                }
            }
        }
    }
    (warnings, info, code)
}
