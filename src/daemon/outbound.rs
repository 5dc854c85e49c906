//! Outgoing connections, made by the main process for its workers
//! (which never connect themselves): a primary's two-connection
//! handshake, a watchdog's status poll, a complaint. Every step is
//! non-blocking with the resource's `timeout` as its deadline, connecting
//! included (0.3.4 always waited 5 s to connect, the default `timeout`, so
//! that short intervals could not make failover short).
//!
//! With an HMAC-SHA256 key each connection first sends a hello and waits
//! for the server's sealed greeting; the request and every answer are
//! then sealed, and a handshake's sessions go to the worker with its
//! connections.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, socket};

use super::{peers, secure};
use crate::config::Key;
use crate::event::{Interest, Poller, TimerId, Token};
use crate::node::{JobId, JobOutcome, JobRequest, Purpose};
use crate::proto::auth::AuthFields;
use crate::proto::hmac::{Hello, Session, SessionState};
use crate::proto::msg::{
    Complaint, Handshake1, Handshake1Reply, Handshake2, Handshake2Confirm, StatusPoll,
    Token as HandshakeToken,
};
use crate::proto::{FrameReader, NvList, encode_frame};
use crate::role::ConnectFailure;
use crate::types::{Role, State};

/// Job `n` uses tokens `BASE + 2n` (first connection) and `BASE + 2n + 1`
/// (second), and timer `BASE + 2n`.
const BASE: u64 = 8 << 32;
const END: u64 = 9 << 32;

pub fn owns(id: u64) -> bool {
    (BASE..END).contains(&id)
}

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    /// The handshake completed: heartbeats go out on the first
    /// connection, replies come back on the second.
    Connected {
        out: OwnedFd,
        back: OwnedFd,
        sessions: Option<[SessionState; 2]>,
    },
    Polled {
        role: Role,
        state: State,
    },
    Complained,
    Failed(ConnectFailure),
}

/// Where a job is after a step.
enum Step {
    Pending,
    Done(Outcome),
    /// The handshake's confirmation arrived: the job's streams are the
    /// worker's connections.
    Confirmed,
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Connecting1,
    /// The hello was sent on #1; waiting for the greeting.
    Greeting1,
    /// Handshake stage 1 sent on #1; waiting for the token.
    AwaitToken,
    Connecting2(HandshakeToken),
    /// The hello was sent on #2; waiting for the greeting.
    Greeting2(HandshakeToken),
    /// Stage 2 sent on #2; waiting for the confirmation on #1.
    AwaitConfirm,
    /// The poll was sent; waiting for the status reply.
    AwaitStatus,
}

struct Job {
    job: JobId,
    req: JobRequest,
    stage: Stage,
    first: TcpStream,
    second: Option<TcpStream>,
    /// One per connection.
    readers: [FrameReader; 2],
    /// The secret when the resource's key is HMAC-SHA256.
    secret: Option<Vec<u8>>,
    /// The hello awaiting its greeting.
    hello: Option<Hello>,
    /// Each connection's session, once greeted.
    sessions: [Option<Session>; 2],
}

#[derive(Default)]
pub struct Outbound {
    jobs: HashMap<u64, Job>,
    next: u64,
}

fn timer(n: u64) -> TimerId {
    TimerId(BASE + 2 * n)
}

fn unreachable(why: impl std::fmt::Display) -> ConnectFailure {
    ConnectFailure::Unreachable(why.to_string())
}

/// Starts a non-blocking connect.
fn start_connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    if let Some(ip) = source.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
        bind(
            fd.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::new(ip, 0)),
        )?;
    }
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

/// Sends one small frame on a fresh, non-blocking connection: it fits in
/// the empty socket buffer, so anything short of a full write is an error.
fn send(stream: &mut TcpStream, list: &NvList) -> std::io::Result<()> {
    let frame = encode_frame(list).map_err(std::io::Error::other)?;
    let n = stream.write(&frame)?;
    if n != frame.len() {
        return Err(std::io::Error::new(ErrorKind::WouldBlock, "short write"));
    }
    Ok(())
}

impl Outbound {
    pub fn new() -> Outbound {
        Outbound::default()
    }

