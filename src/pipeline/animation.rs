//! Animated GIF and WebP: every frame through an output's steps, delays and
//! loop count kept, written as an animated GIF or WebP.
//!
//! The header walk ([`frame_count`]) counts frames before anything is
//! decoded, so the plan can refuse frames x canvas over the pixel limit: a
//! tiny file of thousands of 1x1 frames on a large canvas decodes, frame by
//! frame, to a full canvas each (the `image` crate composites every frame).
//! Every step applies to each frame alone (a blur or a watermark per frame
//! is what a viewer sees on every frame anyway).

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::webp::WebPDecoder;
use image::metadata::LoopCount;
use image::{AnimationDecoder, Delay, DynamicImage, Frame, RgbaImage};

use super::formats::SourceFormat;
use super::{PipelineError, Probe, Rendition, StageTimes, guard, ops};
use crate::recipe::{Format, Frames, Output, Rung, WebPQuality};

/// Most frames an animation may have to be kept animated.
pub const MAX_FRAMES: u32 = 1_000;

/// A decoded animation: full-canvas RGBA frames and their delays.
pub(super) struct Animation {
    pub frames: Vec<(RgbaImage, u32)>,
    /// Times to play; 0 is forever (WebP's and GIF's NETSCAPE convention).
    pub loops: u16,
}

/// Frames in a GIF or WebP, from the container alone (1 for anything else).
pub fn frame_count(bytes: &[u8], format: SourceFormat) -> u32 {
    match format {
        SourceFormat::Gif => guard::gif_frame_count(bytes),
        SourceFormat::WebP => webp_chunks(bytes)
            .filter(|(id, _, _)| id == b"ANMF")
            .count()
            .max(1) as u32,
        _ => 1,
    }
    .max(1)
}

/// Does this rendition keep the source's animation?
pub(super) fn animates(probe: &Probe, output: &Output, format: Format) -> bool {
    probe.frames > 1
        && output.frames == Frames::All
        && matches!(format, Format::Gif | Format::WebP { .. })
}

/// The RIFF chunks of a WebP file: fourcc, payload offset, payload length.
fn webp_chunks(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], usize, usize)> + '_ {
    let mut at = 12;
    std::iter::from_fn(move || {
        let head = bytes.get(at..at + 8)?;
        let id: [u8; 4] = head[..4].try_into().ok()?;
        let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
        let start = at + 8;
        at = start.checked_add(len)?.checked_add(len & 1)?;
        Some((id, start, len))
    })
}

/// Refuse an animation whose frames, each a full canvas once decoded,
/// would together break the pixel limit, before any is decoded.
pub(super) fn check_frames(probe: &Probe, max_pixels: u64) -> Result<(), PipelineError> {
    let canvas = u64::from(probe.width) * u64::from(probe.height);
    let total = canvas.saturating_mul(u64::from(probe.frames));
    if probe.frames > MAX_FRAMES || total > max_pixels {
        return Err(PipelineError::DecodeLimit(format!(
            "the animation has {} frames of {}x{} ({total} pixels in all); the limits are {MAX_FRAMES} frames and {max_pixels} pixels",
            probe.frames, probe.width, probe.height
        )));
    }
    Ok(())
}

/// Decode every frame (the plan has checked frames x canvas).
pub(super) fn decode(bytes: &[u8], probe: &Probe) -> Result<Animation, PipelineError> {
    let corrupt = |e: image::ImageError| PipelineError::Corrupt(e.to_string());
    let (frames, loops) = match probe.format {
        SourceFormat::Gif => {
            let decoder = GifDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            let loops = match decoder.loop_count() {
                LoopCount::Infinite => 0,
                LoopCount::Finite(n) => u16::try_from(n.get()).unwrap_or(u16::MAX),
            };
            (decoder.into_frames(), loops)
        }
        _ => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            // Browsers show uncovered canvas as transparent, whatever ANIM says.
            decoder
                .set_background_color(image::Rgba([0, 0, 0, 0]))
                .map_err(corrupt)?;
            (decoder.into_frames(), webp_loops(bytes))
        }
    };
    let frames = frames
        .take(probe.frames as usize)
        .map(|frame| {
            let frame = frame.map_err(corrupt)?;
            let (n, d) = frame.delay().numer_denom_ms();
            Ok((frame.into_buffer(), n / d.max(1)))
        })
        .collect::<Result<Vec<_>, PipelineError>>()?;
    Ok(Animation { frames, loops })
}

