//! The operations and encoders behind [`super::render`].

use image::imageops::FilterType;
use image::{DynamicImage, ImageError, Rgb, RgbImage};

use crate::recipe::{Fit, Format, Op, Resize};

pub(super) fn apply(image: &DynamicImage, op: &Op) -> DynamicImage {
    match op {
        Op::Resize(r) => resize(image, r),
    }
}

/// The size a resize produces, before any cover crop. Pure arithmetic, so
/// the aspect-ratio rules can be tested without pixels.
pub(crate) fn target_size(src: (u32, u32), r: &Resize) -> (u32, u32) {
    let (sw, sh) = (f64::from(src.0), f64::from(src.1));
    let sx = r.width.map(|w| f64::from(w) / sw);
    let sy = r.height.map(|h| f64::from(h) / sh);
    let limit = |s: f64| if r.upscale { s } else { s.min(1.0) };
    let scaled = |s: f64| {
        let s = limit(s);
        (
            ((sw * s).round() as u32).max(1),
            ((sh * s).round() as u32).max(1),
        )
    };
    match (r.fit, sx, sy) {
        (Fit::Fill, Some(_), Some(_)) => {
            if r.upscale {
                (r.width.unwrap_or(src.0), r.height.unwrap_or(src.1))
            } else {
                (
                    r.width.map_or(src.0, |w| w.min(src.0)),
                    r.height.map_or(src.1, |h| h.min(src.1)),
                )
            }
        }
        (Fit::Cover, Some(x), Some(y)) => scaled(x.max(y)),
        (_, Some(x), Some(y)) => scaled(x.min(y)),
        (_, Some(s), None) | (_, None, Some(s)) => scaled(s),
        (_, None, None) => src,
    }
}

fn resize(image: &DynamicImage, r: &Resize) -> DynamicImage {
    let (w, h) = target_size((image.width(), image.height()), r);
    let resized = if (w, h) == (image.width(), image.height()) {
        image.clone()
    } else {
        image.resize_exact(w, h, FilterType::Lanczos3)
    };
    match (r.fit, r.width, r.height) {
        (Fit::Cover, Some(bw), Some(bh)) if w > bw || h > bh => {
            let (cw, ch) = (bw.min(w), bh.min(h));
            resized.crop_imm((w - cw) / 2, (h - ch) / 2, cw, ch)
        }
        _ => resized,
    }
}

pub(super) fn encode(image: &DynamicImage, format: Format) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    match format {
        Format::Jpeg { quality } => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
            let rgb = flatten_on_white(image);
            rgb.write_with_encoder(encoder)?;
        }
        Format::Png => {
            image.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))?;
        }
    }
    Ok(out)
}

/// JPEG has no alpha channel: composite transparent pixels onto white, as
/// browsers show them, rather than dropping alpha and exposing whatever
/// colour the transparent pixels happen to hold.
fn flatten_on_white(image: &DynamicImage) -> DynamicImage {
    if !image.color().has_alpha() {
        return DynamicImage::ImageRgb8(image.to_rgb8());
    }
    let rgba = image.to_rgba8();
    let rgb = RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    });
    DynamicImage::ImageRgb8(rgb)
}
