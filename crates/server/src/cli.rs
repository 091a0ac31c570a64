//! The `cairn` command line. `main.rs` only calls [`main`], so every binary that embeds the
//! server (the test harness's among them) behaves identically.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cairn_core::sync::server::Limits as RequestLimits;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::auth::{self, Authenticator};
use crate::blocks::FsBlockStore;
use crate::config::ServeConfig;
use crate::documents::{Documents, Settings};
use crate::files::{FileLimits, Files};
use crate::gc::{self, GcSettings};
use crate::http::{AppState, Limits};
use crate::pinning::{self, Chain, KuboPinner, PinSettings, Pinner, ServiceConfig, ServicePinner};
use crate::store::{self, StoreOptions};
use crate::{serve, spawn_listener};

/// Cairn: offline-first storage for Progressive Web Apps.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sync server (and serve the demo app).
    Serve(Box<ServeConfig>),
    /// Print a file's IPFS CID without storing anything, like `ipfs add -n -Q`.
    Cid(CidArgs),
}

#[derive(Debug, clap::Args)]
struct CidArgs {
    /// The file to hash (`-` for standard input).
    file: std::path::PathBuf,
    /// 1: CIDv1 with raw leaves (`ipfs add --cid-version=1`); 0: Kubo's `ipfs add` default.
    #[arg(long, default_value = "1", value_parser = ["0", "1"])]
    cid_version: String,
}

/// Parses arguments, runs the command, and reports errors with their context chain.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Cid(args) = &cli.command {
        return match print_cid(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(config) => run_serve(*config).await,
            Command::Cid(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Streams the file through the importer (memory: one chunk and the tree's open nodes).
fn print_cid(args: &CidArgs) -> anyhow::Result<()> {
    use cairn_core::content::{CidVersion, ImportOptions, Importer};
    use std::io::Read;

    let version = if args.cid_version == "0" {
        CidVersion::V0
    } else {
        CidVersion::V1
    };
    let mut input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?,
        )
    };
    let mut importer = Importer::new(ImportOptions {
        version,
        ..ImportOptions::default()
    });
    let (mut buf, mut blocks) = (vec![0u8; 1 << 20], Vec::new());
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", args.file.display()));
            }
        };
        importer.write(&buf[..n], &mut blocks);
        blocks.clear();
    }
    println!("{}", importer.finish(&mut blocks).root);
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The token verifier the configuration asks for.
fn authenticator(config: &ServeConfig) -> anyhow::Result<Authenticator> {
    if config.dev_auth && !config.listen.ip().is_loopback() {
        bail!(
            "refusing --dev-auth on {}: development tokens are only allowed on a loopback address",
            config.listen
        );
    }
    let auth = match (&config.jwt_secret, &config.jwt_public_key) {
        (Some(secret), _) => Authenticator::hs256(secret.as_bytes(), config.dev_auth)?,
        (None, Some(path)) => {
            if config.dev_auth {
                bail!("--dev-auth mints HS256 tokens and cannot be combined with --jwt-public-key");
            }
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Authenticator::ed25519(&pem)?
        }
        (None, None) if config.dev_auth => {
            let secret = auth::dev_secret(&config.data_dir)
                .context("cannot set up the development secret")?;
            Authenticator::hs256(&secret, true)?
        }
        (None, None) => bail!(
            "no authentication configured: set --jwt-secret (HS256) or --jwt-public-key (Ed25519), \
             or pass --dev-auth for local development"
        ),
    };
    Ok(auth.require(config.jwt_issuer.as_deref(), config.jwt_audience.as_deref()))
}

