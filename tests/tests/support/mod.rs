//! Shared by the end-to-end tests: the server process with a known JWT secret, tokens, an
//! HTTP sync client and a WebSocket protocol client.

#![allow(dead_code)] // each test file uses its own subset
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use automerge::AutoCommit;
use automerge::transaction::Transactable;
use cairn_core::protocol::{DocHeads, DocRequest, Entry, SyncRequest, SyncResponse};
use cairn_core::sync::from_automerge;
use cairn_core::{ChangeHash, DocumentId, Message, OpId};
use cairn_harness::server::ServerProcess;
use cairn_harness::{artifacts_dir, temp_dir};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub const SECRET: &str = "an end-to-end test secret, long enough for HS256";

/// Starts the server binary on `database_url` with the test secret and `extra` flags.
pub fn start_server(name: &str, database_url: &str, extra: &[&str]) -> ServerProcess {
    start_server_in(name, Some(database_url), &temp_dir("cairn-e2e-data"), extra)
}

/// Starts the server binary on `data_dir` and `database_url` (`None`: the embedded SQLite).
pub fn start_server_in(
    name: &str,
    database_url: Option<&str>,
    data_dir: &Path,
    extra: &[&str],
) -> ServerProcess {
    let mut args = vec!["--jwt-secret", SECRET];
    if let Some(url) = database_url {
        args.extend(["--database-url", url]);
    }
    let data = data_dir.display().to_string();
    args.extend(["--data-dir", &data]);
    args.extend(extra);
    let log = artifacts_dir("server-logs").join(format!("{name}.log"));
    ServerProcess::start(Path::new(CAIRN), &args, log)
}

/// The `cairn` binary under test.
pub const CAIRN: &str = env!("CARGO_BIN_EXE_cairn-e2e-server");

/// Runs `cairn <args>` to its end: exit code, stdout, stderr.
pub async fn cairn(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(CAIRN)
        .args(args)
        .env("CAIRN_LOG", "warn")
        .output()
        .await
        .expect("cairn runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `POST /v1/files?name=…` as `user`: the stored file's info.
pub async fn upload_file(base: &str, user: &str, name: &str, data: Vec<u8>) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{base}v1/files?name={name}"))
        .bearer_auth(token(user))
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "upload {name}");
    response.json().await.unwrap()
}

/// `GET /v1/files/{cid}` as `user`: the bytes.
pub async fn download_file(base: &str, user: &str, cid: &str) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(format!("{base}v1/files/{cid}"))
        .bearer_auth(token(user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "download {cid}");
    response.bytes().await.unwrap().to_vec()
}

