//! Control requests and replies (doc/protocol.md §9), the watchdog's status
//! poll and complaint (§7).

use super::{MsgError, request_type, required_text, text};
use crate::proto::auth::AuthFields;
use crate::proto::nv::NvList;
use crate::types::{Role, State};

/// `EHAST_*` codes carried in `error` and `error<i>` (doc/protocol.md §9.5).
pub mod ehast {
    pub const OK: i16 = 0;
    pub const NOENTRY: i16 = 1;
    pub const INVALID: i16 = 2;
    pub const NOMEMORY: i16 = 3;
    pub const UNIMPLEMENTED: i16 = 4;
    pub const AUTHFAILED: i16 = 5;
    /// Ours: a primary let go by the request did not stop its resource
    /// (`stop` failed or timed out); `reason<i>` says how.
    pub const STOP_FAILED: i16 = 6;
}

/// `{error}` alone: a request-level failure.
pub fn error_reply(code: i16) -> NvList {
    let mut nv = NvList::new();
    nv.add_i16("error", code);
    nv
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlCmd {
    SetRole,
    Status,
    /// Any other non-zero code; answered with `EHAST_UNIMPLEMENTED`.
    Other(u8),
}

impl ControlCmd {
    pub fn code(self) -> u8 {
        match self {
            ControlCmd::SetRole => 1,
            ControlCmd::Status => 2,
            ControlCmd::Other(c) => c,
        }
    }

    /// 0 means "no command" and is not a `ControlCmd`.
    pub fn from_code(code: u8) -> Option<ControlCmd> {
        match code {
            0 => None,
            1 => Some(ControlCmd::SetRole),
            2 => Some(ControlCmd::Status),
            c => Some(ControlCmd::Other(c)),
        }
    }
}

/// `{cmd, [role], resource0.., type}` as `hastmonctl` sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlRequest {
    pub cmd: ControlCmd,
    /// Set role only; codes outside 1..=4 read as `Role::Undef`.
    pub role: Option<Role>,
    /// `resource0`, `resource1`, ... up to the first gap; may be empty,
    /// which the server answers with `EHAST_INVALID`.
    pub resources: Vec<String>,
    /// Never sent by `hastmonctl`; required on TCP when a key applies.
    pub auth: Option<AuthFields>,
    /// `extended` = 1: status with the facts of `status_extra` (not in
    /// 0.3.4, which ignores the field). Only `hastmonctl status -j` sets it.
    pub extended: bool,
}

impl ControlRequest {
    /// `hastmonctl`'s order; authentication, if any, goes last.
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_u8("cmd", self.cmd.code());
        if let Some(role) = self.role {
            nv.add_u8("role", role.code());
        }
        for (i, r) in self.resources.iter().enumerate() {
            nv.add_string(format!("resource{i}"), r);
        }
        if self.extended {
            nv.add_u8("extended", 1);
        }
        nv.add_u8("type", request_type::CONTROL);
        if let Some(auth) = &self.auth {
            auth.write(&mut nv);
        }
        nv
    }

    /// A missing or zero `cmd` is the one request-level error that gets no
    /// reply, so it is the one decoding error.
    pub fn from_nv(nv: &NvList) -> Result<ControlRequest, MsgError> {
        let cmd = ControlCmd::from_code(nv.get_u8("cmd").unwrap_or(0))
            .ok_or(MsgError::MissingField { field: "cmd" })?;
        let resources = (0..)
            .map_while(|i| text(nv, &format!("resource{i}")))
            .collect();
        Ok(ControlRequest {
            cmd,
            role: nv.get_u8("role").map(Role::from_code),
            resources,
            auth: AuthFields::from_nv(nv),
            extended: nv.get_u8("extended").is_some_and(|v| v != 0),
        })
    }
}

/// The watchdog's poll: `{[now, auth_hash], type, cmd, resource0}`. The
/// acceptor decodes it as a `ControlRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPoll {
    pub auth: Option<AuthFields>,
    pub resource: String,
}

