//! A fault campaign on real daemons: 3 to 5 hastmon daemons, each in its
//! own network namespace on a bridge, driven through faults drawn from a
//! seed (kills of the main process, a worker, the guardian or a whole
//! node; stalls; partitions of every shape; loss; slow, failing and
//! hanging hooks; operator role changes and switchovers; reloads), then
//! checked (tests/chaos/checker.rs): no overlap beyond what hastmon(8)
//! promises, one copy on one primary soon after the last fault healed,
//! status agreeing with the hook log, no flapping, no daemon death nor
//! error line the schedule does not explain.
//!
//! `cargo test --test chaos` runs `CI_SEEDS` (needs root, `ip`, `bridge`
//! and `nft`; otherwise it says why it skips). Outside CI
//! `bench/chaos.sh` drives the ignored `campaign` test with
//! `CHAOS_MINUTES` (random seeds until the time is up), `CHAOS_SEED`
//! (one seed, its timeline printed) or `CHAOS_LOSS` (false failovers
//! under loss), and `CHAOS_JOBS` schedules at a time.

// Network namespaces, veth and nftables are Linux's; on FreeBSD the same
// campaign would need VNET jails (see demo/jails.sh), which it does not
// have yet.
#![cfg(target_os = "linux")]

#[path = "chaos/bed.rs"]
mod bed;
#[path = "chaos/checker.rs"]
mod checker;
#[path = "chaos/nemesis.rs"]
mod nemesis;
#[path = "chaos/run.rs"]
mod run;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nemesis::{Fault, Schedule, Step, schedule};
use run::Outcome;

/// The seeds CI runs: every one must pass.
const CI_SEEDS: &[u64] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
    29, 30, 31, 34, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46,
];

/// Seeds kept out of `CI_SEEDS` because a known defect makes them fail
/// (some runs, not all: it is a race); `CHAOS_SEED=<n>` replays one.
const KNOWN_DEFECT_SEEDS: &[(u64, &str)] = &[
    // The primary cut off alone still runs when the secondary starts
    // (hastmon(8) "Failover time" says it stops first): complaints of
    // two watchdogs count double, and a promoted secondary starts at
    // once, without the `timeout` the promise counted on. See
    // `isolated_primary_overlaps_*`.
    (
        17,
        "isolated primary overlaps (two watchdogs / timeout > 2 hb)",
    ),
    (
        28,
        "isolated primary overlaps (two watchdogs / timeout > 2 hb)",
    ),
    (
        32,
        "isolated primary overlaps (two watchdogs / timeout > 2 hb)",
    ),
    (
        35,
        "isolated primary overlaps (two watchdogs / timeout > 2 hb)",
    ),
    // Two secondaries both promote on the same complaints; the weaker
    // one starts, then yields and stops, and the stronger logs at error
    // level that a secondary is not stopped while it waits.
    (33, "two secondaries promote at once"),
];

/// Heartbeats of calm that count as stable after the last heal.
const QUIET_HB: u32 = 10;

fn skipped() -> bool {
    if let Some(why) = bed::unavailable() {
        println!("chaos: skipped: {why}");
        return true;
    }
    bed::clean_leftovers();
    false
}

fn jobs() -> usize {
    std::env::var("CHAOS_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(6)
}

/// Runs `schedules` with `jobs` at a time; outcomes in the order given.
fn run_all(schedules: Vec<Schedule>, jobs: usize) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let out: Mutex<BTreeMap<usize, Outcome>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(s) = schedules.get(i) else { break };
                    let o = run::run(s, QUIET_HB);
                    report_one(&o);
                    out.lock().unwrap().insert(i, o);
                }
            });
        }
    });
    out.into_inner().unwrap().into_values().collect()
}

fn report_one(o: &Outcome) {
    for k in &o.known {
        eprintln!("chaos: seed {}: {k}", o.seed);
    }
    if o.violations.is_empty() {
        eprintln!("chaos: seed {} ok ({})", o.seed, o.kinds.join(", "));
    } else {
        eprintln!(
            "chaos: seed {} FAILED (replay: CHAOS_SEED={} bench/chaos.sh --seed {})\n{}violations:\n  {}\ntimeline (s from the start):\n{}",
            o.seed,
            o.seed,
            o.seed,
            o.schedule,
            o.violations.join("\n  "),
            o.timeline
        );
    }
}

