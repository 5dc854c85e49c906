//! The checker: reads the shared hook log (where the resource ran when),
//! the status snapshots and the daemons' logs, against the schedule.

use std::collections::BTreeMap;

use super::nemesis::Fault;

/// One line of the hook log.
#[derive(Clone, Debug)]
pub struct Entry {
    pub t: f64,
    pub node: String,
    /// `call`, `done`, `up` or `down`.
    pub what: String,
    /// The rest: `EVENT ARGS` of a call, `EVENT RC` of a done.
    pub rest: String,
}

pub fn parse_log(text: &str) -> Vec<Entry> {
    let mut v: Vec<Entry> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            Some(Entry {
                t: it.next()?.parse().ok()?,
                node: it.next()?.to_string(),
                what: it.next()?.to_string(),
                rest: it.next().unwrap_or("").to_string(),
            })
        })
        .collect();
    v.sort_by(|a, b| a.t.total_cmp(&b.t));
    v
}

/// A fault as it was carried out: when, on whom, and what it did to the
/// primary of the time.
#[derive(Clone, Debug)]
pub struct Applied {
    pub fault: Fault,
    pub begin: f64,
    pub end: f64,
    /// The nodes it hit, resolved.
    pub nodes: Vec<String>,
    /// The node that was primary when it began.
    pub primary: Option<String>,
    /// It cut the primary of the time from every other node and did
    /// nothing else: the case hastmon(8) "Network silence" and "Failover
    /// time" promise no overlap for (with equal settings and a quick
    /// `stop`).
    pub cuts_primary_only: bool,
}

/// Two or more nodes running the resource at once.
#[derive(Clone, Debug)]
pub struct Overlap {
    pub begin: f64,
    pub end: f64,
    pub nodes: Vec<String>,
    /// What hastmon(8) promises for it: `Some(0.0)` when it promises none
    /// at all, `None` when it states no bound.
    pub bound: Option<f64>,
    pub why: String,
}

/// Where the resource ran: per node, its up intervals (an open one ends
/// at `end`).
pub fn intervals(log: &[Entry], end: f64) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut open: BTreeMap<String, f64> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for e in log {
        match e.what.as_str() {
            "up" => {
                open.entry(e.node.clone()).or_insert(e.t);
            }
            "down" => {
                if let Some(b) = open.remove(&e.node) {
                    out.entry(e.node.clone()).or_default().push((b, e.t));
                }
            }
            _ => {}
        }
    }
    for (n, b) in open {
        out.entry(n).or_default().push((b, end));
    }
    out
}

/// The stretches where two or more nodes ran it.
pub fn overlaps(iv: &BTreeMap<String, Vec<(f64, f64)>>) -> Vec<(f64, f64, Vec<String>)> {
    let mut edges: Vec<(f64, i32, String)> = vec![];
    for (n, v) in iv {
        for (b, e) in v {
            edges.push((*b, 1, n.clone()));
            edges.push((*e, -1, n.clone()));
        }
    }
    // Ends before begins at the same instant: touching is not overlapping.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut up: Vec<String> = vec![];
    let mut out = vec![];
    let mut begin = 0.0;
    let mut who: Vec<String> = vec![];
    for (t, d, n) in edges {
        if d > 0 {
            up.push(n);
            if up.len() == 2 {
                begin = t;
                who = up.clone();
            } else if up.len() > 2 {
                who = up.clone();
            }
        } else {
            if let Some(i) = up.iter().position(|x| *x == n) {
                up.remove(i);
            }
            if up.len() == 1 && t > begin {
                out.push((begin, t, std::mem::take(&mut who)));
            }
        }
    }
    out
}

