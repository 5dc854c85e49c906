//! Wire codec: frames, nv lists, messages and authentication. Pure code:
//! bytes in, values out; no sockets, no clock.

pub mod nv;

pub use nv::{NvError, NvList, Value};
