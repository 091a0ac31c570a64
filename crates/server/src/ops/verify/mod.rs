//! `cairn verify`: checks that what a deployment (or a backup, `--backup DIR`) stores is
//! intact and consistent, names every problem, and with `--repair` fetches missing or
//! corrupt blocks back from the IPFS backend.
//!
//! Checked: every change row (parses, hashes to its hash, agrees with its columns) and every
//! document (loads with the heads its rows say: [`documents`]); every block hashes to its
//! name and every file's DAG is complete and claimed ([`files`]); the cross-table rules
//! (`store::inspect::CHECKS`); upload sessions have their bytes; with `--check-pins`, every
//! content recorded `pinned` is pinned on the backend. The database is read as of one moment
//! (one read-only snapshot), so a serving deployment can be verified.

pub mod documents;
pub mod files;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cairn_core::content::Cid;
use serde::Serialize;

use super::OpsError;
use super::progress::{Progress, Show, Unit};
use crate::blocks::FsBlockStore;
use crate::pinning::{PinError, PinSet, Pinner};
use crate::store::{ContentRecord, Store};

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `change`, `document`, `block`, `file`, `reference`, `pin`, `upload`, `backup`.
    pub kind: &'static str,
    /// What it is about: a document and row, a CID, an upload id.
    pub subject: String,
    pub message: String,
    /// Whether `--repair` can fix it (a block the IPFS backend may have).
    pub repairable: bool,
}

impl Problem {
    pub fn new(kind: &'static str, subject: &str, message: String) -> Self {
        Self {
            kind,
            subject: subject.to_owned(),
            message,
            repairable: false,
        }
    }

    pub fn repairable(kind: &'static str, subject: &str, message: String) -> Self {
        Self {
            repairable: true,
            ..Self::new(kind, subject, message)
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.subject, self.message)
    }
}

/// What verification saw and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// What was verified (`postgres`, `sqlite <path>`, `backup <dir>`).
    pub target: String,
    pub documents: u64,
    pub changes: u64,
    pub snapshots: u64,
    pub files: u64,
    pub contents: u64,
    pub blocks: u64,
    pub block_bytes: u64,
    /// Time spent hashing the blockstore (walks and sweep).
    pub block_seconds: f64,
    pub pins: BTreeMap<String, u64>,
    /// Pins asked of the backend (`--check-pins`).
    pub pins_checked: u64,
    pub uploads: u64,
    /// Blocks `--repair` fetched back, by CID.
    pub repaired: Vec<String>,
    pub problems: Vec<Problem>,
    pub seconds: f64,
}

impl Report {
    /// Whether nothing is wrong (repaired problems no longer count).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The summary an operator reads.
    pub fn render(&self) -> String {
        let mut out = format!("cairn verify: {}\n", self.target);
        let pins: Vec<String> = self.pins.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let rate = if self.block_seconds > 0.0 {
            format!(
                ", {:.0} MiB/s",
                self.block_bytes as f64 / 1048576.0 / self.block_seconds
            )
        } else {
            String::new()
        };
        for (what, line) in [
            (
                "documents",
                format!(
                    "{} ({} changes, {} snapshots)",
                    self.documents, self.changes, self.snapshots
                ),
            ),
            (
                "files",
                format!("{} references to {} contents", self.files, self.contents),
            ),
            (
                "blocks",
                format!(
                    "{} ({:.1} MiB{rate})",
                    self.blocks,
                    self.block_bytes as f64 / 1048576.0
                ),
            ),
            (
                "pins",
                if pins.is_empty() {
                    "none".into()
                } else {
                    format!(
                        "{} ({} checked on the backend)",
                        pins.join(", "),
                        self.pins_checked
                    )
                },
            ),
            ("uploads", format!("{} open sessions", self.uploads)),
        ] {
            out.push_str(&format!("  {what:<10} {line}\n"));
        }
        for cid in &self.repaired {
            out.push_str(&format!(
                "  repaired   block {cid} (fetched from the IPFS backend)\n"
            ));
        }
        if self.problems.is_empty() {
            out.push_str(&format!("ok: no problems ({:.1} s)\n", self.seconds));
        } else {
            out.push_str(&format!("{} problem(s):\n", self.problems.len()));
            for problem in &self.problems {
                let hint = if problem.repairable && self.repaired.is_empty() {
                    " [--repair may fix it]"
                } else {
                    ""
                };
                out.push_str(&format!("  {problem}{hint}\n"));
            }
        }
        out
    }
}

