//! Scale-out: three `cairn serve` replicas that share one PostgreSQL and one S3 bucket (the
//! real S3 test peer), each with a data directory of its own, behind nginx (round robin,
//! WebSocket upgrade). A file uploaded through one replica is served, listed and searched by
//! every other; a resumable upload dropped on one continues on another; live edits cross
//! replicas; collections on several replicas at once delete nothing in use; a replica
//! SIGKILLed mid-load loses nothing acknowledged; an S3 outage mid-upload is a 503 that stores
//! nothing half, and the upload resumes when the store is back.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use automerge::ReadDoc;
use automerge::transaction::Transactable;
use cairn_core::DocumentId;
use cairn_core::content::{ImportOptions, import};
use cairn_core::sync::from_automerge;
use cairn_harness::nginx::Nginx;
use cairn_harness::postgres;
use cairn_harness::s3::S3Peer;
use cairn_harness::server::ServerProcess;
use cairn_harness::{pseudo_random_bytes, temp_dir};
use serde_json::{Value, json};
use support::{
    WsClient, create_doc, download_file, expect_changes, fetch_doc, http_sync, op, push_since,
    start_server_in, token, upload_file, write_doc,
};

const MIB: usize = 1 << 20;

/// Replicas on one database and one bucket, behind nginx.
struct Cluster {
    replicas: Vec<ServerProcess>,
    nginx: Nginx,
    s3: S3Peer,
    database: String,
}

impl Cluster {
    async fn start(name: &str, n: usize, extra: &[&str]) -> Self {
        let database = postgres::fresh_database().await;
        let s3 = S3Peer::start();
        let replicas = (0..n)
            .map(|i| replica(&format!("{name}-{i}"), &database, &s3, extra))
            .collect::<Vec<_>>();
        let urls: Vec<&str> = replicas.iter().map(|r| r.url.as_str()).collect();
        let nginx = Nginx::start(&urls);
        Self {
            replicas,
            nginx,
            s3,
            database,
        }
    }

    fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.url.clone()).collect()
    }
}

