//! [`Cid`]: the content identifier of one IPFS block, as Kubo writes it.
//!
//! Cairn stores and pins two kinds of blocks, both hashed with sha2-256: UnixFS nodes
//! (codec dag-pb) and raw leaves (codec raw). A CID naming anything else is refused at the
//! boundary, so a `Cid` always names a block Cairn can verify. The encodings come from the
//! `cid` and `multihash` crates; this type only narrows them.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

const SHA2_256: u64 = 0x12;
const DAG_PB: u64 = 0x70;
const RAW: u64 = 0x55;

/// How a block's bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// A DAG-PB node carrying UnixFS data (file roots and internal nodes; leaves in CIDv0).
    DagPb,
    /// The bytes of a file chunk, as is (leaves in CIDv1).
    Raw,
}

/// The CID version a file is imported with: Kubo's `ipfs add` default (0), or
/// `ipfs add --cid-version=1`, which also turns on raw leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CidVersion {
    /// base58btc `Qm…`, dag-pb leaves.
    V0,
    /// base32 `bafy…`/`bafk…`, raw leaves. Cairn's default.
    #[default]
    V1,
}

/// A parsed, supported CID (sha2-256; dag-pb or raw).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid(cid::Cid);

/// Why a string or byte sequence is not a CID Cairn accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidError {
    /// Not a CID at all.
    #[error("not a CID: {0}")]
    Invalid(String),
    /// A valid CID for a codec or hash Cairn does not store.
    #[error(
        "unsupported CID (codec {codec:#x}, hash {hash:#x}): Cairn stores dag-pb and raw blocks hashed with sha2-256"
    )]
    Unsupported {
        /// The multicodec of the block.
        codec: u64,
        /// The multihash function code.
        hash: u64,
    },
}

impl Cid {
    /// The CID of `data` read as `codec`, in `version` (CIDv0 exists only for dag-pb: a raw
    /// block always gets a CIDv1, as in Kubo).
    pub fn of_block(version: CidVersion, codec: Codec, data: &[u8]) -> Self {
        Self::from_digest(version, codec, Sha256::digest(data).into())
    }

    /// The CID for a sha2-256 `digest` computed elsewhere.
    pub fn from_digest(version: CidVersion, codec: Codec, digest: [u8; 32]) -> Self {
        let Ok(hash) = cid::multihash::Multihash::<64>::wrap(SHA2_256, &digest) else {
            unreachable!("a 32-byte digest fits a 64-byte multihash")
        };
        Self(match (version, codec) {
            (CidVersion::V0, Codec::DagPb) => {
                cid::Cid::new_v0(hash).unwrap_or_else(|_| unreachable!("sha2-256 is CIDv0's hash"))
            }
            (_, Codec::DagPb) => cid::Cid::new_v1(DAG_PB, hash),
            (_, Codec::Raw) => cid::Cid::new_v1(RAW, hash),
        })
    }

    /// Parses the binary form (as found in DAG-PB links and CAR files).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CidError> {
        cid::Cid::try_from(bytes)
            .map_err(|e| CidError::Invalid(e.to_string()))
            .and_then(Self::supported)
    }

    fn supported(inner: cid::Cid) -> Result<Self, CidError> {
        let (codec, hash) = (inner.codec(), inner.hash());
        if (codec == DAG_PB || codec == RAW) && hash.code() == SHA2_256 && hash.size() == 32 {
            Ok(Self(inner))
        } else {
            Err(CidError::Unsupported {
                codec,
                hash: hash.code(),
            })
        }
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// CID version 0 or 1.
    pub fn version(&self) -> CidVersion {
        match self.0.version() {
            cid::Version::V0 => CidVersion::V0,
            cid::Version::V1 => CidVersion::V1,
        }
    }

    /// How the block's bytes are read.
    pub fn codec(&self) -> Codec {
        if self.0.codec() == RAW {
            Codec::Raw
        } else {
            Codec::DagPb
        }
    }

    /// The block's sha2-256 digest: what a blockstore keys blocks by, so the CIDv0 and the
    /// CIDv1 of one dag-pb block share storage.
    pub fn digest(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.hash().digest());
        out
    }

    /// Whether `data` is the block this CID names.
    pub fn verifies(&self, data: &[u8]) -> bool {
        <[u8; 32]>::from(Sha256::digest(data)) == self.digest()
    }

    /// The same block named with CID version 1 (a raw CID is already version 1).
    pub fn to_v1(&self) -> Self {
        Self::from_digest(CidVersion::V1, self.codec(), self.digest())
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({})", self.0)
    }
}

impl FromStr for Cid {
    type Err = CidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        cid::Cid::from_str(s)
            .map_err(|e| CidError::Invalid(format!("{s:?}: {e}")))
            .and_then(Self::supported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_raw_block_has_the_well_known_cid() {
        let cid = Cid::of_block(CidVersion::V1, Codec::Raw, b"");
        assert_eq!(
            cid.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert!(cid.verifies(b""));
        assert!(!cid.verifies(b"x"));
    }

    #[test]
    fn strings_and_bytes_round_trip() {
        for s in [
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ] {
            let cid: Cid = s.parse().expect("parses");
            assert_eq!(cid.to_string(), s);
            assert_eq!(Cid::from_bytes(&cid.to_bytes()), Ok(cid));
        }
    }

    #[test]
    fn v0_and_v1_of_a_dag_pb_block_share_a_digest() {
        let v0: Cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
            .parse()
            .expect("parses");
        let v1 = v0.to_v1();
        assert_eq!(v1.version(), CidVersion::V1);
        assert_eq!(v1.codec(), Codec::DagPb);
        assert_eq!(v0.digest(), v1.digest());
        assert!(v1.to_string().starts_with("bafy"));
    }

    #[test]
    fn unsupported_and_malformed_cids_are_refused() {
        // dag-cbor (0x71) is a fine CID, but not a block Cairn stores.
        let cbor = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        assert!(matches!(
            cbor.parse::<Cid>(),
            Err(CidError::Unsupported { codec: 0x71, .. })
        ));
        for bad in ["", "Qm", "not a cid", "bafk!"] {
            assert!(
                matches!(bad.parse::<Cid>(), Err(CidError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(Cid::from_bytes(&[0x01, 0x55]).is_err());
    }
}
