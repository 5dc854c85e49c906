//! Faults: scheduled at a time, or armed to strike at a moment of the run
//! (when a hook starts, when a primary gives up, right after a node
//! sends), and what each does to a node.
//!
//! A host crash kills everything on it, the resource too. A crash of the
//! main process alone leaves the host: its workers exit as their channel
//! closes (a primary's own `stop` reaches nobody), the guardian stops the
//! resource if the main process last said it was primary, a hook already
//! running runs on, and the queued ones are lost. A stalled daemon
//! (SIGSTOP) keeps its connections; the kernel accepts and buffers, the
//! daemon reads nothing and no timer of it fires until it resumes.

use hastmon::node::NodeMachine;
use hastmon::role::Time;
use hastmon::types::Role;

use super::hooks::{HookKind, Resource};
use super::world::{Ev, Later, World, node_config, resolve};

/// A moment of the run at which an armed fault strikes.
#[derive(Clone, Copy, Debug)]
pub enum On {
    /// While a hook of this kind runs (at a random point of it).
    Hook(HookKind),
    /// Within 20 ms after the main process leaves primary, while the
    /// old primary's `stop` may still be queued.
    LeavePrimary,
    /// Right after the node sends something.
    Send,
}

/// An armed fault; delays count from the moment it strikes.
#[derive(Clone, Copy, Debug)]
pub enum Then {
    CrashMain { restart: Option<(u64, Role)> },
    Stall { resume: Option<u64> },
}

struct Armed {
    node: usize,
    after: u64,
    on: On,
    then: Then,
}

/// The faults of a run, for `World::healed`.
#[derive(Default)]
pub struct Schedule {
    armed: Vec<Armed>,
    /// Faults scheduled or in progress that will heal, and whether one
    /// never heals.
    pub(super) open: u32,
    forever: bool,
    pub(super) last_heal: u64,
}

impl World {
    /// Schedules the fault `ev` at `t`; the caller schedules its healing
    /// at `heal`, if it heals.
    fn fault(&mut self, t: u64, ev: Ev, heal: Option<u64>) {
        match heal {
            Some(_) => self.faults.open += 1,
            None => self.faults.forever = true,
        }
        self.push(t, ev, false);
    }

    fn heal_at(&mut self, t: u64, ev: Ev) {
        self.push(t, ev, true);
    }

    pub fn crash_host(&mut self, node: usize, at: u64, reboot: Option<u64>) {
        self.fault(at, Ev::Crash { node }, reboot);
        if let Some(t) = reboot {
            self.heal_at(t, Ev::Boot { node });
        }
    }

    /// The main process dies; its daemon may start again (as `role`).
    pub fn crash_main(&mut self, node: usize, at: u64, restart: Option<(u64, Role)>) {
        self.fault(at, Ev::CrashMain { node }, restart.map(|r| r.0));
        if let Some((t, role)) = restart {
            self.heal_at(t, Ev::StartDaemon { node, role });
        }
    }

    pub fn stall(&mut self, node: usize, at: u64, resume: Option<u64>) {
        self.fault(at, Ev::Stall { node }, resume);
        if let Some(t) = resume {
            self.heal_at(t, Ev::Resume { node });
        }
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&mut self, from: usize, to: usize, at: u64, until: Option<u64>) {
        self.fault(at, Ev::Block { from, to, on: true }, until);
        if let Some(t) = until {
            self.heal_at(
                t,
                Ev::Block {
                    from,
                    to,
                    on: false,
                },
            );
        }
    }

    /// Arms a fault to strike at a moment of the run after `after`.
    pub fn arm(&mut self, node: usize, after: u64, on: On, then: Then) {
        self.faults.open += 1;
        self.faults.armed.push(Armed {
            node,
            after,
            on,
            then,
        });
    }

    /// Whether an armed fault never struck.
    pub fn unfired(&self) -> bool {
        !self.faults.armed.is_empty()
    }

    /// When the last fault healed; `None` while one is open or scheduled,
    /// or if one never heals.
    pub fn healed(&self) -> Option<u64> {
        (!self.faults.forever && self.faults.open == 0).then_some(self.faults.last_heal)
    }

    fn strike(&mut self, at: usize, delay: u64) {
        let a = self.faults.armed.swap_remove(at);
        self.faults.open -= 1;
        let t = self.now + delay;
        self.note(a.node, || {
            format!("armed fault strikes at {t}: {:?}", a.then)
        });
        match a.then {
            Then::CrashMain { restart } => {
                self.crash_main(a.node, t, restart.map(|(d, role)| (t + d, role)));
            }
            Then::Stall { resume } => self.stall(a.node, t, resume.map(|d| t + d)),
        }
    }

