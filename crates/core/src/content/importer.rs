//! The UnixFS importer: file bytes in, IPFS blocks and a root CID out, with exactly the CIDs
//! Kubo's `ipfs add` gives (fixed-size chunker, balanced layout, 174 links per node).
//!
//! Streaming: it holds one chunk and at most 174 pending links per tree level, never the
//! file. Blocks are handed back as soon as they are final, children before parents. It does
//! no I/O: the caller feeds bytes and stores the blocks.
//!
//! The layout follows Kubo's balanced builder: the tree fills left to right, a node is closed
//! when it has 174 children and more data follows, and the root is as shallow as the chunk
//! count allows. A one-chunk file's root is the chunk itself.

use sha2::{Digest, Sha256};

use super::unixfs::{self, Link};
use super::{Cid, CidVersion, Codec};

/// Kubo's default chunk size (`size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;
/// Kubo's limit of links per node in the balanced layout.
pub const MAX_LINKS: usize = 174;
/// The largest chunk size accepted (Kubo refuses chunks over 1 MiB as well).
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;

/// How a file is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// CIDv1 (with raw leaves) or CIDv0.
    pub version: CidVersion,
    /// Bytes per leaf.
    pub chunk_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            version: CidVersion::V1,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// One finished block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Its CID.
    pub cid: Cid,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What an import produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// The file's CID.
    pub root: Cid,
    /// File bytes.
    pub size: u64,
    /// Serialized size of the whole DAG (Kubo's `Size` in `add`, `CumulativeSize` in `stat`).
    pub dag_size: u64,
    /// Number of leaves (chunks).
    pub chunks: u64,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    link: Link,
    filesize: u64,
}

/// A leaf block made, not yet hashed (see [`Importer::write_leaves`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The block: the chunk itself (CIDv1, raw) or its DAG-PB node (CIDv0).
    pub block: Vec<u8>,
    /// File bytes in it.
    pub filesize: u64,
}

/// A streaming UnixFS importer (see the module docs).
#[derive(Debug)]
pub struct Importer {
    options: ImportOptions,
    chunk: Vec<u8>,
    levels: Vec<Vec<(Link, u64)>>,
    size: u64,
    /// Leaves added to the tree.
    chunks: u64,
    /// Leaves made (handed out, maybe not yet added).
    leaves_made: u64,
    ended: bool,
}

impl Importer {
    /// A new import. A chunk size of 0 or over [`MAX_CHUNK_SIZE`] is clamped into range.
    pub fn new(mut options: ImportOptions) -> Self {
        options.chunk_size = options.chunk_size.clamp(1, MAX_CHUNK_SIZE);
        Self {
            options,
            chunk: Vec::with_capacity(options.chunk_size),
            levels: Vec::new(),
            size: 0,
            chunks: 0,
            leaves_made: 0,
            ended: false,
        }
    }

    /// The options in effect.
    pub fn options(&self) -> ImportOptions {
        self.options
    }

    /// File bytes fed so far.
    pub fn bytes_written(&self) -> u64 {
        self.size
    }

    /// Feeds file bytes; appends every block they complete to `out`.
    pub fn write(&mut self, bytes: &[u8], out: &mut Vec<Block>) {
        let mut leaves = Vec::new();
        self.write_leaves(bytes, &mut leaves);
        self.hash_leaves(leaves, out);
    }

    /// Ends the file: appends the remaining blocks (the root last) to `out`.
    pub fn finish(mut self, out: &mut Vec<Block>) -> Imported {
        let mut leaves = Vec::new();
        self.end_leaves(&mut leaves);
        self.hash_leaves(leaves, out);
        self.finish_tree(out)
    }

    fn hash_leaves(&mut self, leaves: Vec<Leaf>, out: &mut Vec<Block>) {
        for leaf in leaves {
            let digest = Sha256::digest(&leaf.block).into();
            self.add_leaf(leaf, digest, out);
        }
    }

