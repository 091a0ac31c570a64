//! An in-process server on a real backend, driven through `app(state).oneshot(request)`.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn_core::{ChangeHash, DocumentId, Message};
use cairn_server::{AppState, Limits, app, store};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The body limit the test servers use (small, so the limit is cheap to exceed).
pub const MAX_BODY: usize = 256 * 1024;

/// Which storage backend a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A server on a fresh database.
pub struct TestServer {
    router: Router,
    database_url: Option<String>,
    data_dir: PathBuf,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        let database_url = match backend {
            Backend::Postgres => Some(cairn_harness::postgres::fresh_database().await),
            Backend::Sqlite => None,
        };
        Self::open(database_url, cairn_harness::temp_dir("cairn-server-test")).await
    }

    async fn open(database_url: Option<String>, data_dir: PathBuf) -> Self {
        let store = store::open(database_url.as_deref(), &data_dir)
            .await
            .expect("store opens");
        let state = AppState {
            store,
            limits: Limits {
                max_body_bytes: MAX_BODY,
            },
            www_dir: None,
            pkg_dir: None,
        };
        Self {
            router: app(state),
            database_url,
            data_dir,
        }
    }

    /// A second server on the same storage, as after a restart.
    pub async fn reopen(&self) -> Self {
        Self::open(self.database_url.clone(), self.data_dir.clone()).await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let (status, bytes) = self.call(method, path, body).await;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub async fn call(&self, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/vnd.cairn.v1")
            .body(Body::from(body))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, bytes)
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
        self.request("POST", path, body).await
    }

    /// Pushes Automerge bytes; returns the status and the raw reply.
    pub async fn push(&self, document: DocumentId, data: Vec<u8>) -> (StatusCode, Vec<u8>) {
        self.call(
            "POST",
            "/v1/push",
            Message::Push { document, data }.encode(),
        )
        .await
    }

    /// Pushes and expects an ack; returns its heads and `applied`.
    pub async fn push_ack(&self, document: DocumentId, data: Vec<u8>) -> (Vec<ChangeHash>, u64) {
        let (status, body) = self.push(document, data).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        match Message::decode(&body).expect("an ack frame") {
            Message::Ack {
                document: d,
                heads,
                applied,
            } => {
                assert_eq!(d, document);
                (heads, applied)
            }
            other => panic!("expected an ack, got {other:?}"),
        }
    }

    /// The stored document, or `None` on 404.
    pub async fn get(&self, document: DocumentId) -> Option<automerge::Automerge> {
        let (status, body) = self
            .call("GET", &format!("/v1/docs/{document}"), vec![])
            .await;
        match status {
            StatusCode::OK => Some(automerge::Automerge::load(&body).expect("valid automerge")),
            StatusCode::NOT_FOUND => None,
            s => panic!("GET document: {s}: {}", String::from_utf8_lossy(&body)),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
