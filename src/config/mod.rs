//! hastmon.conf (and TOML) into resolved per-node, per-resource settings.
//!
//! `conf` and `toml` read the two syntaxes into one [`document::Document`];
//! `resolve` picks out what applies to this node; `dump` writes the result
//! back out. Nothing here touches the network: host names in addresses are
//! resolved by the daemon.

pub mod address;
mod conf;
pub mod document;
pub mod dump;
mod resolve;
mod toml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use address::Address;
pub use document::{Located, Pos};
pub use resolve::NodeNames;

use crate::types::Role;

/// Key algorithms by their configuration names: the digests of the
/// original's authentication, and HMAC-SHA256 sessions (Q23).
pub const KEY_ALGORITHMS: &[&str] = &["MD5", "SHA1", "SHA256", "RIPEMD160", "HMAC-SHA256"];

/// Built-in defaults: the values the original's code uses (`hast.h`).
pub mod defaults {
    use super::Address;
    use std::time::Duration;

    pub const CONFIG: &str = "/usr/local/etc/hastmon.conf";
    /// Workers run as this user when the daemon runs as root (the port
    /// creates it, as hastd's port creates `hast`).
    pub const USER: &str = "hastmon";
    /// The user taken when [`USER`] does not exist and `-u` was not given.
    pub const FALLBACK_USER: &str = "nobody";
    /// Workers are chrooted here before they enter the sandbox.
    pub const CHROOT: &str = "/var/empty";
    pub const PIDFILE: &str = "/var/run/hastmon.pid";
    pub const TIMEOUT: Duration = Duration::from_secs(5);
    pub const ATTEMPTS: u32 = 5;
    pub const HEARTBEAT: Duration = Duration::from_secs(10);
    pub const COMPLAINT_COUNT: u32 = 3;
    pub const COMPLAINT_INTERVAL: Duration = Duration::from_secs(60);
    pub const PRIORITY: u32 = 100;
    pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn control() -> Address {
        Address::parse("uds:///var/run/hastmonctl", false).expect("valid default")
    }

    pub fn listen() -> Address {
        Address::parse("tcp4://0.0.0.0:8458", false).expect("valid default")
    }
}

/// This node's view of the whole file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Config {
    /// The node name the `on` sections were matched against.
    pub node: String,
    pub control: Address,
    pub listen: Address,
    /// Top-level friends: may reach every resource.
    pub friends: Vec<Address>,
    pub resources: Vec<Resource>,
    /// Resources of the file that have no `on` section for this node.
    pub skipped: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Resource {
    pub name: String,
    pub exec: String,
    pub remote: Vec<Address>,
    pub friends: Vec<Address>,
    pub priority: u32,
    pub role_on_start: Role,
    #[serde(serialize_with = "seconds")]
    pub timeout: Duration,
    pub attempts: u32,
    #[serde(serialize_with = "seconds")]
    pub heartbeat_interval: Duration,
    pub complaint_count: u32,
    #[serde(serialize_with = "seconds")]
    pub complaint_interval: Duration,
    #[serde(serialize_with = "seconds")]
    pub hook_timeout: Duration,
    /// How long a primary may go without contact before it stops the
    /// resource; zero: never. Unset, `complaint_count` ×
    /// `heartbeat_interval` + `timeout`.
    pub silence_limit: Duration,
    pub key: Option<Key>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Key {
    pub algorithm: String,
    pub secret: String,
}

impl Key {
    /// The secret, if this key authenticates HMAC-SHA256 sessions rather
    /// than single requests with the original's digest.
    pub fn hmac_secret(&self) -> Option<&[u8]> {
        (self.algorithm == crate::proto::hmac::ALGORITHM).then_some(self.secret.as_bytes())
    }
}

/// Whole seconds as integers, fractions as decimals (`10`, `0.25`).
fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_millis() == 0 {
        s.serialize_u64(d.as_secs())
    } else {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Config {
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }
}

/// The file's syntax, chosen by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    Conf,
    Toml,
}

impl Syntax {
    pub fn of(path: &Path) -> Syntax {
        match path.extension() {
            Some(e) if e == "toml" => Syntax::Toml,
            _ => Syntax::Conf,
        }
    }
}

/// A rejected configuration: one line, `PATH:LINE:COL: what is wrong`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read (`EX_OSFILE`, as the original).
    Open { path: PathBuf, reason: String },
    /// The file was read and is wrong (`EX_CONFIG`).
    Invalid { path: PathBuf, at: Located },
}

impl ConfigError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Open { .. } => crate::exit::OSFILE,
            ConfigError::Invalid { .. } => crate::exit::CONFIG,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Open { path, reason } => {
                write!(
                    f,
                    "{}: unable to open configuration file: {reason}",
                    path.display()
                )
            }
            ConfigError::Invalid { path, at } => {
                write!(
                    f,
                    "{}:{}:{}: {}",
                    path.display(),
                    at.pos.line,
                    at.pos.col,
                    at.msg
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Files larger than this are not configurations.
const MAX_FILE: u64 = 4 << 20;

/// Reads, parses and resolves a configuration file for `node`.
pub fn load(path: &Path, node: &NodeNames) -> Result<Config, ConfigError> {
    let open_err = |reason: String| ConfigError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| open_err(io_reason(&e)))?;
    if meta.is_dir() {
        return Err(open_err("is a directory".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(open_err(format!("larger than {} bytes", MAX_FILE)));
    }
    let bytes = std::fs::read(path).map_err(|e| open_err(io_reason(&e)))?;
    parse_bytes(&bytes, Syntax::of(path), node).map_err(|at| ConfigError::Invalid {
        path: path.to_path_buf(),
        at,
    })
}

fn io_reason(e: &std::io::Error) -> String {
    // The OS text without Rust's "(os error N)" suffix, as a C tool would say it.
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses and resolves configuration text.
pub fn parse_bytes(bytes: &[u8], syntax: Syntax, node: &NodeNames) -> Result<Config, Located> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        let col = before.iter().rev().take_while(|&&b| b != b'\n').count() as u32 + 1;
        Located::new(Pos { line, col }, "the file is not valid UTF-8")
    })?;
    let doc = match syntax {
        Syntax::Conf => conf::parse(text)?,
        Syntax::Toml => toml::parse(text)?,
    };
    resolve::resolve(&doc, node)
}
