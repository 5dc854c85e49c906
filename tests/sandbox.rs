//! The worker sandbox, checked on real workers of every role while the
//! cluster goes on. Through the test build's probe (SIGUSR1) each worker
//! tries what its sandbox must refuse, and the log must show exactly what
//! hastmon(8) says for the platform:
//!
//! | call | Linux (seccomp) | FreeBSD (capability mode) |
//! |---|---|---|
//! | open, connect, bind, exec | EPERM | ECAPMODE |
//! | fork | EPERM | allowed |
//!
//! On Linux /proc also shows seccomp mode 2, no new privileges and the
//! user from outside; on FreeBSD the worker reports cap_getmode(2) itself
//! and ps(1) shows its user.

mod common;

use std::time::Duration;

use common::cluster::{ABW, cluster, field, remote_line, settled};
use common::{Node, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};

fn worker(n: &Node) -> i32 {
    n.status_field("www", "workerpid").unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
fn proc_status(pid: i32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap()
}

/// What the probe must log for each call on this platform.
#[cfg(target_os = "linux")]
const EXPECTED: &[(&str, &str)] = &[
    ("open", "EPERM"),
    ("connect", "EPERM"),
    ("bind", "EPERM"),
    ("exec", "EPERM"),
    ("fork", "EPERM"),
];
#[cfg(target_os = "freebsd")]
const EXPECTED: &[(&str, &str)] = &[
    ("cap_getmode", "1"),
    ("open", "ECAPMODE"),
    ("connect", "ECAPMODE"),
    ("bind", "ECAPMODE"),
    ("exec", "ECAPMODE"),
    ("fork", "allowed"),
];

/// The real, effective and saved uids of `pid`.
#[cfg(target_os = "linux")]
fn uids(pid: i32) -> Vec<u32> {
    assert_eq!(proc_status(pid, "Seccomp"), "2", "worker {pid}");
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1", "worker {pid}");
    proc_status(pid, "Uid")
        .split_whitespace()
        .take(3)
        .map(|u| u.parse().unwrap())
        .collect()
}

#[cfg(target_os = "freebsd")]
fn uids(pid: i32) -> Vec<u32> {
    let out = std::process::Command::new("ps")
        .args(["-o", "ruid=,uid=,svuid=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect()
}

/// The uid workers must run as.
fn worker_uid() -> u32 {
    if !Uid::effective().is_root() {
        return Uid::effective().as_raw();
    }
    let user = User::from_name(common::WORKER_USER).unwrap().unwrap();
    user.uid.as_raw()
}

#[test]
fn workers_of_every_role_are_sandboxed_and_forbidden_calls_fail() {
    let nodes = cluster("sandbox", ABW, "");
    settled(&nodes);
    let expected_uid = worker_uid();
    for n in &nodes {
        let pid = worker(n);
        let uids = uids(pid);
        assert_eq!(uids.len(), 3, "{}: {uids:?}", n.name);
        assert!(
            uids.iter().all(|&u| u == expected_uid),
            "{}: {uids:?}",
            n.name
        );
        kill(Pid::from_raw(pid), Signal::SIGUSR1).unwrap();
    }
    for n in &nodes {
        let log = wait_for(10, "the probe's report", || {
            let log = n.log();
            log.contains("Sandbox probe: fork:").then_some(log)
        });
        for (call, result) in EXPECTED {
            assert!(
                log.contains(&format!("Sandbox probe: {call}: {result}.")),
                "{}: {call}\n{log}",
                n.name
            );
        }
    }
    // The same workers go on: heartbeats, polls and status checks.
    let before: Vec<i32> = nodes.iter().map(worker).collect();
    let hooks = nodes[0].hooks().len();
    std::thread::sleep(Duration::from_secs(1));
    settled(&nodes);
    assert_eq!(nodes.iter().map(worker).collect::<Vec<_>>(), before);
    assert!(nodes[0].hooks().len() > hooks);
    assert!(remote_line(&nodes[1], "127.0.0.1").ends_with("(connected)"));
    assert_eq!(field(&nodes[0], "state"), "run");
}

#[test]
fn an_unknown_worker_user_stops_the_daemon_with_ex_nouser() {
    if !Uid::effective().is_root() {
        return;
    }
    let node = Node::new(
        "nouser",
        "alpha",
        "resource www {\n exec /bin/true\n on alpha { remote none }\n}\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hastmon"))
        .args(["-F", "-n", "alpha", "-u", "no-such-user-here", "-c"])
        .arg(node.dir.join("hastmon.conf"))
        .arg("-P")
        .arg(node.dir.join("pid"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(67));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("User no-such-user-here does not exist: create it, or name another with -u."),
        "{err}"
    );
    assert!(!node.dir.join("ctl").exists());
}

/// A standalone primary whose worker cannot enter the sandbox: started
/// with `args`, the daemon's log once the outcome shows.
fn without_sandbox(tag: &str, args: &[&str], until: &str) -> (Node, String) {
    let mut node = Node::new(
        tag,
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    node.start_with(args, &[("HASTMON_TEST_NO_SANDBOX", "1")]);
    let log = wait_for(10, until, || {
        let log = node.log();
        log.contains(until).then_some(log)
    });
    (node, log)
}

#[test]
fn a_worker_that_cannot_enter_the_sandbox_refuses_to_run_unless_allowed() {
    let (node, log) = without_sandbox("refuse", &[], "refusing to run");
    assert!(
        log.contains("Unable to enter the sandbox: the sandbox is unavailable"),
        "{log}"
    );
    assert!(log.contains("exitcode=71"), "{log}");
    wait_for(10, "the role to fall back", || {
        (node.status_field("www", "role")? == "init").then_some(())
    });
    assert!(!node.running());

    let (node, log) = without_sandbox("allowed", &["-S"], "Running without a sandbox");
    assert!(log.contains("as -S allows"), "{log}");
    wait_for(10, "the resource to run", || node.running().then_some(()));
}

/// The root directory of process `pid`.
#[cfg(target_os = "linux")]
fn root_of(pid: i32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/root")).unwrap()
}

#[cfg(target_os = "freebsd")]
fn root_of(pid: i32) -> std::path::PathBuf {
    let out = std::process::Command::new("procstat")
        .args(["-f", &pid.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"root")).then(|| f.last().unwrap().into())
        })
        .unwrap_or_else(|| panic!("no root in procstat -f:\n{text}"))
}

#[test]
fn workers_are_chrooted_to_an_empty_directory() {
    if !Uid::effective().is_root() {
        return;
    }
    let mut node = Node::new(
        "chroot",
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    let empty = node.dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    node.start_with(&[], &[("HASTMON_TEST_CHROOT", empty.to_str().unwrap())]);
    wait_for(10, "the resource to run", || node.running().then_some(()));
    let pid = worker(&node);
    assert_eq!(root_of(pid), empty);
    // The main process keeps the real root: it runs the hooks.
    assert_eq!(root_of(node.pid()), std::path::Path::new("/"));
}

#[test]
fn without_u_workers_run_as_hastmon_or_nobody_where_it_does_not_exist() {
    if !Uid::effective().is_root() {
        return;
    }
    let node = Node::new(
        "defaultuser",
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    // Started by hand: Node::start passes -u.
    let log = std::fs::File::create(node.dir.join("daemon.log")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hastmon"))
        .args(["-F", "-n", "alpha", "-c"])
        .arg(node.dir.join("hastmon.conf"))
        .arg("-P")
        .arg(node.dir.join("pid"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for(10, "the resource to run", || node.running().then_some(()));
    let pid = worker(&node);
    let hastmon = User::from_name("hastmon").unwrap();
    let expected = hastmon.clone().map_or_else(
        || User::from_name("nobody").unwrap().unwrap().uid.as_raw(),
        |u| u.uid.as_raw(),
    );
    assert!(uids(pid).iter().all(|&u| u == expected), "{:?}", uids(pid));
    let text = node.log();
    assert_eq!(
        text.contains("User hastmon does not exist; workers run as nobody."),
        hastmon.is_none(),
        "{text}"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    child.wait().unwrap();
}
