//! What the checks see of a run: each node's past (complaints, losses
//! of its primary, role changes), promotions with the complaints behind
//! them, and how each worker sees its remotes.

use std::collections::VecDeque;

use hastmon::role::{RemoteReport, Report};
use hastmon::types::Role;

use hastmon::role::RoleMachine;

use super::world::{Worker, World, peer_of};

/// What the checks need to know of a node's past.
#[derive(Default)]
pub struct History {
    /// Times it stopped being primary, for any reason.
    pub left_primary: u32,
    /// The input (numbered world-wide) at which the node last lost its
    /// primary or changed role: complaints count only after it.
    pub(super) lost: u64,
    /// Complaints received: time and input number.
    pub(super) complaints: VecDeque<(u64, u64)>,
}

/// A secondary promoted itself on complaints.
#[derive(Clone, Debug)]
pub struct Promotion {
    pub node: usize,
    pub at: u64,
    /// Complaints that arrived after it lost its primary (or became
    /// secondary) and within the complaint interval, the last included.
    pub fresh: usize,
}

impl World {
    /// Records what the checks need after the main process handled an
    /// input (`role` and `serving` are from before it): promotions with
    /// the complaints behind them, losses of the primary, role changes.
    pub(super) fn observe(&mut self, node: usize, role: Role, serving: bool, complaint: bool) {
        let ci = self.p.ci;
        let now = self.now;
        let n = &mut self.nodes[node];
        let new_role = n.role();
        let still_serving = n.serving();
        let h = &mut n.history;
        if complaint && role == Role::Secondary && new_role == Role::Primary {
            let fresh = h
                .complaints
                .iter()
                .filter(|&&(t, i)| i > h.lost && now - t <= ci)
                .count();
            self.promotions.push(Promotion {
                node,
                at: now,
                fresh,
            });
        }
        h.left_primary += u32::from(role == Role::Primary && new_role != Role::Primary);
        if new_role != role || (serving && !still_serving) {
            h.lost = self.inputs;
        }
        while h.complaints.front().is_some_and(|&(t, _)| now - t > ci) {
            h.complaints.pop_front();
        }
    }

    /// The nodes node `i`'s primary worker believes connected.
    pub fn primary_links(&self, i: usize) -> Vec<usize> {
        let n = &self.nodes[i];
        match (&n.worker, n.report()) {
            (
                Some(Worker {
                    m: RoleMachine::Primary(_),
                    ..
                }),
                Some(r),
            ) => links(i, &r),
            _ => Vec::new(),
        }
    }

    /// The node whose heartbeats node `i`'s secondary worker answers.
    pub fn serving(&self, i: usize) -> Option<usize> {
        let n = &self.nodes[i];
        match (&n.worker, n.report()) {
            (
                Some(Worker {
                    m: RoleMachine::Secondary(_),
                    ..
                }),
                Some(r),
            ) => links(i, &r).pop(),
            _ => None,
        }
    }

    /// The roles node `i`'s watchdog saw at its last evaluated cycle.
    pub fn watchdog_seen(&self, i: usize) -> Vec<(usize, Role)> {
        let Some(r) = self.nodes[i].report() else {
            return Vec::new();
        };
        r.remotes
            .iter()
            .enumerate()
            .filter_map(|(j, s)| match s {
                RemoteReport::Seen { role, .. } => Some((peer_of(i, j), *role)),
                RemoteReport::Link { .. } => None,
            })
            .collect()
    }
}

fn links(i: usize, r: &Report) -> Vec<usize> {
    r.remotes
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, RemoteReport::Link { connected: true }))
        .map(|(j, _)| peer_of(i, j))
        .collect()
}
