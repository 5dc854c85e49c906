//! What the daemon's shell does, done in the simulated world: carrying
//! out the node machine's actions (forks, signals, hooks, outgoing
//! connections, answers) and the workers' (heartbeats, replies, polls),
//! and feeding back what comes of them. It decides nothing: every
//! decision is the product's, in `NodeMachine` and the role machines.

use std::net::{IpAddr, SocketAddr};

use hastmon::node::{
    Action as NodeAction, Handoff, Input as NodeInput, JobId, JobOutcome, Leave, ListenInput,
    Purpose, WorkerRef,
};
use hastmon::proto::NvList;
use hastmon::proto::msg::{
    Complaint, ControlCmd, ControlRequest, Handshake1, Handshake1Reply, Handshake2,
};
use hastmon::role::{Action, ConnectFailure, Input, RoleMachine, Time, WorkerSetup};
use hastmon::types::Role;
use hastmon::worker::msg::{ToMain, ToWorker};

use super::net::Msg;
use super::world::{Ev, Job, JobKind, Later, Worker, World, peer_of, remote_of};

/// Node `i`'s address.
pub fn addr(w: &World, i: usize, port: u16) -> SocketAddr {
    let ip: IpAddr = w.nodes[i].spec.name.parse().expect("an IP address");
    SocketAddr::new(ip, port)
}

impl World {
    /// Feeds node `node`'s machine and carries out what it decides;
    /// `complaint` marks a complaint's arrival, for the checks.
    pub(super) fn node_input(&mut self, node: usize, input: NodeInput<'_>, complaint: bool) {
        self.inputs += 1;
        if complaint {
            self.nodes[node]
                .history
                .complaints
                .push_back((self.now, self.inputs));
        }
        let (role, serving) = (self.nodes[node].role(), self.nodes[node].serving());
        let actions = self.nodes[node].node.handle(Time(self.now), input);
        self.observe(node, role, serving, complaint);
        if role == Role::Primary && self.nodes[node].role() != Role::Primary {
            self.on_leave_primary(node);
        }
        for a in actions {
            self.node_action(node, a);
        }
    }

    pub(super) fn later_input(&mut self, node: usize, input: Later) {
        let epoch = self.nodes[node].epoch;
        self.at(self.now, Ev::Main { node, epoch, input });
    }

