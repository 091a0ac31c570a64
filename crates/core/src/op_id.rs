//! `OpId`: the stable identity of one outbox operation, chosen by the client when the
//! operation is queued (from randomness the caller supplies) and kept across retries, so the
//! server can acknowledge exactly that operation. Shown as 32 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

/// An outbox operation id (16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId([u8; 16]);

/// Why a string is not an [`OpId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an operation id is 32 hexadecimal digits")]
pub struct OpIdError;

impl OpId {
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::hex::write(f, &self.0)
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({self})")
    }
}

impl FromStr for OpId {
    type Err = OpIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::hex::parse(s).map(Self).ok_or(OpIdError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hex_round_trip(bytes in any::<[u8; 16]>()) {
            let id = OpId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<OpId>().unwrap(), id);
        }
    }

    #[test]
    fn rejects_bad_text() {
        assert!("0".repeat(31).parse::<OpId>().is_err());
        assert!("+f".repeat(16).parse::<OpId>().is_err());
    }
}
