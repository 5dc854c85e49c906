//! A cluster of simulated nodes: each is a `ResourceMachine` (the main
//! process) plus at most one worker machine, glued together the way the
//! daemon does it, over a fake network (`net`) and a fake clock in
//! milliseconds, with hooks acting on a resource model (`hooks`), faults
//! (`faults`) and what the checks see (`observe`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use hastmon::node::resource::{
    ResourceAction, ResourceConfig, ResourceInput, ResourceMachine, WorkerExit, WorkerId,
};
use hastmon::proto::msg::HookEvent;
use hastmon::role::primary::{Primary, PrimaryConfig, RemoteSpec};
use hastmon::role::secondary::{Secondary, SecondaryConfig};
use hastmon::role::watchdog::{Watchdog, WatchdogConfig};
use hastmon::role::{Action, ConnectFailure, HookResult, Input, Report, Time};
use hastmon::types::{Role, State};

use super::faults::Schedule;
use super::hooks::{Hook, HookKind, Procs, Resource};
use super::net::{Msg, Net};
use super::observe::{History, Promotion};
use super::rng::Rng;

/// Settings shared by every node, and the fault knobs of one run.
#[derive(Clone, Debug)]
pub struct Params {
    pub hb: u64,
    pub to: u64,
    pub cc: u32,
    pub ci: u64,
    pub attempts: u32,
    /// A handshake attempt's whole deadline (connect plus two replies).
    pub hs_timeout: u64,
    pub hook_timeout: u64,
    pub lat_min: u64,
    pub lat_max: u64,
    /// Rare extra delay of a message, up to this much.
    pub spike_max: u64,
    pub spike_per_mille: u64,
    pub loss_per_mille: u64,
    /// Hooks that run long, possibly past `hook_timeout` (not `stop`).
    pub slow_per_mille: u64,
    pub start_fail_per_mille: u64,
}

impl Params {
    pub fn lat_worst(&self) -> u64 {
        self.lat_max + self.spike_max
    }
}

#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: &'static str,
    pub priority: i32,
    pub role_on_start: Role,
    /// When its daemon first starts.
    pub start_at: u64,
}

#[derive(Clone, Debug)]
pub enum Ev {
    Deliver {
        from: usize,
        to: usize,
        msg: Msg,
        /// Already past the network and the host (held while stalled).
        admitted: bool,
    },
    HookEnd {
        id: u64,
    },
    /// The daemon that ran a hook learns its result.
    Reaped {
        node: usize,
        epoch: u32,
        id: u64,
        hook: Hook,
        result: HookResult,
    },
    HsTimeout {
        node: usize,
        epoch: u32,
        wid: WorkerId,
        remote: usize,
        conn: u64,
    },
    Main {
        node: usize,
        epoch: u32,
        input: ResourceInput,
    },
    Crash {
        node: usize,
    },
    Boot {
        node: usize,
    },
    CrashMain {
        node: usize,
    },
    StartDaemon {
        node: usize,
        role: Role,
    },
    Stall {
        node: usize,
    },
    Resume {
        node: usize,
    },
    Block {
        from: usize,
        to: usize,
        on: bool,
    },
}

pub enum Machine {
    Primary(Primary),
    Secondary(Secondary),
    Watchdog(Watchdog),
}

pub struct Worker {
    pub id: WorkerId,
    pub m: Machine,
    /// Primary: established connection per remote, handshake in flight.
    pub conns: Vec<Option<u64>>,
    pub hs: Vec<Option<u64>>,
    /// Watchdog: the poll generation per remote (older answers are stale).
    pub gens: Vec<u64>,
    /// Secondary: the primary's node and connection.
    pub link: Option<(usize, u64)>,
}

impl Worker {
    fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        match &mut self.m {
            Machine::Primary(m) => m.handle(now, input),
            Machine::Secondary(m) => m.handle(now, input),
            Machine::Watchdog(m) => m.handle(now, input),
        }
    }

    fn deadline(&self) -> Option<Time> {
        match &self.m {
            Machine::Primary(m) => m.deadline(),
            Machine::Secondary(m) => m.deadline(),
            Machine::Watchdog(m) => m.deadline(),
        }
    }

    fn report(&self) -> Report {
        match &self.m {
            Machine::Primary(m) => m.report(),
            Machine::Secondary(m) => m.report(),
            Machine::Watchdog(m) => m.report(),
        }
    }

    pub fn state(&self) -> State {
        self.report().state
    }
}

