//! The `cairn` command line. `main.rs` only calls [`main`], so every binary that embeds the
//! server (the test harness's among them) behaves identically.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::ServeConfig;
use crate::http::{AppState, Limits};
use crate::{serve, store};

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
    Serve(ServeConfig),
}

/// Parses arguments, runs the command, and reports errors with their context chain.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Command::Serve(config) => run_serve(config).await,
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run_serve(config: ServeConfig) -> anyhow::Result<()> {
    let store = store::open(config.database_url.as_deref(), &config.data_dir)
        .await
        .context("cannot open the document store")?;
    let existing = |dir: &std::path::Path| {
        let found = dir.is_dir();
        if !found {
            tracing::warn!(dir = %dir.display(), "static directory not found; not serving it");
        }
        found.then(|| dir.to_path_buf())
    };
    let state = AppState {
        store,
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
        },
        www_dir: existing(&config.www_dir),
        pkg_dir: existing(&config.pkg_dir),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(storage = %state.store.describe(), "cairn ready");
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
