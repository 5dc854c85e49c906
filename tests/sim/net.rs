//! The fake network: what travels between nodes, how late it arrives,
//! and what each kind of message does to the receiving node's daemon.
//!
//! Each message stands for a frame on a TCP connection (or a connection
//! attempt). A node whose host is down swallows everything (a black hole:
//! senders find out by their own deadlines); a node whose host runs but
//! whose daemon does not refuses new connections at once, as a host
//! without a listening socket answers a SYN with a reset; a stalled daemon
//! lets the kernel accept and buffer everything, and reads it only when
//! it resumes.

use hastmon::node::resource::ResourceInput;
use hastmon::proto::msg::{HeartbeatReply, HeartbeatRequest};
use hastmon::role::{ConnectFailure, Input};
use hastmon::types::{Role, State};

use super::rng::Rng;
use super::world::{Ev, Machine, Params, Worker, World, peer_of, remote_of};

#[derive(Clone, Debug)]
pub enum Msg {
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
    /// A connection attempt met no listening socket.
    Reset {
        conn: u64,
    },
    PollReset {
        generation: u64,
    },
}

/// Links that are cut (by how many faults), and the order of delivery
/// per pair of nodes.
pub struct Net {
    pub blocked: Vec<Vec<u32>>,
    last_delivery: Vec<Vec<u64>>,
}

impl Net {
    pub fn new(n: usize) -> Net {
        Net {
            blocked: vec![vec![0; n]; n],
            last_delivery: vec![vec![0; n]; n],
        }
    }

    /// When a message sent now arrives; `None` when it is lost.
    fn arrival(
        &mut self,
        rng: &mut Rng,
        p: &Params,
        from: usize,
        to: usize,
        now: u64,
    ) -> Option<u64> {
        if self.blocked[from][to] > 0 || rng.chance(p.loss_per_mille) {
            return None;
        }
        let mut lat = rng.range(p.lat_min, p.lat_max);
        if rng.chance(p.spike_per_mille) {
            lat += rng.range(0, p.spike_max);
        }
        // One TCP stream per pair of nodes is enough to keep order.
        let t = (now + lat).max(self.last_delivery[from][to]);
        self.last_delivery[from][to] = t;
        Some(t)
    }
}

impl World {
    pub(super) fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if let Some(t) = self.net.arrival(&mut self.rng, &self.p, from, to, self.now) {
            self.at(
                t,
                Ev::Deliver {
                    from,
                    to,
                    msg,
                    admitted: false,
                },
            );
        }
        self.after_send(from);
    }

    /// A message reaches `to`'s host.
    pub(super) fn arrive(&mut self, from: usize, to: usize, msg: Msg, admitted: bool) {
        let n = &self.nodes[to];
        if !admitted && (!n.host_up || self.net.blocked[from][to] > 0) {
            return;
        }
        if !n.daemon_up {
            // Every connection of a dead daemon is closed; new ones are
            // refused.
            match msg {
                Msg::Hs1 { conn, .. } => self.send(to, from, Msg::Reset { conn }),
                Msg::Poll { generation } => self.send(to, from, Msg::PollReset { generation }),
                _ => {}
            }
            return;
        }
        if n.stalled_since.is_some() {
            let ev = Ev::Deliver {
                from,
                to,
                msg,
                admitted: true,
            };
            self.nodes[to].held.push(ev);
            return;
        }
        self.deliver(from, to, msg);
    }

    /// The daemon of `to` reads a message.
    fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
        let r = remote_of(to, from);
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
                let reason = match priority {
                    Some(priority) => ConnectFailure::StrongerPrimary { errmsg, priority },
                    None => ConnectFailure::Refused(errmsg),
                };
                self.handshake_failed(to, r, conn, reason);
            }
            Msg::Reset { conn } => {
                let reason = ConnectFailure::Unreachable("Connection refused".into());
                self.handshake_failed(to, r, conn, reason);
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
                let ans = Msg::PollAns {
                    generation,
                    role,
                    state,
                };
                self.send(to, from, ans);
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
            Msg::PollReset { generation } => {
                if self.with_worker(to, |w| w.gens.get(r) == Some(&generation)) {
                    let result = Err("Connection refused".into());
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

    /// The handshake `conn` to remote `r` of `node` ended without a link.
    fn handshake_failed(&mut self, node: usize, r: usize, conn: u64, reason: ConnectFailure) {
        if self.with_worker(node, |w| w.hs[r].take_if(|c| *c == conn).is_some()) {
            self.worker_input(node, Input::ConnectFailed { remote: r, reason });
        }
    }

    /// Closes every connection of a worker that goes away.
    pub(super) fn close_all(&mut self, node: usize, w: &mut Worker) {
        for r in 0..w.conns.len() {
            for conn in [w.conns[r].take(), w.hs[r].take()].into_iter().flatten() {
                self.send(node, peer_of(node, r), Msg::Close { conn });
            }
        }
        if let Some((peer, conn)) = w.link.take() {
            self.send(node, peer, Msg::Close { conn });
        }
    }
}
