//! The image core: decode (with limits) → operations → encode.
//!
//! Architecture invariant: this module is pure and synchronous. It takes
//! bytes and a [`Recipe`](crate::recipe::Recipe) and returns bytes; it never touches tokio, AWS,
//! axum or the file system, so the CLI, the worker and the benchmarks all run
//! exactly the same code. Its stages are `tracing` spans: a facade that
//! records nothing unless the caller installed a subscriber.

mod analysis;
mod animation;
mod avif;
mod colour;
mod decode;
mod embed;
mod encode;
mod face;
mod fast;
pub mod formats;
mod guard;
mod lossless;
mod ops;
mod plan;
mod run;
mod sample;
mod smart;
mod watermark;

use std::time::{Duration, Instant};

use image::DynamicImage;

pub use colour::Colour;
pub use formats::SourceFormat;

use crate::recipe::{Format, Icc, Op, Output};

/// Checked before any pixel is decoded, on the source and (by [`plan`]) on
/// every image a job makes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    /// Threads one job may use (at least 1): a worker with idle job slots
    /// lends them to the jobs it runs.
    pub threads: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 50 * 1024 * 1024,
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 100_000_000,
            threads: 1,
        }
    }
}

/// Why an image could not be processed. Every variant is permanent: the
/// same input fails the same way, so it is reported, never retried.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "the file is not an image in a supported format (JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF, AVIF, JPEG XL, SVG)"
    )]
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
    #[error("output {output:?} cannot be lossless: {reason}")]
    LosslessUnavailable { output: String, reason: String },
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
            PipelineError::LosslessUnavailable { .. } => "lossless_unavailable",
            PipelineError::Operation { .. } => "operation_failed",
        }
    }
}

/// A decoded source, oriented upright.
pub struct Source {
    /// sRGB, 8 bits per channel.
    pub image: DynamicImage,
    /// The source's own colours (8 bits), kept only for `icc=keep` outputs
    /// when the source has an ICC profile.
    pub native: Option<DynamicImage>,
    /// What the source said of its colours (its ICC profile, if any).
    pub colour: Colour,
    pub format: SourceFormat,
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
    /// The ladder output this rendition is a width of (for `srcset`).
    pub ladder: Option<String>,
}

pub use analysis::{Analysis, blurhash, dominant, icc_description};
pub use animation::{MAX_FRAMES, frame_count};
use decode::check_limits;
pub use decode::{MAX_PNG_METADATA_BYTES, Probe};
pub use face::{FaceBox, detect as detect_faces, load_model as load_face_model};
pub use guard::MAX_JPEG_SCANS;
pub use plan::{OutputPlan, Plan, WEBP_MAX_DIMENSION, plan};
pub use run::{run, run_analysed, run_timed};

/// Initialise the decoders that touch the file system when they start
/// (libheif looks for plugins), so that a sandboxed process can do it
/// before it gives up `open`. Idempotent; decoding calls it anyway.
pub fn prepare() {
    formats::heif::init();
}

/// Read the header (format, size, orientation) and check the limits, without
/// decoding pixels.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, PipelineError> {
    decode::probe(bytes, limits)
}

/// Decode `bytes` at full size, refusing anything over `limits` before
/// pixels are allocated, and apply the EXIF orientation.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Source, PipelineError> {
    let probe = decode::probe(bytes, limits)?;
    decode_at(bytes, &probe, (8, probe.upright()), limits, false)
}

/// Decode at `eighths`/8 of the full size or, for a vector, at `size` (a
/// [`Plan`]'s choice: as small as the largest output allows); `keep_native`
/// for recipes with `icc=keep` outputs.
fn decode_at(
    bytes: &[u8],
    probe: &Probe,
    scale: (u8, (u32, u32)),
    limits: &Limits,
    keep_native: bool,
) -> Result<Source, PipelineError> {
    let full_size = probe.upright();
    let decoded = decode::decode(bytes, probe, scale, limits, keep_native)?;
    Ok(Source {
        image: decoded.image,
        native: decoded.native,
        colour: decoded.colour,
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
    render_timed(source, output, None, &mut StageTimes::default())
}

fn render_timed(
    source: &Source,
    output: &Output,
    ladder: Option<String>,
    times: &mut StageTimes,
) -> Result<Rendition, PipelineError> {
    // `icc=keep`: the unconverted pixels and their profile, when there are any.
    let (start, icc) = match (&source.native, output.icc) {
        (Some(native), Icc::Keep) => (native, source.colour.icc()),
        _ => (&source.image, None),
    };
    let image = std::borrow::Cow::Borrowed(start);
    let made = Made {
        format: source.format,
        full_size: source.full_size,
        icc,
        ladder,
    };
    render_image(image, made, output, times)
}

/// Where an image to render came from: the source's format and upright
/// size, the profile to embed (`icc=keep`), the ladder it is a width of.
struct Made<'a> {
    format: SourceFormat,
    full_size: (u32, u32),
    icc: Option<&'a [u8]>,
    ladder: Option<String>,
}

/// Make `output` from `image`; an owned image is changed in place where a
/// step allows it.
fn render_image(
    mut image: std::borrow::Cow<'_, DynamicImage>,
    made: Made<'_>,
    output: &Output,
    times: &mut StageTimes,
) -> Result<Rendition, PipelineError> {
    let Made {
        format: source_format,
        full_size,
        icc,
        ladder,
    } = made;
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
    let size = (image.width(), image.height());
    encode::encoded(output, format, size, ladder, times, || {
        encode::encode(&image, format, icc)
    })
}

/// Keep the source's format where we can write it; otherwise JPEG.
/// Vectors and lossless sources (SVG, PNG, TIFF, BMP) default to PNG.
fn default_format(source: SourceFormat) -> Format {
    match source {
        SourceFormat::Png | SourceFormat::Svg | SourceFormat::Tiff | SourceFormat::Bmp => {
            Format::Png
        }
        SourceFormat::WebP => Format::WebP {
            quality: crate::recipe::WebPQuality::Lossy(crate::recipe::DEFAULT_WEBP_QUALITY),
        },
        SourceFormat::Gif => Format::Gif,
        _ => Format::JPEG,
    }
}

#[cfg(test)]
mod test_images;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod look_tests;
