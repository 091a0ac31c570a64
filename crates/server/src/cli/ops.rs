//! The operations commands: `backup`, `restore`, `verify`, `migrate`, `gc`, `cid`. Each reads
//! the same storage flags as `serve`; each prints a summary on stdout.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::Outcome;
use super::serve::pinner;
use crate::blocks::Backend;
use crate::config::{GcArgs, PinArgs, StorageArgs};
use crate::files::{FileLimits, Files};
use crate::ops::progress::Show;
use crate::ops::{self, Db};
use crate::store::SqliteStore;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The backup directory (created if needed; a directory holding an earlier backup is
    /// updated incrementally).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The backup directory.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// Replace what the target database and data directory hold.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    pins: PinArgs,
    /// Verify the backup in this directory instead of the deployment.
    #[arg(long, value_name = "DIR")]
    backup: Option<PathBuf>,
    /// Ask the pinning backend whether every content recorded as pinned is pinned.
    #[arg(long)]
    check_pins: bool,
    /// Fetch missing or corrupt blocks back from the IPFS backend (`--pin-backend kubo`).
    #[arg(long, conflicts_with = "backup")]
    repair: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Only report pending migrations; exit status 1 if there are some.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, clap::Args)]
pub struct GcCommandArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    pins: PinArgs,
    #[command(flatten)]
    gc: GcArgs,
    /// Run one collection now (with the configured grace period) and print what it did.
    #[arg(long)]
    now: bool,
}

#[derive(Debug, clap::Args)]
pub struct CidArgs {
    /// The file to hash (`-` for standard input).
    file: PathBuf,
    /// 1: CIDv1 with raw leaves (`ipfs add --cid-version=1`); 0: Kubo's `ipfs add` default.
    #[arg(long, default_value = "1", value_parser = ["0", "1"])]
    cid_version: String,
}

