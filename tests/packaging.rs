//! What the package installs stays true to the programs: the sample
//! configuration is accepted on each of its nodes, and the manual pages
//! name every option and keyword with the defaults the code uses.

use std::path::{Path, PathBuf};
use std::process::Command;

use hastmon::config::defaults;
use hastmon::config::document::{KEYWORDS, format_seconds};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn page(name: &str) -> String {
    std::fs::read_to_string(repo("man").join(name)).unwrap()
}

#[test]
fn sample_config_is_accepted_on_every_node() {
    for node in ["alpha", "beta", "watcher"] {
        let out = Command::new(env!("CARGO_BIN_EXE_hastmon"))
            .args(["-t", "-n", node, "-c"])
            .arg(repo("etc/hastmon.conf.sample"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{node}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{node}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{node}");
    }
}

/// The `.Bd -literal` blocks of a page's EXAMPLES section.
fn example_blocks(page: &str) -> Vec<String> {
    let examples = page
        .split("\n.Sh ")
        .find(|s| s.starts_with("EXAMPLES"))
        .expect("an EXAMPLES section");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in examples.lines() {
        match (&mut current, line) {
            (None, l) if l.starts_with(".Bd -literal") => current = Some(String::new()),
            (Some(_), ".Ed") => blocks.extend(current.take()),
            (Some(text), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn config_page_examples_are_accepted() {
    let blocks = example_blocks(&page("hastmon.conf.5"));
    assert_eq!(blocks.len(), 3, "the three-node example, its TOML, tuning");
    let dir = std::env::temp_dir().join(format!("hastmon-packaging-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = ["example.conf", "example.toml", "tuning.conf"];
    for (block, file) in blocks.iter().zip(files) {
        assert!(!block.contains('\\'), "{file}: roff escapes in an example");
        let path = dir.join(file);
        std::fs::write(&path, block).unwrap();
        for node in ["alpha", "beta", "watcher"] {
            let out = Command::new(env!("CARGO_BIN_EXE_hastmon"))
                .args(["-t", "-n", node, "-c"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{file} on {node}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let conf = std::fs::read_to_string(dir.join("example.conf")).unwrap();
    let toml = std::fs::read_to_string(dir.join("example.toml")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // The TOML example says it is "the same": both must resolve alike.
    let parse = |text: &str, syntax| {
        hastmon::config::parse_bytes(
            text.as_bytes(),
            syntax,
            &hastmon::config::NodeNames::exact("alpha"),
        )
        .unwrap()
    };
    assert_eq!(
        parse(&conf, hastmon::config::Syntax::Conf),
        parse(&toml, hastmon::config::Syntax::Toml)
    );
}

/// The text of the list item `.It Ic keyword ...`, up to the next keyword's.
fn keyword_item<'a>(page: &'a str, keyword: &str) -> Option<&'a str> {
    let mut start = None;
    let mut offset = 0;
    for line in page.split_inclusive('\n') {
        let is_item = line.starts_with(".It Ic ");
        if let Some(s) = start {
            if is_item {
                return Some(&page[s..offset]);
            }
        } else if is_item && line.split_whitespace().nth(2) == Some(keyword) {
            start = Some(offset);
        }
        offset += line.len();
    }
    start.map(|s| &page[s..])
}

/// `text` up to the end of its sentence: a full stop before a blank or a
/// newline (the dots inside `0.0.0.0` do not end it).
fn sentence(text: &str) -> &str {
    let end = [". ", ".\n"]
        .iter()
        .filter_map(|stop| text.find(stop))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

/// `value` occurs in `text` as a whole word (not as the start of `50`).
fn has_word(text: &str, value: &str) -> bool {
    text.match_indices(value).any(|(i, _)| {
        let after = text[i + value.len()..].chars().next();
        let before = text[..i].chars().next_back();
        !after.is_some_and(|c| c.is_ascii_alphanumeric())
            && !before.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[test]
fn config_page_documents_every_keyword() {
    let conf5 = page("hastmon.conf.5");
    for kw in KEYWORDS {
        assert!(
            keyword_item(&conf5, kw).is_some(),
            "hastmon.conf.5 has no '.It Ic {kw}' item"
        );
    }
}

#[test]
fn config_page_states_the_code_defaults() {
    let conf5 = page("hastmon.conf.5");
    let expected = [
        ("control", defaults::control().to_string()),
        ("listen", defaults::listen().to_string()),
        ("timeout", format_seconds(defaults::TIMEOUT)),
        ("heartbeat_interval", format_seconds(defaults::HEARTBEAT)),
        (
            "complaint_interval",
            format_seconds(defaults::COMPLAINT_INTERVAL),
        ),
        ("hook_timeout", format_seconds(defaults::HOOK_TIMEOUT)),
        ("attempts", defaults::ATTEMPTS.to_string()),
        ("complaint_count", defaults::COMPLAINT_COUNT.to_string()),
        ("priority", defaults::PRIORITY.to_string()),
        ("role_on_start", "init".to_string()),
    ];
    for (kw, value) in expected {
        let item = keyword_item(&conf5, kw).unwrap();
        let default = item
            .split_once("default is")
            .map(|(_, rest)| sentence(rest))
            .unwrap_or_else(|| panic!("'{kw}' item names no default"));
        assert!(
            has_word(default, &value),
            "'{kw}': the page's default reads '{default}', the code's is {value}"
        );
    }
    let daemon8 = page("hastmon.8");
    for path in [defaults::CONFIG, defaults::PIDFILE] {
        assert!(daemon8.contains(path), "hastmon.8 does not name {path}");
    }
}

/// The options a usage text offers: `-d` from `[-dFht]`, `-c` from
/// `[-c config]`, `--toml` from `[--toml | --json]`.
fn usage_options(usage: &str) -> Vec<String> {
    let mut opts = Vec::new();
    for word in usage.split(|c: char| c.is_whitespace() || "[]|<>".contains(c)) {
        if let Some(long) = word.strip_prefix("--") {
            opts.push(format!("-{long}"));
        } else if let Some(flags) = word.strip_prefix('-') {
            opts.extend(flags.chars().map(String::from));
        }
    }
    opts.sort();
    opts.dedup();
    opts
}

/// The options a page describes: its `.It Fl x` items.
fn page_options(page: &str) -> Vec<String> {
    let mut opts: Vec<String> = page
        .lines()
        .filter_map(|l| l.strip_prefix(".It Fl "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(String::from)
        .collect();
    opts.sort();
    opts.dedup();
    opts
}

fn usage_of(bin: &str) -> String {
    let out = Command::new(bin).arg("-h").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn pages_describe_exactly_the_options_of_the_programs() {
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_hastmon"), "hastmon.8"),
        (env!("CARGO_BIN_EXE_hastmonctl"), "hastmonctl.8"),
    ] {
        assert_eq!(
            page_options(&page(name)),
            usage_options(&usage_of(bin)),
            "{name} against {bin} -h"
        );
    }
}

/// rc.d/hastmon under a stand-in for rc.subr that starts as
/// run_rc_command does: rc.conf, start_precmd, then `eval` of
/// "$command $rc_flags $command_args" (rc.subr builds and evals that line).
/// The program it runs records its arguments, one `[...]` each.
fn rc_start(rc_conf: &str) -> String {
    let dir = std::env::temp_dir().join(format!("hastmon-rc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let record = write(
        "record",
        "#!/bin/sh\nfor a; do printf '[%s]' \"$a\"; done >>\"$LOG\"\necho >>\"$LOG\"\n",
    );
    let rc_conf = write("rc.conf", rc_conf);
    let subr = write(
        "rc.subr",
        &format!(
            "load_rc_config() {{ . '{}'; }}\n\
             warn() {{ echo \"warning: $*\" >&2; }}\n\
             run_rc_command() {{\n\
             \tcommand='{}'\n\
             \teval rc_flags=\\$${{name}}_flags\n\
             \teval \"$start_precmd\" || return 1\n\
             \teval \"$command $rc_flags $command_args\"\n\
             }}\n",
            rc_conf.display(),
            record.display()
        ),
    );
    let script = std::fs::read_to_string(repo("rc.d/hastmon")).unwrap();
    assert!(script.contains("\n. /etc/rc.subr\n"));
    let script = script.replace("\n. /etc/rc.subr\n", &format!("\n. '{}'\n", subr.display()));
    let script = write("hastmon", &script);
    let log = dir.join("log");
    let out = Command::new("sh")
        .arg(&script)
        .arg("start")
        .env("LOG", &log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    calls
}

#[test]
fn rc_script_passes_rc_conf_values_as_single_words() {
    assert_eq!(
        rc_start(""),
        "[-t][-c][/usr/local/etc/hastmon.conf]\n\
         [-c][/usr/local/etc/hastmon.conf][-P][/var/run/hastmon.pid]\n"
    );
    // Spaces, quotes and dollars reach hastmon as they were written.
    let conf = r#"/etc/my cluster/it's "the" $HOME.conf"#;
    let rc_conf = format!(
        "hastmon_config='{}'\nhastmon_node='node b'\nhastmon_flags='-d -S'\n",
        conf.replace('\'', r"'\''")
    );
    assert_eq!(
        rc_start(&rc_conf),
        format!(
            "[-t][-c][{conf}][-n][node b]\n\
             [-d][-S][-c][{conf}][-P][/var/run/hastmon.pid][-n][node b]\n"
        )
    );
}
