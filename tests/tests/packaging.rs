//! The npm package as an outside developer gets it: `npm pack` of `pkg/`, installed from the
//! tarball into a small Vite + TypeScript app (`tests/e2e/vite-app`), type-checked against the
//! shipped types, built by Vite, served and run in Chromium.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::path::Path;
use std::process::Command;

use cairn_harness::server::ServerProcess;
use cairn_harness::{artifacts_dir, browser, temp_dir, workspace_root};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test]
async fn a_vite_app_installs_the_packed_package_type_checks_builds_and_runs() {
    support::require_fresh_pkg();
    let root = workspace_root();
    let work = temp_dir("cairn-packaging");
    let packed = run(Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&work)
        .arg(root.join("pkg")));
    let tarball = work.join(
        packed
            .lines()
            .rev()
            .find(|l| l.ends_with(".tgz"))
            .expect("npm pack names the tarball")
            .trim(),
    );
    let app = work.join("app");
    copy_dir(&root.join("tests/e2e/vite-app"), &app);
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--offline",
        ])
        .arg(&tarball)
        .current_dir(&app));
    let tools = root.join("node_modules/.bin");
    run(Command::new(tools.join("tsc"))
        .args(["-p", "tsconfig.json"])
        .current_dir(&app));
    run(Command::new(tools.join("vite"))
        .args(["build", "--logLevel", "warn"])
        .current_dir(&app));
    let dist = app.join("dist");
    assert!(
        std::fs::read_dir(dist.join("assets")).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "wasm")),
        "Vite emitted the wasm module"
    );

    let data = work.join("data").display().to_string();
    let www = dist.display().to_string();
    let args = [
        "--www-dir",
        www.as_str(),
        "--data-dir",
        data.as_str(),
        "--dev-auth",
    ];
    let artifacts = artifacts_dir("packaging");
    let server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server")),
        &args,
        artifacts.join("server.log"),
    );
    let url = server.url.clone();
    let out = artifacts.display().to_string();
    let text = tokio::task::spawn_blocking(move || {
        browser::run_node("tests/e2e/vite-app.mjs", &[&url, &out])
    })
    .await
    .expect("the app ran");
    assert!(
        text.contains("ok: Hi from Vite, 3 operations queued"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&work);
}
