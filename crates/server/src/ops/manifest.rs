//! A backup directory and its manifest.
//!
//! ```text
//! DIR/manifest.json            what the backup holds: format, counts, every part's sha-256
//! DIR/SHA256SUMS               the same parts and the manifest, for `sha256sum -c`
//! DIR/database-<gen>.sqlite3   every row, as a SQLite database with Cairn's own schema
//! DIR/blocks-<gen>.index       the blocks the database needs: `<sha-256 hex> <bytes>` a line
//! DIR/blocks/<2 hex>/<64 hex>  the blocks, named by their sha-256 (as in a data directory)
//! DIR/uploads/<gen>/<id>       the bytes resumable uploads had received
//! ```
//!
//! The database is SQLite whatever the source was, so a backup is readable with any SQLite
//! tool, restores into either backend, and is verified with the same code as a live
//! deployment. Blocks are shared between generations: a new backup into the same directory
//! copies only the blocks it lacks. A generation's parts are written first and the manifest
//! last (renamed into place), so a backup that dies half-way leaves the previous one whole.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::OpsError;

/// `format` of every manifest.
pub const FORMAT: &str = "cairn-backup";
/// The layout version this binary writes and reads.
pub const VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const SUMS: &str = "SHA256SUMS";

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Relative to the backup directory.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The blocks a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocks {
    /// The list of blocks (`<sha-256> <bytes>` lines).
    pub index: Part,
    pub count: u64,
    pub bytes: u64,
}

/// An upload session's received bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub id: String,
    pub part: Part,
}

/// What the run that wrote the manifest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub blocks_copied: u64,
    pub bytes_copied: u64,
    /// Blocks already in the directory from an earlier backup.
    pub blocks_reused: u64,
    /// Upload sessions left out because their upload ended while the backup ran.
    pub uploads_ended: u64,
    pub duration_ms: u64,
    /// Of which: reading the database into the backup's.
    #[serde(default)]
    pub database_ms: u64,
    /// Copying (or finding) the blocks.
    #[serde(default)]
    pub blocks_ms: u64,
    /// The earlier generation whose database this one started from (`None`: read whole).
    #[serde(default)]
    pub database_from: Option<u64>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Counts the backups written into this directory.
    pub generation: u64,
    /// When the database snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The Cairn version that wrote it.
    pub cairn_version: String,
    /// `postgres` or `sqlite`.
    pub source: String,
    /// Which database it is (a later backup of the same one starts from this one's file).
    #[serde(default)]
    pub database_id: String,
    /// The newest migration of the (SQLite) schema of `database`.
    pub schema_version: i64,
    pub database: Part,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    pub blocks: Blocks,
    pub uploads: Vec<Upload>,
    pub run: Run,
}

impl Manifest {
    /// Every part, the database first.
    pub fn parts(&self) -> Vec<&Part> {
        let mut parts = vec![&self.database, &self.blocks.index];
        parts.extend(self.uploads.iter().map(|u| &u.part));
        parts
    }
}

/// The sha-256 and length of a file, read in 1 MiB pieces.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Describes file `path` (relative to `dir`) as a [`Part`].
pub fn part(dir: &Path, path: &str) -> Result<Part, OpsError> {
    let (sha256, bytes) = hash_file(&dir.join(path)).map_err(OpsError::io(path))?;
    Ok(Part {
        path: path.to_owned(),
        bytes,
        sha256,
    })
}

/// Reads `DIR/manifest.json`; `Ok(None)` when there is none.
pub fn read(dir: &Path) -> Result<Option<Manifest>, OpsError> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OpsError::io(MANIFEST)(e)),
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        OpsError::Refused(format!(
            "{} is not a Cairn backup manifest: {e}",
            path.display()
        ))
    })?;
    if manifest.format != FORMAT {
        return Err(OpsError::Refused(format!(
            "{} is a {:?}, not a {FORMAT:?}",
            path.display(),
            manifest.format
        )));
    }
    if manifest.version != VERSION {
        return Err(OpsError::Refused(format!(
            "{} has layout version {}; this cairn reads version {VERSION}",
            path.display(),
            manifest.version
        )));
    }
    Ok(Some(manifest))
}

/// What `README.txt` of every backup directory says.
const README: &str = "This directory is a backup of a Cairn deployment.

  manifest.json              what it holds: format, Cairn and schema versions, rows per
                             table, blocks, and the sha-256 of every part
  SHA256SUMS                 the parts and the manifest (check with `sha256sum -c SHA256SUMS`)
  database-<n>.sqlite3       every row, in a SQLite database with Cairn's schema
  blocks-<n>.index           the blocks the rows need: `<sha-256> <bytes>` a line
  blocks/<2 hex>/<64 hex>    the blocks (IPFS blocks, named by the sha-256 of their bytes)
  uploads/<n>/<id>           the bytes open resumable uploads had received

