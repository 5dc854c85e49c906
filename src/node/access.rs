//! Who a peer is to a resource, and whether its request is
//! authenticated: the 0.3.4 digest over the connection's addresses and
//! the wall clock, or an HMAC-SHA256 session with the resource's secret.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use crate::config::Key;
use crate::proto::NvList;
use crate::proto::auth::{Algorithm, verify};
use crate::proto::hmac::Session;

/// Whether `peer` is one of `addrs` (ports ignored, as 0.3.4 does).
pub fn listed(addrs: &[SocketAddr], peer: IpAddr) -> bool {
    addrs.iter().any(|a| same_ip(a.ip(), peer))
}

/// IPv4 peers may arrive as IPv4-mapped IPv6 on a dual-stack socket.
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// An IPv4 address, also from its IPv4-mapped IPv6 form.
pub fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

/// The digest algorithm of a legacy key. An HMAC-SHA256 key never
/// accepts or makes a digest: no downgrade.
pub fn digest_algorithm(key: &Key) -> Result<Algorithm, String> {
    if key.hmac_secret().is_some() {
        return Err("The key is HMAC-SHA256: a request outside a session is refused.".into());
    }
    key.algorithm
        .parse::<Algorithm>()
        .map_err(|e| format!("{e}"))
}

/// Checks a request received on a connection from `client` to `server`
/// at wall-clock second `wall` against the resource's key; without a key
/// everything passes.
pub fn authenticate(
    nv: &NvList,
    key: Option<&Key>,
    client: SocketAddr,
    server: SocketAddr,
    wall: u64,
) -> Result<(), String> {
    let Some(key) = key else { return Ok(()) };
    let alg = digest_algorithm(key)?;
    let (Some(c), Some(s)) = (v4(client), v4(server)) else {
        return Err("Authentication works over IPv4 only.".into());
    };
    verify(nv, alg, key.secret.as_bytes(), wall, c, s).map_err(|e| e.to_string())
}

/// Whether a request that arrived in `session` is authenticated for a
/// resource with `key`: only if that key is HMAC-SHA256 with the
/// session's secret.
pub fn covers(session: &Session, key: Option<&Key>) -> bool {
    key.and_then(Key::hmac_secret)
        .is_some_and(|secret| session.has_secret(secret))
}
