//! The versioned binary wire protocol spoken between the browser SDK and the server.
//!
//! Every message is one frame:
//!
//! ```text
//! frame   = version:u8 kind:u8 body
//! Push    = document:[u8; 16] data_len:varint data:[u8; data_len]          (kind 1)
//! Ack     = document:[u8; 16] heads:varint heads×[u8; 32] applied:varint   (kind 2)
//! ```
//!
//! Varints are canonical unsigned LEB128. Every length is checked against the bytes actually
//! present before anything is allocated, a frame must be consumed exactly (no trailing bytes),
//! and a frame of another version is rejected with [`DecodeError::UnsupportedVersion`], never
//! guessed at. Decoding never panics, whatever the input.

use crate::varint::{self, VarintError};
use crate::{ChangeHash, DocumentId};

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

const KIND_PUSH: u8 = 1;
const KIND_ACK: u8 = 2;

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Client → server: Automerge bytes for `document` (a saved document or a run of
    /// changes) to merge into what the server has.
    Push { document: DocumentId, data: Vec<u8> },
    /// Server → client: the push was committed. `heads` are the document's heads after the
    /// merge; `applied` counts the changes that were new to the server (0 for a replay).
    Ack {
        document: DocumentId,
        heads: Vec<ChangeHash>,
        applied: u64,
    },
}

/// Why bytes are not a valid [`Message`].
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
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

impl Message {
    /// The document this message is about.
    pub fn document(&self) -> DocumentId {
        match self {
            Message::Push { document, .. } | Message::Ack { document, .. } => *document,
        }
    }

    /// Encodes the message as one frame of the current [`VERSION`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        match self {
            Message::Push { document, data } => {
                out.push(KIND_PUSH);
                out.extend_from_slice(document.as_bytes());
                varint::write(&mut out, data.len() as u64);
                out.extend_from_slice(data);
            }
            Message::Ack {
                document,
                heads,
                applied,
            } => {
                out.push(KIND_ACK);
                out.extend_from_slice(document.as_bytes());
                varint::write(&mut out, heads.len() as u64);
                heads
                    .iter()
                    .for_each(|h| out.extend_from_slice(h.as_bytes()));
                varint::write(&mut out, *applied);
            }
        }
        out
    }

    /// Decodes exactly one frame.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { rest: bytes };
        let version = r.u8("version").map_err(|_| DecodeError::Empty)?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let message = match r.u8("kind")? {
            KIND_PUSH => {
                let document = DocumentId::from_bytes(r.array("document")?);
                let len = r.len("data", 1)?;
                let data = r.take(len, "data")?.to_vec();
                Message::Push { document, data }
            }
            KIND_ACK => {
                let document = DocumentId::from_bytes(r.array("document")?);
                let count = r.len("heads", 32)?;
                let heads = (0..count)
                    .map(|_| r.array("heads").map(ChangeHash::from))
                    .collect::<Result<_, _>>()?;
                let applied = r.varint("applied")?;
                Message::Ack {
                    document,
                    heads,
                    applied,
                }
            }
            kind => return Err(DecodeError::UnknownKind(kind)),
        };
        match r.rest.len() {
            0 => Ok(message),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// A cursor over the undecoded rest of a frame.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let (value, used) = varint::read(self.rest).map_err(|e| match e {
            VarintError::Truncated => DecodeError::Truncated(field),
            VarintError::Invalid => DecodeError::InvalidVarint(field),
        })?;
        self.rest = &self.rest[used..];
        Ok(value)
    }

    /// Reads a count of items of `item_size` bytes each and checks that that many bytes are
    /// actually present, so a hostile count can never cause a large allocation.
    fn len(&mut self, field: &'static str, item_size: usize) -> Result<usize, DecodeError> {
        let count = self.varint(field)?;
        usize::try_from(count)
            .ok()
            .filter(|&n| {
                n.checked_mul(item_size)
                    .is_some_and(|b| b <= self.rest.len())
            })
            .ok_or(DecodeError::Truncated(field))
    }
}

#[cfg(test)]
mod tests;
