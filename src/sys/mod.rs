//! Small platform pieces: host names, process titles, pidfile, logging.

pub mod fd;
pub mod host;
pub mod log;
pub mod net;
pub mod pidfile;
pub mod proctitle;
pub mod ratelimit;
pub mod sockq;
pub mod syslog;

/// Detaches from the terminal as daemon(3) does: fork, new session,
/// working directory `/`, standard descriptors on `/dev/null`.
pub fn daemonize() -> nix::Result<()> {
    use nix::unistd::{ForkResult, fork, setsid};
    // SAFETY: called before any thread is started; the child only goes on
    // with the same single-threaded program.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    setsid()?;
    nix::unistd::chdir("/")?;
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(null);
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if raw != fd && unsafe { libc::dup2(raw, fd) } < 0 {
            return Err(nix::errno::Errno::last());
        }
    }
    if raw > 2 {
        // SAFETY: raw came from into_raw_fd above and is closed only here.
        unsafe { libc::close(raw) };
    }
    Ok(())
}