impl StatusPoll {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        if let Some(auth) = &self.auth {
            auth.write(&mut nv);
        }
        nv.add_u8("type", request_type::CONTROL)
            .add_u8("cmd", ControlCmd::Status.code())
            .add_string("resource0", &self.resource);
        nv
    }

    /// The watchdog's side never decodes a poll; this is for tests and
    /// tools. Requires `cmd` = status and `resource0`.
    pub fn from_nv(nv: &NvList) -> Result<StatusPoll, MsgError> {
        if nv.get_u8("cmd") != Some(ControlCmd::Status.code()) {
            return Err(MsgError::MissingField { field: "cmd" });
        }
        Ok(StatusPoll {
            auth: AuthFields::from_nv(nv),
            resource: required_text(nv, "resource0")?,
        })
    }
}

/// The watchdog's complaint: `{[now, auth_hash], resource, type = 2}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Complaint {
    pub auth: Option<AuthFields>,
    pub resource: String,
}

impl Complaint {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        if let Some(auth) = &self.auth {
            auth.write(&mut nv);
        }
        nv.add_string("resource", &self.resource)
            .add_u8("type", request_type::COMPLAINT);
        nv
    }

    pub fn from_nv(nv: &NvList) -> Result<Complaint, MsgError> {
        Ok(Complaint {
            auth: AuthFields::from_nv(nv),
            resource: required_text(nv, "resource")?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleOutcome {
    /// `role<i>`: the role's text before the change (a string here, unlike
    /// in status replies).
    Previous(String),
    /// `error<i>` (`EHAST_NOENTRY` for an unknown resource).
    Error(i16),
    /// `error<i>` = `STOP_FAILED` and, ours only, `reason<i>`: the role
    /// changed but the resource was not stopped.
    StopFailed { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleEntry {
    pub resource: String,
    pub outcome: RoleOutcome,
}

/// Reply to set role: per resource `resource<i>` then `role<i>` or
/// `error<i>`; a request-level failure is a top-level `error`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleReply {
    pub entries: Vec<RoleEntry>,
    pub error: Option<i16>,
}

impl RoleReply {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        for (i, e) in self.entries.iter().enumerate() {
            nv.add_string(format!("resource{i}"), &e.resource);
            match &e.outcome {
                RoleOutcome::Previous(role) => {
                    nv.add_string(format!("role{i}"), role);
                }
                RoleOutcome::Error(code) => {
                    nv.add_i16(format!("error{i}"), *code);
                }
                RoleOutcome::StopFailed { reason } => {
                    nv.add_i16(format!("error{i}"), ehast::STOP_FAILED);
                    nv.add_string(format!("reason{i}"), reason);
                }
            }
        }
        if let Some(code) = self.error {
            nv.add_i16("error", code);
        }
        nv
    }

    /// Like `hastmonctl`: a zero `error<i>` is no error, and a missing
    /// `role<i>` reads as empty text.
    pub fn from_nv(nv: &NvList) -> RoleReply {
        let entries = (0..)
            .map_while(|i| {
                let resource = text(nv, &format!("resource{i}"))?;
                let outcome = match nv.get_i16(&format!("error{i}")) {
                    Some(ehast::STOP_FAILED) => RoleOutcome::StopFailed {
                        reason: text(nv, &format!("reason{i}")).unwrap_or_default(),
                    },
                    Some(code) if code != 0 => RoleOutcome::Error(code),
                    _ => RoleOutcome::Previous(text(nv, &format!("role{i}")).unwrap_or_default()),
                };
                Some(RoleEntry { resource, outcome })
            })
            .collect();
        RoleReply {
            entries,
            error: nv.get_i16("error"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteStatus {
    /// `remoteaddr<i>.<j>`.
    pub addr: String,
    /// `remotestate<i>.<j>`: `connected`/`disconnected`, or for a watchdog
    /// the remote's state text; only when the worker was asked.
    pub state: Option<String>,
    /// `remoterole<i>.<j>`: watchdog only.
    pub role: Option<String>,
}

/// `state<i>`, `attempts<i>`: present only when a worker answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerStatus {
    pub state: State,
    pub attempts: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceStatus {
    pub exec: String,
    pub attempts_max: i32,
    pub remotes: Vec<RemoteStatus>,
    pub role: Role,
    pub workerpid: i32,
    pub complaints: i32,
    pub complaints_critical: i32,
    pub complaints_interval: i32,
    pub heartbeat: i32,
    pub worker: Option<WorkerStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    Status(ResourceStatus),
    Error(i16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEntry {
    pub resource: String,
    pub outcome: StatusOutcome,
}

/// Reply to status. An empty reply (no entries, no error) is what a daemon
/// without resources sends for `all` (doc/protocol.md §9.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusReply {
    pub entries: Vec<StatusEntry>,
    /// Top-level `error`: an `EHAST_*` code for a request-level failure or
    /// an errno when asking a worker failed. The first one, if repeated.
    pub error: Option<i16>,
}

impl StatusReply {
    /// Emits fields in 0.3.4's order (doc/protocol.md §9.3).
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        for (i, e) in self.entries.iter().enumerate() {
            nv.add_string(format!("resource{i}"), &e.resource);
            match &e.outcome {
                StatusOutcome::Error(code) => {
                    nv.add_i16(format!("error{i}"), *code);
                }
                StatusOutcome::Status(s) => write_status(&mut nv, i, s),
            }
        }
        if let Some(code) = self.error {
            nv.add_i16("error", code);
        }
        nv
    }

    /// Lenient like `hastmonctl`: absent numbers read as 0, a zero
    /// `error<i>` is no error.
    pub fn from_nv(nv: &NvList) -> StatusReply {
        let entries = (0..)
            .map_while(|i| {
                let resource = text(nv, &format!("resource{i}"))?;
                let outcome = match nv.get_i16(&format!("error{i}")) {
                    Some(code) if code != 0 => StatusOutcome::Error(code),
                    _ => StatusOutcome::Status(read_status(nv, i)),
                };
                Some(StatusEntry { resource, outcome })
            })
            .collect();
        StatusReply {
            entries,
            error: nv.get_i16("error"),
        }
    }
}

fn write_status(nv: &mut NvList, i: usize, s: &ResourceStatus) {
    nv.add_string(format!("exec{i}"), &s.exec)
        .add_i32(format!("attempts_max{i}"), s.attempts_max);
    for (j, r) in s.remotes.iter().enumerate() {
        nv.add_string(format!("remoteaddr{i}.{j}"), &r.addr);
    }
    nv.add_u8(format!("role{i}"), s.role.code())
        .add_i32(format!("workerpid{i}"), s.workerpid)
        .add_i32(format!("complaints{i}"), s.complaints)
        .add_i32(format!("complaints_critical{i}"), s.complaints_critical)
        .add_i32(format!("complaints_interval{i}"), s.complaints_interval)
        .add_i32(format!("heartbeat{i}"), s.heartbeat);
    if let Some(w) = s.worker {
        for (j, r) in s.remotes.iter().enumerate() {
            if let Some(state) = &r.state {
                nv.add_string(format!("remotestate{i}.{j}"), state);
            }
            if let Some(role) = &r.role {
                nv.add_string(format!("remoterole{i}.{j}"), role);
            }
        }
        nv.add_u8(format!("state{i}"), w.state.code())
            .add_i32(format!("attempts{i}"), w.attempts);
    }
}

fn read_status(nv: &NvList, i: usize) -> ResourceStatus {
    let int = |name: String| nv.get_i32(&name).unwrap_or(0);
    let remotes = (0..)
        .map_while(|j| {
            Some(RemoteStatus {
                addr: text(nv, &format!("remoteaddr{i}.{j}"))?,
                state: text(nv, &format!("remotestate{i}.{j}")),
                role: text(nv, &format!("remoterole{i}.{j}")),
            })
        })
        .collect();
    let state = nv.get_u8(&format!("state{i}"));
    let attempts = nv.get_i32(&format!("attempts{i}"));
    let worker = (state.is_some() || attempts.is_some()).then(|| WorkerStatus {
        state: State::from_code(state.unwrap_or(0)),
        attempts: attempts.unwrap_or(0),
    });
    ResourceStatus {
        exec: text(nv, &format!("exec{i}")).unwrap_or_default(),
        attempts_max: int(format!("attempts_max{i}")),
        remotes,
        role: Role::from_code(nv.get_u8(&format!("role{i}")).unwrap_or(0)),
        workerpid: int(format!("workerpid{i}")),
        complaints: int(format!("complaints{i}")),
        complaints_critical: int(format!("complaints_critical{i}")),
        complaints_interval: int(format!("complaints_interval{i}")),
        heartbeat: int(format!("heartbeat{i}")),
        worker,
    }
}
