//! Structure checks on the raw bytes, before a decoder sees them: what the
//! decoders would otherwise spend unbounded time or memory on. Each walk
//! reads segment headers only, so it costs one pass over the file at most.

/// Most scans a JPEG may have. A progressive JPEG from libjpeg-turbo or
/// mozjpeg has about 10; each scan costs a pass over every block of the
/// image, so a file repeating one tiny scan thousands of times burns CPU
/// for minutes (libjpeg-turbo's `TJPARAM_SCANLIMIT`, set too, is the same
/// bound for the path it decodes; this walk also covers the fallback).
pub const MAX_JPEG_SCANS: usize = 100;

/// Count the JPEG's scans (SOS markers), stopping with an error past
/// [`MAX_JPEG_SCANS`]. A truncated or malformed stream ends the count: the
/// decoder reports those.
pub(super) fn check_jpeg_scans(bytes: &[u8]) -> Result<usize, String> {
    let mut scans = 0;
    let mut at = 2; // after SOI
    while at + 1 < bytes.len() {
        if bytes[at] != 0xff {
            return Ok(scans);
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while at + 1 < bytes.len() && bytes[at + 1] == 0xff {
            at += 1;
        }
        let Some(&marker) = bytes.get(at + 1) else {
            return Ok(scans);
        };
        at += 2;
        match marker {
            0xd9 => return Ok(scans),
            // Markers without a length: RSTn, SOI, TEM.
            0xd0..=0xd8 | 0x01 => continue,
            _ => {}
        }
        let Some(len) = bytes.get(at..at + 2) else {
            return Ok(scans);
        };
        at += usize::from(u16::from_be_bytes([len[0], len[1]]));
        if marker == 0xda {
            scans += 1;
            if scans > MAX_JPEG_SCANS {
                return Err(format!("the JPEG has more than {MAX_JPEG_SCANS} scans"));
            }
            at = skip_entropy_data(bytes, at);
        }
    }
    Ok(scans)
}

/// The offset of the next marker after a scan's entropy-coded data, where
/// `FF 00` is a stuffed byte and `FF D0`..`FF D7` are restart markers.
/// `memchr` finds the candidates (one `0xFF` in about every hundred bytes
/// of a photo) a vector at a time: a byte-by-byte walk cost 1.3 ms of a
/// 12 MP thumbnail's 37.
pub(super) fn skip_entropy_data(bytes: &[u8], mut at: usize) -> usize {
    while at + 1 < bytes.len() {
        match memchr::memchr(0xff, &bytes[at..bytes.len() - 1]) {
            None => break,
            Some(found) => at += found,
        }
        if !matches!(bytes[at + 1], 0x00 | 0xd0..=0xd7 | 0xff) {
            return at;
        }
        at += 1;
    }
    bytes.len()
}

/// A GIF frame's rectangle on the logical screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GifFrame {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// Check that every frame of a GIF lies within its logical screen, and
/// return the first frame. The `image` crate decodes a frame that is not
/// exactly the screen into a buffer of the frame's own size before clipping
/// it, so a 1x1 GIF could otherwise make it allocate a 65535x65535 frame.
/// Browsers clip such frames; we refuse them (the format requires frames
/// to fit the screen, and no encoder we know writes them).
pub(super) fn check_gif_frames(bytes: &[u8]) -> Result<Option<GifFrame>, String> {
    let u16_at = |at: usize| -> Option<u32> {
        bytes
            .get(at..at + 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let (Some(screen_w), Some(screen_h), Some(&packed)) = (u16_at(6), u16_at(8), bytes.get(10))
    else {
        return Ok(None);
    };
    let mut at = 13 + color_table_len(packed);
    let mut first = None;
    while let Some(&block) = bytes.get(at) {
        match block {
            // Extension: label, then data sub-blocks.
            0x21 => at = skip_sub_blocks(bytes, at + 2),
            0x2c => {
                let (Some(left), Some(top), Some(width), Some(height), Some(&packed)) = (
                    u16_at(at + 1),
                    u16_at(at + 3),
                    u16_at(at + 5),
                    u16_at(at + 7),
                    bytes.get(at + 9),
                ) else {
                    break;
                };
                if left + width > screen_w || top + height > screen_h {
                    return Err(format!(
                        "a GIF frame of {width}x{height} at {left},{top} does not fit its {screen_w}x{screen_h} logical screen"
                    ));
                }
                first.get_or_insert(GifFrame {
                    left,
                    top,
                    width,
                    height,
                });
                // Descriptor, local colour table, LZW code size, then data.
                at = skip_sub_blocks(bytes, at + 10 + color_table_len(packed) + 1);
            }
            // The trailer, or something the decoder will refuse.
            _ => break,
        }
    }
    Ok(first)
}

/// How many frames (image descriptors) a GIF has: the same walk as
/// [`check_gif_frames`], counting.
pub(super) fn gif_frame_count(bytes: &[u8]) -> u32 {
    let Some(&packed) = bytes.get(10) else {
        return 0;
    };
    let mut at = 13 + color_table_len(packed);
    let mut frames = 0u32;
    while let Some(&block) = bytes.get(at) {
        match block {
            0x21 => at = skip_sub_blocks(bytes, at + 2),
            0x2c => {
                let Some(&packed) = bytes.get(at + 9) else {
                    break;
                };
                frames = frames.saturating_add(1);
                at = skip_sub_blocks(bytes, at + 10 + color_table_len(packed) + 1);
            }
            _ => break,
        }
    }
    frames
}

fn color_table_len(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 7) + 1)
    }
}

/// The offset after a chain of sub-blocks (length byte, data) ended by an
/// empty one.
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&len) = bytes.get(at) {
        at += 1 + usize::from(len);
        if len == 0 {
            return at;
        }
    }
    bytes.len()
}
