//! Progress of a long operation: a bar on a terminal (indicatif), plain lines otherwise (at
//! most one every few seconds, and one at the end), or nothing. Shared by threads.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Show {
    /// A bar if standard error is a terminal, plain lines if not.
    Auto,
    /// Nothing (library callers, tests).
    #[default]
    Quiet,
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items,
}

/// One phase's progress.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Plain>,
}

#[derive(Debug)]
struct Plain {
    label: String,
    unit: Unit,
    total: u64,
    done: AtomicU64,
    started: Instant,
    last: Mutex<Instant>,
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Starts a phase called `label` of `total` units.
    pub fn start(show: Show, label: &str, total: u64, unit: Unit) -> Self {
        if show == Show::Quiet {
            return Self {
                bar: None,
                plain: None,
            };
        }
        if std::io::stderr().is_terminal() {
            let template = match unit {
                Unit::Bytes => {
                    "{msg:>10} [{wide_bar}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, eta {eta})"
                }
                Unit::Items => {
                    "{msg:>10} [{wide_bar}] {human_pos}/{human_len} ({per_sec}, eta {eta})"
                }
            };
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_owned());
            return Self {
                bar: Some(bar),
                plain: None,
            };
        }
        let now = Instant::now();
        Self {
            bar: None,
            plain: Some(Plain {
                label: label.to_owned(),
                unit,
                total,
                done: AtomicU64::new(0),
                started: now,
                last: Mutex::new(now),
            }),
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if let Some(plain) = &self.plain {
            let done = plain.done.fetch_add(n, Ordering::Relaxed) + n;
            let mut last = plain.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= PLAIN_EVERY {
                *last = Instant::now();
                drop(last);
                plain.line(done, false);
            }
        }
    }

    /// The phase is over.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
        if let Some(plain) = &self.plain {
            plain.line(plain.done.load(Ordering::Relaxed), true);
        }
    }
}

impl Plain {
    fn line(&self, done: u64, end: bool) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let of = |total: String| {
            if self.total > 0 {
                format!(" of {total}")
            } else {
                String::new()
            }
        };
        let (amount, rate) = match self.unit {
            Unit::Bytes => (
                format!("{}{}", mib(done), of(mib(self.total))),
                format!("{:.1} MiB/s", done as f64 / secs / 1048576.0),
            ),
            Unit::Items => (
                format!("{done}{}", of(self.total.to_string())),
                format!("{:.0}/s", done as f64 / secs),
            ),
        };
        let state = if end { "done" } else { "..." };
        eprintln!("{}: {amount} ({rate}, {secs:.1} s) {state}", self.label);
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}
