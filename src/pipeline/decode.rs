//! Decoding: read the header, check the limits, then decode, at a reduced
//! scale where every output only needs a smaller image.
//!
//! JPEG goes through libjpeg-turbo, whose DCT scaling decodes at 1/8..8/8 of
//! the size for a fraction of the work (CMYK too, converted through its
//! profile); anything it refuses (a truncated file) falls back to the `image`
//! crate, as do PNG, WebP, GIF, TIFF and BMP. HEIF, AVIF, JPEG XL and SVG
//! are `formats`'. Every source is converted to sRGB (`colour`) before it
//! is brought to 8 bits.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::colour::{self, Colour};
use super::formats::{self, SourceFormat};
use super::guard;
use super::{Limits, PipelineError};

/// Most bytes the PNG decoder may allocate for itself: decompressed
/// metadata (ICC profile, text) and its row buffers, not the image (which
/// the limits on pixels bound). A real ICC profile is under 1 MB; a 1 MB
/// file whose iCCP chunk inflates to 1 GiB stops here.
pub const MAX_PNG_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// What the header says, before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub format: SourceFormat,
    /// As stored, before orientation.
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    /// libjpeg-turbo decodes it, so it can be shrunk on load.
    pub scalable: bool,
    /// Pixels the decoder holds besides the image: a GIF's first frame,
    /// when it is smaller than the logical screen.
    pub extra_pixels: u64,
    /// Frames in an animated GIF or WebP, from the container; 1 otherwise.
    pub frames: u32,
}

impl Probe {
    /// Width and height once the EXIF orientation is applied.
    pub fn upright(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Read the header and enforce the limits.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, PipelineError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(PipelineError::TooManyBytes {
            bytes: bytes.len() as u64,
            max_bytes: limits.max_bytes,
        });
    }
    if let Some(format) = formats::sniff(bytes) {
        return formats::probe(format, bytes, limits);
    }
    let (format, mut decoder) = open(bytes, limits)?;
    let format = SourceFormat::from_image(format).ok_or(PipelineError::UnsupportedImage)?;
    let (width, height) = decoder.dimensions();
    check_limits(width, height, limits)?;
    let mut probe = Probe {
        format,
        width,
        height,
        // A broken EXIF block is not worth failing the image for.
        orientation: decoder.orientation().unwrap_or(Orientation::NoTransforms),
        scalable: false,
        extra_pixels: 0,
        frames: super::animation::frame_count(bytes, format),
    };
    match format {
        SourceFormat::Jpeg => {
            guard::check_jpeg_scans(bytes).map_err(PipelineError::DecodeLimit)?;
            probe.scalable = turbo_colorspace(bytes).is_some();
        }
        SourceFormat::Gif => {
            let first = guard::check_gif_frames(bytes).map_err(PipelineError::DecodeLimit)?;
            if let Some(frame) = first.filter(|f| (f.width, f.height) != (width, height)) {
                probe.extra_pixels = u64::from(frame.width) * u64::from(frame.height);
            }
        }
        _ => {}
    }
    Ok(probe)
}

/// A decoder for `bytes`, its allocations bounded by `limits`.
pub(super) fn open<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(ImageFormat, Box<dyn ImageDecoder + 'a>), PipelineError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| PipelineError::UnsupportedImage)?;
    let format = reader.format().ok_or(PipelineError::UnsupportedImage)?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(if format == ImageFormat::Png {
        // The PNG decoder counts only its own buffers against this, and
        // reads every chunk up to the pixels when it is made: the limit
        // must be set before, here, not with `set_limits` after.
        MAX_PNG_METADATA_BYTES
    } else {
        // Room for the decoded pixels at 16 bits x 4 channels, plus the
        // decoder's own buffers.
        limits.max_pixels * 8 + 64 * 1024 * 1024
    });
    reader.limits(decoder_limits);
    let decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Unsupported(_) => PipelineError::UnsupportedImage,
        image::ImageError::Limits(e) => PipelineError::DecodeLimit(e.to_string()),
        e => PipelineError::Corrupt(e.to_string()),
    })?;
    Ok((format, Box::new(decoder)))
}

/// The colour space libjpeg-turbo would decode the JPEG to, if it can.
fn turbo_colorspace(bytes: &[u8]) -> Option<turbojpeg::PixelFormat> {
    let header = turbojpeg::Decompressor::new()
        .ok()?
        .read_header(bytes)
        .ok()?;
    match header.colorspace {
        turbojpeg::Colorspace::Gray => Some(turbojpeg::PixelFormat::GRAY),
        turbojpeg::Colorspace::YCbCr | turbojpeg::Colorspace::RGB => {
            Some(turbojpeg::PixelFormat::RGB)
        }
        turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK => {
            Some(turbojpeg::PixelFormat::CMYK)
        }
    }
}

pub(super) fn check_limits(width: u32, height: u32, limits: &Limits) -> Result<(), PipelineError> {
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
    Ok(())
}

