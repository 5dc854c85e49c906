//! Address syntax of hastmon.conf: `tcp4://`, `tcp://`, `tcp6://[v6]`,
//! `uds://`, `unix://`, a bare path, and the special remote `none`.
//!
//! Parsing checks syntax only; host names are resolved by the daemon when it
//! loads the configuration, never here, so that `hastmonctl` and `hastmon -t`
//! work without a name service.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// The port used when an address names none (`HAST_PORT`).
pub const DEFAULT_PORT: u16 = 8458;

/// Longest UNIX socket path: `sun_path` less its NUL (103 on FreeBSD, 107 on
/// Linux); the smaller one keeps a file valid on both.
pub const MAX_UDS_PATH: usize = 103;

/// Longest host name (as the original allowed).
const MAX_HOST: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// A name; `v6_only` when written with `tcp6://`.
    Name {
        name: String,
        v6_only: bool,
    },
}

/// One address as written in the configuration. Equality and display use
/// the text as written, which is also what `hastmonctl status` prints.
#[derive(Clone, Debug)]
pub struct Address {
    text: String,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp {
        host: Host,
        port: u16,
    },
    Unix(PathBuf),
    /// `remote none`: the peer is not known yet.
    None,
}

impl PartialEq for Address {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Address {}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl Address {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The socket address of a TCP address written as an IP literal; a
    /// host name needs the resolver (DNS is I/O, and not done here).
    pub fn literal(&self) -> Option<std::net::SocketAddr> {
        match self.kind() {
            Kind::Tcp {
                host: Host::V4(ip),
                port,
            } => Some(std::net::SocketAddr::new((*ip).into(), *port)),
            Kind::Tcp {
                host: Host::V6(ip),
                port,
            } => Some(std::net::SocketAddr::new((*ip).into(), *port)),
            _ => None,
        }
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self.kind, Kind::Tcp { .. })
    }

    pub fn is_none(&self) -> bool {
        matches!(self.kind, Kind::None)
    }

    /// Parses an address. `none` is only recognised when `allow_none`.
    pub fn parse(text: &str, allow_none: bool) -> Result<Address, String> {
        let kind = parse_kind(text, allow_none)?;
        Ok(Address {
            text: text.to_string(),
            kind,
        })
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn parse_kind(text: &str, allow_none: bool) -> Result<Kind, String> {
    if text == "none" {
        return if allow_none {
            Ok(Kind::None)
        } else {
            Err("'none' is only meaningful in a remote list".into())
        };
    }
    for prefix in ["uds://", "unix://"] {
        if let Some(path) = strip_prefix_ci(text, prefix) {
            return unix_path(path);
        }
    }
    if text.starts_with('/') && !text.contains("://") {
        return unix_path(text);
    }
    if let Some(rest) = strip_prefix_ci(text, "tcp6://") {
        return tcp(rest, Family::V6);
    }
    if let Some(rest) = strip_prefix_ci(text, "tcp4://") {
        return tcp(rest, Family::V4);
    }
    if let Some(rest) = strip_prefix_ci(text, "tcp://") {
        return tcp(rest, Family::Any);
    }
    if let Some((scheme, _)) = text.split_once("://") {
        return Err(format!(
            "unknown address scheme '{scheme}://' (use tcp4://, tcp6://, tcp://, uds:// or unix://)"
        ));
    }
    tcp(text, Family::Any)
}

fn unix_path(path: &str) -> Result<Kind, String> {
    if !path.starts_with('/') {
        return Err(format!("UNIX socket path '{path}' must be absolute"));
    }
    if path.len() > MAX_UDS_PATH {
        return Err(format!(
            "UNIX socket path is {} bytes long, at most {MAX_UDS_PATH} fit",
            path.len()
        ));
    }
    Ok(Kind::Unix(PathBuf::from(path)))
}

#[derive(Clone, Copy, PartialEq)]
enum Family {
    V4,
    V6,
    Any,
}

fn tcp(rest: &str, family: Family) -> Result<Kind, String> {
    if let Some(inner) = rest.strip_prefix('[') {
        // [v6] or [v6]:port
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(format!("missing ']' in '{rest}'"));
        };
        if family == Family::V4 {
            return Err("tcp4:// takes no IPv6 address (use tcp6://)".into());
        }
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IPv6 address"))?;
        let port = match after {
            "" => DEFAULT_PORT,
            _ => match after.strip_prefix(':') {
                Some(p) => port(p)?,
                None => return Err(format!("unexpected '{after}' after ']'")),
            },
        };
        return Ok(Kind::Tcp {
            host: Host::V6(ip),
            port,
        });
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, p)) => (host, port(p)?),
        None => (rest, DEFAULT_PORT),
    };
    if host.is_empty() {
        return Err("address has no host".into());
    }
    if host.contains(':') {
        return Err(format!(
            "'{host}' looks like an IPv6 address: write it in brackets, tcp6://[{host}]"
        ));
    }
    if let Some(ip) = inet_aton(host) {
        if family == Family::V6 {
            return Err("tcp6:// takes no IPv4 address (use tcp4://)".into());
        }
        return Ok(Kind::Tcp {
            host: Host::V4(ip),
            port,
        });
    }
    valid_host_name(host)?;
    Ok(Kind::Tcp {
        host: Host::Name {
            name: host.to_string(),
            v6_only: family == Family::V6,
        },
        port,
    })
}

