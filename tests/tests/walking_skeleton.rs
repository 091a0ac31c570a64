//! The walking skeleton end to end: page A (one browser context) signs in as alice, edits a
//! document, saves it to IndexedDB and syncs it with the server (real binary, real
//! PostgreSQL); page B, in a fresh context with its own empty IndexedDB, signs in as alice,
//! opens it from the server and sees the edit.
//! Screenshots are saved under target/test-artifacts/walking-skeleton/.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::path::Path;

use cairn_harness::server::ServerProcess;
use cairn_harness::{artifacts_dir, browser, postgres, temp_dir, workspace_root};

#[tokio::test]
async fn edit_in_one_browser_is_seen_in_a_fresh_one() {
    let root = workspace_root();
    support::require_fresh_pkg();
    let database_url = postgres::fresh_database().await;
    let data_dir = temp_dir("cairn-e2e-data");
    let artifacts = artifacts_dir("walking-skeleton");
    let server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server")),
        &[
            "--database-url",
            &database_url,
            "--data-dir",
            &data_dir.display().to_string(),
            "--www-dir",
            &root.join("www").display().to_string(),
            "--pkg-dir",
            &root.join("pkg").display().to_string(),
            "--dev-auth",
        ],
        artifacts.join("server.log"),
    );

    let output = tokio::task::spawn_blocking({
        let url = server.url.clone();
        let artifacts = artifacts.display().to_string();
        move || browser::run_node("tests/e2e/walking-skeleton.mjs", &[&url, &artifacts])
    })
    .await
    .unwrap();
    println!("{output}");

    // Check the server's copy independently of the browser.
    let result: serde_json::Value = serde_json::from_str(
        output
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .expect("the script prints its result"),
    )
    .unwrap();
    let id = result["id"].as_str().unwrap();
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{}v1/dev/token", server.url))
        .json(&serde_json::json!({ "user": "alice" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes = reqwest::Client::new()
        .get(format!("{}v1/docs/{id}", server.url))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let doc = automerge::Automerge::load(&bytes).unwrap();
    use automerge::ReadDoc;
    // Strings are collaborative text objects.
    let field = |key: &str| match doc.get(automerge::ROOT, key).unwrap() {
        Some((automerge::Value::Object(automerge::ObjType::Text), text)) => doc.text(&text).ok(),
        _ => None,
    };
    assert_eq!(field("title").as_deref(), Some("hello from A"));
    assert_eq!(field("reply").as_deref(), Some("hello from B"));
    assert!(artifacts.join("walking-skeleton-b.png").is_file());
    let _ = std::fs::remove_dir_all(&data_dir);
    drop(server);
}
