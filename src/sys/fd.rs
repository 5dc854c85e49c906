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

/// Every open descriptor of this process, in ascending order. Asks the
/// kernel for the list (Linux: /proc/self/fd; FreeBSD: the
/// `kern.proc.filedesc` sysctl, which needs no fdescfs) rather than trying
/// each number up to getdtablesize(), which is 10^5 to 10^6 on FreeBSD
/// and would be walked at every worker start. The walk is left only for a
/// kernel that does not answer.
pub fn open_descriptors() -> Vec<RawFd> {
    let mut fds = match listed() {
        Some(fds) => fds,
        None => (0..max_descriptors()).collect(),
    };
    // A listing may hold what it used itself (the /proc directory's own
    // descriptor): keep only what is still open.
    fds.retain(|&fd| is_open(fd));
    fds.sort_unstable();
    fds.dedup();
    fds
}

#[cfg(target_os = "linux")]
fn listed() -> Option<Vec<RawFd>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// The `kinfo_file` records of `kern.proc.filedesc.<pid>`: packed, each
/// `kf_structsize` long, with negative `kf_fd` for the working and root
/// directories and the like.
#[cfg(target_os = "freebsd")]
fn listed() -> Option<Vec<RawFd>> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mib = [
        libc::CTL_KERN,
        libc::KERN_PROC,
        libc::KERN_PROC_FILEDESC,
        pid,
    ];
    let mut len: libc::size_t = 0;
    // SAFETY: a null old buffer asks only for the size, into `len`.
    let rc = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            4,
            std::ptr::null_mut(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    // Room for what may open meanwhile.
    len += len / 4 + 4096;
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is writable for `len` bytes, which the kernel updates
    // to what it wrote.
    let rc = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            4,
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    buf.truncate(len);
    let fd_offset = std::mem::offset_of!(libc::kinfo_file, kf_fd);
    Some(kinfo_file_fds(&buf, fd_offset))
}

/// The descriptor numbers in packed `kinfo_file` records, whose first int
/// is the record's size and whose `kf_fd` is at `fd_offset`. Apart from
/// FreeBSD only its test uses it.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
fn kinfo_file_fds(buf: &[u8], fd_offset: usize) -> Vec<RawFd> {
    let int_at = |at: usize| -> Option<i32> {
        let bytes = buf.get(at..at + 4)?;
        Some(i32::from_ne_bytes(bytes.try_into().ok()?))
    };
    let mut fds = Vec::new();
    let mut at = 0;
    while let Some(size) = int_at(at) {
        let Ok(size) = usize::try_from(size) else {
            break;
        };
        if size < fd_offset + 4 {
            break;
        }
        match int_at(at + fd_offset) {
            Some(fd) if fd >= 0 => fds.push(fd),
            _ => {}
        }
        at += size;
    }
    fds
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn the_listing_holds_open_descriptors_and_not_closed_ones() {
        let listed_now = listed().expect("the kernel lists our descriptors");
        assert!(listed_now.contains(&0) || !is_open(0));
        let (r, w) = nix::unistd::pipe().unwrap();
        let (r_fd, w_fd) = (r.as_raw_fd(), w.as_raw_fd());
        let open = open_descriptors();
        assert!(open.contains(&r_fd) && open.contains(&w_fd), "{open:?}");
        assert!(open.windows(2).all(|p| p[0] < p[1]), "sorted, unique");
        drop(w);
        let open = open_descriptors();
        assert!(open.contains(&r_fd));
        // The number may be reused by another test's thread at once;
        // if it is, it is open again and rightly listed.
        assert!(!open.contains(&w_fd) || is_open(w_fd));
    }

    #[test]
    fn kinfo_file_records_are_walked_by_their_own_size() {
        // Records of 24 and 16 bytes: size, type, fd, padding.
        let mut buf = Vec::new();
        for (size, fd) in [(24i32, -1i32), (16, 0), (24, 1), (16, -2), (16, 7)] {
            let mut rec = vec![0u8; size as usize];
            rec[0..4].copy_from_slice(&size.to_ne_bytes());
            rec[8..12].copy_from_slice(&fd.to_ne_bytes());
            buf.extend(rec);
        }
        assert_eq!(kinfo_file_fds(&buf, 8), vec![0, 1, 7]);
        // A record cut short, or a size of 0, ends the walk.
        assert_eq!(kinfo_file_fds(&buf[..buf.len() - 8], 8), vec![0, 1]);
        assert_eq!(kinfo_file_fds(&[0; 32], 8), Vec::<RawFd>::new());
    }

    #[test]
    fn the_audit_names_each_stray_descriptor_with_its_kind() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let stray = unexpected(&[w.as_raw_fd()]);
        assert!(
            stray.contains(&(r.as_raw_fd(), "pipe or FIFO")),
            "{stray:?}"
        );
        assert!(!stray.iter().any(|(fd, _)| *fd == w.as_raw_fd()));
        assert!(stray.iter().all(|(fd, _)| *fd > 2));
    }
}
