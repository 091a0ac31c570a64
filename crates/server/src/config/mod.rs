//! Server configuration: command-line flags with environment-variable fallbacks. Every
//! setting has a default except authentication, which must be chosen: a JWT secret or public
//! key, or `--dev-auth` for local development.
//!
//! Groups that several commands share (where the data is, the pinning backend, garbage
//! collection) are in `shared`, flattened into each command, so `cairn backup` reads the
//! same flags and environment as `cairn serve`.

mod shared;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use self::shared::{GcArgs, PinArgs, RateLimitArgs, StorageArgs};

/// `cairn serve` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on. Port 0 picks a free port (the chosen one is printed).
    #[arg(long, env = "CAIRN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub storage: StorageArgs,

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

    #[command(flatten)]
    pub rate_limits: RateLimitArgs,

    /// Take the client's address from the `X-Forwarded-For` header's last entry (set this
    /// only behind a reverse proxy that appends it, such as nginx), for per-address limits.
    #[arg(long, env = "CAIRN_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Seconds a shutdown (SIGTERM, SIGINT) waits for in-flight requests before it exits.
    #[arg(long, env = "CAIRN_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

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

    #[command(flatten)]
    pub pins: PinArgs,

    /// A bearer token `GET /metrics` requires (unset: the endpoint is open; it shows counts).
    #[arg(long, env = "CAIRN_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    #[command(flatten)]
    pub gc: GcArgs,

    /// The storage id automerge-repo peers see (`GET /v1/automerge`): one per deployment, the
    /// same on every replica. Unset: derived from the database URL without its credentials
    /// (or the data directory), so set it when replicas reach one database by different URLs.
    #[arg(long, env = "CAIRN_AUTOMERGE_STORAGE_ID")]
    pub automerge_storage_id: Option<String>,
}
