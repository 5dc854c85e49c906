//! Clusters of real daemons on loopback: nodes on 127.0.0.x sharing one
//! port, short intervals, one resource `www`.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{Node, free_port, wait_for};

const HB: &str = "heartbeat_interval 0.2\n timeout 1\n complaint_count 3\n complaint_interval 10";

/// One node of a cluster whose members are `(name, ip, on-section body)`.
pub fn node(tag: &str, port: u16, me: &str, members: &[(&str, &str, &str)], extra: &str) -> Node {
    let mut conf = String::new();
    for (name, ip, _) in members {
        conf += &format!("on {name} {{ listen tcp4://{ip}:{port} }}\n");
    }
    conf += &format!("resource www {{\n exec {{hook}}\n {HB}\n {extra}\n");
    for (name, _, body) in members {
        conf += &format!(
            " on {name} {{ {} }}\n",
            body.replace("PORT", &port.to_string())
        );
    }
    conf += "}\n";
    Node::new(tag, me, &conf)
}

pub fn cluster(tag: &str, members: &[(&str, &str, &str)], extra: &str) -> Vec<Node> {
    cluster_with(tag, members, |_| extra.to_string())
}

/// A cluster whose nodes' files differ in what `extra(name)` adds to the
/// resource.
pub fn cluster_with(
    tag: &str,
    members: &[(&str, &str, &str)],
    extra: impl Fn(&str) -> String,
) -> Vec<Node> {
    let port = free_port();
    let mut nodes: Vec<Node> = members
        .iter()
        .map(|(name, _, _)| node(tag, port, name, members, &extra(name)))
        .collect();
    for n in &mut nodes {
        n.start();
    }
    nodes
}

pub const ABW: &[(&str, &str, &str)] = &[
    (
        "a",
        "127.0.0.1",
        "remote tcp4://127.0.0.2:PORT priority 1 role_on_start primary friends tcp4://127.0.0.3",
    ),
    (
        "b",
        "127.0.0.2",
        "remote tcp4://127.0.0.1:PORT priority 2 role_on_start secondary friends tcp4://127.0.0.3",
    ),
    (
        "w",
        "127.0.0.3",
        "remote tcp4://127.0.0.1:PORT tcp4://127.0.0.2:PORT role_on_start watchdog",
    ),
];

pub fn field(n: &Node, key: &str) -> String {
    n.status_field("www", key).unwrap_or_default()
}

/// The annotation of the remote line that starts with `addr`.
pub fn remote_line(n: &Node, ip: &str) -> String {
    n.status("www")
        .lines()
        .find(|l| l.starts_with(&format!("    tcp4://{ip}:")))
        .unwrap_or_default()
        .to_string()
}

pub fn settled(nodes: &[Node]) {
    let [a, b, w] = nodes else {
        panic!("three nodes")
    };
    wait_for(20, "the cluster to settle", || {
        (field(a, "state") == "run"
            && field(b, "state") == "stopped"
            && remote_line(b, "127.0.0.1").ends_with("(connected)")
            && remote_line(w, "127.0.0.1").ends_with("(primary/run)")
            && remote_line(w, "127.0.0.2").ends_with("(secondary/stopped)"))
        .then_some(())
    });
    assert!(a.running() && !b.running() && !w.running());
}

pub fn kill_node(n: &Node) {
    let worker: Option<i32> = n
        .status_field("www", "workerpid")
        .and_then(|p| p.parse().ok());
    kill(Pid::from_raw(n.pid()), Signal::SIGKILL).unwrap();
    if let Some(w) = worker {
        let _ = kill(Pid::from_raw(w), Signal::SIGKILL);
    }
}
