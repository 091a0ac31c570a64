//! The wall clock and the randomness the server's workers use (the core takes both as
//! arguments): Unix milliseconds, and when to try again after a failure, with jitter.

use std::time::Duration;

use cairn_core::retry::RetryPolicy;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `d` in milliseconds (saturating).
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When to try again (Unix ms) after the `attempts`-th failed attempt under `policy`.
pub fn retry_at(policy: &RetryPolicy, attempts: i64) -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    let delay = policy.delay_ms(attempts, jitter);
    now_ms().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
}
