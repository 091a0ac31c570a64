//! The Cairn server as a separate process, the way operators run it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:41234/`.
    pub url: String,
    /// Where the server's log (stderr) goes.
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts `bin serve --listen 127.0.0.1:0 <args>` and waits until it prints its URL.
    pub fn start(bin: &Path, args: &[&str], log: PathBuf) -> Self {
        let log_file = std::fs::File::create(&log).expect("cannot create the server log");
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env(
                "CAIRN_LOG",
                "info,cairn_server=debug,tower_http=debug,sqlx=warn",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        match crate::announcement(&mut child, "cairn listening on ", Duration::from_secs(60)) {
            Some(url) => Self { child, url, log },
            None => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "the server did not start ({status:?}); its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process in bytes (Linux `VmRSS`).
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    /// Peak resident memory (MB) while `work` runs, sampled every 50 ms.
    pub async fn peak_rss_during<F: std::future::Future>(&self, work: F) -> (f64, F::Output) {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let sampler = async {
            let mut peak = self.rss_bytes();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(self.rss_bytes());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        };
        let work = async {
            let out = work.await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            out
        };
        let (peak, out) = tokio::join!(sampler, work);
        (peak as f64 / 1e6, out)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (an orderly shutdown, as an operator or an orchestrator asks).
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "cannot send SIGTERM to the server");
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Resident memory of process `pid` in bytes (Linux `VmRSS`; 0 once it is gone).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
