//! Primary ↔ secondary messages (doc/protocol.md §4) and the acceptor's
//! classification of what arrives on the listen port (§8).

use super::{MsgError, refusal, request_type, required_text, text};
use crate::proto::auth::AuthFields;
use crate::proto::nv::NvList;
use crate::types::State;

use super::control::{Complaint, ControlRequest};

pub const TOKEN_LEN: usize = 16;
pub type Token = [u8; TOKEN_LEN];

/// Heartbeat `cmd` value (`HIO_STATE`).
pub const HIO_STATE: u8 = 1;

/// `errmsg` texts the acceptor sends, byte for byte.
pub mod errmsg {
    use crate::types::Role;

    pub const RESOURCE_NOT_CONFIGURED: &str = "Resource not configured.";
    pub const NO_ACCESS: &str = "No access to the resource.";
    pub const TOKEN_MISMATCH: &str = "Token doesn't match.";
    /// A handshake must say its priority (Q15).
    pub const PRIORITY_MISSING: &str = "Priority is missing.";
    /// The resource is still being stopped here (a primary let go, its
    /// `stop` not yet done): a primary takes this as "try again", and
    /// starts nothing meanwhile.
    pub const STOPPING: &str = "Resource is being stopped on the remote node; try again.";

    pub fn not_secondary(role: Role) -> String {
        format!("Remote node acts as {role} for the resource and not as secondary.")
    }

    /// Keeps the original's `prioty` typo (Q48): peers may match on it.
    pub fn stronger_primary(priority: i32) -> String {
        format!("Remote node acts as primary with higher priority (prioty number {priority}).")
    }

    /// A secondary already serving a stronger primary refuses a newcomer
    /// (Q16); sent with the current primary's priority, so that the
    /// newcomer steps down as it would before a stronger primary.
    pub fn serving_stronger_primary(priority: i32) -> String {
        format!("Remote node serves a primary with higher priority (priority number {priority}).")
    }

    pub fn unable_to_prepare(strerror: &str) -> String {
        format!("Remote node was unable to prepare return header: {strerror}.")
    }

    pub fn unable_to_send(strerror: &str) -> String {
        format!("Remote node was unable to send response: {strerror}.")
    }
}

/// Stage 1 on connection #1: `{resource, priority, [now, auth_hash],
/// [heartbeat_ms]}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake1 {
    pub resource: String,
    /// `None` when the field is absent, which the original reads as 0 and
    /// which must not dethrone a primary (Q15).
    pub priority: Option<i32>,
    pub auth: Option<AuthFields>,
    /// Ours only, last, so 0.3.4 (which looks fields up by name) ignores
    /// it: the primary's heartbeat interval, by which its secondary
    /// measures silence (doc/quirks.md Q22).
    pub heartbeat_ms: Option<u32>,
}

impl Handshake1 {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_string("resource", &self.resource);
        if let Some(p) = self.priority {
            nv.add_i32("priority", p);
        }
        if let Some(auth) = &self.auth {
            auth.write(&mut nv);
        }
        if let Some(hb) = self.heartbeat_ms {
            nv.add_u32("heartbeat_ms", hb);
        }
        nv
    }

    pub fn from_nv(nv: &NvList) -> Result<Handshake1, MsgError> {
        Ok(Handshake1 {
            resource: required_text(nv, "resource")?,
            priority: nv.get_i32("priority"),
            auth: AuthFields::from_nv(nv),
            heartbeat_ms: nv.get_u32("heartbeat_ms").filter(|&ms| ms > 0),
        })
    }
}

/// Any `{errmsg}`-only refusal (stage 1 or 2, complaint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub errmsg: String,
}

impl Refusal {
    pub fn new(errmsg: impl Into<String>) -> Refusal {
        Refusal {
            errmsg: errmsg.into(),
        }
    }

    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_string("errmsg", &self.errmsg);
        nv
    }
}

/// The acceptor's answer to stage 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake1Reply {
    Token(Token),
    /// `priority` is present only when the acceptor is a stronger primary;
    /// its presence, not its value, is what counts (Q14).
    Refused {
        errmsg: String,
        priority: Option<i32>,
    },
}

impl Handshake1Reply {
    pub fn stronger_primary(priority: i32) -> Handshake1Reply {
        Handshake1Reply::Refused {
            errmsg: errmsg::stronger_primary(priority),
            priority: Some(priority),
        }
    }

    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        match self {
            Handshake1Reply::Token(token) => {
                nv.add_u8_array("token", token);
            }
            Handshake1Reply::Refused { errmsg, priority } => {
                nv.add_string("errmsg", errmsg);
                if let Some(p) = priority {
                    nv.add_i32("priority", *p);
                }
            }
        }
        nv
    }

    pub fn from_nv(nv: &NvList) -> Result<Handshake1Reply, MsgError> {
        if let Some(errmsg) = text(nv, "errmsg") {
            return Ok(Handshake1Reply::Refused {
                errmsg,
                priority: nv.get_i32("priority"),
            });
        }
        Ok(Handshake1Reply::Token(required_token(nv)?))
    }
}

