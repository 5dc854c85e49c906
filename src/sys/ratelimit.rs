//! Rate limiting of repeated log messages.
//!
//! A failure that recurs every heartbeat (a remote refusing connections, a
//! client with the wrong key, a watchdog that cannot poll) would otherwise
//! write the same line several times a second. The rule, per message:
//!
//! * its first occurrence is logged as it is;
//! * identical ones after it are counted, not logged;
//! * the occurrence that brings the count to [`BURST`], or the first one
//!   [`WINDOW`] or more after the last line logged, is logged with
//!   ` (repeated N times in the last S s)`, N counting it; each such
//!   summary doubles the count needed for the next, so a steady failure
//!   settles at one line per window;
//! * a message that does not recur for a whole window is forgotten, and
//!   occurrences of it not yet reported are summarized then (at the next
//!   limited message of any kind, as nothing here owns a timer).
//!
//! Two messages are identical when their keys are: a key the caller gives,
//! or else the text with port numbers masked ([`mask_ports`]), so that
//! every connection from one host counts as the same message.
//! The clock is the caller's, so the rule is tested without waiting.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a message stays limited after the last line logged for it.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Occurrences counted before the first summary.
pub const BURST: u32 = 10;
/// Messages remembered at once; the one quiet longest is dropped first.
const MAX_KEYS: usize = 256;

struct Entry<L> {
    level: L,
    text: String,
    logged_at: Instant,
    last_at: Instant,
    /// Occurrences since the last line logged.
    suppressed: u32,
    /// Occurrences that trigger the next summary.
    limit: u32,
}

impl<L: Copy> Entry<L> {
    fn summary(&self, count: u32, now: Instant) -> (L, String) {
        let secs = now.saturating_duration_since(self.logged_at).as_secs_f64();
        (
            self.level,
            format!(
                "{} (repeated {count} times in the last {secs:.1} s)",
                self.text
            ),
        )
    }
}

pub struct RateLimit<L> {
    entries: BTreeMap<String, Entry<L>>,
}

impl<L: Copy> Default for RateLimit<L> {
    fn default() -> Self {
        RateLimit::new()
    }
}

impl<L: Copy> RateLimit<L> {
    pub const fn new() -> RateLimit<L> {
        RateLimit {
            entries: BTreeMap::new(),
        }
    }

    /// One occurrence of `text` at `now`: the lines to log now, in order
    /// (none while it is suppressed; summaries of forgotten messages
    /// first).
    pub fn check(&mut self, now: Instant, key: &str, level: L, text: &str) -> Vec<(L, String)> {
        let mut out = self.expire(now);
        if let Some(e) = self.entries.get_mut(key) {
            e.level = level;
            e.last_at = now;
            text.clone_into(&mut e.text);
            let count = e.suppressed + 1;
            if count >= e.limit || now.saturating_duration_since(e.logged_at) >= WINDOW {
                out.push(e.summary(count, now));
                e.logged_at = now;
                e.suppressed = 0;
                e.limit = e.limit.saturating_mul(2);
            } else {
                e.suppressed = count;
            }
            return out;
        }
        if self.entries.len() >= MAX_KEYS {
            out.extend(self.drop_quietest(now));
        }
        self.entries.insert(
            key.to_string(),
            Entry {
                level,
                text: text.to_string(),
                logged_at: now,
                last_at: now,
                suppressed: 0,
                limit: BURST,
            },
        );
        out.push((level, text.to_string()));
        out
    }

    /// Forgets messages quiet for a window; summarizes what they held back.
    fn expire(&mut self, now: Instant) -> Vec<(L, String)> {
        let mut out = Vec::new();
        self.entries.retain(|_, e| {
            if now.saturating_duration_since(e.last_at) < WINDOW {
                return true;
            }
            if e.suppressed > 0 {
                out.push(e.summary(e.suppressed, now));
            }
            false
        });
        out
    }

    fn drop_quietest(&mut self, now: Instant) -> Option<(L, String)> {
        let key = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last_at)
            .map(|(k, _)| k.clone())?;
        let e = self.entries.remove(&key)?;
        (e.suppressed > 0).then(|| e.summary(e.suppressed, now))
    }
}

