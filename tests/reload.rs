//! SIGHUP reloads the configuration: what changed takes effect, what did
//! not is left alone (no hook, no new worker), and a file that does not
//! load changes nothing.

mod common;

use std::time::Duration;

use common::cluster::{ABW, cluster, kill_node, settled};
use common::{Node, wait_for};
use nix::sys::signal::Signal;

/// Two standalone primaries, `web` and `db`; `db` gets `db_extra` and
/// the heartbeat interval `db_hb`.
fn conf(db_hb: &str, db_extra: &str) -> String {
    format!(
        "resource web {{\n exec {{hook}}\n heartbeat_interval 0.2\n on alpha {{ remote none role_on_start primary }}\n}}\n\
         resource db {{\n exec {{hook}}\n heartbeat_interval {db_hb}\n {db_extra}\n on alpha {{ remote none role_on_start primary }}\n}}\n"
    )
}

fn worker(n: &Node, res: &str) -> i32 {
    wait_for(10, "a worker", || {
        n.status_field(res, "workerpid")?.parse().ok()
    })
}

fn hooks_of(n: &Node, res: &str) -> Vec<String> {
    n.hooks()
        .into_iter()
        .filter(|h| h.split_whitespace().nth(1) == Some(res))
        .filter(|h| !h.starts_with("status "))
        .collect()
}

fn started(tag: &str) -> Node {
    let mut n = Node::new(tag, "alpha", &conf("0.2", ""));
    n.start();
    wait_for(10, "both to start", || {
        (hooks_of(&n, "web").contains(&"start web".into())
            && hooks_of(&n, "db").contains(&"start db".into()))
        .then_some(())
    });
    n
}

fn reload(n: &Node, conf: &str) {
    let before = n.log().matches("Reloading configuration").count();
    n.rewrite(conf);
    n.signal(Signal::SIGHUP);
    wait_for(10, "the reload", || {
        let log = n.log();
        (log.matches("Reloading configuration").count() > before
            && (log.matches("Configuration reloaded successfully.").count() > before
                || log.matches("Configuration not reloaded").count() > before))
            .then_some(())
    });
}

#[test]
fn a_file_that_does_not_load_changes_nothing() {
    let n = started("reload-bad");
    let (web, db) = (worker(&n, "web"), worker(&n, "db"));
    reload(&n, "resource web {\n exec relative/path\n}\n");
    let log = n.log();
    assert!(log.contains("Configuration not reloaded: "), "{log}");
    assert!(
        log.contains("hastmon.conf:4:7: exec path 'relative/path' must be absolute"),
        "{log}"
    );
    // hastmonctl reads the file too, so put the good one back to ask.
    n.rewrite(&conf("0.2", ""));
    assert_eq!((worker(&n, "web"), worker(&n, "db")), (web, db));
    assert_eq!(n.status_field("db", "role").unwrap(), "primary");
}

