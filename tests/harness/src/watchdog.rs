//! A watchdog process that runs a cleanup command once the test process is gone, however it
//! ended (normal exit, panic, SIGKILL). Rust never drops statics, so a peer shared by all the
//! tests of one binary (the PostgreSQL cluster) is stopped this way.

use std::process::{Command, Stdio};

/// Runs `cleanup` (a shell snippet) after this process exits.
pub(crate) fn after_exit(cleanup: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; {cleanup}",
        pid = std::process::id()
    );
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("harness: cannot start the cleanup watchdog: {e}");
    }
}

/// Quotes `s` for a POSIX shell.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
