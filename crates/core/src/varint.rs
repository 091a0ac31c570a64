//! Unsigned LEB128 varints, canonical form only: the decoder rejects overlong encodings and
//! values above `u64::MAX`, so every value has exactly one encoding.

/// Appends `value` as an unsigned LEB128 varint.
pub(crate) fn write(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// More than 64 bits, or a non-canonical (overlong) encoding.
    Invalid,
}

/// Reads one varint from the front of `input`; returns the value and the bytes it used.
pub(crate) fn read(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return Err(VarintError::Invalid);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(VarintError::Invalid);
            }
            return Ok((value, i + 1));
        }
    }
    if input.len() >= 10 {
        Err(VarintError::Invalid)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        for (value, bytes) in [
            (0u64, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            write(&mut out, value);
            assert_eq!(out, bytes);
            assert_eq!(read(bytes), Ok((value, bytes.len())));
        }
    }

    #[test]
    fn rejects_overlong_overflowing_and_truncated() {
        assert_eq!(read(&[0x80, 0x00]), Err(VarintError::Invalid));
        assert_eq!(
            read(&[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>()),
            Err(VarintError::Invalid)
        );
        assert_eq!(read(&[0xff; 11]), Err(VarintError::Invalid));
        assert_eq!(read(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read(&[]), Err(VarintError::Truncated));
    }

    proptest! {
        #[test]
        fn round_trip(value in any::<u64>()) {
            let mut out = Vec::new();
            write(&mut out, value);
            prop_assert_eq!(read(&out), Ok((value, out.len())));
        }
    }
}
