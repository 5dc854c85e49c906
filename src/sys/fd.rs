//! Descriptor hygiene: close what a process inherited, and check that a
//! worker holds nothing but what it was given.

use std::os::fd::RawFd;

/// Closes every descriptor above 2. The daemon calls it first thing, so
/// nothing its parent leaked reaches workers or hooks (0.3.4 aborted its
/// workers in an endless restart loop over such a descriptor).
pub fn close_from_3() {
    #[cfg(target_os = "freebsd")]
    // SAFETY: closefrom only closes descriptors; nothing in this process
    // holds one above 2 yet when it is called.
    unsafe {
        libc::closefrom(3)
    };
    #[cfg(target_os = "linux")]
    for fd in open_descriptors() {
        if fd > 2 {
            // SAFETY: as above: no owner of a descriptor above 2 exists yet.
            unsafe { libc::close(fd) };
        }
    }
}

/// Every open descriptor of this process, in ascending order.
pub fn open_descriptors() -> Vec<RawFd> {
    #[cfg(target_os = "linux")]
    {
        // The directory handle itself shows up in the listing; it is gone
        // again once the listing is read, so drop whatever is no longer
        // open afterwards.
        let mut fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
            Ok(dir) => dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
            Err(_) => (0..max_descriptors()).collect(),
        };
        fds.retain(|&fd| is_open(fd));
        fds.sort_unstable();
        fds
    }
    #[cfg(target_os = "freebsd")]
    {
        (0..max_descriptors()).filter(|&fd| is_open(fd)).collect()
    }
}

fn max_descriptors() -> RawFd {
    // SAFETY: getdtablesize has no preconditions.
    unsafe { libc::getdtablesize() }
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// What kind of file a descriptor is, in the words of the log message.
pub fn kind(fd: RawFd) -> &'static str {
    // SAFETY: fstat writes into the zeroed stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return "unknown";
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFBLK => "block device",
        libc::S_IFCHR => "character device",
        libc::S_IFDIR => "directory",
        libc::S_IFIFO => "pipe or FIFO",
        libc::S_IFLNK => "symbolic link",
        libc::S_IFREG => "regular file",
        libc::S_IFSOCK => "socket",
        _ => "unknown",
    }
}

/// Descriptors open beyond `keep` (0, 1 and 2 are always kept), each with
/// its kind.
pub fn unexpected(keep: &[RawFd]) -> Vec<(RawFd, &'static str)> {
    open_descriptors()
        .into_iter()
        .filter(|fd| *fd > 2 && !keep.contains(fd))
        .map(|fd| (fd, kind(fd)))
        .collect()
}

/// Closes descriptors this process owns through objects it will never use
/// again (a freshly forked worker's copies of the main process's files).
///
/// # Safety
/// No code may use or close these descriptors afterwards: their owners
/// must be leaked, which the worker does by never returning to them.
pub unsafe fn close_raw(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: the caller guarantees the owners are never used again.
        unsafe { libc::close(fd) };
    }
}

/// Sets O_NONBLOCK with fcntl (a sandboxed worker keeps the right to
/// fcntl but not the ioctl std would use).
pub fn set_nonblocking(fd: impl std::os::fd::AsFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}