/// `text` with the port of every `a.b.c.d:port` and `[v6]:port` replaced
/// by `*`: the default key of a message.
pub fn mask_ports(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if bytes[i] == b':' && digits > 0 && after_address(&text[..i]) {
            out.push_str(":*");
            i += 1 + digits;
        } else {
            let ch = text[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

/// Whether `before` ends with a dotted IPv4 address or a bracketed IPv6
/// one: only then is a colon and a number a port.
fn after_address(before: &str) -> bool {
    if before.ends_with(']') {
        return true;
    }
    let tail: &str = before
        .rsplit(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or_default();
    let parts: Vec<&str> = tail.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "Unable to connect to tcp4://10.0.0.2:8457: Connection refused.";

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn texts(lines: Vec<(u8, String)>) -> Vec<String> {
        lines.into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn the_first_is_logged_then_a_summary_after_a_burst_and_bursts_double() {
        let t0 = Instant::now();
        let mut rl = RateLimit::new();
        assert_eq!(texts(rl.check(t0, "k", 4, MSG)), [MSG]);
        // Every 200 ms, like a primary retrying with heartbeat_interval 0.2.
        for n in 1..BURST as u64 {
            assert!(rl.check(at(t0, 200 * n), "k", 4, MSG).is_empty(), "{n}");
        }
        assert_eq!(
            texts(rl.check(at(t0, 2000), "k", 4, MSG)),
            [format!("{MSG} (repeated 10 times in the last 2.0 s)")]
        );
        for n in 1..20 {
            assert!(rl.check(at(t0, 2000 + 200 * n), "k", 4, MSG).is_empty());
        }
        assert_eq!(
            texts(rl.check(at(t0, 6000), "k", 4, MSG)),
            [format!("{MSG} (repeated 20 times in the last 4.0 s)")]
        );
    }

    #[test]
    fn a_rare_repeat_is_summarized_once_a_window_has_passed() {
        let t0 = Instant::now();
        let mut rl = RateLimit::new();
        rl.check(t0, "k", 4, "x");
        assert!(rl.check(at(t0, 30_000), "k", 4, "x").is_empty());
        assert!(rl.check(at(t0, 59_000), "k", 4, "x").is_empty());
        assert_eq!(
            texts(rl.check(at(t0, 61_000), "k", 4, "x")),
            ["x (repeated 3 times in the last 61.0 s)"]
        );
    }

    #[test]
    fn keys_are_limited_independently_and_the_latest_text_and_level_are_kept() {
        let t0 = Instant::now();
        let mut rl = RateLimit::new();
        assert_eq!(rl.check(t0, "a", 4, "a1"), [(4, "a1".to_string())]);
        assert_eq!(rl.check(t0, "b", 3, "b1"), [(3, "b1".to_string())]);
        for n in 1..BURST as u64 {
            assert!(rl.check(at(t0, n), "a", 4, "a1").is_empty());
        }
        assert_eq!(
            rl.check(at(t0, 10), "a", 3, "a2"),
            [(3, "a2 (repeated 10 times in the last 0.0 s)".to_string())]
        );
    }

    #[test]
    fn a_quiet_message_is_forgotten_and_what_it_held_back_is_reported() {
        let t0 = Instant::now();
        let mut rl = RateLimit::new();
        rl.check(t0, "a", 4, "a");
        rl.check(at(t0, 1000), "a", 4, "a");
        rl.check(at(t0, 2000), "a", 4, "a");
        // Another message, after "a" was quiet for a window.
        assert_eq!(
            texts(rl.check(at(t0, 62_000), "b", 4, "b")),
            ["a (repeated 2 times in the last 62.0 s)", "b"]
        );
        // "a" starts afresh.
        assert_eq!(texts(rl.check(at(t0, 63_000), "a", 4, "a")), ["a"]);
        // Nothing held back: forgotten silently.
        assert_eq!(texts(rl.check(at(t0, 200_000), "c", 4, "c")), ["c"]);
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut rl = RateLimit::new();
        rl.check(t0, "first", 4, "first");
        rl.check(at(t0, 1), "first", 4, "first");
        for n in 0..MAX_KEYS as u64 {
            let lines = texts(rl.check(at(t0, 2 + n), &n.to_string(), 4, "x"));
            if n + 1 == MAX_KEYS as u64 {
                assert_eq!(lines, ["first (repeated 1 times in the last 0.3 s)", "x"]);
            }
        }
        assert_eq!(rl.entries.len(), MAX_KEYS);
    }

    #[test]
    fn ports_are_masked_and_addresses_kept() {
        assert_eq!(
            mask_ports("[www] Authentication of 127.0.0.1:53212 failed: Hash mismatch."),
            "[www] Authentication of 127.0.0.1:* failed: Hash mismatch."
        );
        assert_eq!(
            mask_ports("Control request from [fe80::1:2]:40000 failed authentication."),
            "Control request from [fe80::1:2]:* failed authentication."
        );
        assert_eq!(
            mask_ports("Unable to connect to tcp4://10.0.0.2:8457: Connection refused."),
            "Unable to connect to tcp4://10.0.0.2:*: Connection refused."
        );
        for kept in [
            "Client fe80::1:2 isn't known.",
            "Client 127.0.0.9 isn't known.",
            "at 12:30 exit code 2: done",
            "ünïcode 1.2.3.4",
        ] {
            assert_eq!(mask_ports(kept), kept);
        }
    }
}