/// The server's Prometheus scrape (`GET /metrics`).
pub async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `series` (name and labels exactly as rendered), 0 if absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// `GET /v1/files/{cid}/info` with `token`.
pub async fn file_info(base: &str, token: &str, cid: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{base}v1/files/{cid}/info"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (up to 60 s) until file `cid`'s pin status is `want`.
pub async fn wait_for_pin(base: &str, token: &str, cid: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = file_info(base, token, cid).await;
        if info["pin"] == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{cid} is still {}, not {want}",
            info["pin"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /v1/docs/{id}` as `user`: the merged document.
pub async fn fetch_doc(base: &str, user: &str, id: DocumentId) -> automerge::Automerge {
    let response = reqwest::Client::new()
        .get(format!("{base}v1/docs/{id}"))
        .bearer_auth(token(user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "document {id}");
    automerge::Automerge::load(&response.bytes().await.unwrap()).unwrap()
}

/// A valid token for `user`.
pub fn token(user: &str) -> String {
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let claims = serde_json::json!({ "sub": user, "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

pub fn op(n: u64) -> OpId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes[8] = 0xee;
    OpId::from_bytes(bytes)
}

/// A request sending `doc`'s changes after `since` as one entry.
pub fn push_since(
    document: DocumentId,
    doc: &mut AutoCommit,
    since: &[automerge::ChangeHash],
    op: OpId,
) -> SyncRequest {
    let changes = doc
        .get_changes(since)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    SyncRequest {
        request: 1,
        documents: vec![DocRequest {
            document,
            heads: from_automerge(&doc.get_heads()),
            entries: vec![Entry { op, changes }],
        }],
    }
}

/// Creates `id` as `user` with one change (`n`); returns the local copy.
pub async fn create_doc(base: &str, user: &str, id: DocumentId, n: u64) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "n", n as i64).unwrap();
    http_sync(base, user, push_since(id, &mut doc, &[], op(n)))
        .await
        .unwrap();
    doc
}

/// One more change (`n`) to `doc`, sent over HTTP.
pub async fn write_doc(base: &str, user: &str, id: DocumentId, doc: &mut AutoCommit, n: u64) {
    let before = doc.get_heads();
    doc.put(automerge::ROOT, "n", n as i64).unwrap();
    http_sync(base, user, push_since(id, doc, &before, op(n)))
        .await
        .unwrap();
}

/// The changes pushed to `document`, or a panic naming what came instead.
pub fn expect_changes(
    message: Option<Message>,
    document: DocumentId,
) -> cairn_core::protocol::DocChanges {
    match message {
        Some(Message::Changes(c)) if c.document == document => c,
        other => panic!("expected changes to {document}, got {other:?}"),
    }
}

/// `POST /v1/sync` as `user`; the response or the HTTP status.
pub async fn http_sync(
    base: &str,
    user: &str,
    request: SyncRequest,
) -> Result<SyncResponse, reqwest::Error> {
    let body = reqwest::Client::new()
        .post(format!("{base}v1/sync"))
        .bearer_auth(token(user))
        .header("content-type", cairn_core::protocol::MEDIA_TYPE)
        .body(Message::SyncRequest(request).encode())
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    match Message::decode(&body).expect("a frame") {
        Message::SyncResponse(r) => Ok(r),
        other => panic!("expected a sync response, got {other:?}"),
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking the protocol.
pub struct WsClient {
    stream: Stream,
    /// Messages received while waiting for something else.
    pending: std::collections::VecDeque<Message>,
}

impl WsClient {
    /// Connects without authenticating.
    pub async fn connect_raw(base: &str) -> Self {
        let url = format!("{}v1/ws", base.replacen("http", "ws", 1));
        // No Nagle delay on the client either (browsers disable it too).
        let (stream, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .expect("websocket connects");
        Self {
            stream,
            pending: Default::default(),
        }
    }

    /// Connects and authenticates as `user`; panics unless welcomed.
    pub async fn connect(base: &str, user: &str) -> Self {
        let mut client = Self::connect_raw(base).await;
        client.send(Message::Auth { token: token(user) }).await;
        match client.recv().await {
            Some(Message::Welcome { user: u }) => assert_eq!(u, user),
            other => panic!("expected Welcome, got {other:?}"),
        }
        client
    }

    pub async fn send(&mut self, message: Message) {
        self.stream
            .send(WsMessage::Binary(message.encode().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, frame: WsMessage) {
        self.stream.send(frame).await.expect("send");
    }

    /// The next protocol message within 10 s; `None` if the connection closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.recv_within(Duration::from_secs(10))
            .await
            .expect("a message within 10 s")
    }

    /// The next message within `timeout`: `Err(())` on timeout, `Ok(None)` when closed.
    pub async fn recv_within(&mut self, timeout: Duration) -> Result<Option<Message>, ()> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(Some(m));
        }
        loop {
            let frame = tokio::time::timeout(timeout, self.stream.next())
                .await
                .map_err(|_| ())?;
            match frame {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    return Ok(Some(Message::decode(&bytes).expect("valid frame")));
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return Ok(None),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Waits until the server has handled everything sent before: an empty sync round trip.
    /// Messages that arrive meanwhile are kept for `recv`.
    pub async fn barrier(&mut self) {
        let id = u64::MAX;
        self.send(Message::SyncRequest(SyncRequest {
            request: id,
            documents: vec![],
        }))
        .await;
        let mut held = Vec::new();
        loop {
            match self
                .recv_within(Duration::from_secs(10))
                .await
                .expect("barrier answered")
            {
                Some(Message::SyncResponse(r)) if r.request == id => break,
                Some(other) => held.push(other),
                None => panic!("connection closed during a barrier"),
            }
        }
        self.pending.extend(held);
    }

    pub async fn subscribe(&mut self, docs: &[(DocumentId, Vec<ChangeHash>)]) {
        let docs = docs
            .iter()
            .map(|(document, heads)| DocHeads {
                document: *document,
                heads: heads.clone(),
            })
            .collect();
        self.send(Message::Subscribe(docs)).await;
    }
}

/// The newest modification time of any file under `dir`.
fn newest(dir: &std::path::Path) -> std::time::SystemTime {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                newest(&path)
            } else {
                e.metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
            }
        })
        .max()
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}

/// The test drives the built npm package; refuse to test a stale one.
pub fn require_fresh_pkg() {
    let root = &cairn_harness::workspace_root();
    let wasm = root.join("pkg/wasm/cairn_client_bg.wasm");
    let built = std::fs::metadata(&wasm)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: run scripts/build-wasm", wasm.display()));
    let sources =
        newest(&root.join("crates/client/src")).max(newest(&root.join("crates/core/src")));
    assert!(
        built >= sources,
        "pkg/wasm is older than the crates/client or crates/core sources: run scripts/build-wasm"
    );
}

/// The server binary for a browser or Node scenario: a fresh PostgreSQL database and data
/// directory, development sign-in, the static site `www` at `/` (and the npm package at
/// `/pkg/` when given), and `extra` flags; its log in `<artifacts>/<area>/<log>.log`.
pub async fn dev_server(
    area: &str,
    log: &str,
    www: &Path,
    pkg: Option<&Path>,
    extra: &[&str],
) -> ServerProcess {
    let database = cairn_harness::postgres::fresh_database().await;
    let data = temp_dir(&format!("cairn-{area}-data"))
        .display()
        .to_string();
    let www = www.display().to_string();
    let pkg = pkg.map(|p| p.display().to_string());
    let mut args = vec![
        "--database-url",
        &database,
        "--data-dir",
        &data,
        "--www-dir",
        &www,
        "--dev-auth",
    ];
    if let Some(pkg) = &pkg {
        args.extend(["--pkg-dir", pkg]);
    }
    args.extend_from_slice(extra);
    ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server")),
        &args,
        artifacts_dir(area).join(format!("{log}.log")),
    )
}
