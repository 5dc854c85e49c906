//! The worker sandbox on Linux, checked from outside on real workers of
//! every role: seccomp mode 2, no new privileges, the unprivileged user,
//! and (through the test build's probe, SIGUSR1) that opening a file,
//! connecting and exec'ing all fail with EPERM while the cluster goes on.

mod common;

use std::time::Duration;

use common::cluster::{ABW, cluster, field, remote_line, settled};
use common::{Node, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};

fn worker(n: &Node) -> i32 {
    n.status_field("www", "workerpid").unwrap().parse().unwrap()
}

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

#[test]
fn workers_of_every_role_are_sandboxed_and_forbidden_calls_fail_with_eperm() {
    let nodes = cluster("sandbox", ABW, "");
    settled(&nodes);
    let expected_uid = if Uid::effective().is_root() {
        User::from_name("nobody").unwrap().unwrap().uid.as_raw()
    } else {
        Uid::effective().as_raw()
    };
    for n in &nodes {
        let pid = worker(n);
        assert_eq!(proc_status(pid, "Seccomp"), "2", "{}", n.name);
        assert_eq!(proc_status(pid, "NoNewPrivs"), "1", "{}", n.name);
        let uids: Vec<u32> = proc_status(pid, "Uid")
            .split_whitespace()
            .map(|u| u.parse().unwrap())
            .collect();
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
        for call in ["open", "connect", "exec", "fork"] {
            assert!(
                log.contains(&format!("Sandbox probe: {call}: EPERM.")),
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
        err.contains("User no-such-user-here does not exist."),
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
