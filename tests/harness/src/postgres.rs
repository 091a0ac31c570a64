//! A throwaway PostgreSQL for tests.
//!
//! With `DATABASE_URL` set, tests use that server (the user must be allowed to
//! `CREATE DATABASE`). Otherwise the first test in a process starts a private cluster from the
//! system's PostgreSQL binaries: `initdb` into a temp dir, listening only on a unix socket in
//! that dir (no port to collide on), `fsync=off` for speed. It is stopped and removed when the
//! test process exits. Each test gets its own fresh database from [`fresh_database`].
//!
//! Durability tests and benchmarks use [`durable`] instead: a separate cluster with `fsync`
//! and `synchronous_commit` on, as in production (never `DATABASE_URL`'s server).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

use crate::watchdog::{after_exit, sh_quote};

const INSTALL_HINT: &str = "PostgreSQL server binaries are needed (initdb, pg_ctl). Install them with \
     `apt-get install -y postgresql` (scripts/test does this), set CAIRN_PG_BIN to their \
     directory, or set DATABASE_URL to a server where this user may CREATE DATABASE.";

/// A running PostgreSQL server the tests may create databases in.
#[derive(Debug)]
pub struct Postgres {
    /// URL of the `postgres` maintenance database (superuser).
    pub admin_url: String,
    /// The unix socket directory and binaries of a cluster started here (`None` for
    /// `DATABASE_URL`'s server).
    pub local: Option<Local>,
}

/// A cluster this process started.
#[derive(Debug, Clone)]
pub struct Local {
    pub socket_dir: PathBuf,
    pub bin_dir: PathBuf,
    /// `pg_ctl -o` options it runs with (to start it again).
    options: String,
}

fn start_or_panic(durable: bool) -> Postgres {
    start_cluster(durable)
        .unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}\n{INSTALL_HINT}"))
}

/// The shared server of this test process, started on first use.
pub fn shared() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Postgres {
            admin_url: url,
            local: None,
        },
        _ => start_or_panic(false),
    })
}

/// A cluster with production durability settings (`fsync`, `synchronous_commit` on), for
/// crash tests and benchmarks. Started on first use; always local.
pub fn durable() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(|| start_or_panic(true))
}

/// A cluster of its own for one test (to stop and start it), with production durability when
/// `durable`. Removed when the test process exits.
pub fn private(durable: bool) -> Postgres {
    start_or_panic(durable)
}

/// A new, empty database on the shared server; returns its URL.
pub async fn fresh_database() -> String {
    shared().fresh_database().await
}

impl Postgres {
    /// Stops the cluster: `fast` (clients are disconnected, a clean shutdown) or `immediate`.
    pub fn stop(&self, mode: &str) {
        let local = self
            .local
            .as_ref()
            .expect("only a cluster started here can be stopped");
        run(pg_command(&local.bin_dir, "pg_ctl")
            .arg("-D")
            .arg(local.socket_dir.join("data"))
            .args(["-m", mode, "-w", "stop"]))
        .unwrap_or_else(|e| panic!("cannot stop PostgreSQL: {e}"));
    }

    /// Starts the stopped cluster again (same data, same socket).
    pub fn start(&self) {
        let local = self
            .local
            .as_ref()
            .expect("only a cluster started here can be started");
        run(pg_command(&local.bin_dir, "pg_ctl")
            .arg("-D")
            .arg(local.socket_dir.join("data"))
            .arg("-l")
            .arg(local.socket_dir.join("log"))
            .args(["-w", "-t", "60", "-o", &local.options, "start"]))
        .unwrap_or_else(|e| panic!("cannot start PostgreSQL again: {e}"));
    }

    /// Creates a new, empty database and returns its URL.
    pub async fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "cairn_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {}: {e}", self.admin_url));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        with_database(&self.admin_url, &name)
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn start_cluster(durable: bool) -> Result<Postgres, String> {
    start_cluster_in(
        crate::temp_dir(if durable { "cairn-pgd" } else { "cairn-pg" }),
        durable,
    )
}

/// Starts a new cluster on a background thread. Returns at once with the URL of its
/// maintenance database, which refuses connections until the cluster is up, and the thread
/// that finishes starting it. For tests of a server that starts before its database.
pub fn start_in_background() -> (String, std::thread::JoinHandle<Postgres>) {
    let dir = crate::temp_dir("cairn-pg-late");
    let url = format!(
        "postgres://postgres@localhost/postgres?host={}",
        dir.display()
    );
    let thread = std::thread::spawn(move || {
        start_cluster_in(dir, false)
            .unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}\n{INSTALL_HINT}"))
    });
    (url, thread)
}

fn start_cluster_in(dir: PathBuf, durable: bool) -> Result<Postgres, String> {
    let bin = find_bin_dir()?;
    let data = dir.join("data");
    let as_root = is_root();
    if as_root {
        // initdb refuses to run as root: the cluster belongs to the `postgres` user.
        run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
    }
    let pg = |tool: &str| pg_command(&bin, tool);
    run(pg("initdb").arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    ]))?;
    let speed = if durable {
        ""
    } else {
        " -c fsync=off -c synchronous_commit=off"
    };
    let options = format!(
        "-k {} -c listen_addresses='' -c max_connections=300{speed}",
        dir.display()
    );
    run(pg("pg_ctl")
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "-o", &options, "start"]))?;
    let stop = if as_root {
        format!(
            "{} -u postgres -- {} -D {} -m immediate stop",
            runuser().display(),
            sh_quote(&bin.join("pg_ctl").display().to_string()),
            sh_quote(&data.display().to_string())
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            sh_quote(&bin.join("pg_ctl").display().to_string()),
            sh_quote(&data.display().to_string())
        )
    };
    after_exit(&format!(
        "{stop}; rm -rf {}",
        sh_quote(&dir.display().to_string())
    ));
    Ok(Postgres {
        admin_url: format!(
            "postgres://postgres@localhost/postgres?host={}",
            dir.display()
        ),
        local: Some(Local {
            socket_dir: dir,
            bin_dir: bin,
            options,
        }),
    })
}

/// `bin/tool`, run as the `postgres` user when we are root (initdb refuses root).
fn pg_command(bin: &Path, tool: &str) -> Command {
    let path = bin.join(tool);
    if is_root() {
        let mut c = Command::new(runuser());
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("CAIRN_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no /usr/lib/postgresql".to_owned())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn runuser() -> &'static Path {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .unwrap_or(Path::new("runuser"))
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u@localhost/postgres?host=/tmp/x", "t1"),
            "postgres://u@localhost/t1?host=/tmp/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5432", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h/db", "t2"),
            "postgres://u@h/t2"
        );
    }
}
