//! Reading a UnixFS file back out of its blocks, without I/O. [`FileWalk`] yields the bytes of
//! a range in file order, asking for one block at a time and skipping whole subtrees before
//! the range by the sizes their parents record; [`DagOrder`] visits every block of a DAG once,
//! depth-first from the root, which is the order of a trustless gateway's CAR.
//!
//! Both only decide which block comes next: the caller fetches it (from a blockstore,
//! IndexedDB or the network), checks it against the CID it asked for, and hands it back. The
//! server's downloads and CAR export, and the browser's uploads and verified downloads, walk
//! files with these.

use std::collections::HashSet;

use super::unixfs::{self, NodeType};
use super::{Cid, Codec};

/// Why a block cannot be read as part of a UnixFS file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {cid} cannot be read as part of a file: {reason}")]
pub struct WalkError {
    /// The offending block.
    pub cid: Cid,
    /// What is wrong with it.
    pub reason: String,
}

fn file_node(cid: Cid, block: &[u8]) -> Result<unixfs::FileNode, WalkError> {
    let bad = |reason: String| WalkError { cid, reason };
    let node = unixfs::decode(block).map_err(|e| bad(e.to_string()))?;
    if !matches!(node.node_type, NodeType::File | NodeType::Raw) {
        return Err(bad(format!("a {:?} node, not a file", node.node_type)));
    }
    Ok(node)
}

/// Bytes `start..end` of a file, in order (see the module docs).
#[derive(Debug, Clone)]
pub struct FileWalk {
    /// Open nodes: their children (CID, file bytes under it) and the next one to visit.
    stack: Vec<(Vec<(Cid, u64)>, usize)>,
    /// File offset of the next child to visit.
    offset: u64,
    start: u64,
    end: u64,
}

impl FileWalk {
    /// A walk over bytes `start..end` of the file `root` of `size` bytes (`end` is clamped to
    /// `size`).
    pub fn new(root: Cid, size: u64, start: u64, end: u64) -> Self {
        Self {
            stack: vec![(vec![(root, size)], 0)],
            offset: 0,
            start,
            end: end.min(size),
        }
    }

    /// The block to read next, or `None` when the range is done. Asking again without
    /// handing the block over returns the same CID.
    pub fn next_block(&mut self) -> Option<Cid> {
        loop {
            if self.offset >= self.end {
                return None;
            }
            let (children, next) = self.stack.last_mut()?;
            let Some(&(cid, size)) = children.get(*next) else {
                self.stack.pop();
                continue;
            };
            if self.offset.saturating_add(size) <= self.start {
                *next += 1;
                self.offset += size;
                continue;
            }
            return Some(cid);
        }
    }

    /// Hands over the block [`next_block`](Self::next_block) asked for, already checked
    /// against its CID; returns the file bytes of the range it holds (none for an internal
    /// node: its children are asked for next).
    pub fn block(&mut self, block: Vec<u8>) -> Result<Vec<u8>, WalkError> {
        let Some(cid) = self.next_block() else {
            return Ok(Vec::new());
        };
        if let Some((_, next)) = self.stack.last_mut() {
            *next += 1;
        }
        let data = match cid.codec() {
            Codec::Raw => block,
            Codec::DagPb => {
                let node = file_node(cid, &block)?;
                if node.links.is_empty() {
                    node.data
                } else if node.data.is_empty() && node.blocksizes.len() == node.links.len() {
                    let children = node.links.iter().map(|l| l.cid).zip(node.blocksizes);
                    self.stack.push((children.collect(), 0));
                    return Ok(Vec::new());
                } else {
                    return Err(WalkError {
                        cid,
                        reason: "an unsupported file node layout".into(),
                    });
                }
            }
        };
        let range = self.advance(data.len() as u64);
        let mut data = data;
        data.truncate(range.end);
        data.drain(..range.start);
        Ok(data)
    }

    /// [`block`](Self::block) for a raw leaf whose bytes the caller keeps (already checked
    /// against its CID, `len` bytes): which of its bytes are in the range. `None` (and nothing
    /// moves) if the block asked for is not a raw leaf, or the walk is done: hand internal
    /// nodes to `block`.
    pub fn raw_leaf(&mut self, len: u64) -> Option<std::ops::Range<usize>> {
        let cid = self.next_block()?;
        if cid.codec() != Codec::Raw {
            return None;
        }
        if let Some((_, next)) = self.stack.last_mut() {
            *next += 1;
        }
        Some(self.advance(len))
    }

