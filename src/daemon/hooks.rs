//! The exec hook processes, run by the main process only; which hook
//! runs when, and its time limit, are the node machine's (`node::hooks`).
//!
//! Each runs as `<exec> <event> <resource> [args]` in its own process
//! group, with stdin on /dev/null and stdout/stderr on pipes that are read
//! line by line into the log. Exits arrive as poller events; nothing here
//! ever waits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::event::{Interest, Poller, Token};
use crate::node::HookId;
use crate::{log_debug, log_info, log_warning};

/// A longer line is logged in pieces of this size.
const MAX_LINE: usize = 1024;

/// Token ids of hook output pipes live in their own range.
const BASE: u64 = 2 << 32;
const END: u64 = 3 << 32;

pub fn owns(id: u64) -> bool {
    (BASE..END).contains(&id)
}

struct Output {
    pipe: File,
    buf: Vec<u8>,
    label: String,
    stderr: bool,
}

/// The hook processes running, and their output pipes.
#[derive(Default)]
pub struct Hooks {
    running: HashMap<HookId, Pid>,
    outputs: HashMap<u64, Output>,
    next_id: u64,
}

impl Hooks {
    pub fn new() -> Hooks {
        Hooks {
            next_id: BASE,
            ..Hooks::default()
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = if id + 1 >= END { BASE } else { id + 1 };
        id
    }

    /// Starts `exec args...` for resource `name`; returns its pid (and
    /// process group).
    pub fn spawn(
        &mut self,
        poller: &mut Poller,
        hook: HookId,
        name: &str,
        exec: &str,
        args: &[String],
    ) -> std::io::Result<Pid> {
        let mut child = command(std::path::Path::new(exec), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = Pid::from_raw(child.id() as i32);
        log_debug!(
            1,
            "[{name}] Hook started (pid={pid}, cmd=[{exec} {}]).",
            args.join(" ")
        );
        let word = args.first().map_or("", String::as_str);
        let label = format!("[{name}] {word}[{pid}]");
        let pipes = [
            child.stdout.take().map(|p| (OwnedFd::from(p), false)),
            child.stderr.take().map(|p| (OwnedFd::from(p), true)),
        ];
        let mut output_ids = Vec::new();
        for (fd, stderr) in pipes.into_iter().flatten() {
            let id = self.id();
            let _ = crate::sys::fd::set_nonblocking(&fd);
            if let Err(e) = poller.register(fd.as_fd(), Token(id), Interest::Read) {
                log_warning!("{label}: its output is lost: {e}.");
                continue;
            }
            output_ids.push(id);
            self.outputs.insert(
                id,
                Output {
                    pipe: File::from(fd),
                    buf: Vec::new(),
                    label: label.clone(),
                    stderr,
                },
            );
        }
        // The child is reaped through the poller; `child` is dropped
        // without waiting.
        if let Err(e) = poller.watch_process(pid) {
            // Unwatched, it would run unbounded and unreaped: end it, and
            // leave none of its pipes registered.
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = child.wait();
            for id in output_ids {
                if let Some(out) = self.outputs.remove(&id) {
                    let _ = poller.deregister(out.pipe.as_fd());
                }
            }
            return Err(e);
        }
        self.running.insert(hook, pid);
        Ok(pid)
    }

    /// A child exited: the hook it was, if it was one.
    pub fn exited(&mut self, pid: Pid) -> Option<HookId> {
        let hook = *self.running.iter().find(|(_, p)| **p == pid)?.0;
        self.running.remove(&hook);
        Some(hook)
    }

    /// SIGTERM, or SIGKILL, to a hook's process group.
    pub fn signal(&self, hook: HookId, kill: bool) {
        let Some(&pid) = self.running.get(&hook) else {
            return;
        };
        let signal = if kill {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        if let Err(e) = killpg(pid, signal) {
            log_warning!("Unable to signal hook (pid={pid}): {e}.");
        }
    }

    /// A hook's output pipe is readable: log each complete line.
    pub fn readable(&mut self, poller: &mut Poller, id: u64) {
        let Some(out) = self.outputs.get_mut(&id) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let eof = loop {
            match out.pipe.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => {
                    out.buf.extend_from_slice(&chunk[..n]);
                    out.log_lines(false);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        if eof {
            out.log_lines(true);
            let _ = poller.deregister(out.pipe.as_fd());
            self.outputs.remove(&id);
        }
    }

    /// Every descriptor this holds, for a forked worker to close.
    pub fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.extend(self.outputs.values().map(|o| o.pipe.as_raw_fd()));
    }
}

impl Output {
    /// Logs complete lines (and, at the end, what is left); a line longer
    /// than MAX_LINE is cut into pieces rather than buffered for ever.
    fn log_lines(&mut self, end: bool) {
        loop {
            let cut = match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) if i <= MAX_LINE => (i, 1),
                _ if self.buf.len() >= MAX_LINE => (MAX_LINE, 0),
                _ if end && !self.buf.is_empty() => (self.buf.len(), 0),
                _ => return,
            };
            let line: Vec<u8> = self.buf.drain(..cut.0 + cut.1).take(cut.0).collect();
            let text = String::from_utf8_lossy(&line);
            if self.stderr {
                log_warning!("{}: {text}", self.label);
            } else {
                log_info!("{}: {text}", self.label);
            }
        }
    }
}

/// `<exec> <args>` as every hook runs: argv[0] the base name of the path,
/// its own process group (what a time limit kills), stdin on /dev/null.
/// std resets the signal mask and dispositions in the child.
pub fn command(exec: &std::path::Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
    let argv0 = exec
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = Command::new(exec);
    cmd.arg0(argv0)
        .args(args)
        .process_group(0)
        .stdin(Stdio::null());
    cmd
}
