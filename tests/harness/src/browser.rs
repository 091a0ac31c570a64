//! Debian's Chromium for browser tests, and Node.js scripts that drive it with Playwright
//! (`playwright-core`, never a downloaded browser).

use std::path::PathBuf;
use std::process::Command;

use crate::workspace_root;

/// The Chromium binary and its WebDriver.
#[derive(Debug, Clone)]
pub struct Chromium {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Finds Chromium (`CHROMIUM` or `/usr/bin/chromium`) and ChromeDriver (`CHROMEDRIVER` or
/// `/usr/bin/chromedriver`), or panics saying how to install them.
pub fn chromium() -> Chromium {
    let find = |var: &str, default: &str| {
        let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_owned()));
        assert!(
            path.is_file(),
            "{} not found. Install Debian's Chromium: `apt-get install -y chromium chromium-driver` \
             (scripts/test does this), or set {var}.",
            path.display()
        );
        path
    };
    Chromium {
        chromium: find("CHROMIUM", "/usr/bin/chromium"),
        chromedriver: find("CHROMEDRIVER", "/usr/bin/chromedriver"),
    }
}

/// Runs `node <script> <args>` from the repository root with `CHROMIUM` set, installing the
/// npm dependencies first if they are missing. Panics with the script's output on failure.
pub fn run_node(script: &str, args: &[&str]) -> String {
    let root = workspace_root();
    let browser = chromium();
    if !root.join("node_modules/playwright-core").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&root)
            .status()
            .expect("cannot run npm: install Node.js and npm");
        assert!(status.success(), "npm ci failed");
    }
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&root)
        .env("CHROMIUM", &browser.chromium)
        .output()
        .expect("cannot run node: install Node.js");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "node {script} failed ({}):\n{text}",
        out.status
    );
    text
}
