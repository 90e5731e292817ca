//! Login limits: per account and per client address, a sliding window (an
//! hour by default). Every login is counted as an attempt *before* its
//! password is hashed, atomically for all its keys, so a burst of concurrent
//! guesses is held to the limit like guesses one after another; a login whose
//! password was right (or was never checked) is taken back. Past the limit a
//! login is answered 429 without hashing anything.
//!
//! Memory is bounded: the table holds at most `max_keys` accounts and
//! addresses. When it is full, keys whose attempts have all left the window go
//! first; then the keys with the fewest attempts, those attempted longest ago
//! first, a sixteenth of the table at a time. So filling the table with fresh
//! addresses or names (one attempt each) never resets an account that has
//! been guessed at: it would take as many attempts per key as that account has.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An attempt counted against its keys; give it back with [`Limiter::refund`]
/// when it turns out not to be a failure.
#[derive(Debug)]
#[must_use = "an attempt is either kept (a failure) or refunded"]
pub struct Attempt {
    keys: Vec<String>,
    at: Instant,
}

/// Counts login attempts per key.
#[derive(Debug)]
pub struct Limiter {
    limit: usize,
    window: Duration,
    max_keys: usize,
    attempts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// A limiter allowing `limit` attempts per key in `window`, remembering
    /// at most `max_keys` keys.
    pub fn new(limit: usize, window: Duration, max_keys: usize) -> Limiter {
        Limiter {
            limit: limit.max(1),
            window,
            max_keys: max_keys.max(2),
            attempts: Mutex::default(),
        }
    }

    /// Counts an attempt against every key at `now`, unless one of them
    /// already has `limit` attempts in the window: then nothing is counted
    /// and the answer is `None`.
    pub fn attempt(&self, keys: &[String], now: Instant) -> Option<Attempt> {
        let Ok(mut map) = self.attempts.lock() else {
            return None;
        };
        for k in keys {
            if let Some(times) = map.get_mut(k) {
                prune(times, now, self.window);
                if times.len() >= self.limit {
                    return None;
                }
            }
        }
        let new_keys = keys.iter().filter(|k| !map.contains_key(*k)).count();
        if map.len() + new_keys > self.max_keys {
            self.evict(&mut map, now, keys);
        }
        for k in keys {
            map.entry(k.clone()).or_default().push_back(now);
        }
        Some(Attempt {
            keys: keys.to_vec(),
            at: now,
        })
    }

    /// Takes an attempt back: the password was right, or it was never checked.
    pub fn refund(&self, attempt: Attempt) {
        let Ok(mut map) = self.attempts.lock() else {
            return;
        };
        for k in &attempt.keys {
            if let Some(times) = map.get_mut(k) {
                if let Some(i) = times.iter().rposition(|t| *t == attempt.at) {
                    times.remove(i);
                }
                if times.is_empty() {
                    map.remove(k);
                }
            }
        }
    }