fn port(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port '{text}' is not a number from 1 to 65535"));
    }
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {text} is out of range (1 to 65535)")),
    }
}

fn valid_host_name(host: &str) -> Result<(), String> {
    if host.len() > MAX_HOST {
        return Err(format!("host name is longer than {MAX_HOST} bytes"));
    }
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if !ok || host.starts_with('.') || host.starts_with('-') {
        return Err(format!("'{host}' is not a valid host name or address"));
    }
    Ok(())
}

/// IPv4 literals in every form `inet_aton(3)` accepts (`10.1`, `0x0a000001`,
/// octal parts), because the original took them and files in the wild use
/// them.
pub fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for part in &parts {
        nums.push(inet_number(part)?);
    }
    let last = *nums.last()?;
    let head = &nums[..nums.len() - 1];
    if head.iter().any(|&n| n > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - head.len()) as u32;
    if last_bits < 32 && last >= (1u64 << last_bits) {
        return None;
    }
    if last > u32::MAX as u64 {
        return None;
    }
    let mut value: u32 = 0;
    for (i, &n) in head.iter().enumerate() {
        value |= (n as u32) << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(value | last as u32))
}

fn inet_number(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        // "0x" alone is 0 for inet_aton; a bare empty part is invalid.
        return (radix == 16).then_some(0);
    }
    if digits.len() > 12 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_of(text: &str) -> (Host, u16) {
        match Address::parse(text, false).unwrap().kind {
            Kind::Tcp { host, port } => (host, port),
            k => panic!("{text} parsed as {k:?}"),
        }
    }

    #[test]
    fn ipv4_forms_and_default_port() {
        let lo = Host::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(tcp_of("10.0.0.1"), (lo.clone(), 8458));
        assert_eq!(tcp_of("tcp4://10.0.0.1:7000"), (lo.clone(), 7000));
        assert_eq!(tcp_of("TCP://10.0.0.1"), (lo.clone(), 8458));
        assert_eq!(tcp_of("10.1"), (Host::V4(Ipv4Addr::new(10, 0, 0, 1)), 8458));
        assert_eq!(tcp_of("0x0a000001"), (lo, 8458));
        assert_eq!(tcp_of("010.0.0.1:1").0, Host::V4(Ipv4Addr::new(8, 0, 0, 1)));
    }

    #[test]
    fn ipv6_needs_brackets() {
        assert_eq!(
            tcp_of("tcp6://[::1]:9000"),
            (Host::V6(Ipv6Addr::LOCALHOST), 9000)
        );
        assert_eq!(tcp_of("tcp://[::1]"), (Host::V6(Ipv6Addr::LOCALHOST), 8458));
        assert!(Address::parse("tcp6://::1", false).is_err());
        assert!(Address::parse("tcp4://[::1]", false).is_err());
        assert!(Address::parse("tcp6://10.0.0.1", false).is_err());
    }

    #[test]
    fn names_and_unix_paths() {
        assert_eq!(
            tcp_of("tcp4://bolek.example.com:1").0,
            Host::Name {
                name: "bolek.example.com".into(),
                v6_only: false
            }
        );
        for text in ["/var/run/hastmonctl", "uds:///var/run/x", "UNIX:///x"] {
            assert!(matches!(
                Address::parse(text, false).unwrap().kind,
                Kind::Unix(_)
            ));
        }
        assert!(Address::parse("uds://relative", false).is_err());
        let long = format!("/{}", "x".repeat(MAX_UDS_PATH));
        assert!(Address::parse(&long, false).is_err());
    }

    #[test]
    fn bad_ports_and_schemes_are_rejected() {
        for text in ["h:", "h:0", "h:65536", "h:http", "udp://h", ":80", "-h"] {
            assert!(Address::parse(text, false).is_err(), "{text}");
        }
    }

    #[test]
    fn none_only_where_allowed() {
        assert!(Address::parse("none", true).unwrap().is_none());
        assert!(Address::parse("none", false).is_err());
    }

    #[test]
    fn inet_aton_rejects_out_of_range_parts() {
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.65536"), None);
        assert_eq!(inet_aton("1.2.65535"), Some(Ipv4Addr::new(1, 2, 255, 255)));
        assert_eq!(inet_aton("4294967296"), None);
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton("node1"), None);
    }
}
