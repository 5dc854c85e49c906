//! The configuration as written, before node matching and inheritance.
//!
//! Both front ends (hastmon.conf syntax and TOML) build a [`Document`]
//! through [`Block::set`], so which keyword is allowed where, and how each
//! value is checked, is decided in one place.

use std::time::Duration;

use super::address::Address;
use crate::types::Role;

/// A 1-based position in the source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// An error at a position; the caller adds the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    pub msg: String,
}

impl Located {
    pub fn new(pos: Pos, msg: impl Into<String>) -> Located {
        Located {
            pos,
            msg: msg.into(),
        }
    }
}

/// A value and where it was written.
#[derive(Clone, Debug)]
pub struct At<T> {
    pub value: T,
    pub pos: Pos,
}

/// A word of the source: a value, a name or a keyword.
pub type Word = At<String>;

/// Where a block stands; decides which keywords it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Global,
    GlobalOn,
    Resource,
    ResourceOn,
}

/// Per-resource settings; each may be written at any of the four levels.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub exec: Option<At<String>>,
    pub timeout: Option<At<Duration>>,
    pub attempts: Option<At<u32>>,
    pub heartbeat_interval: Option<At<Duration>>,
    pub complaint_count: Option<At<u32>>,
    pub complaint_interval: Option<At<Duration>>,
    pub role_on_start: Option<At<Role>>,
    pub priority: Option<At<u32>>,
    pub hook_timeout: Option<At<Duration>>,
    pub silence_limit: Option<At<Duration>>,
}

#[derive(Clone, Debug, Default)]
pub struct KeyDoc {
    pub pos: Pos,
    pub algorithm: Option<Word>,
    pub secret: Option<Word>,
}

#[derive(Clone, Debug, Default)]
pub struct Block {
    pub settings: Settings,
    pub control: Option<At<Address>>,
    pub listen: Option<At<Address>>,
    pub friends: Vec<At<Address>>,
    pub remote: Vec<At<Address>>,
    pub key: Option<KeyDoc>,
}

#[derive(Clone, Debug)]
pub struct OnBlock {
    pub node: Word,
    pub block: Block,
}

#[derive(Clone, Debug)]
pub struct ResourceDoc {
    pub name: Word,
    pub block: Block,
    pub on: Vec<OnBlock>,
}

#[derive(Clone, Debug, Default)]
pub struct Document {
    pub global: Block,
    pub on: Vec<OnBlock>,
    pub resources: Vec<ResourceDoc>,
}

/// Keywords of statements; a bare word equal to one of these ends a list.
pub const KEYWORDS: &[&str] = &[
    "control",
    "listen",
    "port",
    "timeout",
    "exec",
    "resource",
    "priority",
    "attempts",
    "heartbeat_interval",
    "friends",
    "remote",
    "key",
    "algorithm",
    "secret",
    "complaint_count",
    "complaint_interval",
    "on",
    "role_on_start",
    "hook_timeout",
    "silence_limit",
];

pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// Keywords that take a list of addresses rather than one value.
pub fn takes_list(keyword: &str) -> bool {
    matches!(keyword, "friends" | "remote")
}

/// Limits from the original where it had them, sane ones elsewhere.
const MAX_EXEC: usize = 1023;
const MAX_SECRET: usize = 1023;
pub const MAX_NAME: usize = 254;
const MAX_COUNT: u32 = 1_000_000;
const MAX_PRIORITY: u32 = i32::MAX as u32;
const DAY_MS: u64 = 86_400_000;

/// Checks a resource or node name (they appear in status text and on the wire).
pub fn check_name(what: &str, name: &Word) -> Result<(), Located> {
    if name.value.is_empty() {
        return Err(Located::new(name.pos, format!("{what} name is empty")));
    }
    if name.value.len() > MAX_NAME {
        return Err(Located::new(
            name.pos,
            format!("{what} name is longer than {MAX_NAME} bytes"),
        ));
    }
    if name.value == "all" && what == "resource" {
        return Err(Located::new(
            name.pos,
            "a resource may not be called 'all' (hastmonctl uses it for every resource)",
        ));
    }
    if name
        .value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Located::new(
            name.pos,
            format!("{what} name may not contain spaces or control characters"),
        ));
    }
    Ok(())
}

