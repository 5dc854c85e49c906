//! What `hastmonctl` does once its command line is read.

pub mod client;
pub mod health;
pub mod json;
pub mod status;

use std::io::Write;
use std::path::Path;

use crate::config::{self, Config, ConfigError, NodeNames, Resource};
use crate::exit;
use crate::proto::msg::{ControlCmd, ControlRequest, RoleReply, StatusReply};
use crate::types::Role;

/// Output form of `hastmonctl dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFormat {
    Conf,
    Toml,
    Json,
}

/// Output form of `hastmonctl status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json { pretty: bool },
}

impl StatusFormat {
    /// Reads a `--libxo` argument, FreeBSD's convention for machine
    /// readable output: comma-separated words, of which `json`, `text`
    /// and `pretty` are understood (`json,pretty`); other styles (`xml`,
    /// `html`) and flags are refused.
    pub fn from_libxo(arg: &str) -> Result<StatusFormat, String> {
        let (mut json, mut text, mut pretty) = (false, false, false);
        for word in arg.split(',') {
            match word {
                "json" => json = true,
                "text" => text = true,
                "pretty" => pretty = true,
                other => return Err(format!("--libxo: '{other}' is not supported")),
            }
        }
        match (json, text) {
            (true, true) => Err("--libxo: json and text exclude each other".into()),
            (true, false) => Ok(StatusFormat::Json { pretty }),
            (false, _) => Ok(StatusFormat::Text),
        }
    }
}

/// Loads the configuration as the daemon would, for this node.
pub fn load(path: &Path, node: Option<&str>) -> Result<Config, (i32, String)> {
    let names: NodeNames = crate::sys::host::node_names(node)
        .map_err(|e| (exit::OSERR, format!("unable to get the host name: {e}")))?;
    config::load(path, &names).map_err(|e: ConfigError| (e.exit_code(), e.to_string()))
}

/// Picks the named resources (`all` or none named: every one, in file order).
pub fn select<'a>(cfg: &'a Config, names: &[String]) -> Result<Vec<&'a Resource>, String> {
    if names.is_empty() || names[0] == "all" {
        return Ok(cfg.resources.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            cfg.resource(n).ok_or_else(|| {
                if cfg.skipped.contains(n) {
                    format!(
                        "resource {n} has no 'on' section for this node ({})",
                        cfg.node
                    )
                } else {
                    format!("resource {n} is not configured")
                }
            })
        })
        .collect()
}

/// `hastmonctl dump`: prints the resolved settings; returns the exit code.
pub fn dump(cfg: &Config, names: &[String], format: DumpFormat, out: &mut dyn Write) -> i32 {
    let selected = match select(cfg, names) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("hastmonctl: {msg}.");
            // EHAST_NOENTRY, as `status` reports an unknown resource.
            return 1;
        }
    };
    let text = match format {
        DumpFormat::Conf => config::dump::conf(cfg, &selected),
        DumpFormat::Toml => config::dump::toml(cfg, &selected),
        DumpFormat::Json => config::dump::json(cfg, &selected),
    };
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("hastmonctl: unable to write the dump: {e}");
            exit::OSERR
        }
    }
}

/// Sends one control request; on failure prints 0.3.4's message.
fn request(
    cfg: &Config,
    cmd: ControlCmd,
    role: Option<Role>,
    names: Vec<String>,
    extended: bool,
) -> Result<crate::proto::NvList, i32> {
    let req = ControlRequest {
        cmd,
        role,
        resources: names,
        auth: None,
        extended,
    };
    // A role change that lets a primary go is answered once its `stop`
    // has run, which the daemon bounds by `hook_timeout` and SIGKILL 5 s
    // later; wait for that, one `stop` per resource at most.
    let timeout = match cmd {
        ControlCmd::SetRole => {
            let hooks: std::time::Duration = cfg
                .resources
                .iter()
                .map(|r| r.hook_timeout + std::time::Duration::from_secs(5))
                .sum();
            hooks + std::time::Duration::from_secs(30)
        }
        _ => client::REPLY_TIMEOUT,
    };
    let reply =
        client::exchange_within(&cfg.control, &req.to_nv(), timeout).map_err(|(code, msg)| {
            eprintln!("[ERROR] {msg}");
            code
        })?;
    match reply.get_i16("error") {
        Some(n) if n != 0 => {
            eprintln!("[ERROR] Error {n} received from hastmon.");
            Err(exit::SOFTWARE)
        }
        _ => Ok(reply),
    }
}

/// `hastmonctl status`: returns the exit code (see `health`).
pub fn status(cfg: &Config, mut names: Vec<String>, format: StatusFormat) -> i32 {
    if names.is_empty() {
        names.push("all".into());
    }
    let json = matches!(format, StatusFormat::Json { .. });
    let nv = match request(cfg, ControlCmd::Status, None, names, json) {
        Ok(nv) => nv,
        Err(code) => return code,
    };
    let reply = StatusReply::from_nv(&nv);
    let out = match format {
        StatusFormat::Text => status::status_text(&reply).0,
        StatusFormat::Json { pretty } => json::status_json(&nv, &reply, pretty),
    };
    print!("{out}");
    health::exit_code(&reply)
}

/// `hastmonctl role`: returns the exit code.
pub fn role(cfg: &Config, role: Role, names: Vec<String>, debug: u8) -> i32 {
    match request(cfg, ControlCmd::SetRole, Some(role), names, false) {
        Ok(reply) => {
            let (warnings, info, code) =
                status::role_report(&RoleReply::from_nv(&reply), role, debug);
            warnings.iter().for_each(|w| eprintln!("{w}"));
            info.iter().for_each(|i| println!("{i}"));
            code
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::StatusFormat;

    #[test]
    fn libxo_styles_json_and_text_are_understood_and_others_refused() {
        let json = |pretty| Ok(StatusFormat::Json { pretty });
        assert_eq!(StatusFormat::from_libxo("json"), json(false));
        assert_eq!(StatusFormat::from_libxo("json,pretty"), json(true));
        assert_eq!(StatusFormat::from_libxo("pretty,json"), json(true));
        assert_eq!(StatusFormat::from_libxo("text"), Ok(StatusFormat::Text));
        for bad in ["xml", "html", "json,text", "json,warn", ""] {
            assert!(StatusFormat::from_libxo(bad).is_err(), "{bad}");
        }
    }
}
