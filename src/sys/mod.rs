//! Small platform pieces: host names, process titles, pidfile, logging.

pub mod host;
