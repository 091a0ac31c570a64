//! Stock automerge-repo clients (the npm packages, unmodified, in Node: see
//! `tests/e2e/automerge-repo.mjs`) against the real server binary on PostgreSQL, at
//! `/v1/automerge`: the handshake; create and find, concurrent edits converging with identical
//! heads, live changes both ways, ephemeral messages, a ~256 KiB document, all seen the same
//! through Cairn's own API; an offline peer catching up; unknown and other users' documents
//! unavailable (a `doc-unavailable` on the wire, no hanging `find()`); malformed input answered
//! with `error` or a close while the server stays up; a reader's changes not stored and its
//! access revoked live; and one document edited at once by the
//! Cairn SDK in Chromium and by an automerge-repo client.

mod support;

use cairn_harness::{browser, workspace_root};

async fn scenario(name: &str) {
    let root = workspace_root();
    let (www, pkg) = (root.join("tests/e2e/www"), root.join("pkg"));
    let server = support::dev_server("automerge", name, &www, Some(&pkg), &[]).await;
    let url = server.url.clone();
    let scenario = name.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        browser::run_node("tests/e2e/automerge-repo.mjs", &[&url, &scenario])
    })
    .await
    .expect("the scenario ran");
    println!("{output}");
    assert!(output.contains(&format!("{name} ok")), "{output}");
}

#[tokio::test]
async fn the_handshake_answers_join_with_peer_and_checks_the_token() {
    scenario("handshake").await;
}

#[tokio::test]
async fn automerge_repo_clients_create_find_converge_relay_and_cairn_sees_the_same_documents() {
    scenario("documents").await;
}

#[tokio::test]
async fn an_offline_automerge_repo_peer_catches_up_and_sends_what_it_wrote() {
    scenario("offline").await;
}

#[tokio::test]
async fn unknown_documents_and_other_users_documents_are_unavailable() {
    scenario("unavailable").await;
}

#[tokio::test]
async fn a_reader_gets_updates_its_changes_are_not_stored_and_revocation_makes_it_unavailable() {
    scenario("reader").await;
}

#[tokio::test]
async fn malformed_frames_get_an_error_or_a_close_and_the_server_stays_up() {
    scenario("malformed").await;
}

#[tokio::test]
async fn the_cairn_sdk_and_an_automerge_repo_client_edit_one_document_at_once() {
    support::require_fresh_pkg();
    scenario("mixed").await;
}
