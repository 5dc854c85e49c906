//! Deterministic simulation of whole clusters built from the role
//! machines: a fake clock (ms), a fake network, simulated hooks and a
//! resource model per node, and faults drawn from a seed.
//!
//! `cargo test --test sim` runs `SEEDS` seeds; a failing seed is printed
//! and `SIM_SEED=<n> cargo test --test sim` replays exactly that one with
//! a trace of everything that happened.
//!
//! # The bounds checked
//!
//! With `hb` the heartbeat interval, `to` the timeout, `cc`/`ci` the
//! complaint count and interval, `H` the hook time limit, `L` the worst
//! one-way message delay, `S` the handshake deadline (here `2·to`):
//!
//! * `D = 4·H` bounds how long after a `stop` is asked the resource is
//!   down: the hook in progress, a queued `start`, the `stop` itself (each
//!   killed at `H`) and a few short hooks.
//! * **Overlap.** Two nodes may run the resource at once for at most
//!   `D + 2·L + to + max(0, g − 1)·hb`, with `g = max(0, ⌊ci/hb⌋ − cc)`
//!   the spare watchdog cycles a complaint window holds. Why: a primary
//!   has stopped `D` after its silence limit `cc·hb + to` past its last
//!   two-way contact `Tc`. A secondary promotes only on `cc + 1`
//!   complaints that all arrived after it lost its primary, from watchdog
//!   cycles that did not see the primary: not before
//!   `Tc + (cc + 1 − g)·hb − 2·L` (a cycle that saw the primary may sit
//!   among them, at most `g` fit in the window), and not before
//!   `Tc + cc·hb + to − 2·L` when it learnt the loss from a closed
//!   connection (the primary closes `to` after a missing reply). Checked
//!   in the crash and isolation scenarios, and for overlaps that begin
//!   after the last fault healed. Runs stay far below it: the primary
//!   usually stops before the secondary starts.
//! * **Healing.** Once every fault has healed, any overlap ends within
//!   `2·hb + S + D + 4·L`: a primary reconnects every `hb`, the weaker
//!   one yields at the handshake and stops.
//! * **Takeover.** When the primary's node dies at `T0`, the secondary
//!   runs the resource by `T0 + (cc + 3)·hb + S + 3·L + 4·H`: its worker
//!   notices within `2·hb + L`, `cc + 1` complaints follow within
//!   `(cc + 1)·hb + 2·L`, then one handshake attempt to the dead node
//!   (`S`), `status` and `start` (the roles.md §8 formula
//!   `T0 + δ + (cc+1)·hb + 5 + hb`, with `δ` replaced by the secondary's own
//!   detection, since complaints only count once it lost its primary).
//! * **Equal priorities.** Two primaries with the same priority end with
//!   exactly one primary.
//! * **Two nodes without a watchdog.** The secondary never promotes, so
//!   the resource never runs twice.

#[path = "sim/rng.rs"]
mod rng;
#[path = "sim/world.rs"]
mod world;

use std::time::Instant;

use hastmon::types::Role;
use rng::Rng;
use world::{NodeSpec, Params, World};

const SEEDS: u64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    CrashPrimary,
    IsolatePrimary,
    Random,
    TwoNodes,
    EqualPrimaries,
}

const KINDS: [Kind; 5] = [
    Kind::CrashPrimary,
    Kind::IsolatePrimary,
    Kind::Random,
    Kind::TwoNodes,
    Kind::EqualPrimaries,
];

struct Bounds {
    overlap: u64,
    heal: u64,
    takeover: u64,
}

impl Bounds {
    fn of(p: &Params) -> Bounds {
        let d = 4 * p.hook_timeout;
        let l = p.lat_worst();
        let g = (p.ci / p.hb).saturating_sub(u64::from(p.cc));
        Bounds {
            overlap: d + 2 * l + p.to + g.saturating_sub(1) * p.hb,
            heal: 2 * p.hb + p.hs_timeout + d + 4 * l,
            takeover: (u64::from(p.cc) + 3) * p.hb + p.hs_timeout + 3 * l + 4 * p.hook_timeout,
        }
    }
}

fn params(rng: &mut Rng, kind: Kind) -> Params {
    let hb = 1_000;
    let cc = rng.range(1, 3) as u32;
    let to = rng.range(200, 500);
    let calm = matches!(kind, Kind::CrashPrimary | Kind::EqualPrimaries);
    Params {
        hb,
        to,
        cc,
        ci: rng.range(u64::from(cc) * hb + 500, (u64::from(cc) + 2) * hb + 500),
        attempts: 5,
        hs_timeout: 2 * to,
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
        slow_per_mille: rng.range(0, 50),
        start_fail_per_mille: if calm { 0 } else { rng.range(0, 50) },
    }
}

