//! HEIF/HEIC and AVIF through libheif (Debian 12's 1.15.1, with libde265
//! for HEVC and dav1d for AV1): the same library libvips and ImageMagick
//! use, so their decodes are the reference.
//!
//! libheif looks for decoder plugins when it is initialised, which opens
//! a directory: [`init`] runs before the sandbox child's seccomp filter,
//! which has no `open`. Decoding itself reads only memory.

use std::sync::OnceLock;

use image::{DynamicImage, ImageBuffer};
use libheif_rs::{ColorSpace, HeifContext, ImageHandle, LibHeif, RgbChroma};

use super::super::colour::Colour;
use super::super::{Limits, PipelineError, check_limits};
use super::SourceFormat;

static LIBHEIF: OnceLock<LibHeif> = OnceLock::new();

/// Initialise libheif once per process (never de-initialised).
pub fn init() -> &'static LibHeif {
    LIBHEIF.get_or_init(LibHeif::new)
}

/// HEIF (`heic`, `heix`, `mif1`, ...) or AVIF (`avif`, `avis`) by the
/// brands of an ISO-BMFF `ftyp` box.
pub(super) fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = size.clamp(16, bytes.len().min(256));
    let major = &bytes[8..12];
    let compatible = bytes[16..end].chunks_exact(4);
    let avif = |b: &[u8]| b == b"avif" || b == b"avis";
    let heif = |b: &[u8]| {
        matches!(
            b,
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1"
        )
    };
    if avif(major) {
        Some(SourceFormat::Avif)
    } else if matches!(
        major,
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx"
    ) {
        Some(SourceFormat::Heif)
    } else if compatible.clone().any(avif) {
        Some(SourceFormat::Avif)
    } else if heif(major) || compatible.clone().any(heif) {
        Some(SourceFormat::Heif)
    } else {
        None
    }
}

fn corrupt(e: libheif_rs::HeifError) -> PipelineError {
    PipelineError::Corrupt(format!("libheif: {e}"))
}

fn primary(bytes: &[u8]) -> Result<(HeifContext, ImageHandle), PipelineError> {
    init();
    let context = HeifContext::read_from_bytes(bytes).map_err(corrupt)?;
    let handle = context.primary_image_handle().map_err(corrupt)?;
    Ok((context, handle))
}

/// Width and height of the primary image (rotations and mirrors of the
/// container applied, as decoding applies them), from the boxes alone.
pub(super) fn probe(bytes: &[u8], limits: &Limits) -> Result<(u32, u32), PipelineError> {
    let (_context, handle) = primary(bytes)?;
    let size = (handle.width(), handle.height());
    check_limits(size.0, size.1, limits)?;
    Ok(size)
}

/// Decode the primary image to RGB(A), 8 or 16 bits as stored, and what
/// the file says of its colours (an ICC profile, or nclx code points).
pub(super) fn decode(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(DynamicImage, Colour), PipelineError> {
    let (_context, handle) = primary(bytes)?;
    let (width, height) = (handle.width(), handle.height());
    check_limits(width, height, limits)?;
    let alpha = handle.has_alpha_channel();
    let deep = handle.luma_bits_per_pixel() > 8;
    let chroma = match (deep, alpha) {
        (false, false) => RgbChroma::Rgb,
        (false, true) => RgbChroma::Rgba,
        (true, false) => RgbChroma::HdrRgbLe,
        (true, true) => RgbChroma::HdrRgbaLe,
    };
    let colour = match handle.color_profile_raw() {
        Some(raw) if !raw.data.is_empty() => Colour::Icc(raw.data),
        _ => match handle.color_profile_nclx() {
            Some(nclx) => Colour::Cicp {
                primaries: nclx.color_primaries() as u8,
                transfer: nclx.transfer_characteristics() as u8,
            },
            None => Colour::Untagged,
        },
    };
    let image = init()
        .decode(&handle, ColorSpace::Rgb(chroma), None)
        .map_err(corrupt)?;
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| PipelineError::Corrupt("libheif gave no interleaved plane".into()))?;
    if (plane.width, plane.height) != (width, height) {
        return Err(PipelineError::Corrupt(format!(
            "libheif decoded {}x{}, the header says {width}x{height}",
            plane.width, plane.height
        )));
    }
    let channels = if alpha { 4 } else { 3 };
    let row = width as usize * channels;
    let image = if deep {
        let bits = u32::from(plane.bits_per_pixel.clamp(9, 16));
        let mut samples = Vec::with_capacity(row * height as usize);
        for line in plane.data.chunks(plane.stride).take(height as usize) {
            samples.extend(line[..row * 2].chunks_exact(2).map(|b| {
                // Widen to 16 bits: replicate the top bits into the bottom.
                let v = u32::from(u16::from_le_bytes([b[0], b[1]]));
                ((v << (16 - bits)) | (v >> (2 * bits - 16))) as u16
            }));
        }
        if alpha {
            ImageBuffer::from_raw(width, height, samples).map(DynamicImage::ImageRgba16)
        } else {
            ImageBuffer::from_raw(width, height, samples).map(DynamicImage::ImageRgb16)
        }
    } else {
        let mut samples = Vec::with_capacity(row * height as usize);
        for line in plane.data.chunks(plane.stride).take(height as usize) {
            samples.extend_from_slice(&line[..row]);
        }
        if alpha {
            ImageBuffer::from_raw(width, height, samples).map(DynamicImage::ImageRgba8)
        } else {
            ImageBuffer::from_raw(width, height, samples).map(DynamicImage::ImageRgb8)
        }
    };
    let image = image.ok_or_else(|| PipelineError::Corrupt("short libheif plane".into()))?;
    Ok((image, colour))
}
