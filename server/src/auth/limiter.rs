//! Failed-login limits: per account and per client address, a sliding window
//! of one hour. Past the limit a login is answered 429 without checking the
//! password. Memory is bounded: the table forgets the oldest keys first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed per key in the window.
pub const MAX_FAILURES: usize = 100;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Keys remembered at most (accounts plus addresses).
const MAX_KEYS: usize = 100_000;

/// Counts failures per key.
#[derive(Debug, Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// Whether any of the keys is over the limit at `now`.
    pub fn blocked(&self, keys: &[String], now: Instant) -> bool {
        let Ok(mut map) = self.failures.lock() else {
            return true;
        };
        keys.iter().any(|k| match map.get_mut(k) {
            Some(times) => {
                prune(times, now);
                times.len() >= MAX_FAILURES
            }
            None => false,
        })
    }

    /// Records a failure against every key.
    pub fn failed(&self, keys: &[String], now: Instant) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for k in keys {
            let times = map.entry(k.clone()).or_default();
            prune(times, now);
            times.push_back(now);
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(account);
        }
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hundred_and_first_failure_in_an_hour_is_blocked() {
        let l = Limiter::default();
        let keys = vec!["user:k.iyer".to_owned()];
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            l.failed(&keys, start);
        }
        assert!(
            !l.blocked(&keys, start),
            "99 failures must still allow a try"
        );
        l.failed(&keys, start);
        assert!(
            l.blocked(&keys, start),
            "after 100 failures the next try is blocked"
        );
        assert!(
            !l.blocked(&keys, start + WINDOW),
            "an hour later it is allowed again"
        );
        assert!(!l.blocked(&["user:other".to_owned()], start));
    }
}