/// What to verify and how.
#[derive(Default)]
pub struct Options {
    /// Ask this backend whether every `pinned` content is pinned.
    pub check_pins: Option<Arc<PinSet>>,
    /// Fetch missing or corrupt blocks from this backend.
    pub repair: Option<Arc<dyn Pinner>>,
    /// The upload sessions' bytes are here (`None`: not checked).
    pub uploads_dir: Option<PathBuf>,
    pub show: Show,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("check_pins", &self.check_pins.is_some())
            .field("repair", &self.repair.is_some())
            .finish()
    }
}

/// Verifies the database `store` with the blockstore in `blocks_dir`.
pub async fn verify(
    target: String,
    store: &dyn Store,
    blocks_dir: &Path,
    options: &Options,
) -> Result<Report, OpsError> {
    let started = Instant::now();
    let show = options.show;
    let mut report = Report {
        target,
        ..Report::default()
    };
    let mut inspection = store.inspect().await?;
    let total_changes = inspection.count("changes").await?.unsigned_abs();
    report.files = inspection.count("files").await?.unsigned_abs();
    let progress = Progress::start(show, "changes", total_changes, Unit::Items);
    documents::check_all(inspection.as_mut(), &mut report, &progress).await?;
    progress.finish();

    let (contents, claims) = contents_and_claims(inspection.as_mut()).await?;
    report.contents = contents.len() as u64;
    for (what, rows) in inspection.check().await? {
        for row in rows {
            report
                .problems
                .push(Problem::new("reference", &row, what.to_owned()));
        }
    }
    let pins = inspection.pins().await?;
    for (_, status) in &pins {
        *report.pins.entry(status.clone()).or_default() += 1;
    }
    let uploads = inspection.uploads().await?;
    report.uploads = uploads.len() as u64;
    drop(inspection); // the snapshot is over; what follows reads the blockstore

    if let Some(dir) = &options.uploads_dir {
        for (id, received, _) in &uploads {
            let have = std::fs::metadata(dir.join(id)).map_or(0, |m| m.len());
            if i64::try_from(have).unwrap_or(i64::MAX) < *received {
                report.problems.push(Problem::new(
                    "upload",
                    id,
                    format!("has {have} bytes on disk but records {received} received"),
                ));
            }
        }
    }

    let found = check_blocks(blocks_dir, &contents, &claims, show, &mut report).await?;
    if let Some(backend) = &options.repair {
        repair(
            blocks_dir,
            backend.as_ref(),
            found,
            &contents,
            &claims,
            &mut report,
        )
        .await?;
    } else {
        report.problems.extend(found.problems);
    }
    if let Some(backend) = &options.check_pins {
        check_pins(backend.as_ref(), &pins, &mut report).await;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

type Claims = HashMap<String, HashSet<String>>;

async fn contents_and_claims(
    inspection: &mut dyn crate::store::Inspection,
) -> Result<(Vec<ContentRecord>, Claims), OpsError> {
    let mut contents = Vec::new();
    let mut claims = Claims::new();
    let mut after = String::new();
    loop {
        let page = inspection.contents(&after, 1000).await?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            break;
        };
        for (content, digest) in inspection.claims(&first.cid, &last.cid).await? {
            claims.entry(content).or_default().insert(digest);
        }
        after = last.cid.clone();
        let done = page.len() < 1000;
        contents.extend(page);
        if done {
            break;
        }
    }
    // A content without claims is reported by the SQL checks; don't repeat it per block.
    Ok((contents, claims))
}

async fn check_blocks(
    blocks_dir: &Path,
    contents: &[ContentRecord],
    claims: &Claims,
    show: Show,
    report: &mut Report,
) -> Result<files::Found, OpsError> {
    let all = super::blocks::list(blocks_dir).map_err(OpsError::io("the blockstore"))?;
    report.blocks = all.len() as u64;
    report.block_bytes = all.iter().map(|(_, n)| n).sum();
    let progress = Progress::start(show, "blocks", report.block_bytes, Unit::Bytes);
    let (dir, contents, claims) = (blocks_dir.to_owned(), contents.to_vec(), claims.clone());
    let started = Instant::now();
    let found = tokio::task::spawn_blocking(move || {
        let mut found = files::walk_all(&dir, &contents, &claims);
        let verified = std::mem::take(&mut found.verified);
        files::sweep(&dir, &all, &verified, &mut found, &progress);
        progress.finish();
        found
    })
    .await
    .map_err(|e| OpsError::Invalid(format!("the block check stopped: {e}")))?;
    report.block_seconds = started.elapsed().as_secs_f64();
    Ok(found)
}

/// Fetches every bad block from `backend`, checks it, and stores it; walks the files whose
/// walk stopped at a bad node again (their subtrees are seen only now), up to a few rounds.
/// What cannot be repaired stays a problem, saying why.
async fn repair(
    blocks_dir: &Path,
    backend: &dyn Pinner,
    mut found: files::Found,
    contents: &[ContentRecord],
    claims: &Claims,
    report: &mut Report,
) -> Result<(), OpsError> {
    let uploads = blocks_dir.with_file_name("uploads");
    let store =
        FsBlockStore::attach(blocks_dir, uploads).map_err(OpsError::io("the blockstore"))?;
    let mut tried = HashSet::new();
    for _round in 0..4 {
        let mut unrepaired: HashMap<[u8; 32], String> = HashMap::new();
        let mut repaired_now = 0;
        for bad in &found.bad {
            if !tried.insert(bad.cid.digest()) {
                continue;
            }
            match fetch(&store, backend, bad).await {
                Ok(()) => {
                    report.repaired.push(bad.cid.to_string());
                    repaired_now += 1;
                }
                Err(why) => {
                    unrepaired.insert(bad.cid.digest(), why);
                }
            }
        }
        for mut problem in std::mem::take(&mut found.problems) {
            if problem.kind == "block" {
                match problem_digest(&problem).map(|d| unrepaired.get(&d)) {
                    Some(Some(why)) => {
                        problem.message = format!("{} (not repaired: {why})", problem.message);
                        problem.repairable = false;
                    }
                    Some(None) => continue, // repaired, or reported in an earlier round
                    None => {}
                }
            }
            if !report.problems.contains(&problem) {
                report.problems.push(problem);
            }
        }
        if repaired_now == 0 || found.incomplete.is_empty() {
            break;
        }
        let again: Vec<ContentRecord> = contents
            .iter()
            .filter(|c| found.incomplete.contains(&c.cid))
            .cloned()
            .collect();
        let (dir, claims) = (blocks_dir.to_owned(), claims.clone());
        found = tokio::task::spawn_blocking(move || files::walk_all(&dir, &again, &claims))
            .await
            .map_err(|e| OpsError::Invalid(format!("the block check stopped: {e}")))?;
    }
    Ok(())
}

/// The digest a block problem is about (its subject is a CID or a hex digest).
fn problem_digest(problem: &Problem) -> Option<[u8; 32]> {
    if let Ok(cid) = problem.subject.parse::<Cid>() {
        return Some(cid.digest());
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&problem.subject, &mut bytes).ok()?;
    Some(bytes)
}

async fn fetch(store: &FsBlockStore, backend: &dyn Pinner, bad: &files::Bad) -> Result<(), String> {
    let data = match backend.fetch_block(&bad.cid).await {
        Ok(Some(data)) => data,
        Ok(None) => return Err(format!("{} does not have it", backend.describe())),
        Err(e) => return Err(format!("{}: {e:?}", backend.describe())),
    };
    if !bad.cid.verifies(&data) {
        return Err(format!("{} returned other bytes", backend.describe()));
    }
    if !bad.missing {
        store
            .delete_digest_sync(&hex::encode(bad.cid.digest()))
            .map_err(|e| e.to_string())?;
    }
    store.put_sync(&bad.cid, &data).map_err(|e| e.to_string())?;
    Ok(())
}

/// Each backend's answer to "do you hold it?".
type Holders = Vec<(String, Result<bool, PinError>)>;

/// Asks every backend about every file recorded `pinned`: a problem for each file fewer than
/// `--pin-replicas` backends hold, naming each backend's answer.
async fn check_pins(backends: &PinSet, pins: &[(String, String)], report: &mut Report) {
    use futures::StreamExt;
    let pinned: Vec<&String> = pins
        .iter()
        .filter(|(_, status)| status == "pinned")
        .map(|(cid, _)| cid)
        .collect();
    report.pins_checked = pinned.len() as u64;
    let answers: Vec<(String, Result<Holders, String>)> = futures::stream::iter(pinned)
        .map(|cid| async move {
            let answer = match cid.parse::<Cid>() {
                Ok(parsed) => Ok(backends.holders(&parsed).await),
                Err(e) => Err(e.to_string()),
            };
            (cid.clone(), answer)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (cid, answer) in answers {
        let holders = match answer {
            Ok(holders) => holders,
            Err(e) => {
                report.problems.push(Problem::new("pin", &cid, e));
                continue;
            }
        };
        let held = holders
            .iter()
            .filter(|(_, a)| matches!(a, Ok(true)))
            .count();
        if held >= backends.want() {
            continue;
        }
        let states: Vec<String> = holders
            .iter()
            .map(|(backend, answer)| match answer {
                Ok(true) => format!("{backend} holds it"),
                Ok(false) => format!("{backend} does not hold its pin"),
                Err(e) => format!("cannot ask {backend}: {e:?}"),
            })
            .collect();
        report.problems.push(Problem::new(
            "pin",
            &cid,
            format!(
                "recorded as pinned on {} backend(s), but {held} hold it: {}",
                backends.want(),
                states.join("; ")
            ),
        ));
    }
}