#[test]
fn main_process_settings_change_in_place_and_others_are_untouched() {
    let n = started("reload-main");
    let (web, db) = (worker(&n, "web"), worker(&n, "db"));
    let hooks = n.hooks().len();
    reload(&n, &conf("0.2", "hook_timeout 5\n priority 7"));
    let log = n.log();
    assert!(
        log.contains("Resource db: priority 100 -> 7, hook_timeout 30 -> 5."),
        "{log}"
    );
    assert!(!log.contains("Resource web:"), "{log}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((worker(&n, "web"), worker(&n, "db")), (web, db));
    // Only status checks ran since.
    assert!(
        n.hooks()[hooks..].iter().all(|h| h.starts_with("status ")),
        "{:?}",
        &n.hooks()[hooks..]
    );
}

#[test]
fn worker_settings_give_a_new_worker_and_leave_the_resource_running() {
    let n = started("reload-worker");
    let (web, db) = (worker(&n, "web"), worker(&n, "db"));
    reload(&n, &conf("0.5", ""));
    assert!(
        n.log()
            .contains("Resource db: heartbeat_interval 0.2 -> 0.5"),
        "{}",
        n.log()
    );
    let new_db = wait_for(10, "a new db worker", || {
        let pid = worker(&n, "db");
        (pid != db).then_some(pid)
    });
    assert_ne!(new_db, db);
    assert_eq!(worker(&n, "web"), web);
    std::thread::sleep(Duration::from_millis(500));
    assert!(n.runs("db"));
    let db_hooks = hooks_of(&n, "db");
    assert!(!db_hooks.contains(&"stop db".into()), "{db_hooks:?}");
    assert_eq!(
        db_hooks.iter().filter(|h| h.starts_with("role ")).count(),
        1,
        "{db_hooks:?}"
    );
    assert_eq!(n.status_field("db", "heartbeat").unwrap(), "1 sec");
}

#[test]
fn a_removed_resource_stops_and_a_new_one_starts() {
    let n = started("reload-set");
    let web = worker(&n, "web");
    reload(
        &n,
        "resource web {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n\
         resource mail {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    let log = n.log();
    assert!(log.contains("Resource db removed."), "{log}");
    assert!(log.contains("Resource mail added."), "{log}");
    wait_for(10, "db to stop and mail to start", || {
        let (db, mail) = (hooks_of(&n, "db"), hooks_of(&n, "mail"));
        (db.contains(&"stop db".into()) && mail.contains(&"start mail".into())).then_some(())
    });
    assert_eq!(n.ctl(&["status", "db"]).0, 1);
    assert_eq!(worker(&n, "web"), web);
    let all = n.status("all");
    assert!(
        all.starts_with("web:\n") && all.contains("\nmail:\n") && !all.contains("db:"),
        "{all}"
    );
    assert_eq!(hooks_of(&n, "mail")[0], "role mail init primary");
}

#[test]
fn a_new_control_socket_replaces_the_old_one() {
    let n = started("reload-ctl");
    let new = n.dir.join("ctl2");
    let text = format!("control uds://{}\n{}", new.display(), conf("0.2", ""));
    reload(&n, &text);
    wait_for(10, "the new socket", || new.exists().then_some(()));
    assert!(!n.dir.join("ctl").exists());
    assert!(
        n.log().contains("Control socket changed from"),
        "{}",
        n.log()
    );
    // hastmonctl reads the same file, so it finds the new socket, and
    // the resource is healthy once its start is confirmed.
    wait_for(10, "a healthy status over the new socket", || {
        (n.ctl(&["status", "web"]).0 == 0).then_some(())
    });
}

#[test]
fn a_reload_during_a_failover_does_not_disturb_it() {
    let nodes = cluster("reload-failover", ABW, "");
    settled(&nodes);
    let b = &nodes[1];
    let text = std::fs::read_to_string(b.dir.join("hastmon.conf"))
        .unwrap()
        .replace("exec ", "hook_timeout 20\n exec ");
    kill_node(&nodes[0]);
    std::fs::write(b.dir.join("hastmon.conf"), text).unwrap();
    b.signal(Signal::SIGHUP);
    wait_for(30, "B to take over", || b.running().then_some(()));
    assert!(
        b.log().contains("Resource www: hook_timeout 30 -> 20."),
        "{}",
        b.log()
    );
    assert_eq!(b.status_field("www", "role").unwrap(), "primary");
}

#[test]
fn a_new_exec_path_takes_the_next_hook() {
    let n = started("reload-exec");
    let other = n.dir.join("other.sh");
    std::fs::write(
        &other,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}/other.log\nexec {}/hook.sh \"$@\"\n",
            n.dir.display(),
            n.dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let web = worker(&n, "web");
    let text = conf("0.2", "");
    let at = text.find("resource db").unwrap();
    let moved = format!(
        "{}{}",
        &text[..at],
        text[at..].replacen("exec {hook}", &format!("exec {}", other.display()), 1)
    );
    reload(&n, &moved);
    wait_for(10, "a db hook through the new path", || {
        common::read_lines(&n.dir.join("other.log"))
            .iter()
            .any(|l| l == "status db")
            .then_some(())
    });
    assert!(n.log().contains("Resource db: exec "), "{}", n.log());
    assert_eq!(worker(&n, "web"), web);
    assert!(
        !common::read_lines(&n.dir.join("other.log"))
            .iter()
            .any(|l| l.ends_with(" web"))
    );
}

#[test]
fn new_friends_and_remotes_and_keys_take_effect() {
    let port = common::free_port();
    let text = |extra: &str| {
        format!(
            "listen tcp4://127.0.0.2:{port}\nresource www {{\n exec {{hook}}\n heartbeat_interval 0.2\n {extra}\n on beta {{ remote tcp4://127.0.0.1:{port} role_on_start secondary }}\n}}\n"
        )
    };
    let mut b = Node::new("reload-friends", "beta", &text(""));
    b.start();
    let complain = || {
        let c = hastmon::proto::msg::Complaint {
            auth: None,
            resource: "www".into(),
        };
        let frame = hastmon::proto::encode_frame(&c.to_nv()).unwrap();
        let mut s = common::connect_from("127.0.0.3", &format!("127.0.0.2:{port}"));
        std::io::Write::write_all(&mut s, &frame).unwrap();
    };
    complain();
    wait_for(10, "the stranger's refusal", || {
        b.log()
            .contains("Client 127.0.0.3 isn't known.")
            .then_some(())
    });
    reload(&b, &text("friends tcp4://127.0.0.3"));
    assert!(
        b.log()
            .contains("Resource www: friends (none) -> tcp4://127.0.0.3."),
        "{}",
        b.log()
    );
    complain();
    wait_for(10, "the friend's complaint", || {
        b.hooks()
            .contains(&"complain www".to_string())
            .then_some(())
    });
    reload(
        &b,
        &text("friends tcp4://127.0.0.3\n key { algorithm SHA256 secret s }"),
    );
    assert!(
        b.log()
            .contains("Resource www: key changed; its worker restarts."),
        "{}",
        b.log()
    );
    let hooks = b.hooks().len();
    complain();
    wait_for(10, "the unsigned complaint's refusal", || {
        b.log()
            .contains("Authentication of 127.0.0.3:")
            .then_some(())
    });
    assert_eq!(b.hooks().len(), hooks);
}

#[test]
fn a_reload_is_named_as_the_cause_of_the_role_changes_it_makes() {
    let n = started("reload-cause");
    reload(
        &n,
        "resource web {\n exec {hook}\n heartbeat_interval 0.2\n on alpha { remote none role_on_start primary }\n}\n",
    );
    assert!(
        n.log()
            .contains("[db] Role changed from primary to init by the reloaded configuration."),
        "{}",
        n.log()
    );
}