Check it:     cairn verify --backup DIR
Restore it:   cairn restore --from DIR --database-url ... --data-dir ...
Update it:    cairn backup --to DIR   (copies only new blocks)
";

/// Writes the manifest and `SHA256SUMS` (each to a temporary file, fsynced, then renamed
/// into place: the manifest last), then fsyncs the directory; and `README.txt`.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<(), OpsError> {
    write_atomically(dir, "README.txt", README.as_bytes())?;
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| OpsError::Invalid(format!("cannot encode the manifest: {e}")))?;
    let mut sums = String::new();
    for part in manifest.parts() {
        sums.push_str(&format!("{}  {}\n", part.sha256, part.path));
    }
    sums.push_str(&format!(
        "{}  {MANIFEST}\n",
        hex::encode(Sha256::digest(&json))
    ));
    write_atomically(dir, SUMS, sums.as_bytes())?;
    write_atomically(dir, MANIFEST, &json)?;
    Ok(())
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), OpsError> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(OpsError::io(name))?;
    file.write_all(bytes).map_err(OpsError::io(name))?;
    file.sync_all().map_err(OpsError::io(name))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(OpsError::io(name))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OpsError::io(name))
}

/// The block list of an index file: `(digest, bytes)`, in order.
pub fn read_index(path: &Path) -> Result<Vec<(String, u64)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut blocks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let parsed = line.split_once(' ').and_then(|(digest, bytes)| {
            let ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
            Some((ok.then(|| digest.to_owned())?, bytes.parse::<u64>().ok()?))
        });
        match parsed {
            Some(block) => blocks.push(block),
            None => {
                return Err(format!(
                    "{} line {}: not `<digest> <bytes>`",
                    path.display(),
                    n + 1
                ));
            }
        }
    }
    Ok(blocks)
}

/// Where block `digest` (hex) is under `blocks` (a data directory's or a backup's).
pub fn block_path(blocks: &Path, digest: &str) -> PathBuf {
    blocks.join(&digest[..2]).join(digest)
}

/// What [`check`] found wrong, each a sentence.
pub type Problems = Vec<String>;

/// Checks that `dir` holds what its manifest says: every part's size and sha-256, the
/// `SHA256SUMS` file, the block index against the manifest's counts, and each listed block's
/// presence and size; with `hash_blocks`, also each block's sha-256 (its name). Returns the
/// manifest and the block list, or every problem found.
pub fn check(dir: &Path, hash_blocks: bool) -> Result<(Manifest, Vec<(String, u64)>), Problems> {
    let manifest = match read(dir) {
        Ok(Some(m)) => m,
        Ok(None) => return Err(vec![format!("{} has no {MANIFEST}", dir.display())]),
        Err(e) => return Err(vec![e.to_string()]),
    };
    let mut problems = Vec::new();
    for part in manifest.parts() {
        match hash_file(&dir.join(&part.path)) {
            Ok((sha, bytes)) if sha == part.sha256 && bytes == part.bytes => {}
            Ok((sha, bytes)) => problems.push(format!(
                "{}: {bytes} bytes with sha-256 {sha}, but the manifest says {} bytes with {}",
                part.path, part.bytes, part.sha256
            )),
            Err(e) => problems.push(format!("{}: {e}", part.path)),
        }
    }
    match std::fs::read_to_string(dir.join(SUMS)) {
        Ok(sums) => {
            let json = std::fs::read(dir.join(MANIFEST)).unwrap_or_default();
            let want = format!("{}  {MANIFEST}", hex::encode(Sha256::digest(&json)));
            if !sums.lines().any(|l| l == want) {
                problems.push(format!(
                    "{MANIFEST} does not match its sha-256 in {SUMS}: it was changed"
                ));
            }
            for part in manifest.parts() {
                if !sums
                    .lines()
                    .any(|l| l == format!("{}  {}", part.sha256, part.path))
                {
                    problems.push(format!(
                        "{SUMS} does not list {} as the manifest does",
                        part.path
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("{SUMS}: {e}")),
    }
    let blocks = match read_index(&dir.join(&manifest.blocks.index.path)) {
        Ok(blocks) => blocks,
        Err(e) => {
            problems.push(e);
            Vec::new()
        }
    };
    let (count, bytes) = (
        blocks.len() as u64,
        blocks.iter().map(|(_, b)| b).sum::<u64>(),
    );
    if (count, bytes) != (manifest.blocks.count, manifest.blocks.bytes) {
        problems.push(format!(
            "the block index lists {count} blocks of {bytes} bytes, the manifest {} of {}",
            manifest.blocks.count, manifest.blocks.bytes
        ));
    }
    let store = dir.join("blocks");
    let bad = super::blocks::check_all(&store, &blocks, hash_blocks);
    problems.extend(bad);
    if problems.is_empty() {
        Ok((manifest, blocks))
    } else {
        Err(problems)
    }
}
