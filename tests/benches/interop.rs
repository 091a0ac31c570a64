//! automerge-repo interop under load: N stock automerge-repo clients (`tests/e2e/interop-load.mjs`,
//! the real npm packages in one Node process), four per shared text document, each typing 6
//! characters per second for 10 s, through Cairn's `/v1/automerge` (PostgreSQL with fsync on)
//! and through `@automerge/automerge-repo-sync-server` (npm; automerge-repo 1.x on Node, its
//! NodeFS storage, which does not fsync), in the same run, at 16, 64 and 200 clients (or
//! `CAIRN_BENCH_CLIENTS=a,b,..`; `CAIRN_BENCH_SECONDS` for the typing time). Reports delivery
//! latency (typed → seen by each other client of the document) p50/p99/max, the servers' CPU
//! (Cairn alone and with PostgreSQL) and peak RSS, and writes `target/bench/interop.json`.
//!
//! Everything shares the machine (2 cores here): the load generator's CPU is reported too (it
//! runs as `CAIRN_BENCH_LOADERS` Node processes, default 1, each driving whole documents).
//! Run: `scripts/bench interop` (or `cargo bench -p cairn-e2e --bench interop`).

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the report

#[allow(dead_code)] // only its CPU readers are used here
mod fanout;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_harness::server::ServerProcess;
use cairn_harness::{artifacts_dir, postgres, temp_dir, workspace_root};
use fanout::{cpu_seconds, postgres_cpu_seconds};
use serde_json::{Value, json};

/// The reference server, `@automerge/automerge-repo-sync-server`, on a port of its own.
struct Reference {
    child: Child,
    url: String,
}

