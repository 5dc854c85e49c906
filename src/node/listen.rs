//! What arrives on the listen socket, and who may do it: status polls
//! and other control requests, complaints, and the two stages of a
//! primary's handshake. Every refusal is logged with the peer.
//!
//! A primary's handshake: stage 1 (on its first connection) names the
//! resource and the primary's priority; the machine accepts or refuses
//! it, and an accepted one gets a token and is held. Stage 2 (on a
//! second connection) brings the token back; once accepted, both
//! connections go to the secondary worker the machine starts, which
//! confirms on the first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::access::{authenticate, covers, listed, same_ip};
use super::resource::{ResourceAction, ResourceInput};
use super::{Action, ConnId, Handoff, ListenInput, NodeMachine, ResId, log, log_limited};
use crate::proto::NvList;
use crate::proto::msg::{
    ControlCmd, ControlRequest, Handshake1Reply, ListenRequest, Refusal, Token, errmsg,
};
use crate::role::Level;

/// A stage 1 accepted, waiting for its stage 2.
#[derive(Clone, Debug)]
pub struct FirstStage {
    conn: ConnId,
    token: Token,
    /// Whether it came in a session: both stages must, or neither.
    sealed: bool,
    /// The heartbeat interval the primary announced (Q22).
    heartbeat: Option<Duration>,
}

/// Stage 1s by resource and peer address.
pub type FirstStages = HashMap<(ResId, IpAddr), FirstStage>;

