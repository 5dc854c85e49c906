//! A cluster of simulated nodes. Each node's main process is the
//! product's own `NodeMachine`, built from a hastmon.conf written for the
//! run; each worker is the product's role machine. What is simulated is
//! only the world around them: the clock (ms), the network (`net`), the
//! processes (`hooks`, and the shell that carries out the node's actions
//! in `shell`), faults (`faults`) and what the checks see (`observe`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;

use hastmon::config::{Config, NodeNames, Syntax, parse_bytes};
use hastmon::node::{HookExit, HookId, JobId, NodeMachine, ResId, WorkerExit, WorkerRef};
use hastmon::role::{Action, Input, Report, RoleMachine, Time};
use hastmon::types::Role;

use super::faults::Schedule;
use super::hooks::{Procs, Resource};
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
    /// A handshake attempt's whole deadline: two stages, each a connect
    /// and an answer, each of those bounded by `to`.
    pub hs_timeout: u64,
    pub hook_timeout: u64,
    pub lat_min: u64,
    pub lat_max: u64,
    /// Rare extra delay of a message, up to this much.
    pub spike_max: u64,
    pub spike_per_mille: u64,
    pub loss_per_mille: u64,
    /// Hooks that run long (not `stop`)...
    pub slow_per_mille: u64,
    /// ... and may then run past `hook_timeout`.
    pub overrun: bool,
    pub start_fail_per_mille: u64,
}

impl Params {
    pub fn lat_worst(&self) -> u64 {
        self.lat_max + self.spike_max
    }
}

#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Its IP address, which is also its identity in tie-breaks.
    pub name: &'static str,
    pub priority: i32,
    pub role_on_start: Role,
    /// When its daemon first starts.
    pub start_at: u64,
}

/// An input for a node machine that waits in the event queue.
#[derive(Clone, Debug)]
pub enum Later {
    Start,
    WorkerExited { worker: WorkerRef, exit: WorkerExit },
    HookExited { hook: HookId, exit: HookExit },
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
    /// A stage of an outgoing connection job ran out of time.
    JobTimeout {
        node: usize,
        epoch: u32,
        job: JobId,
        stage: u8,
    },
    Main {
        node: usize,
        epoch: u32,
        input: Later,
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

pub struct Worker {
    pub id: WorkerRef,
    pub m: RoleMachine,
    /// Primary: the established connection per remote.
    pub conns: Vec<Option<u64>>,
    /// Secondary: the primary's node and connection.
    pub link: Option<(usize, u64)>,
}

impl Worker {
    pub(super) fn handle(&mut self, now: Time, input: Input) -> Vec<Action> {
        self.m.handle(now, input)
    }

    fn deadline(&self) -> Option<Time> {
        self.m.deadline()
    }

    pub(super) fn report(&self) -> Report {
        self.m.report()
    }
}

/// An outgoing connection job of a node's main process.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub remote: usize,
    pub kind: JobKind,
    /// The connection of the stage in progress (the first one's is kept
    /// for the heartbeats).
    pub conn: u64,
    pub first: u64,
    pub stage: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Handshake,
    Poll,
}

pub struct Node {
    pub spec: NodeSpec,
    pub cfg: Config,
    pub host_up: bool,
    pub daemon_up: bool,
    pub stalled_since: Option<u64>,
    /// What a stalled daemon will read when it resumes.
    pub(super) held: Vec<Ev>,
    /// Counts daemon incarnations: late news for a dead one is dropped.
    pub(super) epoch: u32,
    pub node: NodeMachine,
    pub res: ResId,
    pub(super) worker: Option<Worker>,
    /// Hook processes of this daemon, by the machine's id.
    pub(super) hook_procs: HashMap<HookId, u64>,
    /// Outgoing connection jobs under way.
    pub(super) jobs: HashMap<JobId, Job>,
    /// The node at the other end of each accepted connection.
    pub(super) peers: HashMap<u64, usize>,
    /// Answers to status polls awaiting their acknowledgement.
    pub(super) acks: HashMap<u64, Vec<ResId>>,
    /// Its main process dies as soon as no hook runs (see
    /// `World::deaths_mid_hook`), then starts again if it was due to.
    pub(super) dying: bool,
    pub(super) restart: Option<Role>,
    pub resource: Resource,
    pub history: History,
}

impl Node {
    pub fn maybe_running(&self) -> bool {
        self.resource.maybe_running()
    }

    /// The daemon runs and is not stalled.
    pub fn live(&self) -> bool {
        self.daemon_up && self.stalled_since.is_none()
    }

    /// The role the main process holds for the resource.
    pub fn role(&self) -> Role {
        self.node
            .get(self.res)
            .map_or(Role::Init, |r| r.machine.role())
    }

    pub fn serving(&self) -> bool {
        self.node
            .get(self.res)
            .is_some_and(|r| r.machine.serving().is_some())
    }

    pub(super) fn report(&self) -> Option<Report> {
        self.worker
            .as_ref()
            .filter(|_| self.daemon_up)
            .map(Worker::report)
    }

