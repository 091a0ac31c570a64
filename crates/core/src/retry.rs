//! Retry policy as data: exponential backoff with jitter and a cap; errors the server marks
//! non-retryable fail permanently at once. Randomness and time are arguments, so the policy
//! is deterministic under test.

/// Milliseconds since the Unix epoch (or any fixed origin, in a simulation).
pub type Millis = u64;

/// Whether a failed attempt may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Offline, timeout, 5xx, 429: try again later.
    Retryable,
    /// The server rejected the operation itself (4xx other than 408/429): never retry.
    Permanent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time.
    RetryAt(Millis),
    /// Stop: the operation has failed for good.
    GiveUp,
}

/// Exponential backoff: attempt `n` waits between half and all of `min(max, base · 2ⁿ⁻¹)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_ms: u64,
    pub max_ms: u64,
    /// Give up on retryable failures after this many attempts; `None` never gives up, which
    /// is right for an offline-first outbox: being offline for a week is not an error.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            max_ms: 5 * 60 * 1_000,
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    /// The delay after the `attempts`-th failed attempt (1-based), with `random` supplying the
    /// jitter ("equal jitter": never less than half the exponential delay).
    pub fn delay_ms(&self, attempts: u32, random: u64) -> u64 {
        let exponent = attempts.saturating_sub(1).min(63);
        let exp = self
            .base_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_ms);
        let half = exp / 2;
        half + random % (exp - half + 1)
    }

    /// Decides what follows the `attempts`-th failed attempt at time `now`.
    pub fn decide(&self, attempts: u32, failure: Failure, now: Millis, random: u64) -> Decision {
        match failure {
            Failure::Permanent => Decision::GiveUp,
            Failure::Retryable if self.max_attempts.is_some_and(|max| attempts >= max) => {
                Decision::GiveUp
            }
            Failure::Retryable => {
                Decision::RetryAt(now.saturating_add(self.delay_ms(attempts, random)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_exponentially_to_the_cap() {
        let p = RetryPolicy {
            base_ms: 100,
            max_ms: 1_000,
            max_attempts: None,
        };
        // With random = 0 the delay is the lower bound: half of the exponential delay.
        let lows: Vec<u64> = (1..=6).map(|n| p.delay_ms(n, 0)).collect();
        assert_eq!(lows, vec![50, 100, 200, 400, 500, 500]);
        assert_eq!(p.delay_ms(3, u64::MAX - 1), 200 + (u64::MAX - 1) % 201);
    }

    #[test]
    fn permanent_failures_and_attempt_limits_give_up() {
        let p = RetryPolicy {
            max_attempts: Some(3),
            ..RetryPolicy::default()
        };
        assert_eq!(p.decide(1, Failure::Permanent, 0, 0), Decision::GiveUp);
        assert_eq!(p.decide(3, Failure::Retryable, 0, 0), Decision::GiveUp);
        assert_eq!(
            p.decide(2, Failure::Retryable, 10, 0),
            Decision::RetryAt(10 + 1_000)
        );
    }

    proptest! {
        #[test]
        fn delay_is_bounded(attempts in 0u32..200, random in any::<u64>(), base in 1u64..10_000, max in 1u64..1_000_000) {
            let p = RetryPolicy { base_ms: base, max_ms: max, max_attempts: None };
            let d = p.delay_ms(attempts, random);
            prop_assert!(d <= max.max(base.min(max)));
            let exp = base.saturating_mul(1u64 << attempts.saturating_sub(1).min(63)).min(max);
            prop_assert!(d >= exp / 2);
        }
    }
}