/// Decode at `eighths`/8 of the full size (JPEG only) or at `size` (SVG;
/// other formats ignore both), convert to sRGB, apply the EXIF orientation,
/// and normalise to 8 bits per channel; `keep_native` also keeps the
/// unconverted pixels (for `icc=keep` outputs).
pub fn decode(
    bytes: &[u8],
    probe: &Probe,
    (eighths, size): (u8, (u32, u32)),
    limits: &Limits,
    keep_native: bool,
) -> Result<colour::Decoded, PipelineError> {
    let (image, colour) = match probe.format {
        SourceFormat::Jpeg => match decode_turbo(bytes, eighths, limits)? {
            Some(decoded) => decoded,
            // The `image` crate decodes a truncated JPEG without complaint
            // (grey below the cut): refuse one with no end-of-image marker.
            None if !has_jpeg_end(bytes) => {
                return Err(PipelineError::Corrupt(
                    "truncated JPEG: no end-of-image marker".into(),
                ));
            }
            None => decode_generic(bytes, limits)?,
        },
        SourceFormat::Heif | SourceFormat::Avif | SourceFormat::JpegXl | SourceFormat::Svg => {
            formats::decode(bytes, probe.format, size, limits)?
        }
        _ => decode_generic(bytes, limits)?,
    };
    Ok(colour::finish(
        image,
        colour,
        probe.orientation,
        keep_native,
        to_8_bit,
    ))
}

/// libjpeg-turbo, and the ICC profile. CMYK and YCCK come out as CMYK and
/// are converted to sRGB here, through their profile. A truncated or
/// damaged file is an error, not a partly grey picture (sharp's default too).
fn decode_turbo(
    bytes: &[u8],
    eighths: u8,
    limits: &Limits,
) -> Result<Option<(DynamicImage, Colour)>, PipelineError> {
    let tj = |e: turbojpeg::Error| PipelineError::Corrupt(e.to_string());
    let mut decompressor = turbojpeg::Decompressor::new().map_err(tj)?;
    // `probe` counted the scans already; this keeps libjpeg-turbo to the
    // same bound whoever calls it.
    decompressor
        .set_scan_limit(guard::MAX_JPEG_SCANS as u32)
        .map_err(tj)?;
    if eighths < 8 {
        decompressor
            .set_scaling_factor(turbojpeg::ScalingFactor::new(usize::from(eighths), 8))
            .map_err(tj)?;
    }
    let header = decompressor.read_header(bytes).map_err(tj)?;
    let format = match header.colorspace {
        turbojpeg::Colorspace::Gray => turbojpeg::PixelFormat::GRAY,
        turbojpeg::Colorspace::YCbCr | turbojpeg::Colorspace::RGB => turbojpeg::PixelFormat::RGB,
        turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK => turbojpeg::PixelFormat::CMYK,
    };
    let icc = open(bytes, limits)
        .ok()
        .and_then(|(_, mut decoder)| decoder.icc_profile().ok().flatten());
    let scaled = header.scaled(decompressor.scaling_factor());
    let pitch = scaled.width * format.size();
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; pitch * scaled.height],
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    decompressor
        .decompress(bytes, image.as_deref_mut())
        .map_err(tj)?;
    // The header's sizes passed the limits, so they fit in u32.
    let (w, h) = (scaled.width as u32, scaled.height as u32);
    let pixels = image.pixels;
    let image = match format {
        turbojpeg::PixelFormat::GRAY => {
            image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        }
        turbojpeg::PixelFormat::CMYK if pixels.len() == w as usize * h as usize * 4 => {
            // Converted here: the profile describes ink, not the RGB that follows.
            let inverted = formats::adobe_inverted(bytes);
            let rgb = colour::cmyk_to_srgb(w, h, pixels, inverted, icc.as_deref());
            let colour = icc.map_or(Colour::Untagged, Colour::Converted);
            return Ok(Some((DynamicImage::ImageRgb8(rgb), colour)));
        }
        _ => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    };
    let colour = icc.map_or(Colour::Untagged, Colour::Icc);
    image
        .map(|image| Some((image, colour)))
        .ok_or_else(|| PipelineError::Corrupt("decoded buffer of the wrong size".into()))
}

fn decode_generic(bytes: &[u8], limits: &Limits) -> Result<(DynamicImage, Colour), PipelineError> {
    let (_, mut decoder) = open(bytes, limits)?;
    let colour = decoder
        .icc_profile()
        .ok()
        .flatten()
        .map_or(Colour::Untagged, Colour::Icc);
    // Animated GIF and WebP: only the first frame is decoded.
    let image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(e) => PipelineError::DecodeLimit(e.to_string()),
        e => PipelineError::Corrupt(e.to_string()),
    })?;
    Ok((image, colour))
}

/// Every operation works on 8-bit gray, gray+alpha, RGB or RGBA.
pub(super) fn to_8_bit(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => image,
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(image.to_luma8()),
        DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLumaA8(image.to_luma_alpha8()),
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

/// An EOI marker (`FF D9`) near the end, allowing for trailing padding.
pub(super) fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xff, 0xd9])
}
