//! Listening TCP sockets made the same way on every platform.

use std::io;
use std::net::{SocketAddr, TcpListener};

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};

/// Listens on `addr`. An IPv6 socket also accepts IPv4 (as mapped
/// addresses): IPV6_V6ONLY is cleared explicitly, because the default
/// differs (FreeBSD's net.inet6.ip6.v6only is 1, Linux's bindv6only 0),
/// and `tcp6://[::]` is to mean every address on both. SO_REUSEADDR, as
/// std sets it, so a restart does not wait for TIME_WAIT.
pub fn listen_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let sock = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    if addr.is_ipv6() {
        setsockopt(&sock, sockopt::Ipv6V6Only, &false)?;
    }
    setsockopt(&sock, sockopt::ReuseAddr, &true)?;
    use std::os::fd::AsRawFd;
    bind(sock.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&sock, Backlog::MAXCONN)?;
    Ok(TcpListener::from(sock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, TcpStream};

    const INNER: &str = "HASTMON_TEST_V6ONLY_INSIDE";

    /// Accepts an IPv4 client on `[::]`, and sees it as 127.0.0.1.
    fn v4_client_is_accepted_on_the_v6_wildcard() {
        let listener = listen_tcp("[::]:0".parse().unwrap()).unwrap();
        assert!(!nix::sys::socket::getsockopt(&listener, sockopt::Ipv6V6Only).unwrap());
        let port = listener.local_addr().unwrap().port();
        let _client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let (_conn, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip().to_canonical(), IpAddr::from(Ipv4Addr::LOCALHOST));
    }

    /// Where IPv6 sockets are IPv6-only unless told otherwise, as on
    /// FreeBSD: a network namespace of its own with bindv6only=1.
    #[cfg(target_os = "linux")]
    #[test]
    fn tcp6_wildcard_accepts_ipv4_where_v6only_is_the_default() {
        if std::env::var_os(INNER).is_some() {
            let default = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").unwrap();
            assert_eq!(default.trim(), "1");
            return v4_client_is_accepted_on_the_v6_wildcard();
        }
        let out = std::process::Command::new("unshare")
            .args(["-n", "sh", "-c"])
            .arg(
                "echo 1 > /proc/sys/net/ipv6/bindv6only && ip link set lo up && \
                 exec \"$0\" --exact sys::net::tests::tcp6_wildcard_accepts_ipv4_where_v6only_is_the_default --test-threads 1",
            )
            .arg(std::env::current_exe().unwrap())
            .env(INNER, "1")
            .output()
            .expect("unshare(1) runs (tests run as root)");
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}{err}");
        assert!(text.contains("1 passed"), "{text}{err}");
    }

    /// FreeBSD's default is IPv6-only already.
    #[cfg(target_os = "freebsd")]
    #[test]
    fn tcp6_wildcard_accepts_ipv4_where_v6only_is_the_default() {
        let _ = INNER;
        v4_client_is_accepted_on_the_v6_wildcard();
    }

    #[test]
    fn ipv4_listeners_listen() {
        let listener = listen_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        assert!(listener.accept().is_ok());
    }
}