    /// Starts a job; one that fails at once is returned with its end.
    pub fn start(
        &mut self,
        poller: &mut Poller,
        job: JobId,
        req: JobRequest,
    ) -> Option<(JobId, Outcome)> {
        let n = self.next;
        self.next = (self.next + 1) % ((END - BASE) / 2);
        let first = match start_connect(req.addr, req.source) {
            Ok(s) => s,
            Err(e) => return Some((job, Outcome::Failed(unreachable(e)))),
        };
        if let Err(e) = poller
            .register(first.as_fd(), Token(BASE + 2 * n), Interest::Write)
            .and_then(|()| poller.set_timer(timer(n), req.timeout, false))
        {
            let _ = poller.deregister(first.as_fd());
            return Some((job, Outcome::Failed(unreachable(e))));
        }
        let secret = req
            .key
            .as_ref()
            .and_then(Key::hmac_secret)
            .map(<[u8]>::to_vec);
        self.jobs.insert(
            n,
            Job {
                job,
                req,
                stage: Stage::Connecting1,
                first,
                second: None,
                readers: Default::default(),
                secret,
                hello: None,
                sessions: [None, None],
            },
        );
        None
    }

    /// A job's socket is ready; returns the job's end if it ended.
    pub fn ready(&mut self, poller: &mut Poller, id: u64) -> Option<(JobId, Outcome)> {
        let n = (id - BASE) / 2;
        let job = self.jobs.get_mut(&n)?;
        let step = match job.stage {
            Stage::Connecting1 | Stage::Connecting2(_) => job.connected(poller, n),
            _ => job.read(poller, n),
        };
        match step {
            Ok(Step::Pending) => None,
            Ok(Step::Done(outcome)) => Some(self.finish(poller, n, Some(outcome))),
            Ok(Step::Confirmed) => Some(self.finish(poller, n, None)),
            Err(failure) => Some(self.finish(poller, n, Some(Outcome::Failed(failure)))),
        }
    }

    /// A job's deadline passed.
    pub fn expired(&mut self, poller: &mut Poller, id: TimerId) -> Option<(JobId, Outcome)> {
        let n = (id.0 - BASE) / 2;
        let job = self.jobs.get(&n)?;
        let what = match job.stage {
            Stage::Connecting1 | Stage::Connecting2(_) => "connect timed out",
            Stage::Greeting1 | Stage::Greeting2(_) => "no greeting in time",
            _ => "no answer in time",
        };
        Some(self.finish(poller, n, Some(Outcome::Failed(unreachable(what)))))
    }

    /// Ends a job; `None` means the handshake completed.
    fn finish(
        &mut self,
        poller: &mut Poller,
        n: u64,
        outcome: Option<Outcome>,
    ) -> (JobId, Outcome) {
        let job = self
            .jobs
            .remove(&n)
            .expect("finish is called for live jobs");
        let _ = poller.cancel_timer(timer(n));
        let _ = poller.deregister(job.first.as_fd());
        if let Some(s) = &job.second {
            let _ = poller.deregister(s.as_fd());
        }
        let outcome = match (outcome, job.second) {
            (Some(outcome), _) => outcome,
            // The job's streams become the worker's connections.
            (None, Some(second)) => {
                let sessions = match job.sessions {
                    [Some(s1), Some(s2)] => Some([s1.state(), s2.state()]),
                    _ => None,
                };
                Outcome::Connected {
                    out: job.first.into(),
                    back: second.into(),
                    sessions,
                }
            }
            (None, None) => Outcome::Failed(unreachable("no second connection")),
        };
        (job.job, outcome)
    }

    /// Abandons a job: its outcome is no longer wanted.
    pub fn cancel(&mut self, poller: &mut Poller, job: JobId) {
        let found = self
            .jobs
            .iter()
            .find(|(_, j)| j.job == job)
            .map(|(n, _)| *n);
        if let Some(n) = found {
            self.finish(poller, n, Some(Outcome::Complained));
        }
    }

    pub fn descriptors(&self, out: &mut Vec<RawFd>) {
        for job in self.jobs.values() {
            out.push(job.first.as_raw_fd());
            out.extend(job.second.as_ref().map(AsRawFd::as_raw_fd));
        }
    }
}

