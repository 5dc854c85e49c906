//! `hastmonctl status` prints captured replies of hastmon 0.3.4 exactly as
//! the original tool did (hastmonctl(8), "Status output").

use std::path::Path;

use hastmon::ctl::status::{role_report, status_text};
use hastmon::proto::decode_frame;
use hastmon::proto::msg::{RoleReply, StatusReply};
use hastmon::types::Role;

fn vector(name: &str) -> hastmon::proto::NvList {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    let hex = std::fs::read_to_string(path).unwrap();
    let hex = hex.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    decode_frame(&bytes).unwrap()
}

fn status(name: &str) -> (String, i32) {
    status_text(&StatusReply::from_nv(&vector(name)))
}

#[test]
fn primary() {
    let (text, code) = status("ctl_status_r1_reply.hex");
    assert_eq!(code, 0);
    assert_eq!(
        text,
        "r1:\n  role: primary\n  workerpid: 13056\n  exec: /usr/local/sbin/hookA\n  remote:\n    tcp4://10.77.0.12 (connected)\n  state: run\n  attempts: 0 from 5\n  complaints: 0 for last 10 sec (threshold 50)\n  heartbeat: 1 sec\n\n"
    );
}

#[test]
fn secondary_with_and_without_worker() {
    let (text, _) = status("ctl_status_all_secondary_reply.hex");
    assert!(text.starts_with("r1:\n  role: secondary\n  workerpid: 13061\n  exec: /usr/local/sbin/hookB\n  remote:\n    tcp4://10.77.0.11 (connected)\n  state: stopped\n"), "{text}");
    let (text, _) = status("wd_poll_reply_secondary_noworker.hex");
    assert!(text.starts_with("r1:\n  role: secondary\n  exec: /usr/local/sbin/hookB\n  remote:\n    tcp4://10.77.0.11\n  state: unknown\n  attempts: 0 from 5\n"), "{text}");
}

#[test]
fn watchdog_shows_role_and_state_of_each_remote() {
    let (text, _) = status("ctl_status_all_watchdog_reply.hex");
    let remotes: Vec<&str> = text.lines().filter(|l| l.starts_with("    ")).collect();
    assert_eq!(
        remotes,
        [
            "    tcp4://10.77.0.11 (primary/run)",
            "    tcp4://10.77.0.12 (secondary/stopped)"
        ]
    );
    assert!(text.contains("  role: watchdog\n  workerpid: "), "{text}");
}

#[test]
fn init_has_no_worker_lines() {
    let (text, code) = status("wd_poll_reply_init.hex");
    assert_eq!(code, 0);
    assert_eq!(
        text,
        "r1:\n  role: init\n  exec: /usr/local/sbin/hookA\n  remote:\n    tcp4://10.77.0.12\n  state: unknown\n  attempts: 0 from 5\n  complaints: 0 for last 10 sec (threshold 50)\n  heartbeat: 1 sec\n\n"
    );
}

#[test]
fn unknown_resource_is_two_lines_and_exit_1() {
    let (text, code) = status("ctl_status_unknown_resource_reply.hex");
    assert_eq!((text.as_str(), code), ("nosuch:\n  error: 1\n", 1));
}

#[test]
fn empty_reply_prints_nothing() {
    let (text, code) = status_text(&StatusReply::default());
    assert_eq!((text.as_str(), code), ("", 0));
}

#[test]
fn role_replies() {
    let reply = RoleReply::from_nv(&vector("ctl_role_primary_r1_reply.hex"));
    let (warn, info, code) = role_report(&reply, Role::Primary, 1);
    assert_eq!(code, 0);
    assert!(warn.is_empty());
    assert_eq!(info, ["[DEBUG][1] [r1] Role changed from init to primary."]);
    assert!(role_report(&reply, Role::Primary, 0).1.is_empty());
    let (_, info, _) = role_report(&reply, Role::Init, 2);
    assert_eq!(info, ["[DEBUG][2] [r1] Role unchanged (init)."]);
    let reply = RoleReply::from_nv(&vector("ctl_role_unknown_resource_reply.hex"));
    let (warn, _, code) = role_report(&reply, Role::Primary, 0);
    assert_eq!(code, 1);
    assert_eq!(warn, ["[WARNING] [nosuch] Received error 1 from hastmon."]);
}
