//! CARv1, the archive format trustless IPFS gateways answer `?format=car` with: a DAG-CBOR
//! header naming the roots, then one section (length, CID, block) per block.
//!
//! [`header`] and [`section`] write it (the server's gateway). [`CarReader`] reads it from
//! bytes pushed in as they arrive, with every length bounded, and [`VerifiedCar`] checks a
//! file's CAR as it streams: each block must be the one the DAG, walked depth-first from the
//! root the caller asked for, names next, and must hash to its CID, so nothing unverified is
//! ever handed out (the browser's downloads).

use sha2::{Digest, Sha256};

use super::Cid;
use super::walk::{DagOrder, WalkError};
use crate::varint;

/// The largest section accepted: a 1 MiB chunk (Kubo's limit) plus its CID and some room.
pub const MAX_SECTION: u64 = (1 << 20) + 1024;
/// The largest header accepted.
const MAX_HEADER: u64 = 4096;

/// Why bytes are not the CAR expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarError {
    /// Not a well-formed CARv1.
    #[error("malformed CAR: {0}")]
    Malformed(&'static str),
    /// A header or section longer than this reader accepts.
    #[error("CAR section of {0} bytes is too large")]
    TooLarge(u64),
    /// The CAR's root is not the CID asked for.
    #[error("the CAR's root is {found}, not {expected}")]
    WrongRoot { expected: String, found: String },
    /// A block arrived that the DAG does not name next (CIDs as text).
    #[error("unexpected block {found} (expected {expected})")]
    Unexpected { expected: String, found: String },
    /// A block's bytes do not hash to its CID.
    #[error("block {0} does not match its CID")]
    Corrupt(String),
    /// The bytes ended before the whole DAG arrived.
    #[error("the CAR ended early")]
    Incomplete,
    /// A block is not a readable UnixFS file node.
    #[error(transparent)]
    Walk(#[from] Box<WalkError>),
}

/// The header naming `root`: DAG-CBOR `{"roots": [root], "version": 1}`, length-prefixed.
pub fn header(root: &Cid) -> Vec<u8> {
    let cid = root.to_bytes();
    let mut cbor = vec![0xa2, 0x65];
    cbor.extend_from_slice(b"roots");
    cbor.extend_from_slice(&[0x81, 0xd8, 0x2a]); // array(1), tag 42 (CID)
    cbor_head(&mut cbor, 2, cid.len() as u64 + 1);
    cbor.push(0x00); // the identity multibase prefix DAG-CBOR puts before a CID
    cbor.extend_from_slice(&cid);
    cbor.push(0x67);
    cbor.extend_from_slice(b"version");
    cbor.push(0x01);
    let mut out = Vec::with_capacity(cbor.len() + 2);
    varint::write(&mut out, cbor.len() as u64);
    out.extend_from_slice(&cbor);
    out
}

/// One section: length, CID, block.
pub fn section(cid: &Cid, data: &[u8]) -> Vec<u8> {
    let cid = cid.to_bytes();
    let mut out = Vec::with_capacity(cid.len() + data.len() + 10);
    varint::write(&mut out, (cid.len() + data.len()) as u64);
    out.extend_from_slice(&cid);
    out.extend_from_slice(data);
    out
}

fn cbor_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        _ => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
    }
}

/// Reads a CARv1 from bytes pushed in as they arrive (see the module docs).
#[derive(Debug, Default)]
pub struct CarReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    roots: Option<Vec<Cid>>,
}

