//! Request authentication (doc/protocol.md §5): `now` and a plain digest of
//! `now || client || server || secret`. Not an HMAC and not bound to the
//! message body; kept as it is for compatibility with the original.
//!
//! Pure: the caller supplies the clock reading and both socket addresses.

use std::fmt;
use std::net::SocketAddrV4;
use std::str::FromStr;

use sha2::Digest;

use super::nv::NvList;

/// A request is refused when the clocks differ by this many seconds or more.
pub const MAX_TIME_SKEW: u64 = 10;

pub const FIELD_NOW: &str = "now";
pub const FIELD_HASH: &str = "auth_hash";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Ripemd160,
}

impl Algorithm {
    /// The configuration word, exactly as 0.3.4 accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Ripemd160 => "RIPEMD160",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 | Algorithm::Ripemd160 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Md5 => md5::Md5::digest(data).to_vec(),
            Algorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Algorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Algorithm::Ripemd160 => ripemd::Ripemd160::digest(data).to_vec(),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not one of the four upper-case words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unknown algorithm: {}.", self.0)
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Case-sensitive, like the original: `sha256` is rejected.
    fn from_str(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
        match s {
            "MD5" => Ok(Algorithm::Md5),
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "RIPEMD160" => Ok(Algorithm::Ripemd160),
            _ => Err(UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// Why a request failed authentication; `Display` gives the original's
/// log text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No `auth_hash` uint8 array.
    HashMissing,
    /// `auth_hash` has the wrong length for the receiver's algorithm.
    HashSize { found: usize, algorithm: Algorithm },
    /// The clocks differ by `MAX_TIME_SKEW` seconds or more (a missing
    /// `now` reads as 0).
    TimeSkew { receiver_now: u64, sender_now: u64 },
    /// The digest does not match.
    HashMismatch,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AuthError::HashMissing => f.write_str("Hash is missing."),
            AuthError::HashSize { found, algorithm } => write!(
                f,
                "Invalid hash size ({found}) for {algorithm}, should be {}.",
                algorithm.digest_len()
            ),
            AuthError::TimeSkew {
                receiver_now,
                sender_now,
            } => write!(
                f,
                "Time difference ({receiver_now} - {sender_now}) is more than tolerable ({MAX_TIME_SKEW})."
            ),
            AuthError::HashMismatch => f.write_str("Hash mismatch."),
        }
    }
}

impl std::error::Error for AuthError {}

/// An address as the digest input spells it: `tcp4://A.B.C.D:PORT`.
pub fn format_addr(addr: SocketAddrV4) -> String {
    format!("tcp4://{}:{}", addr.ip(), addr.port())
}

/// The exact bytes that are hashed.
pub fn digest_input(
    now: u64,
    client: SocketAddrV4,
    server: SocketAddrV4,
    secret: &[u8],
) -> Vec<u8> {
    let mut s = format!("{now}{}{}", format_addr(client), format_addr(server)).into_bytes();
    s.extend_from_slice(secret);
    s
}

/// The `now` and `auth_hash` fields of an authenticated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFields {
    pub now: u64,
    pub hash: Vec<u8>,
}

impl AuthFields {
    /// `client` is the connecting end, `server` the accepting end, each as
    /// that socket reports itself.
    pub fn compute(
        algorithm: Algorithm,
        secret: &[u8],
        now: u64,
        client: SocketAddrV4,
        server: SocketAddrV4,
    ) -> AuthFields {
        let hash = algorithm.digest(&digest_input(now, client, server, secret));
        AuthFields { now, hash }
    }

    /// The fields present in a request, if `auth_hash` is.
    pub fn from_nv(nv: &NvList) -> Option<AuthFields> {
        let hash = nv.get_u8_array(FIELD_HASH)?.to_vec();
        Some(AuthFields {
            now: nv.get_u64(FIELD_NOW).unwrap_or(0),
            hash,
        })
    }

    /// Appends `now` then `auth_hash`.
    pub fn write(&self, nv: &mut NvList) {
        nv.add_u64(FIELD_NOW, self.now)
            .add_u8_array(FIELD_HASH, &self.hash);
    }
}

/// Checks a request's `now`/`auth_hash` against the receiver's own key and
/// clock, in the original's order: presence, size, time, digest.
pub fn verify(
    nv: &NvList,
    algorithm: Algorithm,
    secret: &[u8],
    receiver_now: u64,
    client: SocketAddrV4,
    server: SocketAddrV4,
) -> Result<(), AuthError> {
    let hash = nv.get_u8_array(FIELD_HASH).ok_or(AuthError::HashMissing)?;
    if hash.len() != algorithm.digest_len() {
        return Err(AuthError::HashSize {
            found: hash.len(),
            algorithm,
        });
    }
    let sender_now = nv.get_u64(FIELD_NOW).unwrap_or(0);
    if receiver_now.abs_diff(sender_now) >= MAX_TIME_SKEW {
        return Err(AuthError::TimeSkew {
            receiver_now,
            sender_now,
        });
    }
    let expected = algorithm.digest(&digest_input(sender_now, client, server, secret));
    if constant_time_eq(hash, &expected) {
        Ok(())
    } else {
        Err(AuthError::HashMismatch)
    }
}

