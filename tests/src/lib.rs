//! End-to-end tests for Cairn: the real server binary (`cairn-e2e-server`, identical to
//! `cairn`) on real PostgreSQL, driven by real Chromium through Playwright, and the real Kubo
//! test peer. The tests are in `tests/tests/`; the peers come from `cairn-harness`.
//! This library is empty on purpose: the crate exists for its binary and its tests.