    fn armed_for(&self, node: usize, on: impl Fn(On) -> bool) -> Option<usize> {
        self.faults
            .armed
            .iter()
            .position(|a| a.node == node && self.now >= a.after && on(a.on))
    }

    pub(super) fn on_hook_start(&mut self, node: usize, kind: HookKind, dur: u64) {
        if let Some(i) = self.armed_for(node, |on| matches!(on, On::Hook(k) if k == kind)) {
            let delay = self.rng.range(0, dur.saturating_sub(1));
            self.strike(i, delay);
        }
    }

    pub(super) fn on_leave_primary(&mut self, node: usize) {
        if let Some(i) = self.armed_for(node, |on| matches!(on, On::LeavePrimary)) {
            let delay = self.rng.range(0, 20);
            self.strike(i, delay);
        }
    }

    pub(super) fn after_send(&mut self, node: usize) {
        if let Some(i) = self.armed_for(node, |on| matches!(on, On::Send)) {
            self.strike(i, 0);
        }
    }

    pub(super) fn crash(&mut self, node: usize) {
        self.note(node, || "CRASH".into());
        let n = &mut self.nodes[node];
        n.host_up = false;
        n.daemon_up = false;
        n.stalled_since = None;
        n.held.clear();
        n.epoch += 1;
        n.worker = None;
        n.hook_procs.clear();
        n.jobs.clear();
        n.peers.clear();
        n.acks.clear();
        n.dying = false;
        n.restart = None;
        n.resource = Resource::default();
        self.procs.kill_node(node);
    }

    /// The main process dies, its host lives: the workers exit as their
    /// channel closes (a primary's own `stop` reaches nobody), and the
    /// guardian stops the resource if the main process last said it was
    /// primary or still owed a `stop` (one queued or running). The hook
    /// running now is then killed first, so that a `start` cannot end
    /// after the guardian's `stop`; otherwise it runs on. The queued ones
    /// are lost.
    pub(super) fn kill_main(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if !n.daemon_up || !n.dying {
            n.dying = false;
            return;
        }
        if !self.deaths_mid_hook && n.hooks_busy() {
            return;
        }
        // What the guardian was last told: the product's own records.
        let (primary, group) = n
            .node
            .guardian()
            .find(|g| g.res == n.res)
            .map_or((false, None), |g| (g.primary, g.hook_group));
        self.note(node, || "MAIN PROCESS DIES".into());
        if node == 0 {
            self.main_died_at.get_or_insert(self.now);
        }
        let n = &mut self.nodes[node];
        n.dying = false;
        n.daemon_up = false;
        n.stalled_since = None;
        n.held.clear();
        n.epoch += 1;
        n.hook_procs.clear();
        n.jobs.clear();
        n.peers.clear();
        n.acks.clear();
        if let Some(mut w) = n.worker.take() {
            self.close_all(node, &mut w);
        }
        if primary {
            if let Some(pid) = group {
                self.kill_proc(node, u64::try_from(pid).unwrap_or(0));
            }
            self.guardian_stop(node);
        }
        if let Some(role) = self.nodes[node].restart.take() {
            self.start_daemon(node, role);
        }
    }

    pub(super) fn start_daemon(&mut self, node: usize, role: Role) {
        if self.nodes[node].dying {
            self.nodes[node].restart = Some(role);
            return;
        }
        let n = &self.nodes[node];
        if !n.host_up || n.daemon_up {
            return;
        }
        self.note(node, || format!("DAEMON STARTS as {role}"));
        let specs: Vec<_> = self.nodes.iter().map(|n| n.spec.clone()).collect();
        let cfg = node_config(&self.p, &specs, node, role);
        self.inputs += 1;
        let n = &mut self.nodes[node];
        n.daemon_up = true;
        n.epoch += 1;
        n.node = NodeMachine::new(&cfg, &resolve, Time(self.now));
        n.res = n.node.active().next().expect("one resource");
        n.cfg = cfg;
        n.history.lost = self.inputs;
        n.history.complaints.clear();
        let epoch = n.epoch;
        let input = Later::Start;
        self.at(self.now, Ev::Main { node, epoch, input });
    }

    /// A stalled daemon goes on: it reads what arrived meanwhile, either
    /// before or after the timers that fell due (both orders happen).
    pub(super) fn resume(&mut self, node: usize) {
        if self.nodes[node].stalled_since.take().is_none() {
            return;
        }
        self.note(node, || "RESUME".into());
        let held = std::mem::take(&mut self.nodes[node].held);
        if self.rng.chance(500) {
            for ev in held {
                self.dispatch(ev);
            }
        } else {
            for ev in held {
                self.at(self.now, ev);
            }
        }
    }
}
