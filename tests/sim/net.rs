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

use hastmon::proto::NvList;
use hastmon::proto::msg::{HeartbeatReply, HeartbeatRequest};
use hastmon::role::Input;

use super::rng::Rng;
use super::world::{Ev, Params, World, remote_of};

#[derive(Clone, Debug)]
pub enum Msg {
    /// A new connection and the request on it: a handshake's stage, a
    /// status poll, a complaint.
    Request {
        conn: u64,
        nv: NvList,
    },
    /// An answer on a connection: a token, a refusal, a status reply.
    Answer {
        conn: u64,
        nv: NvList,
    },
    /// The secondary worker's confirmation, on the first connection.
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
    /// A connection attempt met no listening socket.
    Reset {
        conn: u64,
    },
    /// The TCP acknowledgement of an answer.
    Ack {
        conn: u64,
    },
}

/// Links that are cut (by how many faults), and the order of delivery
/// per pair of nodes.
pub struct Net {
    pub blocked: Vec<Vec<u32>>,
    last_delivery: Vec<Vec<u64>>,
    /// Segments are lost (and sent again) until then: loss is a fault
    /// that heals with the others of the run.
    pub loss_until: u64,
}

impl Net {
    pub fn new(n: usize) -> Net {
        Net {
            blocked: vec![vec![0; n]; n],
            last_delivery: vec![vec![0; n]; n],
            loss_until: u64::MAX,
        }
    }

    /// When a message sent now arrives; `None` when its link is cut. A
    /// lost segment is not lost to the stream: TCP sends it again after
    /// its retransmission timeout (200 ms at least on Linux, doubling
    /// each time), and everything behind it on the stream waits.
    fn arrival(
        &mut self,
        rng: &mut Rng,
        p: &Params,
        from: usize,
        to: usize,
        now: u64,
    ) -> Option<u64> {
        if self.blocked[from][to] > 0 {
            return None;
        }
        let mut lat = rng.range(p.lat_min, p.lat_max);
        let mut rto = 200;
        while now < self.loss_until && rng.chance(p.loss_per_mille) {
            lat += rto;
            rto *= 2;
        }
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
            if let Msg::Request { conn, .. } = msg {
                self.send(to, from, Msg::Reset { conn });
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
        match msg {
            Msg::Request { conn, nv } => self.listen_request(from, to, conn, &nv),
            Msg::Answer { conn, nv } => {
                // Its TCP acknowledges what arrived, read or not.
                self.send(to, from, Msg::Ack { conn });
                self.job_answer(from, to, conn, &nv);
            }
            Msg::Confirm { conn } => self.job_confirmed(to, conn),
            Msg::Close { conn } => self.conn_closed(from, to, conn),
            Msg::Reset { conn } => self.conn_reset(to, conn),
            Msg::Ack { conn } => {
                if let Some(resources) = self.nodes[to].acks.remove(&conn) {
                    let input = hastmon::node::Input::PollAnswered { resources };
                    self.node_input(to, input, false);
                }
            }
            Msg::Hb { conn, msg } => {
                if self.with_worker(to, |w| w.link == Some((from, conn))) {
                    self.worker_input(to, Input::Heartbeat { msg });
                }
            }
            Msg::HbReply { conn, msg } => {
                let r = remote_of(to, from);
                if self.with_worker(to, |w| w.conns.get(r) == Some(&Some(conn))) {
                    self.worker_input(to, Input::Reply { remote: r, msg });
                }
            }
        }
    }
}
