//! The test bed: real daemons, each in its own network namespace, their
//! `eth0` a veth pair into one bridge that lives in a namespace of its own.
//! Everything the bed makes is named `hmchaos-<pid>-<run>-...`, so that a
//! run can remove the leftovers of a crashed earlier one (whose pid is
//! gone) without touching a run in progress.
//!
//! Network faults are nftables rules in the receiving node's `input`
//! chain (silent drops, as on a wire; a drop in `output` would fail the
//! sender's `send` at once), the bridge port's state (a node cut from
//! everyone), or the link going down (a dead host).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const PREFIX: &str = "hmchaos-";
pub const PORT: u16 = 7000;
pub const RES: &str = "www";

/// Seconds since the epoch: the one clock of the hook log, the
/// snapshots and the timeline (the hooks read it as `$EPOCHREALTIME`).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The resource's `exec` program. Every call appends `T node call EVENT
/// ARGS` and, when it ends, `T node done EVENT RC`; the resource is the
/// file `running`, and its changes are logged as `T node up` and `T node
/// down`, so that the log alone tells where it ran when. Flag files
/// `fault-EVENT-{slow,fail,hang}` in the node's directory make that event
/// sleep (the file holds the seconds), fail without doing anything, or
/// hang until `hook_timeout` kills it.
const HOOK: &str = r#"#!/bin/bash
d=@DIR@
n=@NODE@
log=@LOG@
ev=$1
echo "$EPOCHREALTIME $n call $*" >>"$log"
rc=0
if [ -f "$d/fault-$ev-hang" ]; then
	sleep 3600 &
	wait
fi
if [ -f "$d/fault-$ev-slow" ]; then
	sleep "$(cat "$d/fault-$ev-slow")"
fi
if [ -f "$d/fault-$ev-fail" ]; then
	rc=3
else
	case "$ev" in
	start)
		if [ ! -f "$d/running" ]; then
			touch "$d/running"
			echo "$EPOCHREALTIME $n up" >>"$log"
		fi ;;
	stop)
		if [ -f "$d/running" ]; then
			rm -f "$d/running"
			echo "$EPOCHREALTIME $n down" >>"$log"
		fi ;;
	status)
		[ -f "$d/running" ] || rc=1 ;;
	esac
fi
echo "$EPOCHREALTIME $n done $ev $rc" >>"$log"
exit $rc
"#;

/// A process of a node, as found in /proc.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub cmdline: String,
}

pub struct Node {
    pub name: String,
    pub ip: String,
    /// Its namespace's name (under /run/netns).
    pub ns: String,
    /// Its bridge port, in the bridge's namespace.
    pub port: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
    /// Daemons of this node that ended (killed or not): exit statuses.
    pub ended: Vec<String>,
}