pub struct Node {
    pub spec: NodeSpec,
    pub host_up: bool,
    pub daemon_up: bool,
    pub stalled_since: Option<u64>,
    /// What a stalled daemon will read when it resumes.
    pub(super) held: Vec<Ev>,
    /// Counts daemon incarnations: late news for a dead one is dropped.
    pub(super) epoch: u32,
    pub main: ResourceMachine,
    pub(super) worker: Option<Worker>,
    pub(super) hooks: VecDeque<Hook>,
    /// The hook this daemon runs now.
    pub(super) running: Option<u64>,
    /// Its main process dies as soon as no hook runs (see
    /// `World::deaths_mid_hook`), then starts again if it was due to.
    pub(super) dying: bool,
    pub(super) restart: Option<Role>,
    pub res: Resource,
    pub history: History,
}

impl Node {
    pub fn maybe_running(&self) -> bool {
        self.res.maybe_running()
    }

    /// The daemon runs and is not stalled.
    pub fn live(&self) -> bool {
        self.daemon_up && self.stalled_since.is_none()
    }

    pub(super) fn report(&self) -> Option<Report> {
        self.worker
            .as_ref()
            .filter(|_| self.daemon_up)
            .map(Worker::report)
    }
}

pub struct World {
    pub p: Params,
    pub now: u64,
    pub nodes: Vec<Node>,
    pub(super) rng: Rng,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// Each event, and whether it heals a fault.
    events: Vec<Option<(Ev, bool)>>,
    seq: u64,
    pub(super) net: Net,
    next_conn: u64,
    pub(super) procs: Procs,
    pub(super) faults: Schedule,
    pub(super) inputs: u64,
    /// Main processes may die while one of their hooks runs or waits (the
    /// guardian kills a running hook and honours a `stop` still owed).
    /// Off, a death waits for the hooks to end.
    pub deaths_mid_hook: bool,
    pub promotions: Vec<Promotion>,
    pub trace: Option<Vec<String>>,
}

/// The node that is remote `r` of node `me`: every other node, in order.
pub fn peer_of(me: usize, r: usize) -> usize {
    if r < me { r } else { r + 1 }
}

/// Which remote of node `me` node `peer` is.
pub fn remote_of(me: usize, peer: usize) -> usize {
    debug_assert_ne!(me, peer);
    if peer < me { peer } else { peer - 1 }
}

impl World {
    pub fn new(p: Params, specs: Vec<NodeSpec>, seed: u64, trace: bool) -> World {
        let n = specs.len();
        let nodes = specs
            .into_iter()
            .map(|spec| Node {
                main: ResourceMachine::new(main_cfg(&p, &spec, spec.role_on_start), Time(0)),
                spec,
                host_up: true,
                daemon_up: false,
                stalled_since: None,
                held: Vec::new(),
                epoch: 0,
                worker: None,
                hooks: VecDeque::new(),
                running: None,
                dying: false,
                restart: None,
                res: Resource::default(),
                history: History::default(),
            })
            .collect();
        let mut w = World {
            p,
            now: 0,
            nodes,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            events: Vec::new(),
            seq: 0,
            net: Net::new(n),
            next_conn: 1,
            procs: Procs::default(),
            faults: Schedule::default(),
            inputs: 0,
            deaths_mid_hook: true,
            promotions: Vec::new(),
            trace: trace.then(Vec::new),
        };
        for node in 0..n {
            let (at, role) = (
                w.nodes[node].spec.start_at,
                w.nodes[node].spec.role_on_start,
            );
            // A daemon that starts late is a fault that heals then.
            w.faults.open += u32::from(at > 0);
            w.push(at, Ev::StartDaemon { node, role }, at > 0);
        }
        w
    }

