//! Frames: a 5-byte header (version 0, u32 LE payload length) and an nv
//! payload (doc/protocol.md §2).

use std::fmt;

use super::nv::{NvError, NvList};

pub const VERSION: u8 = 0;
pub const HEADER_LEN: usize = 5;
/// Largest payload accepted or sent between nodes. The original has no
/// cap (Q3); the biggest message between nodes, a status poll's answer
/// for one resource, is far smaller.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// Largest status reply on the local control socket (mode 0600, the
/// administrator's own): about 340 bytes a resource, so room for far more
/// resources than a node runs.
pub const MAX_LOCAL_PAYLOAD: usize = 64 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The header's version byte is not 0.
    BadVersion { version: u8 },
    /// The payload length exceeds the limit.
    Oversize { length: u64, limit: usize },
    /// A buffer said to hold one frame is shorter than a header.
    HeaderTruncated { received: usize },
    /// A buffer said to hold one frame holds fewer or more bytes than
    /// its header announces.
    LengthMismatch { announced: usize, received: usize },
    /// The payload is not a valid nv list.
    Payload(NvError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadVersion { version } => {
                write!(f, "unsupported protocol version {version}")
            }
            FrameError::Oversize { length, limit } => {
                write!(f, "payload of {length} bytes exceeds the limit of {limit}")
            }
            FrameError::HeaderTruncated { received } => {
                write!(f, "frame of {received} bytes is shorter than its header")
            }
            FrameError::LengthMismatch {
                announced,
                received,
            } => write!(
                f,
                "header announces {announced} payload bytes but {received} follow it"
            ),
            FrameError::Payload(e) => write!(f, "invalid payload: {e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Payload(e) => Some(e),
            _ => None,
        }
    }
}

impl From<NvError> for FrameError {
    fn from(e: NvError) -> FrameError {
        FrameError::Payload(e)
    }
}

/// Checks a header and returns the payload length it announces.
pub fn parse_header(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    parse_header_within(header, MAX_PAYLOAD)
}

/// `parse_header` with another limit.
pub fn parse_header_within(header: [u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    if header[0] != VERSION {
        return Err(FrameError::BadVersion { version: header[0] });
    }
    let length = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    match usize::try_from(length) {
        Ok(n) if n <= limit => Ok(n),
        _ => Err(FrameError::Oversize {
            length: u64::from(length),
            limit,
        }),
    }
}

/// Header plus payload. Refuses what our own receiver would refuse, so the
/// length always fits the u32 field.
pub fn encode_frame(list: &NvList) -> Result<Vec<u8>, FrameError> {
    encode_frame_within(list, MAX_PAYLOAD)
}

/// `encode_frame` with another limit (at most `MAX_LOCAL_PAYLOAD`).
pub fn encode_frame_within(list: &NvList, limit: usize) -> Result<Vec<u8>, FrameError> {
    assert!(
        limit <= MAX_LOCAL_PAYLOAD,
        "the length must fit its u32 field"
    );
    let length = list.encoded_len();
    if length > limit {
        return Err(FrameError::Oversize {
            length: length as u64,
            limit,
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + length);
    out.push(VERSION);
    out.extend_from_slice(&(length as u32).to_le_bytes());
    out.extend_from_slice(&list.encode());
    Ok(out)
}

/// Decodes one complete frame held in `bytes` (nothing more, nothing less).
pub fn decode_frame(bytes: &[u8]) -> Result<NvList, FrameError> {
    let mut header = [0; HEADER_LEN];
    let received = bytes.len().saturating_sub(HEADER_LEN);
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Err(FrameError::HeaderTruncated {
            received: bytes.len(),
        });
    };
    header.copy_from_slice(h);
    let announced = parse_header(header)?;
    if announced != received {
        return Err(FrameError::LengthMismatch {
            announced,
            received,
        });
    }
    Ok(NvList::decode(&bytes[HEADER_LEN..])?)
}

/// Reassembles frames from a byte stream read in arbitrary pieces.
///
/// After a header error the stream's framing is lost, so the reader keeps
/// returning that error; the caller should close the connection. An invalid
/// payload does not lose the framing and is reported once.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    failed: Option<FrameError>,
    limit: usize,
}

impl Default for FrameReader {
    fn default() -> FrameReader {
        FrameReader::with_limit(MAX_PAYLOAD)
    }
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// A reader that takes payloads up to `limit` bytes.
    pub fn with_limit(limit: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            failed: None,
            limit,
        }
    }

    /// Adds bytes as they arrive. The buffer holds only what has not been
    /// taken yet, so taking frames after every push bounds it to one frame
    /// plus one read; reading at most `needed()` bytes bounds it to a frame.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many more bytes complete the frame in progress (the header first,
    /// then the payload). 0 means a frame is ready or the reader failed.
    pub fn needed(&self) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        let Some(header) = self.header() else {
            return HEADER_LEN - self.buf.len();
        };
        match parse_header_within(header, self.limit) {
            Ok(len) => (HEADER_LEN + len).saturating_sub(self.buf.len()),
            Err(_) => 0,
        }
    }

    /// Takes the next complete payload, if one is buffered.
    pub fn next_payload(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(header) = self.header() else {
            return Ok(None);
        };
        let len = match parse_header_within(header, self.limit) {
            Ok(len) => len,
            Err(e) => {
                self.fail(e.clone());
                return Err(e);
            }
        };
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(payload))
    }

    /// Takes and decodes the next complete frame, if one is buffered.
    pub fn next_list(&mut self) -> Result<Option<NvList>, FrameError> {
        let Some(payload) = self.next_payload()? else {
            return Ok(None);
        };
        Ok(Some(NvList::decode(&payload)?))
    }

    fn header(&self) -> Option<[u8; HEADER_LEN]> {
        self.buf.get(..HEADER_LEN).map(|h| {
            let mut out = [0; HEADER_LEN];
            out.copy_from_slice(h);
            out
        })
    }

    fn fail(&mut self, e: FrameError) {
        self.buf = Vec::new();
        self.failed = Some(e);
    }
}
