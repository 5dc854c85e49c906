//! Wire codec: frames, nv lists, messages and authentication (the 0.3.4
//! digest and HMAC-SHA256 sessions). Pure code: bytes in, values out; no
//! sockets, no clock.

pub mod auth;
pub mod frame;
pub mod hmac;
pub mod msg;
pub mod nv;

pub use auth::{Algorithm, AuthError, AuthFields};
pub use frame::{
    FrameError, FrameReader, MAX_LOCAL_PAYLOAD, MAX_PAYLOAD, decode_frame, encode_frame,
    encode_frame_within,
};
pub use msg::MsgError;
pub use nv::{NvError, NvList, Value};
