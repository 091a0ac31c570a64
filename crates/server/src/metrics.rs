//! What the server counts, through the `metrics` facade into one Prometheus recorder
//! (`metrics-exporter-prometheus`, no listener of its own: `GET /metrics` renders it).
//!
//! Counters and histograms are this process's (each replica is scraped on its own); the
//! gauges of stored contents, pins and the collector's queues are read from the database at
//! scrape time, so every replica reports the same totals. Every name is in [`DESCRIPTIONS`]
//! (and in the README). One recorder per process: servers started in one test process share
//! it, so tests compare counts before and after.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How each metric is described: name, kind, unit, help.
pub const DESCRIPTIONS: &[(&str, &str, Unit, &str)] = &[
    (
        "cairn_http_requests_total",
        "counter",
        Unit::Count,
        "HTTP requests answered, by route, method and status.",
    ),
    (
        "cairn_http_request_duration_seconds",
        "histogram",
        Unit::Seconds,
        "Time to answer an HTTP request (to its headers), by route, method and status.",
    ),
    (
        "cairn_sync_rounds_total",
        "counter",
        Unit::Count,
        "Sync rounds served, by transport (http, ws).",
    ),
    (
        "cairn_changes_applied_total",
        "counter",
        Unit::Count,
        "New Automerge changes committed by sync rounds.",
    ),
    (
        "cairn_ws_connections",
        "gauge",
        Unit::Count,
        "Open, authenticated WebSocket connections.",
    ),
    (
        "cairn_ws_frames_total",
        "counter",
        Unit::Count,
        "WebSocket frames received from clients.",
    ),
    (
        "cairn_ws_pushes_total",
        "counter",
        Unit::Count,
        "Changes frames pushed to WebSocket followers.",
    ),
    (
        "cairn_cache_hits_total",
        "counter",
        Unit::Count,
        "Document cache lookups that found the document in memory.",
    ),
    (
        "cairn_cache_misses_total",
        "counter",
        Unit::Count,
        "Document cache lookups that had to load it from the database.",
    ),
    (
        "cairn_db_pool_connections",
        "gauge",
        Unit::Count,
        "Database pool connections, by state (idle, in_use, max).",
    ),
    (
        "cairn_notify_lag_seconds",
        "histogram",
        Unit::Seconds,
        "Time from a commit on any replica to its notification reaching this one.",
    ),
    (
        "cairn_pin_attempts_total",
        "counter",
        Unit::Count,
        "Pin attempts, by outcome (pinned, retry, failed).",
    ),
    (
        "cairn_unpins_total",
        "counter",
        Unit::Count,
        "Pins removed from the backend after collection.",
    ),
    (
        "cairn_gc_runs_total",
        "counter",
        Unit::Count,
        "Garbage collections run.",
    ),
    (
        "cairn_gc_collected_total",
        "counter",
        Unit::Count,
        "What collections removed, by kind (contents, blocks, uploads).",
    ),
    (
        "cairn_rate_limited_total",
        "counter",
        Unit::Count,
        "Requests and frames refused by a rate limit, by scope (user, address).",
    ),
    (
        "cairn_file_contents",
        "gauge",
        Unit::Count,
        "File contents stored (each once, whoever uploaded it).",
    ),
    (
        "cairn_file_dag_bytes",
        "gauge",
        Unit::Bytes,
        "Bytes of the stored contents' IPFS DAGs.",
    ),
    (
        "cairn_pins",
        "gauge",
        Unit::Count,
        "File contents in the pin queue, by status.",
    ),
    (
        "cairn_gc_candidates",
        "gauge",
        Unit::Count,
        "Unreferenced contents waiting for their grace period.",
    ),
    (
        "cairn_gc_block_candidates",
        "gauge",
        Unit::Count,
        "Blocks that may be unused, waiting to be deleted.",
    ),
    (
        "cairn_gc_unpins",
        "gauge",
        Unit::Count,
        "Pins waiting to be removed from the pinning backend.",
    ),
];

