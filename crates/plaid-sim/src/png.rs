//! A minimal PNG encoder for the simulator's generated merchant logos: 8-bit RGBA, no interlace, the image data in
//! *stored* (uncompressed) deflate blocks inside the zlib stream. A 64×64 logo is ~16 KiB that way, well under any
//! logo proxy's limit, and the encoder stays a page of code with no dependency (no compression library for a
//! handful of tiny images). Any PNG decoder reads it: stored blocks are plain deflate.

/// The 8-byte PNG signature.
pub const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Largest payload of one stored deflate block.
const STORED_BLOCK: usize = 65_535;

/// Encodes `rgba` (rows top to bottom, 4 bytes a pixel) as a PNG. Panics when the buffer is not
/// `width × height × 4` bytes: callers build it from the same numbers.
pub fn encode_rgba(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
    let row = width as usize * 4;
    assert_eq!(rgba.len(), row * height as usize, "an RGBA buffer of {width}×{height}");
    // Each scanline starts with its filter type: 0 (None).
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in rgba.chunks_exact(row) {
        raw.push(0);
        raw.extend_from_slice(line);
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 6 (RGBA), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);

    let mut png = SIGNATURE.to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A chunk: length, type, data, CRC-32 of type + data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).expect("a chunk under 4 GiB").to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = Crc32::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finish().to_be_bytes());
}

/// A zlib stream (RFC 1950) holding `data` in stored deflate blocks (RFC 1951 §3.2.4).
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(STORED_BLOCK).max(1);
    let mut out = Vec::with_capacity(2 + data.len() + blocks * 5 + 4);
    // CM 8 (deflate), a 32 KiB window, no dictionary, "fastest" level; 0x7801 is a multiple of 31 as required.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut parts = data.chunks(STORED_BLOCK).peekable();
    if parts.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        let len = u16::try_from(part.len()).expect("a stored block is at most 65,535 bytes");
        out.push(u8::from(last)); // BFINAL, BTYPE 00 (stored)
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// Adler-32 (RFC 1950 §8).
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5,552 bytes is the most that cannot overflow `b` before the modulo.
    for part in data.chunks(5_552) {
        for &byte in part {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// CRC-32 as PNG uses it (ISO-HDLC: reflected polynomial 0xEDB88320), bit by bit: a logo is a few KiB.
pub struct Crc32(u32);

impl Crc32 {
    pub fn new() -> Self {
        Self(0xffff_ffff)
    }

    pub fn update(&mut self, data: &[u8]) {
        for &byte in data {
            self.0 ^= u32::from(byte);
            for _ in 0..8 {
                self.0 = if self.0 & 1 == 1 { (self.0 >> 1) ^ 0xedb8_8320 } else { self.0 >> 1 };
            }
        }
    }

    pub fn finish(&self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(data: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(data);
        c.finish()
    }

    #[test]
    fn checksums_match_their_published_check_values() {
        // The CRC catalogue's check value for CRC-32/ISO-HDLC, and the CRC every PNG's IEND chunk carries.
        assert_eq!(crc(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(adler32(b""), 1);
        // Long enough to need the modulo inside the loop.
        let long = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &long {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&long), ((b << 16) | a) as u32);
    }

    /// Reads a stored-block zlib stream back (the only kind `zlib_stored` writes), checking every length field.
    fn inflate_stored(z: &[u8]) -> Vec<u8> {
        assert_eq!(&z[..2], &[0x78, 0x01]);
        assert_eq!(u16::from_be_bytes([z[0], z[1]]) % 31, 0, "FCHECK");
        let (mut at, mut out) = (2, Vec::new());
        loop {
            let header = z[at];
            assert_eq!(header & 0b110, 0, "stored blocks only");
            let len = u16::from_le_bytes([z[at + 1], z[at + 2]]);
            let nlen = u16::from_le_bytes([z[at + 3], z[at + 4]]);
            assert_eq!(len, !nlen);
            out.extend_from_slice(&z[at + 5..at + 5 + usize::from(len)]);
            at += 5 + usize::from(len);
            if header & 1 == 1 {
                break;
            }
        }
        assert_eq!(z[at..], adler32(&out).to_be_bytes(), "the stream ends with the Adler-32 of the data");
        out
    }

    #[test]
    fn zlib_streams_hold_the_data_in_blocks_of_at_most_65535_bytes() {
        for len in [0, 1, 65_535, 65_536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let z = zlib_stored(&data);
            assert_eq!(inflate_stored(&z), data, "{len} bytes");
        }
    }

    #[test]
    fn an_image_is_signature_ihdr_idat_iend_with_valid_crcs_and_filtered_rows() {
        let (w, h) = (3u32, 2u32);
        let rgba: Vec<u8> = (0..w * h * 4).map(|i| i as u8).collect();
        let png = encode_rgba(w, h, &rgba);
        assert_eq!(png[..8], SIGNATURE);
        let mut at = 8;
        let mut chunks = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let stored = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(stored, crc(&png[at + 4..at + 8 + len]), "CRC of {}", String::from_utf8_lossy(kind));
            chunks.push((kind.to_vec(), data.to_vec()));
            at += 12 + len;
        }
        let kinds: Vec<&[u8]> = chunks.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(kinds, [&b"IHDR"[..], b"IDAT", b"IEND"]);
        assert_eq!(chunks[0].1, [0, 0, 0, 3, 0, 0, 0, 2, 8, 6, 0, 0, 0]);
        let raw = inflate_stored(&chunks[1].1);
        assert_eq!(raw.len(), (1 + 3 * 4) * 2);
        assert_eq!(raw[0], 0);
        assert_eq!(raw[1..13], rgba[..12]);
        assert_eq!(raw[13], 0);
        assert_eq!(raw[14..], rgba[12..]);
    }
}
