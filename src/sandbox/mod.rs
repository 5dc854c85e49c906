//! The worker sandbox. A worker, once it holds every descriptor it needs,
//! narrows what each descriptor may do, gives up root, and enters the
//! sandbox; from then on it can only use what it holds, and anything else
//! (open a file, connect, exec, fork) fails with a permission error rather
//! than killing it, so a bug shows up in the log.
//!
//! # The backend contract
//!
//! | platform | module | built from |
//! |---|---|---|
//! | FreeBSD | `capsicum.rs` | `cap_rights_limit(2)` per descriptor, then `cap_enter(2)` |
//! | Linux | `seccomp.rs` | `PR_SET_NO_NEW_PRIVS`, then a seccomp filter that allows the worker's system calls and makes every other one fail with `EPERM` (descriptor rights are not narrowed: the filter already keeps the worker from anything new) |
//!
//! Each backend provides `fn limit(fd: BorrowedFd<'_>, use_: Use) ->
//! io::Result<()>` and `fn enter() -> io::Result<()>`.

use std::io;
use std::os::fd::BorrowedFd;

use nix::unistd::{Gid, Uid, User};

#[cfg(target_os = "freebsd")]
#[path = "capsicum.rs"]
mod sys;
#[cfg(target_os = "linux")]
#[path = "seccomp.rs"]
mod sys;

/// What a descriptor is for, which decides the rights it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// The channel to the main process: messages and descriptors both ways.
    Channel,
    /// A connection to a peer: frames both ways.
    Peer,
    /// Where log records go (syslog, standard output and error).
    Log,
    /// The directory holding syslogd's socket: a new connection to it after
    /// syslogd restarts (connectat(2) on FreeBSD).
    LogDirectory,
    /// The worker's own event queue.
    Events,
}

/// The unprivileged user a worker becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// How workers are confined, decided once by the main process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `None` when the daemon does not run as root: there is nothing to
    /// give up.
    pub user: Option<Credentials>,
    /// Refuse to run a worker that cannot enter the sandbox.
    pub required: bool,
}

impl Plan {
    /// The plan for a daemon started by the current user: workers become
    /// `user` when the daemon runs as root.
    pub fn for_user(user: &str, required: bool) -> Result<Plan, String> {
        if !Uid::effective().is_root() {
            return Ok(Plan {
                user: None,
                required,
            });
        }
        match User::from_name(user) {
            Ok(Some(u)) if u.uid.is_root() => Err(format!(
                "User {user} is root; workers must run unprivileged."
            )),
            Ok(Some(u)) => Ok(Plan {
                user: Some(Credentials {
                    name: user.to_string(),
                    uid: u.uid,
                    gid: u.gid,
                }),
                required,
            }),
            Ok(None) => Err(format!("User {user} does not exist.")),
            Err(e) => Err(format!("Unable to look up user {user}: {e}.")),
        }
    }
}

/// Narrows a descriptor to what `use_` needs. Also valid inside the
/// sandbox (rights only ever shrink).
pub fn limit(fd: BorrowedFd<'_>, use_: Use) -> io::Result<()> {
    sys::limit(fd, use_)
}

/// Gives up root for good: supplementary groups, group, user, and checks
/// that none can be taken back.
pub fn drop_privileges(c: &Credentials) -> io::Result<()> {
    use nix::unistd::{setgid, setgroups, setuid};
    setgroups(&[c.gid])?;
    setgid(c.gid)?;
    setuid(c.uid)?;
    let (uid, euid) = (Uid::current(), Uid::effective());
    let (gid, egid) = (Gid::current(), Gid::effective());
    if uid != c.uid
        || euid != c.uid
        || gid != c.gid
        || egid != c.gid
        || setuid(Uid::from_raw(0)).is_ok()
    {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the switch to user {} did not take", c.name),
        ));
    }
    Ok(())
}

/// The name of the error by which the sandbox refuses a call, if `e` is
/// one (EPERM from seccomp; ECAPMODE, or EPERM, from capability mode).
pub fn refusal_name(e: &io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        libc::EPERM => Some("EPERM"),
        #[cfg(target_os = "freebsd")]
        libc::ECAPMODE => Some("ECAPMODE"),
        _ => None,
    }
}

/// Whether the kernel reports this process as sandboxed, where it has a
/// call for that: `cap_getmode(2)` on FreeBSD. `None` on Linux, where the
/// filter refuses prctl and `/proc/<pid>/status` shows it from outside.
pub fn kernel_mode() -> Option<io::Result<bool>> {
    sys::kernel_mode()
}

/// Enters the sandbox; the process stays in it until it exits.
pub fn enter() -> io::Result<()> {
    // Test builds can act out a kernel without a sandbox.
    #[cfg(feature = "sandbox-probe")]
    if std::env::var_os("HASTMON_TEST_NO_SANDBOX").is_some() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the sandbox is unavailable (HASTMON_TEST_NO_SANDBOX)",
        ));
    }
    // The local time zone is read now: syslog stamps are local time, and
    // /etc/localtime is out of reach afterwards.
    unsafe extern "C" {
        fn tzset();
    }
    // SAFETY: tzset(3) has no preconditions; no other thread exists.
    unsafe { tzset() };
    sys::enter()
}
