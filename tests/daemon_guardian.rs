//! The guardian as a process of its own: `kill -TERM` ends it, and what it
//! logs carries its own pid, not the dead main process's. Syslog records
//! are read from a socket of the test's own (`HASTMON_TEST_SYSLOG`).

mod common;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Node, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn primary(tag: &str) -> Node {
    Node::new(
        tag,
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    )
}

/// The guardian: the main process's child titled "guardian" (ps works on
/// Linux and FreeBSD alike).
fn guardian_of(main: i32) -> i32 {
    wait_for(10, "the guardian", || {
        let out = std::process::Command::new("ps")
            .args(["-ax", "-o", "pid=,ppid=,command="])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let pid: i32 = f.next()?.parse().ok()?;
            let ppid: i32 = f.next()?.parse().ok()?;
            (ppid == main && l.contains("guardian")).then_some(pid)
        })
    })
}

#[test]
fn sigterm_ends_the_guardian_and_the_main_process_says_so() {
    let mut node = primary("guardian-term");
    node.start();
    wait_for(10, "the resource to run", || node.running().then_some(()));
    let guardian = guardian_of(node.pid());
    kill(Pid::from_raw(guardian), Signal::SIGTERM).unwrap();
    wait_for(10, "the main process to see the guardian go", || {
        node.log().contains("The guardian exited").then_some(())
    });
    let log = node.log();
    assert!(log.contains("The guardian exited (Signaled(15))"), "{log}");
    // Reaped by the main process: no such process any more.
    assert_eq!(
        kill(Pid::from_raw(guardian), None),
        Err(nix::errno::Errno::ESRCH)
    );
}

#[test]
fn the_guardian_logs_under_its_own_pid() {
    let mut node = primary("guardian-pid");
    let path = node.dir.join("syslog");
    let server = UnixDatagram::bind(&path).unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let records = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&records);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        loop {
            match server.recv(&mut buf) {
                Ok(n) => sink
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    node.start_with(&[], &[("HASTMON_TEST_SYSLOG", path.to_str().unwrap())]);
    wait_for(10, "the resource to run", || node.running().then_some(()));
    let main = node.pid();
    let guardian = guardian_of(main);
    // A sandboxed worker logs too, under its pid: the sandbox lets its
    // records out (the seccomp list, capsicum's narrowed socket).
    let worker: i32 = wait_for(10, "the worker's pid", || {
        node.status_field("www", "workerpid")?.parse().ok()
    });
    // The probe (test builds, SIGUSR1) makes it log from inside the sandbox.
    kill(Pid::from_raw(worker), Signal::SIGUSR1).unwrap();
    let tag = format!(" hastmon[{worker}]: [www] (primary) Sandbox probe: open: ");
    wait_for(10, "a record from the worker", || {
        records
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains(&tag))
            .then_some(())
    });
    // The main process dies without a word: the guardian takes over.
    node.signal(Signal::SIGKILL);
    let line = wait_for(20, "the guardian's record", || {
        records
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.contains("The main process died while primary"))
            .cloned()
    });
    assert!(line.starts_with("<27>"), "daemon.err: {line}");
    assert!(
        line.contains(&format!(" hastmon[{guardian}]: (guardian) [www] ")),
        "guardian {guardian}, main {main}: {line}"
    );
    // The main process's own records carried its pid.
    let all = records.lock().unwrap().clone();
    assert!(
        all.iter()
            .any(|r| r.contains(&format!(" hastmon[{main}]: "))),
        "{all:#?}"
    );
    wait_for(20, "the guardian's stop", || {
        (!node.running()).then_some(())
    });
}