    fn node_action(&mut self, node: usize, a: NodeAction) {
        match a {
            NodeAction::Fork {
                worker,
                role,
                urgent,
                primary_heartbeat,
                handoff,
            } => self.fork(node, worker, role, urgent, primary_heartbeat, handoff),
            NodeAction::Signal { worker, leave } => {
                if self.nodes[node]
                    .worker
                    .as_ref()
                    .is_some_and(|w| w.id == worker)
                {
                    let stop = leave == Leave::StopResource;
                    self.note(node, || {
                        format!("signal worker {} ({leave:?})", worker.id.0)
                    });
                    self.worker_input(node, Input::Terminate { stop });
                }
            }
            NodeAction::ToWorker { worker, msg } => {
                if self.nodes[node]
                    .worker
                    .as_ref()
                    .is_none_or(|w| w.id != worker)
                {
                    return;
                }
                let input = match msg {
                    ToWorker::HookDone { event, result } => Input::HookDone { event, result },
                    ToWorker::Polled { remote } => Input::StatusPolled { remote },
                    ToWorker::ConnectFailed { remote, reason } => {
                        Input::ConnectFailed { remote, reason }
                    }
                    ToWorker::PollResult {
                        remote,
                        cycle,
                        result,
                    } => Input::Polled {
                        remote,
                        cycle,
                        result,
                    },
                    ToWorker::Connected { remote, .. } => Input::Connected { remote },
                };
                self.worker_input(node, input);
            }
            NodeAction::GiveConnection {
                worker,
                job,
                remote,
            } => {
                let Some(j) = self.nodes[node].jobs.remove(&job) else {
                    return;
                };
                if self.with_worker(node, |w| {
                    w.id == worker && {
                        w.conns[remote] = Some(j.first);
                        true
                    }
                }) {
                    self.worker_input(node, Input::Connected { remote });
                }
            }
            NodeAction::Connect { job, request } => {
                let remote = self.nodes[node]
                    .cfg
                    .resources
                    .first()
                    .and_then(|r| {
                        r.remote
                            .iter()
                            .position(|a| a.literal() == Some(request.addr))
                    })
                    .expect("a configured remote");
                let to = peer_of(node, remote);
                let conn = self.new_conn();
                let name = request.name.clone();
                match request.purpose {
                    Purpose::Handshake {
                        priority,
                        heartbeat_ms,
                    } => {
                        let nv = Handshake1 {
                            resource: name,
                            priority: Some(priority),
                            auth: None,
                            heartbeat_ms: Some(heartbeat_ms),
                        }
                        .to_nv();
                        self.start_job(node, job, remote, JobKind::Handshake, conn);
                        self.send(node, to, Msg::Request { conn, nv });
                    }
                    Purpose::Poll => {
                        let nv = ControlRequest {
                            cmd: ControlCmd::Status,
                            role: None,
                            resources: vec![name],
                            auth: None,
                            extended: false,
                        }
                        .to_nv();
                        self.start_job(node, job, remote, JobKind::Poll, conn);
                        self.send(node, to, Msg::Request { conn, nv });
                    }
                    Purpose::Complain => {
                        let nv = Complaint {
                            auth: None,
                            resource: name,
                        }
                        .to_nv();
                        self.send(node, to, Msg::Request { conn, nv });
                        // Sent: nothing is awaited.
                        let outcome = JobOutcome::Complained;
                        self.node_input(node, NodeInput::JobDone { job, outcome }, false);
                    }
                }
            }
            NodeAction::CancelJob { job } => {
                if let Some(j) = self.nodes[node].jobs.remove(&job) {
                    self.send(node, peer_of(node, j.remote), Msg::Close { conn: j.conn });
                }
            }
            NodeAction::RunHook { hook, args, .. } => self.spawn_hook(node, hook, &args),
            NodeAction::SignalHook { hook, kill } => self.signal_hook(node, hook, kill),
            NodeAction::Reply { conn, reply } => self.answer(node, conn.0, reply),
            NodeAction::ReplyPoll {
                conn,
                reply,
                resources,
            } => {
                // Contact once the poller's TCP acknowledges the answer.
                if reply.is_some() {
                    self.nodes[node].acks.insert(conn.0, resources);
                }
                self.answer(node, conn.0, reply);
            }
            NodeAction::Hold { conn, reply } => {
                if let (Some(peer), Some(nv)) = (self.conn_peer(node, conn.0), reply) {
                    self.send(node, peer, Msg::Answer { conn: conn.0, nv });
                }
            }
            NodeAction::Drop { conn } => {
                if let Some(peer) = self.conn_peer(node, conn.0) {
                    self.send(node, peer, Msg::Close { conn: conn.0 });
                }
            }
            NodeAction::Log { msg, .. } => self.note(node, || format!("main: {msg}")),
            NodeAction::Exit => {}
        }
    }

    /// Sends an answer (if any) on a listen connection and closes it.
    fn answer(&mut self, node: usize, conn: u64, reply: Option<NvList>) {
        let Some(peer) = self.conn_peer(node, conn) else {
            return;
        };
        if let Some(nv) = reply {
            self.send(node, peer, Msg::Answer { conn, nv });
        }
        self.send(node, peer, Msg::Close { conn });
        self.nodes[node].peers.remove(&conn);
    }

    /// The node at the other end of listen connection `conn`.
    fn conn_peer(&self, node: usize, conn: u64) -> Option<usize> {
        self.nodes[node].peers.get(&conn).copied()
    }

    fn start_job(&mut self, node: usize, job: JobId, remote: usize, kind: JobKind, conn: u64) {
        let j = Job {
            remote,
            kind,
            conn,
            first: conn,
            stage: 1,
        };
        self.nodes[node].jobs.insert(job, j);
        self.job_deadline(node, job, 1);
    }

    /// A stage of a job: a connect and an answer, each within `timeout`.
    fn job_deadline(&mut self, node: usize, job: JobId, stage: u8) {
        let epoch = self.nodes[node].epoch;
        let t = self.now + 2 * self.p.to;
        self.at(
            t,
            Ev::JobTimeout {
                node,
                epoch,
                job,
                stage,
            },
        );
    }

    pub(super) fn job_timeout(&mut self, node: usize, job: JobId, stage: u8) {
        let Some(j) = self.nodes[node].jobs.get(&job).copied() else {
            return;
        };
        if j.stage != stage {
            return;
        }
        self.nodes[node].jobs.remove(&job);
        let peer = peer_of(node, j.remote);
        self.send(node, peer, Msg::Close { conn: j.conn });
        if j.conn != j.first {
            self.send(node, peer, Msg::Close { conn: j.first });
        }
        let outcome = JobOutcome::Failed(ConnectFailure::Unreachable("timed out".into()));
        self.node_input(node, NodeInput::JobDone { job, outcome }, false);
    }

