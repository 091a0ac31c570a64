//! Changes per second committed to PostgreSQL through `POST /v1/sync`, in batches of 1, 100
//! and 1000 changes per request, beside the same PostgreSQL's single-row insert rate
//! (pgbench, one client, autocommit) and its `COPY` rate. Production durability: `fsync` and
//! `synchronous_commit` on. One client, sequential requests, loopback.
//!
//! Run: `scripts/bench` (or `cargo bench -p cairn-e2e --bench sync_throughput`).

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the report

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::protocol::{DocRequest, Entry, MEDIA_TYPE, SyncRequest};
use cairn_core::{DocumentId, Message, OpId};
use cairn_harness::postgres;
use cairn_harness::server::ServerProcess;
use sqlx::Connection;

const SECRET: &str = "a benchmark secret, long enough for HS256!";

fn token() -> String {
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let claims = serde_json::json!({ "sub": "bench", "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// `count` small changes to one document (each sets one key to a short string).
fn changes(count: usize) -> (AutoCommit, Vec<Vec<u8>>) {
    let mut doc = AutoCommit::new();
    for i in 0..count {
        doc.put(
            automerge::ROOT,
            format!("k{}", i % 64),
            format!("value {i}"),
        )
        .unwrap();
        doc.commit();
    }
    let bytes = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    (doc, bytes)
}

/// Sends `all` in requests of `batch` changes; returns changes per second.
async fn sync_rate(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    batch: usize,
    all: &[Vec<u8>],
) -> f64 {
    let document = DocumentId::from_random_bytes([batch as u8; 16]);
    let started = Instant::now();
    for (i, chunk) in all.chunks(batch).enumerate() {
        let request = SyncRequest {
            request: i as u64,
            documents: vec![DocRequest {
                document,
                heads: vec![],
                entries: vec![Entry {
                    op: OpId::from_bytes([
                        (i % 251) as u8,
                        (i / 251) as u8,
                        batch as u8,
                        1,
                        2,
                        3,
                        4,
                        5,
                        6,
                        7,
                        8,
                        9,
                        10,
                        11,
                        12,
                        13,
                    ]),
                    changes: chunk.to_vec(),
                }],
            }],
        };
        let response = client
            .post(format!("{base}v1/sync"))
            .bearer_auth(token)
            .header("content-type", MEDIA_TYPE)
            .body(Message::SyncRequest(request).encode())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
        response.bytes().await.unwrap();
    }
    all.len() as f64 / started.elapsed().as_secs_f64()
}

/// pgbench: single-row autocommit inserts, one client, `seconds` long; returns rows/s.
fn pgbench_rate(local: &postgres::Local, database: &str, seconds: u32) -> f64 {
    let script = std::env::temp_dir().join(format!("cairn-bench-{}.sql", std::process::id()));
    std::fs::write(&script, "INSERT INTO bench_rows (payload) VALUES ('\\x000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f'::bytea);\n").unwrap();
    let out = Command::new(local.bin_dir.join("pgbench"))
        .args(["-n", "-c", "1", "-j", "1", "-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg("-h")
        .arg(&local.socket_dir)
        .args(["-U", "postgres", database])
        .output()
        .expect("pgbench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("pgbench prints tps")
}

/// `COPY ... FROM STDIN` of `rows` rows; returns rows/s.
async fn copy_rate(url: &str, rows: usize) -> f64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut data = Vec::with_capacity(rows * 70);
    for _ in 0..rows {
        data.extend_from_slice(
            b"\\\\x000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n",
        );
    }
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY bench_copy (payload) FROM STDIN")
        .await
        .unwrap();
    copy.send(data).await.unwrap();
    copy.finish().await.unwrap();
    rows as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let pg = postgres::durable();
    let local = pg.local.clone().expect("a local cluster");
    let baseline_url = pg.fresh_database().await;
    let baseline_db = baseline_url
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    {
        let mut conn = sqlx::PgConnection::connect(&baseline_url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE bench_rows (id BIGSERIAL PRIMARY KEY, payload BYTEA NOT NULL);
             CREATE TABLE bench_copy (id BIGSERIAL PRIMARY KEY, payload BYTEA NOT NULL);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let insert = pgbench_rate(&local, &baseline_db, 5);
    let copy = copy_rate(&baseline_url, 500_000).await;

    let server_db = pg.fresh_database().await;
    let log = cairn_harness::artifacts_dir("bench").join("server.log");
    let data_dir = cairn_harness::temp_dir("cairn-bench");
    let bin = Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server"));
    let data = data_dir.display().to_string();
    let server = ServerProcess::start(
        bin,
        &[
            "--database-url",
            &server_db,
            "--jwt-secret",
            SECRET,
            "--data-dir",
            &data,
            // Throughput, not the limits, is measured.
            "--rate-limit-user",
            "0",
            "--rate-limit-ip",
            "0",
        ],
        log,
    );
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let token = token();
    let mut rows = Vec::new();
    for (batch, total) in [(1usize, 2_000usize), (100, 20_000), (1000, 50_000)] {
        let (_, all) = changes(total);
        // Warm up the connection and the server's cache on another document.
        sync_rate(&client, &server.url, &token, batch, &all[..batch]).await;
        let rate = sync_rate(&client, &server.url, &token, batch, &all).await;
        rows.push((batch, total, rate));
    }
    drop(server);

    println!();
    println!(
        "Changes committed per second (PostgreSQL 15, fsync on, 1 client, loopback, {} cores)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<34} {:>12} {:>12} {:>14}",
        "path", "changes", "per second", "vs pg insert"
    );
    for (batch, total, rate) in &rows {
        println!(
            "{:<34} {:>12} {:>12.0} {:>13.2}x",
            format!("/v1/sync, {batch} change(s)/request"),
            total,
            rate,
            rate / insert
        );
    }
    println!(
        "{:<34} {:>12} {:>12.0} {:>13.2}x",
        "pgbench single-row INSERT", "5 s", insert, 1.0
    );
    println!(
        "{:<34} {:>12} {:>12.0} {:>13.2}x",
        "COPY FROM STDIN",
        500_000,
        copy,
        copy / insert
    );
}
