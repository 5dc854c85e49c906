//! Real clusters on loopback: three daemons on 127.0.0.1-3 (A primary,
//! B secondary, W watchdog) with short intervals, driven through their
//! control sockets and killed for real.

mod common;

use std::io::Write;
use std::time::Duration;

use common::cluster::{ABW, cluster, cluster_with, field, kill_node, remote_line, settled};
use common::wait_for;

#[test]
fn the_secondary_takes_over_when_the_primary_dies_and_every_status_tells_the_truth() {
    let nodes = cluster("takeover", ABW, "");
    settled(&nodes);
    let [a, b, w] = &nodes[..] else {
        unreachable!()
    };
    assert_eq!(
        a.hooks()[..2],
        [
            "role www init primary".to_string(),
            "status www".to_string()
        ]
    );
    assert!(a.hooks().contains(&"connect www".to_string()));
    assert!(b.hooks().contains(&"connect www".to_string()));
    assert_eq!(field(w, "state"), "run");

    kill_node(a);
    wait_for(30, "B to run the resource", || b.running().then_some(()));
    wait_for(10, "every status to agree", || {
        (field(b, "role") == "primary"
            && field(b, "state") == "run"
            && remote_line(b, "127.0.0.1").ends_with("(disconnected)")
            && remote_line(w, "127.0.0.2").ends_with("(primary/run)")
            && remote_line(w, "127.0.0.1").ends_with("(unknown/unknown)"))
        .then_some(())
    });
    let hooks = b.hooks();
    let promoted = hooks
        .iter()
        .position(|h| h == "role www secondary primary")
        .expect("B's role hook");
    assert!(
        hooks[..promoted].contains(&"disconnect www".to_string()),
        "{hooks:?}"
    );
    assert!(
        hooks[..promoted]
            .iter()
            .filter(|h| *h == "complain www")
            .count()
            >= 4,
        "{hooks:?}"
    );
    assert!(
        hooks[promoted..].contains(&"start www".to_string()),
        "{hooks:?}"
    );
    assert!(w.hooks().contains(&"complain www".to_string()));
    assert!(b.log().contains("Complaint limit reached"));
}

#[test]
fn a_planned_switchover_never_runs_the_resource_twice() {
    let nodes = cluster("switchover", ABW, "");
    settled(&nodes);
    let [a, b, _w] = &nodes[..] else {
        unreachable!()
    };
    assert_eq!(a.ctl(&["role", "init", "www"]).0, 0);
    wait_for(10, "A to stop", || {
        (!a.running() && a.hooks().contains(&"stop www".to_string())).then_some(())
    });
    assert!(!b.running(), "B started before A stopped");
    assert_eq!(b.ctl(&["role", "primary", "www"]).0, 0);
    wait_for(20, "B to run the resource", || b.running().then_some(()));
    assert_eq!(a.ctl(&["role", "secondary", "www"]).0, 0);
    wait_for(20, "A to serve B", || {
        (remote_line(a, "127.0.0.2").ends_with("(connected)") && field(a, "state") == "stopped")
            .then_some(())
    });
    assert!(b.running() && !a.running());
    assert_eq!(field(b, "role"), "primary");
}

