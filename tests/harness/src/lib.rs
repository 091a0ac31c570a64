//! Test harness that starts real peers for Cairn's tests: a throwaway PostgreSQL cluster
//! ([`postgres`]), the real Kubo test peer behind its RPC shim ([`kubo`]), an IPFS Pinning
//! Service API implementation ([`pinning_service`]), the server binary ([`server`]),
//! Debian's Chromium ([`browser`]) and the OpenAPI checker ([`openapi`]).
//!
//! Nothing here is a fake. A peer that cannot be found is installed when that can be done
//! without root (the Kubo wheel, npm packages), otherwise the call fails with a message that
//! says how to install it; no test is ever skipped silently. Every process started here is
//! stopped when its guard drops, and a watchdog stops it even if the test process is killed.

pub mod browser;
pub mod kubo;
pub mod nginx;
pub mod openapi;
pub mod pinning_service;
pub mod postgres;
pub mod s3;
pub mod server;
mod watchdog;

use std::path::PathBuf;

/// The repository root (where the workspace `Cargo.toml` is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the harness lives at tests/harness inside the workspace")
}

/// A fresh, empty directory under the system temp dir, named after `prefix`.
pub fn temp_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("cannot create a temp dir");
    dir
}

/// Waits up to `timeout` for `child` to print a stdout line starting with `prefix` (how the
/// server and the Kubo shim announce their URL) and returns the rest of that line. The child's
/// later stdout keeps being drained so it never blocks on a full pipe.
pub(crate) fn announcement(
    child: &mut std::process::Child,
    prefix: &'static str,
    timeout: std::time::Duration,
) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}

/// Runs an install script of `scripts/` that prints the path of what it installed; panics
/// with `help` when it fails.
pub(crate) fn install(script: &str, help: &str) -> PathBuf {
    let script = workspace_root().join("scripts").join(script);
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.is_file(),
        "cannot install with {} ({}). {help}",
        script.display(),
        out.status
    );
    path
}

/// Where test artifacts (screenshots, logs) go: `target/test-artifacts/<name>`.
pub fn artifacts_dir(name: &str) -> PathBuf {
    let dir = workspace_root().join("target/test-artifacts").join(name);
    std::fs::create_dir_all(&dir).expect("cannot create the artifacts dir");
    dir
}

/// `len` deterministic pseudo-random bytes (xorshift64 from `seed`, which must not be 0), so
/// a failing test sees the same input again.
pub fn pseudo_random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}
