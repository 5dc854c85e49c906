//! `hastmonctl status -j` against real daemons: in every role the JSON
//! tells what the text tells (rendered back into the text, it is the
//! text), plus the facts the text lacks; and the exit status says whether
//! each resource is healthy in its role.

mod common;

use common::cluster::{ABW, cluster, field, kill_node, settled};
use common::{Node, wait_for};
use serde_json::Value;

/// `status -j` of `names`: its exit code and its one JSON document.
fn json(n: &Node, names: &[&str]) -> (i32, Value) {
    let mut args = vec!["status", "-j"];
    args.extend(names);
    let (code, out, err) = n.ctl(&args);
    assert_eq!(out.lines().count(), 1, "{out}{err}");
    (code, serde_json::from_str(&out).unwrap())
}

/// The status text that the JSON of one resource describes, by the rules
/// of the text (hastmonctl(8), "Status output"): intervals in whole seconds, rounded
/// up; remote annotations by role.
fn as_text(r: &Value) -> String {
    let mut t = format!(
        "{}:\n  role: {}\n",
        r["name"].as_str().unwrap(),
        str(&r["role"])
    );
    if let Some(pid) = r["worker_pid"].as_i64() {
        t += &format!("  workerpid: {pid}\n");
    }
    t += &format!("  exec: {}\n  remote:", str(&r["exec"]));
    for remote in r["remotes"].as_array().unwrap() {
        t += &format!("\n    {}", str(&remote["address"]));
        match str(&r["role"]) {
            "primary" | "secondary" if remote["connection"].is_string() => {
                t += &format!(" ({})", str(&remote["connection"]));
            }
            "watchdog" if remote["role"].is_string() || remote["state"].is_string() => {
                let or_unknown = |v: &Value| v.as_str().unwrap_or("unknown").to_string();
                t += &format!(
                    " ({}/{})",
                    or_unknown(&remote["role"]),
                    or_unknown(&remote["state"])
                );
            }
            _ => {}
        }
    }
    let c = &r["complaints"];
    let whole = |v: &Value| v.as_f64().unwrap().ceil() as u64;
    t += &format!(
        "\n  state: {}\n  attempts: {} from {}\n  complaints: {} for last {} sec (threshold {})\n  heartbeat: {} sec\n\n",
        str(&r["state"]),
        r["attempts"],
        r["attempts_max"],
        c["count"],
        whole(&c["interval"]),
        c["threshold"],
        whole(&r["heartbeat_interval"]),
    );
    t
}

fn str(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// The JSON of `www` on `n`, once it and the text taken right after it
/// agree: both read the same moment unless something changed between
/// the two requests, which a retry gets past.
fn agreeing(n: &Node) -> Value {
    wait_for(20, &format!("JSON and text of {} to agree", n.name), || {
        let (_, v) = json(n, &["www"]);
        let r = v["resources"][0].clone();
        (as_text(&r) == n.status("www")).then_some(r)
    })
}

fn seconds(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn hook<'a>(r: &'a Value, event: &str) -> &'a Value {
    r["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"] == event)
        .unwrap_or_else(|| panic!("no {event} hook in {r}"))
}

#[test]
fn json_tells_what_the_text_tells_in_every_role_plus_hooks_contacts_and_role_changes() {
    let nodes = cluster("json", ABW, "");
    settled(&nodes);
    let [a, b, w] = &nodes[..] else {
        unreachable!()
    };

    let pa = agreeing(a);
    assert_eq!(pa["role"], "primary");
    assert_eq!(pa["extended"], true);
    assert_eq!(pa["heartbeat_interval"], 0.2, "the fraction, not rounded");
    let start = hook(&pa, "start");
    assert_eq!(
        (&start["result"], &start["code"]),
        (&"exited".into(), &0.into())
    );
    assert!(seconds(&start["duration"]) >= 0.0 && seconds(&start["ago"]) >= 0.0);
    assert_eq!(hook(&pa, "role")["code"], 0);
    let change = &pa["last_role_change"];
    assert_eq!(change["from"], "init");
    assert_eq!(change["cause"], "Daemon started (role_on_start)");
    assert!(seconds(&change["ago"]) >= seconds(&start["ago"]));
    assert_eq!(pa["remotes"][0]["connection"], "connected");
    assert!(seconds(&pa["remotes"][0]["last_seen"]) < 10.0, "{pa}");

    let sb = agreeing(b);
    assert_eq!(sb["role"], "secondary");
    assert_eq!(sb["remotes"][0]["connection"], "connected");
    assert!(seconds(&sb["remotes"][0]["last_seen"]) < 10.0, "{sb}");
    assert_eq!(hook(&sb, "connect")["code"], 0);

    let ww = agreeing(w);
    assert_eq!(ww["role"], "watchdog");
    assert_eq!(ww["remotes"][0]["role"], "primary");
    assert_eq!(ww["remotes"][1]["state"], "stopped");
    for remote in ww["remotes"].as_array().unwrap() {
        assert!(seconds(&remote["last_seen"]) < 10.0, "{ww}");
    }

    // Settled, every role is healthy: exit 0, as in 0.3.4. An unknown
    // name still exits 1 and reads as an error entry.
    for n in [a, b, w] {
        assert_eq!(n.ctl(&["status", "www"]).0, 0, "{}", n.name);
        assert_eq!(json(n, &["www"]).0, 0, "{}", n.name);
    }
    let (code, v) = json(a, &["www", "nosuch"]);
    assert_eq!(code, 1);
    assert_eq!(
        v["resources"][1],
        serde_json::json!({"name": "nosuch", "error": 1})
    );
    assert_eq!(v["resources"][0]["healthy"], true);

    kill_node(a);
    wait_for(30, "B to run the resource", || {
        (b.running() && field(b, "state") == "run").then_some(())
    });
    let pb = wait_for(20, "B's JSON as primary", || {
        let r = agreeing(b);
        (r["role"] == "primary").then_some(r)
    });
    let change = &pb["last_role_change"];
    assert_eq!(change["from"], "secondary");
    let cause = str(&change["cause"]);
    assert!(cause.starts_with("Complaint limit reached ("), "{cause}");
    assert!(cause.ends_with("no primary connected"), "{cause}");
    assert_eq!(hook(&pb, "start")["code"], 0);
    assert_eq!(pb["remotes"][0]["connection"], "disconnected");

    // The watchdog complained; its complaints are listed by age, newest
    // first, each within complaint_interval (10 s).
    let ww = agreeing(w);
    let ages: Vec<f64> = ww["complaints"]["ages"]
        .as_array()
        .unwrap()
        .iter()
        .map(seconds)
        .collect();
    assert_eq!(
        ages.len() as u64,
        ww["complaints"]["count"].as_u64().unwrap()
    );
    assert!(!ages.is_empty(), "{ww}");
    assert!(ages.windows(2).all(|p| p[0] <= p[1]), "{ages:?}");
    assert!(ages.iter().all(|&a| (0.0..=10.0).contains(&a)), "{ages:?}");
    assert_eq!(ww["complaints"]["interval"], 10.0);
    assert_eq!(hook(&ww, "complain")["code"], 0);
}

