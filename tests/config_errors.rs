//! Every kind of rejected configuration: one line naming line and column
//! (1-based) and what is wrong.

use hastmon::config::{self, NodeNames, Syntax};

const OK_RES: &str = "resource r { exec /x on me { remote none } }";

fn reject(syntax: Syntax, text: &str) -> (u32, u32, String) {
    match config::parse_bytes(text.as_bytes(), syntax, &NodeNames::exact("me")) {
        Ok(cfg) => panic!("accepted {text:?} as {cfg:?}"),
        Err(e) => {
            assert!(!e.msg.contains('\n'), "multi-line message {:?}", e.msg);
            (e.pos.line, e.pos.col, e.msg)
        }
    }
}

/// (file text, line, column, words the message must contain)
const CONF_CASES: &[(&str, u32, u32, &str)] = &[
    ("bogus 5\n", 1, 1, "unknown keyword 'bogus'"),
    (
        "resource r {\n exec /x\n listen 1.2.3.4\n on me { remote none }\n}\n",
        3,
        2,
        "'listen' is not allowed in a resource section",
    ),
    (
        "remote 1.2.3.4\n",
        1,
        1,
        "'remote' is not allowed at the top level",
    ),
    (
        "resource r { exec /x remote 1.2.3.4 on me { remote none } }",
        1,
        22,
        "belongs in an 'on' section",
    ),
    (
        "on a { resource r { } }",
        1,
        8,
        "'resource' is not allowed in a top-level 'on' section",
    ),
    (
        "resource r { on a { on b { } } }",
        1,
        21,
        "'on' sections do not nest",
    ),
    (
        "resource r { exec /x on me { key { } remote none } }",
        1,
        30,
        "'key' is not allowed",
    ),
    ("algorithm MD5\n", 1, 1, "belongs in a 'key { }' section"),
    ("port 8458\n", 1, 1, "give the port in the address"),
    (
        "timeout 5\ntimeout 6\n",
        2,
        1,
        "duplicate 'timeout' (first set at line 1)",
    ),
    (
        "key { algorithm MD5 secret a }\nkey { }\n",
        2,
        1,
        "duplicate 'key' section",
    ),
    (
        "resource r { exec /x on me { remote none } }\nresource r { }\n",
        2,
        10,
        "resource 'r' is defined twice (first at line 1)",
    ),
    (
        "resource r { on me { remote none } on me { } }",
        1,
        39,
        "duplicate 'on me' section",
    ),
    (
        "resource r { on me { remote none } }",
        1,
        10,
        "resource 'r' has no exec",
    ),
    (
        "resource r { exec /x on me { priority 1 } }",
        1,
        10,
        "resource 'r' has no remote for this node",
    ),
    (
        "resource r { exec /x on me { remote } }",
        1,
        30,
        "'remote' needs at least one address",
    ),
    (
        "resource r { exec /x on me { remote a:99999 } }",
        1,
        37,
        "port 99999 is out of range",
    ),
    (
        "resource r { exec /x on me { remote uds:///tmp/s } }",
        1,
        37,
        "is not a TCP address",
    ),
    (
        "resource r { exec /x on me { remote a a } }",
        1,
        39,
        "listed twice",
    ),
    (
        "listen /var/run/sock\n",
        1,
        8,
        "listen address must be a TCP address",
    ),
    (
        "control tcp4://127.0.0.1:1\n",
        1,
        9,
        "control address must be a UNIX socket",
    ),
    ("control ftp://x\n", 1, 9, "unknown address scheme 'ftp://'"),
    ("timeout five\n", 1, 9, "needs a number of seconds"),
    ("timeout 0\n", 1, 9, "out of range"),
    (
        "heartbeat_interval 0.0001\n",
        1,
        20,
        "needs a number of seconds",
    ),
    ("attempts 0\n", 1, 10, "out of range (1 to 1000000)"),
    ("attempts 99999999999999999999\n", 1, 10, "out of range"),
    ("complaint_count -1\n", 1, 17, "needs a whole number"),
    (
        "resource r { exec /x on me { remote none priority 2147483648 } }",
        1,
        51,
        "out of range (0 to 2147483647)",
    ),
    ("role_on_start master\n", 1, 15, "unknown role 'master'"),
    (
        "resource r { exec /x\n on me { remote none }\n",
        1,
        1,
        "'resource' section is not closed",
    ),
    ("}\n", 1, 1, "unexpected '}'"),
    (
        "resource r\n exec /x\n",
        2,
        2,
        "expected '{' after 'resource'",
    ),
    ("resource { }\n", 1, 10, "needs a name"),
    ("resource all { }\n", 1, 10, "may not be called 'all'"),
    ("timeout 5;\n", 1, 10, "unexpected character ';'"),
    ("exec \"/unterminated\n", 1, 6, "unterminated quoted string"),
    ("exec relative/path\n", 1, 6, "must be absolute"),
    (
        "key { algorithm sha256 secret x }\n",
        1,
        17,
        "unknown algorithm 'sha256'",
    ),
    (
        "key { algorithm MD5 }\nresource r { exec /x on me { remote none } }\n",
        1,
        1,
        "no secret",
    ),
    (
        "key { secret x }\nresource r { exec /x on me { remote none } }\n",
        1,
        1,
        "no algorithm",
    ),
    ("key { timeout 5 }\n", 1, 7, "not allowed in a key section"),
    ("timeout 5 6\n", 1, 11, "takes one value"),
    (
        "resource r { exec /x on other { remote none } }\n",
        1,
        10,
        "No resource r configuration for this node (acceptable node names: me).",
    ),
    // A top-level `on` section (control, listen) alone is no part in a
    // resource.
    (
        "on me { control uds:///tmp/c }\nresource r { exec /x on other { remote none } }\n",
        2,
        10,
        "No resource r configuration for this node (acceptable node names: me).",
    ),
    ("\"quoted\" 5\n", 1, 1, "expected a keyword"),
];

