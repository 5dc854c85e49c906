//! A syslog(3) client: RFC 3164 records (`<PRI>Mmm dd hh:mm:ss
//! ident[pid]: message`, facility daemon) on a datagram socket connected
//! to syslogd's.
//!
//! Why not a crate or libc's syslog(3):
//! - The stamp is local time. FreeBSD's syslogd keeps the stamp a client
//!   sends and reads it as local time, so a UTC stamp (what the syslog
//!   crate sends) is wrong by the zone's offset.
//! - After `service syslogd restart` the socket the client is connected to
//!   is gone; each record that fails is sent again on a new connection,
//!   as libc does. A worker in capability mode cannot name a path, so on
//!   FreeBSD the client keeps the directory holding syslogd's socket open
//!   (narrowed to CAP_CONNECTAT) and reconnects with connectat(2), which
//!   capability mode allows. Under Linux's seccomp filter a worker cannot
//!   reconnect (socket and connect are refused): its records are lost
//!   after a syslogd restart until the worker is restarted.
//! - The connection is made at once (LOG_NDELAY), before a worker enters
//!   its sandbox, and is non-blocking: a stuck syslogd loses records rather
//!   than stalling an event loop.
//! - The pid is taken for each record, so a forked process (the guardian)
//!   logs under its own.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};

#[cfg(target_os = "freebsd")]
const DEFAULT_PATH: &str = "/var/run/log";
#[cfg(target_os = "linux")]
const DEFAULT_PATH: &str = "/dev/log";

/// LOG_DAEMON.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The longest record sent: FreeBSD's syslog(3) sends no more, and a longer
/// datagram may be refused (EMSGSIZE) rather than cut.
pub const MAX_RECORD: usize = 2048;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Where syslogd listens. Test builds may point elsewhere
/// (`HASTMON_TEST_SYSLOG`), so that tests read what the daemon logs.
pub fn path() -> PathBuf {
    #[cfg(feature = "sandbox-probe")]
    if let Some(p) = std::env::var_os("HASTMON_TEST_SYSLOG") {
        return p.into();
    }
    PathBuf::from(DEFAULT_PATH)
}

/// One process's connection to syslogd.
#[derive(Debug)]
pub struct Syslog {
    path: PathBuf,
    ident: String,
    sock: Option<OwnedFd>,
    /// The directory of `path`, to reconnect through (FreeBSD).
    dir: Option<OwnedFd>,
}

impl Syslog {
    /// Connects to the syslogd socket at `path` now. A failure is not
    /// fatal: each record tries again.
    pub fn open(path: &Path, ident: &str) -> Syslog {
        let mut s = Syslog {
            path: path.to_path_buf(),
            ident: ident.to_string(),
            sock: None,
            dir: open_dir(path),
        };
        let _ = s.connect();
        s
    }

    fn connect(&mut self) -> io::Result<()> {
        self.sock = None;
        let sock = nix::sys::socket::socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        connect(&sock, &self.path, self.dir.as_ref())?;
        self.sock = Some(sock);
        Ok(())
    }

    /// Sends one record of `severity` (0 emerg .. 7 debug), stamped now.
    pub fn send(&mut self, severity: u8, msg: &str) -> io::Result<()> {
        let record = format_record(
            FACILITY_DAEMON | (severity & 7),
            &stamp(now()),
            &self.ident,
            std::process::id(),
            msg,
        );
        if self.sock.is_none() {
            self.connect()?;
        }
        match self.send_record(&record) {
            Ok(()) => Ok(()),
            // syslogd is behind: the record is lost, the connection is fine.
            Err(Errno::EAGAIN | Errno::ENOBUFS) => Err(io::Error::from(Errno::EAGAIN)),
            // syslogd went away (restarted): once more on a new connection.
            Err(_) => {
                self.connect()?;
                Ok(self.send_record(&record)?)
            }
        }
    }

