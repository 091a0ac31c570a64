//! The schema against what operations rely on: every table and column of both migrated
//! schemas is in a backup (`ops::tables::TABLES`) unless it is deliberately left out, with the
//! kind each backend stores; `migrate` reports pending migrations and applies them.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeSet;

use cairn_server::ops::tables::{DERIVED, Kind, NOT_COPIED, TABLES};
use cairn_server::store::{PostgresStore, SchemaStore, SqliteStore, StoreOptions};

/// `(table, column)` of every column a backup copies.
fn copied() -> BTreeSet<(String, String)> {
    TABLES
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .map(|c| (t.name.to_owned(), c.name.to_owned()))
        })
        .collect()
}

fn kept(table: &str, column: &str) -> bool {
    !NOT_COPIED.contains(&table) && !DERIVED.contains(&(table, column))
}

#[tokio::test]
async fn every_postgres_column_is_backed_up_with_its_kind() {
    let url = cairn_harness::postgres::fresh_database().await;
    let store = PostgresStore::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        // Partitions (of `changes`) are backed up through their parent.
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text
         FROM information_schema.columns c
         JOIN pg_namespace n ON n.nspname = c.table_schema
         JOIN pg_class k ON k.relname = c.table_name AND k.relnamespace = n.oid
         WHERE c.table_schema = 'public' AND NOT k.relispartition",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let schema: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|(t, c, _)| kept(t, c))
        .map(|(t, c, _)| (t.clone(), c.clone()))
        .collect();
    assert_eq!(schema, copied());
    for (table, column, data_type) in rows.iter().filter(|(t, c, _)| kept(t, c)) {
        let kind = TABLES
            .iter()
            .find(|t| t.name == table)
            .and_then(|t| t.columns.iter().find(|c| c.name == column))
            .unwrap()
            .kind;
        let want = match kind {
            Kind::Text => "text",
            Kind::Int4 => "integer",
            Kind::Int8 => "bigint",
            Kind::Bytes => "bytea",
            Kind::Timestamp => "timestamp with time zone",
        };
        assert_eq!(data_type, want, "{table}.{column}");
    }
}

#[tokio::test]
async fn every_sqlite_column_is_backed_up() {
    let dir = cairn_harness::temp_dir("cairn-schema");
    let store = SqliteStore::open_in(&dir, true).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'files_fts%' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut schema = BTreeSet::new();
    for (table,) in tables {
        let columns: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(store.pool())
        .await
        .unwrap();
        for (column,) in columns {
            if kept(&table, &column) {
                schema.insert((table.clone(), column));
            }
        }
    }
    assert_eq!(schema, copied());
}

#[tokio::test]
async fn migrations_are_reported_pending_then_applied() {
    let url = cairn_harness::postgres::fresh_database().await;
    let options = StoreOptions {
        migrate: false,
        ..StoreOptions::default()
    };
    let store = PostgresStore::connect(&url, &options).await.unwrap();
    let before = store.schema_status().await.unwrap();
    assert_eq!(before.current, None);
    assert_eq!(
        before.pending.len(),
        cairn_server::store::schema::POSTGRES.iter().count()
    );
    assert!(!before.is_current());
    let after = store.migrate().await.unwrap();
    assert!(after.is_current(), "{after:?}");
    assert_eq!(store.schema_status().await.unwrap(), after);
}
