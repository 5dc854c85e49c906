//! Typed messages. Each `to_nv()` reproduces the original's field order;
//! each decoder reads like the original (absent integers are 0) except
//! where presence matters for safety, which is then exposed as `Option`.
//!
//! Text fields are decoded lossily: the original's configuration admits only
//! ASCII names, so a non-UTF-8 byte can only come from a foreign peer and
//! must not make an otherwise valid request unreadable.

use std::fmt;

use super::nv::NvList;

mod control;
mod internal;
mod peer;
mod status_extra;

pub use control::{
    Complaint, ControlCmd, ControlRequest, RemoteStatus, ResourceStatus, RoleEntry, RoleOutcome,
    RoleReply, StatusEntry, StatusOutcome, StatusPoll, StatusReply, WorkerStatus, ehast,
    error_reply,
};
pub use internal::{
    CtrlRequest, EventReply, EventRequest, HookEvent, WorkerRemote, WorkerStatusReply,
};
pub use peer::{
    HIO_STATE, Handshake1, Handshake1Reply, Handshake2, Handshake2Confirm, HeartbeatReply,
    HeartbeatRequest, HeartbeatStatus, ListenRequest, Refusal, TOKEN_LEN, Token, errmsg,
};
pub use status_extra::{HookOutcome, HookRun, LastChange, StatusExtra};

/// `type` values on the listen port (`hast.h`).
pub mod request_type {
    pub const HANDSHAKE: u8 = 0;
    pub const CONTROL: u8 = 1;
    pub const COMPLAINT: u8 = 2;
}

/// Why a list is not the expected message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MsgError {
    /// A required field is absent (or has another type, which reads the same).
    MissingField { field: &'static str },
    /// A `token` is present but not 16 bytes long.
    TokenSize { found: usize },
    /// The peer answered with `errmsg` instead of the expected reply.
    Refused { errmsg: String },
}

impl fmt::Display for MsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsgError::MissingField { field } => write!(f, "message is missing the '{field}' field"),
            MsgError::TokenSize { found } => {
                write!(f, "token is {found} bytes long, should be {TOKEN_LEN}")
            }
            MsgError::Refused { errmsg } => write!(f, "refused by the remote node: {errmsg}"),
        }
    }
}

impl std::error::Error for MsgError {}

/// A string field as text (lossy), if present with the string type.
fn text(nv: &NvList, name: &str) -> Option<String> {
    nv.get_string_bytes(name)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn required_text(nv: &NvList, field: &'static str) -> Result<String, MsgError> {
    text(nv, field).ok_or(MsgError::MissingField { field })
}

/// `errmsg` present means the peer refused, whatever else the list holds.
fn refusal(nv: &NvList) -> Result<(), MsgError> {
    match text(nv, "errmsg") {
        Some(errmsg) => Err(MsgError::Refused { errmsg }),
        None => Ok(()),
    }
}
