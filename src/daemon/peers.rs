//! Peer addresses as the main process uses them: resolved once (at start
//! and on reload, never in the loop, which must not block on DNS), and
//! the access checks and authentication of incoming requests.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::config::address::{Address, Host, Kind};
use crate::config::{Config, Key};
use crate::node::access::{digest_algorithm, v4};
use crate::proto::auth::AuthFields;

/// The socket address of a TCP address; `None` for `none`, UNIX
/// addresses, and names that do not resolve (an unresolvable remote is
/// unreachable, not fatal: Q20).
pub fn resolve(addr: &Address) -> Option<SocketAddr> {
    if let Some(a) = addr.literal() {
        return Some(a);
    }
    let Kind::Tcp {
        host: Host::Name { name, v6_only },
        port,
    } = addr.kind()
    else {
        return None;
    };
    (name.as_str(), *port)
        .to_socket_addrs()
        .ok()?
        .find(|a| a.is_ipv6() == *v6_only || (!v6_only && a.is_ipv4()))
}

/// Every address that may talk to this node at all: the global friends
/// and every resource's friends and remotes (doc/protocol.md §7 step 1),
/// checked before a byte is read (Q3).
pub fn known_peers(cfg: &Config) -> Vec<IpAddr> {
    let all = cfg.friends.iter().chain(
        cfg.resources
            .iter()
            .flat_map(|r| r.friends.iter().chain(&r.remote)),
    );
    let mut ips: Vec<IpAddr> = all.filter_map(resolve).map(|a| a.ip()).collect();
    ips.sort();
    ips.dedup();
    ips
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `now`/`auth_hash` fields for a request we send from `client` to
/// `server`, if the resource has a key.
pub fn sign(key: Option<&Key>, client: SocketAddr, server: SocketAddr) -> Option<AuthFields> {
    let key = key?;
    let alg = digest_algorithm(key).ok()?;
    Some(AuthFields::compute(
        alg,
        key.secret.as_bytes(),
        unix_now(),
        v4(client)?,
        v4(server)?,
    ))
}