impl Job {
    /// The connection in progress finished connecting: send the hello or
    /// what this stage sends.
    fn connected(&mut self, poller: &mut Poller, n: u64) -> Result<Step, ConnectFailure> {
        let c = usize::from(matches!(self.stage, Stage::Connecting2(_)));
        let stream = self.stream(c)?;
        if let Some(e) = stream.take_error().map_err(unreachable)? {
            return Err(unreachable(e));
        }
        let _ = stream.set_nodelay(true);
        let (local, peer) = match (stream.local_addr(), stream.peer_addr()) {
            (Ok(l), Ok(p)) => (l, p),
            (Err(e), _) | (_, Err(e)) => return Err(unreachable(e)),
        };
        let _ = poller.deregister(stream.as_fd());
        if self.secret.is_none() {
            let auth = peers::sign(self.req.key.as_ref(), local, peer);
            return self.send_request(poller, n, auth);
        }
        let hello = Hello {
            resource: self.req.name.clone(),
            nonce: secure::nonce().map_err(unreachable)?,
        };
        send(self.stream(c)?, &hello.to_nv()).map_err(unreachable)?;
        self.hello = Some(hello);
        self.stage = match std::mem::replace(&mut self.stage, Stage::Greeting1) {
            Stage::Connecting2(token) => Stage::Greeting2(token),
            _ => Stage::Greeting1,
        };
        self.await_on(poller, n, c, true)
    }

    /// Sends the request of this stage, sealed if its connection has a
    /// session.
    fn send_request(
        &mut self,
        poller: &mut Poller,
        n: u64,
        auth: Option<AuthFields>,
    ) -> Result<Step, ConnectFailure> {
        let resource = self.req.name.clone();
        let (list, c) = match (&self.stage, &self.req.purpose) {
            (
                Stage::Connecting1 | Stage::Greeting1,
                Purpose::Handshake {
                    priority,
                    heartbeat_ms,
                },
            ) => {
                let h = Handshake1 {
                    resource,
                    priority: Some(*priority),
                    auth,
                    heartbeat_ms: Some(*heartbeat_ms),
                };
                (h.to_nv(), 0)
            }
            (Stage::Connecting1 | Stage::Greeting1, Purpose::Poll) => {
                (StatusPoll { auth, resource }.to_nv(), 0)
            }
            (Stage::Connecting1 | Stage::Greeting1, Purpose::Complain) => {
                (Complaint { auth, resource }.to_nv(), 0)
            }
            (Stage::Connecting2(token) | Stage::Greeting2(token), _) => {
                let h = Handshake2 {
                    auth,
                    resource,
                    token: *token,
                    resuid: 0,
                };
                (h.to_nv(), 1)
            }
            _ => return Err(unreachable("unexpected connection")),
        };
        let list = match self.sessions[c].as_mut() {
            Some(s) => s.seal(&list),
            None => list,
        };
        send(self.stream(c)?, &list).map_err(unreachable)?;
        // The greeting and the answer share one timeout, so that a step
        // takes no longer than without a key.
        let restart = matches!(self.stage, Stage::Connecting1 | Stage::Connecting2(_));
        self.stage = match (&self.stage, &self.req.purpose) {
            (Stage::Connecting2(_) | Stage::Greeting2(_), _) => Stage::AwaitConfirm,
            (_, Purpose::Complain) => return Ok(Step::Done(Outcome::Complained)),
            (_, Purpose::Poll) => Stage::AwaitStatus,
            _ => Stage::AwaitToken,
        };
        // Answers always come on the first connection.
        self.await_on(poller, n, 0, restart)
    }

    /// Waits for a frame on connection `c`; `restart` sets a new timeout.
    fn await_on(
        &mut self,
        poller: &mut Poller,
        n: u64,
        c: usize,
        restart: bool,
    ) -> Result<Step, ConnectFailure> {
        let timeout = self.req.timeout;
        let stream = self.stream(c)?;
        poller
            .register(
                stream.as_fd(),
                Token(BASE + 2 * n + c as u64),
                Interest::Read,
            )
            .map_err(unreachable)?;
        if restart {
            poller
                .set_timer(timer(n), timeout, false)
                .map_err(unreachable)?;
        }
        Ok(Step::Pending)
    }

