//! hastmon keeps a resource running on exactly one node of a cluster and
//! moves it to another node when that node dies.
//!
//! Layers, from the bottom up (arrows point down only):
//! `sys`, `event` (platform code) · `config`, `proto` (pure) · and, above
//! them, the daemon and its workers.

#[cfg(not(any(target_os = "freebsd", target_os = "linux")))]
compile_error!("hastmon runs on FreeBSD and Linux only");

pub mod config;
pub mod ctl;
pub mod daemon;
pub mod event;
pub mod exit;
pub mod node;
pub mod proto;
pub mod role;
pub mod sandbox;
pub mod sys;
pub mod types;
pub mod worker;
