//! The image core: decode (with limits) → operations → encode.
//!
//! Architecture invariant: this module is pure and synchronous. It takes
//! bytes and a [`Recipe`] and returns bytes; it never touches tokio, AWS,
//! axum or the file system, so the CLI, the worker and the benchmarks all run
//! exactly the same code.

mod ops;

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::recipe::{DEFAULT_JPEG_QUALITY, Format, Output, Recipe};

/// Checked before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    #[error("the file is {bytes} bytes; the limit is {max_bytes}")]
    TooManyBytes { bytes: u64, max_bytes: u64 },
    #[error("the image could not be decoded: {0}")]
    Corrupt(#[source] image::ImageError),
    #[error("output {output:?} could not be encoded: {source}")]
    Encode {
        output: String,
        #[source]
        source: image::ImageError,
    },
}

impl PipelineError {
    /// Stable, client-facing error code (documented in the README).
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::UnsupportedImage => "unsupported_image",
            PipelineError::TooManyPixels { .. } | PipelineError::TooManyBytes { .. } => {
                "image_too_large"
            }
            PipelineError::Corrupt(_) => "corrupt_image",
            PipelineError::Encode { .. } => "encode_failed",
        }
    }
}

/// A decoded source, oriented upright.
pub struct Source {
    pub image: DynamicImage,
    pub format: ImageFormat,
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

/// Decode `bytes`, refusing anything over `limits` before pixels are
/// allocated, and apply the EXIF orientation.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Source, PipelineError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(PipelineError::TooManyBytes {
            bytes: bytes.len() as u64,
            max_bytes: limits.max_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| PipelineError::UnsupportedImage)?;
    let format = reader.format().ok_or(PipelineError::UnsupportedImage)?;
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Unsupported(_) => PipelineError::UnsupportedImage,
        e => PipelineError::Corrupt(e),
    })?;

    let (width, height) = decoder.dimensions();
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(PipelineError::TooManyPixels {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
            max_pixels: limits.max_pixels,
        });
    }
    let mut decoder_limits = image::Limits::default();
    // Room for the decoded pixels at 16 bits x 4 channels, plus the decoder's own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels * 8 + 64 * 1024 * 1024);
    decoder
        .set_limits(decoder_limits)
        .map_err(PipelineError::Corrupt)?;

    let orientation = decoder.orientation().map_err(PipelineError::Corrupt)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(PipelineError::Corrupt)?;
    image.apply_orientation(orientation);
    Ok(Source { image, format })
}

/// Make one output from a decoded source.
pub fn render(source: &Source, output: &Output) -> Result<Rendition, PipelineError> {
    let mut image = std::borrow::Cow::Borrowed(&source.image);
    for op in &output.ops {
        image = std::borrow::Cow::Owned(ops::apply(&image, op));
    }
    let format = output
        .format
        .unwrap_or_else(|| default_format(source.format));
    let bytes = ops::encode(&image, format).map_err(|source| PipelineError::Encode {
        output: output.name.clone(),
        source,
    })?;
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
    let source = decode(bytes, limits)?;
    recipe
        .outputs
        .iter()
        .map(|output| render(&source, output))
        .collect()
}

/// Keep the source's format where we can write it; otherwise JPEG.
fn default_format(source: ImageFormat) -> Format {
    match source {
        ImageFormat::Png => Format::Png,
        _ => Format::Jpeg {
            quality: DEFAULT_JPEG_QUALITY,
        },
    }
}

#[cfg(test)]
mod tests;
