//! Scale-out (`scripts/bench scale`), against the real server binary on PostgreSQL (fsync on)
//! and the real S3 test peer (s3s-fs):
//!
//! 1. A 1 GiB file uploaded and downloaded through one server with `--blockstore s3://…` and
//!    with `--blockstore fs`, beside the raw S3 peer: the same bytes PUT and GET with the same
//!    client (object_store), as one multipart object and as 4,096 block-sized objects with 8
//!    in flight (the server's access pattern). MiB/s and the server's peak RSS.
//! 2. Live-sync fan-out (the `live_sync` load, `CAIRN_BENCH_SCALE_CLIENTS` typists, 150 by
//!    default) with the clients connecting through nginx to 1, 2 and 3 replicas that share
//!    PostgreSQL and the bucket: delivery p50/p99, each replica's CPU, and how many database
//!    backends wait for a lock on average (two replicas writing one document).
//!
//! Everything shares the machine's cores (2 here): the replicas, PostgreSQL, nginx, the S3
//! peer and the load generator.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

mod big_file;
mod fanout;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cairn_core::content::{ImportOptions, Importer};
use cairn_harness::nginx::Nginx;
use cairn_harness::postgres;
use cairn_harness::s3::{ACCESS_KEY, BUCKET, S3Peer, SECRET_KEY};
use cairn_harness::server::ServerProcess;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use support::{start_server_in, token};

const MIB: f64 = 1024.0 * 1024.0;
const SIZE: usize = 1 << 30;

fn write_input(path: &Path) -> String {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut importer = Importer::new(ImportOptions::default());
    let mut blocks = Vec::new();
    for n in 0..(SIZE >> 20) {
        let piece = cairn_harness::pseudo_random_bytes(1 << 20, 1 + n as u64);
        importer.write(&piece, &mut blocks);
        blocks.clear();
        file.write_all(&piece).unwrap();
    }
    file.flush().unwrap();
    importer.finish(&mut blocks).root.to_string()
}

struct Transfer {
    label: String,
    up: f64,
    down: f64,
    rss_up: Option<f64>,
    rss_down: Option<f64>,
}

/// A 1 GiB file up and down through `server`.
async fn through_server(label: &str, server: &ServerProcess, input: &Path, cid: &str) -> Transfer {
    let trip = big_file::round_trip(server, &token("bench"), input, cid, SIZE).await;
    Transfer {
        label: label.into(),
        up: SIZE as f64 / MIB / trip.up_seconds,
        down: SIZE as f64 / MIB / trip.down_seconds,
        rss_up: Some(trip.rss_up),
        rss_down: Some(trip.rss_down),
    }
}

fn s3_client(peer: &S3Peer) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(&peer.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap(),
    )
}

/// The same bytes straight to the peer: one multipart object, streamed both ways.
async fn raw_one_object(store: &Arc<dyn ObjectStore>, input: &Path) -> Transfer {
    let key = Key::from("raw/one-object");
    let started = Instant::now();
    let upload = store.put_multipart(&key).await.unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 16 << 20);
    let mut file = tokio::fs::File::open(input).await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut file, &mut buf)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        writer.wait_for_capacity(8).await.unwrap();
        writer.write(&buf[..n]);
    }
    writer.finish().await.unwrap();
    let up = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut stream = store.get(&key).await.unwrap().into_stream();
    let mut received = 0;
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len();
    }
    let down = started.elapsed().as_secs_f64();
    assert_eq!(received, SIZE);
    store.delete(&key).await.unwrap();
    Transfer {
        label: "raw S3: one object (multipart, 16 MiB parts)".into(),
        up: SIZE as f64 / MIB / up,
        down: SIZE as f64 / MIB / down,
        rss_up: None,
        rss_down: None,
    }
}

