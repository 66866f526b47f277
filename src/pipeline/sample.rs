//! The small copy that crops that look and the analysis work on.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbaImage};

/// A copy of `image` at most `side` pixels on its longer side (never
/// larger), as 8-bit RGBA; a box filter, so one pass over the source.
pub(crate) fn shrink(image: &DynamicImage, side: u32) -> RgbaImage {
    let (iw, ih) = (image.width().max(1), image.height().max(1));
    let scale = (f64::from(side) / f64::from(iw.max(ih))).min(1.0);
    let w = ((f64::from(iw) * scale).round() as u32).max(1);
    let h = ((f64::from(ih) * scale).round() as u32).max(1);
    if (w, h) == (iw, ih) {
        return image.to_rgba8();
    }
    let mut out = DynamicImage::new(w, h, image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
    match Resizer::new().resize(image, &mut out, &options) {
        Ok(()) => out.to_rgba8(),
        // A pixel type the resizer lacks: the slow, general path.
        Err(_) => image
            .resize_exact(w, h, image::imageops::FilterType::Triangle)
            .to_rgba8(),
    }
}
