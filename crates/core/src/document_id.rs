//! `DocumentId`: the identity of a Cairn document, in automerge-repo's format.
//!
//! automerge-repo names a document by 16 random bytes (a UUID) written as bs58check
//! (base58 with a 4-byte double-SHA-256 checksum), and in URLs as `automerge:<id>`.
//! Using the same format lets Cairn interoperate with automerge-repo peers later.

use std::fmt;
use std::str::FromStr;

/// The `automerge:` URL scheme automerge-repo uses for document URLs.
const URL_PREFIX: &str = "automerge:";

/// A document's identity: 16 bytes, displayed as bs58check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

/// Why a string is not a [`DocumentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentIdError {
    /// Not base58, or the bs58check checksum does not match.
    #[error("document id is not valid bs58check: {0}")]
    Encoding(String),
    /// Valid bs58check, but not 16 bytes.
    #[error("document id must encode 16 bytes, found {0}")]
    Length(usize),
}

impl DocumentId {
    /// The id whose bytes are exactly `bytes`.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A fresh random (version 4 UUID) id from 16 bytes of randomness supplied by the caller;
    /// the core has no random number generator of its own.
    pub fn from_random_bytes(mut random: [u8; 16]) -> Self {
        random[6] = (random[6] & 0x0f) | 0x40; // version 4
        random[8] = (random[8] & 0x3f) | 0x80; // RFC 4122 variant
        Self(random)
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The automerge-repo URL of this document, `automerge:<bs58check>`.
    pub fn to_url(&self) -> String {
        format!("{URL_PREFIX}{self}")
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = DocumentIdError;

    /// Parses a bare bs58check id or an `automerge:` URL.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let encoded = s.strip_prefix(URL_PREFIX).unwrap_or(s);
        let bytes = bs58::decode(encoded)
            .with_check(None)
            .into_vec()
            .map_err(|e| DocumentIdError::Encoding(e.to_string()))?;
        let bytes: [u8; 16] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| DocumentIdError::Length(bytes.len()))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_automerge_repo_encoding() {
        // Expected strings computed independently (Python: base58 of the bytes followed by the
        // first 4 bytes of sha256(sha256(bytes))), which is what automerge-repo's
        // `bs58check.encode(uuid)` produces.
        let nil = DocumentId::from_bytes([0; 16]);
        assert_eq!(nil.to_string(), "11111111111111114Ki9Gx");
        let uuid = [
            0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4,
            0x30, 0xc8,
        ];
        let id = DocumentId::from_bytes(uuid);
        assert_eq!(id.to_string(), "2VzPLXwa47QWna8JFvmCpx6t7VTY");
        assert_eq!(
            "2VzPLXwa47QWna8JFvmCpx6t7VTY"
                .parse::<DocumentId>()
                .unwrap(),
            id
        );
    }

    #[test]
    fn accepts_automerge_urls() {
        let id = DocumentId::from_random_bytes([7; 16]);
        assert_eq!(id.to_url().parse::<DocumentId>().unwrap(), id);
    }

    #[test]
    fn random_ids_are_uuid_v4() {
        let id = DocumentId::from_random_bytes([0xff; 16]);
        assert_eq!(id.as_bytes()[6] >> 4, 4);
        assert_eq!(id.as_bytes()[8] >> 6, 0b10);
    }

    #[test]
    fn rejects_bad_checksum_and_length() {
        let good = DocumentId::from_bytes([1; 16]).to_string();
        let mut bad = good.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'2' { b'3' } else { b'2' };
        let bad = String::from_utf8(bad).unwrap();
        assert!(matches!(
            bad.parse::<DocumentId>(),
            Err(DocumentIdError::Encoding(_))
        ));
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert_eq!(short.parse::<DocumentId>(), Err(DocumentIdError::Length(8)));
        assert!("0OIl".parse::<DocumentId>().is_err());
        assert!("".parse::<DocumentId>().is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bytes in any::<[u8; 16]>()) {
            let id = DocumentId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<DocumentId>().unwrap(), id);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,64}") {
            let _ = s.parse::<DocumentId>();
        }
    }
}
