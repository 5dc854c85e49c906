//! A failure that recurs every heartbeat is logged once, then summarized,
//! by a real daemon.

mod common;

use common::{Node, free_port, wait_for};

#[test]
fn a_primary_retrying_an_unreachable_remote_logs_the_failure_once_then_a_summary() {
    // Nobody listens on the remote's port, so every heartbeat's attempt
    // is refused at once; complaint_count keeps the silence limit (20 s
    // and more) beyond the test.
    let port = free_port();
    let mut node = Node::new(
        "ratelimit",
        "alpha",
        &format!(
            "resource www {{\n exec {{hook}}\n heartbeat_interval 0.2\n timeout 1\n complaint_count 100\n on alpha {{ remote tcp4://127.0.0.2:{port} role_on_start primary }}\n}}\n"
        ),
    );
    node.start();
    let failure = format!("Unable to connect to tcp4://127.0.0.2:{port}: ");
    let lines = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(&failure))
            .map(str::to_string)
            .collect()
    };
    let log = wait_for(30, "a summary of the repeated failure", || {
        let log = node.log();
        lines(&log)
            .iter()
            .any(|l| l.contains(" (repeated "))
            .then_some(log)
    });
    let lines = lines(&log);
    assert!(lines[0].starts_with("[WARNING] [www] (primary) "), "{log}");
    assert!(!lines[0].contains("repeated"), "{log}");
    assert!(
        lines[1..].iter().all(|l| l.contains(" (repeated ")),
        "only the first is logged in full: {lines:#?}"
    );
    // The first summary comes after 10 retries (2 s at 0.2 s), not 10 lines.
    assert!(
        lines[1].contains(" (repeated 10 times in the last "),
        "{lines:#?}"
    );
    let attempts = node.hooks().iter().filter(|h| *h == "status www").count();
    assert!(
        lines.len() < attempts,
        "{} lines for {attempts} cycles",
        lines.len()
    );
    assert_eq!(
        node.status_field("www", "role").as_deref(),
        Some("primary"),
        "{log}"
    );
}