    /// Ends the job that uses connection `conn` of `node`.
    fn job_failed(&mut self, node: usize, conn: u64, why: &str) {
        let found = self.nodes[node]
            .jobs
            .iter()
            .find(|(_, j)| j.conn == conn || j.first == conn)
            .map(|(id, _)| *id);
        let Some(job) = found else { return };
        self.nodes[node].jobs.remove(&job);
        let outcome = JobOutcome::Failed(ConnectFailure::Unreachable(why.into()));
        self.node_input(node, NodeInput::JobDone { job, outcome }, false);
    }

    fn fork(
        &mut self,
        node: usize,
        worker: WorkerRef,
        role: Role,
        urgent: bool,
        primary_heartbeat: Option<std::time::Duration>,
        handoff: Option<Handoff>,
    ) {
        self.note(node, || format!("fork {role} worker {}", worker.id.0));
        let link = handoff.and_then(|h| Some((self.conn_peer(node, h.first.0)?, h.first.0)));
        let setup = WorkerSetup {
            role,
            primary: handoff.map(|h| h.remote),
            primary_heartbeat,
            urgent,
        };
        let n = &self.nodes[node];
        let r = n.node.get(worker.res).expect("forked for a resource");
        let m = RoleMachine::new(&r.cfg, setup, Time(self.now)).expect("a worker's role");
        let remotes = r.cfg.remote.len();
        if let Some(mut old) = self.nodes[node].worker.take() {
            self.close_all(node, &mut old);
        }
        self.nodes[node].worker = Some(Worker {
            id: worker,
            m,
            conns: vec![None; remotes],
            link,
        });
        // The secondary worker confirms on the first connection.
        if let Some((peer, conn)) = link {
            self.send(node, peer, Msg::Confirm { conn });
        }
        let pid = i32::try_from(worker.id.0).unwrap_or(i32::MAX);
        self.node_input(node, NodeInput::WorkerStarted { worker, pid }, false);
        self.worker_input(node, Input::Start);
    }

    /// Carries out the actions of worker `worker` of `node`, which stays
    /// in place meanwhile, so that what the node machine answers reaches
    /// it; once it exits (or is gone) only its messages still go out.
    pub(super) fn worker_actions(&mut self, node: usize, worker: WorkerRef, actions: Vec<Action>) {
        let here = |w: &World| {
            w.nodes[node]
                .worker
                .as_ref()
                .is_some_and(|x| x.id == worker)
        };
        for a in actions {
            let msg = match a {
                Action::RunHook(event) => ToMain::RunHook(event),
                Action::Connect { remote } => ToMain::Connect { remote },
                Action::Poll { remote, cycle } => ToMain::Poll { remote, cycle },
                Action::Complain { remote } => ToMain::Complain { remote },
                Action::Disconnect { remote } => {
                    let conn = self.nodes[node]
                        .worker
                        .as_mut()
                        .filter(|x| x.id == worker)
                        .and_then(|x| x.conns.get_mut(remote)?.take());
                    if let Some(conn) = conn {
                        self.send(node, peer_of(node, remote), Msg::Close { conn });
                    }
                    continue;
                }
                Action::Heartbeat { remote, msg } => {
                    let conn = self.nodes[node]
                        .worker
                        .as_ref()
                        .filter(|x| x.id == worker)
                        .and_then(|x| x.conns[remote]);
                    if let Some(conn) = conn {
                        self.send(node, peer_of(node, remote), Msg::Hb { conn, msg });
                    }
                    continue;
                }
                Action::Reply { msg } => {
                    let link = self.nodes[node]
                        .worker
                        .as_ref()
                        .filter(|x| x.id == worker)
                        .and_then(|x| x.link);
                    if let Some((peer, conn)) = link {
                        self.send(node, peer, Msg::HbReply { conn, msg });
                    }
                    continue;
                }
                Action::Log { msg, .. } => {
                    self.note(node, || msg);
                    continue;
                }
                Action::Exit(code) => {
                    self.note(node, || format!("worker {} exits {code}", worker.id.0));
                    if here(self)
                        && let Some(mut w) = self.nodes[node].worker.take()
                    {
                        self.close_all(node, &mut w);
                    }
                    let exit = hastmon::node::WorkerExit::Code(code);
                    self.later_input(node, Later::WorkerExited { worker, exit });
                    return;
                }
            };
            self.node_input(node, NodeInput::FromWorker { worker, msg }, false);
        }
    }

