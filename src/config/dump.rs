//! Writes a resolved configuration back out, so an operator sees exactly
//! what inheritance produced. The hastmon.conf and TOML forms parse back,
//! for the same node, into the same settings.

use std::fmt::Write;

use super::document::{format_seconds, is_keyword};
use super::{Config, Resource};

/// The resolved settings in hastmon.conf syntax.
pub fn conf(cfg: &Config, resources: &[&Resource]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# hastmon.conf as resolved for node {}", cfg.node);
    let _ = writeln!(out, "control {}", word(cfg.control.as_str()));
    let _ = writeln!(out, "listen {}", word(cfg.listen.as_str()));
    if !cfg.friends.is_empty() {
        let _ = writeln!(
            out,
            "friends {}",
            join(cfg.friends.iter().map(|a| a.as_str()))
        );
    }
    for name in &cfg.skipped {
        let _ = writeln!(out, "# resource {name}: no 'on' section for this node");
    }
    for r in resources {
        let _ = writeln!(out, "\nresource {} {{", word(&r.name));
        if let Some(k) = &r.key {
            let _ = writeln!(out, "\tkey {{");
            let _ = writeln!(out, "\t\talgorithm {}", k.algorithm);
            let _ = writeln!(out, "\t\tsecret {}", word(&k.secret));
            let _ = writeln!(out, "\t}}");
        }
        let _ = writeln!(out, "\ton {} {{", word(&cfg.node));
        for (k, v) in settings(r) {
            let _ = writeln!(out, "\t\t{k} {}", word(&v));
        }
        let _ = writeln!(
            out,
            "\t\tremote {}",
            join(r.remote.iter().map(|a| a.as_str()))
        );
        if !r.friends.is_empty() {
            let _ = writeln!(
                out,
                "\t\tfriends {}",
                join(r.friends.iter().map(|a| a.as_str()))
            );
        }
        let _ = writeln!(out, "\t}}\n}}");
    }
    out
}

/// The resolved settings in TOML.
pub fn toml(cfg: &Config, resources: &[&Resource]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# hastmon configuration as resolved for node {}",
        cfg.node
    );
    let _ = writeln!(out, "control = {}", tstr(cfg.control.as_str()));
    let _ = writeln!(out, "listen = {}", tstr(cfg.listen.as_str()));
    if !cfg.friends.is_empty() {
        let _ = writeln!(
            out,
            "friends = {}",
            tlist(cfg.friends.iter().map(|a| a.as_str()))
        );
    }
    for name in &cfg.skipped {
        let _ = writeln!(out, "# resource {name}: no 'on' section for this node");
    }
    for r in resources {
        let table = format!("resource.{}", tkey(&r.name));
        if let Some(k) = &r.key {
            let _ = writeln!(out, "\n[{table}.key]");
            let _ = writeln!(out, "algorithm = {}", tstr(&k.algorithm));
            let _ = writeln!(out, "secret = {}", tstr(&k.secret));
        }
        let _ = writeln!(out, "\n[{table}.on.{}]", tkey(&cfg.node));
        for (k, v) in settings(r) {
            let value = match k {
                "exec" | "role_on_start" => tstr(&v),
                _ => v,
            };
            let _ = writeln!(out, "{k} = {value}");
        }
        let _ = writeln!(
            out,
            "remote = {}",
            tlist(r.remote.iter().map(|a| a.as_str()))
        );
        if !r.friends.is_empty() {
            let _ = writeln!(
                out,
                "friends = {}",
                tlist(r.friends.iter().map(|a| a.as_str()))
            );
        }
    }
    out
}

/// The resolved settings as JSON (the same facts, for programs).
pub fn json(cfg: &Config, resources: &[&Resource]) -> String {
    #[derive(serde::Serialize)]
    struct View<'a> {
        node: &'a str,
        control: &'a super::Address,
        listen: &'a super::Address,
        friends: &'a [super::Address],
        resources: &'a [&'a Resource],
        skipped: &'a [String],
    }
    let view = View {
        node: &cfg.node,
        control: &cfg.control,
        listen: &cfg.listen,
        friends: &cfg.friends,
        resources,
        skipped: &cfg.skipped,
    };
    let mut s = serde_json::to_string_pretty(&view).unwrap_or_default();
    s.push('\n');
    s
}

/// Every scalar setting of a resource as (keyword, text), in man-page order.
fn settings(r: &Resource) -> Vec<(&'static str, String)> {
    vec![
        ("exec", r.exec.clone()),
        ("priority", r.priority.to_string()),
        ("role_on_start", r.role_on_start.as_str().to_string()),
        ("timeout", format_seconds(r.timeout)),
        ("attempts", r.attempts.to_string()),
        ("heartbeat_interval", format_seconds(r.heartbeat_interval)),
        ("complaint_count", r.complaint_count.to_string()),
        ("complaint_interval", format_seconds(r.complaint_interval)),
        ("hook_timeout", format_seconds(r.hook_timeout)),
        ("silence_limit", format_seconds(r.silence_limit)),
    ]
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(word).collect::<Vec<_>>().join(" ")
}

/// A hastmon.conf word, quoted when it would not read back as itself.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && !is_keyword(s)
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':' | '[' | ']' | '%')
        });
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A TOML basic string.
fn tstr(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn tlist<'a>(items: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", items.map(tstr).collect::<Vec<_>>().join(", "))
}

/// A TOML key, bare when it may be.
fn tkey(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { s.to_string() } else { tstr(s) }
}