/// The pinning backend the configuration asks for (`None`: no pinning).
fn pinner(config: &ServeConfig) -> anyhow::Result<Option<Arc<dyn Pinner>>> {
    let wants = |name: &str| config.pin_backend.iter().any(|b| b == name);
    let kubo = if wants("kubo") {
        Some(Arc::new(KuboPinner::new(&config.kubo_api_url)?))
    } else {
        None
    };
    let service = if wants("pinning-service") {
        let endpoint = config.pinning_service_url.clone().context(
            "--pin-backend pinning-service needs --pinning-service-url (CAIRN_PINNING_SERVICE_URL)",
        )?;
        let token = config.pinning_service_token.clone().context(
            "--pin-backend pinning-service needs --pinning-service-token (CAIRN_PINNING_SERVICE_TOKEN)",
        )?;
        let service = ServiceConfig {
            endpoint,
            token,
            name_prefix: config.pin_name_prefix.clone(),
            origins: config.pin_origins.clone(),
            ..ServiceConfig::default()
        };
        Some(Arc::new(ServicePinner::new(service, kubo.clone())?))
    } else {
        None
    };
    Ok(match (kubo, service) {
        (Some(kubo), Some(service)) => Some(Arc::new(Chain(vec![kubo, service]))),
        (Some(kubo), None) => Some(kubo),
        (None, Some(service)) => Some(service),
        (None, None) => None,
    })
}

async fn run_serve(config: ServeConfig) -> anyhow::Result<()> {
    let auth = authenticator(&config)?;
    let options = StoreOptions {
        max_connections: config.db_max_connections,
        acquire_timeout: Duration::from_secs(config.db_acquire_timeout_secs),
        connect_retry: Duration::from_secs(config.db_connect_retry_secs),
    };
    let store = store::open(config.database_url.as_deref(), &config.data_dir, &options)
        .await
        .context("cannot open the document store")?;
    let settings = Settings {
        limits: RequestLimits {
            max_documents: config.max_documents_per_request,
            max_changes: config.max_changes_per_request,
        },
        snapshot_every: config.snapshot_every,
    };
    let blocks = FsBlockStore::open(config.data_dir.join("blocks")).with_context(|| {
        format!(
            "cannot open the blockstore in {}",
            config.data_dir.join("blocks").display()
        )
    })?;
    let pinner = pinner(&config)?;
    let pin_wake = pinner
        .is_some()
        .then(|| Arc::new(tokio::sync::Notify::new()));
    let files = Arc::new(Files {
        store: store.clone(),
        blocks: Arc::new(blocks),
        limits: FileLimits {
            max_file_bytes: config.max_file_bytes,
            allowed_types: config.allowed_file_types.clone(),
        },
        uploads_dir: config.data_dir.join("uploads"),
        pin_wake: pin_wake.clone(),
    });
    gc::spawn(
        files.clone(),
        pinner.clone(),
        GcSettings {
            every: Duration::from_secs(config.gc_every_secs.max(1)),
            grace: Duration::from_secs(config.gc_grace_secs),
            upload_expiry: Duration::from_secs(config.upload_expiry_secs),
            ..GcSettings::default()
        },
    );
    if let (Some(wake), Some(pinner)) = (pin_wake, pinner) {
        let mut settings = PinSettings::default();
        settings.retry.max_ms = config.pin_retry_max_secs.saturating_mul(1000).max(1);
        settings.retry.base_ms = settings.retry.base_ms.min(settings.retry.max_ms);
        pinning::spawn_worker(files.clone(), pinner, settings, wake);
    }
    let documents = Arc::new(Documents::new(store, settings, config.cache_documents));
    spawn_listener(documents.clone());
    let existing = |dir: &std::path::Path| {
        let found = dir.is_dir();
        if !found {
            tracing::warn!(dir = %dir.display(), "static directory not found; not serving it");
        }
        found.then(|| dir.to_path_buf())
    };
    let state = AppState {
        documents,
        files,
        auth: Arc::new(auth),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            max_subscriptions: config.max_subscriptions,
            max_connections_per_user: config.max_connections_per_user,
        },
        connections: Arc::default(),
        dev_auth: config.dev_auth,
        www_dir: existing(&config.www_dir),
        pkg_dir: existing(&config.pkg_dir),
        metrics_token: config.metrics_token.as_deref().map(Arc::from),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(storage = %state.documents.store.describe(), dev_auth = config.dev_auth, "cairn ready");
    // The one line on stdout: scripts and the test harness read the URL from it.
    println!("cairn listening on http://{addr}/");
    serve(listener, state, shutdown_signal()).await?;
    tracing::info!("cairn stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
