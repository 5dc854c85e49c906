//! Process titles, so that `ps` shows `hastmon: <resource> (<role>)`.

/// Sets the title shown by ps(1). `text` comes after the program name,
/// as setproctitle(3) puts it.
pub fn set(text: &str) {
    imp::set(text);
}

#[cfg(target_os = "freebsd")]
mod imp {
    use std::ffi::CString;

    pub fn set(text: &str) {
        let Ok(c) = CString::new(text) else { return };
        // SAFETY: a "%s" format with one NUL-terminated argument.
        unsafe { libc::setproctitle(c"%s".as_ptr(), c.as_ptr()) };
    }
}

#[cfg(target_os = "linux")]
mod imp {
    /// Linux has no setproctitle: ps reads the argument area of the
    /// process's memory, which /proc/self/stat locates. The title is
    /// written over it, cut to its size, and the thread name (15 bytes,
    /// what `ps -o comm` and top show) is set too.
    pub fn set(text: &str) {
        let name = std::env::args()
            .next()
            .map(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or(a)
            })
            .unwrap_or_else(|| "hastmon".into());
        let title = format!("{name}: {text}");
        if let Some((start, end)) = arg_area() {
            let len = end - start;
            let mut bytes = title.as_bytes().to_vec();
            bytes.truncate(len.saturating_sub(1));
            bytes.resize(len, 0);
            // SAFETY: [start, end) is this process's own argument area as
            // the kernel reports it: mapped, writable stack memory that
            // nothing in this program reads after start-up (std copied
            // the arguments it needs).
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, len);
            }
        }
        let comm = std::ffi::CString::new(
            text.as_bytes()
                .iter()
                .copied()
                .take(15)
                .collect::<Vec<u8>>(),
        );
        if let Ok(comm) = comm {
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of any
            // length and keeps the first 15 bytes.
            unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr()) };
        }
    }

    /// `arg_start` and `arg_end`: fields 48 and 49 of /proc/self/stat,
    /// counted after the parenthesised command name, which may hold
    /// spaces.
    fn arg_area() -> Option<(usize, usize)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        // `rest` starts at field 3.
        let start: usize = fields.get(48 - 3)?.parse().ok()?;
        let end: usize = fields.get(49 - 3)?.parse().ok()?;
        (end > start).then_some((start, end))
    }
}
