//! The image core: decode (with limits) → operations → encode.
//!
//! Architecture invariant: this module is pure and synchronous. It takes
//! bytes and a [`Recipe`] and returns bytes; it never touches tokio, AWS,
//! axum or the file system, so the CLI, the worker and the benchmarks all run
//! exactly the same code. Its stages are `tracing` spans: a facade that
//! records nothing unless the caller installed a subscriber.

mod decode;
mod encode;
mod fast;
mod guard;
mod ops;
mod plan;
mod watermark;

use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat};

use crate::recipe::{Format, Op, Output, Recipe};

/// Checked before any pixel is decoded, on the source and (by [`plan`]) on
/// every image a job makes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 50 * 1024 * 1024,
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 100_000_000,
        }
    }
}

/// Why an image could not be processed. Every variant is permanent: the
/// same input fails the same way, so it is reported, never retried.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the file is not an image in a supported format (JPEG, PNG, WebP, GIF)")]
    UnsupportedImage,
    #[error(
        "the image is {width}x{height}; the limit is {max_width}x{max_height} and {max_pixels} pixels"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
    },
    #[error(
        "output {output:?} would make a {width}x{height} image at step {step} ({op}); the limit is {max_width}x{max_height} and {max_pixels} pixels"
    )]
    StepTooLarge {
        output: String,
        /// Counted from 1, as written in the recipe.
        step: usize,
        op: &'static str,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
    },
    #[error("the file is {bytes} bytes; the limit is {max_bytes}")]
    TooManyBytes { bytes: u64, max_bytes: u64 },
    /// A bound on the decoders' own work: metadata size, JPEG scans, GIF frames.
    #[error("the image exceeds a decoding limit: {0}")]
    DecodeLimit(String),
    #[error("the recipe needs {work} units of work on this image; the limit is {max}")]
    TooExpensive { work: u64, max: u64 },
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
    #[error("output {output:?} could not be encoded: {reason}")]
    Encode { output: String, reason: String },
    #[error("{op} failed: {reason}")]
    Operation { op: &'static str, reason: String },
    #[error("the crop {crop} lies outside the {width}x{height} image")]
    CropOutside {
        crop: String,
        width: u32,
        height: u32,
    },
}

impl PipelineError {
    /// Stable, client-facing error code (documented in the README).
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::UnsupportedImage => "unsupported_image",
            PipelineError::TooManyPixels { .. }
            | PipelineError::StepTooLarge { .. }
            | PipelineError::TooManyBytes { .. }
            | PipelineError::DecodeLimit(_) => "image_too_large",
            PipelineError::TooExpensive { .. } => "recipe_too_expensive",
            PipelineError::Corrupt(_) => "corrupt_image",
            PipelineError::Encode { .. } => "encode_failed",
            PipelineError::CropOutside { .. } => "crop_outside_image",
            PipelineError::Operation { .. } => "operation_failed",
        }
    }
}

/// A decoded source, oriented upright.
pub struct Source {
    pub image: DynamicImage,
    pub format: ImageFormat,
    /// Upright size of the full image; `image` may be smaller when it was
    /// decoded at a reduced scale for outputs that all start by shrinking.
    pub full_size: (u32, u32),
}

/// One encoded output.
#[derive(Debug, Clone)]
pub struct Rendition {
    pub name: String,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

use decode::check_limits;
pub use decode::{MAX_PNG_METADATA_BYTES, Probe};
pub use guard::MAX_JPEG_SCANS;
pub use plan::{OutputPlan, Plan, WEBP_MAX_DIMENSION, plan};

/// Read the header (format, size, orientation) and check the limits, without
/// decoding pixels.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, PipelineError> {
    decode::probe(bytes, limits)
}

/// Decode `bytes` at full size, refusing anything over `limits` before
/// pixels are allocated, and apply the EXIF orientation.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Source, PipelineError> {
    let probe = decode::probe(bytes, limits)?;
    decode_at(bytes, &probe, 8, limits)
}

/// Decode at `eighths`/8 of the full size (a [`Plan`]'s choice: as small as
/// the largest output allows).
fn decode_at(
    bytes: &[u8],
    probe: &Probe,
    eighths: u8,
    limits: &Limits,
) -> Result<Source, PipelineError> {
    let full_size = probe.upright();
    let image = decode::decode(bytes, probe, eighths, limits)?;
    Ok(Source {
        image,
        format: probe.format,
        full_size,
    })
}

/// The DCT scale (in eighths) to decode at for `output`, libvips's
/// shrink-on-load rule: 1/2, 1/4 or 1/8 when the output's first resize
/// shrinks by at least 4, 8 or 16 times, so Lanczos always does a final
/// step of at least 2x; 8 (full size) otherwise.
fn eighths_needed(full: (u32, u32), output: &Output) -> u8 {
    let Some(Op::Resize(resize)) = output.ops.first() else {
        return 8;
    };
    let (tw, th) = ops::target_size(full, resize);
    let shrink = (f64::from(full.0) / f64::from(tw)).min(f64::from(full.1) / f64::from(th));
    match shrink {
        s if s >= 16.0 => 1,
        s if s >= 8.0 => 2,
        s if s >= 4.0 => 4,
        _ => 8,
    }
}

