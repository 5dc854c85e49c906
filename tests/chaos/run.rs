//! Runs one schedule on a fresh test bed and checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use std::path::{Path, PathBuf};

use super::bed::{Bed, RES, ctl_at, now};
use super::checker::{self, Applied, Overlap};
use super::nemesis::{Cluster, Fault, Schedule, Target};

/// A status snapshot of one node (`None`: no answer within the time).
#[derive(Clone, Debug)]
pub struct Snap {
    pub t: f64,
    pub node: String,
    pub role: Option<String>,
    pub state: Option<String>,
}

/// What a run found.
pub struct Outcome {
    pub seed: u64,
    pub schedule: String,
    pub kinds: Vec<&'static str>,
    pub violations: Vec<String>,
    /// Violations a known race explains (`checker::KNOWN_RACES`).
    pub known: Vec<String>,
    pub overlaps: Vec<Overlap>,
    /// Seconds from a fault that took the primary away to the resource
    /// running elsewhere, and the bound of hastmon(8) "Failover time".
    pub takeovers: Vec<(f64, f64)>,
    /// From the last heal to a stable single copy, and its bound.
    pub converged: Option<(f64, f64)>,
    pub timeline: String,
    /// Role changes (`role` hook calls) after the cluster settled: in a
    /// loss run no fault but the loss itself, so none is explained.
    pub role_changes: usize,
    /// Packets the loss faults dropped.
    pub lost_packets: usize,
}

pub fn conf(c: &Cluster, hb_ms: u64) -> String {
    let addr = |i: usize| format!("tcp4://10.77.0.{}:{}", i + 1, super::bed::PORT);
    let mut s = String::from("control uds://@DIR@/ctl\n");
    for (i, n) in c.nodes.iter().enumerate() {
        let _ = writeln!(s, "on {n} {{ listen {} }}", addr(i));
    }
    let _ = writeln!(
        s,
        "resource {RES} {{\n exec @DIR@/hook.sh\n heartbeat_interval {}\n timeout {}\n complaint_count {}\n complaint_interval {}\n hook_timeout {}",
        hb_ms as f64 / 1000.0,
        c.timeout_ms as f64 / 1000.0,
        c.cc,
        c.ci_s,
        c.hook_timeout_s
    );
    let friends: Vec<String> = (1 + c.secondaries..c.nodes.len())
        .map(|i| format!("tcp4://10.77.0.{}", i + 1))
        .collect();
    for (i, n) in c.nodes.iter().enumerate() {
        let role = c.role_of(n);
        let remotes: Vec<String> = if role == "watchdog" {
            (0..=c.secondaries).map(addr).collect()
        } else {
            (0..=c.secondaries).filter(|j| *j != i).map(addr).collect()
        };
        let mut body = format!("remote {} role_on_start {role}", remotes.join(" "));
        if role != "watchdog" {
            let _ = write!(body, " priority {} friends {}", i + 1, friends.join(" "));
        }
        let _ = writeln!(s, " on {n} {{ {body} }}");
    }
    s + "}\n"
}

fn snapshot(bin: &str, dir: &Path, node: &str) -> Snap {
    let t = now();
    let v: Option<Value> = ctl_at(bin, node, dir, &["status", "-j", RES], 1.5)
        .and_then(|(_, out)| serde_json::from_str(&out).ok());
    let r = v.as_ref().map(|v| &v["resources"][0]);
    let s = |k: &str| r.and_then(|r| r[k].as_str()).map(str::to_string);
    Snap {
        t,
        node: node.to_string(),
        role: s("role"),
        state: s("state"),
    }
}

/// Everything a run keeps while it goes.
struct Ctx<'a> {
    bed: Mutex<Bed>,
    bin: String,
    dirs: Vec<(String, PathBuf)>,
    cluster: &'a Cluster,
    snaps: Mutex<Vec<Snap>>,
    events: Mutex<Vec<(f64, String)>>,
    stop: AtomicBool,
    lost: std::sync::atomic::AtomicUsize,
}

