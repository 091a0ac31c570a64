//! Byte-level reading and writing of protocol frames.

use crate::varint::{self, VarintError};
use crate::{ChangeHash, DocumentId, OpId};

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("protocol version {found} is not supported (this peer speaks version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    #[error("invalid varint in {0}")]
    InvalidVarint(&'static str),
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("invalid boolean in {0}")]
    InvalidBool(&'static str),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// Appends protocol values to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub fn varint(&mut self, v: u64) {
        varint::write(&mut self.out, v);
    }

    pub fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.out.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn bool(&mut self, b: bool) {
        self.u8(u8::from(b));
    }

    pub fn document(&mut self, d: &DocumentId) {
        self.out.extend_from_slice(d.as_bytes());
    }

    pub fn op(&mut self, op: &OpId) {
        self.out.extend_from_slice(op.as_bytes());
    }

    pub fn hashes(&mut self, hashes: &[ChangeHash]) {
        self.len(hashes.len());
        hashes
            .iter()
            .for_each(|h| self.out.extend_from_slice(h.as_bytes()));
    }

    pub fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.len(items.len());
        items.iter().for_each(|item| each(self, item));
    }
}

/// A cursor over the undecoded rest of a frame.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    pub rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let (value, used) = varint::read(self.rest).map_err(|e| match e {
            VarintError::Truncated => DecodeError::Truncated(field),
            VarintError::Invalid => DecodeError::InvalidVarint(field),
        })?;
        self.rest = &self.rest[used..];
        Ok(value)
    }

    /// A count of items that each take at least `min_item_size` bytes; checked against the
    /// bytes present, so a hostile count never causes a large allocation.
    pub fn count(
        &mut self,
        field: &'static str,
        min_item_size: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.varint(field)?;
        usize::try_from(count)
            .ok()
            .filter(|&n| {
                n.checked_mul(min_item_size)
                    .is_some_and(|b| b <= self.rest.len())
            })
            .ok_or(DecodeError::Truncated(field))
    }

    pub fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.count(field, 1)?;
        Ok(self.take(len, field)?.to_vec())
    }

    pub fn str(&mut self, field: &'static str) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes(field)?).map_err(|_| DecodeError::InvalidUtf8(field))
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidBool(field)),
        }
    }

    pub fn document(&mut self, field: &'static str) -> Result<DocumentId, DecodeError> {
        self.array(field).map(DocumentId::from_bytes)
    }

    pub fn op(&mut self, field: &'static str) -> Result<OpId, DecodeError> {
        self.array(field).map(OpId::from_bytes)
    }

    pub fn hashes(&mut self, field: &'static str) -> Result<Vec<ChangeHash>, DecodeError> {
        let n = self.count(field, 32)?;
        (0..n)
            .map(|_| self.array(field).map(ChangeHash::from))
            .collect()
    }

    /// A list of items of at least `min_item_size` bytes each, read by `each`.
    pub fn list<T>(
        &mut self,
        field: &'static str,
        min_item_size: usize,
        mut each: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.count(field, min_item_size)?;
        (0..n).map(|_| each(self)).collect()
    }
}
