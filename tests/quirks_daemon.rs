//! Regression tests, on real daemons, for the weaknesses of hastmon 0.3.4
//! listed in doc/quirks.md: each is named after its entry and fails on the
//! original's behaviour.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{Node, connect_from, free_port, wait_for};
use hastmon::proto::encode_frame;
use hastmon::proto::msg::{ControlCmd, ControlRequest, Handshake2};
use hastmon::types::Role;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn standalone(tag: &str, extra: &str) -> Node {
    let mut n = Node::new(
        tag,
        "alpha",
        &format!(
            "resource www {{\n exec {{hook}}\n heartbeat_interval 0.2\n {extra}\n on alpha {{ remote none role_on_start primary }}\n}}\n"
        ),
    );
    n.start();
    wait_for(10, "the resource to run", || n.running().then_some(()));
    n
}

/// A node on 127.0.0.2 whose resource `www` is secondary, with 127.0.0.1
/// as its remote and 127.0.0.3 as a friend; its listen port.
fn secondary(tag: &str) -> (Node, u16) {
    let port = free_port();
    let mut n = Node::new(
        tag,
        "beta",
        &format!(
            "listen tcp4://127.0.0.2:{port}\nresource www {{\n exec {{hook}}\n heartbeat_interval 0.2\n on beta {{ remote tcp4://127.0.0.1:{port} friends tcp4://127.0.0.3 role_on_start secondary }}\n}}\n"
        ),
    );
    n.start();
    (n, port)
}

/// Whether `hastmonctl status` got its answer: 0, or 2 for a resource
/// not healthy in its role (these secondaries have no primary).
fn answered(code: i32) -> bool {
    matches!(code, 0 | 2)
}

#[test]
fn q03_five_zero_bytes_do_not_kill_the_daemon() {
    let (b, port) = secondary("q03");
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.1", &format!("127.0.0.2:{port}"));
        s.write_all(&[0, 0, 0, 0, 0]).unwrap();
        let mut ctl = UnixStream::connect(b.dir.join("ctl")).unwrap();
        ctl.write_all(&[0, 0, 0, 0, 0]).unwrap();
    }
    // An announced 4 GiB payload is refused, not allocated.
    let mut s = connect_from("127.0.0.1", &format!("127.0.0.2:{port}"));
    s.write_all(&[0, 0xff, 0xff, 0xff, 0xff]).unwrap();
    let mut buf = [0u8; 16];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "the daemon must close it");
    let (code, out, _) = b.ctl(&["status", "www"]);
    assert!(answered(code), "{code}");
    assert!(out.contains("role: secondary"), "{out}");
}

#[test]
fn q09_sigterm_stops_the_resource() {
    let mut n = standalone("q09", "");
    n.signal(Signal::SIGTERM);
    assert_eq!(n.wait_exit(20), 0);
    assert!(!n.running(), "the resource outlived the daemon");
    assert_eq!(n.hooks().last().unwrap(), "stop www");
    assert!(!n.dir.join("pid").exists());
    assert!(!n.dir.join("ctl").exists());
}

#[test]
fn q10_a_crashed_main_process_leaves_no_resource_running() {
    let n = standalone("q10", "");
    kill(Pid::from_raw(n.pid()), Signal::SIGKILL).unwrap();
    wait_for(20, "the guardian to stop the resource", || {
        (!n.running()).then_some(())
    });
    assert_eq!(n.hooks().last().unwrap(), "stop www");
    assert!(
        n.log()
            .contains("The main process died while primary; stopping the resource.")
    );
}

#[test]
fn q10_a_clean_exit_dismisses_the_guardian_without_a_second_stop() {
    let mut n = standalone("q10-clean", "");
    n.signal(Signal::SIGTERM);
    assert_eq!(n.wait_exit(20), 0);
    std::thread::sleep(Duration::from_millis(500));
    let stops = n.hooks().iter().filter(|h| *h == "stop www").count();
    assert_eq!(stops, 1, "{:?}", n.hooks());
}