/// Stage 2 on connection #2: `{[now, auth_hash], resource, token, resuid}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake2 {
    pub auth: Option<AuthFields>,
    pub resource: String,
    pub token: Token,
    pub resuid: u64,
}

impl Handshake2 {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        if let Some(auth) = &self.auth {
            auth.write(&mut nv);
        }
        nv.add_string("resource", &self.resource)
            .add_u8_array("token", &self.token)
            .add_u64("resuid", self.resuid);
        nv
    }

    pub fn from_nv(nv: &NvList) -> Result<Handshake2, MsgError> {
        Ok(Handshake2 {
            auth: AuthFields::from_nv(nv),
            resource: required_text(nv, "resource")?,
            token: required_token(nv)?,
            resuid: nv.get_u64("resuid").unwrap_or(0),
        })
    }
}

/// The secondary worker's `{resuid}` on connection #1 after stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake2Confirm {
    pub resuid: u64,
}

impl Handshake2Confirm {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_u64("resuid", self.resuid);
        nv
    }

    /// An `errmsg` instead is a refusal.
    pub fn from_nv(nv: &NvList) -> Result<Handshake2Confirm, MsgError> {
        refusal(nv)?;
        Ok(Handshake2Confirm {
            resuid: nv.get_u64("resuid").unwrap_or(0),
        })
    }
}

/// Primary → secondary on #1: `{cmd, state, seq}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// `HIO_STATE`; anything else gets an `EINVAL` reply.
    pub cmd: u8,
    pub state: State,
    pub seq: u64,
}

impl HeartbeatRequest {
    pub fn new(state: State, seq: u64) -> HeartbeatRequest {
        HeartbeatRequest {
            cmd: HIO_STATE,
            state,
            seq,
        }
    }

    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        nv.add_u8("cmd", self.cmd)
            .add_u8("state", self.state.code())
            .add_u64("seq", self.seq);
        nv
    }

    /// Never fails: absent fields read as 0, like the original.
    pub fn from_nv(nv: &NvList) -> HeartbeatRequest {
        HeartbeatRequest {
            cmd: nv.get_u8("cmd").unwrap_or(0),
            state: State::from_code(nv.get_u8("state").unwrap_or(0)),
            seq: nv.get_u64("seq").unwrap_or(0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatStatus {
    State(State),
    /// An errno of the secondary's OS (22 for a bad `cmd`).
    Error(i16),
}

/// Secondary → primary on #2: `{seq, state}` or `{seq, error}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// `None` if absent: the primary must drop such a reply.
    pub seq: Option<u64>,
    pub status: HeartbeatStatus,
}

impl HeartbeatReply {
    pub fn to_nv(&self) -> NvList {
        let mut nv = NvList::new();
        if let Some(seq) = self.seq {
            nv.add_u64("seq", seq);
        }
        match self.status {
            HeartbeatStatus::State(s) => nv.add_u8("state", s.code()),
            HeartbeatStatus::Error(e) => nv.add_i16("error", e),
        };
        nv
    }

    /// An `error` field, whatever its value, marks a failed round (Q6).
    pub fn from_nv(nv: &NvList) -> HeartbeatReply {
        let status = match nv.get_i16("error") {
            Some(e) => HeartbeatStatus::Error(e),
            None => HeartbeatStatus::State(State::from_code(nv.get_u8("state").unwrap_or(0))),
        };
        HeartbeatReply {
            seq: nv.get_u64("seq"),
            status,
        }
    }
}

/// What a frame on the listen port asks for, decided as the acceptor does
/// (doc/protocol.md §8, steps 2–8): `type` 1 → control; then `resource` is required and a
/// `token` must be 16 bytes; `type` 2 → complaint; anything else is a
/// handshake, stage 2 if it carries a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenRequest {
    Control(ControlRequest),
    Complaint(Complaint),
    Handshake1(Handshake1),
    Handshake2(Handshake2),
}

impl ListenRequest {
    pub fn from_nv(nv: &NvList) -> Result<ListenRequest, MsgError> {
        let kind = nv.get_u8("type").unwrap_or(request_type::HANDSHAKE);
        if kind == request_type::CONTROL {
            return ControlRequest::from_nv(nv).map(ListenRequest::Control);
        }
        required_text(nv, "resource")?;
        if let Some(token) = nv.get_u8_array("token")
            && token.len() != TOKEN_LEN
        {
            return Err(MsgError::TokenSize { found: token.len() });
        }
        if kind == request_type::COMPLAINT {
            return Complaint::from_nv(nv).map(ListenRequest::Complaint);
        }
        if nv.get_u8_array("token").is_some() {
            Handshake2::from_nv(nv).map(ListenRequest::Handshake2)
        } else {
            Handshake1::from_nv(nv).map(ListenRequest::Handshake1)
        }
    }
}

fn required_token(nv: &NvList) -> Result<Token, MsgError> {
    let bytes = nv
        .get_u8_array("token")
        .ok_or(MsgError::MissingField { field: "token" })?;
    Token::try_from(bytes).map_err(|_| MsgError::TokenSize { found: bytes.len() })
}
