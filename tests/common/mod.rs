//! The harness of the tests that start real daemons: a node in a
//! temporary directory with its own config, control socket, pidfile, log,
//! and a hook script that records every call in `hooks.log` and keeps the
//! "resource" as a file (`running-<resource>`).
#![allow(dead_code)]

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The hook: records its arguments, keeps the resource as a file. Files
/// next to it change its behaviour: `start-fails` (start exits 1 without
/// starting), `status-sleeps` (status hangs with a child in its process
/// group, writing both pids to `status.pids`), `start-sleeps` (the same
/// for start, into `start.pids`), `chatty` (status writes to stdout and
/// stderr), `stop-slow` (stop first sleeps that many seconds),
/// `stop-fails` (stop exits 1 and leaves the resource running),
/// `exclusive` (holds the path of another node's resource file: a start
/// while that file exists records `overlap`).
pub const HOOK: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/hooks.log"
case "$1" in
status)
	if [ -f "$dir/chatty" ]; then
		echo "hello from status"
		echo "complaint on stderr" >&2
		# FreeBSD has no /proc by default; ps shows the same mask there.
		if [ -r /proc/self/status ]; then
			grep SigBlk /proc/self/status
		else
			printf 'SigBlk:\t%s\n' "$(ps -o sigmask= -p $$ | tr -d ' ')"
		fi
	fi
	if [ -f "$dir/status-sleeps" ]; then
		sleep 300 &
		echo "$$ $!" > "$dir/status.pids"
		wait
	fi
	[ -f "$dir/running-$2" ] && exit 0
	exit 1;;
start)
	# Another node's copy still up when this one starts: two copies.
	if [ -f "$dir/exclusive" ] && [ -f "$(cat "$dir/exclusive")" ]; then
		echo "overlap" >> "$dir/hooks.log"
	fi
	[ -f "$dir/start-fails" ] && exit 1
	if [ -f "$dir/start-sleeps" ]; then
		sleep 300 &
		echo "$$ $!" > "$dir/start.pids"
		wait
	fi
	touch "$dir/running-$2";;
stop)
	[ -f "$dir/stop-slow" ] && sleep "$(cat "$dir/stop-slow")"
	[ -f "$dir/stop-fails" ] && exit 1
	rm -f "$dir/running-$2";;
esac
exit 0
"#;

/// The user the tests' daemons run workers as (their `-u`).
pub const WORKER_USER: &str = "nobody";

pub struct Node {
    pub dir: PathBuf,
    pub name: String,
    child: Option<Child>,
    /// The listen line added to configurations that name none, kept so
    /// that a rewritten file listens where the first one did.
    listen: String,
}

