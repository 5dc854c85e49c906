//! hastmonctl: set roles, show status and dump the resolved configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};
use hastmon::config::defaults;
use hastmon::ctl::{self, DumpFormat, StatusFormat};
use hastmon::exit;
use hastmon::types::Role;

const USAGE: &str = "       hastmonctl role [-d] [-c config] [-n node] <init | primary | secondary | watchdog> all | name ...
       hastmonctl status [-d] [-c config] [-n node] [-j | --libxo json] [all | name ...]
       hastmonctl dump [-d] [-c config] [-n node] [--toml | --json] [all | name ...]
";

#[derive(Parser, Debug)]
#[command(
    name = "hastmonctl",
    disable_help_flag = true,
    disable_version_flag = true
)]
#[command(disable_help_subcommand = true)]
struct Cli {
    /// Configuration file.
    #[arg(short = 'c', global = true, value_name = "config")]
    config: Option<PathBuf>,
    /// Raise the debug level (repeatable).
    #[arg(short = 'd', global = true, action = ArgAction::Count)]
    debug: u8,
    /// This node's name in the configuration (default: the host name).
    #[arg(short = 'n', global = true, value_name = "node")]
    node: Option<String>,
    /// Print the usage and exit 64, as hastmonctl always has.
    #[arg(short = 'h', global = true, action = ArgAction::SetTrue)]
    usage: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Change the role of resources.
    #[command(disable_help_flag = true)]
    Role {
        #[arg(value_parser = parse_role)]
        role: Role,
        #[arg(required = true, value_name = "all | name")]
        names: Vec<String>,
    },
    /// Show the status of resources.
    #[command(disable_help_flag = true)]
    Status {
        /// JSON instead of text.
        #[arg(short = 'j')]
        json: bool,
        /// libxo's spelling of the output form (`json`, `json,pretty`).
        #[arg(long, value_name = "style", value_parser = StatusFormat::from_libxo)]
        libxo: Option<StatusFormat>,
        names: Vec<String>,
    },
    /// Print the settings this node resolves from the configuration.
    #[command(disable_help_flag = true)]
    Dump {
        #[arg(long, conflicts_with = "json")]
        toml: bool,
        #[arg(long)]
        json: bool,
        names: Vec<String>,
    },
}

fn parse_role(word: &str) -> Result<Role, String> {
    Role::from_word(word).ok_or_else(|| format!("unknown role '{word}'"))
}

fn usage(reason: Option<&str>) -> ExitCode {
    if let Some(r) = reason {
        eprintln!("hastmonctl: {r}");
    }
    eprint!("{USAGE}");
    ExitCode::from(exit::USAGE as u8)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad usage");
            return usage(Some(first.trim_start_matches("error: ")));
        }
    };
    let Some(cmd) = cli.cmd else {
        return usage(None);
    };
    if cli.usage {
        return usage(None);
    }
    let path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(defaults::CONFIG));
    let cfg = match ctl::load(&path, cli.node.as_deref()) {
        Ok(cfg) => cfg,
        Err((code, msg)) => {
            eprintln!("hastmonctl: {msg}");
            return ExitCode::from(code as u8);
        }
    };
    let code = match cmd {
        Cmd::Dump { toml, json, names } => {
            let format = if json {
                DumpFormat::Json
            } else if toml {
                DumpFormat::Toml
            } else {
                DumpFormat::Conf
            };
            ctl::dump(&cfg, &names, format, &mut std::io::stdout().lock())
        }
        Cmd::Role { role, names } => ctl::role(&cfg, role, names, cli.debug),
        Cmd::Status { json, libxo, names } => {
            let format = match (libxo, json) {
                (Some(f @ StatusFormat::Json { .. }), _) => f,
                (_, true) => StatusFormat::Json { pretty: false },
                (_, false) => StatusFormat::Text,
            };
            ctl::status(&cfg, names, format)
        }
    };
    ExitCode::from(code as u8)
}
