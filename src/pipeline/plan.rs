//! The cost model: every image a job will hold, and the work it will do,
//! from the header and the recipe alone, before any pixel is decoded. A
//! job that would break a limit at any step fails here, in microseconds.

use super::ops::{cropped_size, resized_size};
use super::{
    Limits, PipelineError, Probe, animation, check_limits, default_format, eighths_needed,
};
use crate::recipe::{self, Format, Op, Recipe, Rotation};

/// libwebp's largest width or height (`WEBP_MAX_DIMENSION`).
pub const WEBP_MAX_DIMENSION: u32 = 16_383;

/// What a job will hold and do. Sizes are in pixels, whatever their channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Shrink-on-load scale in eighths (8 is full size).
    pub eighths: u8,
    /// The size the source is decoded at, upright.
    pub decoded: (u32, u32),
    pub outputs: Vec<OutputPlan>,
    /// The most pixels the job holds at once, decoder buffers and copies
    /// included: what it should reserve from a pixel budget.
    pub peak_pixels: u64,
    /// Work units, in [`recipe::MAX_WORK`]'s terms.
    pub work: u64,
    /// Frames decoded: all of an animation some output keeps animated, else 1.
    pub frames: u32,
}

/// One output's share of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    pub name: String,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// The most pixels its steps hold at once, besides the source.
    pub peak_pixels: u64,
}

/// Compute every output's and every intermediate image's size, and refuse
/// the job if any breaks `limits` (`image_too_large`), an encoder could not
/// write its output (`encode_failed`), a crop misses the image, or the
/// whole would be more than [`recipe::MAX_WORK`] (`recipe_too_expensive`).
pub fn plan(probe: &Probe, recipe: &Recipe, limits: &Limits) -> Result<Plan, PipelineError> {
    let full = probe.upright();
    check_limits(full.0, full.1, limits)?;
    let rungs = recipe.rungs(full.0);
    let format_of = |o: &recipe::Output| o.format.unwrap_or_else(|| default_format(probe.format));
    let animated = rungs
        .iter()
        .any(|r| animation::animates(probe, &r.output, format_of(&r.output)));
    let frames = if animated { probe.frames } else { 1 };
    if animated {
        animation::check_frames(probe, limits.max_pixels)?;
    }
    let eighths = if probe.scalable {
        rungs
            .iter()
            .map(|r| eighths_needed(full, &r.output))
            .max()
            .unwrap_or(8)
    } else {
        8
    };
    // libjpeg-turbo rounds scaled sizes up.
    let scaled = |side: u32| (u64::from(side) * u64::from(eighths)).div_ceil(8) as u32;
    let decoded = if probe.format.is_vector() {
        super::formats::svg::raster_size(full, recipe, limits)
    } else {
        (scaled(full.0), scaled(full.1))
    };
    // An animation's frames are all held, each a full canvas.
    let source = pixels(decoded) * u64::from(frames);
    // While decoding: the decoder's buffer and one conversion (to 8 bits)
    // or orientation copy, plus a GIF frame decoded on its own; for
    // `icc=keep` outputs, the unconverted pixels as well.
    let keeps = recipe.outputs.iter().any(|o| o.icc == recipe::Icc::Keep);
    let mut peak = 2 * source + probe.extra_pixels + if keeps { source } else { 0 };
    let mut work = 0u64;
    let mut outputs = Vec::with_capacity(rungs.len());
    for rung in &rungs {
        let output = &rung.output;
        let format = format_of(output);
        // An animated output does its steps and encoding once per frame.
        let times = if animation::animates(probe, output, format) {
            u64::from(frames)
        } else {
            1
        };
        let before = work;
        let mut size = decoded;
        let mut output_peak = 0u64;
        for (step, op) in output.ops.iter().enumerate() {
            // The first step sees the full-size geometry even if decoding was scaled.
            let nominal = if step == 0 { full } else { size };
            let next = match op {
                Op::Resize(r) => resized_size(nominal, r),
                Op::Crop(c) => cropped_size(size, c)?,
                Op::Rotate(Rotation::R90 | Rotation::R270) => (size.1, size.0),
                _ => size,
            };
            check_step(next, limits, &output.name, step, op)?;
            // The first step reads the source, already counted.
            let input = if step == 0 { 0 } else { pixels(size) };
            // Colour ops and blurs may convert their input to RGBA first.
            let copies = match op {
                Op::Resize(_) | Op::Crop(_) | Op::Rotate(_) | Op::Flip(_) => 1,
                _ => 2,
            };
            output_peak = output_peak.max(input + copies * pixels(next));
            work = work.saturating_add(recipe::op_work(op, pixels(size), pixels(next)));
            size = next;
        }
        check_encodable(size, format, &output.name)?;
        // Encoders take a converted (RGB, RGBA, flattened) copy.
        let last = if output.ops.is_empty() {
            0
        } else {
            pixels(size)
        };
        output_peak = output_peak.max(last + pixels(size));
        work = work.saturating_add(recipe::format_work(Some(format), pixels(size)));
        work = before.saturating_add((work - before).saturating_mul(times));
        // Every output frame is kept until the animation is written.
        output_peak = output_peak.saturating_add(pixels(size) * (times - 1));
        peak = peak.max(source + output_peak);
        outputs.push(OutputPlan {
            name: output.name.clone(),
            format,
            width: size.0,
            height: size.1,
            peak_pixels: output_peak,
        });
    }
    // Outputs made side by side (see `run`) hold their peaks at once.
    let threads = (limits.threads.max(1) as usize).min(outputs.len());
    if threads > 1 {
        let mut peaks: Vec<u64> = outputs.iter().map(|o| o.peak_pixels).collect();
        peaks.sort_unstable_by(|a, b| b.cmp(a));
        let together = peaks[..threads]
            .iter()
            .fold(0u64, |sum, p| sum.saturating_add(*p));
        peak = peak.max(source.saturating_add(together));
    }
    if work > recipe::MAX_WORK {
        return Err(PipelineError::TooExpensive {
            work,
            max: recipe::MAX_WORK,
        });
    }
    Ok(Plan {
        eighths,
        decoded,
        outputs,
        peak_pixels: peak,
        work,
        frames,
    })
}