#[test]
fn q24_a_role_change_over_tcp_needs_a_key() {
    let (b, port) = secondary("q24");
    let req = ControlRequest {
        cmd: ControlCmd::SetRole,
        role: Some(Role::Primary),
        resources: vec!["www".into()],
        auth: None,
        extended: false,
    };
    let mut nv = req.to_nv();
    nv.add_u8("type", 1);
    let mut s = connect_from("127.0.0.3", &format!("127.0.0.2:{port}"));
    s.write_all(&encode_frame(&nv).unwrap()).unwrap();
    let mut buf = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "the request was answered");
    wait_for(10, "the refusal in the log", || {
        b.log()
            .contains("Refusing a role change from 127.0.0.3")
            .then_some(())
    });
    assert_eq!(b.status_field("www", "role").unwrap(), "secondary");
    assert!(!b.running());
}

#[test]
fn q25_a_friend_of_one_resource_does_not_reach_another() {
    let port = free_port();
    let mut n = Node::new(
        "q25",
        "beta",
        &format!(
            "listen tcp4://127.0.0.2:{port}\n\
             resource r1 {{\n exec {{hook}}\n friends tcp4://127.0.0.3\n on beta {{ remote none role_on_start secondary }}\n}}\n\
             resource r2 {{\n exec {{hook}}\n on beta {{ remote none role_on_start secondary }}\n}}\n"
        ),
    );
    n.start();
    for resource in ["r2", "r1"] {
        let c = hastmon::proto::msg::Complaint {
            auth: None,
            resource: resource.into(),
        };
        let mut s = connect_from("127.0.0.3", &format!("127.0.0.2:{port}"));
        s.write_all(&encode_frame(&c.to_nv()).unwrap()).unwrap();
    }
    wait_for(10, "r1's complaint hook", || {
        n.hooks().contains(&"complain r1".to_string()).then_some(())
    });
    assert!(!n.hooks().contains(&"complain r2".to_string()));
    assert!(n.log().contains("[r2] 127.0.0.3"), "{}", n.log());
}

/// Status polls over TCP are checked as complaints are: a friend of r1
/// is answered about r1 and gets nothing about r2.
#[test]
fn q25_a_status_poll_reaches_only_the_resources_that_know_the_poller() {
    let port = free_port();
    let mut n = Node::new(
        "q25poll",
        "beta",
        &format!(
            "listen tcp4://127.0.0.2:{port}\n\
             resource r1 {{\n exec {{hook}}\n friends tcp4://127.0.0.3\n on beta {{ remote none role_on_start secondary }}\n}}\n\
             resource r2 {{\n exec {{hook}}\n on beta {{ remote none role_on_start secondary }}\n}}\n"
        ),
    );
    n.start();
    let poll = |resource: &str| {
        let req = hastmon::proto::msg::ControlRequest {
            cmd: hastmon::proto::msg::ControlCmd::Status,
            role: None,
            resources: vec![resource.into()],
            auth: None,
            extended: false,
        };
        let mut s = connect_from("127.0.0.3", &format!("127.0.0.2:{port}"));
        s.write_all(&encode_frame(&req.to_nv()).unwrap()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut answer);
        answer
    };
    assert!(!poll("r1").is_empty(), "a friend's poll is answered");
    assert!(
        poll("r2").is_empty(),
        "a stranger's poll is closed unanswered"
    );
    wait_for(10, "the refusal in the log", || {
        n.log().contains("[r2] 127.0.0.3").then_some(())
    });
}

#[test]
fn q27_a_silent_client_never_stalls_the_daemon() {
    let (b, port) = secondary("q27");
    let _silent_ctl = UnixStream::connect(b.dir.join("ctl")).unwrap();
    let _silent_peer = connect_from("127.0.0.1", &format!("127.0.0.2:{port}"));
    let _half_frame = {
        let mut s = UnixStream::connect(b.dir.join("ctl")).unwrap();
        s.write_all(&[0, 100, 0, 0, 0, 1, 2]).unwrap();
        s
    };
    // Answered while all three still hang on.
    for _ in 0..3 {
        let (code, out, _) = b.ctl(&["status", "www"]);
        assert!(answered(code), "{code}");
        assert!(out.contains("role: secondary"));
    }
}

#[test]
fn q28_status_while_workers_come_and_go_never_hangs() {
    let n = standalone("q28", "");
    for role in ["init", "primary", "init", "primary", "init", "primary"] {
        assert_eq!(n.ctl(&["role", role, "www"]).0, 0);
        for _ in 0..3 {
            // A primary is unhealthy (2) until its resource runs again.
            assert!(answered(n.ctl(&["status", "www"]).0));
        }
    }
}

