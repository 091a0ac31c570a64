//! The npm package as an outside developer gets it: `npm pack` of `pkg/`, installed from the
//! tarball into a small Vite + TypeScript app (`tests/e2e/vite-app`), type-checked against the
//! shipped types, built by Vite, served and run in Chromium; installed from the tarball and
//! imported by a plain `<script type="module">` with no build step; and the package README's
//! examples, run in Chromium against the real server (`tests/e2e/readme.mjs`).

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

/// `npm pack` of `pkg/` into a fresh work directory: (the directory, the tarball).
fn pack() -> (std::path::PathBuf, std::path::PathBuf) {
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
    (work, tarball)
}

/// Installs the tarball into `dir` as an application would (no registry needed).
fn install(tarball: &Path, dir: &Path) {
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--offline",
        ])
        .arg(tarball)
        .current_dir(dir));
}

/// The server (embedded default, dev sign-in) serving `www` at `/`, and `pkg/` at `/pkg/`.
fn serve(www: &Path, work: &Path, log: &str) -> ServerProcess {
    let data = work.join("data").display().to_string();
    let www = www.display().to_string();
    let pkg = workspace_root().join("pkg").display().to_string();
    let args = [
        "--www-dir",
        www.as_str(),
        "--pkg-dir",
        pkg.as_str(),
        "--data-dir",
        data.as_str(),
        "--dev-auth",
    ];
    ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_cairn-e2e-server")),
        &args,
        artifacts_dir("packaging").join(log),
    )
}

#[tokio::test]
async fn a_vite_app_installs_the_packed_package_type_checks_builds_and_runs() {
    let root = workspace_root();
    let (work, tarball) = pack();
    let app = work.join("app");
    copy_dir(&root.join("tests/e2e/vite-app"), &app);
    install(&tarball, &app);
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
    let server = serve(&dist, &work, "vite-app.log");
    let url = server.url.clone();
    let out = artifacts_dir("packaging").display().to_string();
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

#[tokio::test]
async fn a_plain_module_script_imports_the_installed_package() {
    let (work, tarball) = pack();
    let site = work.join("site");
    std::fs::create_dir_all(&site).unwrap();
    install(&tarball, &site);
    std::fs::write(site.join("index.html"), PLAIN_PAGE).unwrap();
    let server = serve(&site, &work, "plain-module.log");
    let url = server.url.clone();
    let text = tokio::task::spawn_blocking(move || {
        browser::run_node("tests/e2e/plain-module.mjs", &[&url])
    })
    .await
    .expect("the page ran");
    assert!(text.contains("ok: plain module"), "{text}");
    let _ = std::fs::remove_dir_all(&work);
}

/// No bundler: the browser loads the installed package's modules and wasm as they are.
const PLAIN_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>plain module</title></head>
<body>
<script type="module">
  import { Cairn, CairnError, fileCid } from './node_modules/@cairn/client/index.js';
  try {
    const reply = await fetch('/v1/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"plain"}' });
    const { token } = await reply.json();
    const repo = await Cairn.open({ name: 'plain', server: location.origin, token });
    const doc = await repo.create({ hello: 'plain module' });
    const { cid } = await fileCid(new Blob(['hello']), { cidVersion: 0 });
    await repo.sync();
    const result = { value: doc.value(), cid, pending: (await repo.outbox()).length, error: CairnError.name };
    document.body.dataset.result = JSON.stringify(result);
  } catch (e) {
    document.body.dataset.result = JSON.stringify({ failed: `${e.code}: ${e.message}` });
  }
</script>
</body></html>
"#;

#[tokio::test]
async fn the_package_readme_examples_run() {
    let root = workspace_root();
    support::require_fresh_pkg();
    let work = temp_dir("cairn-readme");
    let server = serve(&root.join("tests/e2e/www"), &work, "readme.log");
    let url = server.url.clone();
    let text =
        tokio::task::spawn_blocking(move || browser::run_node("tests/e2e/readme.mjs", &[&url]))
            .await
            .expect("the examples ran");
    println!("{text}");
    assert!(text.contains("example 4: ok"), "{text}");
    let _ = std::fs::remove_dir_all(&work);
}