fn stats(v: &mut [f64]) -> String {
    match checker::median(v) {
        None => "-".into(),
        Some(m) => format!("{:.2} / {m:.2} / {:.2}", v[0], v[v.len() - 1]),
    }
}

/// The campaign's table.
fn table(outs: &[Outcome]) -> String {
    let mut t = String::new();
    let failed: Vec<u64> = outs
        .iter()
        .filter(|o| !o.violations.is_empty())
        .map(|o| o.seed)
        .collect();
    let violations: usize = outs.iter().map(|o| o.violations.len()).sum();
    let known: usize = outs.iter().map(|o| o.known.len()).sum();
    t += &format!(
        "schedules {}   failed {}   violations {}   known-defect hits {known}{}\n",
        outs.len(),
        failed.len(),
        violations,
        if failed.is_empty() {
            String::new()
        } else {
            format!("   failing seeds {failed:?}")
        }
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outs {
        for k in &o.kinds {
            *kinds.entry(k).or_default() += 1;
        }
    }
    t += "faults:";
    for (i, (k, n)) in kinds.iter().enumerate() {
        if i % 6 == 0 {
            t += "\n ";
        }
        t += &format!(" {k} {n}");
    }
    t += "\n";
    let mut by_bound: BTreeMap<String, (f64, usize, String)> = BTreeMap::new();
    for o in outs {
        for ov in &o.overlaps {
            let key = match ov.bound {
                Some(b) => format!("bound {b} s"),
                None => "no bound stated".into(),
            };
            let e = by_bound.entry(key).or_insert((0.0, 0, String::new()));
            e.1 += 1;
            if ov.end - ov.begin > e.0 {
                e.0 = ov.end - ov.begin;
                e.2 = format!("seed {}, {}", o.seed, ov.why);
            }
        }
    }
    if by_bound.is_empty() {
        t += "overlaps: none\n";
    }
    for (k, (max, n, why)) in &by_bound {
        t += &format!("overlaps with {k}: {n}, largest {max:.3} s ({why})\n");
    }
    let mut take: Vec<f64> = outs
        .iter()
        .flat_map(|o| o.takeovers.iter().map(|x| x.0))
        .collect();
    let bound = outs
        .iter()
        .flat_map(|o| o.takeovers.iter().map(|x| x.1))
        .next();
    t += &format!(
        "takeover s (min / median / max): {}   bound 2hb+(cc+1)hb+to+s = {} + s, n {}\n",
        stats(&mut take),
        bound.map_or("-".into(), |b| format!("{b:.2}")),
        take.len()
    );
    let mut conv: Vec<f64> = outs
        .iter()
        .filter_map(|o| o.converged.map(|c| c.0))
        .collect();
    let allowed = outs
        .iter()
        .filter_map(|o| o.converged.map(|c| c.1))
        .fold(0.0, f64::max);
    t += &format!(
        "one copy after the last heal s (min / median / max): {}   allowed up to {allowed:.2}\n",
        stats(&mut conv)
    );
    t
}

fn assert_clean(outs: &[Outcome]) {
    let failed: Vec<u64> = outs
        .iter()
        .filter(|o| !o.violations.is_empty())
        .map(|o| o.seed)
        .collect();
    assert!(
        failed.is_empty(),
        "chaos: failing seeds {failed:?} (timelines above)"
    );
}

#[test]
fn ci_seeds() {
    if skipped() || std::env::var_os("CHAOS_MINUTES").is_some() {
        return;
    }
    let outs = run_all(CI_SEEDS.iter().map(|s| schedule(*s)).collect(), jobs());
    println!("{}", table(&outs));
    assert_clean(&outs);
}

/// A loss run: 3 nodes, `pct` % loss on every link for `secs`, nothing
/// else.
fn loss_schedule(hb_ms: u64, cc: u32, to_ms: u64, pct: u32, secs: f64) -> Schedule {
    let mut s = schedule(0);
    s.cluster.nodes = vec!["a".into(), "b".into(), "w".into()];
    s.cluster.secondaries = 1;
    s.cluster.hb_ms = hb_ms;
    s.cluster.cc = cc;
    s.cluster.timeout_ms = to_ms;
    s.cluster.ci_s = (cc * 4 * hb_ms as u32 / 1000).max(5);
    s.steps = vec![Step {
        at: 0.0,
        dur: secs,
        fault: Fault::Loss(pct),
    }];
    s
}

/// Outside CI: see the header.
#[test]
#[ignore = "long: run by bench/chaos.sh"]
fn campaign() {
    if skipped() {
        return;
    }
    if let Ok(spec) = std::env::var("CHAOS_LOSS") {
        // hb_ms,cc,to_ms,pct,secs;...
        let mut rows = vec![];
        for row in spec.split(';').filter(|r| !r.is_empty()) {
            let f: Vec<f64> = row.split(',').map(|x| x.parse().unwrap()).collect();
            let s = loss_schedule(f[0] as u64, f[1] as u32, f[2] as u64, f[3] as u32, f[4]);
            rows.push((row.to_string(), s));
        }
        let outs = run_all(rows.iter().map(|r| r.1.clone()).collect(), jobs());
        println!(
            "{:<8} {:<4} {:<6} {:<6} {:<8} {:<16} {:<14} {:<10}",
            "hb s",
            "cc",
            "to s",
            "loss",
            "minutes",
            "packets dropped",
            "role changes",
            "violations"
        );
        for ((_, s), o) in rows.iter().zip(&outs) {
            let c = &s.cluster;
            println!(
                "{:<8} {:<4} {:<6} {:<6} {:<8.1} {:<16} {:<14} {:<10}",
                c.hb_ms as f64 / 1000.0,
                c.cc,
                c.timeout_ms as f64 / 1000.0,
                format!(
                    "{}%",
                    match s.steps[0].fault {
                        Fault::Loss(p) => p,
                        _ => 0,
                    }
                ),
                s.steps[0].dur / 60.0,
                o.lost_packets,
                o.role_changes,
                o.violations.len()
            );
        }
        // Role changes are counted, not asserted (the goal is 0); the
        // checker's violations fail the run as everywhere.
        assert_clean(&outs);
        return;
    }
    if let Ok(range) = std::env::var("CHAOS_LIST") {
        // FIRST-LAST: the schedules of those seeds, without running them.
        let (a, b) = range.split_once('-').expect("CHAOS_LIST: FIRST-LAST");
        for seed in a.parse::<u64>().unwrap()..=b.parse().unwrap() {
            let s = schedule(seed);
            let mark = if s.exposes_isolation_defect() {
                " (isolation defect)"
            } else {
                ""
            };
            println!("{s}{mark}");
        }
        return;
    }
    if let Ok(seed) = std::env::var("CHAOS_SEED") {
        // CHAOS_REPEAT copies at once: a race shows under load.
        let s = schedule(seed.parse().expect("CHAOS_SEED: a number"));
        let n = std::env::var("CHAOS_REPEAT").map_or(1, |r| r.parse().unwrap());
        let outs = run_all(vec![s; n], n);
        if let [o] = &outs[..] {
            println!(
                "{}violations:\n  {}\ntimeline (s from the start):\n{}",
                o.schedule,
                o.violations.join("\n  "),
                o.timeline
            );
        }
        println!("{}", table(&outs));
        assert_clean(&outs);
        return;
    }
    let minutes: f64 = std::env::var("CHAOS_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1.0);
    let end = bed::now() + minutes * 60.0;
    let first = bed::now() as u64 * 1000;
    let next = AtomicUsize::new(0);
    let outs: Mutex<Vec<Outcome>> = Mutex::new(vec![]);
    std::thread::scope(|sc| {
        for _ in 0..jobs() {
            sc.spawn(|| {
                while bed::now() < end {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let o = run::run(&schedule(first + i as u64), QUIET_HB);
                    report_one(&o);
                    outs.lock().unwrap().push(o);
                }
            });
        }
    });
    let outs = outs.into_inner().unwrap();
    println!("{}", table(&outs));
    assert_clean(&outs);
}

/// Runs a fixed schedule `runs` times; how many runs had violations, and
/// the outcomes.
fn repeat(s: &Schedule, runs: usize) -> (usize, Vec<Outcome>) {
    let outs = run_all(vec![s.clone(); runs], runs);
    let bad = outs.iter().filter(|o| !o.violations.is_empty()).count();
    println!("{}", table(&outs));
    (bad, outs)
}

fn alone_primary(watchdogs: usize, timeout_ms: u64) -> Schedule {
    nemesis::fixed(
        1_000 + watchdogs as u64,
        1,
        watchdogs,
        timeout_ms,
        vec![Step {
            at: 1.0,
            dur: 5.0,
            fault: Fault::Alone(nemesis::Target::Primary),
        }],
    )
}

/// Known defect: a primary cut off from every other node is still
/// running when the secondary starts, against hastmon(8) "Failover
/// time", because two watchdogs' complaints count double.
#[test]
#[ignore = "known defect: isolated primary overlaps with two watchdogs"]
fn isolated_primary_overlaps_with_two_watchdogs() {
    if skipped() {
        return;
    }
    let (bad, _) = repeat(&alone_primary(2, 300), 3);
    assert_eq!(bad, 0, "the isolated primary overlapped the new one");
}

/// Known defect: the same with one watchdog when `timeout` is above
/// 2·hb: a promoted secondary starts at once (no longer waiting `to` to
/// reach the old primary), so the silence limit `cc·hb + to` comes late.
#[test]
#[ignore = "known defect: isolated primary overlaps when timeout > 2 hb"]
fn isolated_primary_overlaps_when_timeout_exceeds_two_heartbeats() {
    if skipped() {
        return;
    }
    let (bad, _) = repeat(&alone_primary(1, 1000), 3);
    assert_eq!(bad, 0, "the isolated primary overlapped the new one");
}

/// The same fault where hastmon(8)'s promise holds: one watchdog,
/// `timeout` equal to hb. Regression for the two above.
#[test]
fn an_isolated_primary_stops_before_the_secondary_starts() {
    if skipped() {
        return;
    }
    let (bad, outs) = repeat(&alone_primary(1, 300), 3);
    assert_eq!(bad, 0);
    assert!(outs.iter().all(|o| o.takeovers.len() == 1), "no takeover");
}

/// Known defect, seen in CI seeds 7 and 13 and in about one run in
/// twelve of a cut-off primary: the worker forked for a promoted
/// secondary aborts on its first steps with "fatal runtime error: IO
/// Safety violation: owned file descriptor already closed" (signal 6),
/// while a `complain` hook started just before it is ending.
/// Seed 7 found it: a worker forked while a hook's pipe had just closed
/// was handed a stale descriptor list, closed its own channel, and
/// aborted. The shell now lists descriptors at the fork.
#[test]
fn a_promoted_worker_does_not_abort() {
    if skipped() {
        return;
    }
    let (_, outs) = repeat(&alone_primary(1, 300), 12);
    let aborts: Vec<&String> = outs
        .iter()
        .flat_map(|o| &o.known)
        .filter(|k| k.contains("signal=6") || k.contains("signal 6"))
        .collect();
    assert!(aborts.is_empty(), "{aborts:#?}");
}

/// Known defect, seen in CI seeds 13, 15 and 22 under load: the primary
/// cut off alone reaches its silence limit, its worker exits 69, the
/// main process logs "Unable to receive from the worker: Connection
/// reset by peer", and the role goes to init without the `stop` hook:
/// its copy runs on beside the new primary's until someone stops it.
/// A race: twelve runs at once.
/// A primary giving up on silence lost its `stop` when reading its
/// channel failed with ECONNRESET; the shell now reads on, and the node
/// runs `stop` for a primary worker that gave up without one.
#[test]
fn a_primary_giving_up_on_silence_runs_stop() {
    if skipped() {
        return;
    }
    let (_, outs) = repeat(&alone_primary(1, 300), 12);
    let lost: Vec<&String> = outs
        .iter()
        .flat_map(|o| &o.known)
        .filter(|k| k.contains("without a stop"))
        .collect();
    assert!(lost.is_empty(), "{lost:#?}");
}

#[test]
fn ci_seeds_leave_out_the_known_defects() {
    for s in CI_SEEDS {
        assert!(
            !schedule(*s).exposes_isolation_defect(),
            "seed {s} belongs in KNOWN_DEFECT_SEEDS"
        );
    }
    for (s, why) in KNOWN_DEFECT_SEEDS {
        assert!(!CI_SEEDS.contains(s));
        assert_eq!(
            schedule(*s).exposes_isolation_defect(),
            why.starts_with("isolated primary"),
            "seed {s}"
        );
    }
}

#[test]
fn a_seed_gives_the_same_schedule() {
    let a = schedule(17).to_string();
    assert_eq!(a, schedule(17).to_string());
    assert_ne!(a, schedule(18).to_string());
    let l = loss_schedule(100, 2, 1000, 5, 600.0);
    assert_eq!(l.steps.len(), 1);
}
