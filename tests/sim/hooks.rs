//! Hooks and the resource they act on. A daemon runs its hooks one at a
//! time; each is a process of its own, so one that is running when the
//! main process dies runs on to its end (its effect on the resource
//! happens, nobody hears its result), while the ones still queued are
//! lost. The guardian's `stop` is such a process too. A host crash kills
//! them all, and the resource with them.

use std::collections::HashMap;

use hastmon::node::resource::WorkerId;
use hastmon::proto::msg::HookEvent;
use hastmon::role::{HookResult, Input};

use super::world::{Ev, Params, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Worker(HookEvent),
    /// `role` and `complain`: no effect, nobody waits.
    Main,
    /// The guardian's `stop` after the main process died.
    Guardian,
}

#[derive(Clone, Copy, Debug)]
pub struct Hook {
    pub kind: HookKind,
    pub owner: Option<WorkerId>,
}

/// A hook process.
struct Proc {
    node: usize,
    /// The daemon incarnation that ran it; `None` for the guardian's.
    epoch: Option<u32>,
    hook: Hook,
    result: HookResult,
}

/// The resource on one node. `start` makes it run when it ends (even a
/// killed one may have got it going), `stop` makes it stop.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resource {
    pub up: bool,
    /// `start` hooks in progress.
    pub starting: u32,
}

impl Resource {
    /// Running, or perhaps running: a `start` in progress counts.
    pub fn maybe_running(self) -> bool {
        self.up || self.starting > 0
    }
}

#[derive(Default)]
pub struct Procs {
    running: HashMap<u64, Proc>,
    next: u64,
}

impl Procs {
    /// A host crash kills every process on it.
    pub fn kill_node(&mut self, node: usize) {
        self.running.retain(|_, p| p.node != node);
    }

    pub fn kind(&self, id: u64) -> Option<HookKind> {
        self.running.get(&id).map(|p| p.hook.kind)
    }
}

/// How long a hook runs and how it ends.
fn plan(rng: &mut super::rng::Rng, p: &Params, kind: HookKind) -> (u64, HookResult) {
    let slow = rng.chance(p.slow_per_mille);
    match kind {
        HookKind::Worker(HookEvent::Stop) | HookKind::Guardian => {
            // `stop` may be slow but always finishes: without fencing
            // nothing bounds a copy whose `stop` hangs (doc/quirks.md Q10).
            let d = if slow { p.hook_timeout * 9 / 10 } else { 30 };
            (rng.range(5, d), HookResult::Exited(0))
        }
        HookKind::Worker(e @ (HookEvent::Start | HookEvent::Status)) => {
            let d = if slow {
                rng.range(p.hook_timeout / 2, p.hook_timeout * 2)
            } else {
                rng.range(5, 40)
            };
            if d > p.hook_timeout {
                (p.hook_timeout, HookResult::TimedOut)
            } else if e == HookEvent::Start {
                let fail = rng.chance(p.start_fail_per_mille);
                (d, HookResult::Exited(i32::from(fail)))
            } else {
                (d, HookResult::Exited(0))
            }
        }
        _ => (rng.range(1, 5), HookResult::Exited(0)),
    }
}

impl World {
    pub(super) fn queue_hook(&mut self, node: usize, hook: Hook) {
        self.nodes[node].hooks.push_back(hook);
        self.run_hooks(node);
    }

    /// Starts the next hook if none runs: one at a time per daemon.
    pub(super) fn run_hooks(&mut self, node: usize) {
        let n = &self.nodes[node];
        if n.running.is_some() || n.stalled_since.is_some() {
            return;
        }
        let Some(hook) = self.nodes[node].hooks.pop_front() else {
            return;
        };
        let epoch = self.nodes[node].epoch;
        let id = self.spawn_proc(node, Some(epoch), hook);
        self.nodes[node].running = Some(id);
    }

    /// The guardian kills a hook still running for a main process that
    /// died: a `start` may have got the resource going, and the guardian's
    /// `stop` follows.
    pub(super) fn kill_hook(&mut self, node: usize, id: u64) {
        let Some(p) = self.procs.running.remove(&id) else {
            return;
        };
        self.note(node, || format!("guardian: kill {:?}", p.hook.kind));
        if p.hook.kind == HookKind::Worker(HookEvent::Start) {
            let res = &mut self.nodes[node].res;
            res.starting -= 1;
            res.up = true;
        }
    }

    /// The guardian stops the resource of a main process that died.
    pub(super) fn guardian_stop(&mut self, node: usize) {
        self.note(node, || "guardian: stop".into());
        let hook = Hook {
            kind: HookKind::Guardian,
            owner: None,
        };
        self.spawn_proc(node, None, hook);
    }

    fn spawn_proc(&mut self, node: usize, epoch: Option<u32>, hook: Hook) -> u64 {
        let (dur, result) = plan(&mut self.rng, &self.p, hook.kind);
        if hook.kind == HookKind::Worker(HookEvent::Start) {
            self.nodes[node].res.starting += 1;
        }
        if let HookKind::Worker(e) = hook.kind {
            self.on_hook_start(node, e, dur);
        }
        let procs = &mut self.procs;
        procs.next += 1;
        let id = procs.next;
        let proc = Proc {
            node,
            epoch,
            hook,
            result,
        };
        procs.running.insert(id, proc);
        self.at(self.now + dur, Ev::HookEnd { id });
        id
    }

    /// A hook process ends: its effect on the resource, then its result
    /// for the daemon that ran it, if that daemon is still there.
    pub(super) fn hook_end(&mut self, id: u64) {
        let Some(Proc {
            node,
            epoch,
            hook,
            mut result,
        }) = self.procs.running.remove(&id)
        else {
            return;
        };
        let res = &mut self.nodes[node].res;
        match hook.kind {
            HookKind::Worker(HookEvent::Start) => {
                res.starting -= 1;
                if result != HookResult::Exited(1) {
                    res.up = true;
                }
            }
            HookKind::Worker(HookEvent::Stop) | HookKind::Guardian => res.up = false,
            HookKind::Worker(HookEvent::Status) if result == HookResult::Exited(0) => {
                result = HookResult::Exited(if res.up { 0 } else { 1 });
            }
            _ => {}
        }
        if epoch.is_none_or(|e| e != self.nodes[node].epoch) {
            let kind = hook.kind;
            self.note(node, || format!("{kind:?} ended, its main process gone"));
        }
        if let Some(epoch) = epoch {
            self.dispatch(Ev::Reaped {
                node,
                epoch,
                id,
                hook,
                result,
            });
        }
    }

    /// The daemon learns that its hook ended.
    pub(super) fn reaped(&mut self, node: usize, id: u64, hook: Hook, result: HookResult) {
        if self.nodes[node].running != Some(id) {
            return;
        }
        self.nodes[node].running = None;
        if let (HookKind::Worker(event), Some(owner)) = (hook.kind, hook.owner) {
            self.note(node, || format!("hook {event:?} done: {result}"));
            if self.nodes[node]
                .worker
                .as_ref()
                .is_some_and(|w| w.id == owner)
            {
                self.worker_input(node, Input::HookDone { event, result });
            }
        }
        self.run_hooks(node);
        self.kill_main(node);
    }
}
