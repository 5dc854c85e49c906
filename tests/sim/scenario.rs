//! The kinds of run, each a cluster and a schedule of faults drawn from
//! the seed, and what each expects beyond the invariants of every run.

use hastmon::types::Role;

use super::check::Bounds;
use super::faults::{On, Then};
use super::hooks::HookKind;
use super::rng::Rng;
use super::world::{NodeSpec, Params, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    CrashPrimary,
    IsolatePrimary,
    Random,
    TwoNodes,
    EqualPrimaries,
    MainCrash,
    MainCrashMidHook,
    Stall,
    OldComplaints,
}

/// The default run takes seed `n` as kind `KINDS[n % KINDS.len()]`.
pub const KINDS: [Kind; 9] = ALL;

/// Every kind.
pub const ALL: [Kind; 9] = [
    Kind::CrashPrimary,
    Kind::IsolatePrimary,
    Kind::Random,
    Kind::TwoNodes,
    Kind::EqualPrimaries,
    Kind::MainCrash,
    Kind::Stall,
    Kind::OldComplaints,
    Kind::MainCrashMidHook,
];

impl Kind {
    /// The name `SIM_SCENARIO` takes; a quirk's kind is named after it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::CrashPrimary => "crash_primary",
            Kind::IsolatePrimary => "isolate_primary",
            Kind::Random => "random",
            Kind::TwoNodes => "two_nodes",
            Kind::EqualPrimaries => "q14_equal_priorities",
            Kind::MainCrash => "q10_main_process_crash",
            Kind::MainCrashMidHook => "q10_main_process_crash_mid_hook",
            Kind::Stall => "q21_q27_stalled_peer",
            Kind::OldComplaints => "q11_old_complaints",
        }
    }

    pub fn of_name(name: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn of_seed(seed: u64) -> Kind {
        KINDS[(seed % KINDS.len() as u64) as usize]
    }
}

/// What a run expects besides the invariants every run keeps.
#[derive(Debug, Default)]
pub struct Plan {
    pub end: u64,
    /// Overlaps are held to the overlap bound wherever they begin, not
    /// only after every fault healed.
    pub strict_overlap: bool,
    /// Overlaps that begin after node 0's main process died and before
    /// this time are held to the bound of a crashed main process.
    pub main_crash_until: Option<u64>,
    /// Node 1 runs the resource within the takeover bound once node 0's
    /// daemon went away (host crash, death, stall) and stays away.
    pub takeover: bool,
    /// The node that stalls: nobody may wait on it.
    pub stalled: Option<usize>,
    /// Two primaries of equal rank: from the given time on exactly one is
    /// primary, the given node; at most one of them ever steps down.
    pub equal: Option<(usize, u64)>,
    /// No watchdog: the secondary never promotes.
    pub two_nodes: bool,
}

fn params(rng: &mut Rng, kind: Kind) -> Params {
    let hb = 1_000;
    let cc = rng.range(1, 3) as u32;
    let to = rng.range(200, 500);
    let calm = matches!(
        kind,
        Kind::CrashPrimary | Kind::EqualPrimaries | Kind::MainCrash | Kind::MainCrashMidHook
    );
    Params {
        hb,
        to,
        cc,
        ci: rng.range(u64::from(cc) * hb + 500, (u64::from(cc) + 2) * hb + 500),
        attempts: 5,
        hs_timeout: 4 * to,
        hook_timeout: rng.range(100, 250),
        lat_min: 1,
        lat_max: rng.range(2, 20),
        spike_max: 100,
        spike_per_mille: rng.range(0, 30),
        loss_per_mille: if matches!(kind, Kind::Random | Kind::TwoNodes) {
            rng.range(0, 20)
        } else {
            0
        },
        // Deaths mid-hook need hooks in progress when they strike.
        slow_per_mille: if kind == Kind::MainCrashMidHook {
            rng.range(100, 200)
        } else {
            rng.range(0, 50)
        },
        // Deaths mid-hook strike a primary's hooks: they must not make it
        // give up first.
        overrun: kind != Kind::MainCrashMidHook,
        start_fail_per_mille: if calm { 0 } else { rng.range(0, 50) },
    }
}