    fn stream(&mut self, c: usize) -> Result<&mut TcpStream, ConnectFailure> {
        match c {
            0 => Ok(&mut self.first),
            _ => self
                .second
                .as_mut()
                .ok_or_else(|| unreachable("no second connection")),
        }
    }

    /// The next whole frame on connection `c`, opened in its session.
    fn next_frame(&mut self, c: usize) -> Result<Option<Vec<u8>>, ConnectFailure> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(payload) = self.readers[c].next_payload().map_err(unreachable)? {
                return Ok(Some(payload));
            }
            match self.stream(c)?.read(&mut buf) {
                Ok(0) => return Err(unreachable("connection closed by the remote node")),
                Ok(k) => self.readers[c].push(&buf[..k]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(unreachable(e)),
            }
        }
    }

    fn read(&mut self, poller: &mut Poller, n: u64) -> Result<Step, ConnectFailure> {
        let c = usize::from(matches!(self.stage, Stage::Greeting2(_)));
        let Some(payload) = self.next_frame(c)? else {
            return Ok(Step::Pending);
        };
        if matches!(self.stage, Stage::Greeting1 | Stage::Greeting2(_)) {
            self.sessions[c] = Some(self.greeted(&payload)?);
            let _ = poller.deregister(self.stream(c)?.as_fd());
            return self.send_request(poller, n, None);
        }
        let list = match self.sessions[c].as_mut() {
            Some(s) => s
                .open(&payload)
                .map_err(|e| unreachable(format!("refusing its answer: {e}")))?,
            None => NvList::decode(&payload).map_err(unreachable)?,
        };
        match self.stage {
            Stage::AwaitStatus => Ok(Step::Done(poll_result(&list))),
            Stage::AwaitToken => match Handshake1Reply::from_nv(&list) {
                Ok(Handshake1Reply::Token(token)) => {
                    let _ = poller.deregister(self.first.as_fd());
                    let second =
                        start_connect(self.req.addr, self.req.source).map_err(unreachable)?;
                    poller
                        .register(second.as_fd(), Token(BASE + 2 * n + 1), Interest::Write)
                        .and_then(|()| poller.set_timer(timer(n), self.req.timeout, false))
                        .map_err(unreachable)?;
                    self.second = Some(second);
                    self.stage = Stage::Connecting2(token);
                    Ok(Step::Pending)
                }
                Ok(Handshake1Reply::Refused {
                    errmsg,
                    priority: Some(priority),
                }) => Err(ConnectFailure::StrongerPrimary { errmsg, priority }),
                Ok(Handshake1Reply::Refused { errmsg, .. }) => Err(ConnectFailure::Refused(errmsg)),
                Err(e) => Err(unreachable(e)),
            },
            Stage::AwaitConfirm => match Handshake2Confirm::from_nv(&list) {
                Ok(_) => Ok(Step::Confirmed),
                Err(e) => Err(ConnectFailure::Refused(e.to_string())),
            },
            _ => Err(unreachable("unexpected answer")),
        }
    }

    /// The session the server's greeting opens. Anything else, an
    /// unsealed refusal included, proves nothing, so it is no contact.
    fn greeted(&mut self, payload: &[u8]) -> Result<Session, ConnectFailure> {
        let (Some(secret), Some(hello)) = (&self.secret, self.hello.take()) else {
            return Err(unreachable("no hello was sent"));
        };
        Session::client(secret, &hello, payload).map_err(|e| {
            let refusal = NvList::decode(payload)
                .ok()
                .and_then(|l| l.get_str("errmsg").map(str::to_string));
            match refusal {
                Some(text) => unreachable(format!("refused before authentication: {text}")),
                None => unreachable(format!("the remote node failed to authenticate: {e}")),
            }
        })
    }
}

/// What a poll's answer says, as the node machine reads it.
fn poll_result(list: &NvList) -> Outcome {
    match crate::node::poll_outcome(list) {
        JobOutcome::Polled { role, state } => Outcome::Polled { role, state },
        JobOutcome::Failed(reason) => Outcome::Failed(reason),
        JobOutcome::Connected | JobOutcome::Complained => {
            Outcome::Failed(unreachable("unexpected answer"))
        }
    }
}
