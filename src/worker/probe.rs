//! Test builds only (feature `sandbox-probe`): on SIGUSR1 the worker tries
//! what its sandbox must forbid and logs each outcome, so that tests can
//! check the sandbox from outside while the worker goes on serving.
//!
//! What each platform refuses (hastmon(8), SECURITY CONSIDERATIONS):
//! Linux's seccomp filter refuses all five with EPERM; FreeBSD's capability
//! mode refuses open, connect, bind and exec with ECAPMODE and allows fork.

use crate::log_notice;

fn outcome(r: std::io::Result<()>) -> String {
    match r {
        Ok(()) => "allowed".into(),
        Err(e) => crate::sandbox::refusal_name(&e).map_or_else(|| e.to_string(), String::from),
    }
}

pub fn run() {
    if let Some(mode) = crate::sandbox::kernel_mode() {
        let mode = mode.map_or_else(|e| e.to_string(), |on| u8::from(on).to_string());
        log_notice!("Sandbox probe: cap_getmode: {mode}.");
    }
    let open = std::fs::File::open("/etc/passwd").map(drop);
    log_notice!("Sandbox probe: open: {}.", outcome(open));
    let connect = std::net::TcpStream::connect("127.0.0.1:9").map(drop);
    log_notice!("Sandbox probe: connect: {}.", outcome(connect));
    let bind = std::net::TcpListener::bind("127.0.0.1:0").map(drop);
    log_notice!("Sandbox probe: bind: {}.", outcome(bind));
    let exec = {
        let path = c"/bin/true";
        let argv = [path.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY: valid NUL-terminated path and NULL-terminated vectors;
        // should execve succeed, the test sees the worker replaced.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        Err(std::io::Error::last_os_error())
    };
    log_notice!("Sandbox probe: exec: {}.", outcome(exec));
    // SAFETY: a child, if one is made, exits at once without touching
    // the parent's state.
    let fork = match unsafe { libc::fork() } {
        // SAFETY: _exit(2) is async-signal-safe and ends the child at once.
        0 => unsafe { libc::_exit(0) },
        -1 => Err(std::io::Error::last_os_error()),
        // The child stays a zombie until the worker exits: wait4(2) is
        // not among capability mode's calls.
        _ => Ok(()),
    };
    log_notice!("Sandbox probe: fork: {}.", outcome(fork));
}
