//! `ChangeHash`: the SHA-256 identity of one Automerge change, shown as lowercase hex
//! (as Automerge shows it). The core keeps its own type so that the wire protocol does not
//! depend on the `automerge` crate; drivers convert with `From<[u8; 32]>` / `as_bytes`.

use std::fmt;
use std::str::FromStr;

/// The hash of an Automerge change (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangeHash([u8; 32]);

/// Why a string is not a [`ChangeHash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a change hash is 64 hexadecimal digits")]
pub struct ChangeHashError;

impl ChangeHash {
    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for ChangeHash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for ChangeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::hex::write(f, &self.0)
    }
}

impl fmt::Debug for ChangeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChangeHash({self})")
    }
}

impl FromStr for ChangeHash {
    type Err = ChangeHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::hex::parse(s).map(Self).ok_or(ChangeHashError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!("ab".parse::<ChangeHash>().is_err());
        assert!("zz".repeat(32).parse::<ChangeHash>().is_err());
        assert!("+1".repeat(32).parse::<ChangeHash>().is_err());
    }

    proptest! {
        #[test]
        fn hex_round_trip(bytes in any::<[u8; 32]>()) {
            let hash = ChangeHash::from(bytes);
            prop_assert_eq!(hash.to_string().parse::<ChangeHash>().unwrap(), hash);
        }
    }
}
