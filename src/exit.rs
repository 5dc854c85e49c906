//! Exit codes from sysexits(3), the ones hastmon and hastmonctl use.

pub const OK: i32 = 0;
pub const USAGE: i32 = 64;
pub const DATAERR: i32 = 65;
pub const NOUSER: i32 = 67;
/// A primary worker heard from no other node for its network-silence
/// limit (internal: the worker's exit to the main process).
pub const NOHOST: i32 = 68;
pub const UNAVAILABLE: i32 = 69;
pub const SOFTWARE: i32 = 70;
pub const OSERR: i32 = 71;
pub const OSFILE: i32 = 72;
pub const TEMPFAIL: i32 = 75;
pub const NOPERM: i32 = 77;
pub const CONFIG: i32 = 78;
