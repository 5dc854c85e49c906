//! Ordered name/value lists and their wire encoding (doc/protocol.md §3).
//!
//! Element layout: type byte, namesize (name length + NUL), u32 LE dsize,
//! the name and its NUL padded to 8, the value padded to 8. Names and
//! strings are kept as bytes: the wire does not promise UTF-8 and a decoder
//! must not refuse what the original accepts.

use std::fmt;

/// Longest name the wire can carry (namesize is one byte and counts the NUL).
pub const MAX_NAME_LEN: usize = 254;

const HEADER_LEN: usize = 6;

/// Type codes (doc/protocol.md §3.1); bit 7 of the type byte is the byte-order flag.
pub mod code {
    pub const INT8: u8 = 1;
    pub const UINT8: u8 = 2;
    pub const INT16: u8 = 3;
    pub const UINT16: u8 = 4;
    pub const INT32: u8 = 5;
    pub const UINT32: u8 = 6;
    pub const INT64: u8 = 7;
    pub const UINT64: u8 = 8;
    pub const INT8_ARRAY: u8 = 9;
    pub const UINT8_ARRAY: u8 = 10;
    pub const INT16_ARRAY: u8 = 11;
    pub const UINT16_ARRAY: u8 = 12;
    pub const INT32_ARRAY: u8 = 13;
    pub const UINT32_ARRAY: u8 = 14;
    pub const INT64_ARRAY: u8 = 15;
    pub const UINT64_ARRAY: u8 = 16;
    pub const STRING: u8 = 17;
    /// Set by the original on big-endian senders; masked off on receipt.
    pub const ORDER_FLAG: u8 = 0x80;
}

/// One value of any of the 17 wire types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    I8Array(Vec<i8>),
    U8Array(Vec<u8>),
    I16Array(Vec<i16>),
    U16Array(Vec<u16>),
    I32Array(Vec<i32>),
    U32Array(Vec<u32>),
    I64Array(Vec<i64>),
    U64Array(Vec<u64>),
    /// String bytes without the terminating NUL; never contains a NUL.
    String(Vec<u8>),
}

impl Value {
    /// The wire type code (1..=17).
    pub fn type_code(&self) -> u8 {
        match self {
            Value::I8(_) => code::INT8,
            Value::U8(_) => code::UINT8,
            Value::I16(_) => code::INT16,
            Value::U16(_) => code::UINT16,
            Value::I32(_) => code::INT32,
            Value::U32(_) => code::UINT32,
            Value::I64(_) => code::INT64,
            Value::U64(_) => code::UINT64,
            Value::I8Array(_) => code::INT8_ARRAY,
            Value::U8Array(_) => code::UINT8_ARRAY,
            Value::I16Array(_) => code::INT16_ARRAY,
            Value::U16Array(_) => code::UINT16_ARRAY,
            Value::I32Array(_) => code::INT32_ARRAY,
            Value::U32Array(_) => code::UINT32_ARRAY,
            Value::I64Array(_) => code::INT64_ARRAY,
            Value::U64Array(_) => code::UINT64_ARRAY,
            Value::String(_) => code::STRING,
        }
    }

    /// A string value; the text is cut at its first NUL, as C's `strlen()`
    /// would see it, because the wire cannot carry an embedded NUL.
    pub fn string(text: impl AsRef<[u8]>) -> Value {
        Value::String(until_nul(text.as_ref()).to_vec())
    }

    /// Value length on the wire (dsize).
    fn data_len(&self) -> usize {
        match self {
            Value::I8(_) | Value::U8(_) => 1,
            Value::I16(_) | Value::U16(_) => 2,
            Value::I32(_) | Value::U32(_) => 4,
            Value::I64(_) | Value::U64(_) => 8,
            Value::I8Array(v) => v.len(),
            Value::U8Array(v) => v.len(),
            Value::I16Array(v) => v.len() * 2,
            Value::U16Array(v) => v.len() * 2,
            Value::I32Array(v) => v.len() * 4,
            Value::U32Array(v) => v.len() * 4,
            Value::I64Array(v) => v.len() * 8,
            Value::U64Array(v) => v.len() * 8,
            Value::String(s) => s.len() + 1,
        }
    }

