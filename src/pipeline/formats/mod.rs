//! Source formats beyond what the `image` crate decodes for us, and the
//! one name every format goes by in the pipeline.
//!
//! The `image` crate still reads JPEG, PNG, WebP, GIF, TIFF and BMP (see
//! `decode`); HEIF/HEIC and AVIF go through libheif (`heif`), JPEG XL
//! through `jxl-oxide` (`jxl`), SVG through `resvg` (`svg`). Each reads
//! its header first, so the limits are checked before a pixel is decoded.

pub(super) mod heif;
pub(super) mod jxl;
pub(super) mod svg;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat};

use super::colour::Colour;
use super::{Limits, PipelineError, Probe};

/// The format of a source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    WebP,
    Gif,
    Tiff,
    Bmp,
    /// HEIF with HEVC pictures (`.heic`, every iPhone since 2017).
    Heif,
    Avif,
    JpegXl,
    Svg,
}

impl SourceFormat {
    /// Short lower-case name (`jpeg`, `heif`, `svg`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::WebP => "webp",
            SourceFormat::Gif => "gif",
            SourceFormat::Tiff => "tiff",
            SourceFormat::Bmp => "bmp",
            SourceFormat::Heif => "heif",
            SourceFormat::Avif => "avif",
            SourceFormat::JpegXl => "jxl",
            SourceFormat::Svg => "svg",
        }
    }

    /// The `image` crate's name for it, when that crate decodes it.
    pub(super) fn from_image(format: ImageFormat) -> Option<SourceFormat> {
        Some(match format {
            ImageFormat::Jpeg => SourceFormat::Jpeg,
            ImageFormat::Png => SourceFormat::Png,
            ImageFormat::WebP => SourceFormat::WebP,
            ImageFormat::Gif => SourceFormat::Gif,
            ImageFormat::Tiff => SourceFormat::Tiff,
            ImageFormat::Bmp => SourceFormat::Bmp,
            _ => return None,
        })
    }

    /// A vector format: rasterised at the size the outputs need.
    pub fn is_vector(self) -> bool {
        self == SourceFormat::Svg
    }
}

/// Formats recognised by their first bytes that the `image` crate does
/// not decode (here): `None` for everything else.
pub(super) fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
    if jxl::is_jxl(bytes) {
        return Some(SourceFormat::JpegXl);
    }
    if let Some(format) = heif::sniff(bytes) {
        return Some(format);
    }
    svg::is_svg(bytes).then_some(SourceFormat::Svg)
}

/// Read the header of a format [`sniff`] recognised and check the limits.
pub(super) fn probe(
    format: SourceFormat,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Probe, PipelineError> {
    let (width, height) = match format {
        SourceFormat::Heif | SourceFormat::Avif => heif::probe(bytes, limits)?,
        SourceFormat::JpegXl => jxl::probe(bytes, limits)?,
        SourceFormat::Svg => svg::probe(bytes, limits)?,
        _ => return Err(PipelineError::UnsupportedImage),
    };
    Ok(Probe {
        format,
        width,
        height,
        // Each of these decoders applies its own orientation.
        orientation: Orientation::NoTransforms,
        scalable: false,
        extra_pixels: 0,
        frames: 1,
    })
}

/// Decode a format [`sniff`] recognised; `size` is what SVG is rasterised at.
pub(super) fn decode(
    bytes: &[u8],
    format: SourceFormat,
    size: (u32, u32),
    limits: &Limits,
) -> Result<(DynamicImage, Colour), PipelineError> {
    match format {
        SourceFormat::Heif | SourceFormat::Avif => heif::decode(bytes, limits),
        SourceFormat::JpegXl => jxl::decode(bytes, limits),
        SourceFormat::Svg => Ok((svg::decode(bytes, size)?, Colour::Untagged)),
        _ => Err(PipelineError::UnsupportedImage),
    }
}

/// A JPEG with Adobe's APP14 marker, whose CMYK samples are stored
/// inverted (255 = no ink), as Photoshop, libjpeg and Pillow write them.
pub(super) fn adobe_inverted(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xff {
        let marker = bytes[at + 1];
        // Start of scan: the markers are over.
        if marker == 0xda {
            break;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if marker == 0xee && bytes[at + 4..].starts_with(b"Adobe") {
            return true;
        }
        at += 2 + len;
    }
    false
}