fn node(name: &'static str, priority: i32, role_on_start: Role) -> NodeSpec {
    NodeSpec {
        name,
        priority,
        role_on_start,
        start_at: 0,
    }
}

fn trio() -> Vec<NodeSpec> {
    vec![
        node("10.0.0.1", 1, Role::Primary),
        node("10.0.0.2", 2, Role::Secondary),
        node("10.0.0.3", 3, Role::Watchdog),
    ]
}

/// Cuts node 0 off from `peers`: both ways, or one way only.
fn isolate(w: &mut World, rng: &mut Rng, peers: &[usize], at: u64, until: u64) {
    let (cut_out, cut_in) = *rng.pick(&[(true, true), (true, false), (false, true)]);
    for &peer in peers {
        for (from, to, cut) in [(0, peer, cut_out), (peer, 0, cut_in)] {
            if cut {
                w.cut(from, to, at, Some(until));
            }
        }
    }
}

pub fn build(seed: u64, kind: Kind, trace: bool) -> (World, Plan, Bounds) {
    let mut rng = Rng::new(seed);
    let p = params(&mut rng, kind);
    let b = Bounds::of(&p);
    let hb = p.hb;
    let mut specs = trio();
    match kind {
        Kind::TwoNodes => specs.truncate(2),
        Kind::EqualPrimaries => {
            // Equal ranks, sometimes 0 (which 0.3.4 did not recognise),
            // sometimes a rank of 0 against 1; the second may start late.
            let (a, c) = *rng.pick(&[(1, 1), (0, 0), (7, 7), (0, 1), (1, 0)]);
            specs[0].priority = a;
            specs[1].priority = c;
            specs[1].role_on_start = Role::Primary;
            if rng.chance(500) {
                specs[1].start_at = rng.range(1, 3 * hb);
            }
        }
        Kind::OldComplaints if rng.chance(400) => {
            // The watchdog complains before the primary is up (start-up).
            specs[0].start_at = rng.range(hb / 2, u64::from(p.cc) * hb + hb / 2);
        }
        _ => {}
    }
    let equal = (kind == Kind::EqualPrimaries).then(|| {
        let winner = if (specs[0].priority, specs[0].name) < (specs[1].priority, specs[1].name) {
            0
        } else {
            1
        };
        let settle = specs[1].start_at + 2 * hb + 2 * p.hs_timeout;
        (winner, settle)
    });
    let mut w = World::new(p.clone(), specs, seed, trace);
    let n = w.nodes.len();
    let t0 = rng.range(12 * hb, 18 * hb);
    let mut plan = Plan {
        end: 60 * hb,
        equal,
        two_nodes: kind == Kind::TwoNodes,
        ..Plan::default()
    };
    match kind {
        Kind::CrashPrimary => {
            plan.strict_overlap = true;
            plan.takeover = true;
            let reboot = rng
                .chance(500)
                .then(|| t0 + b.takeover + rng.range(0, 10 * hb));
            w.crash_host(0, t0, reboot);
        }
        Kind::IsolatePrimary => {
            plan.strict_overlap = true;
            let until = t0 + rng.range(2 * hb, 15 * hb);
            let choices: [&[usize]; 3] = [&[1, 2], &[1], &[2]];
            let peers = *rng.pick(&choices);
            // Sometimes the watchdog loses the primary well before the
            // secondary does: its complaints must not count early.
            let w_first = rng.range(0, 8 * hb) * u64::from(rng.chance(500));
            for &peer in peers {
                let at = if peer == 2 { t0 - w_first } else { t0 };
                isolate(&mut w, &mut rng, &[peer], at, until);
            }
        }
        Kind::Random | Kind::TwoNodes => {
            let mut last = 0;
            for _ in 0..rng.range(1, 4) {
                let at = rng.range(5 * hb, 35 * hb);
                let len = rng.range(hb / 2, 12 * hb);
                let victim = rng.range(0, n as u64 - 1) as usize;
                let role = w.nodes[victim].spec.role_on_start;
                match rng.range(0, 99) {
                    0..25 => w.crash_host(victim, at, Some(at + len)),
                    25..45 => w.crash_main(victim, at, Some((at + len, role))),
                    45..60 => w.stall(victim, at, Some(at + len)),
                    _ => {
                        let c = (victim + rng.range(1, n as u64 - 1) as usize) % n;
                        w.cut(victim, c, at, Some(at + len));
                        if rng.chance(500) {
                            w.cut(c, victim, at, Some(at + len));
                        }
                    }
                }
                last = last.max(at + len);
            }
            w.net.loss_until = last;
            plan.end = last + 30 * hb;
        }
        Kind::EqualPrimaries => {}
        Kind::MainCrash | Kind::MainCrashMidHook => {
            plan.strict_overlap = true;
            w.deaths_mid_hook = true;
            // Back (as it was, or as `init`) once the secondary took over,
            // or never.
            let restart = rng.chance(600).then(|| {
                let role = *rng.pick(&[Role::Primary, Role::Init]);
                (b.takeover + rng.range(0, 10 * hb), role)
            });
            let first = if kind == Kind::MainCrashMidHook { 2 } else { 0 };
            match rng.range(first, 3) {
                // A primary in steady state.
                0 | 1 => {
                    plan.takeover = true;
                    plan.main_crash_until = Some(restart.map_or(u64::MAX, |r| t0 + r.0));
                    w.crash_main(0, t0, restart.map(|(d, role)| (t0 + d, role)));
                }
                // While a hook runs (or, unless deaths mid-hook are on, as
                // soon as it ended): the first `start`, or a `status`.
                2 => {
                    plan.takeover = true;
                    let (after, event) = *rng.pick(&[(0, HookKind::Start), (t0, HookKind::Status)]);
                    w.arm(0, after, On::Hook(event), Then::CrashMain { restart });
                }
                // Just after the primary gave up, cut off: its own `stop`
                // may still wait behind another hook (or, unless deaths
                // mid-hook are on, has run).
                _ => {
                    let until = t0 + rng.range(5 * hb, 15 * hb);
                    isolate(&mut w, &mut rng, &[1, 2], t0, until);
                    // Not back before the cut heals: a primary that starts
                    // cut off runs the resource until its silence limit.
                    let restart = restart.map(|(d, role)| (d + 15 * hb, role));
                    w.arm(0, t0, On::LeavePrimary, Then::CrashMain { restart });
                }
            }
        }
        Kind::Stall => {
            let victim = rng.range(0, 2) as usize;
            let resume = rng.chance(800).then(|| rng.range(hb / 2, 15 * hb));
            plan.stalled = Some(victim);
            // A stalled primary keeps its resource (nothing fences it), so
            // only the overlap after it resumes is bounded.
            plan.strict_overlap = victim != 0;
            plan.takeover = victim == 0;
            if rng.chance(500) {
                w.stall(victim, t0, resume.map(|d| t0 + d));
            } else {
                // It answers something, then stops.
                w.arm(victim, t0, On::Send, Then::Stall { resume });
            }
        }
        Kind::OldComplaints => {
            let t3 = match w.nodes[0].spec.start_at {
                // Soon after a late start, within a complaint interval of
                // the complaints before it.
                s if s > 0 => rng.range(s + hb / 2, s + p.ci),
                _ => {
                    // Complaints while the secondary serves the primary:
                    // the watchdog does not see the primary (one way or
                    // both). Then a real loss, while they still come in or
                    // within a complaint interval after the last.
                    let t1 = rng.range(5 * hb, 10 * hb);
                    let t2 = t1 + rng.range(2 * hb, 12 * hb);
                    isolate(&mut w, &mut rng, &[2], t1, t2);
                    rng.range(t2 - hb, t2 + p.ci)
                }
            };
            match rng.range(0, 3) {
                0 => {
                    plan.strict_overlap = true;
                    plan.takeover = true;
                    w.crash_host(0, t3, None);
                }
                1 => {
                    plan.strict_overlap = true;
                    plan.takeover = true;
                    plan.main_crash_until = Some(u64::MAX);
                    w.crash_main(0, t3, None);
                }
                2 => {
                    plan.strict_overlap = true;
                    let until = t3 + rng.range(2 * hb, 15 * hb);
                    isolate(&mut w, &mut rng, &[1, 2], t3, until);
                }
                _ => {
                    plan.takeover = true;
                    w.stall(0, t3, None);
                }
            }
            plan.end = t3 + 40 * hb;
        }
    }
    (w, plan, b)
}