/// Classifies an overlap that began at `t` by the faults in effect then:
/// a fault is in effect from its beginning until `grace(fault)` after its
/// end (the time the cluster needs to recover from it).
pub fn classify(
    t: f64,
    applied: &[Applied],
    grace: impl Fn(&Fault) -> f64,
) -> (Option<f64>, String) {
    let active: Vec<&Applied> = applied
        .iter()
        .filter(|a| a.begin <= t && t <= a.end + grace(&a.fault))
        .collect();
    if active.is_empty() {
        return (
            Some(0.0),
            "no fault in effect: hastmon(8) keeps the resource on exactly one node".into(),
        );
    }
    let names: Vec<String> = active.iter().map(|a| a.fault.to_string()).collect();
    if active.iter().all(|a| a.cuts_primary_only) {
        return (
            Some(0.0),
            format!(
                "primary cut off ({}): hastmon(8) Failover time says its copy stops before the secondary can start",
                names.join(", ")
            ),
        );
    }
    (None, format!("during {}", names.join(", ")))
}

/// An error-level log line, and the fault kinds that explain it.
pub fn explains(line: &str, kinds: &[&str], overlapped: bool) -> bool {
    let any = |ks: &[&str]| kinds.iter().any(|k| ks.contains(k));
    let cut = [
        "kill-main",
        "crash-node",
        "stall",
        "isolate",
        "one-way",
        "alone",
        "bridge-node",
        "loss",
        "reload",
        "kill-worker",
    ];
    let failover: Vec<&str> = cut
        .iter()
        .copied()
        .chain([
            "switchover",
            "role",
            "hook-start-fail",
            "hook-start-hang",
            "hook-status-fail",
            "hook-status-hang",
            "hook-status-slow",
            "hook-stop-hang",
            "hook-stop-slow",
            "hook-stop-fail",
        ])
        .collect();
    if line.contains("Network silence limit")
        || line.contains("exitcode=69")
        || line.contains("exitcode=68")
    {
        return any(&cut);
    }
    if line.contains("Primary with higher priority exists")
        || line.contains("Stronger primary")
        || line.contains("exitcode=77")
        || line.contains("exitcode=75")
        // A secondary's worker that ended as its primary went silent may
        // still be sent a complaint notice (logged, not harmful).
        || line.contains("Unable to send to the worker")
    {
        return any(&failover);
    }
    if line.contains("Unable to start service after") {
        return any(&[
            "hook-start-fail",
            "hook-start-hang",
            "hook-status-fail",
            "hook-status-hang",
        ]);
    }
    if line.contains("is not STOPPED") {
        return overlapped || any(&["hook-stop-fail", "hook-stop-hang", "hook-stop-slow"]);
    }
    if line.contains("Hook timed out") {
        return any(&["hook-start-hang", "hook-stop-hang", "hook-status-hang"]);
    }
    if line.contains("Worker process killed") && line.contains("signal=9")
        || line.contains("Worker process ended")
    {
        // The main process also kills a worker it could not send to,
        // which a secondary's worker ending on its own may be.
        return any(&["kill-worker", "crash-node", "kill-main", "stall"]) || any(&failover);
    }
    if line.contains("The main process is gone") || line.contains("The main process died") {
        return any(&["kill-main", "crash-node"]);
    }

    if line.contains("The guardian exited") {
        return any(&["kill-guardian"]);
    }
    false
}

/// Start/stop flapping: more than `max` `up` records of one node within
/// any `window` seconds.
pub fn flapping(log: &[Entry], window: f64, max: usize) -> Option<String> {
    let mut ups: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for e in log.iter().filter(|e| e.what == "up") {
        ups.entry(&e.node).or_default().push(e.t);
    }
    for (n, ts) in ups {
        for w in ts.windows(max + 1) {
            if w[max] - w[0] <= window {
                return Some(format!(
                    "{n} started the resource {} times within {:.1} s",
                    max + 1,
                    w[max] - w[0]
                ));
            }
        }
    }
    None
}

pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Violations that a known defect causes at random, in any schedule (a
/// race, not a seed): reported apart and not failing the run until the
/// defect is fixed. Each names its regression test.
pub const KNOWN_RACES: &[(&str, &str)] = &[];

/// The known race behind violation `v`, if any.
pub fn known_race(v: &str) -> Option<&'static str> {
    KNOWN_RACES
        .iter()
        .find(|(sig, _)| v.contains(sig))
        .map(|(_, why)| *why)
}
