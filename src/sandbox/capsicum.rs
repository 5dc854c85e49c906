//! Capsicum: each descriptor keeps the rights its use needs, then
//! capability mode shuts off every global namespace (files, sockets by
//! address, processes by pid).

use std::io;
use std::os::fd::BorrowedFd;

use capsicum::{CapRights, FileRights, Right};

use super::Use;

pub fn limit(fd: BorrowedFd<'_>, use_: Use) -> io::Result<()> {
    let rights: &[Right] = match use_ {
        // recvmsg and sendmsg with SCM_RIGHTS need no more than read and
        // write; fcntl flips O_NONBLOCK on received descriptors.
        Use::Channel => &[Right::Event, Right::Read, Right::Write, Right::Fcntl],
        Use::Peer => &[
            Right::Event,
            Right::Read,
            Right::Write,
            Right::Fcntl,
            Right::Shutdown,
            Right::Getpeername,
            Right::Getsockname,
        ],
        Use::Log => &[Right::Write],
        Use::LogDirectory => &[Right::Connectat],
        Use::Events => &[Right::Event, Right::KqueueEvent, Right::KqueueChange],
    };
    let mut set = FileRights::new();
    for r in rights {
        set.allow(*r);
    }
    set.limit(&fd)
}

pub fn enter() -> io::Result<()> {
    capsicum::enter()
}

pub fn kernel_mode() -> Option<io::Result<bool>> {
    Some(capsicum::get_mode())
}
