//! Who this node is: its host name and, on FreeBSD, `kern.hostuuid`.

use crate::config::NodeNames;

/// The names `on` sections are matched against: `-n NAME` alone when
/// given, else the host name, its first label and the host UUID.
pub fn node_names(explicit: Option<&str>) -> std::io::Result<NodeNames> {
    if let Some(name) = explicit {
        return Ok(NodeNames::exact(name));
    }
    let host = nix::unistd::gethostname()?;
    let host = host.to_string_lossy();
    Ok(NodeNames::from_host(&host, hostuuid().as_deref()))
}

#[cfg(target_os = "freebsd")]
fn hostuuid() -> Option<String> {
    let mut buf = [0u8; 64];
    let mut len = buf.len();
    // SAFETY: the name is a NUL-terminated literal, buf/len describe a valid
    // writable buffer, and no new value is set (null, 0).
    let rc = unsafe {
        libc::sysctlbyname(
            c"kern.hostuuid".as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let text = &buf[..len.min(buf.len())];
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    std::str::from_utf8(&text[..end]).ok().map(str::to_string)
}

#[cfg(target_os = "linux")]
fn hostuuid() -> Option<String> {
    None
}
