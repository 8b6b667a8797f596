//! `/transactions/sync` cursors: an opaque base64 string encoding a position in the Item's update
//! log. A mid-pagination cursor also pins the snapshot end and the Item version it was cut from,
//! so a later mutation can be detected (TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Which Item (and per-account stream) the cursor belongs to.
    pub stream: u64,
    pub pos: u64,
    /// Snapshot end and version; only meaningful when `mid` is true.
    pub end: u64,
    pub version: u64,
    pub mid: bool,
}

const MAGIC: &[u8; 2] = b"c1";

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(35);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.stream.to_be_bytes());
        bytes.extend_from_slice(&self.pos.to_be_bytes());
        bytes.extend_from_slice(&self.end.to_be_bytes());
        bytes.extend_from_slice(&self.version.to_be_bytes());
        bytes.push(u8::from(self.mid));
        STANDARD.encode(bytes)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let bytes = STANDARD.decode(s).ok()?;
        if bytes.len() != 35 || &bytes[..2] != MAGIC {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[2 + i * 8..10 + i * 8]);
            u64::from_be_bytes(b)
        };
        let mid = match bytes[34] {
            0 => false,
            1 => true,
            _ => return None,
        };
        Some(Self { stream: word(0), pos: word(1), end: word(2), version: word(3), mid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Cursor { stream: 9, pos: 1_000_000, end: 1_000_500, version: 3, mid: true };
        let s = c.encode();
        assert!(s.len() <= 256);
        assert_eq!(Cursor::decode(&s), Some(c));
        assert_eq!(Cursor::decode("bm9wZQ=="), None);
        assert_eq!(Cursor::decode("not base64!"), None);
    }
}
