//! Rate limits per user and per client address (GCRA token buckets from `governor`): every
//! authenticated request and every WebSocket frame counts against its user; every API
//! request and frame against its address. A refused request gets 429 `E_RATE_LIMITED` with
//! `Retry-After`; a refused frame an `Error` frame with the same code.
//!
//! Limits are per replica: each process counts what it serves, so behind a load balancer
//! over N replicas a client may reach N times the configured rates. Behind a reverse proxy,
//! `--trust-forwarded-for` takes the address from `X-Forwarded-For` (its last entry, the one
//! the proxy appended); otherwise every client would share the proxy's address.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitArgs;

/// The limiters of one process.
#[derive(Debug, Default)]
pub struct RateLimits {
    user: Option<DefaultKeyedRateLimiter<String>>,
    address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trust_forwarded_for: bool,
}

/// `per_second` sustained with `burst` at once; `None` (no limit) when `per_second` is 0.
fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits {
    pub fn new(args: &RateLimitArgs, trust_forwarded_for: bool) -> Self {
        Self {
            user: quota(args.rate_limit_user, args.rate_limit_user_burst).map(RateLimiter::keyed),
            address: quota(args.rate_limit_ip, args.rate_limit_ip_burst).map(RateLimiter::keyed),
            trust_forwarded_for,
        }
    }

    /// Counts one request or frame of `user`; `Err(wait)` when over the limit.
    pub fn check_user(&self, user: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.user else {
            return Ok(());
        };
        limiter.check_key(&user.to_owned()).map_err(|not_until| {
            crate::metrics::rate_limited("user");
            not_until.wait_time_from(DefaultClock::default().now())
        })
    }

    /// Counts one request or frame from `address`; `Err(wait)` when over the limit.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.address else {
            return Ok(());
        };
        limiter.check_key(&address).map_err(|not_until| {
            crate::metrics::rate_limited("address");
            not_until.wait_time_from(DefaultClock::default().now())
        })
    }

    /// The client's address: the peer's, or with `--trust-forwarded-for` the last
    /// `X-Forwarded-For` entry when there is one.
    pub fn client_address(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return forwarded;
            }
        }
        peer.map(|p| p.ip())
    }

    /// Forgets idle keys once a minute, for as long as the process runs (memory stays
    /// bounded by the clients of the last minute).
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        let limits = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(limits) = limits.upgrade() else {
                    return;
                };
                if let Some(l) = &limits.user {
                    l.retain_recent();
                    l.shrink_to_fit();
                }
                if let Some(l) = &limits.address {
                    l.retain_recent();
                    l.shrink_to_fit();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(user: u32, burst: u32) -> RateLimits {
        RateLimits::new(
            &RateLimitArgs {
                rate_limit_user: user,
                rate_limit_user_burst: burst,
                rate_limit_ip: 0,
                rate_limit_ip_burst: 0,
            },
            true,
        )
    }

    #[test]
    fn a_burst_passes_then_waits_are_told() {
        let limits = limits(1, 3);
        for _ in 0..3 {
            assert!(limits.check_user("alice").is_ok());
        }
        let wait = limits.check_user("alice").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limits.check_user("bob").is_ok(), "per user");
        assert!(
            limits.check_address("127.0.0.1".parse().unwrap()).is_ok(),
            "no address limit"
        );
        assert!(RateLimits::default().check_user("alice").is_ok());
    }

    #[test]
    fn the_address_is_the_proxys_last_entry_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.0.0.1, 192.0.2.7".parse().unwrap());
        let peer = Some("127.0.0.1:9".parse().unwrap());
        let trusted = limits(0, 0);
        assert_eq!(
            trusted.client_address(&headers, peer),
            Some("192.0.2.7".parse().unwrap())
        );
        let untrusted = RateLimits::default();
        assert_eq!(
            untrusted.client_address(&headers, peer),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
