//! A cluster of simulated nodes: each is a `ResourceMachine` (the main
//! process) plus at most one worker machine, glued together the way the
//! daemon does it, over a fake network and a fake clock in milliseconds.
//! Hooks run one at a time per node against a resource model: `start`
//! makes the resource run, `stop` stops it, `status` reports it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use hastmon::proto::msg::{HeartbeatReply, HeartbeatRequest, HookEvent};
use hastmon::role::primary::{Primary, PrimaryConfig, RemoteSpec};
use hastmon::role::resource::{
    ResourceAction, ResourceConfig, ResourceInput, ResourceMachine, WorkerExit, WorkerId,
};
use hastmon::role::secondary::{Secondary, SecondaryConfig};
use hastmon::role::watchdog::{Watchdog, WatchdogConfig};
use hastmon::role::{Action, ConnectFailure, HookResult, Input, Time};
use hastmon::types::{Role, State};

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
}

#[derive(Clone, Debug)]
enum Msg {
    Hs1 {
        conn: u64,
        priority: i32,
    },
    Hs1Token {
        conn: u64,
    },
    Hs1Refused {
        conn: u64,
        errmsg: String,
        priority: Option<i32>,
    },
    Hs2 {
        conn: u64,
    },
    Confirm {
        conn: u64,
    },
    Close {
        conn: u64,
    },
    Hb {
        conn: u64,
        msg: HeartbeatRequest,
    },
    HbReply {
        conn: u64,
        msg: HeartbeatReply,
    },
    Poll {
        generation: u64,
    },
    PollAns {
        generation: u64,
        role: Role,
        state: State,
    },
    PollAck,
    Complaint,
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver {
        from: usize,
        to: usize,
        msg: Msg,
    },
    HookEnd {
        node: usize,
        epoch: u32,
        seq: u64,
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
    Block {
        from: usize,
        to: usize,
        on: bool,
    },
}

enum Machine {
    Primary(Primary),
    Secondary(Secondary),
    Watchdog(Watchdog),
}

struct Worker {
    id: WorkerId,
    m: Machine,
    /// Primary: established connection per remote, handshake in flight.
    conns: Vec<Option<u64>>,
    hs: Vec<Option<u64>>,
    /// Watchdog: the poll generation per remote (older answers are stale).
    gens: Vec<u64>,
    /// Secondary: the primary's node and connection.
    link: Option<(usize, u64)>,
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

