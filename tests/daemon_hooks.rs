//! A single node with real processes: the primary worker, the exec hooks
//! in the order they run, their time limits and output, and shutdown.

mod common;

use common::{Node, wait_for};
use nix::sys::signal::Signal;

fn standalone(tag: &str, extra: &str) -> Node {
    Node::new(
        tag,
        "alpha",
        &format!(
            "resource www {{\n exec {{hook}}\n heartbeat_interval 0.2\n {extra}\n on alpha {{ remote none role_on_start primary }}\n}}\n"
        ),
    )
}

fn worker_pid(node: &Node) -> i32 {
    wait_for(10, "a worker", || {
        node.status_field("www", "workerpid")?.parse().ok()
    })
}

#[test]
fn primary_checks_starts_keeps_checking_and_stops_on_role_init() {
    let mut node = standalone("cycle", "");
    node.start();
    let hooks = node.wait_hooks(5);
    assert_eq!(
        hooks[..5],
        [
            "role www init primary",
            "status www",
            "start www",
            "status www",
            "status www"
        ]
    );
    assert!(node.running());
    wait_for(10, "state run", || {
        (node.status_field("www", "state")? == "run").then_some(())
    });
    let status = node.status("www");
    let pid = worker_pid(&node);
    assert_eq!(
        status,
        format!(
            "www:\n  role: primary\n  workerpid: {pid}\n  exec: {}/hook.sh\n  remote:\n    none (disconnected)\n  state: run\n  attempts: 0 from 5\n  complaints: 0 for last 60 sec (threshold 3)\n  heartbeat: 1 sec\n\n",
            node.dir.display()
        )
    );

    let (code, _, err) = node.ctl(&["role", "init", "www"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let hooks = wait_for(10, "stop and the role hook", || {
        let h = node.hooks();
        (h.last()? == "role www primary init").then_some(h)
    });
    // The worker's `stop` runs before the role hook, and nothing after.
    assert_eq!(hooks[hooks.len() - 2], "stop www");
    assert!(!node.running());
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(node.hooks().len(), hooks.len(), "hooks ran after role init");
    assert!(
        node.status("www")
            .starts_with("www:\n  role: init\n  exec: ")
    );
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err());
}

#[test]
fn failed_starts_use_up_attempts_then_the_resource_is_stopped_and_released() {
    let mut node = standalone("attempts", "attempts 2");
    node.touch("start-fails");
    node.start();
    wait_for(20, "the role to fall back to init", || {
        (node.status_field("www", "role")? == "init").then_some(())
    });
    // `stop` was asked for before the worker exited; it may still run.
    let hooks = node.wait_hooks(8);
    assert_eq!(
        hooks,
        [
            "role www init primary",
            "status www",
            "start www",
            "status www",
            "start www",
            "status www",
            "stop www",
            // Automatic role changes run the role hook too (Q19).
            "role www primary init"
        ]
    );
    let log = node.log();
    assert!(
        log.contains("[www] (primary) Unable to start service after 2 attempts."),
        "{log}"
    );
    assert!(
        log.contains(
            "[www] Worker process exited (exit code 69); changing resource role from primary to init."
        ),
        "{log}"
    );
    assert!(log.contains("Hook failed (pid="), "{log}");
}

#[test]
fn q04_a_hook_past_its_time_limit_is_killed_with_its_process_group_and_reads_unknown() {
    let mut node = standalone("timeout", "hook_timeout 0.5");
    node.touch("status-sleeps");
    node.start();
    let pids = wait_for(10, "the status hook's pids", || {
        std::fs::read_to_string(node.dir.join("status.pids")).ok()
    });
    let pids: Vec<i32> = pids
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    std::fs::remove_file(node.dir.join("status-sleeps")).unwrap();
    // Unknown is "not running": the primary starts the resource.
    let hooks = node.wait_hooks(3);
    assert_eq!(hooks[1..3], ["status www", "start www"]);
    for pid in pids {
        wait_for(10, "the hook's process group to die", || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                .is_err()
                .then_some(())
        });
    }
    let log = node.log();
    assert!(
        log.contains("[www] Hook is running for 0.5 s, its limit"),
        "{log}"
    );
    assert!(
        log.contains("Hook timed out after 0.5 s and was killed"),
        "{log}"
    );
}

#[test]
fn hook_output_is_logged_line_by_line_and_hooks_start_with_no_blocked_signals() {
    let mut node = standalone("output", "");
    node.touch("chatty");
    node.start();
    let log = wait_for(10, "the hook's output in the log", || {
        let log = node.log();
        log.contains("SigBlk").then_some(log)
    });
    assert!(log.contains("[INFO] [www] status["), "{log}");
    assert!(log.contains("]: hello from status\n"), "{log}");
    assert!(log.contains("[WARNING] [www] status["), "{log}");
    assert!(log.contains("]: complaint on stderr\n"), "{log}");
    // Linux's /proc shows 16 hex digits, FreeBSD's ps fewer: all zero.
    let mask = log
        .lines()
        .find_map(|l| l.split_once("]: SigBlk:\t").map(|(_, m)| m.trim()))
        .unwrap_or_else(|| panic!("no SigBlk line\n{log}"));
    assert!(!mask.is_empty() && mask.chars().all(|c| c == '0'), "{log}");
}

#[test]
fn a_killed_worker_is_restarted_and_the_resource_keeps_running() {
    let mut node = standalone("restart", "");
    node.start();
    wait_for(10, "the resource to run", || node.running().then_some(()));
    let first = worker_pid(&node);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let second = wait_for(10, "a new worker", || {
        let pid: i32 = node.status_field("www", "workerpid")?.parse().ok()?;
        (pid != first).then_some(pid)
    });
    assert_ne!(second, first);
    assert_eq!(node.status_field("www", "role").unwrap(), "primary");
    let log = node.log();
    assert!(
        log.contains(&format!("Worker process killed (pid={first}, signal=9).")),
        "{log}"
    );
    assert!(log.contains("Restarting worker process."), "{log}");
    assert!(node.running());
}

#[cfg(target_os = "linux")]
#[test]
fn the_worker_is_titled_and_holds_only_its_own_descriptors() {
    let mut node = standalone("title", "");
    node.start();
    let pid = worker_pid(&node);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let title = String::from_utf8_lossy(&cmdline);
    assert!(title.starts_with("hastmon: www (primary)\0"), "{title:?}");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm, "www (primary)\n");
    // Beyond 0-2: the channel, and the worker's own poller (epoll,
    // timerfd, signalfd). No pipe, no file, no second socket.
    let mut sockets = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let fd: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        if fd <= 2 {
            continue;
        }
        let target = std::fs::read_link(entry.path()).unwrap();
        let target = target.to_string_lossy();
        if target.starts_with("socket:") {
            sockets += 1;
        } else {
            assert!(target.starts_with("anon_inode:"), "fd {fd} -> {target}");
        }
    }
    assert_eq!(sockets, 1);
}