impl Block {
    /// Applies one statement `keyword values...` written at `level`.
    pub fn set(&mut self, level: Level, keyword: &Word, values: &[Word]) -> Result<(), Located> {
        let kw = keyword.value.as_str();
        placement(level, keyword)?;
        if takes_list(kw) {
            let list = if kw == "friends" {
                &mut self.friends
            } else {
                &mut self.remote
            };
            if kw == "remote" && values.is_empty() {
                return Err(Located::new(
                    keyword.pos,
                    "'remote' needs at least one address",
                ));
            }
            for v in values {
                let addr = Address::parse(&v.value, kw == "remote")
                    .map_err(|e| Located::new(v.pos, format!("bad {kw} address: {e}")))?;
                if !addr.is_tcp() && !addr.is_none() {
                    return Err(Located::new(
                        v.pos,
                        format!("{kw} address '{}' is not a TCP address", v.value),
                    ));
                }
                if let Some(first) = list.iter().find(|a| a.value == addr) {
                    return Err(Located::new(
                        v.pos,
                        format!(
                            "{kw} address '{}' is listed twice (first at line {})",
                            v.value, first.pos.line
                        ),
                    ));
                }
                list.push(At {
                    value: addr,
                    pos: v.pos,
                });
            }
            return Ok(());
        }
        let value = one_value(keyword, values)?;
        let s = &mut self.settings;
        match kw {
            "control" => {
                let addr = address(value, kw)?;
                if !matches!(addr.kind(), super::address::Kind::Unix(_)) {
                    return Err(Located::new(
                        value.pos,
                        "the control address must be a UNIX socket (uds://PATH): a TCP control socket would let anyone on the network change roles",
                    ));
                }
                put(&mut self.control, keyword, value, addr)
            }
            "listen" => {
                let addr = address(value, kw)?;
                if !addr.is_tcp() {
                    return Err(Located::new(
                        value.pos,
                        "the listen address must be a TCP address (tcp4://, tcp6:// or host:port)",
                    ));
                }
                put(&mut self.listen, keyword, value, addr)
            }
            "exec" => {
                let path = &value.value;
                if !path.starts_with('/') {
                    return Err(Located::new(
                        value.pos,
                        format!("exec path '{path}' must be absolute"),
                    ));
                }
                if path.len() > MAX_EXEC {
                    return Err(Located::new(value.pos, "exec path is too long"));
                }
                put(&mut s.exec, keyword, value, path.clone())
            }
            "timeout" => put(
                &mut s.timeout,
                keyword,
                value,
                duration(value, kw, 10, DAY_MS)?,
            ),
            "heartbeat_interval" => put(
                &mut s.heartbeat_interval,
                keyword,
                value,
                duration(value, kw, 10, DAY_MS)?,
            ),
            "complaint_interval" => put(
                &mut s.complaint_interval,
                keyword,
                value,
                duration(value, kw, 10, DAY_MS)?,
            ),
            "hook_timeout" => put(
                &mut s.hook_timeout,
                keyword,
                value,
                duration(value, kw, 100, DAY_MS)?,
            ),
            // 0 turns the rule off (two nodes without a watchdog: Q12).
            "silence_limit" => put(
                &mut s.silence_limit,
                keyword,
                value,
                duration(value, kw, 0, DAY_MS)?,
            ),
            "attempts" => put(
                &mut s.attempts,
                keyword,
                value,
                count(value, kw, 1, MAX_COUNT)?,
            ),
            "complaint_count" => put(
                &mut s.complaint_count,
                keyword,
                value,
                count(value, kw, 1, MAX_COUNT)?,
            ),
            "priority" => put(
                &mut s.priority,
                keyword,
                value,
                count(value, kw, 0, MAX_PRIORITY)?,
            ),
            "role_on_start" => {
                let role = Role::from_word(&value.value).ok_or_else(|| {
                    Located::new(
                        value.pos,
                        format!(
                            "unknown role '{}' (init, primary, secondary or watchdog)",
                            value.value
                        ),
                    )
                })?;
                put(&mut s.role_on_start, keyword, value, role)
            }
            _ => Err(Located::new(keyword.pos, format!("unknown keyword '{kw}'"))),
        }
    }

    /// Opens a `key { }` block at `level`, refusing a second one.
    pub fn open_key(&mut self, level: Level, keyword: &Word) -> Result<&mut KeyDoc, Located> {
        placement(level, keyword)?;
        if let Some(k) = &self.key {
            return Err(Located::new(
                keyword.pos,
                format!("duplicate 'key' section (first at line {})", k.pos.line),
            ));
        }
        Ok(self.key.insert(KeyDoc {
            pos: keyword.pos,
            ..KeyDoc::default()
        }))
    }
}

impl KeyDoc {
    pub fn set(&mut self, keyword: &Word, values: &[Word]) -> Result<(), Located> {
        let kw = keyword.value.as_str();
        let slot = match kw {
            "algorithm" => &mut self.algorithm,
            "secret" => &mut self.secret,
            _ => {
                return Err(Located::new(
                    keyword.pos,
                    format!("'{kw}' is not allowed in a key section (only algorithm and secret)"),
                ));
            }
        };
        let value = one_value(keyword, values)?;
        if kw == "algorithm" && !super::KEY_ALGORITHMS.contains(&value.value.as_str()) {
            return Err(Located::new(
                value.pos,
                format!(
                    "unknown algorithm '{}' (one of {})",
                    value.value,
                    super::KEY_ALGORITHMS.join(", ")
                ),
            ));
        }
        if kw == "secret" && value.value.len() > MAX_SECRET {
            return Err(Located::new(value.pos, "secret is too long"));
        }
        put(slot, keyword, value, value.value.clone())
    }
}