    /// For callers that hash leaves themselves (the browser, with WebCrypto): feeds file
    /// bytes and appends the leaves they complete, unhashed, in order. Each goes back through
    /// [`add_leaf`](Self::add_leaf) with its digest, in the same order.
    pub fn write_leaves(&mut self, mut bytes: &[u8], leaves: &mut Vec<Leaf>) {
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = self.options.chunk_size - self.chunk.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.chunk.extend_from_slice(now);
            bytes = rest;
            if self.chunk.len() == self.options.chunk_size {
                leaves.push(self.make_leaf());
            }
        }
    }

    /// The file's bytes have ended: appends its last leaf (an empty file has one too).
    /// Calling it again adds nothing.
    pub fn end_leaves(&mut self, leaves: &mut Vec<Leaf>) {
        if !self.ended && (!self.chunk.is_empty() || self.leaves_made == 0) {
            leaves.push(self.make_leaf());
        }
        self.ended = true;
    }

    /// A leaf from [`write_leaves`](Self::write_leaves) or [`end_leaves`](Self::end_leaves)
    /// with the sha2-256 of its block: appends it, and the nodes it completes, to `out`.
    /// A wrong digest makes a wrong CID (it is the caller's hash); leaves must come in order.
    pub fn add_leaf(&mut self, leaf: Leaf, digest: [u8; 32], out: &mut Vec<Block>) {
        let cid = match self.options.version {
            CidVersion::V1 => Cid::from_digest(CidVersion::V1, Codec::Raw, digest),
            CidVersion::V0 => Cid::from_digest(CidVersion::V0, Codec::DagPb, digest),
        };
        let link = Link {
            cid,
            tsize: leaf.block.len() as u64,
        };
        out.push(Block {
            cid,
            data: leaf.block,
        });
        self.chunks += 1;
        self.push(
            0,
            Pending {
                link,
                filesize: leaf.filesize,
            },
            out,
        );
    }

    /// For a caller that cuts and hashes raw leaves itself (CIDv1; the browser, from the
    /// stream's chunks with WebCrypto, without copying them here): a leaf of `filesize`
    /// bytes whose sha2-256 is `digest`, instead of its bytes. Appends the nodes it completes
    /// to `out` (not the leaf: the caller has it) and returns the leaf's CID. Every leaf but
    /// the last must be a whole chunk; `false` (nothing done) when this import is CIDv0, has
    /// bytes buffered from [`write_leaves`](Self::write_leaves), or has ended.
    pub fn add_raw_leaf(
        &mut self,
        filesize: u64,
        digest: [u8; 32],
        out: &mut Vec<Block>,
    ) -> Option<Cid> {
        let whole = self.options.chunk_size as u64;
        if self.options.version != CidVersion::V1
            || !self.chunk.is_empty()
            || self.ended
            || filesize > whole
        {
            return None;
        }
        let cid = Cid::from_digest(CidVersion::V1, Codec::Raw, digest);
        self.size += filesize;
        self.leaves_made += 1;
        self.chunks += 1;
        if filesize < whole {
            // A short leaf is the last one.
            self.ended = true;
        }
        let link = Link {
            cid,
            tsize: filesize,
        };
        self.push(0, Pending { link, filesize }, out);
        Some(cid)
    }

    /// Once every leaf is added (after [`end_leaves`](Self::end_leaves)): appends the
    /// remaining nodes, the root last.
    pub fn finish_tree(mut self, out: &mut Vec<Block>) -> Imported {
        let mut level = 0;
        let root = loop {
            let links = std::mem::take(&mut self.levels[level]);
            if level + 1 == self.levels.len() && links.len() == 1 {
                break links[0].0;
            }
            let node = self.internal(&links, out);
            if level + 1 == self.levels.len() {
                break node.link;
            }
            self.push(level + 1, node, out);
            level += 1;
        };
        Imported {
            root: root.cid,
            size: self.size,
            dag_size: root.tsize,
            chunks: self.chunks,
        }
    }

    fn make_leaf(&mut self) -> Leaf {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(self.options.chunk_size));
        self.leaves_made += 1;
        let filesize = data.len() as u64;
        let block = match self.options.version {
            CidVersion::V1 => data,
            CidVersion::V0 => unixfs::encode_leaf(&data),
        };
        Leaf { block, filesize }
    }

    /// Adds a child to the node being filled at `level`, closing that node first when it is
    /// full (which only happens when more data has arrived, as in Kubo's layout).
    fn push(&mut self, level: usize, child: Pending, out: &mut Vec<Block>) {
        if self.levels.len() == level {
            self.levels.push(Vec::with_capacity(MAX_LINKS));
        }
        if self.levels[level].len() == MAX_LINKS {
            let links = std::mem::take(&mut self.levels[level]);
            let node = self.internal(&links, out);
            self.push(level + 1, node, out);
        }
        self.levels[level].push((child.link, child.filesize));
    }

    fn internal(&self, links: &[(Link, u64)], out: &mut Vec<Block>) -> Pending {
        let data = unixfs::encode_internal(links);
        let cid = Cid::of_block(self.options.version, Codec::DagPb, &data);
        let tsize = data.len() as u64 + links.iter().map(|(l, _)| l.tsize).sum::<u64>();
        let filesize = links.iter().map(|(_, size)| size).sum();
        out.push(Block { cid, data });
        Pending {
            link: Link { cid, tsize },
            filesize,
        }
    }
}

