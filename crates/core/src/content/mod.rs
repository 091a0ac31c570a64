//! Content addressing: CIDs, the UnixFS importer that gives exactly Kubo's CIDs, and the
//! DAG-PB/UnixFS node codec, shared by the browser SDK (which hashes files before upload)
//! and the server (which recomputes and verifies them).
//!
//! Pure like the rest of the core: bytes in, blocks out. Block storage, upload sessions and
//! pinning live in the drivers.

mod cid;
pub mod importer;
pub mod unixfs;

pub use cid::{Cid, CidError, CidVersion, Codec};
pub use importer::{Block, ImportOptions, Imported, Importer, import};
