//! Fuzz target `hex`: the SWAR hex decoder against a naive reference decoder, and round trips.
//!
//! The decoder validates eight digits at a time with carries between byte lanes; the reference
//! here decodes one digit at a time. They must agree on every input: the same bytes, or the same
//! error with the same position and byte.

#![no_main]

use electrum_spv_core::BlockHash;
use electrum_spv_core::hex::{
    HexError, decode_array, decode_reversed_to_slice, decode_to_slice, encode_reversed_to_slice,
    encode_to_slice,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decode_like_reference(data);
    wrong_output_length(data);
    round_trip(data);
    display_hash(data);
});

/// One digit at a time: the specification the fast decoder must meet.
fn reference_decode(src: &[u8], out_len: usize) -> Result<Vec<u8>, HexError> {
    if src.len() != 2 * out_len {
        return Err(HexError::BadLength {
            expected: 2 * out_len,
            got: src.len(),
        });
    }
    let value = |position: usize| {
        let byte = src[position];
        char::from(byte)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or(HexError::InvalidDigit { position, byte })
    };
    (0..out_len)
        .map(|i| Ok((value(2 * i)? << 4) | value(2 * i + 1)?))
        .collect()
}

fn decode_like_reference(data: &[u8]) {
    let out_len = data.len() / 2;
    let expected = reference_decode(data, out_len);
    let mut out = vec![0u8; out_len];
    let got = decode_to_slice(data, &mut out).map(|()| out.clone());
    assert_eq!(got, expected);

    let mut reversed = vec![0u8; out_len];
    let got = decode_reversed_to_slice(data, &mut reversed).map(|()| {
        reversed.reverse();
        reversed
    });
    assert_eq!(got, expected);

    if let Ok(bytes) = &expected {
        // Valid input re-encodes to itself, lowercased.
        let mut again = vec![0u8; data.len()];
        encode_to_slice(bytes, &mut again).expect("sized");
        assert_eq!(again, data.to_ascii_lowercase());
    }
}

/// An output buffer of the wrong size is a length error, never a partial decode or encode.
fn wrong_output_length(data: &[u8]) {
    let Some(&first) = data.first() else { return };
    let len = usize::from(first);
    let mut out = vec![0u8; len];
    let got = decode_to_slice(data, &mut out).map(|()| out.clone());
    assert_eq!(got, reference_decode(data, len));
    let encoded = encode_to_slice(data, &mut out);
    if len == 2 * data.len() {
        assert_eq!(encoded, Ok(()));
    } else {
        assert_eq!(
            encoded,
            Err(HexError::BadLength {
                expected: 2 * data.len(),
                got: len
            })
        );
    }
}

/// Any bytes encode to lowercase hex that decodes back, in both byte orders.
fn round_trip(data: &[u8]) {
    let mut digits = vec![0u8; 2 * data.len()];
    encode_to_slice(data, &mut digits).expect("sized");
    let naive: Vec<u8> = data
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();
    assert_eq!(digits, naive);
    let mut back = vec![0u8; data.len()];
    decode_to_slice(&digits, &mut back).expect("own output decodes");
    assert_eq!(back, data);

    encode_reversed_to_slice(data, &mut digits).expect("sized");
    decode_reversed_to_slice(&digits, &mut back).expect("own output decodes");
    assert_eq!(back, data);
    // Reversed encoding is the encoding of the reversed bytes.
    let mut rev = data.to_vec();
    rev.reverse();
    let mut plain = vec![0u8; 2 * data.len()];
    encode_to_slice(&rev, &mut plain).expect("sized");
    assert_eq!(digits, plain);
}

/// 32-byte hashes: display hex, `Display` and `FromStr` agree.
fn display_hash(data: &[u8]) {
    if let Ok(bytes) = decode_array::<32>(data) {
        let mut reversed = bytes;
        reversed.reverse();
        let hash = BlockHash::from_display_hex(data).expect("valid display hex");
        assert_eq!(hash.to_byte_array(), reversed);
        assert_eq!(hash.to_string().as_bytes(), data.to_ascii_lowercase());
        assert_eq!(hash.to_string().parse::<BlockHash>(), Ok(hash));
    }
    if let Some(bytes) = data.get(..32) {
        let hash = BlockHash::from_byte_array(bytes.try_into().expect("32 bytes"));
        assert_eq!(
            hash.to_display_hex().as_slice(),
            hash.to_string().as_bytes()
        );
    }
}
