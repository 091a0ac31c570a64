//! Server configuration: command-line flags with environment-variable fallbacks. Every
//! setting has a default except authentication, which must be chosen: a JWT secret or public
//! key, or `--dev-auth` for local development.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `cairn serve` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on. Port 0 picks a free port (the chosen one is printed).
    #[arg(long, env = "CAIRN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PostgreSQL URL (`postgres://…`) or `sqlite:` URL. Unset: the embedded SQLite
    /// database in the data directory.
    #[arg(long, env = "CAIRN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the embedded database and, later, the local blockstore.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,

    /// Directory served at `/` (the demo app, as `scripts/run` builds it). Not served when
    /// missing.
    #[arg(long, env = "CAIRN_WWW_DIR", default_value = "./www/dist")]
    pub www_dir: PathBuf,

    /// Directory served at `/pkg/` (the npm package). Not served when missing.
    #[arg(long, env = "CAIRN_PKG_DIR", default_value = "./pkg")]
    pub pkg_dir: PathBuf,

    /// HS256 secret that signs client tokens (at least 32 bytes).
    #[arg(long, env = "CAIRN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Ed25519 public key (PEM file) that verifies client tokens (EdDSA).
    #[arg(long, env = "CAIRN_JWT_PUBLIC_KEY", conflicts_with = "jwt_secret")]
    pub jwt_public_key: Option<PathBuf>,

    /// Require this `iss` claim.
    #[arg(long, env = "CAIRN_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Require this `aud` claim.
    #[arg(long, env = "CAIRN_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Development mode: serve `POST /v1/dev/token` to mint tokens for named local users.
    /// Refused unless listening on a loopback address.
    #[arg(long, env = "CAIRN_DEV_AUTH")]
    pub dev_auth: bool,

    /// Largest accepted request body or WebSocket message, in bytes.
    #[arg(long, env = "CAIRN_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most documents in one sync request.
    #[arg(long, env = "CAIRN_MAX_DOCUMENTS_PER_REQUEST", default_value_t = 100)]
    pub max_documents_per_request: usize,

    /// Most changes in one sync request.
    #[arg(long, env = "CAIRN_MAX_CHANGES_PER_REQUEST", default_value_t = 10_000)]
    pub max_changes_per_request: usize,

    /// Most documents one WebSocket connection may follow.
    #[arg(long, env = "CAIRN_MAX_SUBSCRIPTIONS", default_value_t = 1_000)]
    pub max_subscriptions: usize,

    /// Most simultaneous WebSocket connections per user (per server process).
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS_PER_USER", default_value_t = 16)]
    pub max_connections_per_user: usize,

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

    /// Documents kept in the in-memory cache.
    #[arg(long, env = "CAIRN_CACHE_DOCUMENTS", default_value_t = 1_000)]
    pub cache_documents: usize,

    /// Write a compacted snapshot of a document after this many new changes.
    #[arg(long, env = "CAIRN_SNAPSHOT_EVERY", default_value_t = 500)]
    pub snapshot_every: usize,

    /// Largest file accepted by `POST /v1/files`, in bytes.
    #[arg(long, env = "CAIRN_MAX_FILE_BYTES", default_value_t = 1 << 30)]
    pub max_file_bytes: u64,

    /// Media types accepted for files, comma-separated: exact (`application/pdf`), a family
    /// (`image/*`), or `*/*` for any.
    #[arg(
        long,
        env = "CAIRN_ALLOWED_FILE_TYPES",
        default_value = "*/*",
        value_delimiter = ','
    )]
    pub allowed_file_types: Vec<String>,

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

    /// Kubo's RPC API, for `--pin-backend kubo`.
    #[arg(
        long,
        env = "CAIRN_KUBO_API_URL",
        default_value = "http://127.0.0.1:5001"
    )]
    pub kubo_api_url: String,

    /// Longest wait between attempts to pin a file while the backend is unreachable.
    #[arg(long, env = "CAIRN_PIN_RETRY_MAX_SECS", default_value_t = 300)]
    pub pin_retry_max_secs: u64,

    /// A bearer token `GET /metrics` requires (unset: the endpoint is open; it shows counts).
    #[arg(long, env = "CAIRN_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

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
