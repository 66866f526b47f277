//! Encoders. Nothing of the source's metadata (EXIF, ICC, XMP) is copied:
//! outputs are stripped by construction, except the ICC profile an
//! `icc=keep` output passes in (`embed`).

use std::borrow::Cow;
use std::time::Instant;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder, Rgb, RgbImage};

use super::{PipelineError, Rendition, StageTimes, embed};

use crate::recipe::{Format, Output, WebPQuality};

/// Encode `image`; `icc`, when given, is embedded (JPEG, PNG, WebP).
pub(super) fn encode(
    image: &DynamicImage,
    format: Format,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    match format {
        // A lossless output never gets here: `pipeline::lossless` makes it.
        Format::Jpeg {
            quality,
            background,
            ..
        } => {
            let out = jpeg(&flatten(image, background.0), quality)?;
            match icc {
                Some(icc) => embed::jpeg(out, icc),
                None => Ok(out),
            }
        }
        Format::Png => {
            let mut out = Vec::new();
            // Fast: 25x quicker than the default level for ~10% more bytes.
            let mut encoder =
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
            if let Some(icc) = icc {
                encoder
                    .set_icc_profile(icc.to_vec())
                    .map_err(|e| e.to_string())?;
            }
            image
                .write_with_encoder(encoder)
                .map_err(|e| e.to_string())?;
            Ok(out)
        }
        Format::WebP { quality } => {
            let (w, h) = (image.width(), image.height());
            let memory = if image.color().has_alpha() {
                let rgba = image.to_rgba8();
                let encoder = webp::Encoder::from_rgba(rgba.as_raw(), w, h);
                webp_encode(&encoder, quality)
            } else {
                let rgb = image.to_rgb8();
                let encoder = webp::Encoder::from_rgb(rgb.as_raw(), w, h);
                webp_encode(&encoder, quality)
            }?;
            match icc {
                Some(icc) => embed::webp(&memory, w, h, icc),
                None => Ok(memory.to_vec()),
            }
        }
        Format::Avif { quality, speed } => super::avif::encode(image, quality, speed),
        Format::Gif => {
            let mut out = Vec::new();
            {
                let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
                encoder
                    .encode_frame(image::Frame::new(image.to_rgba8()))
                    .map_err(|e| e.to_string())?;
            }
            Ok(out)
        }
    }
}

/// `encode_simple`, not `encode`: the latter unwraps libwebp's errors (a
/// 16384-pixel side is `VP8_ENC_ERROR_BAD_DIMENSION`) into a panic.
fn webp_encode(
    encoder: &webp::Encoder<'_>,
    quality: WebPQuality,
) -> Result<webp::WebPMemory, String> {
    match quality {
        // The same settings as `encode` and `encode_lossless`.
        WebPQuality::Lossy(q) => encoder.encode_simple(false, f32::from(q)),
        WebPQuality::Lossless => encoder.encode_simple(true, 75.0),
    }
    .map_err(|e| format!("libwebp: {e:?}"))
}

/// libjpeg-turbo, 4:2:0 chroma (as libvips and most encoders default to).
fn jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, String> {
    let (pixels, format, subsamp) = match image {
        DynamicImage::ImageLuma8(g) => (
            g.as_raw(),
            turbojpeg::PixelFormat::GRAY,
            turbojpeg::Subsamp::Gray,
        ),
        DynamicImage::ImageRgb8(rgb) => (
            rgb.as_raw(),
            turbojpeg::PixelFormat::RGB,
            turbojpeg::Subsamp::Sub2x2,
        ),
        _ => return Err("JPEG needs gray or RGB pixels".into()),
    };
    let width = image.width() as usize;
    let jpeg_image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width,
        pitch: width * format.size(),
        height: image.height() as usize,
        format,
    };
    let mut compressor = turbojpeg::Compressor::new().map_err(|e| e.to_string())?;
    compressor
        .set_quality(i32::from(quality))
        .map_err(|e| e.to_string())?;
    compressor.set_subsamp(subsamp).map_err(|e| e.to_string())?;
    compressor
        .compress_to_vec(jpeg_image)
        .map_err(|e| e.to_string())
}

/// JPEG has no alpha channel: composite onto `background`, as a browser
/// shows the image on a page of that colour, rather than dropping alpha and
/// exposing whatever colour the transparent pixels happen to hold.
fn flatten(image: &DynamicImage, background: [u8; 3]) -> Cow<'_, DynamicImage> {
    match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => return Cow::Borrowed(image),
        _ if !image.color().has_alpha() => {
            return Cow::Owned(DynamicImage::ImageRgb8(image.to_rgb8()));
        }
        _ => {}
    }
    let rgba = image.to_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(p[3]);
        let blend =
            |c: u8, bg: u8| ((u16::from(c) * a + u16::from(bg) * (255 - a) + 127) / 255) as u8;
        *o = Rgb([
            blend(p[0], background[0]),
            blend(p[1], background[1]),
            blend(p[2], background[2]),
        ]);
    }
    Cow::Owned(DynamicImage::ImageRgb8(rgb))
}

/// Run `encode` for `output` under an `encode` span, time it and make the
/// [`Rendition`] of a `size` image (the RGB path's and the planar path's).
pub(super) fn encoded(
    output: &Output,
    format: Format,
    (width, height): (u32, u32),
    ladder: Option<String>,
    times: &mut StageTimes,
    encode: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<Rendition, PipelineError> {
    let span = tracing::info_span!(
        "encode",
        format = format.name(),
        width,
        height,
        bytes = tracing::field::Empty
    );
    let started = Instant::now();
    let bytes = span
        .in_scope(encode)
        .map_err(|reason| PipelineError::Encode {
            output: output.name.clone(),
            reason,
        })?;
    times.encode += started.elapsed();
    span.record("bytes", bytes.len());
    Ok(Rendition {
        name: output.name.clone(),
        format,
        width,
        height,
        bytes,
        ladder,
    })
}