/// The same bytes as 256 KiB objects, 8 requests in flight (as the server stores blocks).
async fn raw_blocks(store: &Arc<dyn ObjectStore>, input: &Path) -> Transfer {
    let data = Bytes::from(std::fs::read(input).unwrap());
    let chunk = 256 * 1024;
    let keys: Vec<(Key, Bytes)> = (0..SIZE / chunk)
        .map(|i| {
            (
                Key::from(format!("raw/blocks/{i:06}")),
                data.slice(i * chunk..(i + 1) * chunk),
            )
        })
        .collect();
    let started = Instant::now();
    futures::stream::iter(keys.iter().cloned())
        .map(|(key, bytes)| {
            let store = store.clone();
            async move { store.put(&key, PutPayload::from(bytes)).await }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let up = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let received: usize = futures::stream::iter(keys.iter().cloned())
        .map(|(key, _)| {
            let store = store.clone();
            async move { store.get(&key).await.unwrap().bytes().await.unwrap().len() }
        })
        .buffered(8)
        .fold(0, |sum, n| async move { sum + n })
        .await;
    let down = started.elapsed().as_secs_f64();
    assert_eq!(received, SIZE);
    let listed = futures::stream::iter(keys.into_iter().map(|(k, _)| Ok(k))).boxed();
    store
        .delete_stream(listed)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    Transfer {
        label: "raw S3: 4,096 objects of 256 KiB, 8 in flight".into(),
        up: SIZE as f64 / MIB / up,
        down: SIZE as f64 / MIB / down,
        rss_up: None,
        rss_down: None,
    }
}

fn serve_args(peer: Option<&S3Peer>) -> Vec<String> {
    let mut args: Vec<String> = [
        "--max-file-bytes",
        "2147483648",
        "--rate-limit-user",
        "0",
        "--rate-limit-ip",
        "0",
        "--max-connections-per-user",
        "16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(peer) = peer {
        args.extend(peer.serve_args("bench"));
    }
    args
}

fn start(name: &str, database: &str, args: &[String]) -> ServerProcess {
    start_in(
        name,
        database,
        &cairn_harness::temp_dir("cairn-bench-scale"),
        args,
    )
}

fn start_in(name: &str, database: &str, data: &Path, args: &[String]) -> ServerProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_server_in(name, Some(database), data, &args)
}

#[tokio::main]
async fn main() {
    let only = std::env::var("CAIRN_BENCH_SCALE_ONLY").unwrap_or_default();
    let peer = S3Peer::start();
    if only != "fanout" {
        files(&peer).await;
    }
    if only != "files" {
        fan_out_over_replicas(&peer).await;
    }
    let root = peer.root.clone();
    drop(peer);
    if let Some(dir) = root.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Part 1 (see the module docs).
async fn files(peer: &S3Peer) {
    let dir = cairn_harness::temp_dir("cairn-bench-scale");
    let input = dir.join("input.bin");
    let cid = write_input(&input);
    let mut rows = Vec::new();
    {
        let server = start(
            "scale-s3",
            &postgres::durable().fresh_database().await,
            &serve_args(Some(peer)),
        );
        rows.push(
            through_server(
                "cairn, --blockstore s3 (s3s-fs peer)",
                &server,
                &input,
                &cid,
            )
            .await,
        );
    }
    let _ = std::fs::remove_dir_all(peer.root.join(BUCKET).join("bench"));
    {
        let data = dir.join("fs-server");
        let server = start_in(
            "scale-fs",
            &postgres::durable().fresh_database().await,
            &data,
            &serve_args(None),
        );
        rows.push(
            through_server("cairn, --blockstore fs (local disk)", &server, &input, &cid).await,
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&data); // its 1 GiB of blocks
    }
    let store = s3_client(peer);
    rows.push(raw_one_object(&store, &input).await);
    rows.push(raw_blocks(&store, &input).await);
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "A 1 GiB file through one server (PostgreSQL, loopback, {} cores shared with the S3 peer)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<50} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9}",
        "path", "up MiB/s", "down", "RSS up MB", "RSS down", "up/raw", "down/raw"
    );
    let raw = &rows[3];
    for row in &rows {
        let rss = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        println!(
            "{:<50} {:>9.0} {:>9.0} {:>11} {:>11} {:>8.2}x {:>8.2}x",
            row.label,
            row.up,
            row.down,
            rss(row.rss_up),
            rss(row.rss_down),
            row.up / raw.up,
            row.down / raw.down
        );
    }
}

/// Part 2 (see the module docs), for each client count of `CAIRN_BENCH_SCALE_CLIENTS`
/// (`60,150` by default).
async fn fan_out_over_replicas(peer: &S3Peer) {
    let counts: Vec<usize> = std::env::var("CAIRN_BENCH_SCALE_CLIENTS")
        .unwrap_or_else(|_| "60,150".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let mut round = 0;
    for clients in counts {
        round = fan_out_table(peer, clients, round).await;
    }
}

/// One table: `clients` typists over 1, 2 and 3 replicas; returns the next round number.
async fn fan_out_table(peer: &S3Peer, clients: usize, mut round: usize) -> usize {
    println!();
    println!(
        "WebSocket fan-out through nginx: {clients} clients, {} shared documents, {} changes/s each for {} s",
        fanout::DOCUMENTS,
        fanout::CHANGES_PER_SECOND,
        fanout::TYPING.as_secs()
    );
    println!(
        "{:>8} {:>9} {:>12} {:>8} {:>8} {:>8} {:>7} {:>7} {:>20} {:>9} {:>10}",
        "replicas",
        "changes/s",
        "deliveries",
        "p50 ms",
        "p99 ms",
        "max ms",
        "pg",
        "load",
        "CPU per replica",
        "p99/1",
        "lock waits"
    );
    let mut one = None;
    for replicas in [1usize, 2, 3] {
        round += 1;
        let database = postgres::durable().fresh_database().await;
        let servers: Vec<ServerProcess> = (0..replicas)
            .map(|i| {
                start(
                    &format!("scale-fanout-{replicas}-{i}"),
                    &database,
                    &serve_args(Some(peer)),
                )
            })
            .collect();
        let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
        let nginx = Nginx::start(&urls);
        let refs: Vec<&ServerProcess> = servers.iter().collect();
        let waits = LockWaits::start(&database).await;
        let run = fanout::fan_out(&nginx.url, &refs, round, clients).await;
        let waits = waits.mean().await;
        let p99_one = *one.get_or_insert(run.p99_ms);
        let cpus: Vec<String> = run
            .server_cpu
            .iter()
            .map(|c| format!("{:.0}%", c * 100.0))
            .collect();
        println!(
            "{:>8} {:>9.0} {:>12} {:>8.1} {:>8.1} {:>8.1} {:>6.0}% {:>6.0}% {:>20} {:>8.2}x {:>10.2}",
            replicas,
            run.rate,
            format!("{}/{}", run.delivered, run.expected),
            run.p50_ms,
            run.p99_ms,
            run.max_ms,
            run.pg_cpu * 100.0,
            run.load_cpu * 100.0,
            cpus.join(" "),
            run.p99_ms / p99_one,
            waits
        );
    }
    round
}

/// Samples, every 20 ms, how many of the database's backends wait for a lock (a document's
/// row lock: two replicas writing one document): the profile of the fan-out's tail.
struct LockWaits {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl LockWaits {
    async fn start(database: &str) -> Self {
        let pool = sqlx::PgPool::connect(database).await.unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut samples, mut waiting) = (0u64, 0u64);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && samples < 10_000 {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                samples += 1;
                waiting += n.unsigned_abs();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            (samples, waiting)
        });
        Self { stop, task }
    }

    /// Mean backends waiting for a lock over the samples.
    async fn mean(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (samples, waiting) = self.task.await.unwrap();
        waiting as f64 / samples.max(1) as f64
    }
}
