//! One request to the daemon's control socket, one reply.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::config::Address;
use crate::config::address::Kind;
use crate::exit;
use crate::proto::{FrameReader, NvList, encode_frame};

/// How long to wait for the daemon's answer. 0.3.4 waited for ever; a
/// daemon that does not answer within this is not going to.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed exchange: the exit code and the message, as 0.3.4 words them.
pub type Failure = (i32, String);

pub fn exchange(control: &Address, request: &NvList) -> Result<NvList, Failure> {
    exchange_within(control, request, REPLY_TIMEOUT)
}

/// `exchange`, waiting up to `timeout` for the answer.
pub fn exchange_within(
    control: &Address,
    request: &NvList,
    timeout: Duration,
) -> Result<NvList, Failure> {
    let Kind::Unix(path) = control.kind() else {
        return Err((
            exit::OSERR,
            format!("Unable to setup control connection to {control}."),
        ));
    };
    let mut stream = UnixStream::connect(path).map_err(|e| {
        (
            exit::OSERR,
            format!(
                "Unable to connect to hastmon via {control}: {}.",
                os_text(&e)
            ),
        )
    })?;
    let unavailable = |what: &str, e: String| {
        (
            exit::UNAVAILABLE,
            format!("{what} hastmon via {control}: {e}."),
        )
    };
    let frame = encode_frame(request)
        .map_err(|e| unavailable("Unable to send command to", e.to_string()))?;
    stream
        .write_all(&frame)
        .map_err(|e| unavailable("Unable to send command to", os_text(&e)))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| unavailable("cannot receive reply from", os_text(&e)))?;
    // The local socket's replies may be larger than a peer's (one status
    // entry for every resource of the node).
    let mut reader = FrameReader::with_limit(crate::proto::MAX_LOCAL_PAYLOAD);
    let mut buf = [0u8; 16384];
    loop {
        match reader.next_list() {
            Ok(Some(list)) => return Ok(list),
            Ok(None) => {}
            Err(e) => return Err(unavailable("cannot receive reply from", e.to_string())),
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(unavailable(
                    "cannot receive reply from",
                    "connection closed without a reply".into(),
                ));
            }
            Ok(n) => reader.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(unavailable("cannot receive reply from", os_text(&e))),
        }
    }
}

fn os_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
