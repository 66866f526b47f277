//! Embedding an ICC profile in an encoded JPEG or WebP (`icc=keep`); PNG
//! has its encoder's own `iCCP` support. The encoders write no profile
//! themselves, so these add exactly the source's bytes.

/// `ICC_PROFILE\0` + sequence number + count: the APP2 header (ICC.1 B.4).
const JPEG_ICC_MAGIC: &[u8] = b"ICC_PROFILE\0";
/// Most profile bytes in one APP2 segment: 65535 - 2 (length) - 14 (header).
const JPEG_ICC_CHUNK: usize = 65_519;

/// Insert `icc` as APP2 segments after SOI and any APP0 (JFIF).
pub(super) fn jpeg(encoded: Vec<u8>, icc: &[u8]) -> Result<Vec<u8>, String> {
    let chunks: Vec<&[u8]> = icc.chunks(JPEG_ICC_CHUNK).collect();
    if chunks.is_empty() || chunks.len() > 255 || !encoded.starts_with(&[0xff, 0xd8]) {
        return Err(format!(
            "cannot embed a {}-byte ICC profile in JPEG",
            icc.len()
        ));
    }
    let mut at = 2;
    if encoded.len() > 6 && encoded[2..4] == [0xff, 0xe0] {
        at += 2 + usize::from(u16::from_be_bytes([encoded[4], encoded[5]]));
    }
    let mut out = Vec::with_capacity(encoded.len() + icc.len() + chunks.len() * 18);
    out.extend_from_slice(&encoded[..at]);
    for (i, chunk) in chunks.iter().enumerate() {
        let len = (2 + JPEG_ICC_MAGIC.len() + 2 + chunk.len()) as u16;
        out.extend_from_slice(&[0xff, 0xe2]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(JPEG_ICC_MAGIC);
        out.extend_from_slice(&[(i + 1) as u8, chunks.len() as u8]);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&encoded[at..]);
    Ok(out)
}

/// Rewrite libwebp's output as an extended WebP (`VP8X`) with an `ICCP` chunk.
pub(super) fn webp(encoded: &[u8], width: u32, height: u32, icc: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "libwebp wrote an unexpected RIFF layout".to_string();
    if encoded.len() < 20 || &encoded[..4] != b"RIFF" || &encoded[8..12] != b"WEBP" {
        return Err(bad());
    }
    let mut flags = 0x20u8; // ICC profile
    let mut body = Vec::new();
    let mut at = 12;
    while at + 8 <= encoded.len() {
        let fourcc = &encoded[at..at + 4];
        let size =
            u32::from_le_bytes(encoded[at + 4..at + 8].try_into().map_err(|_| bad())?) as usize;
        let end = (at + 8 + size + (size & 1)).min(encoded.len());
        let payload = &encoded[at + 8..(at + 8 + size).min(encoded.len())];
        match fourcc {
            b"VP8X" => flags |= payload.first().copied().unwrap_or(0),
            b"VP8L" if payload.len() >= 5 => {
                // alpha_is_used: bit 28 of the 32 bits after the signature.
                let bits = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
                if bits >> 28 & 1 == 1 {
                    flags |= 0x10;
                }
                body.extend_from_slice(&encoded[at..end]);
            }
            _ => body.extend_from_slice(&encoded[at..end]),
        }
        at = end;
    }
    let mut out = Vec::with_capacity(encoded.len() + icc.len() + 32);
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    out.extend_from_slice(b"VP8X");
    out.extend_from_slice(&10u32.to_le_bytes());
    out.extend_from_slice(&[flags, 0, 0, 0]);
    out.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    out.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    out.extend_from_slice(b"ICCP");
    out.extend_from_slice(&(icc.len() as u32).to_le_bytes());
    out.extend_from_slice(icc);
    if icc.len() % 2 == 1 {
        out.push(0);
    }
    out.extend_from_slice(&body);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}
