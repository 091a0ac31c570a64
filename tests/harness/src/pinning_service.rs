//! A real implementation of the IPFS Pinning Service API: npm `mock-ipfs-pinning-service`
//! (ipfs-shipyard), behind `tests/e2e/pinning-service.mjs`, on 127.0.0.1. It validates every
//! request against the spec's OpenAPI document and checks the bearer token. Pins are kept in
//! memory; one named `pinned-…` (or `failed-…`, `queued-…`, `pinning-…`) reports that status.
//! Stopped when the guard drops, and when the test process dies (its stdin closes).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::workspace_root;

/// A running pinning service.
#[derive(Debug)]
pub struct PinningService {
    child: Child,
    /// Its endpoint, e.g. `http://127.0.0.1:45678` (the API is at `/pins`).
    pub url: String,
}

impl PinningService {
    /// Starts a service that accepts `token`.
    pub fn start(token: &str) -> Self {
        let root = workspace_root();
        assert!(
            root.join("node_modules/mock-ipfs-pinning-service").is_dir(),
            "the pinning service test peer is an npm package: run `npm ci` in {}",
            root.display()
        );
        let mut child = Command::new("node")
            .arg(root.join("tests/e2e/pinning-service.mjs"))
            .arg(token)
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (install Node.js): {e}"));
        match crate::announcement(
            &mut child,
            "pinning service listening on ",
            Duration::from_secs(30),
        ) {
            Some(url) => Self { child, url },
            None => {
                let _ = child.kill();
                panic!(
                    "the pinning service did not start ({:?})",
                    child.wait().ok()
                );
            }
        }
    }
}

impl Drop for PinningService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
