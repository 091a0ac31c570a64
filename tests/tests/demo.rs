//! Cairn Notes, the demo PWA (`www/`), as a user meets it: built with Vite from the package,
//! served by the real server binary on PostgreSQL with a pinning service, driven in Debian's
//! Chromium by `tests/e2e/demo.mjs`. Screenshots land in `target/test-artifacts/demo/`.
//!
//! - the journey: sign in, write a note, go offline, edit and attach an image, reload offline
//!   (the shell from the Service Worker), see the note and the outbox, go online and watch it
//!   sync and pin, open it in a second browser (the image downloaded and verified), edit from
//!   both at once, another user who sees nothing, the file browser (search, preview, delete),
//!   attaching with the keyboard alone, and a phone-sized screen; labels checked throughout;
//! - installable, by Chromium's own check (`Page.getInstallabilityErrors`);
//! - the Service Worker: the app opens offline, and Background Sync delivers an edit that the
//!   page itself could not send.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cairn_harness::pinning_service::PinningService;
use cairn_harness::{artifacts_dir, browser, workspace_root};

/// The demo built from the current sources (once per test run) into `target/test-demo`.
fn demo_dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        support::require_fresh_pkg();
        let root = workspace_root();
        let www = root.join("www");
        let run = |cmd: &mut Command| {
            let out = cmd
                .output()
                .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install Node.js and npm)"));
            assert!(
                out.status.success(),
                "{cmd:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if !www.join("node_modules/@cairn/client").exists() {
            run(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&www));
        }
        let dist = root.join("target/test-demo/dist");
        run(Command::new(root.join("node_modules/.bin/vite"))
            .args(["build", "--emptyOutDir", "--outDir"])
            .arg(&dist)
            .current_dir(&www));
        dist
    })
}

async fn scenario(name: &str) {
    let dist = demo_dist().display().to_string();
    let service = PinningService::start("demo-pins");
    let artifacts = artifacts_dir("demo");
    let args = [
        "--pin-backend",
        "pinning-service",
        "--pinning-service-url",
        &service.url,
        "--pinning-service-token",
        "demo-pins",
        // The test service reports pins named `pinned-…` as pinned.
        "--pin-name-prefix",
        "pinned-",
        "--pin-retry-max-secs",
        "1",
    ];
    let server = support::dev_server("demo", name, Path::new(&dist), None, &args).await;
    let url = server.url.clone();
    let out = artifacts.display().to_string();
    let name = name.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        browser::run_node("tests/e2e/demo.mjs", &[&url, &out, &name])
    })
    .await
    .expect("the scenario ran");
    println!("{output}");
    drop(server);
    drop(service);
}

#[tokio::test]
async fn the_user_journey_offline_and_back_on_two_devices_and_a_phone() {
    scenario("journey").await;
}

#[tokio::test]
async fn the_app_is_installable() {
    scenario("installable").await;
}

#[tokio::test]
async fn the_service_worker_serves_the_shell_offline_and_drains_the_outbox() {
    scenario("serviceWorker").await;
}
