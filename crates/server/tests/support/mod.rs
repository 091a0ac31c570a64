//! An in-process server on a real backend, driven through `app(state).oneshot(request)`.

#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use automerge::{AutoCommit, Automerge};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn_core::protocol::{DocRequest, Entry, SyncRequest, SyncResponse};
use cairn_core::sync::from_automerge;
use cairn_core::{DocumentId, Message, OpId};
use cairn_server::auth::Authenticator;
use cairn_server::blocks::{BlockStore, FsBlockStore};
use cairn_server::documents::{Documents, Settings};
use cairn_server::files::{FileLimits, Files};
use cairn_server::lifecycle::{Lifecycle, Readiness};
use cairn_server::store::{self, StoreOptions};
use cairn_server::{AppState, Limits, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The body limit the test servers use (small, so the limit is cheap to exceed).
pub const MAX_BODY: usize = 256 * 1024;
pub const SECRET: &str = "a test secret that is long enough for HS256";

/// Which storage backend a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A server on a fresh database.
pub struct TestServer {
    pub router: Router,
    pub state: AppState,
    database_url: Option<String>,
    pub data_dir: PathBuf,
    settings: Settings,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Settings::default()).await
    }

    pub async fn start_with(backend: Backend, settings: Settings) -> Self {
        let database_url = match backend {
            Backend::Postgres => Some(cairn_harness::postgres::fresh_database().await),
            Backend::Sqlite => None,
        };
        Self::open(
            database_url,
            cairn_harness::temp_dir("cairn-server-test"),
            settings,
        )
        .await
    }

    async fn open(database_url: Option<String>, data_dir: PathBuf, settings: Settings) -> Self {
        let store = store::open(database_url.as_deref(), &data_dir, &StoreOptions::default())
            .await
            .expect("store opens");
        let blocks: Arc<dyn BlockStore> = Arc::new(
            FsBlockStore::open(data_dir.join("blocks"), data_dir.join("uploads"))
                .expect("blockstore opens"),
        );
        let store_for_readiness: Arc<dyn cairn_server::store::SchemaStore> = store.clone();
        let files = Arc::new(Files {
            store: store.clone(),
            blocks: blocks.clone(),
            limits: FileLimits::default(),
            pin_wake: None,
        });
        let state = AppState {
            documents: Arc::new(Documents::new(store, settings, 100)),
            files,
            auth: Arc::new(Authenticator::hs256(SECRET.as_bytes(), true).unwrap()),
            limits: Limits {
                max_body_bytes: MAX_BODY,
                ..Limits::default()
            },
            connections: Arc::default(),
            dev_auth: false,
            www_dir: None,
            pkg_dir: None,
            metrics_token: Some("metrics-secret".into()),
            lifecycle: Lifecycle::default(),
            readiness: Arc::new(Readiness {
                schema: store_for_readiness,
                blocks,
            }),
            rate_limits: Arc::default(),
            automerge: Arc::new(cairn_server::automerge::AutomergeHub::new(
                "cairn-test".into(),
                "cairn-test-storage".into(),
            )),
        };
        Self {
            router: app(state.clone()),
            state,
            database_url,
            data_dir,
            settings,
        }
    }

    /// Another server on the same storage: a second replica, or the same one restarted.
    pub async fn replica(&self) -> Self {
        Self::open(
            self.database_url.clone(),
            self.data_dir.clone(),
            self.settings,
        )
        .await
    }

    pub fn token(&self, user: &str) -> String {
        self.state
            .auth
            .mint(user, Duration::from_secs(600))
            .unwrap()
    }

    /// One request; `token` `None` sends no Authorization header.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let content_type = if path.ends_with("/sync") {
            "application/vnd.cairn.v1"
        } else {
            "application/json"
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        (
            status,
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    }

    /// Sends `request` as is: status, headers and body.
    /// Runs one SQL statement on the server's database directly (to set up a past state).
    pub async fn execute_sql(&self, statement: &'static str) {
        match &self.database_url {
            Some(url) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::query(statement).execute(&pool).await.unwrap();
                pool.close().await;
            }
            None => {
                let path = self.data_dir.join(cairn_server::store::SQLITE_FILE_NAME);
                let url = format!("sqlite:{}", path.display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query(statement).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, bytes)
    }

    pub async fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let (status, bytes) = self.call(method, path, token, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// A sync round as `user`: the response, or the status and JSON error.
    pub async fn sync(
        &self,
        user: &str,
        request: SyncRequest,
    ) -> Result<SyncResponse, (StatusCode, serde_json::Value)> {
        let token = self.token(user);
        let (status, body) = self
            .call(
                "POST",
                "/v1/sync",
                Some(&token),
                Message::SyncRequest(request).encode(),
            )
            .await;
        if status != StatusCode::OK {
            return Err((
                status,
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            ));
        }
        match Message::decode(&body).expect("a response frame") {
            Message::SyncResponse(r) => Ok(r),
            other => panic!("expected a sync response, got {other:?}"),
        }
    }

    /// The stored document as `user` sees it: `None` on 403.
    pub async fn get(&self, user: &str, document: DocumentId) -> Option<Automerge> {
        let token = self.token(user);
        let (status, body) = self
            .call("GET", &format!("/v1/docs/{document}"), Some(&token), vec![])
            .await;
        match status {
            StatusCode::OK => Some(Automerge::load(&body).expect("valid automerge")),
            StatusCode::FORBIDDEN => None,
            s => panic!("GET document: {s}: {}", String::from_utf8_lossy(&body)),
        }
    }

    pub async fn change_count(&self, document: DocumentId) -> u64 {
        self.state
            .documents
            .store
            .change_count(&document)
            .await
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_random_bytes([n; 16])
}

pub fn op(n: u8) -> OpId {
    OpId::from_bytes([n; 16])
}

/// A request sending every change of `doc` as one outbox entry, with `doc`'s heads.
pub fn push_all(document: DocumentId, doc: &mut AutoCommit, op: OpId) -> SyncRequest {
    let changes = doc
        .get_changes(&[])
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

/// A request that only asks for what a client with `heads` lacks.
pub fn pull(document: DocumentId, heads: Vec<cairn_core::ChangeHash>) -> SyncRequest {
    SyncRequest {
        request: 2,
        documents: vec![DocRequest {
            document,
            heads,
            entries: vec![],
        }],
    }
}

/// Runs each named async test body once on PostgreSQL and once on SQLite.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test(super::Backend::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(super::Backend::Sqlite).await;
            }
        }
    )*};
}