/// `backup`, `restore` and `verify` read and write the fs blockstore's directory; with the
/// s3 backend they say so instead of looking at an empty directory.
fn require_fs(storage: &StorageArgs, command: &str) -> anyhow::Result<()> {
    match &storage.blockstore {
        Backend::Fs => Ok(()),
        Backend::S3 { bucket, .. } => anyhow::bail!(
            "cairn {command} works on the fs blockstore only: with --blockstore s3://{bucket}/..., \
             protect the bucket with S3 versioning or replication (the database is backed up \
             with pg_dump or PostgreSQL's own tools)"
        ),
    }
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<Outcome> {
    require_fs(&args.storage, "backup")?;
    let manifest = ops::backup::backup(&args.storage, &args.to, Show::Auto)
        .await
        .with_context(|| format!("backup into {} failed", args.to.display()))?;
    let rows: u64 = manifest.tables.values().sum();
    println!(
        "backup {} complete: generation {}, {} rows ({} changes), {} blocks ({:.1} MiB; {} copied, \
         {} already there), {} upload sessions, in {:.1} s",
        args.to.display(),
        manifest.generation,
        rows,
        manifest.tables.get("changes").copied().unwrap_or(0),
        manifest.blocks.count,
        manifest.blocks.bytes as f64 / 1048576.0,
        manifest.run.blocks_copied,
        manifest.run.blocks_reused,
        manifest.uploads.len(),
        manifest.run.duration_ms as f64 / 1000.0
    );
    Ok(Outcome::Clean)
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<Outcome> {
    require_fs(&args.storage, "restore")?;
    let restored = ops::restore::restore(&args.storage, &args.from, args.force, Show::Auto)
        .await
        .with_context(|| format!("restore from {} failed", args.from.display()))?;
    let rows: u64 = restored.rows.values().sum();
    println!(
        "restored {} (generation {}, taken {} from {}) into {}: {} rows, {} blocks ({:.1} MiB), \
         {} upload sessions, in {:.1} s (check {:.1} s, blocks {:.1} s, rows {:.1} s)",
        args.from.display(),
        restored.manifest.generation,
        restored.manifest.created_at,
        restored.manifest.source,
        restored.target,
        rows,
        restored.blocks,
        restored.bytes as f64 / 1048576.0,
        restored.uploads,
        restored.seconds,
        restored.check_seconds,
        restored.blocks_seconds,
        restored.rows_seconds
    );
    Ok(Outcome::Clean)
}

pub async fn verify(args: VerifyArgs) -> anyhow::Result<Outcome> {
    let backend = if args.check_pins || args.repair {
        let backend = pinner(&args.pins)?;
        Some(backend.context(
            "--check-pins and --repair need the pinning backend (--pin-backend kubo, ...)",
        )?)
    } else {
        None
    };
    let show = if args.json { Show::Quiet } else { Show::Auto };
    let mut options = ops::verify::Options {
        check_pins: backend.clone().filter(|_| args.check_pins),
        repair: backend
            .filter(|_| args.repair)
            .map(|set| set as Arc<dyn crate::pinning::Pinner>),
        uploads_dir: None,
        show,
    };
    let report = match &args.backup {
        Some(dir) => {
            let checked = {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || ops::manifest::check(&dir, false)).await?
            };
            let (manifest, _) = match checked {
                Ok(ok) => ok,
                Err(problems) => {
                    let mut report = ops::verify::Report {
                        target: format!("backup {}", dir.display()),
                        ..Default::default()
                    };
                    report.problems = problems
                        .into_iter()
                        .map(|p| ops::verify::Problem::new("backup", &dir.display().to_string(), p))
                        .collect();
                    return print_report(&report, args.json);
                }
            };
            let store = SqliteStore::open_read_only(&dir.join(&manifest.database.path))
                .await
                .context("cannot open the backup's database")?;
            options.uploads_dir = Some(dir.join(format!("uploads/{}", manifest.generation)));
            ops::verify::verify(
                format!(
                    "backup {} (generation {})",
                    dir.display(),
                    manifest.generation
                ),
                &store,
                &dir.join("blocks"),
                &options,
            )
            .await?
        }
        None => {
            require_fs(&args.storage, "verify")?;
            let db = Db::open(&args.storage).await?;
            db.require_current_schema().await?;
            options.uploads_dir = Some(args.storage.uploads_dir());
            let target = match &db {
                Db::Postgres(_) => "postgres".to_owned(),
                Db::Sqlite { path, .. } => format!("sqlite {}", path.display()),
            };
            ops::verify::verify(target, db.store(), &args.storage.blocks_dir(), &options).await?
        }
    };
    print_report(&report, args.json)
}

fn print_report(report: &ops::verify::Report, json: bool) -> anyhow::Result<Outcome> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.is_clean() {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<Outcome> {
    let db = match Db::open(&args.storage).await {
        Ok(db) => db,
        // No embedded database yet: migrating creates it (an empty file is an empty database).
        Err(ops::OpsError::Refused(_)) if !args.check && args.storage.database_url.is_none() => {
            let path = args.storage.data_dir.join(crate::store::SQLITE_FILE_NAME);
            std::fs::create_dir_all(&args.storage.data_dir)
                .and_then(|()| std::fs::File::create_new(&path).map(drop))
                .with_context(|| format!("cannot create {}", path.display()))?;
            Db::open(&args.storage).await?
        }
        Err(e) => return Err(e.into()),
    };
    let before = db.store().schema_status().await?;
    if let Some(problem) = before.problem()
        && (!before.unknown.is_empty() || !before.failed.is_empty())
    {
        anyhow::bail!("{problem}");
    }
    if args.check {
        if before.pending.is_empty() {
            println!(
                "{}: schema is current (migration {:?})",
                db.backend(),
                before.current
            );
            return Ok(Outcome::Clean);
        }
        println!(
            "{}: {} migration(s) pending:",
            db.backend(),
            before.pending.len()
        );
        for (version, description) in &before.pending {
            println!("  {version:04} {description}");
        }
        return Ok(Outcome::Problems);
    }
    let after = db.store().migrate().await?;
    let applied = before.pending.len() - after.pending.len();
    println!(
        "{}: applied {applied} migration(s); schema is at migration {:?}",
        db.backend(),
        after.current
    );
    Ok(Outcome::Clean)
}

pub async fn gc(args: GcCommandArgs) -> anyhow::Result<Outcome> {
    let db = Db::open(&args.storage).await?;
    db.require_current_schema().await?;
    let store = db.shared();
    let counts = store.gc_counts().await?;
    println!(
        "stored: {} contents ({:.1} MiB); waiting: {} unreferenced contents, {} unused blocks, \
         {} unpins",
        counts.contents,
        counts.dag_bytes as f64 / 1048576.0,
        counts.candidates,
        counts.blocks,
        counts.unpins
    );
    if !args.now {
        println!("(pass --now to collect now)");
        return Ok(Outcome::Clean);
    }
    let files = Files {
        store,
        blocks: args.storage.blockstore(true)?,
        limits: FileLimits::default(),
        pin_wake: None,
    };
    let pinner = pinner(&args.pins)?;
    crate::gc::prepare(&files).await?;
    let pinner = pinner
        .as_deref()
        .map(|set| set as &dyn crate::pinning::Pinner);
    let done = crate::gc::collect(&files, pinner, &args.gc.settings()).await?;
    println!(
        "collected: {} contents, {} blocks, {} expired upload sessions, {} unpinned{}",
        done.contents,
        done.blocks,
        done.uploads,
        done.unpinned,
        if done.deferred {
            " (block deletion put off: a backup is running)"
        } else {
            ""
        }
    );
    Ok(Outcome::Clean)
}

/// Streams the file through the importer (memory: one chunk and the tree's open nodes).
pub fn print_cid(args: &CidArgs) -> anyhow::Result<()> {
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
