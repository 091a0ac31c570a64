//! The OpenAPI document against the real server: `GET /v1/openapi.json` is valid OpenAPI 3.1
//! (PyPI `openapi-spec-validator`), and real answers of every documented route, successes
//! and errors, match it (PyPI `openapi-core`'s response validator): status documented, body
//! of the documented shape. Every documented operation is exercised, and every route
//! exercised is documented.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::DocumentId;
use cairn_core::content::{ImportOptions, import};
use cairn_harness::{artifacts_dir, postgres, pseudo_random_bytes};
use reqwest::Method;
use serde_json::{Value, json};
use support::{op, push_since, start_server, token};

/// Real requests and their answers, as the checker reads them.
struct Recorder {
    base: String,
    client: reqwest::Client,
    exchanges: Vec<Value>,
}

struct Call<'a> {
    method: Method,
    /// The documented path, e.g. `/v1/files/{cid}`.
    template: &'a str,
    /// The path asked, e.g. `/v1/files/bafy…`.
    path: String,
    query: Vec<(&'a str, String)>,
    user: Option<&'a str>,
    headers: Vec<(&'a str, String)>,
    body: Option<(Vec<u8>, &'a str)>,
}

impl<'a> Call<'a> {
    fn new(method: Method, template: &'a str, path: impl Into<String>) -> Self {
        Self {
            method,
            template,
            path: path.into(),
            query: vec![],
            user: Some("alice"),
            headers: vec![],
            body: None,
        }
    }
    fn anonymous(mut self) -> Self {
        self.user = None;
        self
    }
    fn user(mut self, user: &'a str) -> Self {
        self.user = Some(user);
        self
    }
    fn query(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }
    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, bytes: Vec<u8>, content_type: &'a str) -> Self {
        self.body = Some((bytes, content_type));
        self
    }
    fn json(self, value: Value) -> Self {
        self.body(value.to_string().into_bytes(), "application/json")
    }
}

impl Recorder {
    /// Sends `call`, records the exchange, and returns the status and body.
    async fn send(&mut self, call: Call<'_>) -> (u16, Vec<u8>) {
        let url = format!("{}{}", self.base.trim_end_matches('/'), call.path);
        let mut request = self
            .client
            .request(call.method.clone(), url)
            .query(&call.query);
        if let Some(user) = call.user {
            request = request.bearer_auth(token(user));
        }
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some((bytes, content_type)) = call.body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let headers: serde_json::Map<String, Value> = response
            .headers()
            .iter()
            .filter(|(n, _)| n.as_str() != "content-type")
            .map(|(n, v)| (n.to_string(), json!(v.to_str().unwrap_or(""))))
            .collect();
        let body = response.bytes().await.unwrap().to_vec();
        let query: serde_json::Map<String, Value> = call
            .query
            .iter()
            .map(|(n, v)| ((*n).to_owned(), json!(v)))
            .collect();
        self.exchanges.push(json!({
            "method": call.method.as_str(),
            "template": call.template,
            "path": call.path,
            "query": query,
            "status": status,
            "content_type": content_type,
            "headers": headers,
            "body": hex::encode(&body),
        }));
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_and_real_answers_match_it() {
    let server = start_server(
        "openapi",
        &postgres::fresh_database().await,
        &["--dev-auth"],
    );
    let mut r = Recorder {
        base: server.url.clone(),
        client: reqwest::Client::new(),
        exchanges: vec![],
    };
    let (status, spec) = r
        .send(Call::new(Method::GET, "/v1/openapi.json", "/v1/openapi.json").anonymous())
        .await;
    assert_eq!(status, 200);
    let spec_path = artifacts_dir("openapi").join("openapi.json");
    std::fs::write(&spec_path, &spec).unwrap();

    // Sync and documents.
    let id = DocumentId::from_random_bytes([9; 16]);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "title", "hello").unwrap();
    doc.commit();
    let frame = cairn_core::Message::SyncRequest(push_since(id, &mut doc, &[], op(1))).encode();
    let cairn = cairn_core::protocol::MEDIA_TYPE;
    for (body, user) in [
        (frame.clone(), Some("alice")),
        (b"junk".to_vec(), Some("alice")),
    ] {
        let mut call = Call::new(Method::POST, "/v1/sync", "/v1/sync").body(body, cairn);
        call.user = user;
        r.send(call).await;
    }
    r.send(
        Call::new(Method::POST, "/v1/sync", "/v1/sync")
            .anonymous()
            .body(frame, cairn),
    )
    .await;
    r.send(Call::new(Method::GET, "/v1/docs", "/v1/docs")).await;
    let doc_path = format!("/v1/docs/{id}");
    r.send(Call::new(Method::GET, "/v1/docs/{id}", &doc_path))
        .await;
    r.send(Call::new(
        Method::GET,
        "/v1/docs/{id}",
        "/v1/docs/not-an-id",
    ))
    .await;
    r.send(Call::new(Method::GET, "/v1/docs/{id}", &doc_path).user("mallory"))
        .await;
    let members = format!("{doc_path}/members");
    r.send(Call::new(Method::GET, "/v1/docs/{id}/members", &members))
        .await;
    r.send(Call::new(Method::GET, "/v1/docs/{id}/members", &members).user("bob"))
        .await;
    let bob = format!("{members}/bob");
    let template = "/v1/docs/{id}/members/{user}";
    r.send(Call::new(Method::PUT, template, &bob).json(json!({"role": "reader"})))
        .await;
    r.send(Call::new(Method::PUT, template, &bob).json(json!({"role": "owner"})))
        .await;
    r.send(Call::new(Method::DELETE, template, &bob)).await;

    // Files.
    let data = pseudo_random_bytes(300_000, 5);
    let cid = import(&data, ImportOptions::default()).1.root.to_string();
    let (status, _) = r
        .send(
            Call::new(Method::POST, "/v1/files", "/v1/files")
                .query("name", "a.bin")
                .body(data.clone(), "application/octet-stream"),
        )
        .await;
    assert_eq!(status, 201);
    r.send(
        Call::new(Method::POST, "/v1/files", "/v1/files")
            .query("cid", &cid)
            .body(b"other bytes".to_vec(), "application/octet-stream"),
    )
    .await;
    r.send(Call::new(Method::GET, "/v1/files", "/v1/files").query("limit", "10"))
        .await;
    r.send(Call::new(Method::GET, "/v1/files", "/v1/files").query("limit", "0"))
        .await;
    let search = "/v1/files/search";
    r.send(Call::new(Method::POST, search, search).json(json!({"query": "a"})))
        .await;
    r.send(Call::new(Method::POST, search, search).json(json!({"query": "!!"})))
        .await;
    let file = format!("/v1/files/{cid}");
    r.send(Call::new(Method::GET, "/v1/files/{cid}", &file))
        .await;
    r.send(Call::new(Method::GET, "/v1/files/{cid}", &file).header("range", "bytes=0-9"))
        .await;
    r.send(
        Call::new(Method::GET, "/v1/files/{cid}", &file)
            .header("if-none-match", format!("\"{cid}\"")),
    )
    .await;
    r.send(Call::new(Method::GET, "/v1/files/{cid}", &file).header("range", "bytes=999999-"))
        .await;
    r.send(Call::new(Method::GET, "/v1/files/{cid}", &file).user("bob"))
        .await;
    r.send(Call::new(
        Method::GET,
        "/v1/files/{cid}/info",
        format!("{file}/info"),
    ))
    .await;
    r.send(Call::new(
        Method::GET,
        "/v1/files/{cid}/info",
        "/v1/files/nope/info",
    ))
    .await;
    let attached = format!("{doc_path}/files/{cid}");
    let template = "/v1/docs/{id}/files/{cid}";
    r.send(Call::new(Method::PUT, template, &attached)).await;
    r.send(Call::new(Method::PUT, template, &attached).user("mallory"))
        .await;
    r.send(Call::new(
        Method::GET,
        "/v1/docs/{id}/files",
        format!("{doc_path}/files"),
    ))
    .await;
    r.send(Call::new(Method::DELETE, template, &attached)).await;
    r.send(Call::new(Method::GET, "/ipfs/{cid}", format!("/ipfs/{cid}")).query("format", "car"))
        .await;
    r.send(Call::new(Method::GET, "/ipfs/{cid}", format!("/ipfs/{cid}")).query("format", "tar"))
        .await;

    // Resumable uploads.
    let big = pseudo_random_bytes(600_000, 6);
    let big_cid = import(&big, ImportOptions::default()).1.root.to_string();
    let (_, session) = r
        .send(
            Call::new(Method::POST, "/v1/uploads", "/v1/uploads")
                .json(json!({"cid": big_cid, "size": big.len(), "name": "b.bin"})),
        )
        .await;
    let session: Value = serde_json::from_slice(&session).unwrap();
    let upload = format!("/v1/uploads/{}", session["id"].as_str().unwrap());
    let template = "/v1/uploads/{id}";
    let chunk = 256 * 1024;
    r.send(
        Call::new(Method::PATCH, template, &upload)
            .header("upload-offset", "0")
            .body(big[..chunk].to_vec(), "application/octet-stream"),
    )
    .await;
    r.send(
        Call::new(Method::PATCH, template, &upload)
            .header("upload-offset", "5")
            .body(vec![0; 10], "application/octet-stream"),
    )
    .await;
    r.send(Call::new(Method::GET, template, &upload)).await;
    let (status, _) = r
        .send(
            Call::new(Method::PATCH, template, &upload)
                .header("upload-offset", chunk.to_string())
                .body(big[chunk..].to_vec(), "application/octet-stream"),
        )
        .await;
    assert_eq!(status, 201);
    r.send(Call::new(
        Method::GET,
        template,
        "/v1/uploads/00000000000000000000000000000000",
    ))
    .await;
    r.send(
        Call::new(Method::POST, "/v1/uploads", "/v1/uploads")
            .json(json!({"cid": big_cid, "size": big.len()})),
    )
    .await;
    r.send(Call::new(Method::DELETE, "/v1/files/{cid}", &file))
        .await;
    r.send(Call::new(Method::DELETE, "/v1/files/{cid}", &file))
        .await;

    // Operations.
    let token = "/v1/dev/token";
    r.send(
        Call::new(Method::POST, token, token)
            .anonymous()
            .json(json!({"user": "dave"})),
    )
    .await;
    r.send(
        Call::new(Method::POST, token, token)
            .anonymous()
            .json(json!({"who": 1})),
    )
    .await;
    r.send(Call::new(Method::GET, "/v1/health", "/v1/health").anonymous())
        .await;
    r.send(Call::new(Method::GET, "/v1/ready", "/v1/ready").anonymous())
        .await;
    r.send(Call::new(Method::GET, "/metrics", "/metrics").anonymous())
        .await;

    let exchanges = artifacts_dir("openapi").join("exchanges.json");
    let recorded = json!({
        "exchanges": r.exchanges,
        "unrecorded": [
            ["GET", "/v1/ws", "a WebSocket upgrade, tested by the WebSocket tests"],
            ["GET", "/v1/automerge", "a WebSocket upgrade, tested by the automerge-repo tests"],
        ],
    });
    std::fs::write(&exchanges, serde_json::to_vec_pretty(&recorded).unwrap()).unwrap();
    let (ok, report) = cairn_harness::openapi::check(&spec_path, &exchanges);
    assert!(ok, "the OpenAPI check failed:\n{report}");
    println!("{report}");
}
