//! Flag groups several commands share: where the data is ([`StorageArgs`]: `serve`,
//! `backup`, `restore`, `verify`, `migrate`, `gc`), the pinning backend ([`PinArgs`]:
//! `serve`, `verify`, `gc`), garbage collection ([`GcArgs`]: `serve`, `gc`) and rate limits
//! ([`RateLimitArgs`]: `serve`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::blocks::{Backend, BlockStore, FsBlockStore, S3BlockStore, S3Config};

use crate::store::StoreOptions;

/// Where a deployment keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// PostgreSQL URL (`postgres://…`) or `sqlite:` URL. Unset: the embedded SQLite
    /// database in the data directory.
    #[arg(long, env = "CAIRN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the embedded database, and for the blockstore and upload sessions
    /// with `--blockstore fs`.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,

    /// Where blocks and the bytes of resumable uploads live: `fs` (the data directory) or
    /// `s3://bucket/prefix` (an S3 bucket every replica shares).
    #[arg(long, env = "CAIRN_BLOCKSTORE", default_value = "fs")]
    pub blockstore: Backend,

    /// S3 endpoint for S3-compatible stores (`http://127.0.0.1:9000`). Unset: `AWS_ENDPOINT`,
    /// else AWS.
    #[arg(long, env = "CAIRN_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 access key id (with `--s3-secret-access-key`). Unset: the `AWS_*` environment
    /// (`AWS_SESSION_TOKEN`, an instance or task role).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,

    /// S3 secret access key (prefer the environment variable to the flag).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// S3 region. Unset: `AWS_REGION` or `AWS_DEFAULT_REGION`, else `us-east-1`.
    #[arg(long, env = "CAIRN_S3_REGION")]
    pub s3_region: Option<String>,

    /// Allow a plain-HTTP S3 endpoint (also `AWS_ALLOW_HTTP=true`).
    #[arg(long, env = "CAIRN_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,

    /// Seconds an S3 request may take, retries included, before it counts as unavailable
    /// (503 to clients).
    #[arg(
        long = "s3-timeout",
        value_name = "SECS",
        env = "CAIRN_S3_TIMEOUT",
        default_value_t = 30
    )]
    pub s3_timeout_secs: u64,

    /// Database connection pool size (PostgreSQL).
    #[arg(long, env = "CAIRN_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Seconds to wait for a pooled database connection before answering 503.
    #[arg(
        long = "db-acquire-timeout",
        value_name = "SECS",
        env = "CAIRN_DB_ACQUIRE_TIMEOUT",
        default_value_t = 10
    )]
    pub db_acquire_timeout_secs: u64,

    /// Seconds to keep retrying (with backoff) to reach the database at startup.
    #[arg(
        long = "db-connect-retry",
        value_name = "SECS",
        env = "CAIRN_DB_CONNECT_RETRY",
        default_value_t = 30
    )]
    pub db_connect_retry_secs: u64,
}

impl StorageArgs {
    /// Connection settings; `migrate`: bring the schema up to date when opening.
    pub fn options(&self, migrate: bool) -> StoreOptions {
        StoreOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_secs(self.db_acquire_timeout_secs),
            connect_retry: Duration::from_secs(self.db_connect_retry_secs),
            migrate,
        }
    }

    /// Opens the blockstore `--blockstore` names. `attach`: beside a running server (its
    /// staging area is left alone).
    pub fn blockstore(&self, attach: bool) -> anyhow::Result<Arc<dyn BlockStore>> {
        use anyhow::Context;
        Ok(match &self.blockstore {
            Backend::Fs => {
                let (dir, uploads) = (self.blocks_dir(), self.uploads_dir());
                let store = if attach {
                    FsBlockStore::attach(&dir, uploads)
                } else {
                    FsBlockStore::open(&dir, uploads)
                };
                Arc::new(
                    store.with_context(|| {
                        format!("cannot open the blockstore in {}", dir.display())
                    })?,
                )
            }
            Backend::S3 { bucket, prefix } => Arc::new(S3BlockStore::open(&S3Config {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                allow_http: self.s3_allow_http,
                timeout: Duration::from_secs(self.s3_timeout_secs.max(1)),
                credentials: self
                    .s3_access_key_id
                    .clone()
                    .zip(self.s3_secret_access_key.clone()),
            })?),
        })
    }

    /// The fs blockstore's directory.
    pub fn blocks_dir(&self) -> PathBuf {
        self.data_dir.join("blocks")
    }

    /// Where resumable uploads keep their bytes.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
}