impl CarReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// More bytes of the CAR.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The header's roots, once it has arrived.
    pub fn roots(&mut self) -> Result<Option<&[Cid]>, CarError> {
        if self.roots.is_none() {
            let Some(body) = self.frame(MAX_HEADER)? else {
                return Ok(None);
            };
            self.roots = Some(parse_header(&body)?);
        }
        Ok(self.roots.as_deref())
    }

    /// The next block, once it has fully arrived (`None`: more bytes are needed). The block
    /// is not verified here; [`VerifiedCar`] does that.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Vec<u8>)>, CarError> {
        if self.roots()?.is_none() {
            return Ok(None);
        }
        let Some(body) = self.frame(MAX_SECTION)? else {
            return Ok(None);
        };
        let cid_len = cid_length(&body)?;
        let cid =
            Cid::from_bytes(&body[..cid_len]).map_err(|_| CarError::Malformed("a bad CID"))?;
        Ok(Some((cid, body[cid_len..].to_vec())))
    }

    /// Whether every byte pushed was consumed (no partial section is left).
    pub fn is_drained(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// One length-prefixed frame, if it has fully arrived.
    fn frame(&mut self, max: u64) -> Result<Option<Vec<u8>>, CarError> {
        let rest = &self.buf[self.pos..];
        let (len, used) = match varint::read(rest) {
            Ok(v) => v,
            Err(varint::VarintError::Truncated) => return Ok(None),
            Err(varint::VarintError::Invalid) => return Err(CarError::Malformed("a bad length")),
        };
        if len > max {
            return Err(CarError::TooLarge(len));
        }
        let len = len as usize; // ≤ max, which fits
        if len == 0 {
            return Err(CarError::Malformed("an empty section"));
        }
        if rest.len() < used + len {
            return Ok(None);
        }
        let body = rest[used..used + len].to_vec();
        self.pos += used + len;
        Ok(Some(body))
    }
}

/// The length of the binary CID at the front of `bytes`: 34 for a CIDv0 (`0x12 0x20` and a
/// sha2-256 digest), else version, codec and multihash as varints.
fn cid_length(bytes: &[u8]) -> Result<usize, CarError> {
    let bad = CarError::Malformed("a truncated CID");
    if bytes.starts_with(&[0x12, 0x20]) {
        return if bytes.len() >= 34 { Ok(34) } else { Err(bad) };
    }
    let mut at = 0;
    for _ in 0..3 {
        let (_, used) = varint::read(&bytes[at..]).map_err(|_| bad.clone())?;
        at += used;
    }
    let (digest_len, used) = varint::read(&bytes[at..]).map_err(|_| bad.clone())?;
    at += used;
    let end = usize::try_from(digest_len)
        .ok()
        .and_then(|d| at.checked_add(d))
        .filter(|&end| end <= bytes.len())
        .ok_or(bad)?;
    Ok(end)
}

/// Parses `{"roots": [CID...], "version": 1}` (DAG-CBOR; keys in either order).
fn parse_header(body: &[u8]) -> Result<Vec<Cid>, CarError> {
    let mut cbor = Cbor { bytes: body, at: 0 };
    let entries = cbor.expect(5, "a header that is not a map")?;
    let (mut roots, mut version) = (None, None);
    for _ in 0..entries {
        match cbor.text()? {
            b"roots" => {
                let count = cbor.expect(4, "roots that are not a list")?;
                let mut list = Vec::new();
                for _ in 0..count.min(16) {
                    if cbor.expect(6, "a root that is not a CID")? != 42 {
                        return Err(CarError::Malformed("a root that is not a CID"));
                    }
                    let bytes = cbor.bytes()?;
                    let cid = bytes
                        .strip_prefix(&[0])
                        .and_then(|b| Cid::from_bytes(b).ok())
                        .ok_or(CarError::Malformed("a bad root CID"))?;
                    list.push(cid);
                }
                if count > 16 {
                    return Err(CarError::Malformed("too many roots"));
                }
                roots = Some(list);
            }
            b"version" => version = Some(cbor.expect(0, "a version that is not a number")?),
            _ => return Err(CarError::Malformed("an unknown header field")),
        }
    }
    if version != Some(1) {
        return Err(CarError::Malformed("not a CARv1"));
    }
    if cbor.at != body.len() {
        return Err(CarError::Malformed("bytes after the header"));
    }
    roots.ok_or(CarError::Malformed("a header without roots"))
}

/// Just enough CBOR for a CAR header.
struct Cbor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cbor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CarError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(CarError::Malformed("a truncated header"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// An item head of major type `major`; its argument.
    fn expect(&mut self, major: u8, what: &'static str) -> Result<u64, CarError> {
        let first = self.take(1)?[0];
        if first >> 5 != major {
            return Err(CarError::Malformed(what));
        }
        let value = match first & 0x1f {
            n @ 0..=23 => u64::from(n),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]])),
            26 => {
                let b = self.take(4)?;
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            _ => return Err(CarError::Malformed(what)),
        };
        Ok(value)
    }

    fn text(&mut self) -> Result<&'a [u8], CarError> {
        let len = self.expect(3, "a header key that is not text")?;
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CarError> {
        let len = self.expect(2, "a CID that is not bytes")?;
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }
}

