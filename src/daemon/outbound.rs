//! Outgoing connections, made by the main process for its workers
//! (which never connect themselves): a primary's two-connection
//! handshake, a watchdog's status poll, a complaint. Every step is
//! non-blocking with the resource's `timeout` as its deadline, connecting
//! included (0.3.4 always waited 5 s to connect, the default `timeout`, so
//! that short intervals could not make failover short).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, socket};

use super::peers;
use crate::config::Key;
use crate::event::{Interest, Poller, TimerId, Token};
use crate::proto::msg::{
    Complaint, Handshake1, Handshake1Reply, Handshake2, Handshake2Confirm, StatusOutcome,
    StatusPoll, StatusReply, Token as HandshakeToken,
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

/// What a job is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A primary worker's connection to a secondary.
    Handshake { priority: i32 },
    /// A watchdog worker's status poll.
    Poll,
    /// A watchdog worker's complaint (no answer is read).
    Complain,
}

/// Who asked, and what about.
#[derive(Clone, Debug)]
pub struct Request {
    pub resource: usize,
    pub name: String,
    pub worker: u64,
    pub remote: usize,
    pub addr: SocketAddr,
    /// Our listen address, when it is a specific one: peers check who we
    /// are by the address we connect from, so it must be the one they
    /// know us by, not whatever the routing table picks.
    pub source: Option<IpAddr>,
    pub key: Option<Key>,
    pub timeout: Duration,
    pub purpose: Purpose,
}

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    /// The handshake completed: heartbeats go out on the first
    /// connection, replies come back on the second.
    Connected {
        out: OwnedFd,
        back: OwnedFd,
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
    /// Handshake stage 1 sent on #1; waiting for the token.
    AwaitToken,
    Connecting2(HandshakeToken),
    /// Stage 2 sent on #2; waiting for the confirmation on #1.
    AwaitConfirm,
    /// The poll was sent; waiting for the status reply.
    AwaitStatus,
}

struct Job {
    req: Request,
    stage: Stage,
    first: TcpStream,
    second: Option<TcpStream>,
    reader: FrameReader,
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
    pub fn start(&mut self, poller: &mut Poller, req: Request) -> Option<(Request, Outcome)> {
        let n = self.next;
        self.next = (self.next + 1) % ((END - BASE) / 2);
        let first = match start_connect(req.addr, req.source) {
            Ok(s) => s,
            Err(e) => return Some((req, Outcome::Failed(unreachable(e)))),
        };
        if let Err(e) = poller
            .register(first.as_fd(), Token(BASE + 2 * n), Interest::Write)
            .and_then(|()| poller.set_timer(timer(n), req.timeout, false))
        {
            let _ = poller.deregister(first.as_fd());
            return Some((req, Outcome::Failed(unreachable(e))));
        }
        self.jobs.insert(
            n,
            Job {
                req,
                stage: Stage::Connecting1,
                first,
                second: None,
                reader: FrameReader::new(),
            },
        );
        None
    }

    /// A job's socket is ready; returns the job's end if it ended.
    pub fn ready(&mut self, poller: &mut Poller, id: u64) -> Option<(Request, Outcome)> {
        let n = (id - BASE) / 2;
        let job = self.jobs.get_mut(&n)?;
        let step = match job.stage {
            Stage::Connecting1 | Stage::Connecting2(_) => job.connected(poller, n),
            Stage::AwaitToken | Stage::AwaitConfirm | Stage::AwaitStatus => job.read(poller, n),
        };
        match step {
            Ok(Step::Pending) => None,
            Ok(Step::Done(outcome)) => Some(self.finish(poller, n, Some(outcome))),
            Ok(Step::Confirmed) => Some(self.finish(poller, n, None)),
            Err(failure) => Some(self.finish(poller, n, Some(Outcome::Failed(failure)))),
        }
    }

    /// A job's deadline passed.
    pub fn expired(&mut self, poller: &mut Poller, id: TimerId) -> Option<(Request, Outcome)> {
        let n = (id.0 - BASE) / 2;
        let job = self.jobs.get(&n)?;
        let what = match job.stage {
            Stage::Connecting1 | Stage::Connecting2(_) => "connect timed out",
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
    ) -> (Request, Outcome) {
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
            (None, Some(second)) => Outcome::Connected {
                out: job.first.into(),
                back: second.into(),
            },
            (None, None) => Outcome::Failed(unreachable("no second connection")),
        };
        (job.req, outcome)
    }