/// Compares without an early exit, so the time taken does not reveal how
/// many leading bytes of a forged digest were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SocketAddrV4, SocketAddrV4) {
        (
            "10.77.0.2:45896".parse().unwrap(),
            "10.77.0.1:8458".parse().unwrap(),
        )
    }

    fn signed(alg: Algorithm, now: u64) -> NvList {
        let (c, s) = addrs();
        let mut nv = NvList::new();
        AuthFields::compute(alg, b"s3cr3t", now, c, s).write(&mut nv);
        nv
    }

    #[test]
    fn digest_input_is_the_spec_example() {
        let (c, s) = addrs();
        assert_eq!(
            digest_input(1795568607, c, s, b"s3cr3t"),
            b"1795568607tcp4://10.77.0.2:45896tcp4://10.77.0.1:8458s3cr3t"
        );
    }

    #[test]
    fn algorithm_names_are_exact_and_case_sensitive() {
        for alg in [
            Algorithm::Md5,
            Algorithm::Sha1,
            Algorithm::Sha256,
            Algorithm::Ripemd160,
        ] {
            assert_eq!(alg.to_string().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.digest(b"x").len(), alg.digest_len());
        }
        assert_eq!(
            "sha256".parse::<Algorithm>().unwrap_err().to_string(),
            "Unknown algorithm: sha256."
        );
    }

    #[test]
    fn missing_hash_is_reported_first() {
        let (c, s) = addrs();
        let mut nv = NvList::new();
        nv.add_u64(FIELD_NOW, 100);
        let e = verify(&nv, Algorithm::Md5, b"s3cr3t", 100, c, s).unwrap_err();
        assert_eq!(e, AuthError::HashMissing);
        assert_eq!(e.to_string(), "Hash is missing.");
    }

    #[test]
    fn hash_of_another_type_counts_as_missing() {
        let (c, s) = addrs();
        let mut nv = NvList::new();
        nv.add_string(FIELD_HASH, "00");
        let e = verify(&nv, Algorithm::Md5, b"s3cr3t", 0, c, s).unwrap_err();
        assert_eq!(e, AuthError::HashMissing);
    }

    #[test]
    fn wrong_size_names_the_receivers_algorithm() {
        let (c, s) = addrs();
        let nv = signed(Algorithm::Md5, 100);
        let e = verify(&nv, Algorithm::Sha256, b"s3cr3t", 100, c, s).unwrap_err();
        assert_eq!(
            e,
            AuthError::HashSize {
                found: 16,
                algorithm: Algorithm::Sha256
            }
        );
        assert_eq!(
            e.to_string(),
            "Invalid hash size (16) for SHA256, should be 32."
        );
    }

    #[test]
    fn skew_of_ten_seconds_is_refused_nine_accepted() {
        let (c, s) = addrs();
        let nv = signed(Algorithm::Sha256, 1000);
        for now in [991, 1009] {
            assert_eq!(verify(&nv, Algorithm::Sha256, b"s3cr3t", now, c, s), Ok(()));
        }
        let e = verify(&nv, Algorithm::Sha256, b"s3cr3t", 1010, c, s).unwrap_err();
        assert_eq!(
            e,
            AuthError::TimeSkew {
                receiver_now: 1010,
                sender_now: 1000
            }
        );
        assert_eq!(
            e.to_string(),
            "Time difference (1010 - 1000) is more than tolerable (10)."
        );
        assert!(verify(&nv, Algorithm::Sha256, b"s3cr3t", 990, c, s).is_err());
    }

    #[test]
    fn missing_now_reads_as_zero() {
        let (c, s) = addrs();
        let mut nv = NvList::new();
        nv.add_u8_array(FIELD_HASH, &[0; 16]);
        let e = verify(&nv, Algorithm::Md5, b"s3cr3t", 1000, c, s).unwrap_err();
        assert_eq!(
            e,
            AuthError::TimeSkew {
                receiver_now: 1000,
                sender_now: 0
            }
        );
    }

    #[test]
    fn wrong_secret_or_swapped_addresses_mismatch() {
        let (c, s) = addrs();
        let nv = signed(Algorithm::Ripemd160, 1000);
        let e = verify(&nv, Algorithm::Ripemd160, b"other", 1000, c, s).unwrap_err();
        assert_eq!(e, AuthError::HashMismatch);
        assert_eq!(e.to_string(), "Hash mismatch.");
        let e = verify(&nv, Algorithm::Ripemd160, b"s3cr3t", 1000, s, c).unwrap_err();
        assert_eq!(e, AuthError::HashMismatch);
        assert_eq!(
            verify(&nv, Algorithm::Ripemd160, b"s3cr3t", 1000, c, s),
            Ok(())
        );
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"xbc", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