/// A file's CAR, checked as it streams (see the module docs).
#[derive(Debug)]
pub struct VerifiedCar {
    reader: CarReader,
    order: DagOrder,
    root: Cid,
    checked_root: bool,
    /// A block handed out by `next_pending`, not yet checked.
    pending: Option<Cid>,
}

impl VerifiedCar {
    /// Expects the CAR of the DAG rooted at `root`.
    pub fn new(root: Cid) -> Self {
        Self {
            reader: CarReader::new(),
            order: DagOrder::new(root),
            root,
            checked_root: false,
            pending: None,
        }
    }

    /// More bytes of the CAR.
    pub fn push(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
    }

    /// The next verified block, or `None` until more bytes arrive.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Vec<u8>)>, CarError> {
        let Some((cid, data)) = self.next_pending()? else {
            return Ok(None);
        };
        self.accept(&data, Sha256::digest(&data).into())?;
        Ok(Some((cid, data)))
    }

    /// For callers that hash blocks themselves (the browser, with WebCrypto): the next block,
    /// checked to be the one the DAG names next but not yet hashed. Hand it back to
    /// [`accept`](Self::accept) with its digest before asking for another.
    pub fn next_pending(&mut self) -> Result<Option<(Cid, Vec<u8>)>, CarError> {
        if self.pending.is_some() {
            return Err(CarError::Malformed(
                "a block was not checked before the next",
            ));
        }
        if !self.checked_root {
            let Some(roots) = self.reader.roots()? else {
                return Ok(None);
            };
            if roots.first().is_none_or(|r| r.to_v1() != self.root.to_v1()) {
                let found = roots.iter().map(ToString::to_string).collect::<Vec<_>>();
                return Err(CarError::WrongRoot {
                    expected: self.root.to_string(),
                    found: found.join(","),
                });
            }
            self.checked_root = true;
        }
        let Some((cid, data)) = self.reader.next_block()? else {
            return Ok(None);
        };
        let expected = self.order.next_block();
        if expected != Some(cid) {
            return Err(CarError::Unexpected {
                expected: expected.map_or_else(|| "the end".into(), |c| c.to_string()),
                found: cid.to_string(),
            });
        }
        self.pending = Some(cid);
        Ok(Some((cid, data)))
    }

    /// The pending block's bytes and their sha2-256: it must match the CID; then the blocks
    /// it links to are expected next.
    pub fn accept(&mut self, data: &[u8], digest: [u8; 32]) -> Result<(), CarError> {
        let cid = self
            .pending
            .take()
            .ok_or(CarError::Malformed("no block is waiting to be checked"))?;
        if digest != cid.digest() {
            return Err(CarError::Corrupt(cid.to_string()));
        }
        self.order.block(data).map_err(Box::new)?;
        Ok(())
    }

    /// The bytes ended: every block of the DAG must have arrived, and nothing after it.
    pub fn finish(&mut self) -> Result<(), CarError> {
        if self.pending.is_some() || self.order.next_block().is_some() {
            return Err(CarError::Incomplete);
        }
        if !self.reader.is_drained() {
            return Err(CarError::Malformed("bytes after the last block"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::content::{CidVersion, ImportOptions, import};

    /// A file's CAR in depth-first order, as the gateway writes it.
    fn car_of(data: &[u8], version: CidVersion) -> (Cid, Vec<u8>) {
        let options = ImportOptions {
            version,
            chunk_size: 64,
        };
        let (blocks, imported) = import(data, options);
        let by_cid: std::collections::HashMap<_, _> =
            blocks.into_iter().map(|b| (b.cid, b.data)).collect();
        let mut out = header(&imported.root);
        let mut order = DagOrder::new(imported.root);
        while let Some(cid) = order.next_block() {
            order.block(&by_cid[&cid]).unwrap();
            out.extend(section(&cid, &by_cid[&cid]));
        }
        (imported.root, out)
    }

    fn verify(root: Cid, car: &[u8], piece: usize) -> Result<usize, CarError> {
        let mut v = VerifiedCar::new(root);
        let mut blocks = 0;
        for bytes in car.chunks(piece.max(1)) {
            v.push(bytes);
            while v.next_block()?.is_some() {
                blocks += 1;
            }
        }
        v.finish()?;
        Ok(blocks)
    }

    #[test]
    fn the_header_round_trips() {
        let (root, car) = car_of(b"hello", CidVersion::V1);
        let mut reader = CarReader::new();
        reader.push(&car);
        assert_eq!(reader.roots().unwrap(), Some(&[root][..]));
    }

    #[test]
    fn a_file_car_verifies_in_any_pieces() {
        let data: Vec<u8> = (0..64 * 200 + 3).map(|i| (i % 251) as u8).collect();
        for version in [CidVersion::V0, CidVersion::V1] {
            let (root, car) = car_of(&data, version);
            let whole = verify(root, &car, car.len()).unwrap();
            assert_eq!(verify(root, &car, 7).unwrap(), whole);
            assert!(whole > 200);
        }
    }

    #[test]
    fn tampering_is_caught() {
        let data: Vec<u8> = (0..64 * 3).map(|i| i as u8).collect();
        let (root, car) = car_of(&data, CidVersion::V1);
        // A flipped byte in the last block (a leaf).
        let mut bad = car.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(verify(root, &bad, 100), Err(CarError::Corrupt(_))));
        // Cut short.
        assert_eq!(
            verify(root, &car[..car.len() - 10], 100),
            Err(CarError::Incomplete)
        );
        // Another file's CAR.
        let (other, _) = car_of(b"other", CidVersion::V1);
        assert!(matches!(
            verify(other, &car, 100),
            Err(CarError::WrongRoot { .. })
        ));
        // Trailing garbage.
        let mut long = car.clone();
        long.push(5);
        assert!(verify(root, &long, 100).is_err());
    }

    #[test]
    fn blocks_hashed_outside_are_checked_against_their_cids() {
        let data: Vec<u8> = (0..64 * 3).map(|i| i as u8).collect();
        let (root, car) = car_of(&data, CidVersion::V1);
        let mut v = VerifiedCar::new(root);
        v.push(&car);
        let (_, block) = v.next_pending().unwrap().unwrap();
        assert!(v.next_pending().is_err(), "one at a time");
        v.accept(&block, Sha256::digest(&block).into()).unwrap();
        let (_, leaf) = v.next_pending().unwrap().unwrap();
        assert!(matches!(
            v.accept(&leaf, [0; 32]),
            Err(CarError::Corrupt(_))
        ));
    }

    #[test]
    fn blocks_out_of_order_are_refused() {
        let data: Vec<u8> = (0..64 * 3).map(|i| i as u8).collect();
        let options = ImportOptions {
            version: CidVersion::V1,
            chunk_size: 64,
        };
        let (blocks, imported) = import(&data, options);
        // The importer emits children first: the root comes last, not first.
        let mut car = header(&imported.root);
        for b in &blocks {
            car.extend(section(&b.cid, &b.data));
        }
        assert!(matches!(
            verify(imported.root, &car, 1000),
            Err(CarError::Unexpected { .. })
        ));
    }

    #[test]
    fn oversized_sections_are_refused_before_buffering() {
        let (root, car) = car_of(b"x", CidVersion::V1);
        let header_len = header(&root).len();
        let mut reader = CarReader::new();
        let mut bytes = car[..header_len].to_vec();
        varint::write(&mut bytes, MAX_SECTION + 1);
        reader.push(&bytes);
        assert!(reader.roots().unwrap().is_some());
        assert_eq!(
            reader.next_block(),
            Err(CarError::TooLarge(MAX_SECTION + 1))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (root, _) = car_of(b"x", CidVersion::V1);
            let mut v = VerifiedCar::new(root);
            v.push(&bytes);
            while let Ok(Some(_)) = v.next_block() {}
            let _ = v.finish();
        }

        #[test]
        fn a_damaged_car_never_verifies(at in 0usize..2000, flip in 1u8..=255) {
            let data: Vec<u8> = (0..64 * 5 + 9).map(|i| (i * 3) as u8).collect();
            let (root, car) = car_of(&data, CidVersion::V1);
            let mut bad = car.clone();
            let i = at % bad.len();
            bad[i] ^= flip;
            prop_assert!(verify(root, &bad, 50).is_err());
        }
    }
}