impl NodeMachine {
    pub(super) fn listen(&mut self, l: ListenInput<'_>, out: &mut Vec<Action>) {
        let peer = l.peer;
        let request = match ListenRequest::from_nv(l.nv) {
            Ok(r) => r,
            Err(e) => {
                log(
                    out,
                    Level::Warning,
                    format!("Unable to handle the request from {peer}: {e}."),
                );
                return out.push(Action::Reply {
                    conn: l.conn,
                    reply: None,
                });
            }
        };
        if let ListenRequest::Control(req) = request {
            return self.network_control(&l, req, out);
        }
        let resource = match &request {
            ListenRequest::Complaint(c) => &c.resource,
            ListenRequest::Handshake1(h) => &h.resource,
            ListenRequest::Handshake2(h) => &h.resource,
            ListenRequest::Control(_) => unreachable!("handled above"),
        };
        let Some(id) = self.find(resource) else {
            log_limited(
                out,
                Level::Warning,
                format!("Request from {peer} for unknown resource {resource}."),
                None,
            );
            return refuse(out, l.conn, errmsg::RESOURCE_NOT_CONFIGURED, None);
        };
        let r = &self.res[&id];
        let name = r.cfg.name.clone();
        let remote = r
            .remotes
            .iter()
            .position(|a| a.is_some_and(|a| same_ip(a.ip(), peer.ip())));
        if !self.knows(id, peer.ip()) {
            log_limited(
                out,
                Level::Warning,
                format!("[{name}] {peer} is neither a remote nor a friend of the resource."),
                None,
            );
            return refuse(out, l.conn, errmsg::NO_ACCESS, None);
        }
        let key = r.cfg.key.as_ref();
        let authenticated = match l.session {
            // Workers continue the session under their own resource's name.
            Some(s) if s.resource() != name => {
                Err(format!("its session is for resource {}.", s.resource()))
            }
            Some(s) if !covers(s, key) => Err("its session has another key.".into()),
            Some(_) => Ok(()),
            None => authenticate(l.nv, key, peer, l.local, l.wall),
        };
        if let Err(e) = authenticated {
            log_limited(
                out,
                Level::Warning,
                format!("[{name}] Authentication of {peer} failed: {e}"),
                None,
            );
            return refuse(out, l.conn, errmsg::NO_ACCESS, None);
        }
        let from = peer.ip().to_canonical();
        match request {
            ListenRequest::Complaint(_) => {
                out.push(Action::Reply {
                    conn: l.conn,
                    reply: None,
                });
                // The missing primary is this node, letting the resource
                // go: a complaint must not bring it straight back.
                if self.stopping(id) {
                    return log(
                        out,
                        Level::Debug,
                        format!(
                            "[{name}] Ignoring a complaint from {peer}: the resource is being stopped here."
                        ),
                    );
                }
                log(
                    out,
                    Level::Debug,
                    format!("[{name}] Complaint from {peer}."),
                );
                self.resource_input(id, ResourceInput::Complaint, out);
            }
            // Only a remote may become our primary: friends may watch.
            _ if remote.is_none() => {
                log_limited(
                    out,
                    Level::Warning,
                    format!(
                        "[{name}] Handshake from {peer}, which is not a remote of the resource."
                    ),
                    None,
                );
                refuse(out, l.conn, errmsg::NO_ACCESS, None);
            }
            // A primary let go here is still stopping: no new primary may
            // be accepted (and start) until it is done.
            ListenRequest::Handshake1(_) | ListenRequest::Handshake2(_) if self.stopping(id) => {
                log_limited(
                    out,
                    Level::Notice,
                    format!("[{name}] Refusing {peer}'s handshake until the resource is stopped."),
                    None,
                );
                if let ListenRequest::Handshake2(_) = request
                    && let Some(first) = self.first_stages.remove(&(id, from))
                {
                    out.push(Action::Drop { conn: first.conn });
                }
                refuse(out, l.conn, errmsg::STOPPING, None);
            }
            ListenRequest::Handshake1(h) => {
                let input = ResourceInput::Handshake1 {
                    peer: from.to_string(),
                    own: l.local.ip().to_canonical().to_string(),
                    priority: h.priority,
                };
                if let Some((text, priority)) = self.handshake(id, input, out) {
                    return refuse(out, l.conn, &text, priority);
                }
                // Accepted by a primary that just yielded to it: not
                // before its own `stop` is done.
                if self.stopping(id) {
                    return refuse(out, l.conn, errmsg::STOPPING, None);
                }
                let stage = FirstStage {
                    conn: l.conn,
                    token: l.token,
                    sealed: l.session.is_some(),
                    heartbeat: h.heartbeat_ms.map(|ms| Duration::from_millis(ms.into())),
                };
                if let Some(old) = self.first_stages.insert((id, from), stage) {
                    log(
                        out,
                        Level::Notice,
                        format!("[{name}] Canceling half-open connection from {peer}."),
                    );
                    out.push(Action::Drop { conn: old.conn });
                }
                out.push(Action::Hold {
                    conn: l.conn,
                    reply: Some(Handshake1Reply::Token(l.token).to_nv()),
                });
            }
            ListenRequest::Handshake2(h) => {
                let matches = self
                    .first_stages
                    .get(&(id, from))
                    .is_some_and(|f| f.token == h.token);
                if !matches {
                    log_limited(
                        out,
                        Level::Warning,
                        format!("[{name}] Token from {peer} does not match."),
                        None,
                    );
                    return refuse(out, l.conn, errmsg::TOKEN_MISMATCH, None);
                }
                let first = self
                    .first_stages
                    .remove(&(id, from))
                    .expect("checked above");
                if first.sealed != l.session.is_some() {
                    // The key changed between the stages.
                    log(
                        out,
                        Level::Warning,
                        format!("[{name}] Only one of {peer}'s connections has a session."),
                    );
                    out.push(Action::Drop { conn: first.conn });
                    return out.push(Action::Reply {
                        conn: l.conn,
                        reply: None,
                    });
                }
                let r = self.res.get_mut(&id).expect("found above");
                r.primary_heartbeat = first.heartbeat;
                let handoff = Handoff {
                    remote: remote.unwrap_or_default(),
                    first: first.conn,
                    second: l.conn,
                };
                if let Some(old) = r.handoff.replace(handoff) {
                    out.push(Action::Drop { conn: old.first });
                    out.push(Action::Drop { conn: old.second });
                }
                out.push(Action::Hold {
                    conn: l.conn,
                    reply: None,
                });
                let input = ResourceInput::Handshake2 {
                    peer: from.to_string(),
                };
                if let Some((text, priority)) = self.handshake(id, input, out) {
                    // Refused: stage-2 refusals go on #2, as 0.3.4 sends
                    // them; the worker was not started, so the handoff
                    // is still ours.
                    if let Some(h) = self.res.get_mut(&id).and_then(|r| r.handoff.take()) {
                        out.push(Action::Drop { conn: h.first });
                        out.push(Action::Reply {
                            conn: h.second,
                            reply: Some(refusal(&text, priority)),
                        });
                    }
                }
            }
            ListenRequest::Control(_) => {}
        }
    }

