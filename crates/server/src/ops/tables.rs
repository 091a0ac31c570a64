//! The tables a backup holds, their columns, and the values in them, in one list both
//! backends read: a backup copies exactly these (in this order, so foreign keys hold as rows
//! arrive), and a test checks the list against both migrated schemas, so a new column cannot
//! be silently left out of backups.
//!
//! Not copied: what a backend derives itself (PostgreSQL's `files.search` tsvector, SQLite's
//! `files_fts`), the migrations table, and `maintenance_leases` (a running backup's lease).

/// How a column's values are stored (the same meaning in both backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// PostgreSQL `INTEGER` (SQLite `INTEGER`).
    Int4,
    /// PostgreSQL `BIGINT` (SQLite `INTEGER`).
    Int8,
    /// PostgreSQL `BYTEA` (SQLite `BLOB`).
    Bytes,
    /// PostgreSQL `TIMESTAMPTZ`; SQLite `TEXT` in ISO 8601 UTC.
    Timestamp,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

/// One table, its columns, and the order its rows are copied in (its primary key).
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub order_by: &'static str,
}

impl Table {
    /// `a, b, c`.
    pub fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        names.join(", ")
    }

    /// Every row, every copied column, in copy order (the same SQL in both backends).
    pub fn select_all(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.column_list(),
            self.name,
            self.order_by
        )
    }

    pub fn kinds(&self) -> Vec<Kind> {
        self.columns.iter().map(|c| c.kind).collect()
    }
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

use Kind::{Bytes, Int4, Int8, Text, Timestamp};

/// Every table a backup holds, parents before children.
pub static TABLES: &[Table] = &[
    Table {
        name: "documents",
        columns: &[
            col("id", Text),
            col("created_at", Timestamp),
            col("owner", Text),
        ],
        order_by: "id",
    },
    Table {
        name: "changes",
        columns: &[
            col("seq_no", Int8),
            col("document_id", Text),
            col("hash", Bytes),
            col("actor", Bytes),
            col("seq", Int8),
            col("deps", Bytes),
            col("bytes", Bytes),
            col("received_at", Timestamp),
        ],
        order_by: "seq_no",
    },
    Table {
        name: "document_members",
        columns: &[
            col("document_id", Text),
            col("user_id", Text),
            col("role", Text),
            col("granted_at", Timestamp),
        ],
        order_by: "document_id, user_id",
    },
    Table {
        name: "snapshots",
        columns: &[
            col("document_id", Text),
            col("upto_seq_no", Int8),
            col("bytes", Bytes),
            col("created_at", Timestamp),
        ],
        order_by: "document_id",
    },
    Table {
        name: "file_contents",
        columns: &[
            col("cid", Text),
            col("size", Int8),
            col("dag_size", Int8),
            col("created_ms", Int8),
        ],
        order_by: "cid",
    },
    Table {
        name: "files",
        columns: &[
            col("owner", Text),
            col("cid", Text),
            col("name", Text),
            col("content_type", Text),
            col("created_ms", Int8),
            col("metadata", Text),
            col("search_text", Text),
        ],
        order_by: "owner, cid",
    },
    Table {
        name: "pins",
        columns: &[
            col("cid", Text),
            col("status", Text),
            col("attempts", Int4),
            col("next_attempt_ms", Int8),
            col("lease_until_ms", Int8),
            col("last_error", Text),
            col("updated_ms", Int8),
            col("copies", Text),
        ],
        order_by: "cid",
    },
    Table {
        name: "uploads",
        columns: &[
            col("id", Text),
            col("owner", Text),
            col("cid", Text),
            col("size", Int8),
            col("received", Int8),
            col("name", Text),
            col("content_type", Text),
            col("metadata", Text),
            col("created_ms", Int8),
            col("updated_ms", Int8),
        ],
        order_by: "id",
    },
    Table {
        name: "file_refs",
        columns: &[
            col("document_id", Text),
            col("cid", Text),
            col("added_by", Text),
            col("added_ms", Int8),
        ],
        order_by: "document_id, cid",
    },
    Table {
        name: "content_blocks",
        columns: &[
            col("content_cid", Text),
            col("digest", Text),
            col("claimed_ms", Int8),
        ],
        order_by: "content_cid, digest",
    },
    Table {
        name: "gc_candidates",
        columns: &[col("cid", Text), col("since_ms", Int8)],
        order_by: "cid",
    },
    Table {
        name: "block_gc",
        columns: &[col("digest", Text), col("since_ms", Int8)],
        order_by: "digest",
    },
    Table {
        name: "unpins",
        columns: &[
            col("cid", Text),
            col("attempts", Int4),
            col("next_attempt_ms", Int8),
            col("last_error", Text),
        ],
        order_by: "cid",
    },
];

/// Tables (of either schema) that are deliberately not in [`TABLES`].
pub const NOT_COPIED: &[&str] = &["_sqlx_migrations", "maintenance_leases", "sqlite_sequence"];

/// Columns that are deliberately not copied: `(table, column)`, derived by the backend.
pub const DERIVED: &[(&str, &str)] = &[("files", "search")];

/// A table by name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// Microseconds since the Unix epoch, UTC.
    Time(i64),
}

/// Why a stored value could not be read as its column's kind.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2026-12-03T13:10:44.123456Z` (SQLite's stored form, with microseconds).
pub fn format_time(micros: i64) -> String {
    let (days, rem) = (
        micros.div_euclid(MICROS_PER_DAY),
        micros.rem_euclid(MICROS_PER_DAY),
    );
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000
    )
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z]` (UTC), as SQLite's `strftime` writes it.
pub fn parse_time(text: &str) -> Result<i64, ValueError> {
    let bad = || ValueError(format!("not a timestamp: {text:?}"));
    let t = text.trim().trim_end_matches('Z');
    let (date, time) = t.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let mut ymd = date.splitn(3, '-');
    let (y, mo, d) = (
        num(ymd.next().ok_or_else(bad)?)?,
        num(ymd.next().ok_or_else(bad)?)?,
        num(ymd.next().ok_or_else(bad)?)?,
    );
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.splitn(3, ':');
    let (h, mi, s) = (
        num(parts.next().ok_or_else(bad)?)?,
        num(parts.next().ok_or_else(bad)?)?,
        num(parts.next().ok_or_else(bad)?)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits: String = fraction.chars().chain("000000".chars()).take(6).collect();
    let micros = num(&digits)?;
    Ok(days_from_civil(y, mo, d) * MICROS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn times_round_trip() {
        for text in [
            "1970-01-01T00:00:00.000000Z",
            "2000-02-29T23:59:59.999999Z",
            "2026-12-03T13:10:44.123456Z",
            "1969-12-31T23:59:59.500000Z",
        ] {
            assert_eq!(format_time(parse_time(text).unwrap()), text);
        }
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1_500_000);
        assert_eq!(
            parse_time("2026-12-03 13:10:44").unwrap(),
            parse_time("2026-12-03T13:10:44.000Z").unwrap()
        );
        assert_eq!(
            parse_time("2000-01-01T00:00:00Z").unwrap(),
            946_684_800_000_000
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "yesterday",
            "2026-01-01T00:00:00.x",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
