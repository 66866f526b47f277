//! What the manifest says about a source: its size, format, alpha,
//! frames, colour profile, a dominant colour and a BlurHash placeholder.
//! Computed once per job from the decoded source (the first frame of an
//! animation) and a walk of the bytes, bounded like everything else: one
//! shrink of the image to [`SAMPLE_SIDE`] pixels, walks linear in the file.

use image::RgbaImage;
use serde::{Deserialize, Serialize};

use super::formats::SourceFormat;
use super::{Limits, Source, decode, sample};

/// Longest side of the copy the colours and the BlurHash are taken from.
pub const SAMPLE_SIDE: u32 = 64;
/// Longest colour profile name kept, in characters.
pub const MAX_PROFILE_NAME: usize = 128;
/// The BlurHash's components along the longer and the shorter side.
pub const BLURHASH_COMPONENTS: (u32, u32) = (4, 3);

/// The source image as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    /// Width once the EXIF orientation is applied, in pixels.
    pub width: u32,
    /// Height once the EXIF orientation is applied, in pixels.
    pub height: u32,
    /// `jpeg`, `png`, `webp` or `gif`.
    #[schema(example = "jpeg")]
    pub format: String,
    /// The source has an alpha channel.
    pub alpha: bool,
    /// The source has more than one frame.
    pub animated: bool,
    /// Frames in the file (1 for a still image).
    pub frames: u32,
    /// The embedded ICC profile's description, if there is one.
    #[schema(example = "Display P3")]
    pub color_profile: Option<String>,
    /// The most common colour (pixels binned 4 bits a channel, the fullest
    /// bin's mean), `#rrggbb`.
    #[schema(example = "#8a7f74")]
    pub dominant_color: String,
    /// A BlurHash (blurha.sh) of the image: 4x3 components, 3x4 if portrait.
    #[schema(example = "LEHV6nWB2yk8pyo0adR*.7kCMdnj")]
    pub blurhash: String,
}

/// Describe `source`, decoded from `bytes`.
pub fn analyse(bytes: &[u8], source: &Source, limits: &Limits) -> Analysis {
    let _span = tracing::info_span!("analyse").entered();
    let frames = count_frames(bytes, source.format);
    let sample = sample::shrink(&source.image, SAMPLE_SIDE);
    Analysis {
        width: source.full_size.0,
        height: source.full_size.1,
        format: format_name(source.format).to_owned(),
        alpha: source.image.color().has_alpha(),
        animated: frames > 1,
        frames,
        color_profile: profile_name(bytes, limits),
        dominant_color: hex(dominant(&sample)),
        blurhash: blurhash(&sample),
    }
}

fn format_name(format: SourceFormat) -> &'static str {
    format.name()
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The mean colour of the fullest of 4096 bins (4 bits a channel), counting
/// only pixels at least half opaque (all of them if none is).
pub fn dominant(image: &RgbaImage) -> [u8; 3] {
    let opaque = image.pixels().any(|p| p[3] >= 128);
    let mut bins = vec![(0u32, [0u64; 3]); 4096];
    for p in image.pixels().filter(|p| !opaque || p[3] >= 128) {
        let bin = &mut bins[(usize::from(p[0] >> 4) << 8)
            | (usize::from(p[1] >> 4) << 4)
            | usize::from(p[2] >> 4)];
        bin.0 += 1;
        for c in 0..3 {
            bin.1[c] += u64::from(p[c]);
        }
    }
    let (count, sums) = bins
        .iter()
        .max_by_key(|(count, _)| *count)
        .copied()
        .unwrap_or_default();
    let count = u64::from(count.max(1));
    sums.map(|s| ((s + count / 2) / count) as u8)
}

/// The image's BlurHash, transparency flattened onto white.
pub fn blurhash(image: &RgbaImage) -> String {
    let (long, short) = BLURHASH_COMPONENTS;
    let (cx, cy) = if image.height() > image.width() {
        (short, long)
    } else {
        (long, short)
    };
    let mut flat = image.clone();
    for p in flat.pixels_mut() {
        let a = u32::from(p[3]);
        for c in 0..3 {
            p[c] = ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
        p[3] = 255;
    }
    blurhash::encode(cx, cy, flat.width(), flat.height(), flat.as_raw()).unwrap_or_default()
}

/// Frames in a GIF or WebP file, by walking its blocks or chunks; 1 for
/// anything else (and at least 1).
pub fn count_frames(bytes: &[u8], format: SourceFormat) -> u32 {
    let frames = match format {
        SourceFormat::Gif => gif_frames(bytes),
        SourceFormat::WebP => webp_frames(bytes),
        _ => 1,
    };
    frames.max(1)
}

fn gif_frames(bytes: &[u8]) -> u32 {
    let table = |packed: u8| {
        if packed & 0x80 == 0 {
            0
        } else {
            3usize << ((packed & 7) + 1)
        }
    };
    let skip_sub_blocks = |mut at: usize| {
        while let Some(&len) = bytes.get(at) {
            at += 1 + usize::from(len);
            if len == 0 {
                return at;
            }
        }
        bytes.len()
    };
    let Some(&packed) = bytes.get(10) else {
        return 0;
    };
    let (mut at, mut frames) = (13 + table(packed), 0);
    while let Some(&block) = bytes.get(at) {
        match block {
            0x21 => at = skip_sub_blocks(at + 2),
            0x2c => {
                let Some(&packed) = bytes.get(at + 9) else {
                    break;
                };
                frames += 1;
                at = skip_sub_blocks(at + 10 + table(packed) + 1);
            }
            _ => break,
        }
    }
    frames
}

/// `ANMF` chunks of a RIFF WebP (an animation's frames).
fn webp_frames(bytes: &[u8]) -> u32 {
    let (mut at, mut frames) = (12usize, 0);
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if &head[..4] == b"ANMF" {
            frames += 1;
        }
        // Chunks are padded to an even length.
        at = at.saturating_add(8).saturating_add(len + (len & 1));
    }
    frames
}

/// The description of the ICC profile the source embeds, if any.
fn profile_name(bytes: &[u8], limits: &Limits) -> Option<String> {
    let (_, mut decoder) = decode::open(bytes, limits).ok()?;
    let icc = decoder.icc_profile().ok()??;
    icc_description(&icc)
}

/// An ICC profile's `desc` tag: ICC v2 `desc` (ASCII) or v4 `mluc` (the
/// first record, UTF-16BE). Control characters are dropped and the name is
/// cut at `MAX_PROFILE_NAME` (128) characters.
pub fn icc_description(icc: &[u8]) -> Option<String> {
    let u32_at = |at: usize| -> Option<usize> {
        let b = icc.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let tags = u32_at(128)?;
    let (offset, size) = (0..tags.min(256)).find_map(|i| {
        let entry = 132 + 12 * i;
        (icc.get(entry..entry + 4)? == b"desc")
            .then(|| Some((u32_at(entry + 4)?, u32_at(entry + 8)?)))?
    })?;
    let tag = icc.get(offset..offset.checked_add(size)?)?;
    let text: String = match tag.get(..4)? {
        b"desc" => {
            let len = u32_at(offset + 8)?;
            let ascii = tag.get(12..12usize.checked_add(len)?)?;
            ascii.iter().map(|&b| char::from(b)).collect()
        }
        b"mluc" => {
            let (len, at) = (u32_at(offset + 20)?, u32_at(offset + 24)?);
            let utf16: Vec<u16> = tag
                .get(at..at.checked_add(len)?)?
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&utf16)
        }
        _ => return None,
    };
    let name: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_PROFILE_NAME)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}
