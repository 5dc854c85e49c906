//! A real `hastmon -F` process: its control socket, role changes, status
//! text, robustness against bad clients, the pidfile and shutdown.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(tag: &str) -> Node {
        let dir = std::env::temp_dir().join(format!("hastmon-d-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "control uds://{}/ctl\nlisten tcp4://127.0.0.1:{port}\n\
             resource r1 {{\n exec /bin/true\n on me {{ remote tcp4://127.0.0.2 role_on_start secondary }}\n}}\n\
             resource r2 {{\n exec /bin/true\n heartbeat_interval 0.2\n on me {{ remote none }}\n}}\n",
            dir.display()
        );
        std::fs::write(dir.join("hastmon.conf"), conf).unwrap();
        let mut node = Node { dir, child: None };
        node.child = Some(node.spawn());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !node.ctl_path().exists() {
            assert!(Instant::now() < deadline, "control socket never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }

    fn spawn(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_hastmon"))
            .args(["-F", "-n", "me", "-c"])
            .arg(self.dir.join("hastmon.conf"))
            .arg("-P")
            .arg(self.dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn ctl_path(&self) -> PathBuf {
        self.dir.join("ctl")
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_hastmonctl"))
            .args(args)
            .args(["-n", "me", "-c"])
            .arg(self.dir.join("hastmon.conf"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    fn wait(&mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().expect("daemon died by a signal");
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const R2_INIT: &str = "r2:\n  role: init\n  exec: /bin/true\n  remote:\n    none\n  state: unknown\n  attempts: 0 from 5\n  complaints: 0 for last 60 sec (threshold 3)\n  heartbeat: 1 sec\n\n";

#[test]
fn status_shows_role_on_start_and_role_changes() {
    let node = Node::start("roles");
    let (code, out, _) = node.ctl(&["status"]);
    // r1 is a secondary no primary has reached: not healthy (exit 2),
    // while r2 in init is.
    assert_eq!(code, 2);
    assert_eq!(node.ctl(&["status", "r2"]).0, 0);
    assert!(out.starts_with("r1:\n  role: secondary\n  exec: /bin/true\n  remote:\n    tcp4://127.0.0.2\n  state: unknown\n"), "{out}");
    assert!(out.ends_with(R2_INIT), "{out}");

    let (code, out, err) = node.ctl(&["role", "-d", "primary", "r2"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, "[DEBUG][1] [r2] Role changed from init to primary.\n");
    let (_, out, _) = node.ctl(&["status", "r2"]);
    assert!(out.starts_with("r2:\n  role: primary\n"), "{out}");

    let (code, _, err) = node.ctl(&["role", "init", "all"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (_, out, _) = node.ctl(&["status", "r2"]);
    assert_eq!(out, R2_INIT);
}

#[test]
fn unknown_resources_exit_1() {
    let node = Node::start("unknown");
    let (code, out, _) = node.ctl(&["status", "nosuch"]);
    assert_eq!((code, out.as_str()), (1, "nosuch:\n  error: 1\n"));
    let (code, _, err) = node.ctl(&["role", "primary", "r1", "nosuch"]);
    assert_eq!(code, 1);
    assert_eq!(err, "[WARNING] [nosuch] Received error 1 from hastmon.\n");
    // r1 was still changed: errors are per resource.
    let (_, out, _) = node.ctl(&["status", "r1"]);
    assert!(out.contains("  role: primary\n"), "{out}");
}

#[test]
fn bad_clients_do_not_stop_the_daemon() {
    let node = Node::start("garbage");
    let path = node.ctl_path();
    // An idle client: 0.3.4 froze on it (Q27).
    let _idle = UnixStream::connect(&path).unwrap();
    // Garbage, a bad version, a truncated frame, an oversized announcement.
    for bytes in [
        &b"garbage garbage"[..],
        &[7, 0, 0, 0, 0],
        &[0, 40, 0, 0, 0, 17, 5],
        &[0, 0xff, 0xff, 0xff, 0x7f],
    ] {
        let mut s = UnixStream::connect(&path).unwrap();
        let _ = s.write_all(bytes);
    }
    // An empty frame (Q3) and a request without `cmd`: closed, no reply.
    let mut no_cmd = hastmon::proto::NvList::new();
    no_cmd.add_string("resource0", "r2");
    let no_cmd = hastmon::proto::encode_frame(&no_cmd).unwrap();
    for bytes in [&[0u8, 0, 0, 0, 0][..], &no_cmd] {
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(bytes).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(buf.is_empty());
    }
    let (code, out, _) = node.ctl(&["status", "r2"]);
    assert_eq!((code, out.as_str()), (0, R2_INIT));
}

#[test]
fn second_daemon_on_the_same_pidfile_exits_75_and_leaves_the_first_alone() {
    let node = Node::start("pidfile");
    let pid = std::fs::read_to_string(node.dir.join("pid")).unwrap();
    assert_eq!(pid.trim(), node.child.as_ref().unwrap().id().to_string());
    let out = node.spawn().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(75));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "Another hastmon is already running, pid: {}.",
            pid.trim()
        )),
        "{err}"
    );
    assert!(node.ctl_path().exists());
    assert_eq!(node.ctl(&["status", "r2"]).0, 0);
}

#[test]
fn control_socket_is_private() {
    let node = Node::start("mode");
    let mode = std::fs::metadata(node.ctl_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn sighup_is_survived_and_sigterm_cleans_up() {
    let mut node = Node::start("signals");
    node.signal(nix::sys::signal::Signal::SIGHUP);
    assert_eq!(node.ctl(&["status", "r2"]).0, 0);
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(node.wait(), 0);
    assert!(!node.ctl_path().exists(), "control socket left behind");
    assert!(!node.dir.join("pid").exists(), "pidfile left behind");
    let (code, _, err) = node.ctl(&["status"]);
    assert_eq!(code, 71);
    assert!(
        err.starts_with("[ERROR] Unable to connect to hastmon via uds://"),
        "{err}"
    );
}

#[test]
fn stale_socket_from_a_crashed_daemon_is_replaced() {
    let mut node = Node::start("stale");
    node.child.as_mut().unwrap().kill().unwrap();
    node.child.take().unwrap().wait().unwrap();
    assert!(
        node.ctl_path().exists(),
        "a killed daemon leaves its socket"
    );
    node.child = Some(node.spawn());
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.ctl(&["status", "r2"]).0 != 0 {
        assert!(
            Instant::now() < deadline,
            "restarted daemon does not answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn background_mode_detaches_and_writes_the_daemons_pid() {
    let dir = std::env::temp_dir().join(format!("hastmon-d-bg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("hastmon.conf");
    std::fs::write(
        &conf,
        format!(
            "control {}/ctl\nresource r {{ exec /bin/true on me {{ remote none }} }}\n",
            dir.display()
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_hastmon"))
        .args(["-n", "me", "-c"])
        .arg(&conf)
        .arg("-P")
        .arg(dir.join("pid"))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the starting process exits 0");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("pid"))
            && let Ok(pid) = text.trim().parse()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no pid written");
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    assert!(
        nix::sys::signal::kill(pid, None).is_ok(),
        "daemon not running"
    );
    assert_eq!(
        nix::unistd::getsid(Some(pid)).unwrap(),
        pid,
        "not a session leader"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    while dir.join("pid").exists() || dir.join("ctl").exists() {
        assert!(
            Instant::now() < deadline + Duration::from_secs(10),
            "files left behind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