    /// Moves past `len` file bytes; the part of them inside `start..end` (empty if none).
    fn advance(&mut self, len: u64) -> std::ops::Range<usize> {
        let (from, to) = (self.offset, self.offset + len);
        self.offset = to;
        let lo = usize::try_from(self.start.saturating_sub(from)).unwrap_or(usize::MAX);
        let hi = usize::try_from(self.end.min(to).saturating_sub(from)).unwrap_or(usize::MAX);
        if lo >= hi { 0..0 } else { lo..hi }
    }

    /// Up to `limit` blocks that come next among the current node's children, starting with
    /// the one [`next_block`](Self::next_block) asks for: what a reader may fetch ahead.
    pub fn upcoming(&mut self, limit: usize) -> Vec<Cid> {
        if self.next_block().is_none() {
            return Vec::new();
        }
        self.stack.last().map_or_else(Vec::new, |(children, next)| {
            children
                .iter()
                .skip(*next)
                .take(limit)
                .map(|(c, _)| *c)
                .collect()
        })
    }

    /// File offset reached so far.
    pub fn offset(&self) -> u64 {
        self.offset.min(self.end).max(self.start)
    }
}

/// Every block of a DAG once, depth-first from the root, children in link order (see the
/// module docs). Holds the CIDs still to visit and those already visited.
#[derive(Debug, Clone)]
pub struct DagOrder {
    todo: Vec<Cid>,
    seen: HashSet<Cid>,
}

impl DagOrder {
    pub fn new(root: Cid) -> Self {
        Self {
            todo: vec![root],
            seen: HashSet::new(),
        }
    }

    /// The block to visit next, or `None` when every block was visited. Asking again without
    /// handing the block over returns the same CID.
    pub fn next_block(&mut self) -> Option<Cid> {
        while let Some(cid) = self.todo.last() {
            if self.seen.contains(cid) {
                self.todo.pop();
                continue;
            }
            return Some(*cid);
        }
        None
    }

    /// Hands over the block [`next_block`](Self::next_block) asked for, already checked
    /// against its CID; its children are visited next.
    pub fn block(&mut self, block: &[u8]) -> Result<(), WalkError> {
        let Some(cid) = self.next_block() else {
            return Ok(());
        };
        self.todo.pop();
        self.seen.insert(cid);
        if cid.codec() == Codec::DagPb {
            let node = file_node(cid, block)?;
            self.todo.extend(node.links.iter().rev().map(|l| l.cid));
        }
        Ok(())
    }