    pub(super) fn push(&mut self, t: u64, ev: Ev, heals: bool) {
        self.seq += 1;
        self.events.push(Some((ev, heals)));
        self.queue
            .push(Reverse((t, self.seq, self.events.len() - 1)));
    }

    pub(super) fn at(&mut self, t: u64, ev: Ev) {
        self.push(t, ev, false);
    }

    pub(super) fn note(&mut self, node: usize, what: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!(
                "{:>7} {}: {}",
                self.now,
                self.nodes[node].spec.name,
                what()
            ));
        }
    }

    /// Runs one step (an event or a machine's deadline) no later than
    /// `until`; false when there is nothing left before it.
    pub fn step(&mut self, until: u64) -> bool {
        let next_ev = self.queue.peek().map(|Reverse((t, _, _))| *t);
        let mut best: Option<(u64, usize, bool)> = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.live() {
                continue;
            }
            let cands = [
                n.main.deadline().map(|t| (t.0, i, true)),
                n.worker
                    .as_ref()
                    .and_then(Worker::deadline)
                    .map(|t| (t.0, i, false)),
            ];
            for c in cands.into_iter().flatten() {
                if best.is_none_or(|b| c.0 < b.0) {
                    best = Some(c);
                }
            }
        }
        match (best, next_ev) {
            (Some((t, i, main)), ev) if ev.is_none_or(|e| t <= e) => {
                if t > until {
                    return false;
                }
                self.now = self.now.max(t);
                if main {
                    self.main_input(i, ResourceInput::Tick, None);
                } else {
                    self.worker_input(i, Input::Tick);
                }
            }
            (_, Some(t)) => {
                if t > until {
                    return false;
                }
                let Reverse((t, _, idx)) = self.queue.pop().expect("peeked");
                self.now = self.now.max(t);
                let (ev, heals) = self.events[idx].take().expect("each event once");
                if heals {
                    self.faults.open -= 1;
                    self.faults.last_heal = self.now;
                }
                self.dispatch(ev);
            }
            _ => return false,
        }
        true
    }

    pub(super) fn dispatch(&mut self, ev: Ev) {
        // What the daemon would read, or be woken for, waits while it is
        // stalled.
        if let Ev::Reaped { node, .. } | Ev::HsTimeout { node, .. } | Ev::Main { node, .. } = ev
            && self.nodes[node].stalled_since.is_some()
        {
            self.nodes[node].held.push(ev);
            return;
        }
        match ev {
            Ev::Deliver {
                from,
                to,
                msg,
                admitted,
            } => self.arrive(from, to, msg, admitted),
            Ev::HookEnd { id } => self.hook_end(id),
            Ev::Reaped {
                node,
                epoch,
                id,
                hook,
                result,
            } => {
                let n = &self.nodes[node];
                if n.daemon_up && n.epoch == epoch {
                    self.reaped(node, id, hook, result);
                }
            }
            Ev::HsTimeout {
                node,
                epoch,
                wid,
                remote,
                conn,
            } => {
                let n = &self.nodes[node];
                if n.daemon_up && n.epoch == epoch && n.worker.as_ref().is_some_and(|w| w.id == wid)
                {
                    let reason = ConnectFailure::Unreachable("timed out".into());
                    if self.with_worker(node, |w| w.hs[remote].take_if(|c| *c == conn).is_some()) {
                        self.send(node, peer_of(node, remote), Msg::Close { conn });
                        self.worker_input(node, Input::ConnectFailed { remote, reason });
                    }
                }
            }
            Ev::Main { node, epoch, input } => {
                if self.nodes[node].daemon_up && self.nodes[node].epoch == epoch {
                    self.main_input(node, input, None);
                }
            }
            Ev::Crash { node } => self.crash(node),
            Ev::Boot { node } => {
                self.note(node, || "BOOT".into());
                self.nodes[node].host_up = true;
                let role = self.nodes[node].spec.role_on_start;
                self.start_daemon(node, role);
            }
            Ev::CrashMain { node } => {
                self.nodes[node].dying = true;
                self.kill_main(node);
            }
            Ev::StartDaemon { node, role } => self.start_daemon(node, role),
            Ev::Stall { node } => {
                let n = &mut self.nodes[node];
                if n.daemon_up && n.stalled_since.is_none() {
                    n.stalled_since = Some(self.now);
                    self.note(node, || "STALL".into());
                }
            }
            Ev::Resume { node } => self.resume(node),
            Ev::Block { from, to, on } => {
                let b = &mut self.net.blocked[from][to];
                *b = if on { *b + 1 } else { *b - 1 };
            }
        }
    }

    pub(super) fn with_worker(&mut self, node: usize, f: impl FnOnce(&mut Worker) -> bool) -> bool {
        self.nodes[node].worker.as_mut().is_some_and(f)
    }

    pub(super) fn worker_input(&mut self, node: usize, input: Input) {
        let Some(mut w) = self.nodes[node].worker.take() else {
            return;
        };
        let now = Time(self.now);
        let actions = w.handle(now, input);
        if self.worker_actions(node, &mut w, actions) {
            self.nodes[node].worker = Some(w);
        }
    }

    /// Carries out a worker's actions; false once it exited.
    fn worker_actions(&mut self, node: usize, w: &mut Worker, actions: Vec<Action>) -> bool {
        for a in actions {
            match a {
                Action::RunHook(event) => {
                    self.note(node, || format!("hook {event:?} asked"));
                    if event == HookEvent::Complaint {
                        self.main_input(node, ResourceInput::ComplaintSent, None);
                    }
                    let hook = Hook {
                        kind: HookKind::Worker(event),
                        owner: Some(w.id),
                    };
                    self.queue_hook(node, hook);
                }
                Action::Connect { remote } => {
                    let conn = self.next_conn;
                    self.next_conn += 1;
                    w.hs[remote] = Some(conn);
                    let priority = self.nodes[node].spec.priority;
                    self.send(node, peer_of(node, remote), Msg::Hs1 { conn, priority });
                    let epoch = self.nodes[node].epoch;
                    let ev = Ev::HsTimeout {
                        node,
                        epoch,
                        wid: w.id,
                        remote,
                        conn,
                    };
                    self.at(self.now + self.p.hs_timeout, ev);
                }
                Action::Disconnect { remote } => {
                    if let Some(conn) = w.conns.get_mut(remote).and_then(Option::take) {
                        self.send(node, peer_of(node, remote), Msg::Close { conn });
                    }
                    if let Some(g) = w.gens.get_mut(remote) {
                        *g += 1;
                    }
                }
                Action::Heartbeat { remote, msg } => {
                    if let Some(conn) = w.conns[remote] {
                        self.send(node, peer_of(node, remote), Msg::Hb { conn, msg });
                    }
                }
                Action::Reply { msg } => {
                    if let Some((peer, conn)) = w.link {
                        self.send(node, peer, Msg::HbReply { conn, msg });
                    }
                }
                Action::Poll { remote } => {
                    w.gens[remote] += 1;
                    let generation = w.gens[remote];
                    self.send(node, peer_of(node, remote), Msg::Poll { generation });
                }
                Action::Complain { remote } => {
                    self.send(node, peer_of(node, remote), Msg::Complaint);
                }
                Action::Log { msg, .. } => self.note(node, || msg),
                Action::Exit(code) => {
                    self.note(node, || format!("worker {} exits {code}", w.id.0));
                    self.close_all(node, w);
                    let epoch = self.nodes[node].epoch;
                    let input = ResourceInput::WorkerExited {
                        id: w.id,
                        exit: WorkerExit::Code(code),
                    };
                    self.at(self.now, Ev::Main { node, epoch, input });
                    return false;
                }
            }
        }
        true
    }

    /// `hs`: the handshake at hand (peer, connection, stage).
    pub(super) fn main_input(
        &mut self,
        node: usize,
        input: ResourceInput,
        hs: Option<(usize, u64, u8)>,
    ) {
        let now = Time(self.now);
        self.inputs += 1;
        let complaint = input == ResourceInput::Complaint;
        let n = &mut self.nodes[node];
        if complaint {
            n.history.complaints.push_back((self.now, self.inputs));
        }
        let (role, serving) = (n.main.role(), n.main.serving().is_some());
        let actions = n.main.handle(now, input);
        self.observe(node, role, serving, complaint);
        if role == Role::Primary && self.nodes[node].main.role() != Role::Primary {
            self.on_leave_primary(node);
        }
        for a in actions {
            match a {
                ResourceAction::SpawnWorker { id, role, urgent } => {
                    self.note(node, || format!("spawn {role} worker {}", id.0));
                    if let Some(mut old) = self.nodes[node].worker.take() {
                        self.close_all(node, &mut old);
                    }
                    let w = self.make_worker(node, id, role, hs, urgent);
                    self.nodes[node].worker = Some(w);
                    if let (Role::Secondary, Some((peer, conn, _))) = (role, hs) {
                        self.send(node, peer, Msg::Confirm { conn });
                    }
                    self.worker_input(node, Input::Start);
                }
                ResourceAction::StopWorker { id, stop_resource } => {
                    let n = &mut self.nodes[node];
                    if let Some(mut w) = n.worker.take_if(|w| w.id == id) {
                        let actions = w.handle(
                            now,
                            Input::Terminate {
                                stop: stop_resource,
                            },
                        );
                        if self.worker_actions(node, &mut w, actions) {
                            self.close_all(node, &mut w);
                        }
                    }
                }
                ResourceAction::RunRoleHook { .. } | ResourceAction::RunComplainHook => {
                    let hook = Hook {
                        kind: HookKind::Main,
                        owner: None,
                    };
                    self.queue_hook(node, hook);
                }
                ResourceAction::AcceptHandshake => {
                    if let Some((peer, conn, 1)) = hs {
                        self.send(node, peer, Msg::Hs1Token { conn });
                    }
                }
                ResourceAction::RefuseHandshake { errmsg, priority } => {
                    if let Some((peer, conn, 1)) = hs {
                        let msg = Msg::Hs1Refused {
                            conn,
                            errmsg,
                            priority,
                        };
                        self.send(node, peer, msg);
                    }
                }
                ResourceAction::Log { msg, .. } => self.note(node, || format!("main: {msg}")),
            }
        }
    }

    fn make_worker(
        &self,
        node: usize,
        id: WorkerId,
        role: Role,
        hs: Option<(usize, u64, u8)>,
        urgent: bool,
    ) -> Worker {
        let p = &self.p;
        let remotes_n = self.nodes.len() - 1;
        let remotes: Vec<RemoteSpec> = (0..remotes_n)
            .map(|r| RemoteSpec {
                addr: self.nodes[peer_of(node, r)].spec.name.to_string(),
                reachable: true,
            })
            .collect();
        let now = Time(self.now);
        let hb = Duration::from_millis(p.hb);
        let m = match role {
            Role::Primary => Machine::Primary(Primary::new(
                PrimaryConfig {
                    heartbeat: hb,
                    timeout: Duration::from_millis(p.to),
                    attempts: p.attempts,
                    complaint_count: p.cc,
                    silence_limit: Some(hb * p.cc + Duration::from_millis(p.to)),
                    remotes,
                    urgent,
                },
                now,
            )),
            Role::Watchdog => Machine::Watchdog(Watchdog::new(
                WatchdogConfig {
                    heartbeat: hb,
                    timeout: Duration::from_millis(p.to),
                    remotes,
                },
                now,
            )),
            _ => Machine::Secondary(Secondary::new(
                SecondaryConfig {
                    heartbeat: hb,
                    silence_limit: hb * 2,
                    remotes: remotes_n,
                    primary: hs.map(|(peer, _, _)| remote_of(node, peer)),
                },
                now,
            )),
        };
        Worker {
            id,
            m,
            conns: vec![None; remotes_n],
            hs: vec![None; remotes_n],
            gens: vec![0; remotes_n],
            link: hs
                .filter(|_| role == Role::Secondary)
                .map(|(peer, conn, _)| (peer, conn)),
        }
    }
}

pub(super) fn main_cfg(p: &Params, spec: &NodeSpec, role_on_start: Role) -> ResourceConfig {
    ResourceConfig {
        role_on_start,
        priority: spec.priority,
        complaint_count: p.cc,
        complaint_interval: Duration::from_millis(p.ci),
    }
}