impl Reference {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = temp_dir("automerge-sync-server");
        let log = std::fs::File::create(artifacts_dir("interop").join("sync-server.log")).unwrap();
        let script = workspace_root()
            .join("node_modules/@automerge/automerge-repo-sync-server/src/index.js");
        assert!(
            script.is_file(),
            "npm ci installs @automerge/automerge-repo-sync-server"
        );
        let child = Command::new("node")
            .arg(&script)
            .current_dir(&data)
            .env("PORT", port.to_string())
            .env("DATA_DIR", data.join("data"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot run node: install Node.js");
        let url = format!("ws://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the reference sync server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_mb(pid: u32) -> f64 {
    cairn_harness::server::rss_bytes(pid) as f64 / (1024.0 * 1024.0)
}

/// Load processes at once (`CAIRN_BENCH_LOADERS`, default 1). One Node process drives about
/// 16 automerge-repo clients at this rate before it runs out of CPU; more processes share the
/// two cores with the servers (measured: it does not help here).
fn loaders() -> usize {
    std::env::var("CAIRN_BENCH_LOADERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// One run of the load against `ws` (with Cairn's `http` base for tokens), split over
/// [`loaders`] processes by whole documents; the server's CPU seconds (and PostgreSQL's, when
/// `postgres`) and peak RSS while it ran, and the merged latencies.
fn run(
    ws: &str,
    http: Option<&str>,
    pid: u32,
    postgres: bool,
    clients: usize,
    seconds: u64,
) -> Value {
    let cpu = cpu_seconds(pid).unwrap_or(0.0);
    let pg = if postgres {
        postgres_cpu_seconds()
    } else {
        0.0
    };
    let started = Instant::now();
    let processes = loaders().clamp(1, clients.div_ceil(4).max(1));
    let groups = clients.div_ceil(4);
    let children: Vec<_> = (0..processes)
        .map(|p| {
            let mine = (groups * (p + 1) / processes - groups * p / processes) * 4;
            let mine = mine.min(clients - (groups * p / processes) * 4);
            let mut load = Command::new("node");
            load.arg("tests/e2e/interop-load.mjs")
                .args([ws, &mine.to_string(), &seconds.to_string()])
                .current_dir(workspace_root())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if let Some(http) = http {
                load.args([http, &format!("p{p}u")]);
            }
            load.spawn().expect("cannot run node")
        })
        .collect();
    let mut peak: f64 = 0.0;
    let outputs = {
        let waiter = std::thread::spawn(move || {
            children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect::<Vec<_>>()
        });
        while !waiter.is_finished() {
            peak = peak.max(rss_mb(pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        waiter.join().unwrap()
    };
    let wall = started.elapsed().as_secs_f64();
    let (mut latencies, mut typed, mut missing, mut load_cpu) = (Vec::new(), 0, 0, 0.0);
    for out in &outputs {
        assert!(
            out.status.success(),
            "the load failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("{}")
            .to_owned();
        let part: Value = serde_json::from_str(&line).unwrap();
        latencies.extend(
            part["latencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64),
        );
        typed += part["typed"].as_u64().unwrap_or(0);
        missing += part["missing"].as_u64().unwrap_or(0);
        load_cpu += part["loadCpuSeconds"].as_f64().unwrap_or(0.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        latencies
            .get(
                ((latencies.len() as f64 * p / 100.0) as usize)
                    .min(latencies.len().saturating_sub(1)),
            )
            .copied()
    };
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu;
    let pg = if postgres {
        postgres_cpu_seconds() - pg
    } else {
        0.0
    };
    json!({
        "clients": clients, "loaders": processes, "typed": typed, "deliveries": latencies.len(),
        "missing": missing, "p50": pick(50.0), "p99": pick(99.0), "max": latencies.last(),
        "loadCpuSeconds": load_cpu, "server_cpu_s": cpu, "postgres_cpu_s": pg,
        "server_rss_mb": peak, "wall_s": wall,
    })
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("—".into(), |x| format!("{x:.1}"))
}

fn main() {
    let clients: Vec<usize> = std::env::var("CAIRN_BENCH_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16, 64, 200]);
    let seconds: u64 = std::env::var("CAIRN_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    println!(
        "\nautomerge-repo clients typing 6 characters/s, 4 per document, {seconds} s ({} Node processes drive the clients)",
        loaders()
    );
    println!(
        "{:>7}  {:<34} {:>8} {:>8} {:>8} {:>7} {:>10} {:>7} {:>9} {:>9} {:>8} {:>8}",
        "clients",
        "server",
        "p50 ms",
        "p99 ms",
        "max ms",
        "typed",
        "deliveries",
        "missing",
        "CPU s",
        "+PG CPU s",
        "RSS MB",
        "load CPU"
    );
    for &n in &clients {
        let database = runtime.block_on(postgres::durable().fresh_database());
        let data = temp_dir("cairn-interop-data").display().to_string();
        let cairn = ServerProcess::start(
            Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server")),
            &[
                "--database-url",
                &database,
                "--data-dir",
                &data,
                "--dev-auth",
                // Latency and CPU are measured, not the rate limits.
                "--rate-limit-user",
                "0",
                "--rate-limit-ip",
                "0",
            ],
            artifacts_dir("interop").join(format!("cairn-{n}.log")),
        );
        let http = cairn.url.trim_end_matches('/').to_owned();
        let ws = format!("{}/v1/automerge", http.replacen("http", "ws", 1));
        let ours = run(&ws, Some(&http), cairn.pid(), true, n, seconds);
        drop(cairn);
        let reference = Reference::start();
        let theirs = run(
            &reference.url,
            None,
            reference.child.id(),
            false,
            n,
            seconds,
        );
        drop(reference);
        for (name, r) in [
            ("cairn /v1/automerge (PostgreSQL)", &ours),
            ("automerge-repo-sync-server 0.2.8", &theirs),
        ] {
            println!(
                "{:>7}  {:<34} {:>8} {:>8} {:>8} {:>7} {:>10} {:>7} {:>9.2} {:>9.2} {:>8.1} {:>8.2}",
                n,
                name,
                ms(&r["p50"]),
                ms(&r["p99"]),
                ms(&r["max"]),
                r["typed"],
                r["deliveries"],
                r["missing"],
                r["server_cpu_s"].as_f64().unwrap_or(0.0),
                r["server_cpu_s"].as_f64().unwrap_or(0.0)
                    + r["postgres_cpu_s"].as_f64().unwrap_or(0.0),
                r["server_rss_mb"].as_f64().unwrap_or(0.0),
                r["loadCpuSeconds"].as_f64().unwrap_or(0.0),
            );
        }
        let ratio = |k: &str| {
            let (a, b) = (ours[k].as_f64(), theirs[k].as_f64());
            a.zip(b).map(|(a, b)| (a / b * 1000.0).round() / 1000.0)
        };
        let cpu_ratio = ours["server_cpu_s"].as_f64().unwrap_or(0.0)
            / theirs["server_cpu_s"].as_f64().unwrap_or(1.0).max(1e-9);
        let cpu_pg_ratio = (ours["server_cpu_s"].as_f64().unwrap_or(0.0)
            + ours["postgres_cpu_s"].as_f64().unwrap_or(0.0))
            / theirs["server_cpu_s"].as_f64().unwrap_or(1.0).max(1e-9);
        println!(
            "{:>7}  ratios cairn / reference: p50 {:?}, p99 {:?}, CPU {:.3} (with PostgreSQL {:.3})",
            n,
            ratio("p50"),
            ratio("p99"),
            cpu_ratio,
            cpu_pg_ratio
        );
        rows.push(json!({
            "clients": n, "seconds": seconds, "cairn": ours, "reference": theirs,
            "p99_ratio": ratio("p99"), "p50_ratio": ratio("p50"),
            "cpu_ratio": cpu_ratio, "cpu_with_postgres_ratio": cpu_pg_ratio,
        }));
    }
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("interop.json");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&json!({ "runs": rows })).unwrap(),
    )
    .unwrap();
    println!("wrote {}", file.display());
}