impl Ctx<'_> {
    fn note(&self, what: String) {
        self.events.lock().unwrap().push((now(), what));
    }

    fn last_role(&self, node: &str) -> Option<String> {
        let snaps = self.snaps.lock().unwrap();
        snaps
            .iter()
            .rev()
            .find(|s| s.node == node && s.role.is_some())
            .and_then(|s| s.role.clone())
    }

    /// The node that is primary now, asked directly.
    fn ctl(&self, n: &str, args: &[&str]) -> Option<(i32, String)> {
        let dir = &self.dirs.iter().find(|(m, _)| m == n).unwrap().1;
        ctl_at(&self.bin, n, dir, args, 5.0)
    }

    fn snap(&self, n: &str) -> Snap {
        let dir = &self.dirs.iter().find(|(m, _)| m == n).unwrap().1;
        snapshot(&self.bin, dir, n)
    }

    fn primary(&self) -> Option<String> {
        let mut found = None;
        for n in &self.cluster.nodes {
            let s = self.snap(n);
            let n = n.clone();
            if s.role.as_deref() == Some("primary") {
                if s.state.as_deref() == Some("run") {
                    return Some(n);
                }
                found.get_or_insert(n);
            }
        }
        found
    }

    fn resolve(&self, t: &Target) -> String {
        let c = self.cluster;
        match t {
            Target::Primary => self.primary().unwrap_or_else(|| c.nodes[0].clone()),
            Target::Secondary(i) => c.nodes[1 + i].clone(),
            Target::Watchdog => c.watchdogs()[0].clone(),
            Target::Node(n) => n.clone(),
        }
    }

    fn sleep_until(&self, t: f64) {
        let d = t - now();
        if d > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(d));
        }
    }
}

/// The nodes on the other side of `alone` (everyone else).
fn cut(c: &Cluster, side: &[String]) -> BTreeSet<(String, String)> {
    let mut b = BTreeSet::new();
    for x in side {
        for y in &c.nodes {
            if !side.contains(y) {
                b.insert((x.clone(), y.clone()));
                b.insert((y.clone(), x.clone()));
            }
        }
    }
    b
}

