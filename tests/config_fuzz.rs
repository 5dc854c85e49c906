//! Arbitrary bytes and token soups: the parsers answer with an error or a
//! configuration, never a panic.

use hastmon::config::{self, NodeNames, Syntax};
use proptest::prelude::*;

const VOCAB: &[&str] = &[
    "resource",
    "on",
    "me",
    "key",
    "{",
    "}",
    "{",
    "}",
    "exec",
    "/x",
    "remote",
    "none",
    "friends",
    "10.0.0.1",
    "tcp6://[::1]:1",
    "priority",
    "timeout",
    "0.5",
    "10",
    "99999999999999",
    "attempts",
    "heartbeat_interval",
    "complaint_count",
    "complaint_interval",
    "role_on_start",
    "primary",
    "control",
    "listen",
    "uds:///x",
    "algorithm",
    "SHA256",
    "secret",
    "\"q q\"",
    "'",
    "#c\n",
    "\n",
    "port",
    "hook_timeout",
    "=",
    "[",
    "]",
    "[resource.r]",
    "on.me",
    "\"",
    "all",
    "-",
];

fn names() -> NodeNames {
    NodeNames::exact("me")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = config::parse_bytes(&bytes, Syntax::Conf, &names());
        let _ = config::parse_bytes(&bytes, Syntax::Toml, &names());
    }

    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(0..VOCAB.len(), 0..64)) {
        let text: String = toks.iter().map(|&i| VOCAB[i]).collect::<Vec<_>>().join(" ");
        let r = config::parse_bytes(text.as_bytes(), Syntax::Conf, &names());
        if let Err(e) = r {
            prop_assert!(e.pos.line >= 1 && e.pos.col >= 1);
            prop_assert!(!e.msg.is_empty() && !e.msg.contains('\n'));
        }
        let _ = config::parse_bytes(text.as_bytes(), Syntax::Toml, &names());
    }
}