pub struct Bed {
    tag: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub bridge_ns: String,
    pub nodes: Vec<Node>,
    pub hastmon: String,
    pub hastmonctl: String,
    keep: bool,
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) {
    run("ip", args).unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `nft` inside namespace `ns` with `script` on its standard input.
pub fn nft(ns: &str, script: &str) {
    use std::io::Write;
    let mut c = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nft");
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft in {ns}: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The inode of namespace `ns`, as /proc/PID/ns/net shows it.
fn ns_inode(ns: &str) -> Option<(u64, u64)> {
    let m = fs::metadata(format!("/run/netns/{ns}")).ok()?;
    Some((m.dev(), m.ino()))
}

/// Every process whose network namespace is `ns`.
pub fn procs_in(ns: &str) -> Vec<Proc> {
    let Some(id) = ns_inode(ns) else {
        return vec![];
    };
    let mut v = vec![];
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(m) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if (m.dev(), m.ino()) != id {
            continue;
        }
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The field after the parenthesized command: state, then ppid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        v.push(Proc { pid, ppid, cmdline });
    }
    v
}

fn kill_all_in(ns: &str, sig: Signal) -> usize {
    let ps = procs_in(ns);
    for p in &ps {
        let _ = kill(Pid::from_raw(p.pid), sig);
    }
    ps.len()
}

/// Kills everything in `ns` until nothing is left (a killed daemon's
/// children may fork once more on their way out).
fn empty_ns(ns: &str) {
    for _ in 0..50 {
        if kill_all_in(ns, Signal::SIGKILL) == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn delete_ns(ns: &str) {
    empty_ns(ns);
    let _ = run("ip", &["netns", "del", ns]);
}

/// Removes namespaces and directories of earlier runs whose process is
/// gone (a run that crashed or was killed before its clean-up).
pub fn clean_leftovers() {
    let alive = |name: &str| -> bool {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok());
        pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
    };
    for e in fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(PREFIX) && !alive(&name) {
            delete_ns(&name);
        }
    }
    for e in fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(PREFIX) && !alive(&name) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Why the campaign cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("it needs root for network namespaces".into());
    }
    for tool in ["ip", "bridge", "nft"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` is not installed (iproute2, nftables)"));
        }
    }
    None
}

impl Bed {
    /// A bridge and `names.len()` nodes on 10.77.0.1.., addresses in
    /// order. `run` makes the names unique within this process.
    pub fn new(run_id: usize, names: &[&str], hastmon: &str, hastmonctl: &str) -> Bed {
        let tag = format!("{PREFIX}{}-{run_id}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("hooks.log");
        fs::write(&log, "").unwrap();
        let bridge_ns = format!("{tag}-br");
        let mut bed = Bed {
            tag: tag.clone(),
            dir: dir.clone(),
            log: log.clone(),
            bridge_ns: bridge_ns.clone(),
            nodes: vec![],
            hastmon: hastmon.into(),
            hastmonctl: hastmonctl.into(),
            keep: false,
        };
        // From here on, Drop removes whatever was made, even on a panic.
        ip(&["netns", "add", &bridge_ns]);
        ip(&["-n", &bridge_ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge_ns, "link", "set", "br0", "up"]);
        for (i, name) in names.iter().enumerate() {
            let ns = format!("{tag}-{name}");
            let port = format!("p{}", i + 1);
            let ipaddr = format!("10.77.0.{}", i + 1);
            ip(&["netns", "add", &ns]);
            bed.nodes.push(Node {
                name: name.to_string(),
                ip: ipaddr.clone(),
                ns: ns.clone(),
                port: port.clone(),
                dir: dir.join(name),
                child: None,
                ended: vec![],
            });
            ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &bridge_ns,
            ]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ipaddr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &bridge_ns, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &bridge_ns, "link", "set", &port, "up"]);
            nft(
                &ns,
                "table inet chaos {\n chain input { type filter hook input priority 0; }\n}\n",
            );
            let ndir = dir.join(name);
            fs::create_dir_all(&ndir).unwrap();
            let hook = ndir.join("hook.sh");
            fs::write(
                &hook,
                HOOK.replace("@DIR@", &ndir.display().to_string())
                    .replace("@NODE@", name)
                    .replace("@LOG@", &log.display().to_string()),
            )
            .unwrap();
            fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        }
        bed
    }

    /// Keeps the directory (logs) when the bed goes, renamed out of the
    /// prefix that the clean-up of leftovers removes; where it will be.
    pub fn keep_dir(&mut self) -> PathBuf {
        self.keep = true;
        std::env::temp_dir().join(format!("chaos-failed-{}", self.tag))
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    fn idx(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap()
    }

    pub fn write_conf(&self, name: &str, conf: &str) {
        let n = self.node(name);
        let conf = conf.replace("@DIR@", &n.dir.display().to_string());
        fs::write(n.dir.join("hastmon.conf"), conf).unwrap();
    }

    /// Starts node `name`'s daemon in its namespace (in the foreground,
    /// debug level 1, its output appended to `daemon.log`).
    pub fn start(&mut self, name: &str) {
        let i = self.idx(name);
        let n = &self.nodes[i];
        let logf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.dir.join("daemon.log"))
            .unwrap();
        let nsf = fs::File::open(format!("/run/netns/{}", n.ns)).unwrap();
        use std::os::fd::AsRawFd;
        let nsfd = nsf.as_raw_fd();
        let mut cmd = Command::new(&self.hastmon);
        cmd.args(["-F", "-d", "-n", &n.name, "-c"])
            .arg(n.dir.join("hastmon.conf"))
            .arg("-P")
            .arg(n.dir.join("pid"))
            .current_dir(&n.dir)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        // SAFETY: between fork and exec only setns(2), which is
        // async-signal-safe; the descriptor stays open in the parent
        // until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(nsfd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("hastmon");
        drop(nsf);
        self.nodes[i].child = Some(child);
        let ctl = self.nodes[i].dir.join("ctl");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ctl.exists() {
            assert!(
                Instant::now() < deadline,
                "{name}: no control socket after 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn main_pid(&self, name: &str) -> Option<i32> {
        self.node(name).child.as_ref().map(|c| c.id() as i32)
    }

    /// Reaps node daemons that ended, recording how; whether `name`'s
    /// daemon is alive.
    pub fn reap(&mut self) {
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                n.ended.push(format!("{st}"));
                n.child = None;
            }
        }
    }

    /// The daemon's children: guardian and workers.
    pub fn children(&self, name: &str) -> Vec<Proc> {
        let Some(main) = self.main_pid(name) else {
            return vec![];
        };
        procs_in(&self.node(name).ns)
            .into_iter()
            .filter(|p| p.ppid == main && p.cmdline.starts_with("hastmon:"))
            .collect()
    }

    pub fn signal_main(&self, name: &str, sig: Signal) -> bool {
        self.main_pid(name)
            .is_some_and(|p| kill(Pid::from_raw(p), sig).is_ok())
    }

    /// SIGSTOP or SIGCONT to every process of the node.
    pub fn signal_all(&self, name: &str, sig: Signal) {
        kill_all_in(&self.node(name).ns, sig);
    }

    /// The host dies: every process, the link down, and the resource
    /// with it (logged as `down crash` when it ran).
    pub fn crash(&mut self, name: &str) {
        let ns = self.node(name).ns.clone();
        ip(&["-n", &ns, "link", "set", "eth0", "down"]);
        empty_ns(&ns);
        self.reap();
        let running = self.node(name).dir.join("running");
        if running.exists() {
            let _ = fs::remove_file(&running);
            self.append_log(&format!("{:.6} {name} down crash", now()));
        }
    }

    pub fn link_up(&self, name: &str) {
        ip(&["-n", &self.node(name).ns, "link", "set", "eth0", "up"]);
    }

    pub fn append_log(&self, line: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&self.log).unwrap();
        writeln!(f, "{line}").unwrap();
    }

    /// Bridge port of `name` forwarding (true) or disabled.
    pub fn port_state(&self, name: &str, forwarding: bool) {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.bridge_ns,
                "bridge",
                "link",
                "set",
                "dev",
                &self.node(name).port,
                "state",
                if forwarding { "3" } else { "0" },
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Replaces every node's input rules: packets from `from` to `to`
    /// dropped for each pair in `blocked`, and `loss` % of the rest.
    pub fn set_filters(&self, blocked: &BTreeSet<(String, String)>, loss: u32) {
        for n in &self.nodes {
            let mut rules = String::new();
            let srcs: Vec<&str> = blocked
                .iter()
                .filter(|(_, to)| *to == n.name)
                .map(|(from, _)| self.node(from).ip.as_str())
                .collect();
            if !srcs.is_empty() {
                rules += &format!(
                    "add rule inet chaos input iifname \"eth0\" ip saddr {{ {} }} drop\n",
                    srcs.join(", ")
                );
            }
            if loss > 0 {
                rules += &format!(
                    "add rule inet chaos input iifname \"eth0\" numgen random mod 100 < {loss} counter drop\n"
                );
            }
            nft(&n.ns, &format!("flush chain inet chaos input\n{rules}"));
        }
    }

    /// Packets the loss rules dropped so far, over every node (the rules'
    /// counters; replaced rules start again from 0).
    pub fn lost_packets(&self) -> u64 {
        let mut sum = 0;
        for n in &self.nodes {
            let out = Command::new("ip")
                .args([
                    "netns", "exec", &n.ns, "nft", "list", "chain", "inet", "chaos", "input",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for l in out.lines().filter(|l| l.contains("numgen")) {
                let mut w = l.split_whitespace();
                while let Some(x) = w.next() {
                    if x == "packets" {
                        sum += w.next().and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
                    }
                }
            }
        }
        sum
    }

    /// Writes (or with `None` removes) the flag file of a hook fault.
    pub fn hook_flag(&self, name: &str, event: &str, kind: &str, content: Option<&str>) {
        let f = self.node(name).dir.join(format!("fault-{event}-{kind}"));
        match content {
            Some(c) => fs::write(f, c).unwrap(),
            None => {
                let _ = fs::remove_file(f);
            }
        }
    }

    pub fn running(&self, name: &str) -> bool {
        self.node(name).dir.join("running").exists()
    }

    pub fn daemon_log(&self, name: &str) -> String {
        fs::read_to_string(self.node(name).dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn hook_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            empty_ns(&n.ns);
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for n in &self.nodes {
            delete_ns(&n.ns);
        }
        delete_ns(&self.bridge_ns);
        if self.keep {
            let kept = std::env::temp_dir().join(format!("chaos-failed-{}", self.tag));
            let _ = fs::rename(&self.dir, kept);
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `hastmonctl ARGS` for node `name` whose files are in `dir`, ended
/// after `secs` (a stalled daemon never answers): exit code and stdout.
pub fn ctl_at(
    bin: &str,
    name: &str,
    dir: &Path,
    args: &[&str],
    secs: f64,
) -> Option<(i32, String)> {
    let mut c = Command::new(bin)
        .args(args)
        .args(["-n", name, "-c"])
        .arg(dir.join("hastmon.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        match c.try_wait() {
            Ok(Some(st)) => {
                let out = c.wait_with_output().ok()?;
                return Some((
                    st.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                ));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
        }
    }
}