fn node(name: &'static str, priority: i32, role_on_start: Role) -> NodeSpec {
    NodeSpec {
        name,
        priority,
        role_on_start,
    }
}

struct Outcome {
    steps: u64,
    /// The longest overlap and the latest takeover, as fractions (‰) of
    /// their bounds: shows how close the runs come.
    overlap_per_mille: u64,
    takeover_per_mille: u64,
}

fn run(seed: u64, trace: bool) -> (Result<Outcome, String>, World) {
    let mut rng = Rng::new(seed);
    let kind = KINDS[(seed % KINDS.len() as u64) as usize];
    let p = params(&mut rng, kind);
    let b = Bounds::of(&p);
    let hb = p.hb;
    let specs = match kind {
        Kind::TwoNodes => vec![
            node("10.0.0.1", 1, Role::Primary),
            node("10.0.0.2", 2, Role::Secondary),
        ],
        Kind::EqualPrimaries => vec![
            node("10.0.0.1", 1, Role::Primary),
            node("10.0.0.2", 1, Role::Primary),
            node("10.0.0.3", 3, Role::Watchdog),
        ],
        _ => vec![
            node("10.0.0.1", 1, Role::Primary),
            node("10.0.0.2", 2, Role::Secondary),
            node("10.0.0.3", 3, Role::Watchdog),
        ],
    };
    let n = specs.len();
    let mut w = World::new(p.clone(), specs, seed, trace);
    let t0 = rng.range(12 * hb, 18 * hb);
    let mut end = 60 * hb;
    // When every fault has healed; `None`: faults never heal (a crash).
    let mut healed = Some(0);
    let mut takeover_by = None;
    match kind {
        Kind::CrashPrimary => {
            w.crash_at(t0, 0);
            takeover_by = Some(t0 + b.takeover);
            healed = None;
            if rng.chance(500) {
                let back = t0 + b.takeover + rng.range(0, 10 * hb);
                w.boot_at(back, 0);
                healed = Some(back);
            }
        }
        Kind::IsolatePrimary => {
            let until = t0 + rng.range(2 * hb, 15 * hb);
            let choices: [&[usize]; 3] = [&[1, 2], &[1], &[2]];
            let peers = *rng.pick(&choices);
            let (cut_out, cut_in) = *rng.pick(&[(true, true), (true, false), (false, true)]);
            // Sometimes the watchdog loses the primary well before the
            // secondary does: its complaints must not count early.
            let w_first = rng.range(0, 8 * hb) * u64::from(rng.chance(500));
            for &peer in peers {
                let at = if peer == 2 { t0 - w_first } else { t0 };
                for (from, to, cut) in [(0, peer, cut_out), (peer, 0, cut_in)] {
                    if cut {
                        w.block_at(at, from, to, true);
                        w.block_at(until, from, to, false);
                    }
                }
            }
            healed = Some(until);
        }
        Kind::Random | Kind::TwoNodes => {
            let mut last = 0;
            for _ in 0..rng.range(1, 4) {
                let at = rng.range(5 * hb, 35 * hb);
                let len = rng.range(hb / 2, 12 * hb);
                if rng.chance(400) {
                    let victim = rng.range(0, n as u64 - 1) as usize;
                    w.crash_at(at, victim);
                    w.boot_at(at + len, victim);
                } else {
                    let a = rng.range(0, n as u64 - 1) as usize;
                    let c = (a + rng.range(1, n as u64 - 1) as usize) % n;
                    w.block_at(at, a, c, true);
                    w.block_at(at + len, a, c, false);
                    if rng.chance(500) {
                        w.block_at(at, c, a, true);
                        w.block_at(at + len, c, a, false);
                    }
                }
                last = last.max(at + len);
            }
            healed = Some(last);
            end = last + 30 * hb;
        }
        Kind::EqualPrimaries => {}
    }
    let result = drive(
        &mut w,
        kind,
        &b,
        end,
        healed,
        takeover_by.map(|by| (t0, by)),
    );
    (result, w)
}

