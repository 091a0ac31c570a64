//! The OpenAPI checker: `tests/openapi/check.py` in a virtualenv of its own with PyPI's
//! `openapi-core` (which brings `openapi-spec-validator`), created under `target/` on first
//! use (no root needed). Fails with a message saying how to install it when pip cannot.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::workspace_root;

/// The pinned checker packages.
const PACKAGES: &[&str] = &["openapi-core==0.23.1"];

/// The virtualenv's python, with the checker's packages installed.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install).clone()
}

fn install() -> PathBuf {
    let venv = workspace_root().join("target/openapi-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    if ready.exists() {
        return python;
    }
    let hint = format!(
        "cannot set up the OpenAPI checker; install it by hand with: python3 -m venv {0} && \
         {0}/bin/pip install {1}",
        venv.display(),
        PACKAGES.join(" ")
    );
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{hint}");
    let ok = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{hint}");
    std::fs::write(&ready, PACKAGES.join("\n")).expect("mark the checker installed");
    python
}

/// Runs the checker on a document and recorded exchanges: exit success, and what it printed.
pub fn check(spec: &std::path::Path, exchanges: &std::path::Path) -> (bool, String) {
    let script = workspace_root().join("tests/openapi/check.py");
    let out = Command::new(python())
        .arg(script)
        .arg(spec)
        .arg(exchanges)
        .output()
        .expect("the checker runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