    /// Drops a poll of `remote` still in flight for `worker`: its answer
    /// would be taken for the new poll's.
    pub fn cancel_poll(&mut self, poller: &mut Poller, worker: u64, remote: usize) {
        self.drop_where(poller, |r| {
            r.worker == worker && r.remote == remote && r.purpose == Purpose::Poll
        });
    }

    /// The worker is gone: nobody wants its jobs' results. Complaints
    /// already under way are still delivered.
    pub fn forget_worker(&mut self, poller: &mut Poller, worker: u64) {
        self.drop_where(poller, |r| {
            r.worker == worker && r.purpose != Purpose::Complain
        });
    }

    fn drop_where(&mut self, poller: &mut Poller, f: impl Fn(&Request) -> bool) {
        let doomed: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| f(&j.req))
            .map(|(n, _)| *n)
            .collect();
        for n in doomed {
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
    /// The connection in progress finished connecting: send what this
    /// stage sends.
    fn connected(&mut self, poller: &mut Poller, n: u64) -> Result<Step, ConnectFailure> {
        let second = matches!(self.stage, Stage::Connecting2(_));
        let stream = if second {
            self.second
                .as_mut()
                .expect("stage 2 has a second connection")
        } else {
            &mut self.first
        };
        if let Some(e) = stream.take_error().map_err(unreachable)? {
            return Err(unreachable(e));
        }
        let _ = stream.set_nodelay(true);
        let (local, peer) = match (stream.local_addr(), stream.peer_addr()) {
            (Ok(l), Ok(p)) => (l, p),
            (Err(e), _) | (_, Err(e)) => return Err(unreachable(e)),
        };
        let auth = peers::sign(self.req.key.as_ref(), local, peer);
        let name = self.req.name.clone();
        let _ = poller.deregister(stream.as_fd());
        let list = match (&self.stage, &self.req.purpose) {
            (Stage::Connecting1, Purpose::Handshake { priority }) => Handshake1 {
                resource: name,
                priority: Some(*priority),
                auth,
            }
            .to_nv(),
            (Stage::Connecting1, Purpose::Poll) => StatusPoll {
                auth,
                resource: name,
            }
            .to_nv(),
            (Stage::Connecting1, Purpose::Complain) => Complaint {
                auth,
                resource: name,
            }
            .to_nv(),
            (Stage::Connecting2(token), _) => Handshake2 {
                auth,
                resource: name,
                token: *token,
                resuid: 0,
            }
            .to_nv(),
            _ => return Err(unreachable("unexpected connection")),
        };
        send(stream, &list).map_err(unreachable)?;
        self.stage = match (&self.stage, &self.req.purpose) {
            (Stage::Connecting1, Purpose::Complain) => return Ok(Step::Done(Outcome::Complained)),
            (Stage::Connecting1, Purpose::Poll) => Stage::AwaitStatus,
            (Stage::Connecting1, _) => Stage::AwaitToken,
            _ => Stage::AwaitConfirm,
        };
        // Answers always come on the first connection.
        poller
            .register(self.first.as_fd(), Token(BASE + 2 * n), Interest::Read)
            .and_then(|()| poller.set_timer(timer(n), self.req.timeout, false))
            .map_err(unreachable)?;
        Ok(Step::Pending)
    }

    fn read(&mut self, poller: &mut Poller, n: u64) -> Result<Step, ConnectFailure> {
        let mut buf = [0u8; 4096];
        let list = loop {
            if let Some(list) = self.reader.next_list().map_err(unreachable)? {
                break list;
            }
            match self.first.read(&mut buf) {
                Ok(0) => return Err(unreachable("connection closed by the remote node")),
                Ok(k) => self.reader.push(&buf[..k]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Step::Pending),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(unreachable(e)),
            }
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
}

/// The role and state a node reported for the polled resource; an error
/// or a missing entry reads as undefined and unknown (Q6).
fn poll_result(list: &NvList) -> Outcome {
    let reply = StatusReply::from_nv(list);
    match (reply.error, reply.entries.first().map(|e| &e.outcome)) {
        (None | Some(0), Some(StatusOutcome::Status(s))) => Outcome::Polled {
            role: s.role,
            state: s.worker.as_ref().map_or(State::Unknown, |w| w.state),
        },
        _ => Outcome::Failed(unreachable("the remote node answered with an error")),
    }
}