/// Request latencies: 1 ms to 10 s.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (an embedding program's): keep ours local.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        for (name, kind, unit, help) in DESCRIPTIONS {
            match *kind {
                "counter" => metrics::describe_counter!(*name, *unit, *help),
                "histogram" => metrics::describe_histogram!(*name, *unit, *help),
                _ => metrics::describe_gauge!(*name, *unit, *help),
            }
        }
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("cairn-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

pub fn http_request(route: String, method: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!("cairn_http_requests_total", &labels).increment(1);
    histogram!("cairn_http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

pub fn sync_round(transport: &'static str) {
    counter!("cairn_sync_rounds_total", "transport" => transport).increment(1);
}

pub fn changes_applied(n: usize) {
    counter!("cairn_changes_applied_total").increment(n as u64);
}

pub fn ws_connections(delta: f64) {
    gauge!("cairn_ws_connections").increment(delta);
}

pub fn ws_frame() {
    counter!("cairn_ws_frames_total").increment(1);
}

pub fn automerge_connections(delta: f64) {
    gauge!("cairn_automerge_connections").increment(delta);
}

pub fn automerge_frame() {
    counter!("cairn_automerge_frames_total").increment(1);
}

pub fn automerge_refused() {
    counter!("cairn_automerge_refused_total").increment(1);
}

pub fn ws_push() {
    counter!("cairn_ws_pushes_total").increment(1);
}

pub fn cache_lookup(hit: bool) {
    if hit {
        counter!("cairn_cache_hits_total").increment(1);
    } else {
        counter!("cairn_cache_misses_total").increment(1);
    }
}

fn db_pool(in_use: u64, idle: u64, max: u64) {
    for (state, n) in [("in_use", in_use), ("idle", idle), ("max", max)] {
        gauge!("cairn_db_pool_connections", "state" => state).set(n as f64);
    }
}

pub fn notify_lag(lag: Duration) {
    histogram!("cairn_notify_lag_seconds").record(lag.as_secs_f64());
}

pub fn pin_attempt(outcome: &'static str) {
    counter!("cairn_pin_attempts_total", "outcome" => outcome).increment(1);
}

pub fn unpinned(n: u64) {
    counter!("cairn_unpins_total").increment(n);
}

pub fn gc_run(contents: u64, blocks: u64, uploads: u64) {
    counter!("cairn_gc_runs_total").increment(1);
    for (kind, n) in [
        ("contents", contents),
        ("blocks", blocks),
        ("uploads", uploads),
    ] {
        counter!("cairn_gc_collected_total", "kind" => kind).increment(n);
    }
}

pub fn rate_limited(scope: &'static str) {
    counter!("cairn_rate_limited_total", "scope" => scope).increment(1);
}

/// What a scrape reads from the database and the pool at that moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub contents: i64,
    pub dag_bytes: i64,
    pub pins: Vec<(String, i64)>,
    /// Collection candidates, block candidates, unpins.
    pub queues: (i64, i64, i64),
    /// Pool connections in use, idle, and the most.
    pub pool: (u64, u64, u64),
}

/// This process's metrics, then `snapshot`'s gauges (rendered by a recorder of their own, so
/// servers sharing a process never mix their databases' numbers).
pub fn render(snapshot: &Snapshot) -> String {
    let mut text = handle().render();
    let local = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&local, || {
        for (name, kind, unit, help) in DESCRIPTIONS {
            if *kind == "gauge" && *name != "cairn_ws_connections" {
                metrics::describe_gauge!(*name, *unit, *help);
            }
        }
        stored(snapshot);
        let (in_use, idle, max) = snapshot.pool;
        db_pool(in_use, idle, max);
    });
    text.push_str(&local.handle().render());
    text
}

fn stored(snapshot: &Snapshot) {
    let Snapshot {
        contents,
        dag_bytes,
        pins,
        queues,
        ..
    } = snapshot;
    gauge!("cairn_file_contents").set(*contents as f64);
    gauge!("cairn_file_dag_bytes").set(*dag_bytes as f64);
    for status in ["queued", "pinning", "pinned", "failed"] {
        let n = pins
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        gauge!("cairn_pins", "status" => status).set(n as f64);
    }
    gauge!("cairn_gc_candidates").set(queues.0 as f64);
    gauge!("cairn_gc_block_candidates").set(queues.1 as f64);
    gauge!("cairn_gc_unpins").set(queues.2 as f64);
}
