//! Deterministic identifiers: everything the world contains is derived from the seed, so the same seed
//! gives the same ids. Only request ids (which Plaid never repeats) are truly random.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of Plaid's item, account and transaction ids (e.g. `lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje`).
pub const ID_LEN: usize = 37;

/// SplitMix64 finalizer: a cheap, well-distributed 64-bit mix.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Combines two values into a new seed.
pub fn mix(a: u64, b: u64) -> u64 {
    splitmix64(a ^ splitmix64(b.wrapping_mul(0xD6E8_FEB8_6659_FD93)))
}

/// A stable 64-bit tag for a string (FNV-1a), used to separate id namespaces.
pub fn tag(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3))
}

/// A random-looking base62 string of `len` characters derived from `seed`.
pub fn base62(seed: u64, len: usize) -> String {
    let mut x = seed;
    let mut bytes = Vec::with_capacity(len);
    for _ in 0..len {
        x = splitmix64(x);
        bytes.push(BASE62[(x % 62) as usize]);
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// A random-looking lowercase hex string of `len` characters derived from `seed` (Plaid's
/// `persistent_account_id` is 56 hex digits).
pub fn hex(seed: u64, len: usize) -> String {
    let mut x = seed;
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        x = splitmix64(x);
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(len);
    out
}

/// A version-4-shaped UUID derived from `seed` (Plaid's tokens end in a UUID).
pub fn uuid(seed: u64) -> String {
    let hi = splitmix64(seed);
    let lo = splitmix64(hi ^ seed.rotate_left(17));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// A fresh request id like Plaid's (`m8MDnv9okwxFNBV`): random, never repeated in practice.
pub fn request_id() -> String {
    base62(rand::random::<u64>(), 15)
}

/// A deterministic RNG for one decision point.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(base62(7, ID_LEN), base62(7, ID_LEN));
        assert_ne!(base62(7, ID_LEN), base62(8, ID_LEN));
        assert_eq!(base62(7, ID_LEN).len(), ID_LEN);
        assert_eq!(uuid(3), uuid(3));
        assert_eq!(uuid(3).len(), 36);
        assert_eq!(hex(5, 56), hex(5, 56));
        assert_eq!(hex(5, 56).len(), 56);
        assert!(hex(5, 56).bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(hex(5, 56), hex(6, 56));
        assert_ne!(request_id(), request_id());
    }
}
