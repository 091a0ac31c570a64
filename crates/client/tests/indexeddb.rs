//! The browser driver in real headless Chromium with real IndexedDB
//! (`scripts/test` runs this with wasm-bindgen-test-runner and chromedriver).

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use cairn_client::{ClientError, Remote, Repo};
use cairn_core::DocumentId;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A repo name no other test uses.
fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", js_sys::Math::random().to_bits())
}

#[wasm_bindgen_test]
async fn document_survives_closing_and_reopening_the_repo() {
    let name = unique_name("reopen");
    let repo = Repo::open(&name).await.unwrap();
    let mut doc = repo.create();
    doc.set("title", "walking skeleton").unwrap();
    doc.set("body", "stored in IndexedDB").unwrap();
    repo.save(&mut doc).await.unwrap();
    let id = doc.id();
    let heads = doc.heads();
    repo.close();

    let repo = Repo::open(&name).await.unwrap();
    let mut found = repo
        .find(&id)
        .await
        .unwrap()
        .expect("the document is stored");
    assert_eq!(found.get("title").as_deref(), Some("walking skeleton"));
    assert_eq!(found.get("body").as_deref(), Some("stored in IndexedDB"));
    assert_eq!(found.heads(), heads);
    assert_eq!(repo.list().await.unwrap(), vec![id]);

    // Later edits are saved over the earlier snapshot.
    found.set("title", "edited").unwrap();
    repo.save(&mut found).await.unwrap();
    repo.close();
    let repo = Repo::open(&name).await.unwrap();
    let again = repo.find(&id).await.unwrap().unwrap();
    assert_eq!(again.get("title").as_deref(), Some("edited"));
    repo.close();
    Repo::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn repos_are_isolated_and_unknown_documents_are_absent() {
    let (a, b) = (unique_name("a"), unique_name("b"));
    let repo_a = Repo::open(&a).await.unwrap();
    let repo_b = Repo::open(&b).await.unwrap();
    let mut doc = repo_a.create();
    doc.set("k", "v").unwrap();
    repo_a.save(&mut doc).await.unwrap();
    assert!(repo_b.find(&doc.id()).await.unwrap().is_none());
    let unknown = DocumentId::from_random_bytes([3; 16]);
    assert!(repo_a.find(&unknown).await.unwrap().is_none());
    repo_a.close();
    repo_b.close();
    Repo::delete(&a).await.unwrap();
    Repo::delete(&b).await.unwrap();
}

#[wasm_bindgen_test]
async fn unreachable_server_is_reported_as_offline() {
    let repo = Repo::open(&unique_name("offline")).await.unwrap();
    let mut doc = repo.create();
    doc.set("k", "v").unwrap();
    // Port 9 on loopback (discard) is closed here: the fetch fails at the network level.
    let remote = Remote {
        server: "http://127.0.0.1:9".into(),
        token: "t".into(),
    };
    let err = repo.sync(&mut doc, &remote).await.unwrap_err();
    assert!(matches!(err, ClientError::Offline(_)), "{err:?}");
    assert_eq!(err.code(), "E_OFFLINE");
    repo.close();
}
