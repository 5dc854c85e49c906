//! Hook processes and the resource they act on. Which hook runs when,
//! and when one is signalled for running too long, is the node machine's
//! decision; here a hook is a process that runs for a while and ends, or
//! dies of a signal. One that is running when the main process dies runs
//! on to its end (its effect on the resource happens, nobody hears its
//! result). The guardian's `stop` is such a process too. A host crash
//! kills them all, and the resource with them.

use std::collections::HashMap;

use hastmon::node::{HookExit, HookId, Input as NodeInput};

use super::world::{Ev, Later, Params, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Start,
    Stop,
    Status,
    /// `role`, `complain`, `connect`, `disconnect`: no effect.
    Other,
    /// The guardian's `stop` after the main process died.
    Guardian,
}

impl HookKind {
    fn of(word: &str) -> HookKind {
        match word {
            "start" => HookKind::Start,
            "stop" => HookKind::Stop,
            "status" => HookKind::Status,
            _ => HookKind::Other,
        }
    }
}

/// A hook process.
struct Proc {
    node: usize,
    /// The daemon incarnation that ran it, and its id there; `None` for
    /// the guardian's.
    owner: Option<(u32, HookId)>,
    kind: HookKind,
    exit: HookExit,
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
}

/// How long a hook runs and how it ends, unless it is signalled first.
fn plan(rng: &mut super::rng::Rng, p: &Params, kind: HookKind) -> (u64, HookExit) {
    let slow = rng.chance(p.slow_per_mille);
    match kind {
        HookKind::Stop | HookKind::Guardian => {
            // `stop` may be slow but always finishes within its limit:
            // without fencing nothing bounds a copy whose `stop` hangs
            // (the second half of Q10).
            let d = if slow { p.hook_timeout * 9 / 10 } else { 30 };
            (rng.range(5, d.max(5)), HookExit::Exited(0))
        }
        HookKind::Start | HookKind::Status => {
            let longest = if p.overrun {
                p.hook_timeout * 2
            } else {
                p.hook_timeout * 9 / 10
            };
            let d = if slow {
                rng.range(p.hook_timeout / 2, longest)
            } else {
                rng.range(5, 40)
            };
            let fail = kind == HookKind::Start && rng.chance(p.start_fail_per_mille);
            (d, HookExit::Exited(i32::from(fail)))
        }
        HookKind::Other => (rng.range(1, 5), HookExit::Exited(0)),
    }
}

impl World {
    /// Starts the hook the node machine asked for.
    pub(super) fn spawn_hook(&mut self, node: usize, hook: HookId, args: &[String]) {
        let kind = HookKind::of(args.first().map_or("", String::as_str));
        self.note(node, || format!("hook {} starts", args.join(" ")));
        let epoch = self.nodes[node].epoch;
        let id = self.spawn_proc(node, Some((epoch, hook)), kind);
        self.nodes[node].hook_procs.insert(hook, id);
        let pid = i32::try_from(id).unwrap_or(i32::MAX);
        self.node_input(node, NodeInput::HookStarted { hook, pid }, false);
    }

    /// The node machine signals a hook past its limit: it dies now.
    pub(super) fn signal_hook(&mut self, node: usize, hook: HookId, kill: bool) {
        let Some(&id) = self.nodes[node].hook_procs.get(&hook) else {
            return;
        };
        let signal = if kill { 9 } else { 15 };
        self.end_proc(id, Some(HookExit::Signaled(signal)));
    }

    /// The guardian kills a hook still running for a main process that
    /// died: a `start` may have got the resource going, and the
    /// guardian's `stop` follows.
    pub(super) fn kill_proc(&mut self, node: usize, id: u64) {
        self.note(node, || format!("guardian: kill hook process {id}"));
        if let Some(p) = self.procs.running.get_mut(&id) {
            p.owner = None;
        }
        self.end_proc(id, Some(HookExit::Signaled(9)));
    }

    /// The guardian stops the resource of a main process that died.
    pub(super) fn guardian_stop(&mut self, node: usize) {
        self.note(node, || "guardian: stop".into());
        self.spawn_proc(node, None, HookKind::Guardian);
    }

    fn spawn_proc(&mut self, node: usize, owner: Option<(u32, HookId)>, kind: HookKind) -> u64 {
        let (dur, exit) = plan(&mut self.rng, &self.p, kind);
        if kind == HookKind::Start {
            self.nodes[node].resource.starting += 1;
        }
        self.on_hook_start(node, kind, dur);
        let procs = &mut self.procs;
        procs.next += 1;
        let id = procs.next;
        let proc = Proc {
            node,
            owner,
            kind,
            exit,
        };
        procs.running.insert(id, proc);
        self.at(self.now + dur, Ev::HookEnd { id });
        id
    }

    /// A hook process ends on its own.
    pub(super) fn hook_end(&mut self, id: u64) {
        self.end_proc(id, None);
    }

    /// A hook process ends (`killed`: by that signal): its effect on the
    /// resource, then its exit for the daemon that ran it, if that daemon
    /// is still there.
    fn end_proc(&mut self, id: u64, killed: Option<HookExit>) {
        let Some(Proc {
            node,
            owner,
            kind,
            exit,
        }) = self.procs.running.remove(&id)
        else {
            return;
        };
        let was_killed = killed.is_some();
        let mut exit = killed.unwrap_or(exit);
        let res = &mut self.nodes[node].resource;
        match kind {
            HookKind::Start => {
                res.starting -= 1;
                if exit != HookExit::Exited(1) {
                    res.up = true;
                }
            }
            // A killed `stop` may not have stopped it.
            HookKind::Stop | HookKind::Guardian if !was_killed => res.up = false,
            HookKind::Status if exit == HookExit::Exited(0) => {
                exit = HookExit::Exited(if res.up { 0 } else { 1 });
            }
            _ => {}
        }
        let Some((epoch, hook)) = owner else {
            return;
        };
        if epoch != self.nodes[node].epoch {
            self.note(node, || format!("{kind:?} ended, its main process gone"));
            return;
        }
        self.nodes[node].hook_procs.remove(&hook);
        self.note(node, || format!("hook {kind:?} ended: {exit:?}"));
        let ev = Ev::Main {
            node,
            epoch,
            input: Later::HookExited { hook, exit },
        };
        self.dispatch(ev);
    }
}
