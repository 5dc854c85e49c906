//! The pidfile: created 0600, held under an exclusive lock for the
//! daemon's life, written in both modes and removed on a clean exit (Q38).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

pub struct Pidfile {
    path: PathBuf,
    file: Flock<File>,
}

#[derive(Debug)]
pub enum PidfileError {
    /// Another process holds the lock; its pid if it wrote one.
    Locked { pid: Option<u32> },
    /// The file could not be opened or locked for another reason.
    Io(std::io::Error),
}

impl Pidfile {
    /// Opens and locks `path` without waiting. Does not write the pid yet:
    /// the daemon writes it after it has forked into the background.
    pub fn acquire(path: &Path) -> Result<Pidfile, PidfileError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(PidfileError::Io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(Pidfile {
                path: path.to_path_buf(),
                file,
            }),
            Err((mut file, Errno::EWOULDBLOCK)) => Err(PidfileError::Locked {
                pid: read_pid(&mut file),
            }),
            Err((_, e)) => Err(PidfileError::Io(e.into())),
        }
    }

    /// Replaces the file's content with our pid.
    pub fn write_pid(&mut self) -> std::io::Result<()> {
        let f: &mut File = &mut self.file;
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        f.sync_data()
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file, then lets the lock go with the descriptor.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The holder may be between taking the lock and writing its pid: look a
/// few times, as the original did.
fn read_pid(file: &mut File) -> Option<u32> {
    for _ in 0..3 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Ok(pid) = text.trim().parse()
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_sees_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("hastmon-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.pid");
        let mut first = Pidfile::acquire(&path).unwrap();
        first.write_pid().unwrap();
        match Pidfile::acquire(&path) {
            Err(PidfileError::Locked { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{:?}", other.map(|_| ())),
        }
        first.remove();
        assert!(!path.exists());
        let again = Pidfile::acquire(&path).unwrap();
        again.remove();
    }
}
