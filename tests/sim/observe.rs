//! What the checks see of a run: how each worker sees its remotes.

use hastmon::role::{RemoteReport, Report};
use hastmon::types::Role;

use super::world::{Machine, Worker, World, peer_of};

impl World {
    /// The nodes node `i`'s primary worker believes connected.
    pub fn primary_links(&self, i: usize) -> Vec<usize> {
        let n = &self.nodes[i];
        match (&n.worker, n.report()) {
            (
                Some(Worker {
                    m: Machine::Primary(_),
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
                    m: Machine::Secondary(_),
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