/// Imports `bytes` in one go: the blocks and the summary.
pub fn import(bytes: &[u8], options: ImportOptions) -> (Vec<Block>, Imported) {
    let mut importer = Importer::new(options);
    let mut blocks = Vec::new();
    importer.write(bytes, &mut blocks);
    let imported = importer.finish(&mut blocks);
    (blocks, imported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::unixfs::decode;

    fn v0(chunk_size: usize) -> ImportOptions {
        ImportOptions {
            version: CidVersion::V0,
            chunk_size,
        }
    }

    #[test]
    fn empty_files_have_kubos_cids() {
        let (_, v1) = import(b"", ImportOptions::default());
        assert_eq!(
            v1.root.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        let (_, v0) = import(b"", v0(DEFAULT_CHUNK_SIZE));
        assert_eq!(
            v0.root.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!((v0.size, v0.dag_size, v0.chunks), (0, 6, 1));
    }

    /// Raw leaves cut and hashed by the caller give the same root, sizes and internal nodes
    /// as the importer given the bytes: a short last leaf, whole leaves only, and more
    /// leaves than one node links (a second level).
    #[test]
    fn raw_leaves_added_by_digest_give_the_same_dag() {
        let options = ImportOptions {
            version: CidVersion::V1,
            chunk_size: 64,
        };
        for len in [1usize, 64 * 3, 64 * 3 + 5, 64 * 400 + 17] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 + i / 7) as u8).collect();
            let (blocks, expected) = import(&bytes, options);
            let mut importer = Importer::new(options);
            let mut nodes = Vec::new();
            for chunk in bytes.chunks(64) {
                let digest = Sha256::digest(chunk).into();
                let cid = importer.add_raw_leaf(chunk.len() as u64, digest, &mut nodes);
                assert_eq!(
                    cid,
                    Some(Cid::from_digest(CidVersion::V1, Codec::Raw, digest))
                );
            }
            let imported = importer.finish(&mut nodes);
            assert_eq!(
                (
                    imported.root,
                    imported.size,
                    imported.dag_size,
                    imported.chunks
                ),
                (
                    expected.root,
                    expected.size,
                    expected.dag_size,
                    expected.chunks
                ),
                "{len} bytes"
            );
            let internal: Vec<_> = blocks
                .into_iter()
                .filter(|b| b.cid.codec() == Codec::DagPb)
                .collect();
            assert_eq!(
                nodes, internal,
                "{len} bytes: the same nodes in the same order"
            );
        }
        let mut importer = Importer::new(options);
        let mut out = Vec::new();
        assert!(importer.add_raw_leaf(5, [0; 32], &mut out).is_some());
        assert!(
            importer.add_raw_leaf(64, [0; 32], &mut out).is_none(),
            "after a short leaf"
        );
        assert!(
            Importer::new(v0(64))
                .add_raw_leaf(64, [0; 32], &mut out)
                .is_none()
        );
    }

    /// Leaves hashed by the caller (as the browser does with WebCrypto) give the same
    /// blocks, in the same order, as the importer hashing them itself.
    #[test]
    fn leaves_hashed_outside_give_the_same_dag() {
        for version in [CidVersion::V0, CidVersion::V1] {
            for len in [0usize, 5, 16, 17, 16 * 180 + 3] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let options = ImportOptions {
                    version,
                    chunk_size: 16,
                };
                let (expected, summary) = import(&data, options);
                let mut importer = Importer::new(options);
                let (mut leaves, mut blocks) = (Vec::new(), Vec::new());
                for piece in data.chunks(5) {
                    importer.write_leaves(piece, &mut leaves);
                }
                importer.end_leaves(&mut leaves);
                importer.end_leaves(&mut leaves);
                for leaf in leaves {
                    let digest = Sha256::digest(&leaf.block).into();
                    importer.add_leaf(leaf, digest, &mut blocks);
                }
                assert_eq!(
                    importer.finish_tree(&mut blocks),
                    summary,
                    "{version:?} {len}"
                );
                assert_eq!(blocks, expected, "{version:?} {len}");
            }
        }
    }

    #[test]
    fn a_one_chunk_file_is_its_own_root() {
        let (blocks, imported) = import(b"hello", ImportOptions::default());
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            imported.root,
            Cid::of_block(CidVersion::V1, Codec::Raw, b"hello")
        );
        assert_eq!(imported.dag_size, 5);
    }

    /// The shape of Kubo's balanced tree: depth grows only when a level is full and more
    /// data follows, and a lone last child still gets its own parent.
    #[test]
    fn balanced_layout_depths() {
        for (chunks, depth, nodes) in [
            (2u64, 1, 1),
            (174, 1, 1),
            (175, 2, 3),
            (174 * 174, 2, 175),
            (174 * 174 + 1, 3, 175 + 3),
        ] {
            let mut importer = Importer::new(ImportOptions {
                version: CidVersion::V1,
                chunk_size: 1,
            });
            let mut blocks = Vec::new();
            for _ in 0..chunks {
                importer.write(b"x", &mut blocks);
            }
            let imported = importer.finish(&mut blocks);
            let internal: Vec<_> = blocks
                .iter()
                .filter(|b| b.cid.codec() == Codec::DagPb)
                .collect();
            assert_eq!(internal.len(), nodes, "{chunks} chunks");
            let mut cid = imported.root;
            let mut found = 0;
            while cid.codec() == Codec::DagPb {
                let block = blocks
                    .iter()
                    .find(|b| b.cid == cid)
                    .expect("root's blocks emitted");
                cid = decode(&block.data).expect("decodes").links[0].cid;
                found += 1;
            }
            assert_eq!(found, depth, "{chunks} chunks");
            assert_eq!(blocks.last().map(|b| b.cid), Some(imported.root));
        }
    }

    #[test]
    fn write_boundaries_do_not_change_the_result() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let whole = import(&data, v0(100)).1;
        let mut importer = Importer::new(v0(100));
        let mut blocks = Vec::new();
        for piece in data.chunks(37) {
            importer.write(piece, &mut blocks);
        }
        assert_eq!(importer.finish(&mut blocks), whole);
    }

    #[test]
    fn every_block_verifies_and_sizes_add_up() {
        let data = vec![7u8; 1000];
        let (blocks, imported) = import(&data, v0(10));
        assert!(blocks.iter().all(|b| b.cid.verifies(&b.data)));
        let total: u64 = blocks.iter().map(|b| b.data.len() as u64).sum();
        // Identical chunks are one block listed many times; the DAG size counts them all.
        assert!(imported.dag_size >= total / 2);
        let root = decode(&blocks.last().expect("root").data).expect("decodes");
        assert_eq!(root.filesize, Some(1000));
    }
}
