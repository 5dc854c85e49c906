//! Every sample configuration, in both syntaxes, resolves to the same
//! settings for every node it names; every dump parses back unchanged.

use std::path::{Path, PathBuf};

use hastmon::config::{self, Config, NodeNames, Syntax, dump};

fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "samples missing");
    v
}

/// Every name that follows `on` in the file.
fn nodes(text: &str) -> Vec<String> {
    let words: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(str::split_whitespace)
        .collect();
    let mut out: Vec<String> = words
        .windows(2)
        .filter(|w| w[0] == "on")
        .map(|w| w[1].to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn load(path: &Path, node: &str) -> Config {
    config::load(path, &NodeNames::exact(node)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn both_syntaxes_resolve_to_identical_settings() {
    for conf in samples() {
        let toml = conf.with_extension("toml");
        let names = nodes(&std::fs::read_to_string(&conf).unwrap());
        assert!(!names.is_empty());
        for node in &names {
            let a = load(&conf, node);
            let b = load(&toml, node);
            assert_eq!(
                a,
                b,
                "{} vs {} for node {node}",
                conf.display(),
                toml.display()
            );
        }
    }
}

#[test]
fn dumps_parse_back_to_the_same_settings() {
    for conf in samples() {
        for node in nodes(&std::fs::read_to_string(&conf).unwrap()) {
            let mut cfg = load(&conf, &node);
            let all: Vec<_> = cfg.resources.iter().collect();
            let conf_text = dump::conf(&cfg, &all);
            let toml_text = dump::toml(&cfg, &all);
            let json_text = dump::json(&cfg, &all);
            let names = NodeNames::exact(&node);
            // The dump writes only this node's resources.
            cfg.skipped.clear();
            let again = config::parse_bytes(conf_text.as_bytes(), Syntax::Conf, &names)
                .unwrap_or_else(|e| panic!("{conf_text}\n{e:?}"));
            assert_eq!(again, cfg, "conf dump of {} for {node}", conf.display());
            let again = config::parse_bytes(toml_text.as_bytes(), Syntax::Toml, &names)
                .unwrap_or_else(|e| panic!("{toml_text}\n{e:?}"));
            assert_eq!(again, cfg, "toml dump of {} for {node}", conf.display());
            let json: serde_json::Value = serde_json::from_str(&json_text).unwrap();
            assert_eq!(json["node"], node.as_str());
            assert_eq!(
                json["resources"].as_array().unwrap().len(),
                cfg.resources.len()
            );
            for (j, r) in json["resources"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&cfg.resources)
            {
                assert_eq!(j["name"], r.name.as_str());
                assert_eq!(j["exec"], r.exec.as_str());
                assert_eq!(j["priority"], r.priority);
                assert_eq!(
                    j["heartbeat_interval"].as_f64().unwrap(),
                    r.heartbeat_interval.as_secs_f64()
                );
            }
        }
    }
}

#[test]
fn spec_example_resolves_as_the_man_page_says() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/three-node.conf");
    let a = load(&path, "nodeA");
    assert_eq!(a.control.as_str(), "uds:///var/run/hastmonctl.A");
    assert_eq!(a.listen.as_str(), "tcp4://0.0.0.0:8458");
    let r = &a.resources[0];
    assert_eq!(r.priority, 1);
    assert_eq!(r.role_on_start.as_str(), "primary");
    assert_eq!(
        r.remote.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        ["tcp4://10.77.0.2"]
    );
    // Resource-level friends belong to the resource, not to every resource (Q25).
    assert!(a.friends.is_empty());
    assert_eq!(r.friends[0].as_str(), "tcp4://10.77.0.3");
    // The code's defaults, not the old man page's (Q47).
    assert_eq!((r.attempts, r.complaint_count), (5, 3));
    assert_eq!(r.heartbeat_interval.as_secs(), 10);
    assert_eq!(r.timeout.as_secs(), 5);
    assert_eq!(r.complaint_interval.as_secs(), 60);

    let b = load(&path, "nodeB");
    assert_eq!(b.control.as_str(), "uds:///var/run/hastmonctl");
    assert_eq!(b.resources[0].priority, 2);
    let w = load(&path, "nodeW");
    assert_eq!(w.resources[0].remote.len(), 2);
    assert_eq!(w.resources[0].priority, 100);
}

#[test]
fn inheritance_does_not_depend_on_statement_order() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/tuned.conf");
    let left = load(&path, "left");
    let vip = left.resource("vip").unwrap();
    // Global exec is inherited (Q42); global `on` values apply (Q41).
    assert_eq!(vip.exec, "/usr/local/libexec/hastmon-hook");
    assert_eq!(vip.attempts, 2);
    assert_eq!(vip.complaint_count, 4);
    assert_eq!(vip.heartbeat_interval.as_millis(), 200);
    assert_eq!(left.control.as_str(), "/var/run/hastmonctl.left");
    let right = load(&path, "right");
    let vip = right.resource("vip").unwrap();
    assert_eq!(vip.priority, 5);
    assert_eq!(vip.heartbeat_interval.as_millis(), 250);
    assert_eq!(
        right.resource("nfs").unwrap().exec,
        "/usr/local/etc/hastmon/nfs.sh"
    );

    let text =
        "resource r { on me { heartbeat_interval 5 remote none } heartbeat_interval 20 exec /x }";
    let cfg = config::parse_bytes(text.as_bytes(), Syntax::Conf, &NodeNames::exact("me")).unwrap();
    assert_eq!(
        cfg.resources[0].heartbeat_interval.as_secs(),
        5,
        "node beats resource (Q43)"
    );
}

#[test]
fn a_node_may_skip_resources_it_has_nothing_to_do_with() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/tuned.conf");
    let witness = load(&path, "witness");
    assert_eq!(witness.resources.len(), 1);
    assert_eq!(witness.skipped, ["nfs"]);
}

#[test]
fn resource_key_inherits_the_algorithm() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/keyed.conf");
    let a = load(&path, "nodeA");
    let www = a.resource("www").unwrap().key.clone().unwrap();
    assert_eq!(
        (www.algorithm.as_str(), www.secret.as_str()),
        ("SHA256", "s3cr3t")
    );
    let db = a.resource("db").unwrap().key.clone().unwrap();
    assert_eq!(
        (db.algorithm.as_str(), db.secret.as_str()),
        ("SHA256", "another secret")
    );
    assert_eq!(a.resource("db").unwrap().attempts, 7);
    assert_eq!(load(&path, "nodeB").resource("db").unwrap().attempts, 3);
}
