//! UnixFS file nodes in DAG-PB: encoded byte for byte as Kubo encodes them, and decoded
//! strictly enough that a block from a peer cannot make the reader panic or loop.
//!
//! Hand-written rather than generated: Cairn needs one message pair (`PBNode`/`PBLink` with
//! a UnixFS `Data` inside), the field order and the always-present empty link name must match
//! Kubo's encoder exactly for the CIDs to match, and a protobuf code generator (prost) would
//! add a build step and still not pin that byte order. Directories, symlinks, HAMT shards and
//! metadata are not produced; the decoder reports their type and the reader refuses them.

use crate::varint;

use super::Cid;

/// One link of a DAG-PB node: the child's CID and its cumulative size (the child block plus
/// everything under it), as in Kubo's `Tsize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The child block.
    pub cid: Cid,
    /// Serialized size of the child's whole sub-DAG.
    pub tsize: u64,
}

/// The UnixFS data types (`unixfs.proto`'s `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    /// Raw bytes (old-style leaves).
    Raw,
    /// A directory.
    Directory,
    /// A file or a chunk of one.
    File,
    /// Metadata.
    Metadata,
    /// A symlink.
    Symlink,
    /// A HAMT-sharded directory.
    HamtShard,
}

impl NodeType {
    fn code(self) -> u64 {
        match self {
            Self::Raw => 0,
            Self::Directory => 1,
            Self::File => 2,
            Self::Metadata => 3,
            Self::Symlink => 4,
            Self::HamtShard => 5,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Raw,
            1 => Self::Directory,
            2 => Self::File,
            3 => Self::Metadata,
            4 => Self::Symlink,
            5 => Self::HamtShard,
            _ => return None,
        })
    }
}

/// A DAG-PB node with UnixFS data: a file chunk (data, no links) or an internal node (links,
/// with the file bytes under each link in `blocksizes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNode {
    /// What the node is.
    pub node_type: NodeType,
    /// Children, in file order.
    pub links: Vec<Link>,
    /// File bytes held in this node itself.
    pub data: Vec<u8>,
    /// Total file bytes under this node, when present.
    pub filesize: Option<u64>,
    /// File bytes under each link.
    pub blocksizes: Vec<u64>,
}