    fn send_record(&self, record: &str) -> nix::Result<()> {
        let Some(sock) = &self.sock else {
            return Err(Errno::ENOTCONN);
        };
        loop {
            match nix::sys::socket::send(sock.as_raw_fd(), record.as_bytes(), MsgFlags::empty()) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The connected socket's descriptor.
    pub fn socket_fd(&self) -> Option<RawFd> {
        self.sock.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The descriptor of the directory reconnects go through, if any.
    pub fn dir_fd(&self) -> Option<RawFd> {
        self.dir.as_ref().map(AsRawFd::as_raw_fd)
    }
}

/// `<PRI>STAMP IDENT[PID]: MSG`, cut to [`MAX_RECORD`] bytes at a
/// character boundary.
pub fn format_record(pri: u8, stamp: &str, ident: &str, pid: u32, msg: &str) -> String {
    let mut record = format!("<{pri}>{stamp} {ident}[{pid}]: {msg}");
    if record.len() > MAX_RECORD {
        let mut end = MAX_RECORD;
        while !record.is_char_boundary(end) {
            end -= 1;
        }
        record.truncate(end);
    }
    record
}

fn now() -> libc::time_t {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // time_t is 32 bits on i386 FreeBSD.
    libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX)
}

/// `Mmm dd hh:mm:ss` in local time, as RFC 3164 and syslogd want it. The
/// zone was read before any sandbox (tzset), so no file is opened here.
pub fn stamp(t: libc::time_t) -> String {
    // SAFETY: an all-zero tm is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // reentrant form and writes only into `tm`.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "Jan  1 00:00:00".to_string();
    }
    let month = usize::try_from(tm.tm_mon).map_or("Jan", |m| MONTHS[m % 12]);
    format!(
        "{month} {:>2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

#[cfg(target_os = "freebsd")]
fn open_dir(path: &Path) -> Option<OwnedFd> {
    use nix::fcntl::{OFlag, open};
    let dir = path.parent()?;
    open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}

#[cfg(target_os = "linux")]
fn open_dir(_path: &Path) -> Option<OwnedFd> {
    None
}

#[cfg(target_os = "freebsd")]
fn connect(sock: &OwnedFd, path: &Path, dir: Option<&OwnedFd>) -> io::Result<()> {
    use nix::sys::socket::SockaddrLike;
    unsafe extern "C" {
        // connectat(2), FreeBSD 10 and later; not in the libc crate.
        fn connectat(
            fd: libc::c_int,
            s: libc::c_int,
            name: *const libc::sockaddr,
            namelen: libc::socklen_t,
        ) -> libc::c_int;
    }
    let (Some(dir), Some(name)) = (dir, path.file_name()) else {
        let addr = UnixAddr::new(path)?;
        return Ok(nix::sys::socket::connect(sock.as_raw_fd(), &addr)?);
    };
    let addr = UnixAddr::new(Path::new(name))?;
    // SAFETY: both descriptors are open; `addr` is a valid sockaddr_un of
    // `addr.len()` bytes that lives across the call.
    let rc = unsafe {
        connectat(
            dir.as_fd().as_raw_fd(),
            sock.as_fd().as_raw_fd(),
            addr.as_ptr().cast(),
            addr.len(),
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn connect(sock: &OwnedFd, path: &Path, _dir: Option<&OwnedFd>) -> io::Result<()> {
    let addr = UnixAddr::new(path)?;
    Ok(nix::sys::socket::connect(sock.as_fd().as_raw_fd(), &addr)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hastmon-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn receive(server: &UnixDatagram) -> String {
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = server.recv(&mut buf).expect("a record");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn records_are_rfc3164_with_the_senders_pid() {
        assert_eq!(
            format_record(29, "Dec  7 09:05:01", "hastmon", 4242, "Started."),
            "<29>Dec  7 09:05:01 hastmon[4242]: Started."
        );
        let long = "é".repeat(MAX_RECORD);
        let cut = format_record(29, "Dec  7 09:05:01", "hastmon", 1, &long);
        assert!(cut.len() <= MAX_RECORD && cut.len() > MAX_RECORD - 2);
    }

    /// Runs in a child of the test binary with TZ set, so that the zone
    /// this process already loaded does not matter.
    #[test]
    fn stamps_are_local_time() {
        if std::env::var_os("HASTMON_TEST_TZ_CHILD").is_some() {
            // 1970-01-01 00:00:00 UTC is 05:30 in a zone 5:30 east.
            assert_eq!(stamp(0), "Jan  1 05:30:00");
            // 2026-12-07 21:47:16 UTC.
            assert_eq!(stamp(1_796_680_036), "Dec  8 03:17:16");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sys::syslog::tests::stamps_are_local_time"])
            .args(["--test-threads", "1"])
            .env("HASTMON_TEST_TZ_CHILD", "1")
            .env("TZ", "XST-5:30")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
    }

    #[test]
    fn a_restarted_syslogd_gets_the_next_record() {
        let dir = scratch("syslog-restart");
        let path = dir.join("log");
        let first = UnixDatagram::bind(&path).unwrap();
        let mut log = Syslog::open(&path, "hastmon");
        log.send(5, "one").unwrap();
        let got = receive(&first);
        let pid = std::process::id();
        assert!(got.starts_with("<29>"), "{got}");
        assert!(got.ends_with(&format!(" hastmon[{pid}]: one")), "{got}");

        // syslogd restarts: its socket file is unlinked and bound anew.
        drop(first);
        std::fs::remove_file(&path).unwrap();
        assert!(log.send(5, "lost").is_err(), "nobody listens");
        let second = UnixDatagram::bind(&path).unwrap();
        log.send(3, "two").unwrap();
        let got = receive(&second);
        assert!(got.starts_with("<27>"), "{got}");
        assert!(got.ends_with("]: two"), "{got}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_syslogd_at_start_is_retried_by_each_record() {
        let dir = scratch("syslog-late");
        let path = dir.join("log");
        let mut log = Syslog::open(&path, "hastmon");
        assert_eq!(log.socket_fd(), None);
        assert!(log.send(6, "early").is_err());
        let server = UnixDatagram::bind(&path).unwrap();
        log.send(6, "late").unwrap();
        assert!(receive(&server).ends_with("]: late"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
