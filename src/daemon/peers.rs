//! Peer addresses as the main process uses them: resolved once (at start
//! and on reload, never in the loop, which must not block on DNS), and
//! the access checks and authentication of incoming requests.

use std::net::{IpAddr, SocketAddr, SocketAddrV4, ToSocketAddrs};

use crate::config::address::{Address, Host, Kind};
use crate::config::{Config, Key};
use crate::proto::NvList;
use crate::proto::auth::{Algorithm, AuthFields, verify};

/// The socket address of a TCP address; `None` for `none`, UNIX
/// addresses, and names that do not resolve (an unresolvable remote is
/// unreachable, not fatal: Q20).
pub fn resolve(addr: &Address) -> Option<SocketAddr> {
    let Kind::Tcp { host, port } = addr.kind() else {
        return None;
    };
    match host {
        Host::V4(ip) => Some(SocketAddr::new(IpAddr::V4(*ip), *port)),
        Host::V6(ip) => Some(SocketAddr::new(IpAddr::V6(*ip), *port)),
        Host::Name { name, v6_only } => (name.as_str(), *port)
            .to_socket_addrs()
            .ok()?
            .find(|a| a.is_ipv6() == *v6_only || (!v6_only && a.is_ipv4())),
    }
}

/// Every address that may talk to this node at all: the global friends
/// and every resource's friends and remotes (doc/protocol.md §8 step 1),
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

/// Whether `peer` is one of `addrs` (ports ignored, as 0.3.4 does).
pub fn listed(addrs: &[SocketAddr], peer: IpAddr) -> bool {
    addrs.iter().any(|a| same_ip(a.ip(), peer))
}

/// IPv4 peers may arrive as IPv4-mapped IPv6 on a dual-stack socket.
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn algorithm(key: &Key) -> Result<Algorithm, String> {
    // No downgrade: an HMAC-SHA256 key never accepts or makes a digest.
    if key.hmac_secret().is_some() {
        return Err("The key is HMAC-SHA256: a request outside a session is refused.".into());
    }
    key.algorithm
        .parse::<Algorithm>()
        .map_err(|e| format!("{e}"))
}

/// Checks a request received on a connection from `client` to `server`
/// against the resource's key; without a key everything passes
/// (doc/protocol.md §5).
pub fn authenticate(
    nv: &NvList,
    key: Option<&Key>,
    client: SocketAddr,
    server: SocketAddr,
) -> Result<(), String> {
    let Some(key) = key else { return Ok(()) };
    let alg = algorithm(key)?;
    let (Some(c), Some(s)) = (v4(client), v4(server)) else {
        return Err("Authentication works over IPv4 only.".into());
    };
    verify(nv, alg, key.secret.as_bytes(), unix_now(), c, s).map_err(|e| e.to_string())
}

/// The `now`/`auth_hash` fields for a request we send from `client` to
/// `server`, if the resource has a key.
pub fn sign(key: Option<&Key>, client: SocketAddr, server: SocketAddr) -> Option<AuthFields> {
    let key = key?;
    let alg = algorithm(key).ok()?;
    Some(AuthFields::compute(
        alg,
        key.secret.as_bytes(),
        unix_now(),
        v4(client)?,
        v4(server)?,
    ))
}
