//! Descriptors are deregistered before they close. One closed while still
//! registered leaves a stale registration behind; the kernel hands its
//! number out again (FreeBSD always the lowest free one), and registering
//! the new descriptor then fails: a hook's output pipe, whose output is
//! lost. Checked after the control socket moves with idle clients
//! connected, and at shutdown.

mod common;

use std::os::unix::net::UnixStream;

use common::{Node, wait_for};
use nix::sys::signal::Signal;

fn chatty(tag: &str) -> Node {
    let mut node = Node::new(
        tag,
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    node.touch("chatty");
    node.start();
    wait_for(10, "the hook's output", || {
        node.log().contains("hello from status").then_some(())
    });
    node
}

#[test]
fn hook_output_is_kept_after_the_control_socket_moves_under_idle_clients() {
    let node = chatty("fd-reload");
    // Clients that connect and send nothing: open connections of the old
    // control socket when it is replaced.
    let idle: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(node.dir.join("ctl")).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let new = node.dir.join("ctl2");
    let conf = std::fs::read_to_string(node.dir.join("hastmon.conf")).unwrap();
    let old_line = conf.lines().find(|l| l.starts_with("control ")).unwrap();
    node.rewrite(&conf.replace(old_line, &format!("control uds://{}", new.display())));
    node.signal(Signal::SIGHUP);
    wait_for(10, "the reload", || {
        node.log()
            .contains("Configuration reloaded successfully.")
            .then_some(())
    });
    // The old connections were closed by the daemon, not left dangling.
    for mut c in idle {
        use std::io::Read;
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(c.read(&mut [0u8; 16]).unwrap(), 0, "closed by the daemon");
    }
    // Hooks run on, each with its output registered and logged.
    let seen = node.log().matches("hello from status").count();
    wait_for(10, "five more status outputs", || {
        (node.log().matches("hello from status").count() >= seen + 5).then_some(())
    });
    let log = node.log();
    assert!(!log.contains("its output is lost"), "{log}");
    assert!(!log.contains("Unable to"), "{log}");
}

#[test]
fn nothing_is_left_registered_at_shutdown() {
    let mut node = chatty("fd-shutdown");
    let _idle = UnixStream::connect(node.dir.join("ctl")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    node.signal(Signal::SIGTERM);
    assert_eq!(node.wait_exit(30), 0);
    let log = node.log();
    assert!(log.contains("Termination signal received"), "{log}");
    assert!(!log.contains("still registered"), "{log}");
}
