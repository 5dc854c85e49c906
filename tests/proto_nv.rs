//! nv list validation (one test per rule of doc/protocol.md §3.2), lookup
//! semantics and the encoder's normalisation.

use hastmon::proto::nv::{MAX_NAME_LEN, NvError, NvList, Value};

/// One raw element: header, name + NUL padded with `fill`, value padded
/// with zeros. Lengths are written as given, so they can lie.
fn raw(type_byte: u8, namesize: u8, dsize: u32, name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![type_byte, namesize];
    out.extend_from_slice(&dsize.to_le_bytes());
    out.extend_from_slice(name);
    while (out.len() - 6) % 8 != 0 {
        out.push(0);
    }
    out.extend_from_slice(value);
    while (out.len() - 6) % 8 != 0 {
        out.push(0);
    }
    out
}

fn good() -> Vec<u8> {
    raw(2, 4, 1, b"cmd\0", &[1])
}

fn after_good(bad: &[u8]) -> (Vec<u8>, usize) {
    let mut payload = good();
    let offset = payload.len();
    payload.extend_from_slice(bad);
    (payload, offset)
}

#[test]
fn fewer_than_eight_bytes_left_is_rejected() {
    let (payload, offset) = after_good(&[2, 4, 1, 0, 0, 0, b'x']);
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::HeaderTruncated {
            offset: 22,
            remaining: 7
        })
    );
    assert_eq!(offset, 22);
}

#[test]
fn zero_namesize_is_rejected() {
    let (payload, offset) = after_good(&raw(2, 0, 1, b"", &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::NameSizeZero { offset })
    );
}

#[test]
fn name_running_past_the_end_is_rejected() {
    let (payload, offset) = after_good(&raw(2, 20, 1, b"abcdefg\0", &[]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::NameTruncated {
            offset,
            namesize: 20
        })
    );
}

#[test]
fn name_without_nul_at_namesize_minus_one_is_rejected() {
    let (payload, offset) = after_good(&raw(2, 4, 1, b"abcd", &[1]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::NameNotTerminated { offset })
    );
}

#[test]
fn name_with_an_early_nul_is_rejected() {
    let (payload, offset) = after_good(&raw(2, 4, 1, b"a\0c\0", &[1]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::NameHasNul { offset })
    );
}

#[test]
fn type_codes_outside_1_to_17_are_rejected() {
    for (byte, code) in [(18u8, 18u8), (0x7f, 0x7f), (0x80, 0), (0x92, 18)] {
        let (payload, offset) = after_good(&raw(byte, 4, 1, b"abc\0", &[1]));
        assert_eq!(
            NvList::decode(&payload),
            Err(NvError::UnknownType {
                offset,
                type_code: code
            }),
            "type byte {byte:#x}"
        );
    }
}

#[test]
fn zero_dsize_is_rejected() {
    let (payload, offset) = after_good(&raw(10, 4, 0, b"abc\0", &[0; 8]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::DataSizeZero { offset })
    );
}

#[test]
fn value_running_past_the_end_is_rejected() {
    // 9 bytes announced, 8 present (the padded value would need 16).
    let (payload, offset) = after_good(&raw(10, 4, 9, b"abc\0", &[7; 8]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::DataTruncated { offset, dsize: 9 })
    );
    let (payload, offset) = after_good(&raw(10, 4, u32::MAX, b"abc\0", &[7; 8]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::DataTruncated {
            offset,
            dsize: u32::MAX
        })
    );
}

#[test]
fn value_padding_must_fit_too() {
    // dsize 1 fits in the bytes present but its padding to 8 does not.
    let mut payload = raw(2, 4, 1, b"abc\0", &[]);
    payload.push(1);
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::DataTruncated {
            offset: 0,
            dsize: 1
        })
    );
}

#[test]
fn scalar_with_the_wrong_dsize_is_rejected() {
    let (payload, offset) = after_good(&raw(2, 4, 2, b"abc\0", &[1, 0]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::ScalarSize {
            offset,
            type_code: 2,
            dsize: 2
        })
    );
    let (payload, offset) = after_good(&raw(8, 4, 4, b"abc\0", &[1, 0, 0, 0]));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::ScalarSize {
            offset,
            type_code: 8,
            dsize: 4
        })
    );
}

#[test]
fn array_dsize_not_a_multiple_of_the_element_is_rejected() {
    for (code, dsize) in [(11u8, 3u32), (13, 6), (16, 12)] {
        let (payload, offset) =
            after_good(&raw(code, 4, dsize, b"abc\0", &vec![1; dsize as usize]));
        assert_eq!(
            NvList::decode(&payload),
            Err(NvError::ArraySize {
                offset,
                type_code: code,
                dsize
            })
        );
    }
}

#[test]
fn string_without_final_nul_is_rejected() {
    let (payload, offset) = after_good(&raw(17, 4, 2, b"abc\0", b"r1"));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::StringNotTerminated { offset })
    );
}

#[test]
fn string_with_an_inner_nul_is_rejected() {
    let (payload, offset) = after_good(&raw(17, 4, 4, b"abc\0", b"r\x001\0"));
    assert_eq!(
        NvList::decode(&payload),
        Err(NvError::StringHasNul { offset })
    );
}

#[test]
fn a_zero_type_byte_ends_the_list_and_the_rest_is_ignored() {
    let (payload, _) = after_good(&[0, 0xff, 0xff, 0xff, 1, 2, 3]);
    let nv = NvList::decode(&payload).unwrap();
    assert_eq!(nv.len(), 1);
    assert_eq!(nv.get_u8("cmd"), Some(1));
    assert!(NvList::decode(&[0]).unwrap().is_empty());
    assert!(NvList::decode(&[]).unwrap().is_empty());
}