    /// Attempts counted against a key in the window at `now`.
    pub fn count(&self, key: &str, now: Instant) -> usize {
        self.attempts.lock().map_or(0, |map| {
            map.get(key).map_or(0, |times| {
                times
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.window)
                    .count()
            })
        })
    }

    /// Keys remembered now.
    pub fn keys(&self) -> usize {
        self.attempts.lock().map_or(0, |map| map.len())
    }

    /// Makes room: first the keys with no attempt left in the window, then
    /// (if the table is still over seven eighths full) the keys with the
    /// fewest attempts, oldest last attempt first, down to 15/16 of
    /// `max_keys`. Never the keys of the attempt being counted.
    fn evict(&self, map: &mut HashMap<String, VecDeque<Instant>>, now: Instant, keep: &[String]) {
        map.retain(|_, times| {
            prune(times, now, self.window);
            !times.is_empty()
        });
        let target = self.max_keys - (self.max_keys / 16).max(2);
        if map.len() <= target {
            return;
        }
        let mut ranked: Vec<(usize, Instant, String)> = map
            .iter()
            .filter(|(k, _)| !keep.contains(k))
            .map(|(k, times)| (times.len(), times.back().copied().unwrap_or(now), k.clone()))
            .collect();
        let excess = (map.len() - target).min(ranked.len());
        if excess == 0 {
            return;
        }
        ranked.select_nth_unstable_by(excess - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (_, _, k) in ranked.into_iter().take(excess) {
            map.remove(&k);
        }
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn key(s: &str) -> Vec<String> {
        vec![s.to_owned()]
    }

    #[test]
    fn the_attempt_past_the_limit_in_the_window_is_refused_and_not_counted() {
        let l = Limiter::new(100, HOUR, 1000);
        let keys = key("user:k.iyer");
        let start = Instant::now();
        for _ in 0..99 {
            assert!(l.attempt(&keys, start).is_some());
        }
        assert!(
            l.attempt(&keys, start).is_some(),
            "the 100th attempt is let through"
        );
        assert!(l.attempt(&keys, start).is_none(), "the 101st is refused");
        assert_eq!(
            l.count("user:k.iyer", start),
            100,
            "a refusal is not counted"
        );
        assert!(
            l.attempt(&keys, start + HOUR).is_some(),
            "an hour later it is allowed again"
        );
        assert!(l.attempt(&key("user:other"), start).is_some());
    }

    #[test]
    fn an_attempt_is_counted_on_every_key_or_none() {
        let l = Limiter::new(2, HOUR, 1000);
        let now = Instant::now();
        let both = vec!["user:a".to_owned(), "addr:1".to_owned()];
        let _ = l.attempt(&key("addr:1"), now);
        let _ = l.attempt(&key("addr:1"), now);
        assert!(
            l.attempt(&both, now).is_none(),
            "the address is at its limit"
        );
        assert_eq!(
            l.count("user:a", now),
            0,
            "nothing was counted on the account"
        );
    }

    #[test]
    fn a_refunded_attempt_leaves_no_trace() {
        let l = Limiter::new(2, HOUR, 1000);
        let now = Instant::now();
        let keys = vec!["user:a".to_owned(), "addr:1".to_owned()];
        let kept = l.attempt(&keys, now);
        let back = l.attempt(&keys, now);
        assert!(kept.is_some());
        if let Some(a) = back {
            l.refund(a);
        }
        assert_eq!(l.count("user:a", now), 1);
        assert_eq!(l.count("addr:1", now), 1);
        assert!(
            l.attempt(&keys, now).is_some(),
            "the refunded place is free again"
        );
        assert!(l.attempt(&keys, now).is_none());
    }

    #[test]
    fn filling_the_table_with_other_keys_does_not_reset_an_account() {
        const KEYS: usize = 64;
        let l = Limiter::new(5, HOUR, KEYS);
        let start = Instant::now();
        let victim = key("user:victim");
        for _ in 0..4 {
            assert!(l.attempt(&victim, start).is_some());
        }
        // Ten tables' worth of fresh addresses, one attempt each, later on.
        for i in 0..10 * KEYS {
            let at = start + Duration::from_secs(1 + i as u64);
            let _ = l.attempt(&key(&format!("addr:{i}")), at);
            assert!(l.keys() <= KEYS, "the table grew past its bound");
        }
        let later = start + Duration::from_secs(1 + 10 * KEYS as u64);
        assert_eq!(
            l.count("user:victim", later),
            4,
            "the account's attempts were forgotten"
        );
        assert!(
            l.attempt(&victim, later).is_some(),
            "the fifth attempt is let through"
        );
        assert!(
            l.attempt(&victim, later).is_none(),
            "and the sixth is refused"
        );
    }

    #[test]
    fn keys_whose_attempts_left_the_window_go_first() {
        let l = Limiter::new(5, HOUR, 8);
        let start = Instant::now();
        for i in 0..8 {
            let _ = l.attempt(&key(&format!("addr:{i}")), start);
        }
        let later = start + HOUR;
        let _ = l.attempt(&key("addr:new"), later);
        assert_eq!(l.keys(), 1, "only the fresh key is left");
    }
}