/// Carries out one fault until its end; what it was.
fn apply(ctx: &Ctx<'_>, fault: &Fault, begin: f64, dur: f64) -> Applied {
    let c = ctx.cluster;
    let primary = ctx.primary();
    let mut nodes = vec![];
    let mut cuts_primary_only = false;
    let end_at = begin + dur;
    let role = |n: &str, r: &str| {
        let res = ctx.ctl(n, &["role", r, RES]);
        ctx.note(format!("hastmonctl role {r} on {n}: {res:?}"));
    };
    match fault {
        Fault::KillMain(t) | Fault::Crash(t) => {
            let n = ctx.resolve(t);
            nodes.push(n.clone());
            {
                let mut bed = ctx.bed.lock().unwrap();
                if matches!(fault, Fault::Crash(_)) {
                    bed.crash(&n);
                } else {
                    bed.signal_main(&n, Signal::SIGKILL);
                }
            }
            ctx.note(format!("{fault}: {n} killed"));
            ctx.sleep_until(end_at);
            let mut bed = ctx.bed.lock().unwrap();
            // A main process killed alone leaves its guardian to stop
            // the resource; wait for it, as an rc script would find the
            // pidfile unlocked only then.
            for _ in 0..200 {
                if bed.children(&n).is_empty()
                    && super::bed::procs_in(&bed.node(&n).ns)
                        .iter()
                        .all(|p| !p.cmdline.starts_with("hastmon"))
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            bed.reap();
            if matches!(fault, Fault::Crash(_)) {
                bed.link_up(&n);
            }
            bed.start(&n);
            drop(bed);
            ctx.note(format!("{n} started again"));
        }
        Fault::KillWorker(t) | Fault::KillGuardian(t) => {
            let n = ctx.resolve(t);
            nodes.push(n.clone());
            let bed = ctx.bed.lock().unwrap();
            let want = if matches!(fault, Fault::KillGuardian(_)) {
                "hastmon: guardian"
            } else {
                "hastmon: www"
            };
            let victims: Vec<i32> = bed
                .children(&n)
                .into_iter()
                .filter(|p| p.cmdline.starts_with(want))
                .map(|p| p.pid)
                .collect();
            for p in &victims {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), Signal::SIGKILL);
            }
            drop(bed);
            ctx.note(format!("{fault}: {n} pids {victims:?}"));
        }
        Fault::Stall(t) => {
            let n = ctx.resolve(t);
            nodes.push(n.clone());
            ctx.bed.lock().unwrap().signal_all(&n, Signal::SIGSTOP);
            ctx.note(format!("{fault}: {n} stopped"));
            ctx.sleep_until(end_at);
            ctx.bed.lock().unwrap().signal_all(&n, Signal::SIGCONT);
        }
        Fault::Isolate(t) => {
            let n = ctx.resolve(t);
            nodes.push(n.clone());
            cuts_primary_only = primary.as_ref() == Some(&n);
            ctx.bed.lock().unwrap().port_state(&n, false);
            ctx.note(format!("{fault}: {n} cut off"));
            ctx.sleep_until(end_at);
            ctx.bed.lock().unwrap().port_state(&n, true);
        }
        Fault::OneWay(..) | Fault::Alone(_) | Fault::Bridge(_) | Fault::Loss(_) => {
            let mut blocked = BTreeSet::new();
            let mut loss = 0;
            match fault {
                Fault::OneWay(a, b) => {
                    let (a, b) = (ctx.resolve(a), ctx.resolve(b));
                    nodes = vec![a.clone(), b.clone()];
                    if a != b {
                        blocked.insert((a, b));
                    }
                }
                Fault::Alone(t) => {
                    let n = ctx.resolve(t);
                    cuts_primary_only = primary.as_ref() == Some(&n);
                    nodes.push(n.clone());
                    blocked = cut(c, &[n]);
                }
                Fault::Bridge(t) => {
                    // The bridge node sees both sides: the primary with
                    // nobody else on one, the rest on the other.
                    let b = ctx.resolve(t);
                    let p = primary.clone().unwrap_or_else(|| c.nodes[0].clone());
                    nodes = vec![b.clone(), p.clone()];
                    if b != p {
                        for y in &c.nodes {
                            if *y != b && *y != p {
                                blocked.insert((p.clone(), y.clone()));
                                blocked.insert((y.clone(), p.clone()));
                            }
                        }
                    }
                }
                Fault::Loss(pct) => loss = *pct,
                _ => unreachable!(),
            }
            ctx.bed.lock().unwrap().set_filters(&blocked, loss);
            ctx.note(format!("{fault}: nodes {nodes:?} blocked {blocked:?}"));
            ctx.sleep_until(end_at);
            let bed = ctx.bed.lock().unwrap();
            let lost = bed.lost_packets();
            bed.set_filters(&BTreeSet::new(), 0);
            drop(bed);
            ctx.lost.fetch_add(lost as usize, Ordering::SeqCst);
            ctx.note(format!("{fault}: {lost} packets dropped"));
        }
        Fault::Hook(t, ev, kind) => {
            let n = ctx.resolve(t);
            nodes.push(n.clone());
            // Slow events stay under hook_timeout; hanging ones do not.
            let content = if *kind == "slow" { "1.5" } else { "" };
            ctx.bed
                .lock()
                .unwrap()
                .hook_flag(&n, ev, kind, Some(content));
            ctx.note(format!("{fault}: flag set on {n}"));
            ctx.sleep_until(end_at);
            ctx.bed.lock().unwrap().hook_flag(&n, ev, kind, None);
        }
        Fault::Switchover(t) => {
            let to = ctx.resolve(t);
            if let Some(p) = primary.clone().filter(|p| *p != to) {
                nodes = vec![p.clone(), to.clone()];
                role(&p, "init");
                // Planned: the new primary only once the old one stopped.
                let deadline = now() + 10.0;
                while ctx.bed.lock().unwrap().running(&p) && now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                role(&to, "primary");
                role(&p, "secondary");
            } else {
                ctx.note(format!("{fault}: no other primary to move from"));
            }
            ctx.sleep_until(end_at);
        }
        Fault::Role(t, r) => {
            let n = ctx.resolve(t);
            nodes.push(n.clone());
            role(&n, r);
            ctx.sleep_until(end_at);
            if ctx.last_role(&n).as_deref() == Some("init") || *r == "init" {
                role(&n, c.role_of(&n));
            }
        }
        Fault::Reload(ms) => {
            reload(ctx, *ms);
            ctx.sleep_until(end_at);
            reload(ctx, c.hb_ms);
        }
    }
    Applied {
        fault: fault.clone(),
        begin,
        end: now(),
        nodes,
        primary,
        cuts_primary_only,
    }
}

fn reload(ctx: &Ctx<'_>, hb_ms: u64) {
    let bed = ctx.bed.lock().unwrap();
    let text = conf(ctx.cluster, hb_ms);
    for n in &ctx.cluster.nodes {
        bed.write_conf(n, &text);
        bed.signal_main(n, Signal::SIGHUP);
    }
    drop(bed);
    ctx.note(format!(
        "SIGHUP to every node, heartbeat_interval {} ms",
        hb_ms
    ));
}

