//! hastmon: the cluster failover monitor daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use hastmon::config::defaults;
use hastmon::exit;

const USAGE: &str = "usage: hastmon [-dFhSt] [-c config] [-P pidfile] [-n node] [-u user]\n";

#[derive(Parser, Debug)]
#[command(
    name = "hastmon",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Cli {
    /// Configuration file.
    #[arg(short = 'c', value_name = "config")]
    config: Option<PathBuf>,
    /// Raise the debug level (repeatable).
    #[arg(short = 'd', action = ArgAction::Count)]
    debug: u8,
    /// Stay in the foreground and log to stderr as well.
    #[arg(short = 'F')]
    foreground: bool,
    /// Print the usage and exit 64.
    #[arg(short = 'h')]
    usage: bool,
    /// Check the configuration and exit: 0 if valid, 78 (or 72) if not.
    #[arg(short = 't')]
    test: bool,
    /// Pidfile.
    #[arg(short = 'P', value_name = "pidfile")]
    pidfile: Option<PathBuf>,
    /// This node's name in the configuration (default: the host name).
    #[arg(short = 'n', value_name = "node")]
    node: Option<String>,
    /// The unprivileged user workers run as (default: hastmon).
    #[arg(short = 'u', value_name = "user")]
    user: Option<String>,
    /// Let workers run where the sandbox is unavailable.
    #[arg(short = 'S')]
    unsandboxed: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad usage");
            eprintln!("hastmon: {}", first.trim_start_matches("error: "));
            eprint!("{USAGE}");
            return ExitCode::from(exit::USAGE as u8);
        }
    };
    if cli.usage {
        eprint!("{USAGE}");
        return ExitCode::from(exit::USAGE as u8);
    }
    let path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(defaults::CONFIG));
    let node = cli.node.clone();
    let cfg = match hastmon::ctl::load(&path, cli.node.as_deref()) {
        Ok(cfg) => cfg,
        Err((code, msg)) => {
            eprintln!("hastmon: {msg}");
            return ExitCode::from(code as u8);
        }
    };
    if cli.test {
        return ExitCode::SUCCESS;
    }
    let code = hastmon::daemon::run(hastmon::daemon::Options {
        config_path: path,
        config: cfg,
        foreground: cli.foreground,
        debug: cli.debug,
        pidfile: cli
            .pidfile
            .unwrap_or_else(|| PathBuf::from(defaults::PIDFILE)),
        node,
        user: cli.user,
        sandbox_required: !cli.unsandboxed,
    });
    ExitCode::from(code as u8)
}
