//! Every query the server runs on PostgreSQL's `changes` table (hash-partitioned by document,
//! migration 0011), with example arguments, so that `tests/partitions.rs` can EXPLAIN each
//! against a populated table and check that it reads an index, and only the one partition of
//! its document when it names one. The SQL is the same text the code runs (the same
//! constants and builders), so a query added or changed in the code is checked as it is.
//!
//! Left out on purpose: `verify`'s orphan check (`inspect::CHECKS`), an anti-join over every
//! row by design.

use super::{inspect, postgres, shared};

/// One query, as the server runs it.
#[derive(Debug, Clone)]
pub struct ChangeQuery {
    /// What it is for.
    pub what: &'static str,
    /// Its SQL (`$n` placeholders).
    pub sql: String,
    /// Example arguments, as SQL literals, one per placeholder.
    pub args: Vec<&'static str>,
    /// Whether it is about one document (and must read one partition only).
    pub one_document: bool,
}

/// The queries (see the module docs).
pub fn change_queries() -> Vec<ChangeQuery> {
    use crate::ops::backup::database::{CHANGES_NUMBERED, changes_after, changes_numbered};
    let doc = "'doc-00007'";
    let columns = "seq_no, document_id, hash, actor, seq, deps, bytes, received_at";
    vec![
        ChangeQuery {
            what: "loading a document: its changes after a snapshot",
            sql: shared::CHANGES_SINCE.into(),
            args: vec![doc, "10"],
            one_document: true,
        },
        ChangeQuery {
            what: "a document's change count (snapshot policy)",
            sql: shared::CHANGE_COUNT.into(),
            args: vec![doc],
            one_document: true,
        },
        ChangeQuery {
            what: "storing a batch of changes (conflicts by document and hash)",
            sql: postgres::INSERT_CHANGES.into(),
            args: vec![
                doc,
                "ARRAY[decode(repeat('ab', 32), 'hex')]",
                "ARRAY['\\x01'::bytea]",
                "ARRAY[1::int8]",
                "ARRAY[''::bytea]",
                "ARRAY['\\x00'::bytea]",
            ],
            one_document: true,
        },
        ChangeQuery {
            what: "verify: the next page of changes in (document, seq_no) order",
            sql: inspect::CHANGES.into(),
            args: vec![doc, "0", "500"],
            one_document: false,
        },
        ChangeQuery {
            what: "backup: the rows of some numbers",
            sql: CHANGES_NUMBERED.into(),
            args: vec!["ARRAY[3, 700, 1500]::int8[]"],
            one_document: false,
        },
        ChangeQuery {
            what: "backup: the rows after the earlier backup's newest",
            sql: changes_after(columns, 2500),
            args: vec![],
            one_document: false,
        },
        ChangeQuery {
            what: "backup: rows the earlier backup missed",
            sql: changes_numbered(columns, "5, 77, 1200"),
            args: vec![],
            one_document: false,
        },
        ChangeQuery {
            what: "backup: every seq_no in order",
            sql: crate::ops::rows::ALL_SEQ_NOS.into(),
            args: vec![],
            one_document: false,
        },
    ]
}
