//! The command lines: exit codes (sysexits), usage text, `hastmon -t`,
//! and the original's option order.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hastmon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hastmon"))
}

fn hastmonctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hastmonctl"))
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name)
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().expect("exited by signal"),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hastmon-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_mode_is_silent_on_success() {
    for f in ["three-node.conf", "three-node.toml"] {
        let (code, out, err) = run(hastmon().args(["-t", "-n", "nodeA", "-c"]).arg(sample(f)));
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "{f}");
    }
}

#[test]
fn check_mode_reports_one_located_line_and_ex_config() {
    let p = temp_file(
        "bad.conf",
        "resource r {\n  exec /x\n  on me { remote none priority x }\n}\n",
    );
    let (code, out, err) = run(hastmon().args(["-t", "-n", "me", "-c"]).arg(&p));
    assert_eq!(code, 78);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "hastmon: {}:3:32: 'priority' needs a whole number",
            p.display()
        )),
        "{err}"
    );
}

#[test]
fn unreadable_config_is_ex_osfile() {
    let (code, _, err) = run(hastmon().args(["-t", "-c", "/nonexistent/hastmon.conf"]));
    assert_eq!(code, 72);
    assert!(err.contains("/nonexistent/hastmon.conf: unable to open configuration file: No such file or directory"), "{err}");
    let (code, _, _) = run(hastmonctl().args(["dump", "-c", "/nonexistent/x"]));
    assert_eq!(code, 72);
}

#[test]
fn usage_errors_exit_64() {
    let usage_first = "       hastmonctl role [-d] [-c config] [-n node] <init | primary | secondary | watchdog> all | name ...";
    for args in [
        &[][..],
        &["-h"],
        &["create", "x"],
        &["role"],
        &["role", "primary"],
        &["role", "boss", "all"],
        &["dump", "--nope"],
        &["status", "-h"],
        &["status", "--libxo", "xml"],
        &["status", "--libxo=json,html"],
        &["status", "--libxo"],
        &["role", "-j", "init", "all"],
    ] {
        let (code, out, err) = run(hastmonctl().args(args));
        assert_eq!(code, 64, "{args:?}: {err}");
        assert_eq!(out, "");
        assert!(err.lines().any(|l| l == usage_first), "{args:?}: {err}");
    }
    for args in [&["-h"][..], &["-x"], &["extra"], &["-c"]] {
        let (code, _, err) = run(hastmon().args(args));
        assert_eq!(code, 64, "{args:?}");
        assert!(
            err.ends_with("usage: hastmon [-dFhSt] [-c config] [-P pidfile] [-n node] [-u user]\n"),
            "{err}"
        );
    }
}

#[test]
fn dump_accepts_options_after_the_subcommand_and_before_it() {
    let conf = sample("three-node.conf");
    let (c1, out1, _) = run(hastmonctl()
        .args(["dump", "-c"])
        .arg(&conf)
        .args(["-n", "nodeB", "r1"]));
    let (c2, out2, _) = run(hastmonctl()
        .args(["-n", "nodeB", "-c"])
        .arg(&conf)
        .args(["dump", "all"]));
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(out1, out2);
    assert!(
        out1.contains("\ton nodeB {\n") && out1.contains("\t\tpriority 2\n"),
        "{out1}"
    );
}

#[test]
fn dump_of_an_unknown_resource_exits_1() {
    let conf = sample("three-node.conf");
    let (code, out, err) = run(hastmonctl()
        .args(["dump", "-n", "nodeA", "-c"])
        .arg(&conf)
        .arg("nosuch"));
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("resource nosuch is not configured"), "{err}");
}

#[test]
fn dump_formats_agree() {
    let conf = sample("keyed.conf");
    let (code, json, _) = run(hastmonctl()
        .args(["dump", "--json", "-n", "nodeC", "-c"])
        .arg(&conf));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["resources"][1]["name"], "db");
    assert_eq!(v["resources"][1]["role_on_start"], "watchdog");
    assert_eq!(v["resources"][1]["heartbeat_interval"], 1);
    let (code, toml, _) = run(hastmonctl()
        .args(["dump", "--toml", "-n", "nodeC", "-c"])
        .arg(&conf));
    assert_eq!(code, 0);
    let t = temp_file("dumped.toml", &toml);
    let (code, again, _) = run(hastmonctl()
        .args(["dump", "--json", "-n", "nodeC", "-c"])
        .arg(&t));
    assert_eq!(code, 0);
    assert_eq!(again, json);
    let (code, _, _) = run(hastmonctl()
        .args(["dump", "--json", "--toml", "-c"])
        .arg(&conf));
    assert_eq!(code, 64);
}

/// A node that takes part in no resource has nothing to run: the daemon
/// refuses the file with 0.3.4's message, in check mode and when it
/// starts.
#[test]
fn a_node_in_no_resource_is_a_configuration_error() {
    let p = temp_file(
        "idle.conf",
        "on idle { control uds:///tmp/hastmon-cli-idle.sock }\nresource r0 {\n exec /x\n on other { remote none }\n}\n",
    );
    let want = "No resource r0 configuration for this node (acceptable node names: idle).";
    let (code, out, err) = run(hastmon().args(["-t", "-n", "idle", "-c"]).arg(&p));
    assert_eq!((code, out.as_str()), (78, ""));
    assert!(err.contains(want), "{err}");
    let (code, _, err) = run(hastmon()
        .args(["-F", "-n", "idle", "-P", "/tmp/hastmon-cli-idle.pid", "-c"])
        .arg(&p));
    assert_eq!(code, 78, "{err}");
    assert!(err.contains(want), "{err}");
}