fn replica(name: &str, database: &str, s3: &S3Peer, extra: &[&str]) -> ServerProcess {
    let mut args: Vec<String> = s3.serve_args("cluster");
    args.extend(["--s3-timeout".into(), "3".into()]);
    args.extend(["--rate-limit-user".into(), "0".into()]);
    args.extend(["--rate-limit-ip".into(), "0".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_server_in(name, Some(database), &temp_dir("cairn-replica"), &args)
}

fn cid_of(data: &[u8]) -> String {
    import(data, ImportOptions::default()).1.root.to_string()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
}

async fn listed(base: &str, user: &str) -> BTreeSet<String> {
    let page = json_of(
        client()
            .get(format!("{base}v1/files"))
            .bearer_auth(token(user))
            .send()
            .await
            .unwrap(),
    )
    .await;
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_one_replica_is_served_listed_and_searched_by_every_other() {
    let cluster = Cluster::start("shared-files", 3, &[]).await;
    let data = pseudo_random_bytes(3 * MIB + 1234, 11);
    let info = upload_file(
        &cluster.replicas[0].url,
        "alice",
        "quarterly-report.bin",
        data.clone(),
    )
    .await;
    let cid = info["cid"].as_str().unwrap().to_owned();
    assert_eq!(cid, cid_of(&data));
    let mut bases = cluster.urls();
    bases.push(cluster.nginx.url.clone());
    for base in &bases {
        assert_eq!(download_file(base, "alice", &cid).await, data, "via {base}");
        assert!(
            listed(base, "alice").await.contains(&cid),
            "listed via {base}"
        );
        let found = json_of(
            client()
                .post(format!("{base}v1/files/search"))
                .bearer_auth(token("alice"))
                .json(&json!({ "query": "quarterly" }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            found["files"][0]["cid"],
            cid.as_str(),
            "searched via {base}"
        );
        let range = client()
            .get(format!("{base}v1/files/{cid}"))
            .bearer_auth(token("alice"))
            .header("range", "bytes=1048570-1048585")
            .send()
            .await
            .unwrap();
        assert_eq!(range.status(), 206);
        assert_eq!(range.bytes().await.unwrap(), &data[1048570..1048586]);
    }
    // Nothing of it is on any replica's disk: the blocks are in the bucket.
    assert!(
        cluster.s3.objects("cluster/blocks").len() >= 13,
        "12 leaves and a root in S3"
    );
}

/// `PATCH /v1/uploads/{id}` whose body stops after `data`, sent in pieces of 512 KiB with a
/// pause after each (the connection drops then); the request's outcome does not matter.
async fn patch_then_drop(base: &str, id: &str, offset: usize, data: Vec<u8>) {
    let pieces: Vec<Vec<u8>> = data.chunks(512 * 1024).map(<[u8]>::to_vec).collect();
    let chunks = futures::stream::unfold(pieces.into_iter(), |mut pieces| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let next = match pieces.next() {
            Some(piece) => Ok(piece),
            None => Err(std::io::Error::other("the connection drops")),
        };
        Some((next, pieces))
    });
    let _ = client()
        .patch(format!("{base}v1/uploads/{id}"))
        .bearer_auth(token("alice"))
        .header("upload-offset", offset.to_string())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
}

async fn upload_status(base: &str, id: &str) -> Value {
    json_of(
        client()
            .get(format!("{base}v1/uploads/{id}"))
            .bearer_auth(token("alice"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn new_upload(base: &str, data: &[u8], name: &str) -> String {
    let created = json_of(
        client()
            .post(format!("{base}v1/uploads"))
            .bearer_auth(token("alice"))
            .json(&json!({ "cid": cid_of(data), "size": data.len(), "name": name }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    created["id"].as_str().unwrap().to_owned()
}

async fn patch(base: &str, id: &str, offset: usize, data: &[u8]) -> reqwest::Response {
    client()
        .patch(format!("{base}v1/uploads/{id}"))
        .bearer_auth(token("alice"))
        .header("upload-offset", offset.to_string())
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumable_upload_dropped_on_one_replica_continues_on_another() {
    let cluster = Cluster::start("resume", 3, &[]).await;
    let urls = cluster.urls();
    let data = pseudo_random_bytes(4 * MIB + 77, 12);
    let id = new_upload(&urls[0], &data, "big.bin").await;
    // 2.6 MiB sent to replica 0, then the connection drops: the whole chunks stay.
    patch_then_drop(&urls[0], &id, 0, data[..2 * MIB + 600 * 1024].to_vec()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let offset = loop {
        // Replica 0 may still be storing what it received when the client sees the drop.
        let status = upload_status(&urls[1], &id).await;
        let offset = status["offset"].as_u64().unwrap() as usize;
        if offset >= 2 * MIB {
            break offset;
        }
        assert!(
            Instant::now() < deadline,
            "replica 1 sees the whole chunks replica 0 stored: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(offset.is_multiple_of(256 * 1024), "whole chunks");
    let done = patch(&urls[1], &id, offset, &data[offset..]).await;
    assert_eq!(done.status(), 201, "{}", done.text().await.unwrap());
    let cid = cid_of(&data);
    assert_eq!(download_file(&urls[2], "alice", &cid).await, data);
    // The session and its bytes are gone from the bucket.
    assert!(cluster.s3.objects("cluster/uploads").is_empty());
    let gone = client()
        .get(format!("{}v1/uploads/{id}", urls[2]))
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_from_clients_on_different_replicas_reach_each_other() {
    let cluster = Cluster::start("live", 3, &[]).await;
    let urls = cluster.urls();
    let d = DocumentId::from_random_bytes([31; 16]);
    let mut doc = create_doc(&urls[0], "alice", d, 1).await;
    // One follower on each replica, and one through nginx.
    let mut followers = Vec::new();
    for base in urls.iter().chain([&cluster.nginx.url]) {
        let mut follower = WsClient::connect(base, "alice").await;
        follower
            .subscribe(&[(d, from_automerge(&doc.get_heads()))])
            .await;
        follower.barrier().await;
        followers.push(follower);
    }
    for (n, writer) in urls.iter().enumerate() {
        let mut copies: Vec<AutoCommit> = followers.iter().map(|_| doc.fork()).collect();
        write_doc(writer, "alice", d, &mut doc, 10 + n as u64).await;
        for (follower, copy) in followers.iter_mut().zip(&mut copies) {
            let pushed = expect_changes(follower.recv().await, d);
            copy.load_incremental(&pushed.data).unwrap();
            assert_eq!(
                copy.get_heads(),
                doc.get_heads(),
                "a write on replica {n} reaches every follower"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_on_two_replicas_at_once_delete_nothing_in_use() {
    // Both replicas collect every second with no grace period while files sharing blocks are
    // uploaded and deleted through nginx.
    let cluster = Cluster::start("gc", 2, &["--gc-every-secs", "1", "--gc-grace-secs", "0"]).await;
    let base = cluster.nginx.url.clone();
    let shared = pseudo_random_bytes(MIB, 13);
    let mut kept = Vec::new();
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(6) && round < 40 {
        round += 1;
        // A file sharing its first four leaves with every other, then one that is deleted.
        let mut data = shared.clone();
        data.extend(pseudo_random_bytes(300 * 1024, 100 + round));
        let keep = upload_file(&base, "alice", &format!("keep-{round}"), data.clone()).await;
        kept.push((keep["cid"].as_str().unwrap().to_owned(), data));
        let mut doomed = shared.clone();
        doomed.extend(pseudo_random_bytes(200 * 1024, 1000 + round));
        let gone = upload_file(&base, "alice", &format!("gone-{round}"), doomed).await;
        let deleted = client()
            .delete(format!("{base}v1/files/{}", gone["cid"].as_str().unwrap()))
            .bearer_auth(token("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
    }
    // Let both collectors run over what was deleted last.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for url in cluster.urls() {
        for (cid, data) in &kept {
            assert_eq!(
                &download_file(&url, "alice", cid).await,
                data,
                "{cid} via {url}"
            );
        }
    }
    let log = cluster.replicas[0].log_text() + &cluster.replicas[1].log_text();
    assert!(log.contains("garbage collected"), "the collectors ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_loses_nothing_acknowledged() {
    let mut cluster = Cluster::start("sigkill", 3, &[]).await;
    let base = cluster.nginx.url.clone();
    let d = DocumentId::from_random_bytes([41; 16]);
    let mut doc = create_doc(&base, "alice", d, 1).await;
    let mut follower = WsClient::connect(&base, "alice").await;
    follower
        .subscribe(&[(d, from_automerge(&doc.get_heads()))])
        .await;
    follower.barrier().await;
    // A resumable upload half sent before the kill.
    let big = pseudo_random_bytes(3 * MIB, 14);
    let upload = new_upload(&base, &big, "during-the-kill.bin").await;
    assert_eq!(patch(&base, &upload, 0, &big[..MIB]).await.status(), 200);

    let writers = (0..4u64).map(|w| {
        let base = base.clone();
        let mut doc = doc.fork();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut files = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(4);
            let mut n = 0u64;
            while Instant::now() < deadline && n < 400 {
                n += 1;
                let before = doc.get_heads();
                doc.put(automerge::ROOT, format!("w{w}"), n as i64).unwrap();
                let request = push_since(d, &mut doc, &before, op(w * 10_000 + n));
                // A client sends a change again until it is acknowledged.
                for attempt in 0.. {
                    assert!(attempt < 50, "change {n} of writer {w} never acknowledged");
                    if http_sync(&base, "alice", request.clone()).await.is_ok() {
                        acked.push(doc.get_last_local_change().unwrap().hash());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if n.is_multiple_of(20) {
                    let data = pseudo_random_bytes(300 * 1024, w * 1000 + n);
                    for attempt in 0.. {
                        assert!(attempt < 50, "file {n} of writer {w} never stored");
                        let sent = client()
                            .post(format!("{base}v1/files?name=w{w}-{n}"))
                            .bearer_auth(token("alice"))
                            .body(data.clone())
                            .send()
                            .await;
                        if sent.is_ok_and(|r| r.status() == 201) {
                            files.push((cid_of(&data), data));
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            (acked, files)
        })
    });
    let writers: Vec<_> = writers.collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.replicas[1].kill();
    let mut acked = Vec::new();
    let mut files = Vec::new();
    for writer in writers {
        let (a, f) = writer.await.unwrap();
        acked.extend(a);
        files.extend(f);
    }
    assert!(acked.len() > 20, "the load ran ({} changes)", acked.len());

    // Every acknowledged change is in the document every surviving replica serves.
    let survivors = [
        cluster.replicas[0].url.clone(),
        cluster.replicas[2].url.clone(),
    ];
    for url in &survivors {
        let stored = fetch_doc(url, "alice", d).await;
        for hash in &acked {
            assert!(
                stored.get_change_by_hash(hash).is_some(),
                "{hash} via {url}"
            );
        }
        for (cid, data) in &files {
            assert_eq!(&download_file(url, "alice", cid).await, data);
        }
    }
    // The follower either kept its socket (its replica survived) or reconnects through nginx,
    // and catches up either way.
    let stored = fetch_doc(&survivors[0], "alice", d).await;
    let mut copy = doc.fork();
    let deadline = Instant::now() + Duration::from_secs(20);
    while copy.get_heads() != stored.get_heads() {
        assert!(Instant::now() < deadline, "the follower never caught up");
        match follower.recv_within(Duration::from_millis(500)).await {
            Ok(Some(cairn_core::Message::Changes(c))) if c.document == d => {
                copy.load_incremental(&c.data).unwrap();
            }
            Ok(Some(_)) | Err(()) => {}
            Ok(None) => {
                follower = WsClient::connect(&base, "alice").await;
                follower
                    .subscribe(&[(d, from_automerge(&copy.get_heads()))])
                    .await;
            }
        }
    }
    // The upload started before the kill continues through nginx.
    let status = upload_status(&base, &upload).await;
    let offset = status["offset"].as_u64().unwrap() as usize;
    assert_eq!(offset, MIB);
    let done = patch(&base, &upload, offset, &big[offset..]).await;
    assert_eq!(done.status(), 201);
    assert_eq!(download_file(&base, "alice", &cid_of(&big)).await, big);
    drop(cluster.database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_mid_upload_is_a_503_storing_nothing_and_the_upload_resumes() {
    let mut cluster = Cluster::start("s3-outage", 1, &[]).await;
    let base = cluster.replicas[0].url.clone();
    let data = pseudo_random_bytes(3 * MIB, 15);
    let cid = cid_of(&data);
    let id = new_upload(&base, &data, "outage.bin").await;
    assert_eq!(patch(&base, &id, 0, &data[..MIB]).await.status(), 200);

    cluster.s3.stop();
    let failed = patch(&base, &id, MIB, &data[MIB..]).await;
    assert_eq!(failed.status(), 503);
    assert_eq!(json_of(failed).await["error"]["code"], "E_UNAVAILABLE");
    let plain = client()
        .post(format!("{base}v1/files?name=plain.bin"))
        .bearer_auth(token("alice"))
        .body(pseudo_random_bytes(MIB, 16))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 503);
    assert_eq!(json_of(plain).await["error"]["code"], "E_UNAVAILABLE");
    let ready = client()
        .get(format!("{base}v1/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "readiness reports the blockstore");
    // Nothing half-stored: the session is where it was, no file is recorded.
    assert_eq!(upload_status(&base, &id).await["offset"], MIB);
    let info = client()
        .get(format!("{base}v1/files/{cid}/info"))
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 404);
    assert!(listed(&base, "alice").await.is_empty());

    cluster.s3.start_again();
    let done = patch(&base, &id, MIB, &data[MIB..]).await;
    assert_eq!(done.status(), 201, "{}", done.text().await.unwrap());
    assert_eq!(download_file(&base, "alice", &cid).await, data);
}