/// Why a block is not a well-formed DAG-PB/UnixFS node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DAG-PB/UnixFS node: {0}")]
pub struct NodeError(pub &'static str);

/// Encodes a leaf holding `data` (CIDv0 files: every chunk, and a one-chunk file's root).
pub fn encode_leaf(data: &[u8]) -> Vec<u8> {
    let mut unixfs = Vec::with_capacity(data.len() + 16);
    field_varint(&mut unixfs, 1, NodeType::File.code());
    if !data.is_empty() {
        field_bytes(&mut unixfs, 2, data);
    }
    field_varint(&mut unixfs, 3, data.len() as u64);
    let mut node = Vec::with_capacity(unixfs.len() + 8);
    field_bytes(&mut node, 1, &unixfs);
    node
}

/// Encodes an internal file node over `links`, each with the file bytes under it.
pub fn encode_internal(links: &[(Link, u64)]) -> Vec<u8> {
    let mut unixfs = Vec::with_capacity(8 + 4 * links.len());
    field_varint(&mut unixfs, 1, NodeType::File.code());
    field_varint(&mut unixfs, 3, links.iter().map(|(_, size)| size).sum());
    for (_, size) in links {
        field_varint(&mut unixfs, 4, *size);
    }
    let mut node = Vec::with_capacity(unixfs.len() + 48 * links.len());
    let mut link_bytes = Vec::with_capacity(48);
    for (link, _) in links {
        link_bytes.clear();
        field_bytes(&mut link_bytes, 1, &link.cid.to_bytes());
        // Kubo always writes the (empty) name; leaving it out changes the CID.
        field_bytes(&mut link_bytes, 2, b"");
        field_varint(&mut link_bytes, 3, link.tsize);
        field_bytes(&mut node, 2, &link_bytes);
    }
    field_bytes(&mut node, 1, &unixfs);
    node
}

/// Decodes a DAG-PB node and the UnixFS data inside it.
pub fn decode(block: &[u8]) -> Result<FileNode, NodeError> {
    let mut links = Vec::new();
    let mut unixfs: Option<&[u8]> = None;
    for field in Fields(block) {
        match field? {
            (2, Value::Bytes(bytes)) => links.push(decode_link(bytes)?),
            (1, Value::Bytes(bytes)) if unixfs.is_none() => unixfs = Some(bytes),
            _ => return Err(NodeError("unexpected PBNode field")),
        }
    }
    let unixfs = unixfs.ok_or(NodeError("no UnixFS data"))?;
    let mut node = FileNode {
        node_type: NodeType::Raw,
        links,
        data: Vec::new(),
        filesize: None,
        blocksizes: Vec::new(),
    };
    let mut typed = false;
    for field in Fields(unixfs) {
        match field? {
            (1, Value::Varint(code)) => {
                node.node_type = NodeType::from_code(code).ok_or(NodeError("unknown type"))?;
                typed = true;
            }
            (2, Value::Bytes(bytes)) => node.data = bytes.to_vec(),
            (3, Value::Varint(size)) => node.filesize = Some(size),
            (4, Value::Varint(size)) => node.blocksizes.push(size),
            // hashType, fanout, mode, mtime: not used by files Cairn reads.
            (5..=8, _) => {}
            _ => return Err(NodeError("unexpected UnixFS field")),
        }
    }
    if !typed {
        return Err(NodeError("UnixFS data without a type"));
    }
    Ok(node)
}

fn decode_link(bytes: &[u8]) -> Result<Link, NodeError> {
    let (mut cid, mut tsize) = (None, 0);
    for field in Fields(bytes) {
        match field? {
            (1, Value::Bytes(b)) => {
                cid = Some(Cid::from_bytes(b).map_err(|_| NodeError("link to a bad CID"))?)
            }
            (2, Value::Bytes(_)) => {}
            (3, Value::Varint(size)) => tsize = size,
            _ => return Err(NodeError("unexpected PBLink field")),
        }
    }
    Ok(Link {
        cid: cid.ok_or(NodeError("link without a CID"))?,
        tsize,
    })
}

fn field_varint(out: &mut Vec<u8>, number: u64, value: u64) {
    varint::write(out, number << 3);
    varint::write(out, value);
}

fn field_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint::write(out, (number << 3) | 2);
    varint::write(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Iterates the protobuf fields of a message; only varint and length-delimited wire types.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), NodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.read())
    }
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<(u64, Value<'a>), NodeError> {
        let bad = |_| NodeError("bad varint");
        let (key, used) = varint::read(self.0).map_err(bad)?;
        self.0 = &self.0[used..];
        let (value, used) = varint::read(self.0).map_err(bad)?;
        self.0 = &self.0[used..];
        match key & 7 {
            0 => Ok((key >> 3, Value::Varint(value))),
            2 => {
                let len = usize::try_from(value)
                    .ok()
                    .filter(|len| *len <= self.0.len())
                    .ok_or(NodeError("field runs past the end"))?;
                let (bytes, rest) = self.0.split_at(len);
                self.0 = rest;
                Ok((key >> 3, Value::Bytes(bytes)))
            }
            _ => Err(NodeError("unsupported wire type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{CidVersion, Codec};

    #[test]
    fn empty_file_node_is_the_well_known_block() {
        let block = encode_leaf(b"");
        assert_eq!(block, [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]);
        assert_eq!(
            Cid::of_block(CidVersion::V0, Codec::DagPb, &block).to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
    }

    #[test]
    fn nodes_round_trip() {
        let leaf = decode(&encode_leaf(b"hello")).expect("decodes");
        assert_eq!(leaf.data, b"hello");
        assert_eq!(leaf.filesize, Some(5));
        assert_eq!(leaf.node_type, NodeType::File);
        let child = Cid::of_block(CidVersion::V1, Codec::Raw, b"hello");
        let links = vec![
            (
                Link {
                    cid: child,
                    tsize: 5,
                },
                5,
            ),
            (
                Link {
                    cid: child,
                    tsize: 5,
                },
                5,
            ),
        ];
        let node = decode(&encode_internal(&links)).expect("decodes");
        assert_eq!(node.links.len(), 2);
        assert_eq!(node.links[1].cid, child);
        assert_eq!(node.blocksizes, [5, 5]);
        assert_eq!(node.filesize, Some(10));
    }

    #[test]
    fn malformed_blocks_are_errors_not_panics() {
        let good = encode_internal(&[(
            Link {
                cid: Cid::of_block(CidVersion::V1, Codec::Raw, b"x"),
                tsize: 1,
            },
            1,
        )]);
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        for bad in [&[0xff][..], &[0x0a, 0x7f], &[0x12, 0x00], &[0x0b], &[]] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