/// Where stored files are pinned.
#[derive(Debug, Clone, clap::Args)]
pub struct PinArgs {
    /// Where stored files are pinned, comma-separated: `none`; `kubo` (Kubo's RPC API at
    /// `--kubo-api-url`); `pinning-service` (a remote service's IPFS Pinning Service API at
    /// `--pinning-service-url`); or `kubo,pinning-service` (Kubo holds and provides the
    /// content, the service pins a copy it fetches from Kubo's addresses).
    #[arg(
        long,
        env = "CAIRN_PIN_BACKEND",
        default_value = "none",
        value_delimiter = ',',
        value_parser = ["none", "kubo", "pinning-service"]
    )]
    pub pin_backend: Vec<String>,

    /// The pinning service's API endpoint (without `/pins`), for `pinning-service`.
    #[arg(long, env = "CAIRN_PINNING_SERVICE_URL")]
    pub pinning_service_url: Option<String>,

    /// The pinning service's access token (sent as `Authorization: Bearer`).
    #[arg(long, env = "CAIRN_PINNING_SERVICE_TOKEN", hide_env_values = true)]
    pub pinning_service_token: Option<String>,

    /// Names given to pins at the pinning service: this prefix and the CID (no file names
    /// leave the server), so one deployment's pins can be told apart.
    #[arg(long, env = "CAIRN_PIN_NAME_PREFIX", default_value = "cairn-")]
    pub pin_name_prefix: String,

    /// Multiaddrs where the pinning service can fetch the content (`/ip4/…/tcp/4001/p2p/…`),
    /// comma-separated; with `kubo` too, Kubo's own addresses are added.
    #[arg(long, env = "CAIRN_PIN_ORIGINS", value_delimiter = ',')]
    pub pin_origins: Vec<String>,

    /// Kubo's RPC API, for `--pin-backend kubo`. Repeat the flag (or separate with commas)
    /// for several Kubo nodes: each is a backend of its own.
    #[arg(
        long,
        env = "CAIRN_KUBO_API_URL",
        default_value = "http://127.0.0.1:5001",
        value_delimiter = ','
    )]
    pub kubo_api_url: Vec<String>,

    /// How many backends (Kubo nodes, then the pinning service) must hold a file for it to be
    /// `pinned`. Unset: all of them.
    #[arg(long, env = "CAIRN_PIN_REPLICAS")]
    pub pin_replicas: Option<usize>,

    /// Longest wait between attempts to pin a file while the backend is unreachable.
    #[arg(long, env = "CAIRN_PIN_RETRY_MAX_SECS", default_value_t = 300)]
    pub pin_retry_max_secs: u64,
}

/// Garbage collection.
#[derive(Debug, Clone, clap::Args)]
pub struct GcArgs {
    /// Seconds between garbage collections (unreferenced file contents, unused blocks,
    /// expired upload sessions, unpinning).
    #[arg(long, env = "CAIRN_GC_EVERY_SECS", default_value_t = 300)]
    pub gc_every_secs: u64,

    /// How long a file content stays unreferenced before it is collected.
    #[arg(long, env = "CAIRN_GC_GRACE_SECS", default_value_t = 3600)]
    pub gc_grace_secs: u64,

    /// Upload sessions untouched this long (seconds) are removed with their bytes.
    #[arg(long, env = "CAIRN_UPLOAD_EXPIRY_SECS", default_value_t = 7 * 24 * 3600)]
    pub upload_expiry_secs: u64,
}

impl GcArgs {
    pub fn settings(&self) -> crate::gc::GcSettings {
        crate::gc::GcSettings {
            every: Duration::from_secs(self.gc_every_secs.max(1)),
            grace: Duration::from_secs(self.gc_grace_secs),
            upload_expiry: Duration::from_secs(self.upload_expiry_secs),
            ..crate::gc::GcSettings::default()
        }
    }
}

/// Request rate limits, per replica (each replica counts what it serves; behind a load
/// balancer over N replicas a client may get up to N times these rates).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RateLimitArgs {
    /// Requests (and WebSocket frames) per second one user may make, sustained; 0: no
    /// per-user limit.
    #[arg(long, env = "CAIRN_RATE_LIMIT_USER", default_value_t = 100)]
    pub rate_limit_user: u32,

    /// How many requests a user may make at once above the sustained rate.
    #[arg(long, env = "CAIRN_RATE_LIMIT_USER_BURST", default_value_t = 500)]
    pub rate_limit_user_burst: u32,

    /// Requests (and WebSocket frames) per second from one client address, sustained; 0: no
    /// per-address limit.
    #[arg(long, env = "CAIRN_RATE_LIMIT_IP", default_value_t = 500)]
    pub rate_limit_ip: u32,

    /// How many requests one address may make at once above the sustained rate.
    #[arg(long, env = "CAIRN_RATE_LIMIT_IP_BURST", default_value_t = 2000)]
    pub rate_limit_ip_burst: u32,
}
