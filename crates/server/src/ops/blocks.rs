//! Blocks in bulk, for backups, restores and verification: checked, copied or hashed by
//! several threads at once (hashing is the cost, and it is per-core). A block is always named
//! by the sha-256 of its bytes (`<2 hex>/<64 hex>`), so checking a block needs nothing else.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::manifest::block_path;
use super::progress::Progress;

/// Threads for block work: one per core.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `work(i)` for every `i < n` on [`workers`] threads; collects what each returns.
pub fn parallel<T: Send>(n: usize, work: impl Fn(usize) -> Option<T> + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers().min(n.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if let Some(out) = work(i) {
                        found.lock().unwrap_or_else(|p| p.into_inner()).push(out);
                    }
                }
            });
        }
    });
    found.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Whether `data` is block `digest` (hex).
pub fn is_block(digest: &str, data: &[u8]) -> bool {
    hex::encode(Sha256::digest(data)) == digest
}

/// Checks each of `blocks` (`(digest, bytes)`) under `store`: there, of that size, and with
/// `hash`, hashing to its name. Every problem, a sentence each.
pub fn check_all(store: &Path, blocks: &[(String, u64)], hash: bool) -> Vec<String> {
    let mut problems = parallel(blocks.len(), |i| {
        let (digest, bytes) = &blocks[i];
        let path = block_path(store, digest);
        let problem = if hash {
            match std::fs::read(&path) {
                Ok(data) if data.len() as u64 != *bytes => {
                    format!(
                        "block {digest}: {} bytes, the index says {bytes}",
                        data.len()
                    )
                }
                Ok(data) if !is_block(digest, &data) => {
                    format!("block {digest}: its bytes do not hash to its name (corrupt)")
                }
                Ok(_) => return None,
                Err(e) => format!("block {digest}: {e}"),
            }
        } else {
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == *bytes => return None,
                Ok(m) => format!("block {digest}: {} bytes, the index says {bytes}", m.len()),
                Err(e) => format!("block {digest}: {e}"),
            }
        };
        Some(problem)
    });
    problems.sort();
    problems
}

/// What [`copy_all`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub blocks: u64,
    pub bytes: u64,
    /// Blocks already at the destination (not read, not written).
    pub reused: u64,
}

/// Copies `blocks` (hex digests) from store `from` to store `to`, checking each against its
/// name as it is read; a block already at `to` with the same size is kept (`reuse`) or
/// overwritten. Files are written without fsync: the caller syncs the file system once at the
/// end ([`sync_fs`]). Returns the sizes of the blocks (in the order given) and what was done,
/// or every problem (a missing or corrupt source block).
pub fn copy_all(
    from: &Path,
    to: &Path,
    blocks: &[String],
    reuse: bool,
    progress: &Progress,
) -> Result<(Vec<u64>, Copied), Vec<String>> {
    let sizes: Vec<AtomicU64> = blocks.iter().map(|_| AtomicU64::new(0)).collect();
    let (copied, bytes, reused) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut problems = parallel(blocks.len(), |i| {
        let digest = &blocks[i];
        let (source, target) = (block_path(from, digest), block_path(to, digest));
        let have = std::fs::metadata(&source).map(|m| m.len());
        if reuse
            && let (Ok(have), Ok(there)) = (&have, std::fs::metadata(&target))
            && there.len() == *have
        {
            sizes[i].store(*have, Ordering::Relaxed);
            reused.fetch_add(1, Ordering::Relaxed);
            progress.inc(*have);
            return None;
        }
        let data = match std::fs::read(&source) {
            Ok(data) => data,
            Err(e) => return Some(format!("block {digest}: {e}")),
        };
        if !is_block(digest, &data) {
            return Some(format!(
                "block {digest} in {}: its bytes do not hash to its name (corrupt)",
                from.display()
            ));
        }
        if let Err(e) = write_block(&target, &data) {
            return Some(format!(
                "block {digest}: cannot write {}: {e}",
                target.display()
            ));
        }
        sizes[i].store(data.len() as u64, Ordering::Relaxed);
        copied.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        progress.inc(data.len() as u64);
        None
    });
    if !problems.is_empty() {
        problems.sort();
        return Err(problems);
    }
    let sizes = sizes.into_iter().map(AtomicU64::into_inner).collect();
    Ok((
        sizes,
        Copied {
            blocks: copied.into_inner(),
            bytes: bytes.into_inner(),
            reused: reused.into_inner(),
        },
    ))
}

/// Writes a block file through a temporary name (a reader never sees half a block).
fn write_block(target: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(target);
    std::fs::create_dir_all(dir)?;
    let tmp = target.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(data)?;
    drop(file);
    std::fs::rename(&tmp, target)
}

/// Flushes everything written to the file system holding `dir` to disk (one `syncfs`, much
/// cheaper than an fsync per block).
pub fn sync_fs(dir: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&file)?;
    Ok(())
}

/// Moves blocks `digests` from store `from` into store `to` (the same file system).
pub fn move_all(from: &Path, to: &Path, digests: &[String]) -> std::io::Result<()> {
    for digest in digests {
        let target = block_path(to, digest);
        if let Some(shard) = target.parent() {
            std::fs::create_dir_all(shard)?;
        }
        std::fs::rename(block_path(from, digest), target)?;
    }
    Ok(())
}

pub use crate::blocks::fs::list_blocks as list;
