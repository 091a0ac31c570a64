//! Content addressing and file transfer, printed as tables:
//!
//! 1. Import throughput (read + chunk + sha2-256 + DAG) of a 256 MiB file: Cairn's importer
//!    into memory and into the disk blockstore (staged, fsynced, committed: the upload path),
//!    beside `ipfs-unixfs-importer` (npm, Node) on the same file in the same run, and
//!    `openssl speed -evp sha256` at 256 KiB blocks as the ceiling.
//! 2. The server's RSS while a 1 GiB file is uploaded to it and downloaded from it (real
//!    server binary, embedded SQLite default, loopback): it must stay flat.
//!
//! Run: `scripts/bench content` (or `cargo bench -p cairn-e2e --bench content`).

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the report

mod big_file;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use cairn_core::content::{ImportOptions, Importer};
use cairn_harness::browser::run_node;
use cairn_harness::server::ServerProcess;
use cairn_server::blocks::FsBlockStore;
use cairn_server::files::{FileLimits, Files, Upload};
use cairn_server::store::StoreOptions;

const SECRET: &str = "a benchmark secret, long enough for HS256!";
const MIB: f64 = 1024.0 * 1024.0;

fn token() -> String {
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let claims = serde_json::json!({ "sub": "bench", "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// Writes `len` pseudo-random bytes to `path` (1 MiB at a time).
fn write_input(path: &Path, len: usize, seed: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    let mut n = 0;
    while left > 0 {
        let piece = cairn_harness::pseudo_random_bytes(left.min(1 << 20), seed + n);
        file.write_all(&piece).unwrap();
        left -= piece.len();
        n += 1;
    }
    file.flush().unwrap();
}

/// Reads `path` 1 MiB at a time into `sink`.
fn read_into(path: &Path, mut sink: impl FnMut(&[u8])) {
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return;
        }
        sink(&buf[..n]);
    }
}

fn import_to_memory(path: &Path) -> (String, f64) {
    let started = Instant::now();
    let mut importer = Importer::new(ImportOptions::default());
    let mut blocks = Vec::new();
    read_into(path, |bytes| {
        importer.write(bytes, &mut blocks);
        blocks.clear();
    });
    let root = importer.finish(&mut blocks).root.to_string();
    (root, started.elapsed().as_secs_f64())
}

/// The server's upload path (hash on the blocking pool, stage in the fs blockstore, commit),
/// fed 1 MiB at a time as the HTTP layer does.
async fn import_to_disk(path: &Path, files: &Files) -> (String, f64) {
    let started = Instant::now();
    let mut upload = Upload::new(files, ImportOptions::default()).await.unwrap();
    let mut file = std::fs::File::open(path).unwrap();
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        buf.truncate(n);
        upload.write(buf).await.unwrap();
    }
    let (imported, staging) = upload.finish().await.unwrap();
    staging.commit().await.unwrap();
    (imported.root.to_string(), started.elapsed().as_secs_f64())
}

fn openssl_sha256() -> f64 {
    let out = Command::new("openssl")
        .args([
            "speed", "-evp", "sha256", "-bytes", "262144", "-seconds", "3",
        ])
        .output()
        .expect("openssl (Debian package openssl) is needed for the SHA-256 ceiling");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rfind(|l| l.starts_with("sha256"))
        .unwrap_or_else(|| panic!("no sha256 line in openssl's output:\n{text}"));
    let kb: f64 = line
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches('k')
        .parse()
        .unwrap();
    kb * 1000.0 / MIB
}

#[tokio::main]
async fn main() {
    let dir = cairn_harness::temp_dir("cairn-bench-content");
    let input = dir.join("input.bin");
    let size = 256usize << 20;
    write_input(&input, size, 1);
    let mib = size as f64 / MIB;

    let (cid_mem, mem_s) = import_to_memory(&input);
    let files = Files {
        store: cairn_server::store::open(None, &dir, &StoreOptions::default())
            .await
            .unwrap(),
        blocks: Arc::new(FsBlockStore::open(dir.join("blocks"), dir.join("uploads")).unwrap()),
        limits: FileLimits::default(),
        pin_wake: None,
    };
    let (cid_disk, disk_s) = import_to_disk(&input, &files).await;
    let out = run_node("tests/e2e/import-bench.mjs", &[&input.to_string_lossy()]);
    let js: serde_json::Value =
        serde_json::from_str(out.lines().rfind(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(
        js["cid"],
        cid_mem.as_str(),
        "both importers agree on the CID"
    );
    assert_eq!(cid_disk, cid_mem);
    let js_s = js["seconds"].as_f64().unwrap();
    let sha = openssl_sha256();

    println!();
    println!(
        "Import of a {mib:.0} MiB file (CIDv1, raw leaves, 256 KiB chunks, balanced layout), {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("{:<52} {:>10} {:>12}", "importer", "MiB/s", "vs npm");
    let js_rate = mib / js_s;
    for (label, rate) in [
        ("cairn-core Importer, blocks to memory", mib / mem_s),
        (
            "cairn-server Upload, blocks to disk (fsync each)",
            mib / disk_s,
        ),
        ("ipfs-unixfs-importer (Node), blocks to memory", js_rate),
        ("openssl speed -evp sha256 (ceiling)", sha),
    ] {
        println!("{label:<52} {rate:>10.0} {:>11.2}x", rate / js_rate);
    }

    // 2. Server RSS while 1 GiB goes up and comes back down.
    let big = dir.join("big.bin");
    let big_size = 1usize << 30;
    write_input(&big, big_size, 7);
    let (cid, _) = import_to_memory(&big);
    drop(files);
    std::fs::remove_dir_all(dir.join("blocks")).unwrap();
    let data_dir = dir.join("server");
    let data = data_dir.display().to_string();
    let server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server")),
        &[
            "--jwt-secret",
            SECRET,
            "--data-dir",
            &data,
            "--max-file-bytes",
            "2147483648",
            "--rate-limit-user",
            "0",
        ],
        cairn_harness::artifacts_dir("bench").join("content-server.log"),
    );
    let idle = server.rss_bytes() as f64 / 1e6;
    let trip = big_file::round_trip(&server, &token(), &big, &cid, big_size).await;
    let (up_peak, up_s, down_peak, down_s) = (
        trip.rss_up,
        trip.up_seconds,
        trip.rss_down,
        trip.down_seconds,
    );

    println!();
    println!("Server RSS with a 1 GiB file (embedded SQLite default, loopback)");
    println!("{:<36} {:>10} {:>10}", "phase", "RSS MB", "MiB/s");
    println!("{:<36} {:>10.1} {:>10}", "idle, before", idle, "");
    println!(
        "{:<36} {:>10.1} {:>10.0}",
        "peak while uploading 1 GiB",
        up_peak,
        1024.0 / up_s
    );
    println!(
        "{:<36} {:>10.1} {:>10.0}",
        "peak while downloading 1 GiB",
        down_peak,
        1024.0 / down_s
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
