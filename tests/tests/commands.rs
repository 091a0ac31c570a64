//! The smaller operations commands against the real binary: `cairn migrate --check` reports
//! pending migrations (exit 1) and `cairn migrate` applies them; `cairn gc` shows the queues
//! and `cairn gc --now` collects; the operations commands refuse a schema that is not
//! current; `--log-format json` logs one JSON object per line, each line of a request with
//! the request id the response carries.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use cairn_harness::{postgres, pseudo_random_bytes, temp_dir};
use cairn_server::store::schema::{POSTGRES, SQLITE};
use serde_json::Value;
use support::{cairn, start_server_in, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_reports_then_applies_pending_migrations() {
    let url = postgres::fresh_database().await;
    let data = temp_dir("cairn-migrate").display().to_string();
    let storage = ["--database-url", url.as_str(), "--data-dir", data.as_str()];
    let run = |command: &'static [&'static str]| {
        let mut args: Vec<&str> = command.to_vec();
        args.extend(storage);
        async move { cairn(&args).await }
    };
    let all = POSTGRES.iter().count();
    let (code, out, err) = run(&["migrate", "--check"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("{all} migration(s) pending")) && out.contains(&format!("{all:04}")),
        "{out}"
    );

    // Not migrated: the operations commands refuse it, saying what to do.
    for command in [
        &["verify"][..],
        &["gc"][..],
        &["backup", "--to", "/tmp/unused-backup"][..],
    ] {
        let (code, _, err) = run(command).await;
        assert_eq!(code, 2, "{command:?}: {err}");
        assert!(err.contains("cairn migrate"), "{command:?}: {err}");
    }

    let (code, out, err) = run(&["migrate"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("applied {all} migration(s)")),
        "{out}"
    );
    let (code, out, _) = run(&["migrate", "--check"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("schema is current"), "{out}");
    let (code, out, _) = run(&["migrate"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("applied 0 migration(s)"), "{out}");

    // The embedded default: `migrate` creates the database.
    let embedded = temp_dir("cairn-migrate-sqlite").display().to_string();
    let (code, out, err) = cairn(&["migrate", "--data-dir", &embedded]).await;
    assert_eq!(code, 0, "{out}{err}");
    let all = SQLITE.iter().count();
    assert!(
        out.contains(&format!("applied {all} migration(s)")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_shows_its_queues_and_collects_now() {
    let data_dir = temp_dir("cairn-gc-cli");
    let server = start_server_in("gc-cli", None, &data_dir, &["--gc-every-secs", "3600"]);
    let info = support::upload_file(
        &server.url,
        "alice",
        "a.bin",
        pseudo_random_bytes(600_000, 2),
    )
    .await;
    let cid = info["cid"].as_str().unwrap();
    let deleted = reqwest::Client::new()
        .delete(format!("{}v1/files/{cid}", server.url))
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let data = data_dir.display().to_string();
    let (code, out, err) = cairn(&["gc", "--data-dir", &data]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 unreferenced contents"), "{out}");
    assert!(out.contains("--now"), "{out}");
    // Within the grace period nothing goes; with none, the content and its 4 blocks do.
    let (code, out, _) = cairn(&["gc", "--now", "--data-dir", &data]).await;
    assert_eq!(code, 0);
    assert!(out.contains("collected: 0 contents, 0 blocks"), "{out}");
    let now = ["gc", "--now", "--gc-grace-secs", "0", "--data-dir", &data];
    let (code, out, err) = cairn(&now).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("collected: 1 contents, 4 blocks"), "{out}");
    let (code, out, _) = cairn(&["verify", "--data-dir", &data]).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let url = postgres::fresh_database().await;
    let server = start_server_in(
        "json-logs",
        Some(&url),
        &temp_dir("cairn-json-logs"),
        &["--log-format", "json"],
    );
    let response = reqwest::Client::new()
        .get(format!("{}v1/docs", server.url))
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // An id a proxy set is kept.
    let forwarded = reqwest::Client::new()
        .get(format!("{}v1/health", server.url))
        .header("x-request-id", "from-the-proxy-1")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.headers()["x-request-id"], "from-the-proxy-1");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = server.log_text();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == id.as_str())
        .collect();
    assert!(
        of_request
            .iter()
            .any(|l| l["status"] == 200 && l["span"]["path"] == "/v1/docs"),
        "the access line of {id} in:\n{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == "from-the-proxy-1"),
        "{log}"
    );
    // Every line inside a request span names its request.
    for line in lines.iter().filter(|l| l["span"]["name"] == "request") {
        assert!(line["span"]["request_id"].is_string(), "{line}");
    }
}
