//! The example exec programs of etc/hastmon/ run against stand-ins for the
//! FreeBSD commands they call (service, ifconfig, hastctl, zpool, jail,
//! jls, sleep). Each stand-in appends its name and arguments to a log and
//! exits, and maybe prints, as the test's rules say, so the order of the
//! calls and the exit statuses hastmon sees are checked without FreeBSD.
//! Each program is also named in hastmon.conf(5) and in the port's plist.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The commands the examples may call; anything else is not on PATH.
const STANDINS: [&str; 7] = [
    "service", "ifconfig", "hastctl", "zpool", "jail", "jls", "sleep",
];

/// Records "name args" and applies the first rule whose glob matches it:
/// `glob|status|output`. No matching rule: exit 0, print nothing.
const STANDIN: &str = r#"#!/bin/sh
call="${0##*/} $*"
printf '%s\n' "$call" >>"$STANDIN_DIR/log"
status=0
if [ -f "$STANDIN_DIR/rules" ]; then
	while IFS='|' read -r pattern code output; do
		# shellcheck disable=SC2254 # the rule is a glob
		case $call in
		$pattern)
			status=$code
			[ -z "$output" ] || printf '%s\n' "$output"
			break
			;;
		esac
	done <"$STANDIN_DIR/rules"
fi
exit "$status"
"#;

struct Bench {
    dir: PathBuf,
}

