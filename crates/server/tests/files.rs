//! The file API on both backends: uploads verified against the declared CID (a mismatch
//! stores nothing), deduplication, downloads with `Range`/`ETag`, info, listing, removal,
//! limits, and errors as JSON with stable codes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn_core::content::{ImportOptions, import};
use cairn_server::app;
use cairn_server::files::{FileLimits, Files};
use serde_json::Value;
use support::{Backend, TestServer};
use tower::ServiceExt;

use cairn_harness::pseudo_random_bytes as bytes;

fn cid_v1(data: &[u8]) -> String {
    import(data, ImportOptions::default()).1.root.to_string()
}

fn upload(token: &str, query: &str, cid: Option<&str>, kind: &str, data: Vec<u8>) -> Request<Body> {
    let mut request = Request::post(format!("/v1/files{query}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", kind);
    if let Some(cid) = cid {
        request = request.header("x-cairn-cid", cid);
    }
    request.body(Body::from(data)).unwrap()
}

fn get(token: &str, path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(path).header("authorization", format!("Bearer {token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Block files in the blockstore (not counting the staging area).
fn stored_blocks(server: &TestServer) -> usize {
    let dir = server.data_dir.join("blocks");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "tmp")
        .map(|shard| std::fs::read_dir(shard.path()).unwrap().count())
        .sum()
}

async fn upload_download_ranges_and_dedupe(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let data = bytes(600 * 1024 + 7, 1);
    let cid = cid_v1(&data);

    let (status, _, body) = server
        .send(upload(
            &alice,
            "?name=report%20v1.pdf",
            Some(&cid),
            "application/pdf",
            data.clone(),
        ))
        .await;
    let info = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["cid"], cid.as_str());
    assert_eq!(info["name"], "report v1.pdf");
    assert_eq!(info["type"], "application/pdf");
    assert_eq!(info["size"], data.len());
    assert_eq!(info["deduplicated"], false);
    assert_eq!(stored_blocks(&server), 4, "three leaves and a root");

    let path = format!("/v1/files/{cid}");
    let (status, headers, body) = server.send(get(&alice, &path, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == data, "downloaded bytes differ");
    assert_eq!(headers["etag"], format!("\"{cid}\"").as_str());
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    // Ranges across a chunk boundary, open-ended, and from the end.
    for (range, start, end) in [
        ("bytes=262140-262150", 262_140, 262_151),
        ("bytes=600000-", 600_000, data.len()),
        ("bytes=-10", data.len() - 10, data.len()),
        ("bytes=0-0", 0, 1),
    ] {
        let (status, headers, body) = server.send(get(&alice, &path, &[("range", range)])).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert!(body == data[start..end], "{range}: wrong bytes");
        assert_eq!(
            headers["content-range"],
            format!("bytes {start}-{}/{}", end - 1, data.len()).as_str()
        );
    }
    let (status, headers, body) = server
        .send(get(&alice, &path, &[("range", "bytes=9999999-")]))
        .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(json(&body)["error"]["code"], "E_RANGE_NOT_SATISFIABLE");
    assert_eq!(
        headers["content-range"],
        format!("bytes */{}", data.len()).as_str()
    );
    let etag = format!("\"{cid}\"");
    let (status, _, body) = server
        .send(get(&alice, &path, &[("if-none-match", &etag)]))
        .await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));

    // Same content again, by Bob: deduplicated, no new blocks; each user sees their own name.
    let (status, _, body) = server
        .send(upload(
            &bob,
            "?name=copy.bin",
            None,
            "application/octet-stream",
            data.clone(),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(json(&body)["deduplicated"], true);
    assert_eq!(json(&body)["cid"], cid.as_str());
    assert_eq!(stored_blocks(&server), 4);
    let (_, _, body) = server.send(get(&bob, &format!("{path}/info"), &[])).await;
    assert_eq!(json(&body)["name"], "copy.bin");

    // CIDv0 on request; multipart form upload.
    let small = b"hello".to_vec();
    let (status, _, body) = server
        .send(upload(
            &alice,
            "?cid-version=0&name=hello.txt",
            None,
            "text/plain",
            small,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        json(&body)["cid"],
        "QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX"
    );
    let form =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG fake\r\n--XyZ--\r\n"
            .to_vec();
    let (status, _, body) = server
        .send(upload(
            &alice,
            "",
            None,
            "multipart/form-data; boundary=XyZ",
            form,
        ))
        .await;
    let info = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["name"], "photo.png");
    assert_eq!(info["type"], "image/png");
    assert_eq!(info["cid"], cid_v1(b"\x89PNG fake").as_str());

    // Listing: newest first, paginated, filtered by type.
    let (status, _, body) = server.send(get(&alice, "/v1/files?limit=2", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let page = json(&body);
    assert_eq!(page["files"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, _, body) = server
        .send(get(
            &alice,
            &format!("/v1/files?limit=2&cursor={next}"),
            &[],
        ))
        .await;
    let rest = json(&body);
    assert_eq!(rest["files"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next"], Value::Null);
    let mut seen: Vec<String> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["files"].as_array().unwrap())
        .map(|f| f["cid"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    let (_, _, body) = server.send(get(&alice, "/v1/files?type=image/", &[])).await;
    let images = json(&body);
    assert_eq!(images["files"].as_array().unwrap().len(), 1);
    assert_eq!(images["files"][0]["name"], "photo.png");

    // Removal: Alice's reference goes, Bob's stays.
    let delete = |token: &str| {
        Request::delete(&path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(server.send(delete(&alice)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(server.send(delete(&alice)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        server.send(get(&alice, &path, &[])).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _, body) = server.send(get(&bob, &path, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == data);
}

async fn bad_uploads_store_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice");
    let data = bytes(300 * 1024, 2);
    let mut corrupted = data.clone();
    corrupted[123_456] ^= 0x01;

    // The client hashed `data`, but a byte flipped on the way: refused, nothing kept.
    let (status, _, body) = server
        .send(upload(
            &alice,
            "",
            Some(&cid_v1(&data)),
            "application/octet-stream",
            corrupted,
        ))
        .await;
    let error = json(&body);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "E_CID_MISMATCH");
    assert_eq!(error["error"]["declared"], cid_v1(&data).as_str());
    assert_eq!(stored_blocks(&server), 0);
    let (_, _, body) = server.send(get(&alice, "/v1/files", &[])).await;
    assert_eq!(json(&body)["files"], serde_json::json!([]));

    for (query, cid, code, status) in [
        (
            "",
            Some("not-a-cid"),
            "E_INVALID_CID",
            StatusCode::BAD_REQUEST,
        ),
        (
            "",
            Some("bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"),
            "E_INVALID_CID",
            StatusCode::BAD_REQUEST,
        ),
        (
            "?cid-version=7",
            None,
            "E_BAD_REQUEST",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, _, body) = server
            .send(upload(&alice, query, cid, "text/plain", b"x".to_vec()))
            .await;
        assert_eq!(got, status, "{query} {cid:?}");
        assert_eq!(json(&body)["error"]["code"], code);
    }
    for (path, status, code) in [
        (
            "/v1/files/not-a-cid",
            StatusCode::BAD_REQUEST,
            "E_INVALID_CID",
        ),
        (
            "/v1/files/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            StatusCode::NOT_FOUND,
            "E_NOT_FOUND",
        ),
        (
            "/v1/files?limit=0",
            StatusCode::BAD_REQUEST,
            "E_BAD_REQUEST",
        ),
        (
            "/v1/files?cursor=zzz",
            StatusCode::BAD_REQUEST,
            "E_BAD_REQUEST",
        ),
    ] {
        let (got, _, body) = server.send(get(&alice, path, &[])).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(json(&body)["error"]["code"], code, "{path}");
    }
    let (status, _, _) = server
        .send(Request::post("/v1/files").body(Body::from("x")).unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Size and type limits from configuration.
    let mut state = server.state.clone();
    state.files = Arc::new(Files {
        store: server.state.files.store.clone(),
        blocks: server.state.files.blocks.clone(),
        limits: FileLimits {
            max_file_bytes: 1000,
            allowed_types: vec!["image/*".into()],
        },
        pin_wake: None,
    });
    let limited = app(state);
    let send = |request| async { limited.clone().oneshot(request).await.unwrap() };
    let response = send(upload(&alice, "", None, "image/png", vec![0; 1001])).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = send(upload(&alice, "", None, "text/html", vec![0; 10])).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = send(upload(&alice, "", None, "image/png", vec![0; 1000])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(stored_blocks(&server), 1);
}

fn with_metadata(mut request: Request<Body>, metadata: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert("x-cairn-metadata", metadata.parse().unwrap());
    request
}

fn search(token: &str, body: Value) -> Request<Body> {
    Request::post("/v1/files/search")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn found(server: &TestServer, token: &str, body: Value) -> Vec<String> {
    let (status, _, bytes) = server.send(search(token, body.clone())).await;
    let json = json(&bytes);
    assert_eq!(status, StatusCode::OK, "{body}: {json}");
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn search_names_types_and_metadata(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let uploads = [
        (
            &alice,
            "Quarterly Report-v1.pdf",
            "application/pdf",
            r#"{"tags":["finance","Q3"],"author":"Zo\u00eb"}"#,
            1,
        ),
        (
            &alice,
            "holiday photo.jpg",
            "image/jpeg",
            r#"{"place":"Lisbon"}"#,
            2,
        ),
        (&alice, "notes.txt", "text/plain", "{}", 3),
        (&bob, "report for bob.txt", "text/plain", "{}", 4),
    ];
    let mut pdf = String::new();
    for (token, name, kind, metadata, seed) in uploads {
        let query = format!("?name={}", name.replace(' ', "%20"));
        let request = with_metadata(
            upload(token, &query, None, kind, bytes(1000, seed)),
            metadata,
        );
        let (status, _, body) = server.send(request).await;
        let info = json(&body);
        assert_eq!(status, StatusCode::CREATED, "{info}");
        if kind == "application/pdf" {
            assert_eq!(info["metadata"]["author"], "Zoë");
            pdf = info["cid"].as_str().unwrap().to_owned();
        }
    }
    let q = |query: &str| serde_json::json!({ "query": query });
    assert_eq!(
        found(&server, &alice, q("report")).await,
        ["Quarterly Report-v1.pdf"]
    );
    assert_eq!(
        found(&server, &bob, q("report")).await,
        ["report for bob.txt"]
    );
    assert_eq!(
        found(&server, &alice, q("REP fin")).await,
        ["Quarterly Report-v1.pdf"]
    );
    assert_eq!(
        found(&server, &alice, q("zoë")).await,
        ["Quarterly Report-v1.pdf"]
    );
    assert_eq!(
        found(&server, &alice, q("v1 pdf")).await,
        ["Quarterly Report-v1.pdf"]
    );
    assert!(
        found(&server, &alice, q("report lisbon")).await.is_empty(),
        "every word must match"
    );
    let lisbon = |kind: &str| serde_json::json!({ "query": "lisb", "type": kind });
    assert_eq!(
        found(&server, &alice, lisbon("image/")).await,
        ["holiday photo.jpg"]
    );
    assert!(found(&server, &alice, lisbon("text/")).await.is_empty());

    // Renaming by uploading again re-indexes; removal un-indexes.
    let renamed = with_metadata(
        upload(
            &alice,
            "?name=budget.pdf",
            None,
            "application/pdf",
            bytes(1000, 1),
        ),
        "{}",
    );
    assert_eq!(server.send(renamed).await.0, StatusCode::CREATED);
    assert!(found(&server, &alice, q("quarterly")).await.is_empty());
    assert_eq!(found(&server, &alice, q("budget")).await, ["budget.pdf"]);
    let delete = Request::delete(format!("/v1/files/{pdf}"))
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(server.send(delete).await.0, StatusCode::NO_CONTENT);
    assert!(found(&server, &alice, q("budget")).await.is_empty());

    // Metadata in a multipart form.
    let form = b"--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"album\":\"Azores\"}\r\n\
--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\nPNG\r\n--B--\r\n"
        .to_vec();
    let (status, _, _) = server
        .send(upload(
            &alice,
            "",
            None,
            "multipart/form-data; boundary=B",
            form,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(found(&server, &alice, q("azores")).await, ["x.png"]);

    // Bad input: JSON errors, nothing stored.
    for metadata in ["[1]", "not json", "\"text\""] {
        let request = with_metadata(
            upload(&alice, "", None, "text/plain", b"m".to_vec()),
            metadata,
        );
        let (status, _, body) = server.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{metadata}");
        assert_eq!(json(&body)["error"]["code"], "E_BAD_REQUEST");
    }
    for body in [
        serde_json::json!({ "query": "" }),
        serde_json::json!({ "query": "!!! ..." }),
        serde_json::json!({ "query": "x", "limit": 0 }),
        serde_json::json!({ "nope": 1 }),
    ] {
        let (status, _, bytes) = server.send(search(&alice, body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json(&bytes)["error"]["code"], "E_BAD_REQUEST");
    }
    let (status, _, body) = server.send(get(&alice, "/v1/files?limit=abc", &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["code"], "E_BAD_REQUEST");
}

fn json_request(method: &str, path: &str, token: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn patch(token: &str, id: &str, offset: usize, body: Body) -> Request<Body> {
    Request::patch(format!("/v1/uploads/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .header("upload-offset", offset.to_string())
        .body(body)
        .unwrap()
}

async fn resumable_uploads_continue_from_the_last_whole_chunk(backend: Backend) {
    const CHUNK: usize = 262_144;
    let server = TestServer::start(backend).await;
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let data = bytes(700 * 1024 + 3, 21);
    let cid = cid_v1(&data);
    let new = serde_json::json!({
        "cid": cid, "size": data.len(), "name": "big.pdf", "type": "application/pdf",
        "metadata": { "k": "v" },
    });
    let (status, _, body) = server
        .send(json_request("POST", "/v1/uploads", &alice, new))
        .await;
    let session = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(
        (session["offset"].as_u64(), session["chunkSize"].as_u64()),
        (Some(0), Some(CHUNK as u64))
    );
    let id = session["id"].as_str().unwrap().to_owned();

    // 300 KiB: one whole chunk is kept, the torn tail is dropped.
    let (status, _, body) = server
        .send(patch(
            &alice,
            &id,
            0,
            Body::from(data[..300 * 1024].to_vec()),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["offset"], CHUNK);
    let (status, _, body) = server
        .send(patch(&alice, &id, 0, Body::from(vec![1u8; 10])))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(json(&body)["error"]["code"], "E_OFFSET_MISMATCH");
    assert_eq!(json(&body)["error"]["offset"], CHUNK);

    // The connection drops mid-body: the whole chunks that arrived are kept.
    let piece = data[CHUNK..CHUNK + 300 * 1024].to_vec();
    let dropped = futures::stream::iter(vec![
        Ok(bytes::Bytes::from(piece)),
        Err(std::io::Error::other("connection reset")),
    ]);
    let (status, _, _) = server
        .send(patch(&alice, &id, CHUNK, Body::from_stream(dropped)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // After a restart (another server on the same database and disk), it continues there.
    let restarted = server.replica().await;
    let (status, _, body) = restarted
        .send(get(&alice, &format!("/v1/uploads/{id}"), &[]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["offset"], 2 * CHUNK);
    let (status, _, _) = restarted
        .send(get(&bob, &format!("/v1/uploads/{id}"), &[]))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another user's session does not exist for them"
    );
    let (status, _, body) = restarted
        .send(patch(
            &alice,
            &id,
            2 * CHUNK,
            Body::from(data[2 * CHUNK..].to_vec()),
        ))
        .await;
    let info = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["cid"], cid.as_str());
    assert_eq!(info["name"], "big.pdf");
    assert_eq!(info["metadata"]["k"], "v");
    let (_, _, body) = restarted
        .send(get(&alice, &format!("/v1/files/{cid}"), &[]))
        .await;
    assert!(body == data, "the stored file is the uploaded one");
    let (status, _, _) = restarted
        .send(get(&alice, &format!("/v1/uploads/{id}"), &[]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the session ended");
    assert_eq!(
        std::fs::read_dir(server.data_dir.join("uploads"))
            .unwrap()
            .count(),
        0
    );

    // Asking to upload a file one already has (an answer lost, another device): nothing to
    // send. Another user still has to send the bytes (a CID alone grants nothing).
    let again = serde_json::json!({ "cid": cid, "size": data.len() });
    let (status, _, body) = restarted
        .send(json_request("POST", "/v1/uploads", &alice, again.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["complete"], true);
    assert_eq!(json(&body)["file"]["cid"], cid.as_str());
    let (status, _, body) = restarted
        .send(json_request("POST", "/v1/uploads", &bob, again))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}", json(&body));
    assert!(json(&body)["id"].is_string());

    // Bytes that do not hash to the declared CID: refused, nothing stored, session over.
    let other = bytes(1000, 22);
    let new = serde_json::json!({ "cid": cid_v1(&bytes(1000, 23)), "size": 1000 });
    let (_, _, body) = server
        .send(json_request("POST", "/v1/uploads", &alice, new))
        .await;
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    let before = stored_blocks(&server);
    let (status, _, body) = server.send(patch(&alice, &id, 0, Body::from(other))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&body)["error"]["code"], "E_CID_MISMATCH");
    assert_eq!(stored_blocks(&server), before);
    assert_eq!(
        server
            .send(get(&alice, &format!("/v1/uploads/{id}"), &[]))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Bad input.
    let new = serde_json::json!({ "cid": cid_v1(&bytes(10, 24)), "size": 10 });
    let (_, _, body) = server
        .send(json_request("POST", "/v1/uploads", &alice, new))
        .await;
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    let (status, _, body) = server
        .send(patch(&alice, &id, 0, Body::from(vec![0u8; 11])))
        .await;
    assert_eq!(
        (status, json(&body)["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, "E_BAD_REQUEST".into())
    );
    let no_offset = Request::patch(format!("/v1/uploads/{id}"))
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(server.send(no_offset).await.0, StatusCode::BAD_REQUEST);
    for (body, status, code) in [
        (
            serde_json::json!({ "cid": "nope", "size": 1 }),
            StatusCode::BAD_REQUEST,
            "E_INVALID_CID",
        ),
        (
            serde_json::json!({ "cid": cid, "size": 1u64 << 40 }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "E_FILE_TOO_LARGE",
        ),
        (
            serde_json::json!({ "cid": cid }),
            StatusCode::BAD_REQUEST,
            "E_BAD_REQUEST",
        ),
        (
            serde_json::json!({ "cid": cid, "size": 1, "metadata": [1] }),
            StatusCode::BAD_REQUEST,
            "E_BAD_REQUEST",
        ),
    ] {
        let (got, _, bytes) = server
            .send(json_request("POST", "/v1/uploads", &alice, body.clone()))
            .await;
        assert_eq!(got, status, "{body}");
        assert_eq!(json(&bytes)["error"]["code"], code, "{body}");
    }
    let (status, _, _) = server
        .send(patch(
            &alice,
            "0123456789abcdef0123456789abcdef",
            0,
            Body::from("x"),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn documents_share_their_files_with_their_readers(backend: Backend) {
    use automerge::transaction::Transactable;
    let server = TestServer::start(backend).await;
    let (alice, bob, carol) = (
        server.token("alice"),
        server.token("bob"),
        server.token("carol"),
    );
    // Alice's document; Bob may read it, Carol may not.
    let document = support::doc_id(42);
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "title", "trip").unwrap();
    server
        .sync(
            "alice",
            support::push_all(document, &mut doc, support::op(1)),
        )
        .await
        .unwrap();
    let (status, _) = server
        .json(
            "PUT",
            &format!("/v1/docs/{document}/members/bob"),
            Some(&alice),
            br#"{"role":"reader"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let data = bytes(5000, 31);
    let (_, _, body) = server
        .send(upload(
            &alice,
            "?name=map.png",
            None,
            "image/png",
            data.clone(),
        ))
        .await;
    let cid = json(&body)["cid"].as_str().unwrap().to_owned();
    let file = format!("/v1/files/{cid}");
    assert_eq!(
        server.send(get(&bob, &file, &[])).await.0,
        StatusCode::NOT_FOUND,
        "not yet shared"
    );

    let attach = |token: &str, method: &str| {
        Request::builder()
            .method(method)
            .uri(format!("/v1/docs/{document}/files/{cid}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        server.send(attach(&bob, "PUT")).await.0,
        StatusCode::FORBIDDEN,
        "a reader cannot attach"
    );
    assert_eq!(
        server.send(attach(&alice, "PUT")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server.send(attach(&alice, "PUT")).await.0,
        StatusCode::NO_CONTENT,
        "idempotent"
    );

    // Bob reads it through the document, under Alice's name for it; Carol still cannot.
    let (status, _, body) = server.send(get(&bob, &file, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == data);
    let (_, _, body) = server.send(get(&bob, &format!("{file}/info"), &[])).await;
    assert_eq!(json(&body)["name"], "map.png");
    let (status, _, body) = server
        .send(get(&bob, &format!("/v1/docs/{document}/files"), &[]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["files"][0]["cid"], cid.as_str());
    assert_eq!(
        server.send(get(&carol, &file, &[])).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _, body) = server
        .send(get(&carol, &format!("/v1/docs/{document}/files"), &[]))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json(&body)["error"]["code"], "E_FORBIDDEN");
    let (_, _, body) = server.send(get(&bob, "/v1/files", &[])).await;
    assert_eq!(
        json(&body)["files"],
        serde_json::json!([]),
        "Bob's own list stays his"
    );

    // Carol cannot attach a file she does not have, even to a document she could write.
    let other = support::doc_id(43);
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "title", "carol's").unwrap();
    server
        .sync("carol", support::push_all(other, &mut doc, support::op(2)))
        .await
        .unwrap();
    let steal = Request::put(format!("/v1/docs/{other}/files/{cid}"))
        .header("authorization", format!("Bearer {carol}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(server.send(steal).await.0, StatusCode::NOT_FOUND);

    // Detached: Bob loses access.
    assert_eq!(
        server.send(attach(&alice, "DELETE")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server.send(attach(&alice, "DELETE")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.send(get(&bob, &file, &[])).await.0,
        StatusCode::NOT_FOUND
    );
}

on_both_backends!(
    documents_share_their_files_with_their_readers,
    resumable_uploads_continue_from_the_last_whole_chunk,
    upload_download_ranges_and_dedupe,
    bad_uploads_store_nothing,
    search_names_types_and_metadata,
);