    fn write_data(&self, out: &mut Vec<u8>) {
        match self {
            Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U8(v) => out.push(*v),
            Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I8Array(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::U8Array(v) => out.extend_from_slice(v),
            Value::I16Array(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::U16Array(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::I32Array(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::U32Array(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::I64Array(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::U64Array(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Value::String(s) => {
                out.extend_from_slice(s);
                out.push(0);
            }
        }
    }

    fn is_empty_array(&self) -> bool {
        !matches!(self, Value::String(_)) && self.data_len() == 0
    }
}

/// What made a payload invalid, and the payload offset of the element (or
/// field) at fault. Each variant is one rule of doc/protocol.md §3.2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NvError {
    /// Fewer than 8 bytes left where an element should start.
    HeaderTruncated { offset: usize, remaining: usize },
    /// namesize is 0, so there is no room for the NUL.
    NameSizeZero { offset: usize },
    /// The padded name runs past the end of the payload.
    NameTruncated { offset: usize, namesize: u8 },
    /// The byte at namesize − 1 is not NUL.
    NameNotTerminated { offset: usize },
    /// A NUL occurs before namesize − 1.
    NameHasNul { offset: usize },
    /// Type code (bits 0–6) outside 1..=17.
    UnknownType { offset: usize, type_code: u8 },
    /// dsize is 0.
    DataSizeZero { offset: usize },
    /// The padded value runs past the end of the payload.
    DataTruncated { offset: usize, dsize: u32 },
    /// A scalar's dsize differs from its type's size.
    ScalarSize {
        offset: usize,
        type_code: u8,
        dsize: u32,
    },
    /// An array's dsize is not a multiple of its element size.
    ArraySize {
        offset: usize,
        type_code: u8,
        dsize: u32,
    },
    /// A string value does not end with NUL.
    StringNotTerminated { offset: usize },
    /// A string value has a NUL before its last byte.
    StringHasNul { offset: usize },
}

impl NvError {
    /// Payload offset of the element that broke the rule.
    pub fn offset(&self) -> usize {
        match *self {
            NvError::HeaderTruncated { offset, .. }
            | NvError::NameSizeZero { offset }
            | NvError::NameTruncated { offset, .. }
            | NvError::NameNotTerminated { offset }
            | NvError::NameHasNul { offset }
            | NvError::UnknownType { offset, .. }
            | NvError::DataSizeZero { offset }
            | NvError::DataTruncated { offset, .. }
            | NvError::ScalarSize { offset, .. }
            | NvError::ArraySize { offset, .. }
            | NvError::StringNotTerminated { offset }
            | NvError::StringHasNul { offset } => offset,
        }
    }
}

impl fmt::Display for NvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NvError::HeaderTruncated { offset, remaining } => {
                write!(
                    f,
                    "element at {offset}: only {remaining} bytes left, need at least 8"
                )
            }
            NvError::NameSizeZero { offset } => write!(f, "element at {offset}: namesize is 0"),
            NvError::NameTruncated { offset, namesize } => {
                write!(
                    f,
                    "element at {offset}: name of size {namesize} runs past the end"
                )
            }
            NvError::NameNotTerminated { offset } => {
                write!(f, "element at {offset}: name is not NUL-terminated")
            }
            NvError::NameHasNul { offset } => {
                write!(f, "element at {offset}: name contains a NUL before its end")
            }
            NvError::UnknownType { offset, type_code } => {
                write!(f, "element at {offset}: unknown type {type_code}")
            }
            NvError::DataSizeZero { offset } => write!(f, "element at {offset}: dsize is 0"),
            NvError::DataTruncated { offset, dsize } => {
                write!(
                    f,
                    "element at {offset}: value of size {dsize} runs past the end"
                )
            }
            NvError::ScalarSize {
                offset,
                type_code,
                dsize,
            } => {
                write!(
                    f,
                    "element at {offset}: type {type_code} cannot have dsize {dsize}"
                )
            }
            NvError::ArraySize {
                offset,
                type_code,
                dsize,
            } => write!(
                f,
                "element at {offset}: dsize {dsize} is not a multiple of type {type_code}'s element size"
            ),
            NvError::StringNotTerminated { offset } => {
                write!(f, "element at {offset}: string is not NUL-terminated")
            }
            NvError::StringHasNul { offset } => {
                write!(
                    f,
                    "element at {offset}: string contains a NUL before its end"
                )
            }
        }
    }
}

impl std::error::Error for NvError {}

/// One named value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    name: Vec<u8>,
    value: Value,
}

impl Element {
    /// Name bytes, without the NUL.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// An ordered name/value list. Duplicate names are allowed (lookups use the
/// first); the order is the wire order.
///
/// Every list is encodable: `push` cuts names at a NUL and at 254 bytes,
/// and drops empty arrays (dsize 0 has no wire form).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NvList {
    elements: Vec<Element>,
}

macro_rules! getters {
    ($($(#[$doc:meta])* $fn:ident -> $ty:ty, $variant:ident;)*) => {$(
        $(#[$doc])*
        pub fn $fn(&self, name: &str) -> Option<$ty> {
            match self.get(name) {
                Some(Value::$variant(v)) => Some(*v),
                _ => None,
            }
        }
    )*};
}

macro_rules! array_getters {
    ($($fn:ident -> $ty:ty, $variant:ident;)*) => {$(
        pub fn $fn(&self, name: &str) -> Option<&[$ty]> {
            match self.get(name) {
                Some(Value::$variant(v)) => Some(v.as_slice()),
                _ => None,
            }
        }
    )*};
}

impl NvList {
    pub fn new() -> NvList {
        NvList::default()
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// Appends an element (see the type's note on normalisation).
    pub fn push(&mut self, name: impl AsRef<[u8]>, value: Value) -> &mut NvList {
        if value.is_empty_array() {
            return self;
        }
        let name = until_nul(name.as_ref());
        let name = &name[..name.len().min(MAX_NAME_LEN)];
        let value = match value {
            Value::String(s) => Value::String(until_nul(&s).to_vec()),
            other => other,
        };
        self.elements.push(Element {
            name: name.to_vec(),
            value,
        });
        self
    }

    /// Appends every element of `other`, in order.
    pub fn append(&mut self, other: NvList) -> &mut NvList {
        self.elements.extend(other.elements);
        self
    }

    pub fn add_u8(&mut self, name: impl AsRef<[u8]>, v: u8) -> &mut NvList {
        self.push(name, Value::U8(v))
    }
    pub fn add_i16(&mut self, name: impl AsRef<[u8]>, v: i16) -> &mut NvList {
        self.push(name, Value::I16(v))
    }
    pub fn add_i32(&mut self, name: impl AsRef<[u8]>, v: i32) -> &mut NvList {
        self.push(name, Value::I32(v))
    }
    pub fn add_u32(&mut self, name: impl AsRef<[u8]>, v: u32) -> &mut NvList {
        self.push(name, Value::U32(v))
    }
    pub fn add_u64(&mut self, name: impl AsRef<[u8]>, v: u64) -> &mut NvList {
        self.push(name, Value::U64(v))
    }
    pub fn add_u8_array(&mut self, name: impl AsRef<[u8]>, v: &[u8]) -> &mut NvList {
        self.push(name, Value::U8Array(v.to_vec()))
    }
    pub fn add_string(&mut self, name: impl AsRef<[u8]>, v: impl AsRef<[u8]>) -> &mut NvList {
        self.push(name, Value::string(v))
    }

    /// The value of the first element called `name` (case-sensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.elements
            .iter()
            .find(|e| e.name == name.as_bytes())
            .map(|e| &e.value)
    }

    /// True if some element is called `name`, whatever its type.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    getters! {
        /// The first `name`, if it is an int8; absent or another type → None.
        get_i8 -> i8, I8;
        get_u8 -> u8, U8;
        get_i16 -> i16, I16;
        get_u16 -> u16, U16;
        get_i32 -> i32, I32;
        get_u32 -> u32, U32;
        get_i64 -> i64, I64;
        get_u64 -> u64, U64;
    }

    array_getters! {
        get_i8_array -> i8, I8Array;
        get_u8_array -> u8, U8Array;
        get_i16_array -> i16, I16Array;
        get_u16_array -> u16, U16Array;
        get_i32_array -> i32, I32Array;
        get_u32_array -> u32, U32Array;
        get_i64_array -> i64, I64Array;
        get_u64_array -> u64, U64Array;
    }

    /// The first `name` as string bytes (no NUL), if it is a string.
    pub fn get_string_bytes(&self, name: &str) -> Option<&[u8]> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The first `name` as text; a string that is not UTF-8 counts as absent.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get_string_bytes(name)
            .and_then(|s| std::str::from_utf8(s).ok())
    }

    /// Size of `encode()`'s output, without building it.
    pub fn encoded_len(&self) -> usize {
        self.elements
            .iter()
            .map(|e| HEADER_LEN + roundup8(e.name.len() + 1) + roundup8(e.value.data_len()))
            .sum()
    }

    /// The payload bytes, with zeros in all padding (Q55). Lengths are
    /// written as u32; `encode_frame` keeps payloads far below that.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for e in &self.elements {
            let dsize = e.value.data_len();
            out.push(e.value.type_code());
            // push() keeps names at most 254 bytes, so namesize fits.
            out.push((e.name.len() + 1) as u8);
            out.extend_from_slice(&(dsize as u32).to_le_bytes());
            out.extend_from_slice(&e.name);
            pad_to(&mut out, e.name.len(), roundup8(e.name.len() + 1));
            e.value.write_data(&mut out);
            pad_to(&mut out, dsize, roundup8(dsize));
        }
        out
    }