fn pixels((w, h): (u32, u32)) -> u64 {
    u64::from(w) * u64::from(h)
}

/// Every intermediate image obeys the same limits as the source.
fn check_step(
    (width, height): (u32, u32),
    limits: &Limits,
    output: &str,
    step: usize,
    op: &Op,
) -> Result<(), PipelineError> {
    check_limits(width, height, limits).map_err(|_| PipelineError::StepTooLarge {
        output: output.to_owned(),
        step: step + 1,
        op: op.name(),
        width,
        height,
        max_width: limits.max_width,
        max_height: limits.max_height,
        max_pixels: limits.max_pixels,
    })
}

/// What the encoders cannot write, refused before the work is done (libwebp
/// would fail, and the `webp` crate panics on its error).
fn check_encodable((w, h): (u32, u32), format: Format, output: &str) -> Result<(), PipelineError> {
    let max = match format {
        Format::WebP { .. } => WEBP_MAX_DIMENSION,
        // JPEG's header holds 65535, libjpeg-turbo writes up to 65500.
        Format::Jpeg { .. } => 65_500,
        Format::Gif => u32::from(u16::MAX),
        Format::Png => i32::MAX as u32,
        // AV1's largest frame (rav1e refuses more).
        Format::Avif { .. } => 65_536,
    };
    if w > max || h > max {
        return Err(PipelineError::Encode {
            output: output.to_owned(),
            reason: format!(
                "{} is at most {max}x{max} pixels, not {w}x{h}",
                format.name()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