/// Polls `f` every 20 ms until it gives `Some`, or panics after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Node {
    /// A node named `name` in a fresh directory; `conf` may use `{dir}`
    /// (the directory) and `{hook}` (the hook script's path).
    pub fn new(tag: &str, name: &str, conf: &str) -> Node {
        let dir =
            std::env::temp_dir().join(format!("hastmon-t-{tag}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let hook = dir.join("hook.sh");
        std::fs::write(&hook, HOOK).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let node = Node {
            dir,
            name: name.to_string(),
            child: None,
            listen: format!("listen tcp4://127.0.0.1:{}\n", free_port()),
        };
        node.rewrite(conf);
        node
    }

    /// Writes a new configuration file (for a reload), with the same
    /// `{dir}` and `{hook}` substitutions and the same control and listen
    /// addresses unless it names its own.
    pub fn rewrite(&self, conf: &str) {
        let conf = conf
            .replace("{dir}", &self.dir.display().to_string())
            .replace("{hook}", &self.dir.join("hook.sh").display().to_string());
        let conf = if conf.contains("listen ") {
            conf
        } else {
            format!("{}{conf}", self.listen)
        };
        let conf = if conf.contains("control ") {
            conf
        } else {
            format!("control uds://{}/ctl\n{conf}", self.dir.display())
        };
        require_loopback_in(&conf);
        std::fs::write(self.dir.join("hastmon.conf"), conf).unwrap();
    }

    pub fn touch(&self, file: &str) {
        std::fs::write(self.dir.join(file), "").unwrap();
    }

    pub fn start(&mut self) {
        self.start_with(&[], &[]);
    }

    /// Starts the daemon with extra arguments and environment.
    pub fn start_with(&mut self, args: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.dir.join("daemon.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hastmon"))
            .args(["-F", "-d", "-n", &self.name, "-c"])
            .arg(self.dir.join("hastmon.conf"))
            .arg("-P")
            .arg(self.dir.join("pid"))
            // Explicit: the default user, hastmon, may not exist here.
            .args(if args.contains(&"-u") {
                &[][..]
            } else {
                &["-u", WORKER_USER][..]
            })
            .args(args)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ctl = self.dir.join("ctl");
        wait_for(10, "the control socket", || ctl.exists().then_some(()));
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_hastmonctl"))
            .args(args)
            .args(["-n", &self.name, "-c"])
            .arg(self.dir.join("hastmon.conf"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    pub fn status(&self, resource: &str) -> String {
        self.ctl(&["status", resource]).1
    }

    /// The value of `key:` in the status of `resource`.
    pub fn status_field(&self, resource: &str, key: &str) -> Option<String> {
        let text = self.status(resource);
        let prefix = format!("  {key}: ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }

    pub fn hooks(&self) -> Vec<String> {
        read_lines(&self.dir.join("hooks.log"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Whether resource `www` runs here.
    pub fn running(&self) -> bool {
        self.runs("www")
    }

    pub fn runs(&self, resource: &str) -> bool {
        self.dir.join(format!("running-{resource}")).exists()
    }

    /// Waits until the hook log has `n` lines, and returns them.
    pub fn wait_hooks(&self, n: usize) -> Vec<String> {
        wait_for(20, &format!("{n} hook calls"), || {
            let h = self.hooks();
            (h.len() >= n).then_some(h)
        })
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the daemon to exit; its exit code.
    pub fn wait_exit(&mut self, secs: u64) -> i32 {
        let mut child = self.child.take().unwrap();
        let st = wait_for(secs, "the daemon to exit", || child.try_wait().unwrap());
        st.code().expect("daemon died by a signal")
    }
}

/// The loopback addresses beyond 127.0.0.1 that tests use. Linux routes
/// all of 127/8 to lo; FreeBSD has only 127.0.0.1 on lo0 until aliases are
/// added (tests/freebsd/on-host.sh does).
pub const LOOPBACK_ALIASES: [&str; 4] = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];

/// Whether this host can bind `ip`.
fn loopback_present(ip: &str) -> bool {
    match std::net::TcpListener::bind((ip, 0)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrNotAvailable,
    }
}

/// Fails the test at once, in one line, when `ip` is not on a loopback
/// interface, instead of letting a daemon that cannot bind it time out.
pub fn require_loopback(ip: &str) {
    assert!(
        loopback_present(ip),
        "this test needs the loopback address {ip}, which is not configured \
         (on FreeBSD run tests/freebsd/on-host.sh, or: ifconfig lo0 alias {ip}/32)"
    );
}

/// [`require_loopback`] for every alias named in a configuration text.
fn require_loopback_in(conf: &str) {
    for ip in LOOPBACK_ALIASES {
        let named = conf
            .match_indices(ip)
            .any(|(at, _)| !conf[at + ip.len()..].starts_with(|c: char| c.is_ascii_digit()));
        if named {
            require_loopback(ip);
        }
    }
}

/// Connects from `from` (a loopback address) to `to`.
pub fn connect_from(from: &str, to: &str) -> std::net::TcpStream {
    require_loopback(from);
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, socket,
    };
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    let from: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    bind(sock.as_raw_fd(), &SockaddrStorage::from(from)).unwrap();
    let to: std::net::SocketAddr = to.parse().unwrap();
    connect(sock.as_raw_fd(), &SockaddrStorage::from(to)).unwrap();
    std::net::TcpStream::from(sock)
}

/// A TCP port nobody listens on right now, on any of the loopback
/// addresses the tests use. Handed out from a counter, so that two tests
/// of one run never get the same one (the kernel's choice for port 0 can
/// come round again once the probe closes).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        // Below the kernel's ephemeral range (32768 and up on Linux).
        20_000 + (std::process::id() % 10_000) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    // Addresses this host lacks are left out: a test that needs one says
    // so itself (require_loopback), rather than this loop never ending.
    let addrs: Vec<&str> = std::iter::once("127.0.0.1")
        .chain(
            LOOPBACK_ALIASES
                .into_iter()
                .filter(|ip| loopback_present(ip)),
        )
        .collect();
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        let free = addrs
            .iter()
            .all(|ip| std::net::TcpListener::bind((*ip, port)).is_ok());
        if free {
            return port;
        }
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Gracefully first, so that workers and hooks end with it.
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("--- daemon log of {} ---\n{}", self.name, self.log());
        }
    }
}