#[test]
fn a_weaker_second_primary_steps_down() {
    let members: &[(&str, &str, &str)] = &[
        (
            "a",
            "127.0.0.1",
            "remote tcp4://127.0.0.2:PORT priority 1 role_on_start primary",
        ),
        (
            "b",
            "127.0.0.2",
            "remote tcp4://127.0.0.1:PORT priority 2 role_on_start primary",
        ),
    ];
    let nodes = cluster("two-primaries", members, "");
    let [a, b] = &nodes[..] else { unreachable!() };
    wait_for(20, "B to step down", || {
        (field(b, "role") != "primary" && a.running() && !b.running()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(field(a, "role"), "primary");
    assert_eq!(field(a, "state"), "run");
    assert_ne!(field(b, "role"), "primary");
    assert!(a.running() && !b.running());
    let log = b.log();
    assert!(
        log.contains("Primary with higher priority exists.")
            || log.contains("Stronger primary 127.0.0.1 (priority 1) connected"),
        "{log}"
    );
}

#[test]
fn a_wrong_key_is_refused_logged_and_fails_nothing_over() {
    // B's file has another secret than A's and W's.
    let nodes = cluster_with("wrong-key", ABW, |name| {
        let secret = if name == "b" { "two" } else { "one" };
        format!("key {{ algorithm SHA256 secret {secret} }}")
    });
    let [a, b, w] = &nodes[..] else {
        unreachable!()
    };
    wait_for(20, "A to run unchallenged", || {
        (field(a, "state") == "run" && remote_line(w, "127.0.0.1").ends_with("(primary/run)"))
            .then_some(())
    });
    wait_for(10, "B to log the refusal", || {
        let log = b.log();
        log.lines()
            .any(|l| {
                l.contains("Authentication of 127.0.0.1:") && l.ends_with("failed: Hash mismatch.")
            })
            .then_some(())
    });
    kill_node(a);
    std::thread::sleep(Duration::from_secs(4));
    assert!(!b.running(), "a node with the wrong key caused a failover");
    assert_eq!(field(b, "role"), "secondary");
    assert!(!b.hooks().contains(&"complain www".to_string()));
    assert!(
        b.log().contains("Control request from 127.0.0.3"),
        "{}",
        b.log()
    );
}

#[test]
fn an_unknown_address_is_dropped_before_anything_is_read() {
    let nodes = cluster("stranger", ABW, "");
    settled(&nodes);
    let b = &nodes[1];
    let port: u16 = std::fs::read_to_string(b.dir.join("hastmon.conf"))
        .unwrap()
        .split("tcp4://127.0.0.2:")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let complaint = hastmon::proto::msg::Complaint {
        auth: None,
        resource: "www".into(),
    };
    let frame = hastmon::proto::encode_frame(&complaint.to_nv()).unwrap();
    for _ in 0..6 {
        let mut stream = common::connect_from("127.0.0.9", &format!("127.0.0.2:{port}"));
        let _ = stream.write_all(&frame);
    }
    wait_for(10, "the refusal in B's log", || {
        b.log()
            .contains("Client 127.0.0.9 isn't known.")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(!b.running());
    assert_eq!(field(b, "role"), "secondary");
    assert!(!b.hooks().contains(&"complain www".to_string()));
}

#[test]
fn q22_a_secondary_measures_silence_by_its_primarys_interval() {
    // A heartbeats every second; B's own interval is 0.2 s, so by its own
    // measure (0.4 s) it would drop A between any two heartbeats.
    let members: &[(&str, &str, &str)] = &[
        (
            "a",
            "127.0.0.1",
            "remote tcp4://127.0.0.2:PORT priority 1 role_on_start primary heartbeat_interval 1 silence_limit 0",
        ),
        (
            "b",
            "127.0.0.2",
            "remote tcp4://127.0.0.1:PORT priority 2 role_on_start secondary",
        ),
    ];
    let nodes = cluster("q22", members, "");
    let [a, b] = &nodes[..] else { unreachable!() };
    wait_for(20, "B to serve A", || {
        remote_line(b, "127.0.0.1")
            .ends_with("(connected)")
            .then_some(())
    });
    let worker = field(b, "workerpid");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        field(b, "workerpid"),
        worker,
        "B's secondary worker was replaced"
    );
    assert!(
        !b.hooks().contains(&"disconnect www".to_string()),
        "{:?}",
        b.hooks()
    );
    assert!(a.running() && !b.running());
}

/// A primary cut off from every other node stops for network silence and
/// is then the secondary, not init: once the network heals the cluster
/// has its standby again, and nothing pre-empts whoever took over.
#[test]
fn a_primary_silenced_by_the_network_stops_and_becomes_the_standby() {
    let nodes = cluster("silenced", ABW, "");
    settled(&nodes);
    let [a, b, w] = &nodes[..] else {
        unreachable!()
    };
    // Nobody else answers A any more.
    kill_node(b);
    kill_node(w);
    wait_for(20, "A to stop for silence", || {
        (!a.running() && field(a, "role") == "secondary").then_some(())
    });
    let hooks = a.hooks();
    let stop = hooks.iter().rposition(|h| h == "stop www").expect("stop");
    let role = hooks
        .iter()
        .position(|h| h == "role www primary secondary")
        .expect("the automatic role hook");
    assert!(stop < role, "{hooks:?}");
    assert!(a.log().contains("Network silence limit"), "{}", a.log());
}

/// A and B each record a start while the other's copy is up.
fn exclusive(a: &common::Node, b: &common::Node) {
    let file = |n: &common::Node| n.dir.join("running-www").display().to_string();
    std::fs::write(a.dir.join("exclusive"), file(b)).unwrap();
    std::fs::write(b.dir.join("exclusive"), file(a)).unwrap();
}

fn overlapped(n: &common::Node) -> bool {
    n.hooks().iter().any(|h| h == "overlap")
}

/// `role secondary` on the primary answers once its `stop` has run, so
/// the operator's next command never meets the resource still running
/// there, however slow `stop` is.
#[test]
fn a_switchover_with_a_slow_stop_answers_after_the_stop() {
    let nodes = cluster("slowstop", ABW, "");
    settled(&nodes);
    let [a, b, _w] = &nodes[..] else {
        unreachable!()
    };
    exclusive(a, b);
    std::fs::write(a.dir.join("stop-slow"), "1.5").unwrap();
    assert_eq!(a.ctl(&["role", "secondary", "www"]).0, 0);
    // Answered: the stop has run to its end.
    assert!(!a.running(), "{:?}", a.hooks());
    assert!(a.hooks().contains(&"stop www".to_string()));
    assert_eq!(b.ctl(&["role", "primary", "www"]).0, 0);
    wait_for(20, "B to run the resource", || b.running().then_some(()));
    assert!(!overlapped(b), "{:?}", b.hooks());
}

/// Both commands at once: B's handshake is refused while A stops, and B
/// starts nothing until A has stopped.
#[test]
fn a_switchover_given_both_commands_at_once_never_overlaps() {
    let nodes = cluster("bothatonce", ABW, "");
    settled(&nodes);
    let [a, b, _w] = &nodes[..] else {
        unreachable!()
    };
    exclusive(a, b);
    std::fs::write(a.dir.join("stop-slow"), "1.5").unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(a.ctl(&["role", "secondary", "www"]).0, 0));
        s.spawn(|| assert_eq!(b.ctl(&["role", "primary", "www"]).0, 0));
    });
    wait_for(20, "B to run the resource", || b.running().then_some(()));
    assert!(!overlapped(b), "{:?}", b.hooks());
    assert!(!a.running());
    assert!(
        b.log().contains("stop the resource before starting it")
            || !b.hooks().iter().any(|h| h == "start www"),
        "{}",
        b.log()
    );
}

/// The reverse order: B made primary while A still is; the weaker B
/// yields, A is then let go, and the cluster fails over to B without two
/// copies at any time.
#[test]
fn a_switchover_in_the_reverse_order_never_overlaps() {
    let nodes = cluster("reverse", ABW, "");
    settled(&nodes);
    let [a, b, _w] = &nodes[..] else {
        unreachable!()
    };
    exclusive(a, b);
    std::fs::write(a.dir.join("stop-slow"), "1.5").unwrap();
    assert_eq!(b.ctl(&["role", "primary", "www"]).0, 0);
    assert_eq!(a.ctl(&["role", "secondary", "www"]).0, 0);
    wait_for(30, "someone to run the resource", || {
        (a.running() || b.running()).then_some(())
    });
    assert!(
        !overlapped(a) && !overlapped(b),
        "{:?} {:?}",
        a.hooks(),
        b.hooks()
    );
}

/// A `stop` that fails is the operator's business at once: the role
/// changes, and `hastmonctl role` says the resource was not stopped.
#[test]
fn a_failed_stop_makes_the_role_change_fail_loudly() {
    let nodes = cluster("stopfails", ABW, "");
    settled(&nodes);
    let a = &nodes[0];
    a.touch("stop-fails");
    let (code, _, err) = a.ctl(&["role", "secondary", "www"]);
    assert_eq!(code, 69, "{err}");
    assert!(
        err.contains("[ERROR] [www] Role changed to secondary, but the resource was not stopped: stop exit code 1."),
        "{err}"
    );
}