#[test]
fn q29_a_stray_second_stage_is_refused_without_a_crash() {
    let (b, port) = secondary("q29");
    let h2 = Handshake2 {
        auth: None,
        resource: "www".into(),
        token: [7; 16],
        resuid: 0,
    };
    let mut s = connect_from("127.0.0.1", &format!("127.0.0.2:{port}"));
    s.write_all(&encode_frame(&h2.to_nv()).unwrap()).unwrap();
    let mut buf = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut buf);
    let reply = hastmon::proto::decode_frame(&buf).unwrap();
    assert_eq!(reply.get_str("errmsg"), Some("Token doesn't match."));
    assert!(answered(b.ctl(&["status", "www"]).0));
}

#[test]
fn q30_inherited_descriptors_do_not_stop_workers() {
    use std::os::unix::process::CommandExt;
    let n = Node::new(
        "q30",
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    let leak = std::fs::File::open("/dev/null").unwrap();
    let log = std::fs::File::create(n.dir.join("daemon.log")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hastmon"));
    cmd.args(["-F", "-n", "alpha", "-c"])
        .arg(n.dir.join("hastmon.conf"))
        .arg("-P")
        .arg(n.dir.join("pid"))
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&leak);
    // SAFETY: dup2 in the child before exec, onto a number nothing uses.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 10) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for(10, "the resource to run", || n.running().then_some(()));
    assert!(!n.log().contains("should be closed"), "{}", n.log());
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let _ = child.wait();
    n.touch("done");
}

/// A listener on `ip` whose accept queue is full, so that further SYNs
/// are dropped and connecting to it hangs; returns it with its port and
/// the connections that fill it.
fn black_hole(ip: &str) -> (std::os::fd::OwnedFd, u16, Vec<TcpStream>) {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrStorage, bind, getsockname,
        listen, socket,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    let addr: std::net::SocketAddr = format!("{ip}:0").parse().unwrap();
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let port = getsockname::<SockaddrIn>(fd.as_raw_fd()).unwrap().port();
    let mut fill = Vec::new();
    for _ in 0..4 {
        let s = std::net::TcpStream::connect_timeout(
            &format!("{ip}:{port}").parse().unwrap(),
            Duration::from_millis(300),
        );
        match s {
            Ok(s) => fill.push(s),
            Err(_) => break,
        }
    }
    (fd, port, fill)
}

#[test]
fn q57_connecting_gives_up_after_the_resources_timeout() {
    let (_hole, port, _fill) = black_hole("127.0.0.5");
    let mut n = Node::new(
        "q57",
        "alpha",
        &format!(
            "listen tcp4://127.0.0.1:{}\nresource www {{\n exec {{hook}}\n heartbeat_interval 0.2\n timeout 0.3\n silence_limit 0\n on alpha {{ remote tcp4://127.0.0.5:{port} role_on_start primary }}\n}}\n",
            free_port()
        ),
    );
    n.start();
    // With 0.3.4's fixed 5 s connect timeout the first attempt alone would
    // outlast this wait; with `timeout` it ends after 0.3 s and the
    // primary, which waits for its first attempts, goes on to start.
    wait_for(4, "the connect timeout and the start", || {
        let log = n.log();
        (log.contains(&format!(
            "Unable to connect to tcp4://127.0.0.5:{port}: connect timed out"
        )) && n.running())
        .then_some(())
    });
}

#[test]
fn q10_a_start_still_running_when_the_main_process_dies_is_ended_before_the_stop() {
    let mut n = Node::new(
        "q10-mid-hook",
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    n.touch("start-sleeps");
    n.start();
    let pids = wait_for(10, "the start hook", || {
        std::fs::read_to_string(n.dir.join("start.pids")).ok()
    });
    let pids: Vec<i32> = pids
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    kill(Pid::from_raw(n.pid()), Signal::SIGKILL).unwrap();
    wait_for(20, "the guardian's stop", || {
        n.hooks().contains(&"stop www".to_string()).then_some(())
    });
    for pid in pids {
        wait_for(10, "the start hook's group to end", || {
            kill(Pid::from_raw(pid), None).is_err().then_some(())
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!n.running(), "the start ended after the guardian's stop");
    assert!(
        n.log().contains("Ended the hook still running"),
        "{}",
        n.log()
    );
}