#[test]
fn conf_rejections_point_at_the_right_place() {
    for &(text, line, col, words) in CONF_CASES {
        let (l, c, msg) = reject(Syntax::Conf, text);
        assert!(
            msg.contains(words),
            "{text:?}: message {msg:?} lacks {words:?}"
        );
        assert_eq!((l, c), (line, col), "{text:?}: {msg}");
    }
}

#[test]
fn the_ambiguity_check_sees_both_matching_node_names() {
    // `me.example.com` matches only when the host is known by that name.
    let names = NodeNames::from_host("me.example.com", None);
    let text = "on me.example.com { attempts 2 }\non me { attempts 3 }\n".to_string() + OK_RES;
    let e = config::parse_bytes(text.as_bytes(), Syntax::Conf, &names).unwrap_err();
    assert!(e.msg.contains("ambiguous"), "{}", e.msg);
}

#[test]
fn non_utf8_is_located() {
    let (l, c, msg) = reject(Syntax::Conf, "timeout 5\nexec /a\u{0}");
    assert!(msg.contains("unexpected character"), "{msg}");
    assert_eq!((l, c), (2, 8));
    let e = config::parse_bytes(b"timeout 5\n  \xff", Syntax::Conf, &NodeNames::exact("me"))
        .unwrap_err();
    assert_eq!((e.pos.line, e.pos.col), (2, 3));
    assert!(e.msg.contains("UTF-8"));
}

const TOML_CASES: &[(&str, u32, u32, &str)] = &[
    ("bogus = 5\n", 1, 1, "unknown keyword 'bogus'"),
    ("timeout = 5\ntimeout = 6\n", 2, 1, "invalid TOML"),
    ("timeout = true\n", 1, 11, "does not take a boolean value"),
    ("timeout = 0x10\n", 1, 11, "non-decimal integer"),
    ("exec = [\"/a\"]\n", 1, 8, "takes one value, not an array"),
    (
        "[resource.r]\nexec = \"/x\"\nremote = [\"a\"]\n",
        3,
        1,
        "belongs in an 'on' section",
    ),
    (
        "[resource.r]\nexec = \"/x\"\n[resource.r.on.me]\npriority = -1\n",
        4,
        12,
        "needs a whole number",
    ),
    (
        "[resource.r]\nexec = \"/x\"\n[resource.r.on.me]\nremote = [\"none\"]\nrole_on_start = \"boss\"\n",
        5,
        17,
        "unknown role",
    ),
    ("resource = 5\n", 1, 12, "'resource' must be a table"),
    ("[resource.r]\non = 1\n", 2, 6, "'on' must be a table"),
    ("[resource.all]\n", 1, 11, "may not be called 'all'"),
    (
        "[resource.r.on.me]\nremote = [\"none\"]\n",
        1,
        11,
        "has no exec",
    ),
];

#[test]
fn toml_rejections_point_at_the_right_place() {
    for &(text, line, col, words) in TOML_CASES {
        let (l, c, msg) = reject(Syntax::Toml, text);
        assert!(
            msg.contains(words),
            "{text:?}: message {msg:?} lacks {words:?}"
        );
        assert_eq!((l, c), (line, col), "{text:?}: {msg}");
    }
}

#[test]
fn accepted_files_keep_the_originals_meaning() {
    // Quotes were skipped by the original, CRs ignored, `abc#x` is `abc`.
    let text = "resource \"r\" {\r\n exec /x#comment\r\n on me { remote 10.1 }\r\n}\r\n";
    let cfg = config::parse_bytes(text.as_bytes(), Syntax::Conf, &NodeNames::exact("me")).unwrap();
    assert_eq!(cfg.resources[0].name, "r");
    assert_eq!(cfg.resources[0].exec, "/x");
    assert_eq!(cfg.resources[0].remote[0].as_str(), "10.1");
    // An empty file is valid: no resources.
    let cfg = config::parse_bytes(b"", Syntax::Conf, &NodeNames::exact("me")).unwrap();
    assert!(cfg.resources.is_empty());
    assert_eq!(cfg.control.as_str(), "uds:///var/run/hastmonctl");
}
