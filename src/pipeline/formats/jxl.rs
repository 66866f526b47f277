//! JPEG XL through `jxl-oxide` (pure Rust, single-threaded here). Only the
//! first keyframe of an animation is decoded; the header is read on its
//! own first, for the limits; the decoder's allocations are tracked and
//! capped.

use image::{DynamicImage, ImageBuffer};
use jxl_oxide::{AllocTracker, InitializeResult, JxlImage};

use super::super::colour::Colour;
use super::super::{Limits, PipelineError, check_limits};

/// A bare codestream (`FF 0A`) or the ISO-BMFF container (`JXL ` box).
pub(super) fn is_jxl(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xff, 0x0a])
        || bytes.starts_with(&[
            0, 0, 0, 0x0c, b'J', b'X', b'L', b' ', 0x0d, 0x0a, 0x87, 0x0a,
        ])
}

fn corrupt(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(format!("jxl-oxide: {e}"))
}

/// Width and height with the orientation applied, from the header alone.
pub(super) fn probe(bytes: &[u8], limits: &Limits) -> Result<(u32, u32), PipelineError> {
    let mut uninit = JxlImage::builder().build_uninit();
    uninit.feed_bytes(bytes).map_err(corrupt)?;
    let image = match uninit.try_init().map_err(corrupt)? {
        InitializeResult::Initialized(image) => image,
        InitializeResult::NeedMoreData(_) => return Err(corrupt("truncated header")),
    };
    let size = (image.width(), image.height());
    check_limits(size.0, size.1, limits)?;
    Ok(size)
}

/// Decode the first keyframe, oriented, at 16 bits, with the ICC profile
/// that describes the rendered samples.
pub(super) fn decode(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(DynamicImage, Colour), PipelineError> {
    let (width, height) = probe(bytes, limits)?;
    // Its f32 planes (up to four), and as much again for its own buffers.
    let budget = limits.max_pixels.saturating_mul(32) + 64 * 1024 * 1024;
    let tracker = AllocTracker::with_limit(usize::try_from(budget).unwrap_or(usize::MAX));
    let image = JxlImage::builder()
        .alloc_tracker(tracker)
        .read(bytes)
        .map_err(corrupt)?;
    if image.pixel_format().has_black() {
        return Err(PipelineError::UnsupportedImage);
    }
    let icc = image.rendered_icc();
    let render = image.render_frame(0).map_err(corrupt)?;
    let mut stream = render.stream();
    let (w, h, channels) = (stream.width(), stream.height(), stream.channels());
    if (w, h) != (width, height) {
        return Err(corrupt(format!(
            "rendered {w}x{h}, the header says {width}x{height}"
        )));
    }
    let mut samples = vec![0u16; w as usize * h as usize * channels as usize];
    stream.write_to_buffer(&mut samples);
    let pixels = match channels {
        1 => ImageBuffer::from_raw(w, h, samples).map(DynamicImage::ImageLuma16),
        2 => ImageBuffer::from_raw(w, h, samples).map(DynamicImage::ImageLumaA16),
        3 => ImageBuffer::from_raw(w, h, samples).map(DynamicImage::ImageRgb16),
        4 => ImageBuffer::from_raw(w, h, samples).map(DynamicImage::ImageRgba16),
        _ => return Err(PipelineError::UnsupportedImage),
    }
    .ok_or_else(|| corrupt("short render"))?;
    Ok((pixels, Colour::Icc(icc)))
}
