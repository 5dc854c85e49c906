//! A node with many resources: the local control socket answers for all
//! of them, however long the reply (the network keeps its tight limit).

mod common;

use common::{Node, free_port, wait_for};

#[test]
fn status_all_answers_for_a_thousand_resources() {
    let port = free_port();
    let mut conf = format!("listen tcp4://127.0.0.1:{port}\n");
    for i in 0..1000 {
        conf += &format!(
            "resource a-resource-with-a-rather-long-name-{i:04} {{\n exec {{hook}}\n on n {{ remote none }}\n}}\n"
        );
    }
    let mut n = Node::new("scale", "n", &conf);
    n.start();
    let (code, out, err) = wait_for(20, "an answer", || {
        let r = n.ctl(&["status", "all"]);
        (r.0 == 0).then_some(r)
    });
    assert_eq!(code, 0, "{err}");
    // The reply is larger than anything a peer may send.
    let request = hastmon::proto::msg::ControlRequest {
        cmd: hastmon::proto::msg::ControlCmd::Status,
        role: None,
        resources: vec!["all".into()],
        auth: None,
        extended: false,
    };
    let control = hastmon::config::address::Address::parse(
        &format!("uds://{}", n.dir.join("ctl").display()),
        false,
    )
    .unwrap();
    let reply = hastmon::ctl::client::exchange(&control, &request.to_nv()).unwrap();
    assert!(
        reply.encoded_len() > hastmon::proto::MAX_PAYLOAD,
        "{} bytes",
        reply.encoded_len()
    );
    let names = out
        .lines()
        .filter(|l| l.starts_with("a-resource-with-a-rather-long-name-"))
        .count();
    assert_eq!(names, 1000, "{err}");
    // JSON too, with the extra facts of every resource.
    let (code, json, _) = n.ctl(&["status", "-j", "all"]);
    assert_eq!(code, 0);
    assert_eq!(json.matches("\"last_role_change\"").count(), 1000);
}