/// Runs schedule `s` on a bed of its own (runs of one process are
/// numbered, so that tests running at once never share a name).
pub fn run(s: &Schedule, quiet_hb: u32) -> Outcome {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = RUNS.fetch_add(1, Ordering::SeqCst);
    let c = &s.cluster;
    let names: Vec<&str> = c.nodes.iter().map(String::as_str).collect();
    let mut bed = Bed::new(
        id,
        &names,
        env!("CARGO_BIN_EXE_hastmon"),
        env!("CARGO_BIN_EXE_hastmonctl"),
    );
    let text = conf(c, c.hb_ms);
    for n in &names {
        bed.write_conf(n, &text);
    }
    for n in &names {
        bed.start(n);
    }
    let dirs = bed
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.dir.clone()))
        .collect();
    let ctx = Ctx {
        bed: Mutex::new(bed),
        bin: env!("CARGO_BIN_EXE_hastmonctl").to_string(),
        dirs,
        cluster: c,
        snaps: Mutex::new(vec![]),
        events: Mutex::new(vec![]),
        stop: AtomicBool::new(false),
        lost: std::sync::atomic::AtomicUsize::new(0),
    };
    let hb = c.hb_ms as f64 / 1000.0;
    let mut violations = vec![];
    let mut applied: Vec<Applied> = vec![];
    let mut converged = None;
    let bound = c.takeover_bound();
    // Hooks run up to 1.5 s when slow, hook_timeout + 5 s when hanging.
    let hook_allow = f64::from(c.hook_timeout_s) + 5.0;
    let t_start = now();
    let mut settled_at = f64::INFINITY;
    std::thread::scope(|sc| {
        sc.spawn(|| {
            while !ctx.stop.load(Ordering::Relaxed) {
                for n in &c.nodes {
                    let s = ctx.snap(n);
                    ctx.snaps.lock().unwrap().push(s);
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        // Settled: the first node runs it and every other node knows its
        // role; then a few heartbeats for the watchdogs to see it.
        let deadline = now() + 20.0;
        let settled = loop {
            let ok = ctx.bed.lock().unwrap().running(&c.nodes[0])
                && c.nodes
                    .iter()
                    .all(|n| ctx.last_role(n).as_deref() == Some(c.role_of(n)));
            if ok || now() > deadline {
                break ok;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !settled {
            violations.push("the cluster did not settle within 20 s of its start".into());
        } else {
            std::thread::sleep(Duration::from_secs_f64(5.0 * hb));
            let t0 = now();
            settled_at = t0;
            ctx.note(format!("settled after {:.2} s; faults begin", t0 - t_start));
            for step in &s.steps {
                ctx.sleep_until(t0 + step.at);
                let begin = now();
                ctx.note(format!("BEGIN {}", step.fault));
                let a = apply(&ctx, &step.fault, begin, step.dur);
                ctx.note(format!("END {} (hit {:?})", step.fault, a.nodes));
                applied.push(a);
            }
            // Operator repair: a node left in init (a primary that gave
            // up) goes back on standby, as an operator would put it.
            for n in &c.nodes {
                if ctx.last_role(n).as_deref() == Some("init") {
                    let r = if c.role_of(n) == "watchdog" {
                        "watchdog"
                    } else {
                        "secondary"
                    };
                    let res = ctx.ctl(n, &["role", r, RES]);
                    ctx.note(format!("repair: hastmonctl role {r} on {n}: {res:?}"));
                }
            }
            let healed = now();
            ctx.note("HEALED".into());
            let hanging = applied
                .last()
                .is_some_and(|a| a.fault.kind().ends_with("hang"));
            let allowed = 1.5 * bound + 1.0 + if hanging { hook_allow } else { 0.0 };
            // Stable: one copy, its node primary/run, no other primary,
            // for `quiet_hb` heartbeats with no up/down in the log.
            let quiet = f64::from(quiet_hb) * hb;
            let give_up = healed + allowed + quiet + 20.0;
            let mut since: Option<f64> = None;
            loop {
                let t = now();
                let (log, running): (Vec<checker::Entry>, Vec<String>) = {
                    let bed = ctx.bed.lock().unwrap();
                    let log = checker::parse_log(&bed.hook_log());
                    let running = c.nodes.iter().filter(|n| bed.running(n)).cloned().collect();
                    (log, running)
                };
                let primaries: Vec<String> = c
                    .nodes
                    .iter()
                    .filter(|n| ctx.last_role(n).as_deref() == Some("primary"))
                    .cloned()
                    .collect();
                let last_change = log
                    .iter()
                    .rev()
                    .find(|e| e.what == "up" || e.what == "down")
                    .map_or(healed, |e| e.t.max(healed));
                let one = running.len() == 1 && primaries == running;
                if one {
                    let s0 = *since.get_or_insert(last_change);
                    if t - s0 >= quiet && t - last_change >= quiet {
                        converged = Some((s0 - healed, allowed));
                        break;
                    }
                } else {
                    since = None;
                }
                if t > give_up {
                    violations.push(format!(
                        "{:.1} s after the last fault healed the resource does not run on exactly one primary: running on {running:?}, primaries {primaries:?}",
                        t - healed
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some((t, allowed)) = converged
                && t > allowed
            {
                violations.push(format!(
                        "one copy only {t:.2} s after the last fault healed; hastmon(8) Failover time gives about {bound:.2} s + hooks (allowed {allowed:.2} s)"
                    ));
            }
        }
        ctx.stop.store(true, Ordering::Relaxed);
    });
    let t_end = now();
    let lost_packets = ctx.lost.load(Ordering::SeqCst);
    let mut bed = ctx.bed.into_inner().unwrap();
    let snaps = ctx.snaps.into_inner().unwrap();
    let events = ctx.events.into_inner().unwrap();
    let log = checker::parse_log(&bed.hook_log());

    // Final agreement: every node's status against the hook log.
    let iv = checker::intervals(&log, t_end);
    for n in &c.nodes {
        let s = snapshot(&bed.hastmonctl, &bed.node(n).dir, n);
        let up_in_log = iv
            .get(n)
            .and_then(|v| v.last())
            .is_some_and(|(_, e)| *e >= t_end);
        let says_run = s.role.as_deref() == Some("primary") && s.state.as_deref() == Some("run");
        if s.role.is_none() {
            violations.push(format!("{n}: no status answer at the end"));
        } else if says_run != up_in_log || up_in_log != bed.running(n) {
            violations.push(format!(
                "{n}: status says {}/{} but the hook log says the resource is {}",
                s.role.unwrap_or_default(),
                s.state.unwrap_or_default(),
                if up_in_log { "up" } else { "down" }
            ));
        }
    }

    // Overlaps, against what hastmon(8) promises for them.
    let grace = |f: &Fault| {
        1.5 * bound
            + 1.0
            + if matches!(f, Fault::Hook(..)) {
                hook_allow
            } else {
                0.0
            }
    };
    let overlaps: Vec<Overlap> = checker::overlaps(&iv)
        .into_iter()
        .map(|(b, e, nodes)| {
            let (bound, why) = checker::classify(b, &applied, grace);
            Overlap {
                begin: b,
                end: e,
                nodes,
                bound,
                why,
            }
        })
        .collect();
    for o in &overlaps {
        if let Some(b) = o.bound
            && o.end - o.begin > b
        {
            violations.push(format!(
                "{:?} ran the resource together for {:.3} s from {:.3}; bound {b} s ({})",
                o.nodes,
                o.end - o.begin,
                o.begin - t_start,
                o.why
            ));
        }
    }

    // Flapping: a node starting it 3 times within 10 heartbeats.
    if let Some(f) = checker::flapping(&log, 10.0 * hb, 2) {
        violations.push(format!("flapping: {f}"));
    }

    // A node that leaves the primary role while its copy runs must have
    // run `stop` (hastmon(8): every way out of primary runs it), by the
    // time a slow one would have ended.
    for e in log
        .iter()
        .filter(|e| e.what == "call" && e.rest.starts_with("role www primary "))
    {
        let Some((up, _)) = iv
            .get(&e.node)
            .and_then(|v| v.iter().find(|(b, d)| *b <= e.t && e.t < *d).copied())
        else {
            continue;
        };
        let stopped = log.iter().any(|x| {
            x.node == e.node
                && x.what == "call"
                && x.rest.starts_with("stop")
                && x.t >= up
                && x.t <= e.t + hook_allow
        });
        if !stopped {
            violations.push(format!(
                "{} left the primary role at {:.3} ({}) while running the resource, without a stop",
                e.node,
                e.t - t_start,
                e.rest
            ));
        }
    }

    // Deaths: a daemon ended only where the schedule killed it.
    bed.reap();
    for n in &bed.nodes {
        let killed = applied
            .iter()
            .filter(|a| {
                matches!(a.fault, Fault::KillMain(_) | Fault::Crash(_)) && a.nodes.contains(&n.name)
            })
            .count();
        if n.child.is_none() || n.ended.len() > killed {
            violations.push(format!(
                "{}: daemon ended {} times ({:?}), killed {killed} times, alive at the end: {}",
                n.name,
                n.ended.len(),
                n.ended,
                n.child.is_some()
            ));
        }
    }

    // Error lines the schedule does not explain.
    let kinds: Vec<&'static str> = applied.iter().map(|a| a.fault.kind()).collect();
    let mut errors = String::new();
    for n in &c.nodes {
        for l in bed.daemon_log(n).lines() {
            if l.starts_with("[ERROR]") || l.starts_with("[CRIT]") || l.starts_with("[ALERT]") {
                let _ = writeln!(errors, "  {n}: {l}");
                if !checker::explains(l, &kinds, !overlaps.is_empty()) {
                    violations.push(format!("{n}: unexplained: {l}"));
                }
            }
        }
    }

    // Takeover times: from a fault that took the primary away to the
    // resource running on another node.
    let mut takeovers = vec![];
    for a in &applied {
        let takes_primary = matches!(
            a.fault,
            Fault::KillMain(_) | Fault::Crash(_) | Fault::Isolate(_) | Fault::Alone(_)
        ) && a.primary.is_some()
            && a.nodes.first() == a.primary.as_ref();
        if !takes_primary {
            continue;
        }
        let p = a.primary.as_ref().unwrap();
        if let Some(e) = log
            .iter()
            .find(|e| e.t > a.begin && e.t <= a.end && e.what == "up" && &e.node != p)
        {
            takeovers.push((e.t - a.begin, bound));
        }
    }

    let role_changes = log
        .iter()
        .filter(|e| e.what == "call" && e.rest.starts_with("role ") && e.t > settled_at)
        .count();

    // The timeline: the nemesis, role/start/stop hooks, up/down, and role
    // changes seen in the snapshots.
    let mut tl: Vec<(f64, String)> = events.clone();
    for e in &log {
        let keep = match e.what.as_str() {
            "up" | "down" => true,
            "call" => !e.rest.starts_with("status"),
            "done" => {
                !e.rest.starts_with("status") || !e.rest.ends_with(" 0") && !e.rest.ends_with(" 1")
            }
            _ => false,
        };
        if keep {
            tl.push((e.t, format!("{} hook {} {}", e.node, e.what, e.rest)));
        }
    }
    let mut last: BTreeMap<&str, (Option<&str>, Option<&str>)> = BTreeMap::new();
    for sn in &snaps {
        let cur = (sn.role.as_deref(), sn.state.as_deref());
        if last.get(sn.node.as_str()) != Some(&cur) {
            last.insert(&sn.node, cur);
            tl.push((
                sn.t,
                format!(
                    "{} status {}/{}",
                    sn.node,
                    cur.0.unwrap_or("(no answer)"),
                    cur.1.unwrap_or("-")
                ),
            ));
        }
    }
    tl.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut timeline = String::new();
    for (t, what) in tl {
        let _ = writeln!(timeline, "  {:8.3} {what}", t - t_start);
    }
    if !errors.is_empty() {
        timeline += "error lines:\n";
        timeline += &errors;
    }
    for o in &overlaps {
        let _ = writeln!(
            timeline,
            "overlap {:?} {:.3}..{:.3} ({:.3} s), bound {}: {}",
            o.nodes,
            o.begin - t_start,
            o.end - t_start,
            o.end - o.begin,
            o.bound.map_or("none stated".into(), |b| format!("{b} s")),
            o.why
        );
    }
    // A known race takes the whole run with it: what follows from it
    // (an overlap, no single copy at the end) is its consequence.
    let race = violations.iter().find_map(|v| checker::known_race(v));
    let (known, violations): (Vec<String>, Vec<String>) = match race {
        Some(why) => (
            violations
                .into_iter()
                .map(|v| format!("{v} [known defect: {why}]"))
                .collect(),
            vec![],
        ),
        None => (vec![], violations),
    };
    if !violations.is_empty() || !known.is_empty() {
        let kept = bed.keep_dir();
        let _ = writeln!(timeline, "logs kept in {}", kept.display());
    }
    drop(bed);
    Outcome {
        seed: s.seed,
        schedule: s.to_string(),
        kinds,
        violations,
        known,
        overlaps,
        takeovers,
        converged,
        timeline,
        role_changes,
        lost_packets,
    }
}