#[test]
fn an_init_resource_is_healthy_and_its_json_is_its_text() {
    let mut n = Node::new(
        "json-init",
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.5\n on alpha { remote tcp4://127.0.0.2 }\n}\n",
    );
    n.start();
    let r = agreeing(&n);
    assert_eq!(r["role"], "init");
    assert_eq!(r["healthy"], true);
    assert_eq!(r["worker_pid"], Value::Null);
    assert_eq!(r["last_role_change"], Value::Null);
    assert_eq!(r["hooks"], serde_json::json!([]));
    assert_eq!(r["remotes"][0]["last_seen"], Value::Null);
    assert_eq!(r["heartbeat_interval"], 0.5);
    assert_eq!(n.ctl(&["status"]).0, 0);
}

#[test]
fn a_resource_not_healthy_in_its_role_exits_2() {
    // A secondary that never promotes (complaint_count 1000) and a
    // watchdog that complains to it for ever: no primary anywhere.
    let members: &[(&str, &str, &str)] = &[
        (
            "b",
            "127.0.0.2",
            "remote tcp4://127.0.0.1:PORT priority 2 role_on_start secondary complaint_count 1000 friends tcp4://127.0.0.3",
        ),
        (
            "w",
            "127.0.0.3",
            "remote tcp4://127.0.0.1:PORT tcp4://127.0.0.2:PORT role_on_start watchdog",
        ),
    ];
    let nodes = cluster("unhealthy", members, "");
    let [b, w] = &nodes[..] else { unreachable!() };
    let complaining = wait_for(20, "the watchdog to complain", || {
        let (code, v) = json(w, &["www"]);
        let r = v["resources"][0].clone();
        let sent = r["complaints"]["count"].as_u64()?;
        (r["state"] == "unknown" && r["worker_pid"].is_i64() && sent > 0).then_some((code, r))
    });
    assert_eq!(complaining.0, 2);
    assert_eq!(complaining.1["healthy"], false);
    assert_eq!(w.ctl(&["status"]).0, 2);

    // The secondary without a primary: counted complaints, by age.
    let (code, v) = json(b, &["www"]);
    let r = &v["resources"][0];
    assert_eq!(
        (code, &r["role"], &r["healthy"]),
        (2, &"secondary".into(), &false.into())
    );
    assert_eq!(b.ctl(&["status", "www"]).0, 2);
    let sb = wait_for(20, "complaints at the secondary", || {
        let r = agreeing(b);
        (r["complaints"]["count"].as_u64()? >= 2).then_some(r)
    });
    let ages = sb["complaints"]["ages"].as_array().unwrap();
    assert_eq!(
        ages.len() as u64,
        sb["complaints"]["count"].as_u64().unwrap()
    );
    assert!(
        ages.iter().all(|a| (0.0..=10.0).contains(&seconds(a))),
        "{sb}"
    );

    // A primary whose start keeps failing never reaches run.
    let mut p = Node::new(
        "unhealthy-primary",
        "alpha",
        "resource www {\n exec {hook}\n heartbeat_interval 0.2\n attempts 1000\n on alpha { remote none role_on_start primary }\n}\n",
    );
    p.touch("start-fails");
    p.start();
    wait_for(20, "a failed start", || {
        p.hooks()
            .iter()
            .filter(|h| *h == "start www")
            .nth(1)
            .map(drop)
    });
    let (code, v) = json(&p, &["www"]);
    let r = &v["resources"][0];
    assert_eq!(
        (code, &r["role"], &r["healthy"]),
        (2, &"primary".into(), &false.into())
    );
    assert_eq!(p.ctl(&["status", "www"]).0, 2);
    assert_eq!(hook(r, "start")["code"], 1);
}
