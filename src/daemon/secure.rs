//! HMAC-SHA256 sessions on the listen port (doc/quirks.md Q23; the wire
//! format is in `proto::hmac`): the acceptor's answer to a hello, and which
//! resources a session may speak for.

use std::net::SocketAddr;

use super::listen::ListenServer;
use super::supervisor::Supervisor;
use crate::config::Key;
use crate::event::Poller;
use crate::proto::hmac::{Hello, Nonce, Session};
use crate::proto::msg::{Refusal, errmsg};
use crate::{log_error, log_warning};

/// A fresh nonce; only the main process makes them.
pub fn nonce() -> Result<Nonce, getrandom::Error> {
    let mut n = Nonce::default();
    getrandom::fill(&mut n)?;
    Ok(n)
}

/// Opens the server's side of a session for `hello`, if its resource
/// has an HMAC-SHA256 key, and sends the greeting. True if the
/// connection stays open for the request.
pub fn greet(
    sup: &Supervisor,
    poller: &mut Poller,
    listen: &mut ListenServer,
    id: u64,
    hello: &Hello,
    peer: SocketAddr,
) -> bool {
    let name = &hello.resource;
    let Some(r) = sup.list.iter().find(|r| &r.cfg.name == name) else {
        log_warning!("HMAC-SHA256 hello from {peer} for unknown resource {name}.");
        let refusal = Refusal::new(errmsg::RESOURCE_NOT_CONFIGURED).to_nv();
        listen.inbox.reply(poller, id, Some(refusal));
        return false;
    };
    let Some(secret) = r.cfg.key.as_ref().and_then(Key::hmac_secret) else {
        log_warning!(
            "[{name}] Refusing an HMAC-SHA256 hello from {peer}: the resource's key is not HMAC-SHA256."
        );
        let refusal = Refusal::new(errmsg::NO_ACCESS).to_nv();
        listen.inbox.reply(poller, id, Some(refusal));
        return false;
    };
    let server_nonce = match nonce() {
        Ok(n) => n,
        Err(e) => {
            log_error!("[{name}] Unable to make a nonce: {e}.");
            listen.inbox.close(poller, id);
            return false;
        }
    };
    listen
        .inbox
        .secure(poller, id, Session::server(secret, hello, server_nonce))
}

/// Whether a request that arrived in `session` is authenticated for a
/// resource with `key`: only if that key is HMAC-SHA256 with the
/// session's secret. Without a session the 0.3.4 digest decides.
pub fn covers(session: &Session, key: Option<&Key>) -> bool {
    key.and_then(Key::hmac_secret)
        .is_some_and(|secret| session.has_secret(secret))
}
