//! Whole tables moved between the backends, row by row as [`Value`]s: out of PostgreSQL with
//! binary `COPY ... TO STDOUT` (inside the caller's snapshot transaction), into PostgreSQL
//! with binary `COPY ... FROM STDIN` (inside the caller's restore transaction), and in and out
//! of SQLite with batched statements. Memory holds one batch, never a table.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Row};

use super::OpsError;
use super::pgcopy::{Decoder, Encoder};
use super::progress::Progress;
use super::tables::{Kind, TABLES, Table, Value, format_time, parse_time};

/// Rows per SQLite `INSERT` (SQLite allows 32,766 bound values per statement).
fn rows_per_insert(table: &Table) -> usize {
    (30_000 / table.columns.len()).min(500)
}

/// Rows per table, by name.
pub type Counts = BTreeMap<String, u64>;

/// Rows in each table of a SQLite database with Cairn's schema; a table that is missing
/// counts as empty when `missing_ok`.
pub async fn count_sqlite(pool: &sqlx::SqlitePool, missing_ok: bool) -> Result<Counts, OpsError> {
    let mut counts = Counts::new();
    for table in TABLES {
        let sql = format!("SELECT count(*) FROM {}", table.name);
        let n = match sqlx::query_as::<_, (i64,)>(AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
        {
            Ok((n,)) => n.unsigned_abs(),
            Err(_) if missing_ok => 0,
            Err(e) => return Err(e.into()),
        };
        counts.insert(table.name.to_owned(), n);
    }
    Ok(counts)
}

/// Rows in each table of a PostgreSQL database with Cairn's schema (in `conn`'s transaction,
/// if it has one).
pub async fn count_postgres(conn: &mut PgConnection) -> Result<Counts, OpsError> {
    let mut counts = Counts::new();
    for table in TABLES {
        let sql = format!("SELECT count(*) FROM {}", table.name);
        let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?;
        counts.insert(table.name.to_owned(), n.unsigned_abs());
    }
    Ok(counts)
}

/// Copies every table from PostgreSQL (`from`, in a snapshot transaction) into an empty
/// SQLite database with Cairn's schema (`to`, in a transaction).
pub async fn postgres_to_sqlite(
    from: &mut PgConnection,
    to: &mut SqliteConnection,
    progress: &Progress,
) -> Result<Counts, OpsError> {
    let mut counts = Counts::new();
    for table in TABLES {
        let rows = copy_select(from, to, table, &table.select_all(), progress).await?;
        counts.insert(table.name.to_owned(), rows);
    }
    Ok(counts)
}

/// Copies the rows PostgreSQL's `select` returns (`table`'s columns, in order) into
/// `table` of a SQLite database; returns how many.
pub async fn copy_select(
    from: &mut PgConnection,
    to: &mut SqliteConnection,
    table: &Table,
    select: &str,
    progress: &Progress,
) -> Result<u64, OpsError> {
    let sql = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
    let mut stream = from.copy_out_raw(&sql).await?;
    let mut decoder = Decoder::new(table.kinds());
    let mut batch = Vec::new();
    let mut rows = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        decoder.feed(&chunk);
        while let Some(row) = decoder.next_row()? {
            batch.push(row);
            if batch.len() == rows_per_insert(table) {
                rows += insert_sqlite(to, table, &mut batch).await?;
                progress.inc(rows_per_insert(table) as u64);
            }
        }
    }
    if !decoder.ended() {
        return Err(OpsError::Invalid(format!(
            "the COPY of {} ended early",
            table.name
        )));
    }
    let last = batch.len() as u64;
    rows += insert_sqlite(to, table, &mut batch).await?;
    progress.inc(last);
    Ok(rows)
}

/// Every change row's `seq_no`, in order.
pub(crate) const ALL_SEQ_NOS: &str = "SELECT seq_no FROM changes ORDER BY seq_no";

/// The `seq_no` of every change row in PostgreSQL, in order.
pub async fn postgres_seq_nos(from: &mut PgConnection) -> Result<Vec<i64>, OpsError> {
    let sql = format!("COPY ({ALL_SEQ_NOS}) TO STDOUT (FORMAT binary)");
    let mut stream = from.copy_out_raw(&sql).await?;
    let mut decoder = Decoder::new(vec![Kind::Int8]);
    let mut seqs = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        decoder.feed(&chunk);
        while let Some(row) = decoder.next_row()? {
            if let [Value::Int(n)] = row.as_slice() {
                seqs.push(*n);
            }
        }
    }
    Ok(seqs)
}

