//! The browser driver in real headless Chromium with real IndexedDB
//! (`scripts/test` runs this with wasm-bindgen-test-runner and chromedriver).

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::atomic::Ordering;

use cairn_client::{ClientError, Engine, LOCAL_WRITE_TRANSACTIONS, Op, Remote, Seg};
use cairn_core::protocol::{DocResponse, SyncResponse};
use js_sys::{JSON, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A repo name no other test uses.
fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", js_sys::Math::random().to_bits())
}

fn json(value: &JsValue) -> String {
    JSON::stringify(value).unwrap().as_string().unwrap()
}

fn js(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

fn key(k: &str) -> Seg {
    Seg::Key(k.into())
}

fn put(path: Vec<Seg>, value: &str) -> Op {
    Op::Put {
        path,
        value: js(value),
    }
}

#[wasm_bindgen_test]
async fn documents_survive_closing_and_reopening() {
    let name = unique_name("reopen");
    let engine = Engine::open(&name).await.unwrap();
    let id = engine
        .create(&js(r#"{"title":"walking skeleton","tags":["a"]}"#))
        .await
        .unwrap();
    engine
        .change(&id, &[put(vec![key("body")], "\"stored\"")])
        .await
        .unwrap();
    engine
        .change(
            &id,
            &[Op::Splice {
                path: vec![key("body")],
                index: 6,
                delete: 0,
                text: " in IndexedDB".into(),
            }],
        )
        .await
        .unwrap();
    let heads = engine.with_doc(&id, |d| d.heads()).unwrap();
    engine.close();

    let engine = Engine::open(&name).await.unwrap();
    assert!(engine.load(&id).await.unwrap());
    let value = engine.with_doc(&id, |d| d.value()).unwrap();
    assert_eq!(
        json(&value),
        r#"{"body":"stored in IndexedDB","tags":["a"],"title":"walking skeleton"}"#
    );
    assert_eq!(engine.with_doc(&id, |d| d.heads()).unwrap(), heads);
    assert_eq!(engine.list().await.unwrap(), vec![id]);
    engine.close();
    cairn_client::delete_database(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn path_operations_are_atomic_and_typed() {
    let engine = Engine::open(&unique_name("ops")).await.unwrap();
    let id = engine
        .create(&js(r#"{"list":[1,2,3],"nested":{"n":1}}"#))
        .await
        .unwrap();
    let ops = [
        Op::Insert {
            path: vec![key("list")],
            index: 1,
            value: js("1.5"),
        },
        Op::Delete {
            path: vec![key("list"), Seg::Index(3)],
        },
        put(vec![key("nested"), key("flag")], "true"),
        put(vec![key("list"), Seg::Index(3)], "\"appended\""),
    ];
    engine.change(&id, &ops).await.unwrap();
    let value = json(&engine.with_doc(&id, |d| d.value()).unwrap());
    assert_eq!(
        value,
        r#"{"list":[1,1.5,2,"appended"],"nested":{"flag":true,"n":1}}"#
    );

    // A bad operation anywhere leaves the document exactly as it was.
    let heads = engine.with_doc(&id, |d| d.heads()).unwrap();
    let bad = [
        put(vec![key("ok")], "1"),
        Op::Delete {
            path: vec![key("missing"), key("deeper")],
        },
    ];
    let err = engine.change(&id, &bad).await.unwrap_err();
    assert_eq!(err.code(), "E_INVALID_ARGUMENT");
    assert_eq!(engine.with_doc(&id, |d| d.heads()).unwrap(), heads);
    assert_eq!(json(&engine.with_doc(&id, |d| d.value()).unwrap()), value);
}

#[wasm_bindgen_test]
async fn the_outbox_keeps_order_and_drops_only_acknowledged_entries() {
    let engine = Engine::open(&unique_name("outbox")).await.unwrap();
    let id = engine.create(&js(r#"{"n":0}"#)).await.unwrap();
    for n in 1..=3 {
        engine
            .change(&id, &[put(vec![key("n")], &n.to_string())])
            .await
            .unwrap();
    }
    let entries = engine.outbox().await.unwrap();
    assert_eq!(entries.len(), 4, "the creation and three changes");
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq), "in order");

    let request = engine
        .sync_request(&[])
        .await
        .unwrap()
        .expect("something to send");
    let sent: Vec<_> = request.documents[0].entries.iter().map(|e| e.op).collect();
    assert_eq!(
        sent,
        entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        "sent in outbox order"
    );
    assert!(
        engine.sync_request(&[]).await.unwrap().is_none(),
        "one request in flight at a time"
    );

    // The server acknowledges the first two only.
    let response = SyncResponse {
        request: request.request,
        documents: vec![DocResponse {
            document: id,
            acked: sent[..2].to_vec(),
            heads: vec![],
            data: vec![],
        }],
    };
    engine.sync_response(response).await.unwrap();
    let left: Vec<_> = engine
        .outbox()
        .await
        .unwrap()
        .iter()
        .map(|e| (e.id, e.attempts))
        .collect();
    assert_eq!(
        left,
        vec![(sent[2], 1), (sent[3], 1)],
        "acknowledged entries left; the rest wait to be retried"
    );
    assert!(
        engine.next_due().await.unwrap().unwrap() > js_sys::Date::now(),
        "with backoff"
    );
    assert_eq!(engine.pending().await.unwrap(), 2);
}

#[wasm_bindgen_test]
async fn a_burst_of_changes_is_written_in_few_transactions() {
    let engine = Engine::open(&unique_name("burst")).await.unwrap();
    let id = engine.create(&js("{}")).await.unwrap();
    let rows = engine.stored_rows(&id).await.unwrap();
    let before = LOCAL_WRITE_TRANSACTIONS.load(Ordering::Relaxed);
    let changes = (0..100).map(|i| {
        let engine = engine.clone();
        async move {
            engine
                .change(&id, &[put(vec![key(&format!("k{i}"))], &i.to_string())])
                .await
                .unwrap()
        }
    });
    let made = futures::future::join_all(changes).await;
    let transactions = LOCAL_WRITE_TRANSACTIONS.load(Ordering::Relaxed) - before;
    assert!(made.iter().all(Option::is_some));
    assert!(
        transactions <= 2,
        "100 changes took {transactions} transactions"
    );
    let entries = engine.outbox().await.unwrap();
    assert_eq!(
        entries.len(),
        1,
        "the burst's changes share one outbox entry"
    );
    assert_eq!(
        entries[0].kind.change_count(),
        100,
        "every change is in the durable entry"
    );
    assert_eq!(
        engine.stored_rows(&id).await.unwrap(),
        rows + 1,
        "one change row holds the burst"
    );
}

#[wasm_bindgen_test]
async fn two_engines_on_one_database_see_each_other() {
    let name = unique_name("tabs");
    let (a, b) = (
        Engine::open(&name).await.unwrap(),
        Engine::open(&name).await.unwrap(),
    );
    let id = a.create(&js(r#"{"from":"a"}"#)).await.unwrap();
    assert!(b.load(&id).await.unwrap(), "B finds A's document");
    b.change(&id, &[put(vec![key("also")], "\"b\"")])
        .await
        .unwrap();
    assert!(a.refresh(&id).await.unwrap(), "A reads B's change");
    assert_eq!(
        json(&a.with_doc(&id, |d| d.value()).unwrap()),
        r#"{"also":"b","from":"a"}"#
    );
    assert_eq!(a.outbox().await.unwrap().len(), 2, "one outbox for both");
    assert_eq!(
        a.with_doc(&id, |d| d.heads()).unwrap(),
        b.with_doc(&id, |d| d.heads()).unwrap()
    );
}

#[wasm_bindgen_test]
async fn many_changes_compact_into_a_snapshot_and_reload_identically() {
    let name = unique_name("compact");
    let engine = Engine::open(&name).await.unwrap();
    let id = engine.create(&js(r#"{"n":0}"#)).await.unwrap();
    // About 300 KiB of changes, one commit each: rows are folded into the snapshot whenever
    // they have grown as large as it (at least 64 KiB).
    // (Automerge deflates changes: the filler must not compress.)
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for n in 1..=300 {
        let filler: String = (0..1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect();
        let filler = format!("\"{filler}\"");
        let ops = [
            put(vec![key("n")], &n.to_string()),
            put(vec![key("filler")], &filler),
        ];
        engine.change(&id, &ops).await.unwrap();
    }
    let heads = engine.with_doc(&id, |d| d.heads()).unwrap();
    let rows = engine.stored_rows(&id).await.unwrap();
    assert!(rows < 70, "rows were folded into a snapshot ({rows} left)");
    let reopened = Engine::open(&name).await.unwrap();
    reopened.load(&id).await.unwrap();
    assert_eq!(reopened.with_doc(&id, |d| d.heads()).unwrap(), heads);
    let n = Reflect::get(&reopened.with_doc(&id, |d| d.value()).unwrap(), &"n".into()).unwrap();
    assert_eq!(n.as_f64(), Some(300.0));
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_reported_as_offline_and_nothing_is_lost() {
    let engine = Engine::open(&unique_name("offline")).await.unwrap();
    let id = engine.create(&js(r#"{"k":"v"}"#)).await.unwrap();
    // Port 9 on loopback (discard) is closed here: the fetch fails at the network level.
    let remote = Remote {
        server: "http://127.0.0.1:9".into(),
        token: "t".into(),
    };
    let err = engine.sync_http(&remote, &[]).await.unwrap_err();
    assert!(matches!(err, ClientError::Offline(_)), "{err:?}");
    assert_eq!(err.code(), "E_OFFLINE");
    let entries = engine.outbox().await.unwrap();
    assert_eq!(entries.len(), 1, "still queued");
    assert_eq!(entries[0].last_error.as_deref(), Some("E_OFFLINE"));
    assert!(engine.load(&id).await.unwrap());
}