    /// Closes every connection of a worker that goes away.
    pub(super) fn close_all(&mut self, node: usize, w: &mut Worker) {
        for r in 0..w.conns.len() {
            if let Some(conn) = w.conns[r].take() {
                self.send(node, peer_of(node, r), Msg::Close { conn });
            }
        }
        if let Some((peer, conn)) = w.link.take() {
            self.send(node, peer, Msg::Close { conn });
        }
    }

    /// A request on a new connection reaches `to`'s listen socket.
    pub(super) fn listen_request(&mut self, from: usize, to: usize, conn: u64, nv: &NvList) {
        self.nodes[to].peers.insert(conn, from);
        let complaint = matches!(
            hastmon::proto::msg::ListenRequest::from_nv(nv),
            Ok(hastmon::proto::msg::ListenRequest::Complaint(_))
        );
        let mut token = [0u8; 16];
        for b in &mut token {
            *b = self.rng.next_u64() as u8;
        }
        let port = 40_000 + (conn % 20_000) as u16;
        let input = NodeInput::Listen(ListenInput {
            conn: hastmon::node::ConnId(conn),
            peer: addr(self, from, port),
            local: addr(self, to, 8458),
            nv,
            session: None,
            wall: 0,
            token,
        });
        self.node_input(to, input, complaint);
    }

    /// An answer on connection `conn` reaches the node that opened it.
    pub(super) fn job_answer(&mut self, from: usize, to: usize, conn: u64, nv: &NvList) {
        let found = self.nodes[to]
            .jobs
            .iter()
            .find(|(_, j)| j.conn == conn)
            .map(|(id, j)| (*id, *j));
        let Some((job, j)) = found else { return };
        match (j.kind, j.stage) {
            (JobKind::Poll, _) => {
                self.nodes[to].jobs.remove(&job);
                let outcome = hastmon::node::poll_outcome(nv);
                self.node_input(to, NodeInput::JobDone { job, outcome }, false);
            }
            (JobKind::Handshake, 1) => match Handshake1Reply::from_nv(nv) {
                Ok(Handshake1Reply::Token(token)) => {
                    let c2 = self.new_conn();
                    let name = self.nodes[to].cfg.resources[0].name.clone();
                    let nv = Handshake2 {
                        auth: None,
                        resource: name,
                        token,
                        resuid: 0,
                    }
                    .to_nv();
                    if let Some(j) = self.nodes[to].jobs.get_mut(&job) {
                        j.conn = c2;
                        j.stage = 2;
                    }
                    self.job_deadline(to, job, 2);
                    self.send(to, from, Msg::Request { conn: c2, nv });
                }
                Ok(Handshake1Reply::Refused { errmsg, priority }) => {
                    self.nodes[to].jobs.remove(&job);
                    let reason = match priority {
                        Some(priority) => ConnectFailure::StrongerPrimary { errmsg, priority },
                        None => ConnectFailure::Refused(errmsg),
                    };
                    let outcome = JobOutcome::Failed(reason);
                    self.node_input(to, NodeInput::JobDone { job, outcome }, false);
                }
                Err(e) => self.job_failed(to, conn, &e.to_string()),
            },
            // A stage-2 refusal comes on the second connection, where the
            // daemon does not read: its deadline ends the job.
            _ => {}
        }
    }

    /// The secondary worker's confirmation on the first connection.
    pub(super) fn job_confirmed(&mut self, to: usize, conn: u64) {
        let found = self.nodes[to]
            .jobs
            .iter()
            .find(|(_, j)| j.first == conn && j.stage == 2)
            .map(|(id, _)| *id);
        if let Some(job) = found {
            let outcome = JobOutcome::Connected;
            self.node_input(to, NodeInput::JobDone { job, outcome }, false);
        }
    }

    /// A connection closed by the other end.
    pub(super) fn conn_closed(&mut self, from: usize, to: usize, conn: u64) {
        let r = remote_of(to, from);
        if self.with_worker(to, |w| w.link == Some((from, conn))) {
            self.with_worker(to, |w| w.link.take().is_some());
            self.worker_input(to, Input::PeerLost { remote: 0 });
        } else if self.with_worker(to, |w| w.conns.get(r) == Some(&Some(conn))) {
            self.with_worker(to, |w| w.conns[r].take().is_some());
            self.worker_input(to, Input::PeerLost { remote: r });
        } else if self.nodes[to]
            .jobs
            .values()
            .any(|j| j.conn == conn && j.stage == 1 || j.first == conn)
        {
            self.job_failed(to, conn, "connection closed by the remote node");
        }
        self.nodes[to].peers.remove(&conn);
    }

    pub(super) fn conn_reset(&mut self, to: usize, conn: u64) {
        self.job_failed(to, conn, "Connection refused");
    }
}
