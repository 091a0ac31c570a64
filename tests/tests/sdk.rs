//! The browser SDK end to end: real Chromium (Playwright) against the real server binary on
//! PostgreSQL, one scenario per test (see `tests/e2e/sdk.mjs`): offline edits surviving a
//! reload, concurrent offline edits converging, the Service Worker draining the outbox, and
//! two tabs sharing one leader, and a CID computed in the browser that the server accepts.

mod support;

use std::path::Path;

use cairn_harness::server::ServerProcess;
use cairn_harness::{artifacts_dir, browser, postgres, temp_dir, workspace_root};

async fn scenario(name: &str) {
    support::require_fresh_pkg();
    let root = workspace_root();
    let database = postgres::fresh_database().await;
    let data = temp_dir("cairn-sdk-data").display().to_string();
    let artifacts = artifacts_dir("sdk");
    let www = root.join("tests/e2e/www").display().to_string();
    let pkg = root.join("pkg").display().to_string();
    let args = [
        "--database-url",
        &database,
        "--data-dir",
        &data,
        "--www-dir",
        &www,
        "--pkg-dir",
        &pkg,
        "--dev-auth",
    ];
    let log = artifacts.join(format!("{name}.log"));
    let server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server")),
        &args,
        log,
    );
    let url = server.url.clone();
    let artifacts = artifacts.display().to_string();
    let name = name.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        browser::run_node("tests/e2e/sdk.mjs", &[&url, &artifacts, &name])
    })
    .await
    .expect("the scenario ran");
    println!("{output}");
    drop(server);
}

#[tokio::test]
async fn offline_edits_survive_a_reload_and_reach_the_server() {
    scenario("offlineReload").await;
}

#[tokio::test]
async fn concurrent_offline_edits_converge() {
    scenario("concurrentOffline").await;
}

#[tokio::test]
async fn the_service_worker_drains_the_outbox() {
    scenario("serviceWorker").await;
}

#[tokio::test]
async fn without_a_socket_sync_falls_back_to_http_rounds() {
    scenario("httpFallback").await;
}

#[tokio::test]
async fn quota_errors_change_nothing_and_evicted_storage_is_restored() {
    scenario("storagePressure").await;
}

#[tokio::test]
async fn tabs_share_one_leader_and_see_each_other() {
    scenario("tabs").await;
}

#[tokio::test]
async fn the_browser_computes_the_cid_the_server_verifies() {
    scenario("fileCid").await;
}
