//! Documents: every change row parses, hashes to its stored hash and agrees with its stored
//! actor, sequence number and dependencies; no change depends on one that is not stored;
//! and the document loads (its snapshot, then the rows after it) with exactly the heads its
//! rows say it has (the changes no other change depends on).
//!
//! Rows arrive in document order, a page at a time, from one snapshot of the database;
//! documents are checked on the blocking pool, several at once.

use std::collections::HashSet;

use automerge::{Automerge, Change};
use tokio::task::JoinSet;

use super::{Problem, Report};
use crate::ops::OpsError;
use crate::store::{ChangeRecord, Inspection};

const PAGE: i64 = 5_000;

/// What checking one document found.
#[derive(Debug, Default)]
pub struct Checked {
    pub changes: u64,
    pub snapshot: bool,
    pub problems: Vec<Problem>,
}

/// Checks every document of `inspection`, adding to `report`.
pub async fn check_all(
    inspection: &mut dyn Inspection,
    report: &mut Report,
    progress: &crate::ops::progress::Progress,
) -> Result<(), OpsError> {
    let mut snapshots = Snapshots::default();
    let mut running = JoinSet::new();
    let limit = crate::ops::blocks::workers() * 2;
    let (mut after, mut current): ((String, i64), Vec<ChangeRecord>) = ((String::new(), 0), vec![]);
    loop {
        let page = inspection.changes((&after.0, after.1), PAGE).await?;
        let done = (page.len() as i64) < PAGE;
        if let Some(last) = page.last() {
            after = (last.document_id.clone(), last.seq_no);
        }
        for row in page {
            if current
                .first()
                .is_some_and(|c| c.document_id != row.document_id)
            {
                let rows = std::mem::take(&mut current);
                let snapshot = snapshots
                    .of(inspection, &rows[0].document_id, report)
                    .await?;
                while running.len() >= limit {
                    collect(running.join_next().await, report, progress);
                }
                running.spawn_blocking(move || check_document(&rows, snapshot));
            }
            current.push(row);
        }
        if done {
            break;
        }
    }
    if !current.is_empty() {
        let snapshot = snapshots
            .of(inspection, &current[0].document_id, report)
            .await?;
        running.spawn_blocking(move || check_document(&current, snapshot));
    }
    while let Some(result) = running.join_next().await {
        collect(Some(result), report, progress);
    }
    // Snapshots of documents without change rows.
    snapshots.of(inspection, "\u{10FFFF}", report).await?;
    Ok(())
}

fn collect(
    result: Option<Result<Checked, tokio::task::JoinError>>,
    report: &mut Report,
    progress: &crate::ops::progress::Progress,
) {
    match result {
        Some(Ok(checked)) => {
            report.documents += 1;
            report.changes += checked.changes;
            report.snapshots += u64::from(checked.snapshot);
            progress.inc(checked.changes);
            report.problems.extend(checked.problems);
        }
        Some(Err(e)) => report.problems.push(Problem::new(
            "document",
            "?",
            format!("checking a document failed: {e}"),
        )),
        None => {}
    }
}

/// The snapshots, read in document order beside the change rows.
#[derive(Default)]
struct Snapshots {
    page: std::collections::VecDeque<(String, i64, Vec<u8>)>,
    after: String,
    done: bool,
}

impl Snapshots {
    /// The snapshot of `document` (documents come in order). Snapshots of documents before
    /// it that have no change rows are problems.
    async fn of(
        &mut self,
        inspection: &mut dyn Inspection,
        document: &str,
        report: &mut Report,
    ) -> Result<Option<(i64, Vec<u8>)>, OpsError> {
        loop {
            if self.page.is_empty() && !self.done {
                let page = inspection.snapshots(&self.after, 100).await?;
                self.done = page.len() < 100;
                if let Some(last) = page.last() {
                    self.after = last.0.clone();
                }
                self.page.extend(page);
            }
            match self.page.front() {
                Some((id, _, _)) if id.as_str() < document => {
                    let id = id.clone();
                    self.page.pop_front();
                    report.problems.push(Problem::new(
                        "document",
                        &id,
                        "has a snapshot but no change rows".into(),
                    ));
                }
                Some((id, _, _)) if id == document => {
                    return Ok(self.page.pop_front().map(|(_, upto, bytes)| (upto, bytes)));
                }
                _ => return Ok(None),
            }
        }
    }
}