impl Animation {
    /// The first frame as the source of the outputs that do not animate.
    pub(super) fn first(&self, probe: Probe) -> Result<super::Source, PipelineError> {
        let (frame, _) = self
            .frames
            .first()
            .ok_or_else(|| PipelineError::Corrupt("an animation without frames".into()))?;
        Ok(super::Source {
            image: DynamicImage::ImageRgba8(frame.clone()),
            native: None,
            colour: Default::default(),
            format: probe.format,
            full_size: frame.dimensions(),
        })
    }
}

/// The ANIM chunk's loop count (0, forever, when absent).
fn webp_loops(bytes: &[u8]) -> u16 {
    webp_chunks(bytes)
        .find(|(id, _, len)| id == b"ANIM" && *len >= 6)
        .and_then(|(_, at, _)| bytes.get(at + 4..at + 6))
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

/// Every frame through the rung's steps, then one animated file.
pub(super) fn render(
    animation: &Animation,
    rung: &Rung,
    format: Format,
    times: &mut StageTimes,
) -> Result<Rendition, PipelineError> {
    let output = &rung.output;
    let _span =
        tracing::info_span!("render", output = %output.name, frames = animation.frames.len())
            .entered();
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(animation.frames.len());
    for (frame, delay) in &animation.frames {
        let mut image = DynamicImage::ImageRgba8(frame.clone());
        for op in &output.ops {
            let nominal = (image.width(), image.height());
            image = ops::apply(&image, nominal, op)?;
        }
        out.push((image.into_rgba8(), *delay));
    }
    times.process += started.elapsed();
    let started = std::time::Instant::now();
    let (width, height) = out.first().map_or((0, 0), |(f, _)| f.dimensions());
    let encoded = match format {
        Format::WebP { quality } => encode_webp(&out, animation.loops, quality),
        _ => encode_gif(out, animation.loops),
    }
    .map_err(|reason| PipelineError::Encode {
        output: output.name.clone(),
        reason,
    })?;
    times.encode += started.elapsed();
    Ok(Rendition {
        name: output.name.clone(),
        format,
        width,
        height,
        bytes: encoded,
        ladder: rung.ladder.clone(),
    })
}

fn encode_gif(frames: Vec<(RgbaImage, u32)>, loops: u16) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        let repeat = match loops {
            0 => Repeat::Infinite,
            n => Repeat::Finite(n),
        };
        encoder.set_repeat(repeat).map_err(|e| e.to_string())?;
        for (image, delay) in frames {
            let delay = Delay::from_numer_denom_ms(delay, 1);
            encoder
                .encode_frame(Frame::from_parts(image, 0, 0, delay))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(bytes)
}

fn encode_webp(
    frames: &[(RgbaImage, u32)],
    loops: u16,
    quality: WebPQuality,
) -> Result<Vec<u8>, String> {
    let (width, height) = frames.first().map_or((1, 1), |(f, _)| f.dimensions());
    let mut config = webp::WebPConfig::new().map_err(|()| "libwebp config".to_owned())?;
    match quality {
        WebPQuality::Lossy(q) => config.quality = f32::from(q),
        WebPQuality::Lossless => config.lossless = 1,
    }
    let mut encoder = webp::AnimEncoder::new(width, height, &config);
    encoder.set_loop_count(i32::from(loops));
    let mut timestamp = 0i32;
    for (image, delay) in frames {
        encoder.add_frame(webp::AnimFrame::from_rgba(
            image.as_raw(),
            width,
            height,
            timestamp,
        ));
        timestamp = timestamp.saturating_add(i32::try_from(*delay).unwrap_or(i32::MAX));
    }
    let mut bytes = encoder
        .try_encode()
        .map_err(|e| format!("libwebp: {e:?}"))?
        .to_vec();
    // The crate ends the animation at timestamp 0, which leaves libwebp no
    // duration for the last frame: write it into the last ANMF chunk.
    let last = frames.last().map_or(0, |(_, d)| *d).min(0xff_ffff);
    if let Some((_, at, len)) = webp_chunks(&bytes)
        .filter(|(id, _, _)| id == b"ANMF")
        .last()
        && len >= 16
    {
        bytes[at + 12..at + 15].copy_from_slice(&last.to_le_bytes()[..3]);
    }
    Ok(bytes)
}

#[cfg(test)]
#[path = "animation_tests.rs"]
mod tests;
