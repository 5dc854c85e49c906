//! How much of what was written to a TCP socket its peer has not yet
//! acknowledged: Linux's SIOCOUTQ (the same request as TIOCOUTQ), and
//! FreeBSD's FIONWRITE, which counts the send buffer, where TCP keeps
//! data until it is acknowledged. Zero means the peer's TCP has it.

use std::os::fd::{AsRawFd, BorrowedFd};

#[cfg(target_os = "linux")]
const REQUEST: libc::Ioctl = libc::TIOCOUTQ;
#[cfg(target_os = "freebsd")]
const REQUEST: libc::c_ulong = libc::FIONWRITE;

/// Bytes written to `fd` that its peer has not acknowledged.
pub fn unacknowledged(fd: BorrowedFd<'_>) -> std::io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: the request writes one int through the pointer, which
    // points at `n`; `fd` is a descriptor we hold open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), REQUEST, &mut n) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn what_the_peer_acknowledged_is_no_longer_counted() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut b, _) = l.accept().unwrap();
        a.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).unwrap();
        // Read by the peer's application: its TCP acknowledged it.
        let mut left = super::unacknowledged(a.as_fd()).unwrap();
        for _ in 0..100 {
            if left == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            left = super::unacknowledged(a.as_fd()).unwrap();
        }
        assert_eq!(left, 0);
    }
}