/// How long each stage of [`run_timed`] took, summed over the outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimes {
    pub decode: Duration,
    /// The operations of every output.
    pub process: Duration,
    pub encode: Duration,
}

/// Make one output from a decoded source.
pub fn render(source: &Source, output: &Output) -> Result<Rendition, PipelineError> {
    render_timed(source, output, &mut StageTimes::default())
}

fn render_timed(
    source: &Source,
    output: &Output,
    times: &mut StageTimes,
) -> Result<Rendition, PipelineError> {
    let image = std::borrow::Cow::Borrowed(&source.image);
    render_image(image, source.format, source.full_size, output, times)
}

/// Make `output` from `image` (decoded from a `format` file whose upright
/// size is `full_size`); an owned image is changed in place where a step
/// allows it.
fn render_image(
    mut image: std::borrow::Cow<'_, DynamicImage>,
    source_format: ImageFormat,
    full_size: (u32, u32),
    output: &Output,
    times: &mut StageTimes,
) -> Result<Rendition, PipelineError> {
    let _output = tracing::info_span!("render", output = %output.name).entered();
    let started = Instant::now();
    for (i, op) in output.ops.iter().enumerate() {
        let _op = tracing::info_span!("operation", otel.name = op.name(), step = %op).entered();
        // The first step sees the full-size geometry even if decoding was scaled.
        let nominal = if i == 0 {
            full_size
        } else {
            (image.width(), image.height())
        };
        image = std::borrow::Cow::Owned(fast::apply(image, nominal, op)?);
    }
    times.process += started.elapsed();

    let format = output
        .format
        .unwrap_or_else(|| default_format(source_format));
    let span = tracing::info_span!(
        "encode",
        format = format.name(),
        width = image.width(),
        height = image.height(),
        bytes = tracing::field::Empty
    );
    let started = Instant::now();
    let bytes = span
        .in_scope(|| encode::encode(&image, format))
        .map_err(|reason| PipelineError::Encode {
            output: output.name.clone(),
            reason,
        })?;
    times.encode += started.elapsed();
    span.record("bytes", bytes.len());
    Ok(Rendition {
        name: output.name.clone(),
        format,
        width: image.width(),
        height: image.height(),
        bytes,
    })
}

/// Decode once, then make every output of the recipe.
pub fn run(
    bytes: &[u8],
    recipe: &Recipe,
    limits: &Limits,
) -> Result<Vec<Rendition>, PipelineError> {
    run_timed(bytes, recipe, limits).map(|(renditions, _)| renditions)
}

/// [`run`], and how long decoding, the operations and encoding took. Each
/// stage is also a `tracing` span (`decode`, `render` → `operation`s →
/// `encode`), for whoever records them.
pub fn run_timed(
    bytes: &[u8],
    recipe: &Recipe,
    limits: &Limits,
) -> Result<(Vec<Rendition>, StageTimes), PipelineError> {
    let mut times = StageTimes::default();
    let span = tracing::info_span!(
        "decode",
        bytes = bytes.len(),
        format = tracing::field::Empty,
        width = tracing::field::Empty,
        height = tracing::field::Empty
    );
    let started = Instant::now();
    let (probe, decoded) = span.in_scope(|| {
        let probe = decode::probe(bytes, limits)?;
        // Every size and the work are known before a pixel is decoded.
        let plan = plan(&probe, recipe, limits)?;
        let decoded = match fast::decode(bytes, &probe, &plan, recipe) {
            Some(fast) => Decoded::Fast(fast?),
            None => Decoded::Full(decode_at(bytes, &probe, plan.eighths, limits)?),
        };
        Ok::<_, PipelineError>((probe, decoded))
    })?;
    times.decode = started.elapsed();
    span.record("format", probe.format.extensions_str()[0]);
    span.record("width", probe.upright().0);
    span.record("height", probe.upright().1);
    drop(span);
    let renditions = match decoded {
        // A fast path's decode made the single output's source.
        Decoded::Fast(fast) => vec![fast.render(probe.format, &recipe.outputs[0], &mut times)?],
        // One output: it may change the decoded image in place.
        Decoded::Full(source) if recipe.outputs.len() == 1 => {
            let image = std::borrow::Cow::Owned(source.image);
            let output = &recipe.outputs[0];
            vec![render_image(
                image,
                source.format,
                source.full_size,
                output,
                &mut times,
            )?]
        }
        Decoded::Full(source) => recipe
            .outputs
            .iter()
            .map(|output| render_timed(&source, output, &mut times))
            .collect::<Result<_, _>>()?,
    };
    Ok((renditions, times))
}

/// A fast path's decode ([`fast::decode`]) or the general one.
enum Decoded {
    Fast(fast::Decoded),
    Full(Source),
}

/// Keep the source's format where we can write it; otherwise JPEG.
fn default_format(source: ImageFormat) -> Format {
    match source {
        ImageFormat::Png => Format::Png,
        ImageFormat::WebP => Format::WebP {
            quality: crate::recipe::WebPQuality::Lossy(crate::recipe::DEFAULT_WEBP_QUALITY),
        },
        ImageFormat::Gif => Format::Gif,
        _ => Format::JPEG,
    }
}

#[cfg(test)]
mod tests;
