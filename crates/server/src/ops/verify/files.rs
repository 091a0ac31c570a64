//! Files and blocks: every stored content's DAG is complete in the blockstore, its root
//! agrees with the recorded size and DAG size, and every block of it is claimed (listed for
//! it, so garbage collection keeps it); every block in the blockstore hashes to its name.
//!
//! Each block is read once: DAG nodes while walking (verified as read), the rest (raw leaves,
//! blocks no DAG names) in a sweep over the blockstore afterwards. Both run on every core.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use cairn_core::content::{Cid, CidVersion, Codec, DagOrder, unixfs};

use super::Problem;
use crate::ops::blocks::{is_block, parallel};
use crate::ops::manifest::block_path;
use crate::ops::progress::Progress;
use crate::store::ContentRecord;

/// A block that is missing or damaged, and the CID to ask a backend for it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bad {
    pub cid: Cid,
    pub missing: bool,
}

/// What the walks and the sweep found.
#[derive(Debug, Default)]
pub struct Found {
    pub problems: Vec<Problem>,
    pub bad: Vec<Bad>,
    /// Digests read and verified while walking.
    pub verified: HashSet<String>,
    /// Contents whose walk stopped at a missing or damaged node (walked again after repair).
    pub incomplete: HashSet<String>,
}

/// Walks the DAG of every content in `contents`, with `claims` (content → digests).
pub fn walk_all(
    store: &Path,
    contents: &[ContentRecord],
    claims: &HashMap<String, HashSet<String>>,
) -> Found {
    let found = Mutex::new(Found::default());
    parallel(contents.len(), |i| {
        let content = &contents[i];
        let mut local = Found::default();
        walk(store, content, claims.get(&content.cid), &mut local);
        let mut all = found.lock().unwrap_or_else(|p| p.into_inner());
        all.problems.extend(local.problems);
        all.bad.extend(local.bad);
        all.verified.extend(local.verified);
        all.incomplete.extend(local.incomplete);
        None::<()>
    });
    found.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn walk(
    store: &Path,
    content: &ContentRecord,
    claims: Option<&HashSet<String>>,
    found: &mut Found,
) {
    let subject = content.cid.as_str();
    let root: Cid = match content.cid.parse() {
        Ok(root) => root,
        Err(e) => {
            found
                .problems
                .push(Problem::new("file", subject, format!("not a CID: {e}")));
            return;
        }
    };
    let mut order = DagOrder::new(root);
    let mut first = true;
    while let Some(cid) = order.next_block() {
        let digest = hex::encode(cid.digest());
        if claims.is_some_and(|c| !c.contains(&digest)) {
            found.problems.push(Problem::new(
                "reference",
                subject,
                format!("block {cid} is not listed for it: garbage collection could delete it"),
            ));
        }
        let path = block_path(store, &digest);
        if cid.codec() == Codec::Raw && !first {
            if !path.is_file() {
                missing(found, subject, cid);
            }
            order.skip();
            continue;
        }
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(_) => {
                missing(found, subject, cid);
                found.incomplete.insert(content.cid.clone());
                order.skip();
                first = false;
                continue;
            }
        };
        if !cid.verifies(&data) {
            found.problems.push(Problem::repairable(
                "block",
                &cid.to_string(),
                format!("corrupt: its bytes do not hash to its CID (in file {subject})"),
            ));
            found.bad.push(Bad {
                cid,
                missing: false,
            });
            found.incomplete.insert(content.cid.clone());
            order.skip();
            first = false;
            continue;
        }
        found.verified.insert(digest);
        if first {
            check_root(content, cid, &data, found);
            first = false;
        }
        if let Err(e) = order.block(&data) {
            found
                .problems
                .push(Problem::new("file", subject, e.to_string()));
            order.skip();
        }
    }
}

fn missing(found: &mut Found, content: &str, cid: Cid) {
    found.problems.push(Problem::repairable(
        "block",
        &cid.to_string(),
        format!("missing from the blockstore (in file {content})"),
    ));
    found.bad.push(Bad { cid, missing: true });
}

/// The root says the file has the recorded size and DAG size (Kubo's cumulative size: the
/// root's bytes and its links' sizes).
fn check_root(content: &ContentRecord, cid: Cid, data: &[u8], found: &mut Found) {
    let (size, dag_size) = if cid.codec() == Codec::Raw {
        (data.len() as u64, data.len() as u64)
    } else {
        match unixfs::decode(data) {
            Ok(node) => (
                node.filesize.unwrap_or(node.data.len() as u64),
                data.len() as u64 + node.links.iter().map(|l| l.tsize).sum::<u64>(),
            ),
            Err(e) => {
                found
                    .problems
                    .push(Problem::new("file", &content.cid, e.to_string()));
                return;
            }
        }
    };
    if i64::try_from(size).ok() != Some(content.size)
        || i64::try_from(dag_size).ok() != Some(content.dag_size)
    {
        found.problems.push(Problem::new(
            "file",
            &content.cid,
            format!(
                "recorded as {} bytes ({} in its DAG), but its root says {size} ({dag_size})",
                content.size, content.dag_size
            ),
        ));
    }
}

/// Hashes every block of `all` (the blockstore's `(digest, size)` list) not in `verified`;
/// adds what is corrupt to `found`.
pub fn sweep(
    store: &Path,
    all: &[(String, u64)],
    verified: &HashSet<String>,
    found: &mut Found,
    progress: &Progress,
) {
    let corrupt = parallel(all.len(), |i| {
        let (digest, size) = &all[i];
        if verified.contains(digest) {
            progress.inc(*size);
            return None;
        }
        let data = std::fs::read(block_path(store, digest)).ok()?;
        progress.inc(*size);
        (!is_block(digest, &data)).then(|| digest.clone())
    });
    for digest in corrupt {
        let mut bytes = [0u8; 32];
        if hex::decode_to_slice(&digest, &mut bytes).is_err() {
            continue;
        }
        let cid = Cid::from_digest(CidVersion::V1, Codec::Raw, bytes);
        if found.bad.iter().any(|b| b.cid.digest() == bytes) {
            continue; // already reported by a walk
        }
        found.problems.push(Problem::repairable(
            "block",
            &digest,
            "corrupt: its bytes do not hash to its name".into(),
        ));
        found.bad.push(Bad {
            cid,
            missing: false,
        });
    }
}