    /// Parses and validates a whole payload (doc/protocol.md §3.2).
    ///
    /// Allocation is bounded by the input: every value is checked to fit in
    /// `payload` before anything is allocated for it.
    pub fn decode(payload: &[u8]) -> Result<NvList, NvError> {
        let mut list = NvList::new();
        let mut off = 0;
        while off < payload.len() {
            let rest = &payload[off..];
            if rest[0] == 0 {
                break; // trailing zeros: ignored without inspection
            }
            let (element, len) = decode_element(rest, off)?;
            list.elements.push(element);
            off += len;
        }
        Ok(list)
    }
}

/// Decodes the element at the start of `rest` (payload offset `off`) and
/// returns it with its encoded length.
fn decode_element(rest: &[u8], off: usize) -> Result<(Element, usize), NvError> {
    if rest.len() < 8 {
        return Err(NvError::HeaderTruncated {
            offset: off,
            remaining: rest.len(),
        });
    }
    let type_code = rest[0] & !code::ORDER_FLAG;
    let namesize = rest[1];
    let dsize = u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]);
    if namesize == 0 {
        return Err(NvError::NameSizeZero { offset: off });
    }
    let name_end = HEADER_LEN + roundup8(usize::from(namesize));
    if rest.len() < name_end {
        return Err(NvError::NameTruncated {
            offset: off,
            namesize,
        });
    }
    let name_field = &rest[HEADER_LEN..HEADER_LEN + usize::from(namesize)];
    let (name, nul) = name_field.split_at(name_field.len() - 1);
    if nul[0] != 0 {
        return Err(NvError::NameNotTerminated { offset: off });
    }
    if name.contains(&0) {
        return Err(NvError::NameHasNul { offset: off });
    }
    if !(code::INT8..=code::STRING).contains(&type_code) {
        return Err(NvError::UnknownType {
            offset: off,
            type_code,
        });
    }
    if dsize == 0 {
        return Err(NvError::DataSizeZero { offset: off });
    }
    // dsize is checked against the bytes present before it is used for
    // anything, so it can never make us allocate more than the input.
    let avail = rest.len() - name_end;
    let dlen = usize::try_from(dsize).unwrap_or(usize::MAX);
    if dlen > avail || roundup8(dlen) > avail {
        return Err(NvError::DataTruncated { offset: off, dsize });
    }
    let data = &rest[name_end..name_end + dlen];
    let value = decode_value(type_code, data, off, dsize)?;
    let element = Element {
        name: name.to_vec(),
        value,
    };
    Ok((element, name_end + roundup8(dlen)))
}