    fn state(&self) -> State {
        match &self.m {
            Machine::Primary(m) => m.report().state,
            Machine::Secondary(m) => m.report().state,
            Machine::Watchdog(m) => m.report().state,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HookKind {
    Worker(HookEvent),
    Main,
}

struct Hook {
    kind: HookKind,
    owner: Option<WorkerId>,
}

pub struct Node {
    pub spec: NodeSpec,
    pub up: bool,
    epoch: u32,
    pub main: ResourceMachine,
    worker: Option<Worker>,
    hooks: VecDeque<Hook>,
    running: Option<(Hook, u64, HookResult)>,
    hook_seq: u64,
    /// The resource model.
    pub res_up: bool,
    pub res_starting: bool,
}

impl Node {
    /// Running, or perhaps running: a `start` in progress counts.
    pub fn maybe_running(&self) -> bool {
        self.res_up || self.res_starting
    }
}

pub struct World {
    pub p: Params,
    pub now: u64,
    pub nodes: Vec<Node>,
    rng: Rng,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    seq: u64,
    blocked: Vec<Vec<bool>>,
    last_delivery: Vec<Vec<u64>>,
    next_conn: u64,
    pub trace: Option<Vec<String>>,
}

impl World {
    pub fn new(p: Params, specs: Vec<NodeSpec>, seed: u64, trace: bool) -> World {
        let n = specs.len();
        let nodes = specs
            .into_iter()
            .map(|spec| {
                let main = ResourceMachine::new(main_cfg(&p, &spec), Time(0));
                Node {
                    spec,
                    up: true,
                    epoch: 0,
                    main,
                    worker: None,
                    hooks: VecDeque::new(),
                    running: None,
                    hook_seq: 0,
                    res_up: false,
                    res_starting: false,
                }
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
            blocked: vec![vec![false; n]; n],
            last_delivery: vec![vec![0; n]; n],
            next_conn: 1,
            trace: trace.then(Vec::new),
        };
        for i in 0..n {
            w.at(
                0,
                Ev::Main {
                    node: i,
                    epoch: 0,
                    input: ResourceInput::Start,
                },
            );
        }
        w
    }

    pub fn crash_at(&mut self, t: u64, node: usize) {
        self.at(t, Ev::Crash { node });
    }

    pub fn boot_at(&mut self, t: u64, node: usize) {
        self.at(t, Ev::Boot { node });
    }

    pub fn block_at(&mut self, t: u64, from: usize, to: usize, on: bool) {
        self.at(t, Ev::Block { from, to, on });
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Some(ev));
        self.queue
            .push(Reverse((t, self.seq, self.events.len() - 1)));
    }

    fn note(&mut self, node: usize, what: impl FnOnce() -> String) {
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
            if !n.up {
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
                let ev = self.events[idx].take().expect("each event once");
                self.dispatch(ev);
            }
            _ => return false,
        }
        true
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, msg } => {
                if self.nodes[to].up && !self.blocked[from][to] {
                    self.deliver(from, to, msg);
                }
            }
            Ev::HookEnd { node, epoch, seq } => {
                if self.nodes[node].epoch == epoch && self.nodes[node].hook_seq == seq {
                    self.hook_end(node);
                }
            }
            Ev::HsTimeout {
                node,
                epoch,
                wid,
                remote,
                conn,
            } => {
                let n = &mut self.nodes[node];
                let Some(w) = n
                    .worker
                    .as_mut()
                    .filter(|w| n.epoch == epoch && w.id == wid)
                else {
                    return;
                };
                if w.hs[remote] == Some(conn) {
                    w.hs[remote] = None;
                    let peer = others(self.nodes.len(), node)[remote];
                    self.send(node, peer, Msg::Close { conn });
                    let reason = ConnectFailure::Unreachable("timed out".into());
                    self.worker_input(node, Input::ConnectFailed { remote, reason });
                }
            }
            Ev::Main { node, epoch, input } => {
                if self.nodes[node].up && self.nodes[node].epoch == epoch {
                    self.main_input(node, input, None);
                }
            }
            Ev::Crash { node } => {
                self.note(node, || "CRASH".into());
                let n = &mut self.nodes[node];
                n.up = false;
                n.epoch += 1;
                n.worker = None;
                n.hooks.clear();
                n.running = None;
                n.res_up = false;
                n.res_starting = false;
            }
            Ev::Boot { node } => {
                self.note(node, || "BOOT".into());
                let cfg = main_cfg(&self.p, &self.nodes[node].spec);
                let n = &mut self.nodes[node];
                n.up = true;
                n.epoch += 1;
                n.main = ResourceMachine::new(cfg, Time(self.now));
                let epoch = n.epoch;
                self.at(
                    self.now,
                    Ev::Main {
                        node,
                        epoch,
                        input: ResourceInput::Start,
                    },
                );
            }
            Ev::Block { from, to, on } => self.blocked[from][to] = on,
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if self.blocked[from][to] || self.rng.chance(self.p.loss_per_mille) {
            return;
        }
        let mut lat = self.rng.range(self.p.lat_min, self.p.lat_max);
        if self.rng.chance(self.p.spike_per_mille) {
            lat += self.rng.range(0, self.p.spike_max);
        }
        // One TCP stream per pair of nodes is enough to keep order.
        let t = (self.now + lat).max(self.last_delivery[from][to]);
        self.last_delivery[from][to] = t;
        self.at(t, Ev::Deliver { from, to, msg });
    }

    fn remote_index(&self, node: usize, peer: usize) -> usize {
        others(self.nodes.len(), node)
            .iter()
            .position(|&o| o == peer)
            .expect("a peer is a remote")
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
        let r = self.remote_index(to, from);
        let name = |w: &World, i: usize| w.nodes[i].spec.name.to_string();
        match msg {
            Msg::Hs1 { conn, priority } => {
                let input = ResourceInput::Handshake1 {
                    peer: name(self, from),
                    own: name(self, to),
                    priority: Some(priority),
                };
                self.main_input(to, input, Some((from, conn, 1)));
            }
            Msg::Hs1Token { conn } => {
                if self.with_worker(to, |w| w.hs[r] == Some(conn)) {
                    self.send(to, from, Msg::Hs2 { conn });
                }
            }
            Msg::Hs1Refused {
                conn,
                errmsg,
                priority,
            } => {
                if self.with_worker(to, |w| w.hs[r] == Some(conn)) {
                    self.with_worker(to, |w| w.hs[r].take().is_some());
                    let reason = match priority {
                        Some(priority) => ConnectFailure::StrongerPrimary { errmsg, priority },
                        None => ConnectFailure::Refused(errmsg),
                    };
                    self.worker_input(to, Input::ConnectFailed { remote: r, reason });
                }
            }
            Msg::Hs2 { conn } => {
                let input = ResourceInput::Handshake2 {
                    peer: name(self, from),
                };
                self.main_input(to, input, Some((from, conn, 2)));
            }
            Msg::Confirm { conn } => {
                if self.with_worker(to, |w| w.hs[r] == Some(conn)) {
                    self.with_worker(to, |w| {
                        w.hs[r] = None;
                        w.conns[r] = Some(conn);
                        true
                    });
                    self.worker_input(to, Input::Connected { remote: r });
                }
            }
            Msg::Close { conn } => {
                if self.with_worker(to, |w| w.link == Some((from, conn))) {
                    self.worker_input(to, Input::PeerLost { remote: 0 });
                } else if self.with_worker(to, |w| w.conns.get(r) == Some(&Some(conn))) {
                    self.with_worker(to, |w| w.conns[r].take().is_some());
                    self.worker_input(to, Input::PeerLost { remote: r });
                }
            }
            Msg::Hb { conn, msg } => {
                if self.with_worker(to, |w| w.link == Some((from, conn))) {
                    self.worker_input(to, Input::Heartbeat { msg });
                }
            }
            Msg::HbReply { conn, msg } => {
                if self.with_worker(to, |w| w.conns.get(r) == Some(&Some(conn))) {
                    self.worker_input(to, Input::Reply { remote: r, msg });
                }
            }
            Msg::Poll { generation } => {
                let n = &self.nodes[to];
                let state = n.worker.as_ref().map_or(State::Unknown, Worker::state);
                let role = n.main.role();
                self.send(
                    to,
                    from,
                    Msg::PollAns {
                        generation,
                        role,
                        state,
                    },
                );
            }
            Msg::PollAns {
                generation,
                role,
                state,
            } => {
                if self.with_worker(to, |w| w.gens.get(r) == Some(&generation)) {
                    self.send(to, from, Msg::PollAck);
                    let result = Ok((role, state));
                    self.worker_input(to, Input::Polled { remote: r, result });
                }
            }
            Msg::PollAck => {
                if self.with_worker(to, |w| matches!(w.m, Machine::Primary(_))) {
                    self.worker_input(to, Input::StatusPolled { remote: true });
                }
            }
            Msg::Complaint => self.main_input(to, ResourceInput::Complaint, None),
        }
    }

    fn with_worker(&mut self, node: usize, f: impl FnOnce(&mut Worker) -> bool) -> bool {
        self.nodes[node].worker.as_mut().is_some_and(f)
    }

    fn worker_input(&mut self, node: usize, input: Input) {
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
        let peers = others(self.nodes.len(), node);
        for a in actions {
            match a {
                Action::RunHook(event) => {
                    self.note(node, || format!("hook {event:?} asked"));
                    self.nodes[node].hooks.push_back(Hook {
                        kind: HookKind::Worker(event),
                        owner: Some(w.id),
                    });
                    if event == HookEvent::Complaint {
                        self.main_input(node, ResourceInput::ComplaintSent, None);
                    }
                    self.run_hooks(node);
                }
                Action::Connect { remote } => {
                    let conn = self.next_conn;
                    self.next_conn += 1;
                    w.hs[remote] = Some(conn);
                    let priority = self.nodes[node].spec.priority;
                    self.send(node, peers[remote], Msg::Hs1 { conn, priority });
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
                        self.send(node, peers[remote], Msg::Close { conn });
                    }
                    if let Some(g) = w.gens.get_mut(remote) {
                        *g += 1;
                    }
                }
                Action::Heartbeat { remote, msg } => {
                    if let Some(conn) = w.conns[remote] {
                        self.send(node, peers[remote], Msg::Hb { conn, msg });
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
                    self.send(node, peers[remote], Msg::Poll { generation });
                }
                Action::Complain { remote } => self.send(node, peers[remote], Msg::Complaint),
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

    fn close_all(&mut self, node: usize, w: &mut Worker) {
        let peers = others(self.nodes.len(), node);
        for (r, c) in w.conns.iter_mut().enumerate() {
            if let Some(conn) = c.take() {
                self.send(node, peers[r], Msg::Close { conn });
            }
        }
        for (r, c) in w.hs.iter_mut().enumerate() {
            if let Some(conn) = c.take() {
                self.send(node, peers[r], Msg::Close { conn });
            }
        }
        if let Some((peer, conn)) = w.link.take() {
            self.send(node, peer, Msg::Close { conn });
        }
    }

    /// `hs`: the handshake at hand (peer, connection, stage).
    fn main_input(&mut self, node: usize, input: ResourceInput, hs: Option<(usize, u64, u8)>) {
        let now = Time(self.now);
        let actions = self.nodes[node].main.handle(now, input);
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
                    self.nodes[node].hooks.push_back(Hook {
                        kind: HookKind::Main,
                        owner: None,
                    });
                    self.run_hooks(node);
                }
                ResourceAction::AcceptHandshake => {
                    if let Some((peer, conn, 1)) = hs {
                        self.send(node, peer, Msg::Hs1Token { conn });
                    }
                }
                ResourceAction::RefuseHandshake { errmsg, priority } => {
                    if let Some((peer, conn, 1)) = hs {
                        self.send(
                            node,
                            peer,
                            Msg::Hs1Refused {
                                conn,
                                errmsg,
                                priority,
                            },
                        );
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
        let peers = others(self.nodes.len(), node);
        let remotes: Vec<RemoteSpec> = peers
            .iter()
            .map(|&i| RemoteSpec {
                addr: self.nodes[i].spec.name.to_string(),
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
                    remotes: peers.len(),
                    primary: hs.map(|(peer, _, _)| self.remote_index(node, peer)),
                },
                now,
            )),
        };
        Worker {
            id,
            m,
            conns: vec![None; peers.len()],
            hs: vec![None; peers.len()],
            gens: vec![0; peers.len()],
            link: hs
                .filter(|_| role == Role::Secondary)
                .map(|(peer, conn, _)| (peer, conn)),
        }
    }

    /// Starts the next hook if none runs: one at a time per node.
    fn run_hooks(&mut self, node: usize) {
        if self.nodes[node].running.is_some() {
            return;
        }
        let Some(hook) = self.nodes[node].hooks.pop_front() else {
            return;
        };
        let p = self.p.clone();
        let slow = self.rng.chance(p.slow_per_mille);
        let n = &mut self.nodes[node];
        let (dur, result) = match hook.kind {
            HookKind::Worker(HookEvent::Stop) => {
                // `stop` may be slow but always finishes: without fencing
                // nothing bounds a copy whose `stop` hangs (quirks.md Q10).
                let d = if slow { p.hook_timeout * 9 / 10 } else { 30 };
                (self.rng.range(5, d), HookResult::Exited(0))
            }
            HookKind::Worker(e @ (HookEvent::Start | HookEvent::Status)) => {
                let d = if slow {
                    self.rng.range(p.hook_timeout / 2, p.hook_timeout * 2)
                } else {
                    self.rng.range(5, 40)
                };
                if d > p.hook_timeout {
                    (p.hook_timeout, HookResult::TimedOut)
                } else if e == HookEvent::Start {
                    let fail = self.rng.chance(p.start_fail_per_mille);
                    (d, HookResult::Exited(i32::from(fail)))
                } else {
                    (d, HookResult::Exited(0))
                }
            }
            _ => (self.rng.range(1, 5), HookResult::Exited(0)),
        };
        if hook.kind == HookKind::Worker(HookEvent::Start) {
            n.res_starting = true;
        }
        n.hook_seq += 1;
        let (epoch, seq) = (n.epoch, n.hook_seq);
        n.running = Some((hook, seq, result));
        self.at(self.now + dur, Ev::HookEnd { node, epoch, seq });
    }

    fn hook_end(&mut self, node: usize) {
        let Some((hook, _, mut result)) = self.nodes[node].running.take() else {
            return;
        };
        let n = &mut self.nodes[node];
        match hook.kind {
            HookKind::Worker(HookEvent::Start) => {
                n.res_starting = false;
                // A killed `start` may have got the resource going.
                if result != HookResult::Exited(1) {
                    n.res_up = true;
                }
            }
            HookKind::Worker(HookEvent::Stop) => n.res_up = false,
            HookKind::Worker(HookEvent::Status) if result == HookResult::Exited(0) => {
                result = HookResult::Exited(if n.res_up { 0 } else { 1 });
            }
            _ => {}
        }
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
    }
}

fn main_cfg(p: &Params, spec: &NodeSpec) -> ResourceConfig {
    ResourceConfig {
        role_on_start: spec.role_on_start,
        priority: spec.priority,
        complaint_count: p.cc,
        complaint_interval: Duration::from_millis(p.ci),
    }
}

/// A node's remotes: every other node, in order.
fn others(n: usize, me: usize) -> Vec<usize> {
    (0..n).filter(|&i| i != me).collect()
}