/// Runs the world to `end`, checking the invariants as it goes.
fn drive(
    w: &mut World,
    kind: Kind,
    b: &Bounds,
    end: u64,
    healed: Option<u64>,
    takeover_by: Option<(u64, u64)>,
) -> Result<Outcome, String> {
    let mut steps = 0u64;
    let mut longest = 0;
    let mut takeover_per_mille = 0;
    let mut overlap_since: Option<u64> = None;
    let mut taken_over = takeover_by.is_none();
    let strict_overlap = matches!(kind, Kind::CrashPrimary | Kind::IsolatePrimary);
    while w.step(end) {
        steps += 1;
        if steps > 3_000_000 {
            return Err(format!("livelock at {} ms", w.now));
        }
        let now = w.now;
        let running = w.nodes.iter().filter(|n| n.maybe_running()).count();
        if kind == Kind::TwoNodes && w.nodes[1].main.role() == Role::Primary {
            return Err(format!("{now}: the secondary promoted without a watchdog"));
        }
        match (running >= 2, overlap_since) {
            (true, None) => overlap_since = Some(now),
            (true, Some(since)) => {
                longest = longest.max(now - since);
                let after_heal = healed.is_some_and(|h| since >= h);
                if (strict_overlap || after_heal) && now - since > b.overlap {
                    return Err(format!(
                        "{now}: two nodes run the resource since {since} (bound {} ms)",
                        b.overlap
                    ));
                }
                if let Some(h) = healed
                    && now > since.max(h) + b.heal
                {
                    return Err(format!(
                        "{now}: overlap since {since} outlived healing at {h} (bound {} ms)",
                        b.heal
                    ));
                }
                if kind == Kind::TwoNodes {
                    return Err(format!("{now}: two nodes run the resource"));
                }
            }
            (false, _) => overlap_since = None,
        }
        if let Some((t0, by)) = takeover_by
            && !taken_over
            && w.nodes[1].res_up
        {
            taken_over = true;
            takeover_per_mille = (now - t0) * 1000 / (by - t0);
        }
        if let Some((_, by)) = takeover_by
            && !taken_over
            && now > by
        {
            return Err(format!("{now}: no takeover by {by}"));
        }
    }
    if !taken_over {
        return Err("no takeover".into());
    }
    let primaries: Vec<usize> = (0..w.nodes.len())
        .filter(|&i| w.nodes[i].up && w.nodes[i].main.role() == Role::Primary)
        .collect();
    let running: Vec<usize> = (0..w.nodes.len())
        .filter(|&i| w.nodes[i].maybe_running())
        .collect();
    match kind {
        Kind::EqualPrimaries if primaries.len() != 1 => {
            return Err(format!(
                "equal priorities ended with primaries {primaries:?}"
            ));
        }
        Kind::TwoNodes => {}
        _ if healed.is_some() && (primaries.len() != 1 || running != primaries) => {
            return Err(format!(
                "did not settle: primaries {primaries:?}, running {running:?}"
            ));
        }
        _ => {}
    }
    Ok(Outcome {
        steps,
        overlap_per_mille: longest * 1000 / b.overlap,
        takeover_per_mille,
    })
}

fn replay(seed: u64) -> ! {
    let (result, w) = run(seed, true);
    for line in w.trace.as_deref().unwrap_or_default() {
        eprintln!("{line}");
    }
    eprintln!("params: {:?}", w.p);
    match result {
        Ok(o) => panic!("seed {seed} passed ({} steps)", o.steps),
        Err(e) => panic!("seed {seed} failed: {e}"),
    }
}

#[test]
fn clusters_survive_faults() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        replay(seed.parse().expect("SIM_SEED is a number"));
    }
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut steps = 0;
    let mut worst = [(0, 0); 5];
    for seed in 0..SEEDS {
        let k = (seed % 5) as usize;
        match run(seed, false).0 {
            Ok(o) => {
                steps += o.steps;
                worst[k].0 = worst[k].0.max(o.overlap_per_mille);
                worst[k].1 = worst[k].1.max(o.takeover_per_mille);
            }
            Err(e) => {
                eprintln!("seed {seed} ({:?}): {e}", KINDS[(seed % 5) as usize]);
                failed.push(seed);
            }
        }
    }
    eprintln!(
        "{SEEDS} seeds, {steps} steps in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (kind, (overlap, takeover)) in KINDS.iter().zip(worst) {
        eprintln!("{kind:?}: longest overlap {overlap}‰ of its bound, latest takeover {takeover}‰");
    }
    assert!(
        failed.is_empty(),
        "{} seeds failed, first {:?}; replay with SIM_SEED=<n> cargo test --test sim",
        failed.len(),
        &failed[..failed.len().min(20)]
    );
}