    /// Whether `peer` is a remote or a friend of resource `id`, or a
    /// global friend.
    fn knows(&self, id: ResId, peer: IpAddr) -> bool {
        let r = &self.res[&id];
        listed(&self.friends, peer)
            || listed(&r.friends, peer)
            || r.remotes.iter().flatten().any(|a| same_ip(a.ip(), peer))
    }

    /// Feeds a handshake input and returns the machine's answer to it,
    /// after carrying out, or holding, everything else it decided.
    /// `None`: accepted.
    fn handshake(
        &mut self,
        id: ResId,
        input: ResourceInput,
        out: &mut Vec<Action>,
    ) -> Option<(String, Option<i32>)> {
        let actions = self.machine_step(id, input, out);
        // The answer never waits for a leaving worker.
        let mut answer = Some((errmsg::NO_ACCESS.to_string(), None));
        let rest = actions
            .into_iter()
            .filter(|a| match a {
                ResourceAction::AcceptHandshake => {
                    answer = None;
                    false
                }
                ResourceAction::RefuseHandshake { errmsg, priority } => {
                    answer = Some((errmsg.clone(), *priority));
                    false
                }
                _ => true,
            })
            .collect();
        self.hold(id, rest, out);
        answer
    }

    /// A control request over TCP: status polls (from watchdogs) and,
    /// when every named resource has a key, role changes. In a session,
    /// every named resource must have the session's key.
    fn network_control(&mut self, l: &ListenInput<'_>, req: ControlRequest, out: &mut Vec<Action>) {
        let peer = l.peer;
        let all = req.resources.first().is_some_and(|n| n == "all");
        let named: Vec<ResId> = if all {
            self.active().collect()
        } else {
            req.resources.iter().filter_map(|n| self.find(n)).collect()
        };
        let all_known = all || named.len() == req.resources.len();
        let authenticated = all_known
            && named.iter().all(|id| {
                let key = self.res[id].cfg.key.as_ref();
                match l.session {
                    Some(s) => covers(s, key),
                    None => authenticate(l.nv, key, peer, l.local, l.wall).is_ok(),
                }
            });
        if !authenticated {
            log_limited(
                out,
                Level::Warning,
                format!("Control request from {peer} failed authentication."),
                None,
            );
            return out.push(Action::Reply {
                conn: l.conn,
                reply: None,
            });
        }
        // As for complaints: only a remote or a friend of each resource
        // may ask about it (Q25).
        if let Some(stranger) = named.iter().find(|id| !self.knows(**id, peer.ip())) {
            let name = &self.res[stranger].cfg.name;
            log_limited(
                out,
                Level::Warning,
                format!("[{name}] {peer} is neither a remote nor a friend of the resource."),
                None,
            );
            return out.push(Action::Reply {
                conn: l.conn,
                reply: None,
            });
        }
        if req.cmd != ControlCmd::Status && named.iter().any(|id| self.res[id].cfg.key.is_none()) {
            log_limited(
                out,
                Level::Warning,
                format!("Refusing a role change from {peer}: over the network it needs a key."),
                None,
            );
            return out.push(Action::Reply {
                conn: l.conn,
                reply: None,
            });
        }
        let reply = self.control_request(l.conn, l.nv, out);
        if self.holds(l.conn) {
            return;
        }
        if req.cmd == ControlCmd::Status {
            // Only an answer the poller took counts as contact (the
            // primary's silence rule): the shell says so.
            return out.push(Action::ReplyPoll {
                conn: l.conn,
                reply,
                resources: named,
            });
        }
        out.push(Action::Reply {
            conn: l.conn,
            reply,
        });
    }
}

fn refusal(text: &str, priority: Option<i32>) -> NvList {
    match priority {
        Some(_) => Handshake1Reply::Refused {
            errmsg: text.to_string(),
            priority,
        }
        .to_nv(),
        None => Refusal::new(text).to_nv(),
    }
}

/// Answers with a refusal and closes.
fn refuse(out: &mut Vec<Action>, conn: ConnId, text: &str, priority: Option<i32>) {
    out.push(Action::Reply {
        conn,
        reply: Some(refusal(text, priority)),
    });
}
