//! PostgreSQL's `changes` table is hash-partitioned by document (migration 0011): rows stored
//! before the migration move into the partitions with their numbers, new rows continue the
//! sequence; and every query the server runs on the table (`store::change_queries`, the same
//! SQL the code runs) reads an index, and a per-document query reads one partition only,
//! checked with EXPLAIN on a populated table.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::borrow::Cow;
use std::collections::BTreeSet;

use cairn_server::store::schema::POSTGRES;
use cairn_server::store::{PostgresStore, StoreOptions, change_queries};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Executor, PgPool};

/// Stores `per_document` changes in each of `documents` documents (`doc-00000`, ...).
async fn populate(pool: &PgPool, documents: i64, per_document: i64) {
    pool.execute(AssertSqlSafe(format!(
        "INSERT INTO documents (id, owner)
             SELECT 'doc-' || lpad(d::text, 5, '0'), 'alice' FROM generate_series(0, {}) d;
         INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
             SELECT 'doc-' || lpad(d::text, 5, '0'),
                    sha256(convert_to(d || '/' || n, 'UTF8')), '\\x01', n, '', '\\x00'
             FROM generate_series(0, {}) d, generate_series(1, {per_document}) n
             ORDER BY n, d;
         ANALYZE changes;",
        documents - 1,
        documents - 1
    )))
    .await
    .unwrap();
}

#[tokio::test]
async fn rows_stored_before_the_migration_move_into_the_partitions_with_their_numbers() {
    let url = cairn_harness::postgres::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    // The schema as it was before migration 0011.
    let before = sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            POSTGRES
                .iter()
                .filter(|m| m.version < 11)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    populate(&pool, 40, 25).await;
    let rows = |pool: PgPool| async move {
        sqlx::query_as::<_, (i64, String, Vec<u8>)>(
            "SELECT seq_no, document_id, hash FROM changes ORDER BY seq_no",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let stored = rows(pool.clone()).await;
    assert_eq!(stored.len(), 1000);

    POSTGRES.run(&pool).await.unwrap();
    let (kind,): (String,) =
        sqlx::query_as("SELECT relkind::text FROM pg_class WHERE relname = 'changes'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kind, "p", "changes is a partitioned table");
    let partitions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.relname::text, (SELECT count(*) FROM changes x WHERE x.tableoid = c.oid)
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'changes'::regclass ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(partitions.len(), 16);
    assert_eq!(partitions.iter().map(|(_, n)| n).sum::<i64>(), 1000);
    assert!(
        partitions.iter().filter(|(_, n)| *n > 0).count() >= 10,
        "40 documents spread over the partitions: {partitions:?}"
    );
    assert_eq!(
        rows(pool.clone()).await,
        stored,
        "the same rows, the same numbers"
    );
    let (next,): (i64,) = sqlx::query_as(
        "INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
         VALUES ('doc-00001', sha256('new'::bytea), '\\x01', 99, '', '\\x00') RETURNING seq_no",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(next, 1001, "the sequence continues after the moved rows");
    let duplicate = sqlx::query(
        "INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
         VALUES ('doc-00001', sha256('new'::bytea), '\\x01', 99, '', '\\x00')",
    )
    .execute(&pool)
    .await;
    assert!(duplicate.is_err(), "(document, hash) is still unique");
}

/// Every node of an EXPLAIN (FORMAT JSON) plan.
fn nodes(plan: &Value, out: &mut Vec<Value>) {
    out.push(plan.clone());
    for child in plan["Plans"].as_array().into_iter().flatten() {
        nodes(child, out);
    }
}

/// One line per plan node: its type, table, index and condition.
fn summary(nodes: &[Value]) -> String {
    let field = |n: &Value, k: &str| {
        n[k].as_str()
            .map(|v| format!(" {k}={v}"))
            .unwrap_or_default()
    };
    nodes
        .iter()
        .map(|n| {
            format!(
                "  {}{}{}{}",
                n["Node Type"].as_str().unwrap_or("?"),
                field(n, "Relation Name"),
                field(n, "Index Name"),
                field(n, "Index Cond")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_query_on_changes_reads_an_index_and_one_partition_per_document() {
    let url = cairn_harness::postgres::fresh_database().await;
    let store = PostgresStore::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    populate(store.pool(), 200, 30).await;
    // Each index of the table and its partitions, and its first column: an index condition
    // that does not constrain it reads the whole index.
    let leading: std::collections::HashMap<String, String> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE c.relname LIKE 'changes%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut conn = store.pool().acquire().await.unwrap();
    // With sequential scans priced out, a plan that still scans sequentially has no index.
    conn.execute("SET enable_seqscan = off").await.unwrap();
    for query in change_queries() {
        conn.execute(AssertSqlSafe(format!("PREPARE q AS {}", query.sql)))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", query.what));
        let execute = if query.args.is_empty() {
            "EXECUTE q".to_owned()
        } else {
            format!("EXECUTE q({})", query.args.join(", "))
        };
        let (plan,): (Value,) =
            sqlx::query_as(AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {execute}")))
                .fetch_one(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", query.what));
        conn.execute("DEALLOCATE q").await.unwrap();
        let mut all = Vec::new();
        nodes(&plan[0]["Plan"], &mut all);
        let text = summary(&all);
        let conflict = plan.to_string();
        let scans: Vec<&Value> = all
            .iter()
            .filter(|n| {
                n["Relation Name"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("changes"))
            })
            .collect();
        let selective = query.sql.contains("WHERE");
        for scan in &scans {
            let kind = scan["Node Type"].as_str().unwrap_or("");
            assert_ne!(
                kind, "Seq Scan",
                "{}: a sequential scan of {}:\n{text}",
                query.what, scan["Relation Name"]
            );
        }
        for node in &all {
            // A query that selects rows finds them through an index whose first column its
            // condition constrains; one that reads everything in order reads an index in that
            // order (no sort).
            let Some(index) = node["Index Name"].as_str() else {
                assert!(
                    selective || node["Node Type"] != "Sort",
                    "{}: sorts instead of reading an index in order:\n{text}",
                    query.what
                );
                continue;
            };
            if selective {
                let first = &leading[index];
                let cond = node["Index Cond"].as_str().unwrap_or("");
                assert!(
                    cond.contains(first.as_str()),
                    "{}: {index} is read whole (its condition {cond:?} does not constrain \
                     {first}):\n{text}",
                    query.what
                );
            }
        }
        if query.sql.starts_with("INSERT") {
            assert!(
                conflict.contains("changes_document_id_hash_key"),
                "{}: the conflict check uses the unique index:\n{text}",
                query.what
            );
            continue;
        }
        assert!(!scans.is_empty(), "{}: reads changes:\n{text}", query.what);
        let partitions: BTreeSet<&str> = scans
            .iter()
            .filter_map(|n| n["Relation Name"].as_str())
            .filter(|r| r.starts_with("changes_p"))
            .collect();
        if query.one_document {
            assert_eq!(
                partitions.len(),
                1,
                "{}: one partition only, not {partitions:?}:\n{text}",
                query.what
            );
        }
    }
}
