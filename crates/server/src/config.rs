//! Server configuration: command-line flags with environment-variable fallbacks. Every
//! setting has a default, so `cairn serve` alone runs on the embedded SQLite default.

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

    /// Directory served at `/` (the demo app). Not served when missing.
    #[arg(long, env = "CAIRN_WWW_DIR", default_value = "./www")]
    pub www_dir: PathBuf,

    /// Directory served at `/pkg/` (the npm package). Not served when missing.
    #[arg(long, env = "CAIRN_PKG_DIR", default_value = "./pkg")]
    pub pkg_dir: PathBuf,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CAIRN_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
}
