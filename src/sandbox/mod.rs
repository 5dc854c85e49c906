//! The worker sandbox. A worker, once it holds every descriptor it needs,
//! narrows what each descriptor may do, chroots to an empty directory,
//! gives up root, and enters the sandbox; from then on it can only use what it holds, and anything else
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
//! io::Result<()>`, `fn enter() -> io::Result<()>` and `fn kernel_mode()
//! -> Option<io::Result<bool>>`.

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
    /// The directory workers chroot to (as root, before giving it up);
    /// `None` when the daemon is not root or the directory is missing.
    pub chroot: Option<std::path::PathBuf>,
    /// Refuse to run a worker that cannot enter the sandbox.
    pub required: bool,
}

/// Where workers are chrooted: `/var/empty`, or in test builds
/// `HASTMON_TEST_CHROOT`.
fn chroot_dir() -> std::path::PathBuf {
    #[cfg(feature = "sandbox-probe")]
    if let Some(dir) = std::env::var_os("HASTMON_TEST_CHROOT") {
        return dir.into();
    }
    crate::config::defaults::CHROOT.into()
}

impl Plan {
    /// The plan for a daemon started by the current user: when it runs as
    /// root, workers chroot to /var/empty and become `user` (`-u`), by
    /// default `hastmon`, or `nobody` where no `hastmon` user exists.
    /// Also returns what to warn about. An error is for the log, and
    /// means EX_NOUSER.
    pub fn for_user(user: Option<&str>, required: bool) -> Result<(Plan, Vec<String>), String> {
        let mut warnings = Vec::new();
        if !Uid::effective().is_root() {
            let plan = Plan {
                user: None,
                chroot: None,
                required,
            };
            return Ok((plan, warnings));
        }
        use crate::config::defaults::{FALLBACK_USER, USER};
        let (name, found) = match user {
            Some(name) => (name, User::from_name(name)),
            None => match User::from_name(USER) {
                Ok(None) => {
                    warnings.push(format!(
                        "User {USER} does not exist; workers run as {FALLBACK_USER}. \
                         Create user and group {USER} (the port does), or name one with -u."
                    ));
                    (FALLBACK_USER, User::from_name(FALLBACK_USER))
                }
                other => (USER, other),
            },
        };
        let credentials = match found {
            Ok(Some(u)) if u.uid.is_root() => {
                return Err(format!(
                    "User {name} is root; workers must run unprivileged."
                ));
            }
            Ok(Some(u)) => Credentials {
                name: name.to_string(),
                uid: u.uid,
                gid: u.gid,
            },
            Ok(None) => {
                return Err(format!(
                    "User {name} does not exist: create it, or name another with -u."
                ));
            }
            Err(e) => return Err(format!("Unable to look up user {name}: {e}.")),
        };
        let dir = chroot_dir();
        let chroot = if dir.is_dir() {
            Some(dir)
        } else {
            warnings.push(format!(
                "Directory {} does not exist; workers run without a chroot.",
                dir.display()
            ));
            None
        };
        let plan = Plan {
            user: Some(credentials),
            chroot,
            required,
        };
        Ok((plan, warnings))
    }
}

/// What a worker does as root just before it enters the sandbox: reads the
/// local time zone (syslog stamps need it; /etc/localtime is out of reach
/// afterwards), chroots (and moves to the new root), then gives up root.
pub fn isolate(plan: &Plan) -> io::Result<()> {
    unsafe extern "C" {
        fn tzset();
    }
    // SAFETY: tzset(3) has no preconditions; no other thread exists.
    unsafe { tzset() };
    if let Some(dir) = &plan.chroot {
        nix::unistd::chroot(dir.as_path()).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("chroot to {}: {e}", dir.display()),
            )
        })?;
        nix::unistd::chdir("/")?;
    }
    if let Some(user) = &plan.user {
        drop_privileges(user)?;
    }
    Ok(())
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
    sys::enter()
}
