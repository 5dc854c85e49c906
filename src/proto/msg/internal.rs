//! Main process ↔ worker channels as 0.3.4 encodes them (the daemon's own
//! are in `worker::msg`, doc/protocol.md §10). Internal to one node, so
//! only the semantics matter, not compatibility.

use super::text;
use crate::proto::nv::NvList;
use crate::types::State;

/// Hook events a worker asks the main process to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookEvent {
    Connect = 1,
    Disconnect = 2,
    Start = 3,
    Stop = 4,
    Status = 5,
    Complaint = 6,
}

impl HookEvent {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<HookEvent> {
        Some(match code {
            1 => HookEvent::Connect,
            2 => HookEvent::Disconnect,
            3 => HookEvent::Start,
            4 => HookEvent::Stop,
            5 => HookEvent::Status,
            6 => HookEvent::Complaint,
            _ => return None,
        })
    }
}

/// Worker → main on the event channel: `{event}`. `None` for an absent or
/// unknown code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRequest {
    pub event: Option<HookEvent>,
}

impl EventRequest {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_u8("event", self.event.map_or(0, HookEvent::code));
        nv
    }

    pub fn from_nv(nv: &NvList) -> EventRequest {
        EventRequest {
            event: nv.get_u8("event").and_then(HookEvent::from_code),
        }
    }
}

/// Main → worker once the hook was started or refused: `{error}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventReply {
    pub error: i16,
}

impl EventReply {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_i16("error", self.error);
        nv
    }

    pub fn from_nv(nv: &NvList) -> EventReply {
        EventReply {
            error: nv.get_i16("error").unwrap_or(0),
        }
    }
}

/// Main → worker on the ctrl channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrlRequest {
    /// `{cmd 2, [remote 1]}`: `remote` for polls that came over TCP.
    Status { remote: bool },
    /// `{cmd 3, event, status}`: the exit code of the hook run for `event`.
    HookExited { event: u8, status: u8 },
}

impl CtrlRequest {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        match *self {
            CtrlRequest::Status { remote } => {
                nv.add_u8("cmd", 2);
                if remote {
                    nv.add_u8("remote", 1);
                }
            }
            CtrlRequest::HookExited { event, status } => {
                nv.add_u8("cmd", 3)
                    .add_u8("event", event)
                    .add_u8("status", status);
            }
        }
        nv
    }

    /// `None` for an unknown or missing `cmd`.
    pub fn from_nv(nv: &NvList) -> Option<CtrlRequest> {
        match nv.get_u8("cmd")? {
            2 => Some(CtrlRequest::Status {
                remote: nv.get_u8("remote").unwrap_or(0) != 0,
            }),
            3 => Some(CtrlRequest::HookExited {
                event: nv.get_u8("event").unwrap_or(0),
                status: nv.get_u8("status").unwrap_or(0),
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerRemote {
    /// `remotestate<j>`.
    pub state: String,
    /// `remoterole<j>`: watchdog workers only.
    pub role: Option<String>,
}

/// Worker → main answer to `Status`: `{remotestate<j>, [remoterole<j>]
/// .., state, attempts}` (`attempts` is a uint8 here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerStatusReply {
    pub remotes: Vec<WorkerRemote>,
    pub state: State,
    pub attempts: u8,
}

impl WorkerStatusReply {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        for (j, r) in self.remotes.iter().enumerate() {
            nv.add_string(format!("remotestate{j}"), &r.state);
            if let Some(role) = &r.role {
                nv.add_string(format!("remoterole{j}"), role);
            }
        }
        nv.add_u8("state", self.state.code())
            .add_u8("attempts", self.attempts);
        nv
    }

    /// Reads `remotestate<j>` up to the first gap; the caller checks the
    /// count against its remote list (a shortfall is `ENOENT`).
    pub fn from_nv(nv: &NvList) -> WorkerStatusReply {
        let remotes = (0..)
            .map_while(|j| {
                Some(WorkerRemote {
                    state: text(nv, &format!("remotestate{j}"))?,
                    role: text(nv, &format!("remoterole{j}")),
                })
            })
            .collect();
        WorkerStatusReply {
            remotes,
            state: State::from_code(nv.get_u8("state").unwrap_or(0)),
            attempts: nv.get_u8("attempts").unwrap_or(0),
        }
    }
}
