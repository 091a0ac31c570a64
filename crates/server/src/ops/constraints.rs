//! Restoring into PostgreSQL the way `pg_restore` does: the restored tables' keys, foreign
//! keys and indexes are dropped before their rows are copied and made again afterwards, so
//! each is built (and checked) in one pass instead of row by row. All of it happens in the
//! restore's transaction: a failure leaves the schema as it was. The definitions are read
//! from the catalog, so whatever the migrations made is made again.

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

use super::OpsError;
use super::tables::TABLES;

/// What was dropped, to make again.
#[derive(Debug, Default)]
pub struct Deferred {
    /// `(table, name, definition)`: primary keys and unique constraints.
    keys: Vec<(String, String, String)>,
    /// `(table, name, definition)`.
    foreign_keys: Vec<(String, String, String)>,
    /// `CREATE INDEX` statements.
    indexes: Vec<String>,
}

/// Drops the keys, foreign keys and other indexes of the restored tables.
pub async fn defer(conn: &mut PgConnection) -> Result<Deferred, OpsError> {
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let constraints: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT t.relname::text, c.conname::text, pg_get_constraintdef(c.oid), c.contype::text
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = current_schema() AND c.contype IN ('p', 'u', 'f')
           AND t.relname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexname::text, i.indexdef FROM pg_indexes i
         WHERE i.schemaname = current_schema() AND i.tablename = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let mut deferred = Deferred::default();
    for (table, name, definition, kind) in constraints {
        let entry = (table, name, definition);
        if kind == "f" {
            deferred.foreign_keys.push(entry);
        } else {
            deferred.keys.push(entry);
        }
    }
    for (table, name, _) in deferred.foreign_keys.iter().chain(&deferred.keys) {
        let (table, name) = (quote(table), quote(name));
        execute(conn, format!("ALTER TABLE {table} DROP CONSTRAINT {name}")).await?;
    }
    for (name, definition) in indexes {
        execute(conn, format!("DROP INDEX {}", quote(&name))).await?;
        // A partitioned table's index reads `ON ONLY <table>` in the catalog (made on the
        // parent alone, partitions attached later); made again, it is for every partition.
        deferred
            .indexes
            .push(definition.replacen(" ON ONLY ", " ON ", 1));
    }
    Ok(deferred)
}

/// Makes again what [`defer`] dropped (keys, then indexes, then foreign keys, which need the
/// keys they point at).
pub async fn restore(conn: &mut PgConnection, deferred: Deferred) -> Result<(), OpsError> {
    let add = |(table, name, definition): &(String, String, String)| {
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {definition}",
            quote(table),
            quote(name)
        )
    };
    for key in &deferred.keys {
        execute(conn, add(key)).await?;
    }
    for definition in deferred.indexes {
        execute(conn, definition).await?;
    }
    for foreign_key in &deferred.foreign_keys {
        execute(conn, add(foreign_key)).await?;
    }
    Ok(())
}

/// A quoted identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn execute(conn: &mut PgConnection, sql: String) -> Result<(), OpsError> {
    sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    Ok(())
}