fn decode_value(type_code: u8, data: &[u8], off: usize, dsize: u32) -> Result<Value, NvError> {
    let scalar = |size: usize| {
        if data.len() == size {
            Ok(())
        } else {
            Err(NvError::ScalarSize {
                offset: off,
                type_code,
                dsize,
            })
        }
    };
    let array = |size: usize| {
        if data.len().is_multiple_of(size) {
            Ok(data.chunks_exact(size))
        } else {
            Err(NvError::ArraySize {
                offset: off,
                type_code,
                dsize,
            })
        }
    };
    Ok(match type_code {
        code::INT8 => scalar(1).map(|()| Value::I8(data[0] as i8))?,
        code::UINT8 => scalar(1).map(|()| Value::U8(data[0]))?,
        code::INT16 => scalar(2).map(|()| Value::I16(i16::from_le_bytes(le(data))))?,
        code::UINT16 => scalar(2).map(|()| Value::U16(u16::from_le_bytes(le(data))))?,
        code::INT32 => scalar(4).map(|()| Value::I32(i32::from_le_bytes(le(data))))?,
        code::UINT32 => scalar(4).map(|()| Value::U32(u32::from_le_bytes(le(data))))?,
        code::INT64 => scalar(8).map(|()| Value::I64(i64::from_le_bytes(le(data))))?,
        code::UINT64 => scalar(8).map(|()| Value::U64(u64::from_le_bytes(le(data))))?,
        code::INT8_ARRAY => Value::I8Array(data.iter().map(|&b| b as i8).collect()),
        code::UINT8_ARRAY => Value::U8Array(data.to_vec()),
        code::INT16_ARRAY => {
            Value::I16Array(array(2)?.map(|c| i16::from_le_bytes(le(c))).collect())
        }
        code::UINT16_ARRAY => {
            Value::U16Array(array(2)?.map(|c| u16::from_le_bytes(le(c))).collect())
        }
        code::INT32_ARRAY => {
            Value::I32Array(array(4)?.map(|c| i32::from_le_bytes(le(c))).collect())
        }
        code::UINT32_ARRAY => {
            Value::U32Array(array(4)?.map(|c| u32::from_le_bytes(le(c))).collect())
        }
        code::INT64_ARRAY => {
            Value::I64Array(array(8)?.map(|c| i64::from_le_bytes(le(c))).collect())
        }
        code::UINT64_ARRAY => {
            Value::U64Array(array(8)?.map(|c| u64::from_le_bytes(le(c))).collect())
        }
        // code::STRING: every other code was rejected before this point.
        _ => {
            let (text, last) = data.split_at(data.len() - 1);
            if last[0] != 0 {
                return Err(NvError::StringNotTerminated { offset: off });
            }
            if text.contains(&0) {
                return Err(NvError::StringHasNul { offset: off });
            }
            Value::String(text.to_vec())
        }
    })
}

/// Copies a slice whose length the caller has checked into an array.
fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

fn roundup8(x: usize) -> usize {
    x.div_ceil(8) * 8
}

fn pad_to(out: &mut Vec<u8>, written: usize, padded: usize) {
    out.resize(out.len() + (padded - written), 0);
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(i) => &bytes[..i],
        None => bytes,
    }
}
