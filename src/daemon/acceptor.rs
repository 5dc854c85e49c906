//! What arrives on the listen socket, and who may do it (doc/protocol.md §8):
//! status polls and other control requests, complaints, and the two
//! stages of a primary's handshake, each either authenticated the 0.3.4
//! way or sent in an HMAC-SHA256 session (`secure`). Every refusal is
//! logged with the peer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use super::inbox::send_sealed;
use super::listen::ListenServer;
use super::requests::Requests;
use super::supervisor::{Ctx, Supervisor};
use super::{peers, secure};
use crate::config::{Config, Key};
use crate::proto::NvList;
use crate::proto::hmac::{Hello, Session};
use crate::proto::msg::{
    ControlCmd, ControlRequest, Handshake1Reply, ListenRequest, Refusal, Token, errmsg,
};
use crate::role::resource::ResourceInput;
use crate::{log_debug, log_error, log_limited, log_notice, log_warning};

pub struct Acceptor {
    /// The global friends (each resource's own are in the supervisor).
    friends: Vec<SocketAddr>,
    /// Tokens issued at stage 1, by resource and peer.
    tokens: HashMap<(usize, IpAddr), Token>,
    /// Stage-1 connections waiting for their stage 2, with their sessions.
    first: HashMap<(usize, IpAddr), (TcpStream, Option<Session>)>,
    /// The heartbeat intervals announced at stage 1 (Q22), by the same key.
    intervals: HashMap<(usize, IpAddr), Option<Duration>>,
}

impl Acceptor {
    pub fn new(cfg: &Config) -> Acceptor {
        Acceptor {
            friends: cfg.friends.iter().filter_map(peers::resolve).collect(),
            tokens: HashMap::new(),
            first: HashMap::new(),
            intervals: HashMap::new(),
        }
    }

