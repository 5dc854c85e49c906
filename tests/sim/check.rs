//! Runs a world and checks the invariants as it goes (the bounds are
//! derived in `tests/sim.rs`).

use hastmon::types::Role;

use super::scenario::Plan;
use super::world::{Params, World};

pub struct Bounds {
    cc: u32,
    pub overlap: u64,
    pub heal: u64,
    pub takeover: u64,
    /// Overlap after the main process of a primary died.
    pub main_crash: u64,
    /// After a node stalls: until when a primary may still count it as
    /// connected, a secondary as its primary, a watchdog as seen.
    pub stalled_primary: u64,
    pub stalled_secondary: u64,
    pub stalled_watchdog: u64,
}

impl Bounds {
    pub fn of(p: &Params) -> Bounds {
        let d = 4 * p.hook_timeout;
        let l = p.lat_worst();
        let cc = u64::from(p.cc);
        let g = (p.ci / p.hb).saturating_sub(cc);
        Bounds {
            cc: p.cc,
            overlap: d + 2 * l + p.to + g.saturating_sub(1) * p.hb,
            heal: 2 * p.hb + p.hs_timeout + d + 4 * l,
            takeover: (cc + 3) * p.hb + p.hs_timeout + 3 * l + 4 * p.hook_timeout,
            main_crash: (p.hook_timeout + l).saturating_sub(cc * p.hb),
            stalled_primary: p.hb + p.to + l,
            stalled_secondary: 2 * p.hb + l,
            stalled_watchdog: p.hb + p.to.min(p.hb),
        }
    }
}

pub struct Outcome {
    pub steps: u64,
    /// The overlap that came closest to its bound, among those held to
    /// one, and that bound (ms).
    pub overlap: (u64, u64),
    /// The slowest takeover and its bound (ms).
    pub takeover: (u64, u64),
}

/// Runs the world to the plan's end, checking the invariants as it goes.
pub fn drive(w: &mut World, plan: &Plan, b: &Bounds) -> Result<Outcome, String> {
    let mut steps = 0u64;
    let mut overlap = (0, b.overlap);
    let mut takeover = (0, b.takeover);
    let mut overlap_since: Option<u64> = None;
    // Since when node 0's daemon is away, and whether node 1 took over.
    let mut away_since: Option<u64> = None;
    let mut ever_away = false;
    let mut taken_over = false;
    while w.step(plan.end) {
        steps += 1;
        if steps > 3_000_000 {
            return Err(format!("livelock at {} ms", w.now));
        }
        let now = w.now;
        for pr in w.promotions.drain(..) {
            if pr.fresh <= b.cc as usize {
                return Err(format!(
                    "{}: node {} promoted on {} complaints since it lost its primary (needs {})",
                    pr.at,
                    pr.node,
                    pr.fresh,
                    b.cc + 1
                ));
            }
        }
        if plan.two_nodes && w.nodes[1].role() == Role::Primary {
            return Err(format!("{now}: the secondary promoted without a watchdog"));
        }
        let running = w.nodes.iter().filter(|n| n.maybe_running()).count();
        match (running >= 2, overlap_since) {
            (true, None) => overlap_since = Some(now),
            (true, Some(since)) => {
                let healed = w.healed();
                let after_heal = healed.is_some_and(|h| since >= h);
                if plan.strict_overlap || after_heal {
                    overlap.0 = overlap.0.max(now - since);
                }
                if (plan.strict_overlap || after_heal) && now - since > b.overlap {
                    return Err(format!(
                        "{now}: {} run the resource since {since} (bound {} ms)",
                        runners(w),
                        b.overlap
                    ));
                }
                let after_death = w.main_died_at.is_some_and(|d| since >= d);
                if after_death
                    && plan.main_crash_until.is_some_and(|u| since < u)
                    && now - since > b.main_crash
                {
                    return Err(format!(
                        "{now}: {} run the resource since {since}, after a main process died (bound {} ms)",
                        runners(w),
                        b.main_crash
                    ));
                }
                if let Some(h) = healed
                    && now > since.max(h) + b.heal
                {
                    return Err(format!(
                        "{now}: {} run the resource since {since}, past healing at {h} (bound {} ms)",
                        runners(w),
                        b.heal
                    ));
                }
                if plan.two_nodes {
                    return Err(format!("{now}: {} run the resource", runners(w)));
                }
            }
            (false, _) => overlap_since = None,
        }
        if plan.takeover {
            match (w.nodes[0].live(), away_since) {
                (false, None) => {
                    away_since = Some(now);
                    ever_away = true;
                    taken_over = false;
                }
                (true, Some(_)) => away_since = None,
                _ => {}
            }
            if let Some(t0) = away_since
                && !taken_over
            {
                if w.nodes[1].resource.up {
                    taken_over = true;
                    takeover.0 = takeover.0.max(now - t0);
                } else if now > t0 + b.takeover {
                    return Err(format!("{now}: no takeover by {}", t0 + b.takeover));
                }
            }
        }
        if let Some(v) = plan.stalled {
            stalled(w, v, b)?;
        }
        if let Some((winner, settle)) = plan.equal {
            equal(w, winner, settle)?;
        }
    }
    if w.unfired() {
        return Err("an armed fault never struck".into());
    }
    if plan.takeover && (!ever_away || (away_since.is_some() && !taken_over)) {
        return Err("no takeover".into());
    }
    settled(w, plan)?;
    Ok(Outcome {
        steps,
        overlap,
        takeover,
    })
}