#[test]
fn bit_7_is_masked_and_values_stay_little_endian() {
    let mut payload = raw(0x88, 4, 8, b"seq\0", &42u64.to_le_bytes());
    payload.extend(raw(0x8d, 4, 8, b"arr\0", &[1, 0, 0, 0, 0, 0, 0, 1]));
    let nv = NvList::decode(&payload).unwrap();
    assert_eq!(nv.get_u64("seq"), Some(42));
    assert_eq!(nv.get_i32_array("arr"), Some(&[1, 1 << 24][..]));
    // Re-encoding clears the flag.
    assert_eq!(nv.encode()[0], 8);
}

#[test]
fn name_and_value_padding_content_is_ignored() {
    let mut payload = good();
    payload[10] = 0xaa; // name padding after "cmd\0"
    payload[15] = 0x55; // value padding after the uint8
    assert_eq!(NvList::decode(&payload).unwrap().get_u8("cmd"), Some(1));
}

#[test]
fn empty_name_is_accepted() {
    let payload = raw(2, 1, 1, b"\0", &[9]);
    let nv = NvList::decode(&payload).unwrap();
    assert_eq!(nv.get_u8(""), Some(9));
    assert_eq!(nv.encode(), payload);
}

#[test]
fn every_type_decodes_little_endian() {
    let cases: Vec<(u8, Vec<u8>, Value)> = vec![
        (1, vec![0xff], Value::I8(-1)),
        (2, vec![0xff], Value::U8(255)),
        (3, vec![0xfe, 0xff], Value::I16(-2)),
        (4, vec![0x01, 0x02], Value::U16(0x0201)),
        (5, vec![0xfd, 0xff, 0xff, 0xff], Value::I32(-3)),
        (6, vec![1, 2, 3, 4], Value::U32(0x0403_0201)),
        (7, (-4i64).to_le_bytes().to_vec(), Value::I64(-4)),
        (
            8,
            0x0102_0304_0506_0708u64.to_le_bytes().to_vec(),
            Value::U64(0x0102_0304_0506_0708),
        ),
        (9, vec![0x80, 1], Value::I8Array(vec![-128, 1])),
        (10, vec![1, 2, 3], Value::U8Array(vec![1, 2, 3])),
        (11, vec![0xff, 0xff, 2, 0], Value::I16Array(vec![-1, 2])),
        (12, vec![1, 1], Value::U16Array(vec![257])),
        (13, vec![0xff; 4], Value::I32Array(vec![-1])),
        (14, vec![0, 0, 0, 1], Value::U32Array(vec![1 << 24])),
        (15, vec![0xff; 8], Value::I64Array(vec![-1])),
        (
            16,
            [1u64.to_le_bytes(), 2u64.to_le_bytes()].concat(),
            Value::U64Array(vec![1, 2]),
        ),
        (17, b"hi\0".to_vec(), Value::string("hi")),
    ];
    for (code, data, value) in cases {
        let payload = raw(code, 2, data.len() as u32, b"v\0", &data);
        let nv = NvList::decode(&payload).unwrap();
        assert_eq!(nv.get("v"), Some(&value), "type {code}");
        assert_eq!(value.type_code(), code);
        assert_eq!(nv.encode(), payload, "type {code} re-encodes");
    }
}

#[test]
fn lookup_uses_the_first_element_and_a_wrong_type_reads_as_absent() {
    let mut nv = NvList::new();
    nv.add_i16("error", 22)
        .add_i16("error", 5)
        .add_u8("state", 3);
    assert_eq!(nv.get_i16("error"), Some(22));
    assert_eq!(nv.get_u8("error"), None);
    assert_eq!(nv.get_i16("Error"), None);
    // The first `state` is a uint8, so asking for int32 finds nothing even
    // though a later element would match.
    nv.add_i32("state", 7);
    assert_eq!(nv.get_i32("state"), None);
    assert!(nv.contains("state"));
}

#[test]
fn non_utf8_strings_are_kept_as_bytes() {
    let payload = raw(17, 2, 3, b"s\0", &[0xff, 0xfe, 0]);
    let nv = NvList::decode(&payload).unwrap();
    assert_eq!(nv.get_str("s"), None);
    assert_eq!(nv.get_string_bytes("s"), Some(&[0xff, 0xfe][..]));
    assert_eq!(nv.encode(), payload);
}

#[test]
fn push_keeps_every_list_encodable() {
    let mut nv = NvList::new();
    nv.add_string("na\0me", "va\0lue");
    nv.add_u8_array("empty", &[]);
    nv.add_u8("x".repeat(300), 1);
    assert_eq!(nv.len(), 2);
    assert_eq!(nv.elements()[0].name(), b"na");
    assert_eq!(nv.get_str("na"), Some("va"));
    assert_eq!(nv.elements()[1].name().len(), MAX_NAME_LEN);
    let decoded = NvList::decode(&nv.encode()).unwrap();
    assert_eq!(decoded, nv);
    assert_eq!(nv.encoded_len(), nv.encode().len());
}

#[test]
fn encoder_pads_with_zeros() {
    let mut nv = NvList::new();
    nv.add_string("resource", "r1");
    let bytes = nv.encode();
    assert_eq!(
        bytes,
        [
            &[0x11, 9, 3, 0, 0, 0][..],
            b"resource\0\0\0\0\0\0\0\0",
            b"r1\0\0\0\0\0\0",
        ]
        .concat()
    );
}

#[test]
fn errors_report_their_offset() {
    let (payload, offset) = after_good(&raw(17, 4, 2, b"abc\0", b"r1"));
    let e = NvList::decode(&payload).unwrap_err();
    assert_eq!(e.offset(), offset);
    assert!(e.to_string().contains(&format!("element at {offset}")));
}