    /// Takes the global friends of a reloaded configuration.
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.friends = cfg.friends.iter().filter_map(peers::resolve).collect();
    }

    pub fn descriptors(&self, out: &mut Vec<std::os::fd::RawFd>) {
        out.extend(
            self.first
                .values()
                .map(|(s, _)| std::os::fd::AsRawFd::as_raw_fd(s)),
        );
    }

    /// Handles one complete request read from connection `id`.
    pub fn handle(
        &mut self,
        sup: &mut Supervisor,
        ctx: &mut Ctx<'_>,
        listen: &mut ListenServer,
        id: u64,
        nv: NvList,
    ) {
        let Some(stream) = listen.inbox.get(id) else {
            return;
        };
        let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
            return listen.inbox.close(ctx.poller, id);
        };
        let session = listen.inbox.session(id).cloned();
        if session.is_none()
            && let Some(hello) = Hello::from_nv(&nv)
        {
            // The request follows in the session, maybe already buffered.
            if secure::greet(sup, ctx.poller, listen, id, &hello, peer)
                && let Some(nv) = listen.inbox.read(ctx.poller, id)
            {
                self.handle(sup, ctx, listen, id, nv);
            }
            return;
        }
        let request = match ListenRequest::from_nv(&nv) {
            Ok(r) => r,
            Err(e) => {
                log_warning!("Unable to handle the request from {peer}: {e}.");
                return listen.inbox.close(ctx.poller, id);
            }
        };
        if let ListenRequest::Control(req) = request {
            let session = session.as_ref();
            return self.control(sup, ctx, listen, id, &nv, req, peer, local, session);
        }
        let resource = match &request {
            ListenRequest::Complaint(c) => &c.resource,
            ListenRequest::Handshake1(h) => &h.resource,
            ListenRequest::Handshake2(h) => &h.resource,
            ListenRequest::Control(_) => unreachable!("handled above"),
        };
        let Some(i) = sup.find(resource) else {
            log_limited!(
                Warning,
                "Request from {peer} for unknown resource {resource}."
            );
            return refuse(listen, ctx, id, errmsg::RESOURCE_NOT_CONFIGURED, None);
        };
        let name = sup.list[i].cfg.name.clone();
        let remote = sup.list[i]
            .remotes
            .iter()
            .position(|a| a.is_some_and(|a| peers::same_ip(a.ip(), peer.ip())));
        let friend = peers::listed(&self.friends, peer.ip())
            || peers::listed(&sup.list[i].friends, peer.ip());
        if remote.is_none() && !friend {
            log_limited!(
                Warning,
                "[{name}] {peer} is neither a remote nor a friend of the resource."
            );
            return refuse(listen, ctx, id, errmsg::NO_ACCESS, None);
        }
        let key = sup.list[i].cfg.key.as_ref();
        let authenticated = match &session {
            // Workers continue the session under their own resource's name.
            Some(s) if s.resource() != name => {
                Err(format!("its session is for resource {}.", s.resource()))
            }
            Some(s) if !secure::covers(s, key) => Err("its session has another key.".into()),
            Some(_) => Ok(()),
            None => peers::authenticate(&nv, key, peer, local),
        };
        if let Err(e) = authenticated {
            log_limited!(Warning, "[{name}] Authentication of {peer} failed: {e}");
            return refuse(listen, ctx, id, errmsg::NO_ACCESS, None);
        }
        match request {
            ListenRequest::Complaint(_) => {
                listen.inbox.close(ctx.poller, id);
                log_debug!(1, "[{name}] Complaint from {peer}.");
                sup.input(ctx, i, ResourceInput::Complaint);
            }
            // Only a remote may become our primary: friends may watch.
            _ if remote.is_none() => {
                log_limited!(
                    Warning,
                    "[{name}] Handshake from {peer}, which is not a remote of the resource."
                );
                refuse(listen, ctx, id, errmsg::NO_ACCESS, None);
            }
            ListenRequest::Handshake1(h) => {
                let input = ResourceInput::Handshake1 {
                    peer: peer.ip().to_canonical().to_string(),
                    own: local.ip().to_canonical().to_string(),
                    priority: h.priority,
                };
                if let Some((text, priority)) = sup.handshake(ctx, i, input) {
                    return refuse(listen, ctx, id, &text, priority);
                }
                let mut token = Token::default();
                if let Err(e) = getrandom::fill(&mut token) {
                    log_error!("[{name}] Unable to make a token: {e}.");
                    return listen.inbox.close(ctx.poller, id);
                }
                let Some((mut stream, mut session)) = listen.inbox.take_secure(ctx.poller, id)
                else {
                    return;
                };
                let reply = Handshake1Reply::Token(token).to_nv();
                if !send_sealed(&mut stream, session.as_mut(), reply, "handshake") {
                    return;
                }
                let key = (i, peer.ip().to_canonical());
                let announced = h.heartbeat_ms.map(|ms| Duration::from_millis(ms.into()));
                self.intervals.insert(key, announced);
                if self.first.insert(key, (stream, session)).is_some() {
                    log_notice!("[{name}] Canceling half-open connection from {peer}.");
                }
                self.tokens.insert(key, token);
            }
            ListenRequest::Handshake2(h) => {
                let key = (i, peer.ip().to_canonical());
                if self.tokens.get(&key) != Some(&h.token) {
                    log_limited!(Warning, "[{name}] Token from {peer} does not match.");
                    return refuse(listen, ctx, id, errmsg::TOKEN_MISMATCH, None);
                }
                self.tokens.remove(&key);
                let (Some((first, s1)), Some((second, s2))) = (
                    self.first.remove(&key),
                    listen.inbox.take_secure(ctx.poller, id),
                ) else {
                    return;
                };
                let sessions = match (s1, s2) {
                    (Some(s1), Some(s2)) => Some([s1, s2]),
                    (None, None) => None,
                    // The key changed between the stages.
                    _ => {
                        log_warning!("[{name}] Only one of {peer}'s connections has a session.");
                        return;
                    }
                };
                sup.list[i].primary_heartbeat = self.intervals.remove(&key).flatten();
                sup.hand_off(i, remote.unwrap_or_default(), first, second, sessions);
                let input = ResourceInput::Handshake2 {
                    peer: peer.ip().to_canonical().to_string(),
                };
                if let Some((text, priority)) = sup.handshake(ctx, i, input) {
                    // Stage-2 refusals go on #2, as 0.3.4 sends them.
                    if let Some((_, _, mut second, sessions)) = sup.take_handoff(i) {
                        let mut session = sessions.map(|[_, s2]| s2);
                        let reply = refusal(&text, priority);
                        send_sealed(&mut second, session.as_mut(), reply, "handshake");
                    }
                }
            }
            ListenRequest::Control(_) => {}
        }
    }

    /// A control request over TCP: status polls (from watchdogs) and,
    /// when every named resource has a key, role changes. In a session,
    /// every named resource must have the session's key.
    #[allow(clippy::too_many_arguments)]
    fn control(
        &mut self,
        sup: &mut Supervisor,
        ctx: &mut Ctx<'_>,
        listen: &mut ListenServer,
        id: u64,
        nv: &NvList,
        req: ControlRequest,
        peer: SocketAddr,
        local: SocketAddr,
        session: Option<&Session>,
    ) {
        let named: Vec<usize> = if req.resources.first().is_some_and(|n| n == "all") {
            sup.active()
        } else {
            req.resources.iter().filter_map(|n| sup.find(n)).collect()
        };
        let all_known =
            req.resources.first().is_some_and(|n| n == "all") || named.len() == req.resources.len();
        let authenticated = all_known
            && named.iter().all(|&i| {
                let key: Option<&Key> = sup.list[i].cfg.key.as_ref();
                match session {
                    Some(s) => secure::covers(s, key),
                    None => peers::authenticate(nv, key, peer, local).is_ok(),
                }
            });
        if !authenticated {
            log_limited!(
                Warning,
                "Control request from {peer} failed authentication."
            );
            return listen.inbox.close(ctx.poller, id);
        }
        if req.cmd != ControlCmd::Status && named.iter().any(|&i| sup.list[i].cfg.key.is_none()) {
            log_limited!(
                Warning,
                "Refusing a role change from {peer}: over the network it needs a key."
            );
            return listen.inbox.close(ctx.poller, id);
        }
        let reply = Requests { sup: &mut *sup }.handle(ctx, nv);
        let Some((mut stream, mut session)) = listen.inbox.take_secure(ctx.poller, id) else {
            return;
        };
        let sent = match reply {
            Some(reply) => send_sealed(&mut stream, session.as_mut(), reply, "status"),
            None => false,
        };
        // Only an answer the poller took counts as contact (the primary's
        // silence rule).
        if sent && req.cmd == ControlCmd::Status {
            for i in named {
                sup.polled(i, true);
            }
        }
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

/// Answers with a refusal (sealed in a session) and closes.
fn refuse(
    listen: &mut ListenServer,
    ctx: &mut Ctx<'_>,
    id: u64,
    text: &str,
    priority: Option<i32>,
) {
    listen
        .inbox
        .reply(ctx.poller, id, Some(refusal(text, priority)));
}
