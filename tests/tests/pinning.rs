//! The pin queue against the real Kubo test peer: with Kubo down, uploads still succeed and
//! their files stay `queued` (retried with backoff); once Kubo is up they become `pinned`, and
//! Kubo's `cat` returns the uploaded bytes. A pin the peer refuses (it cannot add with
//! `cid-version=1`) ends `failed` with its reason instead of being retried forever.
//!
//! And against an IPFS Pinning Service API implementation (npm `mock-ipfs-pinning-service`,
//! which validates every request against the spec): with Kubo too, the service is asked to pin
//! what Kubo holds, with Kubo's addresses as origins, and once the file is deleted and
//! collected it is unpinned from both (the pin, unpin and collection counters show it); a
//! wrong token or a pin the service fails is retried
//! with the reason shown.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use cairn_harness::kubo::Kubo;
use cairn_harness::pinning_service::PinningService;
use cairn_harness::postgres;
use cairn_harness::pseudo_random_bytes as bytes;
use futures::TryStreamExt;
use ipfs_api_backend_hyper::{IpfsApi, IpfsClient, TryFromUri};
use serde_json::Value;

async fn upload(base: &str, token: &str, query: &str, data: Vec<u8>) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}v1/files{query}"))
        .bearer_auth(token)
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_queue_while_kubo_is_down_and_pin_once_it_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubo_url = format!("http://127.0.0.1:{port}");
    let server = support::start_server(
        "pinning",
        &postgres::fresh_database().await,
        &[
            "--pin-backend",
            "kubo",
            "--kubo-api-url",
            &kubo_url,
            "--pin-retry-max-secs",
            "1",
        ],
    );
    let base = server.url.as_str();
    let token = support::token("alice");

    // Kubo is down: uploads succeed and stay queued.
    let data = bytes(600 * 1024 + 5, 9);
    let v0 = upload(base, &token, "?cid-version=0&name=a.bin", data.clone()).await;
    assert_eq!(v0["pin"], "queued");
    let v0 = v0["cid"].as_str().unwrap().to_owned();
    let v1 = upload(base, &token, "?name=b.bin", bytes(1000, 10)).await;
    let v1 = v1["cid"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = support::file_info(base, &token, &v0).await;
    // Between attempts it is `queued`; during one (a refused connection), `pinning`.
    assert!(
        waiting["pin"] == "queued" || waiting["pin"] == "pinning",
        "{waiting}"
    );
    assert!(
        waiting["pinAttempts"].as_i64().unwrap() >= 2,
        "retried: {waiting}"
    );
    assert!(
        waiting["pinError"].is_string(),
        "the last failure is shown: {waiting}"
    );

    // Kubo comes up on that port: the queue drains.
    let kubo = Kubo::start_at(
        cairn_harness::temp_dir("cairn-kubo-pins").join("repo"),
        port,
    );
    support::wait_for_pin(base, &token, &v0, "pinned").await;
    let client = IpfsClient::from_str(&kubo.api_url).unwrap();
    let pins = client.pin_ls(Some(&v0), None).await.unwrap();
    assert!(pins.keys.contains_key(&v0), "{:?}", pins.keys);
    let served: Vec<u8> = client
        .cat(&v0)
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await
        .unwrap();
    assert!(served == data, "Kubo serves the uploaded bytes");

    // The peer cannot add with cid-version=1: a refusal is final and says why.
    support::wait_for_pin(base, &token, &v1, "failed").await;
    let refused = support::file_info(base, &token, &v1).await;
    assert!(
        refused["pinError"]
            .as_str()
            .unwrap()
            .contains("cid-version"),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = support::file_info(base, &token, &v1).await;
    assert_eq!(later["pin"], "failed");
    assert_eq!(
        later["pinAttempts"], refused["pinAttempts"],
        "a refusal is not retried"
    );

    // Pin statuses are metrics too.
    let metrics = support::scrape(base).await;
    for line in [
        "cairn_pins{status=\"pinned\"} 1",
        "cairn_pins{status=\"failed\"} 1",
        "cairn_pins{status=\"queued\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
}

/// The service's pins of `cid` (any status), as the service lists them.
async fn service_pins(service: &PinningService, token: &str, cid: &str) -> Vec<Value> {
    let response = reqwest::Client::new()
        .get(format!("{}/pins", service.url))
        .query(&[("cid", cid), ("status", "queued,pinning,pinned,failed")])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

const ORIGIN: &str = "/ip4/127.0.0.1/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinning_service_pins_what_kubo_holds() {
    let service = PinningService::start("service-token");
    let kubo = Kubo::start();
    let server = support::start_server(
        "pinning-service",
        &postgres::fresh_database().await,
        &[
            "--pin-backend",
            "kubo,pinning-service",
            "--kubo-api-url",
            &kubo.api_url,
            "--pinning-service-url",
            &service.url,
            "--pinning-service-token",
            "service-token",
            // The mock service reports pins named `pinned-…` as pinned.
            "--pin-name-prefix",
            "pinned-",
            "--pin-origins",
            ORIGIN,
            "--pin-retry-max-secs",
            "1",
            "--gc-every-secs",
            "1",
            "--gc-grace-secs",
            "0",
        ],
    );
    let base = server.url.as_str();
    let token = support::token("alice");
    let data = bytes(300 * 1024, 31);
    let cid = upload(base, &token, "?cid-version=0&name=x.bin", data.clone()).await;
    let cid = cid["cid"].as_str().unwrap().to_owned();
    support::wait_for_pin(base, &token, &cid, "pinned").await;

    let client = IpfsClient::from_str(&kubo.api_url).unwrap();
    assert!(
        client
            .pin_ls(Some(&cid), None)
            .await
            .unwrap()
            .keys
            .contains_key(&cid)
    );
    let pins = service_pins(&service, "service-token", &cid).await;
    assert_eq!(pins.len(), 1, "asked once: {pins:?}");
    let pin = &pins[0]["pin"];
    assert_eq!(pins[0]["status"], "pinned");
    assert_eq!(pin["name"], format!("pinned-{cid}"), "no file name is sent");
    assert_eq!(pin["meta"]["app"], "cairn");
    let origins: Vec<&str> = pin["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    let kubo_id = client.id(None).await.unwrap().id;
    assert!(origins.contains(&ORIGIN), "{origins:?}");
    assert!(
        origins
            .iter()
            .any(|o| o.ends_with(&format!("/p2p/{kubo_id}"))),
        "Kubo's own addresses are origins: {origins:?}"
    );

    // Deleted, the file is collected (every second, no grace) and unpinned from both.
    let deleted = reqwest::Client::new()
        .delete(format!("{base}v1/files/{cid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let on_kubo = kubo_holds(&kubo.api_url, &cid).await;
        let on_service = !service_pins(&service, "service-token", &cid)
            .await
            .is_empty();
        if !on_kubo && !on_service {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still pinned: Kubo {on_kubo}, service {on_service}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The pin and collection work is counted.
    let metrics = support::scrape(base).await;
    for (series, at_least) in [
        (r#"cairn_pin_attempts_total{outcome="pinned"}"#, 1.0),
        ("cairn_unpins_total", 1.0),
        ("cairn_gc_runs_total", 1.0),
        (r#"cairn_gc_collected_total{kind="contents"}"#, 1.0),
        (r#"cairn_gc_collected_total{kind="blocks"}"#, 3.0),
    ] {
        assert!(
            support::sample(&metrics, series) >= at_least,
            "{series} in:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_a_failed_pin_is_retried_with_the_reason_shown() {
    let service = PinningService::start("right-token");
    let start = |name: &'static str, token: &'static str, prefix: &'static str| {
        let url = service.url.clone();
        async move {
            let database = postgres::fresh_database().await;
            support::start_server(
                name,
                &database,
                &[
                    "--pin-backend",
                    "pinning-service",
                    "--pinning-service-url",
                    &url,
                    "--pinning-service-token",
                    token,
                    "--pin-name-prefix",
                    prefix,
                    "--pin-retry-max-secs",
                    "1",
                ],
            )
        }
    };
    let wrong = start("pinning-service-token", "wrong-token", "pinned-").await;
    let failing = start("pinning-service-failed", "right-token", "failed-").await;
    let token = support::token("alice");
    let mut cids = Vec::new();
    for (server, seed) in [(&wrong, 32), (&failing, 33)] {
        let file = upload(&server.url, &token, "?name=y.bin", bytes(1000, seed)).await;
        assert_eq!(file["pin"], "queued", "the upload does not wait: {file}");
        cids.push(file["cid"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (server, cid, reason) in [
        (&wrong, &cids[0], "401"),
        (&failing, &cids[1], "could not pin"),
    ] {
        let info = support::file_info(&server.url, &token, cid).await;
        assert!(
            info["pin"] == "queued" || info["pin"] == "pinning",
            "{info}"
        );
        assert!(
            info["pinAttempts"].as_i64().unwrap() >= 2,
            "retried: {info}"
        );
        assert!(
            info["pinError"].as_str().unwrap().contains(reason),
            "the reason is shown: {info}"
        );
    }
    let failed = service_pins(&service, "right-token", &cids[1]).await;
    assert_eq!(
        failed.len(),
        1,
        "a failed request is replaced, not repeated: {failed:?}"
    );
    assert!(
        service_pins(&service, "right-token", &cids[0])
            .await
            .is_empty()
    );
}

async fn kubo_holds(api_url: &str, cid: &str) -> bool {
    let client = IpfsClient::from_str(api_url).unwrap();
    client
        .pin_ls(Some(cid), None)
        .await
        .is_ok_and(|pins| pins.keys.contains_key(cid))
}

/// `(backend, status)` of each copy the file info reports.
fn copies(info: &Value) -> Vec<(String, String)> {
    info["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap().to_owned();
            (field("backend"), field("status"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_kubo_nodes_and_two_replicas_both_hold_every_file() {
    let a = Kubo::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b_repo = cairn_harness::temp_dir("cairn-kubo-b").join("repo");
    let mut b = Kubo::start_at(b_repo.clone(), port);
    let server = support::start_server(
        "pin-replicas",
        &postgres::fresh_database().await,
        &[
            "--pin-backend",
            "kubo",
            "--kubo-api-url",
            &a.api_url,
            "--kubo-api-url",
            &b.api_url,
            "--pin-replicas",
            "2",
            "--pin-retry-max-secs",
            "1",
        ],
    );
    let base = server.url.as_str();
    let token = support::token("alice");
    let (name_a, name_b) = (format!("kubo {}", a.api_url), format!("kubo {}", b.api_url));

    let first = upload(
        base,
        &token,
        "?cid-version=0&name=one.bin",
        bytes(400 * 1024, 21),
    )
    .await;
    let first = first["cid"].as_str().unwrap().to_owned();
    support::wait_for_pin(base, &token, &first, "pinned").await;
    let info = support::file_info(base, &token, &first).await;
    assert_eq!(
        copies(&info),
        [
            (name_a.clone(), "pinned".to_owned()),
            (name_b.clone(), "pinned".to_owned())
        ],
        "{info}"
    );
    assert!(kubo_holds(&a.api_url, &first).await && kubo_holds(&b.api_url, &first).await);

    // One node down: the file is held once and stays `pinning`, retried.
    b.stop();
    let second = upload(
        base,
        &token,
        "?cid-version=0&name=two.bin",
        bytes(300 * 1024, 22),
    )
    .await;
    let second = second["cid"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let info = loop {
        let info = support::file_info(base, &token, &second).await;
        if copies(&info).len() == 2 {
            break info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never attempted: {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(info["pin"], "pinning", "{info}");
    assert_eq!(
        copies(&info),
        [
            (name_a.clone(), "pinned".to_owned()),
            (name_b.clone(), "unreachable".to_owned())
        ],
        "{info}"
    );
    assert!(kubo_holds(&a.api_url, &second).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = support::file_info(base, &token, &second).await;
    assert_eq!(later["pin"], "pinning", "still one copy short: {later}");
    assert!(
        later["pinAttempts"].as_i64() > info["pinAttempts"].as_i64(),
        "retried: {later}"
    );

    // The node comes back: it gets its copy.
    let b = Kubo::start_at(b_repo, port);
    support::wait_for_pin(base, &token, &second, "pinned").await;
    assert!(kubo_holds(&b.api_url, &second).await);
    let done = support::file_info(base, &token, &second).await;
    assert_eq!(
        copies(&done),
        [(name_a, "pinned".to_owned()), (name_b, "pinned".to_owned())]
    );
}
