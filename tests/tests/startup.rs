//! Startup against the database: the server waits (retrying with backoff) for a PostgreSQL
//! that is still starting, and gives up with a clear error when it never comes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::process::Command;
use std::time::Instant;

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::DocumentId;
use cairn_harness::postgres;
use support::{http_sync, op, push_since, start_server};

#[tokio::test]
async fn the_server_waits_for_a_database_that_is_still_starting() {
    let (url, starting) = postgres::start_in_background();
    let server = start_server("startup-late-db", &url, &["--db-connect-retry", "60"]);
    starting.join().unwrap();
    assert!(
        server
            .log_text()
            .contains("cannot connect to PostgreSQL yet"),
        "the server retried:\n{}",
        server.log_text()
    );
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "up", true).unwrap();
    let id = DocumentId::from_random_bytes([1; 16]);
    http_sync(&server.url, "alice", push_since(id, &mut doc, &[], op(1)))
        .await
        .unwrap();
}

#[test]
fn the_server_gives_up_on_an_unreachable_database_with_a_clear_error() {
    let dir = cairn_harness::temp_dir("cairn-no-db");
    let url = format!(
        "postgres://postgres@localhost/postgres?host={}",
        dir.display()
    );
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn-e2e-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
            "--jwt-secret",
            support::SECRET,
        ])
        .args(["--db-connect-retry", "2", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("error: cannot open the document store"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot connect to PostgreSQL yet"),
        "it retried first: {stderr}"
    );
    assert!(
        started.elapsed().as_secs_f64() >= 1.0,
        "it kept trying for the configured time"
    );
}

#[test]
fn authentication_must_be_configured_and_dev_mode_stays_on_loopback() {
    let dir = cairn_harness::temp_dir("cairn-auth-config");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn-e2e-server"))
            .args(["serve", "--data-dir"])
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["--listen", "127.0.0.1:0"]).contains("no authentication configured"));
    assert!(run(&["--listen", "0.0.0.0:0", "--dev-auth"]).contains("refusing --dev-auth"));
    assert!(
        run(&["--listen", "127.0.0.1:0", "--jwt-secret", "short"]).contains("at least 32 bytes")
    );
}
