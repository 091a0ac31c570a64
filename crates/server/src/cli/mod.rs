//! The `cairn` command line. `main.rs` only calls [`main`], so every binary that embeds the
//! server (the test harness's among them) behaves identically.
//!
//! Exit status: 0 when the command did what it was asked and found nothing wrong; 1 when it
//! ran and found problems (`verify`) or pending work (`migrate --check`); 2 when it could not
//! run (bad configuration, an unreachable database, a refused restore).

mod ops;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ServeConfig;

/// Cairn: offline-first storage for Progressive Web Apps.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about)]
struct Cli {
    /// Log lines as `text` (for people) or `json` (one object per line, with the request id
    /// of the request each line belongs to).
    #[arg(
        long,
        global = true,
        env = "CAIRN_LOG_FORMAT",
        default_value = "text",
        value_parser = ["text", "json"]
    )]
    log_format: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sync server (and serve the demo app).
    Serve(Box<ServeConfig>),
    /// Take a consistent online backup into a directory (incremental: a second backup into
    /// the same directory copies only new blocks).
    Backup(ops::BackupArgs),
    /// Restore a backup into an empty database and data directory.
    Restore(ops::RestoreArgs),
    /// Check that everything stored is intact and consistent (a deployment, or a backup).
    Verify(Box<ops::VerifyArgs>),
    /// Apply pending database migrations without serving (`--check`: only report them).
    Migrate(ops::MigrateArgs),
    /// Show garbage collection's queues, or run one collection now (`--now`).
    Gc(Box<ops::GcCommandArgs>),
    /// Print a file's IPFS CID without storing anything, like `ipfs add -n -Q`.
    Cid(ops::CidArgs),
}

/// How a command ended, beyond success.
#[derive(Debug)]
pub enum Outcome {
    /// It ran and everything is fine.
    Clean,
    /// It ran and found something an operator must look at (exit status 1).
    Problems,
}

/// Parses arguments, runs the command, and reports errors with their context chain.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Cid(args) = &cli.command {
        return finish(ops::print_cid(args).map(|()| Outcome::Clean));
    }
    init_tracing(&cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(config) => serve::run(*config).await.map(|()| Outcome::Clean),
            Command::Backup(args) => ops::backup(args).await,
            Command::Restore(args) => ops::restore(args).await,
            Command::Verify(args) => ops::verify(*args).await,
            Command::Migrate(args) => ops::migrate(args).await,
            Command::Gc(args) => ops::gc(*args).await,
            Command::Cid(_) => Ok(Outcome::Clean),
        }
    });
    // Workers (the Kubo client thread, pool reapers) must not hold the process up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    finish(result)
}

fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .init();
    } else {
        builder.init();
    }
}