/// Checks one document's rows (all of one document, in `seq_no` order) and snapshot.
pub fn check_document(rows: &[ChangeRecord], snapshot: Option<(i64, Vec<u8>)>) -> Checked {
    let Some(first) = rows.first() else {
        return Checked::default();
    };
    let id = first.document_id.as_str();
    let mut checked = Checked {
        changes: rows.len() as u64,
        snapshot: snapshot.is_some(),
        problems: Vec::new(),
    };
    let mut problem = |subject: String, message: String| {
        checked
            .problems
            .push(Problem::new("change", &subject, message));
    };
    let mut parsed = Vec::with_capacity(rows.len());
    let mut all_parsed = true;
    for row in rows {
        let subject = format!("{id} row {}", row.seq_no);
        let change = match Change::from_bytes(row.bytes.clone()) {
            Ok(change) => change,
            Err(e) => {
                problem(
                    subject,
                    format!("does not parse as an Automerge change: {e}"),
                );
                all_parsed = false;
                continue;
            }
        };
        if change.hash().0.as_slice() != row.hash.as_slice() {
            problem(
                subject.clone(),
                format!(
                    "its bytes hash to {}, but it is stored as {}",
                    change.hash(),
                    hex::encode(&row.hash)
                ),
            );
        }
        let deps: Vec<u8> = change.deps().iter().flat_map(|d| d.0).collect();
        if change.actor_id().to_bytes() != row.actor.as_slice()
            || i64::try_from(change.seq()).ok() != Some(row.seq)
            || deps != row.deps
        {
            problem(
                subject,
                "its actor, sequence number or dependencies differ from the stored columns".into(),
            );
        }
        parsed.push((row.seq_no, change));
    }
    let hashes: HashSet<[u8; 32]> = parsed.iter().map(|(_, c)| c.hash().0).collect();
    // Rows that do not parse are reported already; what depends on them is not repeated.
    let unreadable: HashSet<&[u8]> = rows.iter().map(|r| r.hash.as_slice()).collect();
    let mut depended: HashSet<[u8; 32]> = HashSet::new();
    for (seq_no, change) in &parsed {
        for dep in change.deps() {
            if !hashes.contains(&dep.0) && !unreadable.contains(dep.0.as_slice()) {
                problem(
                    format!("{id} row {seq_no}"),
                    format!("depends on change {dep}, which is not stored"),
                );
                all_parsed = false;
            }
            depended.insert(dep.0);
        }
    }
    if !all_parsed {
        return checked; // loading would only repeat what is already reported
    }
    let mut expected: Vec<[u8; 32]> = hashes.difference(&depended).copied().collect();
    expected.sort_unstable();
    let (mut doc, upto) = match snapshot {
        Some((upto, bytes)) => match Automerge::load(&bytes) {
            Ok(doc) => (doc, upto),
            Err(e) => {
                checked.problems.push(Problem::new(
                    "document",
                    id,
                    format!("its snapshot does not load: {e}"),
                ));
                (Automerge::new(), 0)
            }
        },
        None => (Automerge::new(), 0),
    };
    let after: Vec<Change> = parsed
        .into_iter()
        .filter(|(seq_no, _)| *seq_no > upto)
        .map(|(_, c)| c)
        .collect();
    if let Err(e) = doc.apply_changes(after) {
        checked
            .problems
            .push(Problem::new("document", id, format!("does not load: {e}")));
        return checked;
    }
    let mut heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
    heads.sort_unstable();
    if heads != expected {
        let show = |hs: &[[u8; 32]]| hs.iter().map(hex::encode).collect::<Vec<_>>().join(",");
        checked.problems.push(Problem::new(
            "document",
            id,
            format!(
                "loads with heads [{}], but its change rows have heads [{}]",
                show(&heads),
                show(&expected)
            ),
        ));
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn rows(doc: &mut automerge::AutoCommit) -> Vec<ChangeRecord> {
        doc.get_changes(&[])
            .iter()
            .enumerate()
            .map(|(i, c)| ChangeRecord {
                document_id: "doc".into(),
                seq_no: i as i64 + 1,
                hash: c.hash().0.to_vec(),
                actor: c.actor_id().to_bytes().to_vec(),
                seq: c.seq() as i64,
                deps: c.deps().iter().flat_map(|d| d.0).collect(),
                bytes: c.raw_bytes().to_vec(),
            })
            .collect()
    }

    fn sample() -> (automerge::AutoCommit, Vec<ChangeRecord>) {
        let mut doc = automerge::AutoCommit::new();
        for i in 0..5i64 {
            doc.put(automerge::ROOT, "n", i).expect("put");
            doc.commit();
        }
        let rows = rows(&mut doc);
        (doc, rows)
    }

    #[test]
    fn a_sound_document_passes_with_or_without_a_snapshot() {
        let (mut doc, rows) = sample();
        assert!(check_document(&rows, None).problems.is_empty());
        let snapshot = doc.save();
        let checked = check_document(&rows, Some((5, snapshot)));
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert!(checked.snapshot);
    }

    #[test]
    fn a_truncated_change_row_is_found() {
        let (_, mut rows) = sample();
        let n = rows[2].bytes.len();
        rows[2].bytes.truncate(n - 3);
        let checked = check_document(&rows, None);
        assert!(
            checked.problems.iter().any(|p| p.subject == "doc row 3"),
            "{:?}",
            checked.problems
        );
    }

    #[test]
    fn a_wrong_hash_a_missing_dependency_and_a_stale_snapshot_are_found() {
        let (_, mut rows) = sample();
        rows[0].hash[0] ^= 1;
        assert!(!check_document(&rows, None).problems.is_empty());

        let (_, mut rows) = sample();
        rows.remove(1);
        let checked = check_document(&rows, None);
        assert!(
            checked
                .problems
                .iter()
                .any(|p| p.message.contains("not stored")),
            "{:?}",
            checked.problems
        );

        // A snapshot holding a change that has no row: the heads differ.
        let (mut doc, mut rows) = sample();
        let snapshot = doc.save();
        rows.pop();
        let checked = check_document(&rows, Some((4, snapshot)));
        assert!(
            checked.problems.iter().any(|p| p.message.contains("heads")),
            "{:?}",
            checked.problems
        );
    }
}
