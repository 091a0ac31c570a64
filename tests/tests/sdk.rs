//! The browser SDK end to end: real Chromium (Playwright) against the real server binary on
//! PostgreSQL, one scenario per test (see `tests/e2e/sdk.mjs`): offline edits surviving a
//! reload, concurrent offline edits converging, the Service Worker draining the outbox, and
//! two tabs sharing one leader, a CID computed in the browser that the server accepts, and
//! files: stored offline, uploaded after a reload, pinned on the real Kubo peer, downloaded
//! and verified in other contexts (a tampered copy refused).

mod support;

use cairn_harness::{artifacts_dir, browser, workspace_root};

async fn scenario(name: &str) {
    scenario_with(name, &[], &[]).await;
}

/// Runs scenario `name` against a server started with `extra` arguments; `node_args` follow
/// the scenario's name on the script's command line.
async fn scenario_with(name: &str, extra: &[&str], node_args: &[&str]) {
    support::require_fresh_pkg();
    let root = workspace_root();
    let artifacts = artifacts_dir("sdk");
    let (www, pkg) = (root.join("tests/e2e/www"), root.join("pkg"));
    let server = support::dev_server("sdk", name, &www, Some(&pkg), extra).await;
    let url = server.url.clone();
    let artifacts = artifacts.display().to_string();
    let mut node: Vec<String> = vec![url, artifacts, name.to_owned()];
    node.extend(node_args.iter().map(|a| (*a).to_owned()));
    let output = tokio::task::spawn_blocking(move || {
        let node: Vec<&str> = node.iter().map(String::as_str).collect();
        browser::run_node("tests/e2e/sdk.mjs", &node)
    })
    .await
    .expect("the scenario ran");
    println!("{output}");
    drop(server);
}

#[tokio::test]
async fn a_sync_asked_of_a_leader_that_leaves_is_run_by_the_tab_that_takes_over() {
    scenario("syncWhileTheLeaderLeaves").await;
}

#[tokio::test]
async fn offline_edits_survive_a_reload_and_reach_the_server() {
    scenario("offlineReload").await;
}

#[tokio::test]
async fn a_page_killed_mid_burst_keeps_every_resolved_change_once() {
    scenario("crashMidBurst").await;
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

#[tokio::test]
async fn an_interrupted_upload_continues_from_the_servers_offset() {
    scenario("uploadResumes").await;
}

#[tokio::test]
async fn files_stored_offline_upload_pin_and_download_verified() {
    let kubo = cairn_harness::kubo::Kubo::start();
    let api = kubo.api_url.clone();
    scenario_with(
        "files",
        &[
            "--pin-backend",
            "kubo",
            "--kubo-api-url",
            &api,
            "--pin-retry-max-secs",
            "1",
        ],
        &[&api],
    )
    .await;
    drop(kubo);
}
