//! Content addressing: CIDs, the UnixFS importer that gives exactly Kubo's CIDs, the
//! DAG-PB/UnixFS node codec, walks that read a file back out of its blocks, and CARv1 (the
//! trustless gateway's format), shared by the browser SDK (which hashes files before upload
//! and verifies downloads block by block) and the server (which recomputes and verifies
//! uploads, serves ranges and CARs).
//!
//! Pure like the rest of the core: bytes in, blocks out. Block storage, upload sessions and
//! pinning live in the drivers.

pub mod car;
mod cid;
pub mod importer;
pub mod unixfs;
pub mod walk;

pub use cid::{Cid, CidError, CidVersion, Codec};
pub use importer::{Block, ImportOptions, Imported, Importer, Leaf, import};
pub use walk::{DagOrder, FileWalk, WalkError};