    /// Passes over the block [`next_block`](Self::next_block) asked for without visiting
    /// its children (a block that is not at hand).
    pub fn skip(&mut self) {
        if let Some(cid) = self.next_block() {
            self.todo.pop();
            self.seen.insert(cid);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::content::{CidVersion, ImportOptions, import};

    fn store(data: &[u8], version: CidVersion, chunk_size: usize) -> (Cid, HashMap<Cid, Vec<u8>>) {
        let options = ImportOptions {
            version,
            chunk_size,
        };
        let (blocks, imported) = import(data, options);
        let map = blocks.into_iter().map(|b| (b.cid, b.data)).collect();
        (imported.root, map)
    }

    fn read(walk: &mut FileWalk, blocks: &HashMap<Cid, Vec<u8>>) -> (Vec<u8>, usize) {
        let (mut out, mut reads) = (Vec::new(), 0);
        while let Some(cid) = walk.next_block() {
            reads += 1;
            out.extend(walk.block(blocks[&cid].clone()).unwrap_or_default());
        }
        (out, reads)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn reads_whole_files_of_both_versions() {
        for version in [CidVersion::V0, CidVersion::V1] {
            // 200 chunks of 16 bytes: two tree levels (174 links per node).
            for len in [0, 1, 16, 17, 200 * 16 + 5] {
                let bytes = data(len);
                let (root, blocks) = store(&bytes, version, 16);
                let mut walk = FileWalk::new(root, len as u64, 0, u64::MAX);
                assert_eq!(read(&mut walk, &blocks).0, bytes, "{version:?} {len}");
            }
        }
    }

    #[test]
    fn raw_leaves_kept_by_the_caller_give_the_same_bytes() {
        let bytes = data(400 * 16 + 9);
        let (root, blocks) = store(&bytes, CidVersion::V1, 16);
        for (start, end) in [(0, u64::MAX), (6000, 6010), (15, 17), (6400, 6409), (7, 7)] {
            let mut walk = FileWalk::new(root, bytes.len() as u64, start, end);
            let mut out = Vec::new();
            while let Some(cid) = walk.next_block() {
                let block = &blocks[&cid];
                match walk.raw_leaf(block.len() as u64) {
                    Some(range) => out.extend_from_slice(&block[range]),
                    None => out.extend(walk.block(block.clone()).unwrap()),
                }
            }
            let mut walk = FileWalk::new(root, bytes.len() as u64, start, end);
            assert_eq!(out, read(&mut walk, &blocks).0, "{start}..{end}");
        }
        // A DAG-PB node is not a raw leaf: nothing moves.
        let mut walk = FileWalk::new(root, bytes.len() as u64, 0, u64::MAX);
        assert_eq!(walk.raw_leaf(10), None);
        assert_eq!(walk.next_block(), Some(root));
    }

    #[test]
    fn upcoming_blocks_are_the_next_siblings() {
        let bytes = data(400 * 16);
        let (root, blocks) = store(&bytes, CidVersion::V1, 16);
        let mut walk = FileWalk::new(root, bytes.len() as u64, 0, u64::MAX);
        assert_eq!(walk.upcoming(5), vec![root]);
        walk.block(blocks[&root].clone()).unwrap();
        let ahead = walk.upcoming(5);
        assert_eq!(ahead.len(), 3, "the root's three children");
        assert_eq!(Some(ahead[0]), walk.next_block());
    }

    #[test]
    fn a_range_skips_the_subtrees_before_it() {
        let bytes = data(400 * 16);
        let (root, blocks) = store(&bytes, CidVersion::V1, 16);
        let mut walk = FileWalk::new(root, bytes.len() as u64, 6000, 6010);
        let (out, reads) = read(&mut walk, &blocks);
        assert_eq!(out, &bytes[6000..6010]);
        // The root, one internal node, and the one leaf holding the range.
        assert_eq!(reads, 3);
    }

    #[test]
    fn dag_order_is_depth_first_and_visits_each_block_once() {
        // Every chunk is the same: one leaf block under many links.
        let bytes = vec![7u8; 180 * 16];
        let (root, blocks) = store(&bytes, CidVersion::V1, 16);
        let mut order = DagOrder::new(root);
        let mut visited = Vec::new();
        while let Some(cid) = order.next_block() {
            assert_eq!(order.next_block(), Some(cid), "asking again is harmless");
            order.block(&blocks[&cid]).unwrap();
            visited.push(cid);
        }
        assert_eq!(visited[0], root);
        assert_eq!(visited.len(), blocks.len());
        let unique: HashSet<_> = visited.iter().collect();
        assert_eq!(unique.len(), visited.len());
    }

    #[test]
    fn directories_and_garbage_are_errors() {
        let cid = Cid::of_block(CidVersion::V0, Codec::DagPb, b"\x0a\x02\x08\x01");
        let mut walk = FileWalk::new(cid, 10, 0, 10);
        assert!(
            walk.block(b"\x0a\x02\x08\x01".to_vec()).is_err(),
            "a directory"
        );
        let mut order = DagOrder::new(cid);
        assert!(order.block(b"\xff\xff").is_err());
    }

    proptest! {
        #[test]
        fn any_range_reads_the_same_bytes(len in 0usize..3000, a in 0u64..3100, b in 0u64..3100, v1: bool) {
            let bytes = data(len);
            let version = if v1 { CidVersion::V1 } else { CidVersion::V0 };
            let (root, blocks) = store(&bytes, version, 8);
            let (start, end) = (a.min(b), a.max(b));
            let mut walk = FileWalk::new(root, len as u64, start, end);
            let (lo, hi) = ((start as usize).min(len), (end as usize).min(len));
            let expected = if lo < hi { bytes[lo..hi].to_vec() } else { Vec::new() };
            prop_assert_eq!(read(&mut walk, &blocks).0, expected);
        }
    }
}