/// The nodes that run the resource, with their daemon's role.
fn runners(w: &World) -> String {
    let who: Vec<String> = (0..w.nodes.len())
        .filter(|&i| w.nodes[i].maybe_running())
        .map(|i| {
            let n = &w.nodes[i];
            if n.daemon_up {
                format!("node {i} ({})", n.role())
            } else {
                format!("node {i} (no daemon)")
            }
        })
        .collect();
    who.join(" and ")
}

/// Nobody waits on a stalled node: primaries drop it after `timeout`
/// without a reply, a secondary lets it go after its silence limit,
/// watchdogs count it as unknown once its polls expired.
fn stalled(w: &World, v: usize, b: &Bounds) -> Result<(), String> {
    let Some(s) = w.nodes[v].stalled_since else {
        return Ok(());
    };
    let now = w.now;
    for i in (0..w.nodes.len()).filter(|&i| i != v && w.nodes[i].live()) {
        if now > s + b.stalled_primary && w.primary_links(i).contains(&v) {
            return Err(format!(
                "{now}: primary {i} still connected to {v}, stalled since {s}"
            ));
        }
        if now > s + b.stalled_secondary && w.serving(i) == Some(v) {
            return Err(format!(
                "{now}: secondary {i} still serves {v}, stalled since {s}"
            ));
        }
        if now > s + b.stalled_watchdog
            && let Some((_, role)) = w
                .watchdog_seen(i)
                .into_iter()
                .find(|&(j, role)| j == v && role != Role::Undef)
        {
            return Err(format!(
                "{now}: watchdog {i} sees {v} as {role}, stalled since {s}"
            ));
        }
    }
    Ok(())
}

/// Two primaries of equal rank: never both step down, and once they had
/// time to meet, exactly one is primary, the one the tie-break names.
fn equal(w: &World, winner: usize, settle: u64) -> Result<(), String> {
    let now = w.now;
    let left = w.nodes[0].history.left_primary + w.nodes[1].history.left_primary;
    if left > 1 {
        return Err(format!("{now}: both primaries stepped down"));
    }
    let primaries: Vec<usize> = (0..2)
        .filter(|&i| w.nodes[i].role() == Role::Primary)
        .collect();
    if now > settle && primaries != [winner] {
        return Err(format!(
            "{now}: primaries {primaries:?}, expected only {winner}"
        ));
    }
    Ok(())
}

/// Once every fault healed the cluster ends with one primary, the only
/// node that runs the resource.
fn settled(w: &World, plan: &Plan) -> Result<(), String> {
    let primaries: Vec<usize> = (0..w.nodes.len())
        .filter(|&i| w.nodes[i].daemon_up && w.nodes[i].role() == Role::Primary)
        .collect();
    let running: Vec<usize> = (0..w.nodes.len())
        .filter(|&i| w.nodes[i].maybe_running())
        .collect();
    if plan.two_nodes || w.healed().is_none() {
        return Ok(());
    }
    if primaries.len() != 1 || running != primaries {
        return Err(format!(
            "did not settle: primaries {primaries:?}, running {running:?}"
        ));
    }
    Ok(())
}
