//! Small platform pieces: host names, process titles, pidfile, logging.

pub mod host;
pub mod log;
pub mod pidfile;