/// The `seq_no` of every change row of a SQLite database, in order. Read as one text
/// SQLite builds itself: a row at a time through the driver costs seconds per million.
pub async fn sqlite_seq_nos(to: &mut SqliteConnection) -> Result<Vec<i64>, OpsError> {
    let (text,): (Option<String>,) = sqlx::query_as("SELECT group_concat(seq_no) FROM changes")
        .fetch_one(&mut *to)
        .await?;
    let mut seqs = text
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse::<i64>()
                .map_err(|_| OpsError::Invalid(format!("not a seq_no: {n:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    seqs.sort_unstable();
    Ok(seqs)
}

/// Inserts `batch` (emptying it) into `table`; returns how many rows.
async fn insert_sqlite(
    to: &mut SqliteConnection,
    table: &Table,
    batch: &mut Vec<Vec<Value>>,
) -> Result<u64, OpsError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let one = format!("({})", vec!["?"; table.columns.len()].join(", "));
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        table.column_list(),
        vec![one; batch.len()].join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in batch.drain(..) {
        for value in row {
            query = match value {
                Value::Null => query.bind(None::<i64>),
                Value::Int(n) => query.bind(n),
                Value::Text(s) => query.bind(s),
                Value::Bytes(b) => query.bind(b),
                Value::Time(t) => query.bind(format_time(t)),
            };
        }
    }
    Ok(query.execute(&mut *to).await?.rows_affected())
}

/// One SQLite value as its column's kind.
fn sqlite_value(row: &SqliteRow, i: usize, kind: Kind) -> Result<Value, OpsError> {
    let value = match kind {
        Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
        Kind::Int4 | Kind::Int8 => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Bytes),
        Kind::Timestamp => match row.try_get::<Option<String>, _>(i)? {
            Some(text) => Some(Value::Time(
                parse_time(&text).map_err(|e| OpsError::Invalid(e.to_string()))?,
            )),
            None => None,
        },
    };
    Ok(value.unwrap_or(Value::Null))
}

/// Copies every table from a SQLite database with Cairn's schema (`from`) into PostgreSQL
/// (`to`, in the caller's transaction, into empty tables), then moves the change sequence
/// past the restored rows.
pub async fn sqlite_to_postgres(
    from: &mut SqliteConnection,
    to: &mut PgConnection,
    progress: &Progress,
) -> Result<Counts, OpsError> {
    let mut counts = Counts::new();
    for table in TABLES {
        let kinds = table.kinds();
        let copy = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            table.name,
            table.column_list()
        );
        let mut sink = to.copy_in_raw(&copy).await?;
        let mut encoder = Encoder::new(kinds.clone());
        let mut rows = sqlx::query(AssertSqlSafe(table.select_all())).fetch(&mut *from);
        let (mut n, mut reported) = (0u64, 0u64);
        let result: Result<(), OpsError> = async {
            while let Some(row) = rows.try_next().await? {
                let values = kinds
                    .iter()
                    .enumerate()
                    .map(|(i, kind)| sqlite_value(&row, i, *kind))
                    .collect::<Result<Vec<_>, _>>()?;
                encoder.row(&values)?;
                n += 1;
                if encoder.len() >= 1 << 20 {
                    sink.send(encoder.take()).await?;
                    progress.inc(n - reported);
                    reported = n;
                }
            }
            Ok(())
        }
        .await;
        drop(rows);
        if let Err(e) = result {
            let _ = sink.abort(e.to_string()).await;
            return Err(e);
        }
        sink.send(encoder.finish()).await?;
        let copied = sink.finish().await?;
        progress.inc(n - reported);
        counts.insert(table.name.to_owned(), copied);
    }
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('changes', 'seq_no'),
                       COALESCE((SELECT max(seq_no) FROM changes), 1),
                       (SELECT max(seq_no) FROM changes) IS NOT NULL)",
    )
    .execute(&mut *to)
    .await?;
    Ok(counts)
}