    /// Hooks queued or running in the main process.
    pub(super) fn hooks_busy(&self) -> bool {
        self.node.get(self.res).is_some_and(|r| !r.hooks.idle())
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
    pub(super) next_conn: u64,
    pub(super) procs: Procs,
    pub(super) faults: Schedule,
    pub(super) inputs: u64,
    /// Main processes may die while one of their hooks runs or waits (the
    /// guardian kills a running hook and honours a `stop` still owed).
    /// Off, a death waits for the hooks to end.
    pub deaths_mid_hook: bool,
    pub promotions: Vec<Promotion>,
    /// When node 0's main process first died.
    pub main_died_at: Option<u64>,
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

/// Seconds as hastmon.conf takes them, to the millisecond.
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The hastmon.conf every node of the run reads: one resource, every
/// other node a remote, in order.
pub fn conf_text(p: &Params, specs: &[NodeSpec], roles: &[Role]) -> String {
    let mut t = format!(
        "resource r {{\n exec /sim/hook\n timeout {}\n heartbeat_interval {}\n \
         complaint_count {}\n complaint_interval {}\n hook_timeout {}\n attempts {}\n",
        secs(p.to),
        secs(p.hb),
        p.cc,
        secs(p.ci),
        secs(p.hook_timeout),
        p.attempts
    );
    for (i, s) in specs.iter().enumerate() {
        let remotes: Vec<&str> = (0..specs.len())
            .filter(|&j| j != i)
            .map(|j| specs[j].name)
            .collect();
        t += &format!(
            " on n{i} {{ remote {} priority {} role_on_start {} }}\n",
            remotes.join(" "),
            s.priority,
            roles[i]
        );
    }
    t + "}\n"
}

/// The configuration node `i` reads, with `role` as its `role_on_start`.
pub fn node_config(p: &Params, specs: &[NodeSpec], i: usize, role: Role) -> Config {
    let mut roles: Vec<Role> = specs.iter().map(|s| s.role_on_start).collect();
    roles[i] = role;
    let text = conf_text(p, specs, &roles);
    parse_bytes(
        text.as_bytes(),
        Syntax::Conf,
        &NodeNames::exact(&format!("n{i}")),
    )
    .unwrap_or_else(|e| panic!("the simulated configuration is valid: {e:?}\n{text}"))
}

pub fn resolve(a: &hastmon::config::address::Address) -> Option<SocketAddr> {
    a.literal()
}

impl World {
    pub fn new(p: Params, specs: Vec<NodeSpec>, seed: u64, trace: bool) -> World {
        let n = specs.len();
        let nodes = (0..n)
            .map(|i| {
                let cfg = node_config(&p, &specs, i, specs[i].role_on_start);
                let node = NodeMachine::new(&cfg, &resolve, Time(0));
                let res = node.active().next().expect("one resource");
                Node {
                    spec: specs[i].clone(),
                    cfg,
                    host_up: true,
                    daemon_up: false,
                    stalled_since: None,
                    held: Vec::new(),
                    epoch: 0,
                    node,
                    res,
                    worker: None,
                    hook_procs: HashMap::new(),
                    jobs: HashMap::new(),
                    peers: HashMap::new(),
                    acks: HashMap::new(),
                    dying: false,
                    restart: None,
                    resource: Resource::default(),
                    history: History::default(),
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
            net: Net::new(n),
            next_conn: 1,
            procs: Procs::default(),
            faults: Schedule::default(),
            inputs: 0,
            deaths_mid_hook: false,
            promotions: Vec::new(),
            main_died_at: None,
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
                n.node.deadline().map(|t| (t.0, i, true)),
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
                    self.node_input(i, hastmon::node::Input::Tick, false);
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
        if let Ev::JobTimeout { node, .. } | Ev::Main { node, .. } = ev
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
            Ev::JobTimeout {
                node,
                epoch,
                job,
                stage,
            } => {
                let n = &self.nodes[node];
                if n.daemon_up && n.epoch == epoch {
                    self.job_timeout(node, job, stage);
                }
            }
            Ev::Main { node, epoch, input } => {
                if self.nodes[node].daemon_up && self.nodes[node].epoch == epoch {
                    self.later(node, input);
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

    fn later(&mut self, node: usize, input: Later) {
        use hastmon::node::Input as N;
        match input {
            Later::Start => self.node_input(node, N::Start, false),
            Later::WorkerExited { worker, exit } => {
                self.node_input(node, N::WorkerExited { worker, exit }, false)
            }
            Later::HookExited { hook, exit } => {
                self.node_input(node, N::HookExited { hook, exit }, false)
            }
        }
        self.kill_main(node);
    }

    pub(super) fn with_worker(&mut self, node: usize, f: impl FnOnce(&mut Worker) -> bool) -> bool {
        self.nodes[node].worker.as_mut().is_some_and(f)
    }

    pub(super) fn worker_input(&mut self, node: usize, input: Input) {
        let now = Time(self.now);
        let Some(w) = self.nodes[node].worker.as_mut() else {
            return;
        };
        let id = w.id;
        let actions = w.handle(now, input);
        self.worker_actions(node, id, actions);
    }

    pub(super) fn new_conn(&mut self) -> u64 {
        let c = self.next_conn;
        self.next_conn += 1;
        c
    }
}