impl Bench {
    fn new(name: &str) -> Bench {
        let dir =
            std::env::temp_dir().join(format!("hastmon-examples-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let standin = dir.join("standin");
        std::fs::write(&standin, STANDIN).unwrap();
        set_mode(&standin, 0o755);
        for cmd in STANDINS {
            std::os::unix::fs::symlink(&standin, dir.join("bin").join(cmd)).unwrap();
        }
        Bench { dir }
    }

    /// Runs `script` (a path) with `args` under `rules`; returns its exit
    /// status and the calls the stand-ins saw.
    fn run(&self, script: &Path, args: &[&str], rules: &[&str]) -> (i32, Vec<String>) {
        let log = self.dir.join("log");
        let _ = std::fs::remove_file(&log);
        let mut text = rules.join("\n");
        text.push('\n');
        std::fs::write(self.dir.join("rules"), text).unwrap();
        let out = Command::new(script)
            .args(args)
            .env_clear()
            .env("PATH", self.dir.join("bin"))
            .env("STANDIN_DIR", &self.dir)
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        let code = out.status.code().expect("the program was not killed");
        (code, calls)
    }

    /// A copy of an example with some of its settings (`name=value` lines)
    /// changed, as a user edits the copy they install.
    fn edited(&self, example: &str, settings: &[(&str, &str)]) -> PathBuf {
        let mut text = std::fs::read_to_string(example_path(example)).unwrap();
        for (name, value) in settings {
            let prefix = format!("\n{name}=");
            let start = text
                .find(&prefix)
                .unwrap_or_else(|| panic!("{example}: no {name}="));
            let end = start + 1 + text[start + 1..].find('\n').unwrap();
            text.replace_range(start + 1..end, &format!("{name}={value}"));
        }
        let path = self.dir.join(example);
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o755);
        path
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn example_path(name: &str) -> PathBuf {
    repo("etc/hastmon").join(name)
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo("etc/hastmon"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Runs the example as shipped; asserts the exit status and the calls.
fn check(bench: &Bench, example: &str, args: &[&str], rules: &[&str], code: i32, calls: &[&str]) {
    check_path(bench, &example_path(example), args, rules, code, calls);
}

fn check_path(
    bench: &Bench,
    script: &Path,
    args: &[&str],
    rules: &[&str],
    code: i32,
    calls: &[&str],
) {
    let (got_code, got_calls) = bench.run(script, args, rules);
    assert_eq!(
        (got_code, got_calls),
        (
            code,
            calls.iter().map(|c| c.to_string()).collect::<Vec<_>>()
        ),
        "{} {args:?} with rules {rules:?}",
        script.display()
    );
}

#[test]
fn service_example() {
    let b = Bench::new("service");
    let ex = "service.sh";
    let status = "service nginx onestatus";
    let stopped = "service nginx onestatus|1";
    // start: only when it does not run; a failing onestart fails start.
    check(
        &b,
        ex,
        &["start", "nginx"],
        &[stopped],
        0,
        &[status, "service nginx onestart"],
    );
    check(&b, ex, &["start", "nginx"], &[], 0, &[status]);
    let failing = [stopped, "service nginx onestart|1"];
    check(
        &b,
        ex,
        &["start", "nginx"],
        &failing,
        1,
        &[status, "service nginx onestart"],
    );
    // stop: only when it runs.
    check(
        &b,
        ex,
        &["stop", "nginx"],
        &[],
        0,
        &[status, "service nginx onestop"],
    );
    check(&b, ex, &["stop", "nginx"], &[stopped], 0, &[status]);
    let failing = ["service nginx onestop|1"];
    check(
        &b,
        ex,
        &["stop", "nginx"],
        &failing,
        1,
        &[status, "service nginx onestop"],
    );
    // status: 0 runs, 1 stopped, anything else passed on as unknown.
    check(&b, ex, &["status", "nginx"], &[], 0, &[status]);
    check(&b, ex, &["status", "nginx"], &[stopped], 1, &[status]);
    check(
        &b,
        ex,
        &["status", "nginx"],
        &["service nginx onestatus|3"],
        3,
        &[status],
    );
    // The service is the one named like the resource.
    check(
        &b,
        ex,
        &["status", "www"],
        &["service www onestatus|1"],
        1,
        &["service www onestatus"],
    );
    // Other events touch nothing.
    for args in [
        &["role", "nginx", "init", "primary"][..],
        &["connect", "nginx"],
    ] {
        check(&b, ex, args, &[], 0, &[]);
    }
}

#[test]
fn ipalias_example() {
    let b = Bench::new("ipalias");
    let ex = "ipalias.sh";
    let query = "ifconfig em0 inet";
    let up = "ifconfig em0 inet|0|\tinet 10.0.0.10 netmask 0xffffffff broadcast 10.0.0.10";
    let other = "ifconfig em0 inet|0|\tinet 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255";
    let gone = "ifconfig em0 inet|1|ifconfig: interface em0 does not exist";
    let add = "ifconfig em0 inet 10.0.0.10/32 alias";
    let remove = "ifconfig em0 inet 10.0.0.10 -alias";
    check(&b, ex, &["status", "www"], &[up], 0, &[query]);
    check(&b, ex, &["status", "www"], &[other], 1, &[query]);
    // A failing ifconfig is neither running nor stopped.
    check(&b, ex, &["status", "www"], &[gone], 2, &[query]);
    check(&b, ex, &["start", "www"], &[other], 0, &[query, add]);
    check(&b, ex, &["start", "www"], &[up], 0, &[query]);
    let add_fails = format!("{add}|1");
    check(
        &b,
        ex,
        &["start", "www"],
        &[&add_fails, other],
        1,
        &[query, add],
    );
    check(&b, ex, &["stop", "www"], &[up], 0, &[query, remove]);
    check(&b, ex, &["stop", "www"], &[other], 0, &[query]);
    check(&b, ex, &["stop", "www"], &[gone], 1, &[query]);
    let remove_fails = format!("{remove}|1");
    check(
        &b,
        ex,
        &["stop", "www"],
        &[&remove_fails, up],
        1,
        &[query, remove],
    );
    check(&b, ex, &["complain", "www"], &[], 0, &[]);

    // The CARP form adds the address with its vhid; removal is the same.
    let carp = b.edited(ex, &[("vhid", "3"), ("pass", "s3cret")]);
    let add = "ifconfig em0 inet vhid 3 pass s3cret alias 10.0.0.10/32";
    check_path(&b, &carp, &["start", "www"], &[other], 0, &[query, add]);
    check_path(&b, &carp, &["stop", "www"], &[up], 0, &[query, remove]);
}

#[test]
fn hast_zfs_example() {
    let b = Bench::new("hast-zfs");
    let ex = "hast-zfs.sh";
    let list = "zpool list -H -o name tank";
    let not_imported = "zpool list -H -o name tank|1";
    let primary = "hastctl role primary tank";
    let secondary = "hastctl role secondary tank";
    let import = "zpool import -f tank";
    check(
        &b,
        ex,
        &["start", "tank"],
        &[not_imported],
        0,
        &[list, primary, import],
    );
    check(&b, ex, &["start", "tank"], &[], 0, &[list]);
    // Without the HAST role the pool is not touched.
    let rules = [not_imported, "hastctl role primary*|1"];
    check(&b, ex, &["start", "tank"], &rules, 1, &[list, primary]);
    // The provider may appear late: ten tries, a second apart.
    let rules = [not_imported, "zpool import*|1"];
    let mut calls = vec![list, primary, import];
    for _ in 1..10 {
        calls.extend(["sleep 1", import]);
    }
    check(&b, ex, &["start", "tank"], &rules, 1, &calls);

    check(
        &b,
        ex,
        &["stop", "tank"],
        &[],
        0,
        &[list, "zpool export tank", secondary],
    );
    // An export that fails keeps the role: the pool is still in use.
    let rules = ["zpool export*|1"];
    check(
        &b,
        ex,
        &["stop", "tank"],
        &rules,
        1,
        &[list, "zpool export tank"],
    );
    // Not imported (a start that failed half way): the role still goes.
    check(
        &b,
        ex,
        &["stop", "tank"],
        &[not_imported],
        0,
        &[list, secondary],
    );
    let rules = [not_imported, "hastctl*|1"];
    check(&b, ex, &["stop", "tank"], &rules, 1, &[list, secondary]);

    check(&b, ex, &["status", "tank"], &[], 0, &[list]);
    check(&b, ex, &["status", "tank"], &[not_imported], 1, &[list]);

    // A node that becomes secondary takes the HAST secondary role.
    check(
        &b,
        ex,
        &["role", "tank", "init", "secondary"],
        &[],
        0,
        &[secondary],
    );
    let rules = ["hastctl*|1"];
    check(
        &b,
        ex,
        &["role", "tank", "primary", "secondary"],
        &rules,
        1,
        &[secondary],
    );
    check(&b, ex, &["role", "tank", "init", "primary"], &[], 0, &[]);
    check(&b, ex, &["role", "tank", "init", "watchdog"], &[], 0, &[]);
    check(&b, ex, &["disconnect", "tank"], &[], 0, &[]);

    // The HAST resource and the pool may have names of their own.
    let named = b.edited(ex, &[("hast", "disk0"), ("pool", "data")]);
    let calls = [
        "zpool list -H -o name data",
        "hastctl role primary disk0",
        "zpool import -f data",
    ];
    check_path(
        &b,
        &named,
        &["start", "tank"],
        &["zpool list*|1"],
        0,
        &calls,
    );
}

#[test]
fn jail_example() {
    let b = Bench::new("jail");
    let ex = "jail.sh";
    let query = "jls -j www jid";
    let absent = "jls -j www jid|1|jls: jail \"www\" not found";
    check(
        &b,
        ex,
        &["start", "www"],
        &[absent],
        0,
        &[query, "jail -c www"],
    );
    check(&b, ex, &["start", "www"], &[], 0, &[query]);
    let rules = [absent, "jail -c*|1"];
    check(
        &b,
        ex,
        &["start", "www"],
        &rules,
        1,
        &[query, "jail -c www"],
    );
    check(&b, ex, &["stop", "www"], &[], 0, &[query, "jail -r www"]);
    check(&b, ex, &["stop", "www"], &[absent], 0, &[query]);
    let rules = ["jail -r*|1"];
    check(&b, ex, &["stop", "www"], &rules, 1, &[query, "jail -r www"]);
    check(&b, ex, &["status", "www"], &[], 0, &[query]);
    check(&b, ex, &["status", "www"], &[absent], 1, &[query]);
    check(
        &b,
        ex,
        &["role", "www", "secondary", "primary"],
        &[],
        0,
        &[],
    );
}

#[test]
fn every_example_is_tested_documented_and_packaged() {
    let names = examples();
    assert_eq!(
        names,
        ["hast-zfs.sh", "ipalias.sh", "jail.sh", "service.sh"],
        "a new example needs its own test here"
    );
    let page = std::fs::read_to_string(repo("man/hastmon.conf.5")).unwrap();
    let plist = std::fs::read_to_string(repo("port/pkg-plist")).unwrap();
    for name in &names {
        assert!(
            page.contains(&format!(".It Pa {name}")),
            "hastmon.conf.5 does not describe {name}"
        );
        let line = format!("%%PORTEXAMPLES%%%%EXAMPLESDIR%%/{name}");
        assert!(
            plist.lines().any(|l| l == line),
            "port/pkg-plist lacks {line}"
        );
        let text = std::fs::read_to_string(example_path(name)).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{name}: not a sh script");
    }
}
