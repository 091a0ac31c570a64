//! The S3 test peer: s3s-fs from crates.io (installed by `scripts/install-s3s`), a real
//! S3-protocol server with SigV4 authentication that keeps objects as files under its root.
//!
//! It listens on 127.0.0.1 only, with one bucket ([`BUCKET`]) made at start. [`S3Peer::stop`]
//! kills it (an outage); [`S3Peer::start_again`] brings it back on the same port and data. It
//! is killed when the guard drops (its objects removed), and by a watchdog if the test process
//! dies.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket every peer has.
pub const BUCKET: &str = "cairn";
/// The peer's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
pub const ACCESS_KEY: &str = "cairn-test";
pub const SECRET_KEY: &str = "cairn-test-secret";

/// A running (or stopped) S3 test peer.
#[derive(Debug)]
pub struct S3Peer {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    port: u16,
    /// Where the peer keeps its buckets (`<root>/<bucket>/<key>`).
    pub root: PathBuf,
}

impl S3Peer {
    /// Starts a peer with an empty [`BUCKET`].
    pub fn start() -> Self {
        let root = crate::temp_dir("cairn-s3").join("data");
        std::fs::create_dir_all(root.join(BUCKET)).expect("create the S3 peer's bucket");
        let port = free_port();
        let mut peer = Self {
            child: None,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            root,
        };
        peer.start_again();
        peer
    }

    /// Starts the stopped peer again, on the same port and data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the S3 peer is running");
        let bin = s3s_fs();
        let log = std::fs::File::create(self.root.with_file_name("s3s-fs.log"))
            .expect("create the S3 peer's log");
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        crate::watchdog::after_exit(&format!("kill -9 {} 2>/dev/null", child.id()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "the S3 test peer exited at start ({status}); see {}",
                    self.log().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the S3 test peer did not listen on port {} within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the peer (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The peer's log.
    pub fn log(&self) -> PathBuf {
        self.root.with_file_name("s3s-fs.log")
    }

    /// The `cairn serve` flags for a blockstore in [`BUCKET`] under `prefix`.
    pub fn serve_args(&self, prefix: &str) -> Vec<String> {
        vec![
            "--blockstore".into(),
            format!("s3://{BUCKET}/{prefix}"),
            "--s3-endpoint".into(),
            self.endpoint.clone(),
            "--s3-allow-http".into(),
            "--s3-region".into(),
            "us-east-1".into(),
            "--s3-access-key-id".into(),
            ACCESS_KEY.into(),
            "--s3-secret-access-key".into(),
            SECRET_KEY.into(),
        ]
    }

    /// The files the peer stores for keys under `prefix` in [`BUCKET`] (its own temporary files
    /// excluded).
    pub fn objects(&self, prefix: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if !entry.file_name().to_string_lossy().starts_with(".tmp.") {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.join(BUCKET).join(prefix), &mut out);
        out.sort();
        out
    }
}

impl Drop for S3Peer {
    /// Kills the peer and removes its objects (its log stays beside them, for a failed test).
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// The s3s-fs binary: `CAIRN_S3S_FS`, or what `scripts/install-s3s` installs.
pub fn s3s_fs() -> PathBuf {
    if let Ok(path) = std::env::var("CAIRN_S3S_FS") {
        return PathBuf::from(path);
    }
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            crate::install(
                "install-s3s",
                "The S3 test peer needs cargo and access to crates.io (crate s3s-fs 0.14.1), or \
                 set CAIRN_S3S_FS to an s3s-fs binary.",
            )
        })
        .clone()
}
