//! PostgreSQL's binary `COPY` format, written ([`Encoder`], for restores) and read
//! ([`Decoder`], for backups): the fastest way rows go in and out of PostgreSQL, and the
//! format `pg_dump`'s peers speak. Only the column kinds of [`super::tables`] are handled.
//!
//! Layout: the signature `PGCOPY\n\377\r\n\0`, flags and header-extension length (32 bits
//! each); per row a 16-bit field count, then per field a 32-bit length (-1: NULL) and its
//! bytes; a 16-bit -1 ends the data. Integers are big-endian; `timestamptz` is microseconds
//! since 2000-01-01 UTC.

use super::tables::{Kind, Value};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// 2000-01-01 in microseconds since the Unix epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Why a `COPY` stream could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("COPY data: {0}")]
pub struct CopyError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, CopyError> {
    Err(CopyError(message.into()))
}

/// Writes rows in the binary `COPY` format.
#[derive(Debug)]
pub struct Encoder {
    kinds: Vec<Kind>,
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new(kinds: Vec<Kind>) -> Self {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0u32.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
        Self { kinds, buf }
    }

    /// Appends one row; its values must match the columns' kinds.
    pub fn row(&mut self, values: &[Value]) -> Result<(), CopyError> {
        if values.len() != self.kinds.len() {
            return err(format!(
                "{} values for {} columns",
                values.len(),
                self.kinds.len()
            ));
        }
        let fields =
            u16::try_from(values.len()).map_err(|_| CopyError("too many columns".into()))?;
        self.buf.extend_from_slice(&fields.to_be_bytes());
        for (value, kind) in values.iter().zip(&self.kinds) {
            let field = |buf: &mut Vec<u8>, bytes: &[u8]| -> Result<(), CopyError> {
                let len = i32::try_from(bytes.len())
                    .map_err(|_| CopyError("a value over 2 GiB".into()))?;
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(bytes);
                Ok(())
            };
            match (value, kind) {
                (Value::Null, _) => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
                (Value::Text(s), Kind::Text) => field(&mut self.buf, s.as_bytes())?,
                (Value::Bytes(b), Kind::Bytes) => field(&mut self.buf, b)?,
                (Value::Int(n), Kind::Int8) => field(&mut self.buf, &n.to_be_bytes())?,
                (Value::Int(n), Kind::Int4) => {
                    let n = i32::try_from(*n)
                        .map_err(|_| CopyError(format!("{n} does not fit an INTEGER column")))?;
                    field(&mut self.buf, &n.to_be_bytes())?;
                }
                (Value::Time(t), Kind::Timestamp) => {
                    field(&mut self.buf, &(t - PG_EPOCH_MICROS).to_be_bytes())?;
                }
                (value, kind) => return err(format!("{value:?} in a {kind:?} column")),
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes what was written so far (to send it), keeping the encoder going.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buf, Vec::with_capacity(1 << 20))
    }

    /// The rest of the stream, with its end marker.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

/// Reads rows of the binary `COPY` format from chunks as they arrive.
#[derive(Debug)]
pub struct Decoder {
    kinds: Vec<Kind>,
    buf: Vec<u8>,
    pos: usize,
    header_read: bool,
    ended: bool,
}

impl Decoder {
    pub fn new(kinds: Vec<Kind>) -> Self {
        Self {
            kinds,
            buf: Vec::new(),
            pos: 0,
            header_read: false,
            ended: false,
        }
    }

    /// Adds the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Whether the end marker was read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next whole row buffered, if any.
    pub fn next_row(&mut self) -> Result<Option<Vec<Value>>, CopyError> {
        if self.ended {
            return Ok(None);
        }
        let rest = &self.buf[self.pos..];
        if !self.header_read {
            if rest.len() < SIGNATURE.len() + 8 {
                return Ok(None);
            }
            if &rest[..SIGNATURE.len()] != SIGNATURE {
                return err("not binary COPY data (bad signature)");
            }
            let ext = u32::from_be_bytes(read4(&rest[15..19]));
            let header = 19 + ext as usize;
            if rest.len() < header {
                return Ok(None);
            }
            self.pos += header;
            self.header_read = true;
            return self.next_row();
        }
        if rest.len() < 2 {
            return Ok(None);
        }
        let fields = i16::from_be_bytes([rest[0], rest[1]]);
        if fields == -1 {
            self.ended = true;
            self.pos += 2;
            return Ok(None);
        }
        if usize::try_from(fields).ok() != Some(self.kinds.len()) {
            return err(format!(
                "a row of {fields} fields for {} columns",
                self.kinds.len()
            ));
        }
        // Find the row's extent first, so a partial row waits for more data.
        let mut at = 2;
        let mut spans = Vec::with_capacity(self.kinds.len());
        for _ in &self.kinds {
            if rest.len() < at + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes(read4(&rest[at..at + 4]));
            at += 4;
            if len < 0 {
                spans.push(None);
                continue;
            }
            let len = len as usize;
            if rest.len() < at + len {
                return Ok(None);
            }
            spans.push(Some(at..at + len));
            at += len;
        }
        let mut row = Vec::with_capacity(spans.len());
        for (span, kind) in spans.into_iter().zip(&self.kinds) {
            let Some(span) = span else {
                row.push(Value::Null);
                continue;
            };
            let bytes = &rest[span];
            row.push(match kind {
                Kind::Text => Value::Text(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| CopyError("text that is not UTF-8".into()))?,
                ),
                Kind::Bytes => Value::Bytes(bytes.to_vec()),
                Kind::Int4 if bytes.len() == 4 => {
                    Value::Int(i64::from(i32::from_be_bytes(read4(bytes))))
                }
                Kind::Int8 if bytes.len() == 8 => Value::Int(i64::from_be_bytes(read8(bytes))),
                Kind::Timestamp if bytes.len() == 8 => {
                    Value::Time(i64::from_be_bytes(read8(bytes)) + PG_EPOCH_MICROS)
                }
                kind => return err(format!("{} bytes for a {kind:?} value", bytes.len())),
            });
        }
        self.pos += at;
        Ok(Some(row))
    }
}

fn read4(b: &[u8]) -> [u8; 4] {
    let mut out = [0; 4];
    out.copy_from_slice(&b[..4]);
    out
}

fn read8(b: &[u8]) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&b[..8]);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> (Vec<Kind>, Vec<Vec<Value>>) {
        let kinds = vec![
            Kind::Int8,
            Kind::Text,
            Kind::Bytes,
            Kind::Int4,
            Kind::Timestamp,
        ];
        let rows = vec![
            vec![
                Value::Int(1),
                Value::Text("héllo".into()),
                Value::Bytes(vec![0, 1, 255]),
                Value::Int(-7),
                Value::Time(1_780_000_000_123_456),
            ],
            vec![
                Value::Int(i64::MAX),
                Value::Null,
                Value::Bytes(vec![]),
                Value::Null,
                Value::Time(0),
            ],
        ];
        (kinds, rows)
    }

    #[test]
    fn rows_round_trip_in_any_chunking() {
        let (kinds, rows) = sample();
        let mut enc = Encoder::new(kinds.clone());
        for row in &rows {
            enc.row(row).unwrap();
        }
        let bytes = enc.finish();
        for chunk in [1, 3, 7, bytes.len()] {
            let mut dec = Decoder::new(kinds.clone());
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                dec.feed(piece);
                while let Some(row) = dec.next_row().unwrap() {
                    got.push(row);
                }
            }
            assert!(dec.ended(), "chunk {chunk}");
            assert_eq!(got, rows, "chunk {chunk}");
        }
    }

    #[test]
    fn wrong_kinds_and_bad_streams_are_errors() {
        let mut enc = Encoder::new(vec![Kind::Int4]);
        assert!(enc.row(&[Value::Int(i64::from(i32::MAX) + 1)]).is_err());
        assert!(enc.row(&[Value::Text("x".into())]).is_err());
        assert!(enc.row(&[]).is_err());
        let mut dec = Decoder::new(vec![Kind::Int8]);
        dec.feed(b"not a copy stream at all");
        assert!(dec.next_row().is_err());
        let mut enc = Encoder::new(vec![Kind::Int8, Kind::Int8]);
        enc.row(&[Value::Int(1), Value::Int(2)]).unwrap();
        let mut dec = Decoder::new(vec![Kind::Int8]);
        dec.feed(&enc.finish());
        assert!(dec.next_row().is_err(), "field count differs");
    }
}