/// The value of a statement that takes exactly one.
fn one_value<'a>(keyword: &Word, values: &'a [Word]) -> Result<&'a Word, Located> {
    let kw = &keyword.value;
    match values {
        [one] => Ok(one),
        [] => Err(Located::new(keyword.pos, format!("'{kw}' needs a value"))),
        [_, extra, ..] => Err(Located::new(
            extra.pos,
            format!("'{kw}' takes one value, found another: '{}'", extra.value),
        )),
    }
}

/// Refuses a keyword where it does not belong, saying where it does.
fn placement(level: Level, keyword: &Word) -> Result<(), Located> {
    use Level::*;
    let kw = keyword.value.as_str();
    let (ok, home) = match kw {
        "control" | "listen" => (
            matches!(level, Global | GlobalOn),
            "at the top level or in a top-level 'on' section",
        ),
        "remote" => (level == ResourceOn, "in an 'on' section inside a resource"),
        "key" => (
            matches!(level, Global | Resource),
            "at the top level or in a resource",
        ),
        "on" => (
            matches!(level, Global | Resource),
            "at the top level or in a resource ('on' sections do not nest)",
        ),
        "resource" => (level == Global, "at the top level"),
        "algorithm" | "secret" => (false, "in a 'key { }' section"),
        "port" => {
            return Err(Located::new(
                keyword.pos,
                "'port' is not a statement: give the port in the address (host:port)",
            ));
        }
        k if is_keyword(k) => (true, ""),
        _ => return Err(Located::new(keyword.pos, format!("unknown keyword '{kw}'"))),
    };
    if ok {
        Ok(())
    } else {
        Err(Located::new(
            keyword.pos,
            format!(
                "'{kw}' is not allowed {}; it belongs {home}",
                level_text(level)
            ),
        ))
    }
}

fn level_text(level: Level) -> &'static str {
    match level {
        Level::Global => "at the top level",
        Level::GlobalOn => "in a top-level 'on' section",
        Level::Resource => "in a resource section",
        Level::ResourceOn => "in an 'on' section inside a resource",
    }
}

fn put<T>(slot: &mut Option<At<T>>, keyword: &Word, value: &Word, v: T) -> Result<(), Located> {
    if let Some(first) = slot {
        return Err(Located::new(
            keyword.pos,
            format!(
                "duplicate '{}' (first set at line {})",
                keyword.value, first.pos.line
            ),
        ));
    }
    *slot = Some(At {
        value: v,
        pos: value.pos,
    });
    Ok(())
}

fn address(value: &Word, kw: &str) -> Result<Address, Located> {
    Address::parse(&value.value, false)
        .map_err(|e| Located::new(value.pos, format!("bad {kw} address: {e}")))
}

/// A whole number in `min..=max`.
fn count(value: &Word, kw: &str, min: u32, max: u32) -> Result<u32, Located> {
    let text = value.value.as_str();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Located::new(
            value.pos,
            format!("'{kw}' needs a whole number, not '{text}'"),
        ));
    }
    match text.parse::<u64>() {
        Ok(n) if (min as u64..=max as u64).contains(&n) => Ok(n as u32),
        _ => Err(Located::new(
            value.pos,
            format!("'{kw}' {text} is out of range ({min} to {max})"),
        )),
    }
}

/// Seconds with up to three decimals (`10`, `0.25`), in `min_ms..=max_ms`.
fn duration(value: &Word, kw: &str, min_ms: u64, max_ms: u64) -> Result<Duration, Located> {
    let text = value.value.as_str();
    let ms = parse_millis(text).ok_or_else(|| {
        Located::new(
            value.pos,
            format!("'{kw}' needs a number of seconds (like 10 or 0.25), not '{text}'"),
        )
    })?;
    if !(min_ms..=max_ms).contains(&ms) {
        return Err(Located::new(
            value.pos,
            format!(
                "'{kw}' {text} is out of range ({} to {} seconds)",
                format_seconds(Duration::from_millis(min_ms)),
                format_seconds(Duration::from_millis(max_ms))
            ),
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// Parses `S` or `S.F` (F at most 3 digits) into milliseconds.
pub fn parse_millis(text: &str) -> Option<u64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return None;
    }
    if text.ends_with('.') {
        return None;
    }
    let mut ms: u64 = whole.parse::<u64>().ok()? * 1000;
    let mut scale = 100;
    for b in frac.bytes() {
        ms += (b - b'0') as u64 * scale;
        scale /= 10;
    }
    Some(ms)
}

/// Prints a duration the way the configuration takes it: `10`, `0.25`.
pub fn format_seconds(d: Duration) -> String {
    let ms = d.as_millis();
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        s.to_string()
    } else {
        format!("{s}.{frac:03}").trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_parse_and_print_round_trip() {
        assert_eq!(parse_millis("10"), Some(10_000));
        assert_eq!(parse_millis("0.2"), Some(200));
        assert_eq!(parse_millis("0.125"), Some(125));
        for bad in ["", ".5", "5.", "1.2345", "-1", "1e3", "0x10", "1.2.3"] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
        for ms in [1u64, 10, 200, 1000, 1500, 86_400_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_millis(&format_seconds(d)), Some(ms));
        }
        assert_eq!(format_seconds(Duration::from_millis(250)), "0.25");
    }
}
