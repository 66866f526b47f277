//! The operations behind [`super::render`]. Each takes an 8-bit gray,
//! gray+alpha, RGB or RGBA image and returns one of those.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GrayAlphaImage, GrayImage};
use libblur::{
    BlurImage, BlurImageMut, ConvolutionMode, EdgeMode, EdgeMode2D, FastBlurChannels,
    GaussianBlurParams, ThreadingPolicy,
};

use super::{PipelineError, smart, watermark};
use crate::recipe::{Anchor, Crop, Fit, FlipAxis, Gravity, Op, Resize, Rotation};

/// `nominal` is the size geometry is computed from: the image's own size,
/// except for a first resize after a reduced-scale decode.
pub(super) fn apply(
    image: &DynamicImage,
    nominal: (u32, u32),
    op: &Op,
) -> Result<DynamicImage, PipelineError> {
    Ok(match op {
        Op::Resize(r) => resize(image, nominal, r)?,
        Op::Crop(c) => crop(image, c)?,
        Op::Rotate(Rotation::R90) => image.rotate90(),
        Op::Rotate(Rotation::R180) => image.rotate180(),
        Op::Rotate(Rotation::R270) => image.rotate270(),
        Op::Flip(FlipAxis::Horizontal) => image.fliph(),
        Op::Flip(FlipAxis::Vertical) => image.flipv(),
        Op::Watermark(w) => watermark::draw(image, w),
        Op::Grayscale => grayscale(image),
        Op::Sepia => sepia(image),
        Op::Blur { sigma } => blur(image, *sigma)?,
        Op::Sharpen { sigma, amount } => sharpen(image, *sigma, *amount)?,
    })
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

/// The size a resize produces, after any cover crop.
pub(crate) fn resized_size(nominal: (u32, u32), r: &Resize) -> (u32, u32) {
    let (w, h) = target_size(nominal, r);
    match (r.fit, r.width, r.height) {
        (Fit::Cover, Some(bw), Some(bh)) => (bw.min(w), bh.min(h)),
        _ => (w, h),
    }
}

/// Lanczos3 through `fast_image_resize` (SIMD, alpha premultiplied). A
/// cover crop is taken from the source, so only the kept pixels are resampled.
fn resize(
    image: &DynamicImage,
    nominal: (u32, u32),
    r: &Resize,
) -> Result<DynamicImage, PipelineError> {
    let (w, h) = target_size(nominal, r);
    let (out_w, out_h) = resized_size(nominal, r);
    if (out_w, out_h) == (image.width(), image.height()) && (w, h) == (out_w, out_h) {
        return Ok(image.clone());
    }
    // The part of the source that ends up in the output, in source pixels.
    let (kx, ky) = (
        f64::from(image.width()) / f64::from(w),
        f64::from(image.height()) / f64::from(h),
    );
    let (left, top) = match r.gravity {
        Gravity::Anchor(anchor) => {
            let (gx, gy) = anchor.grid();
            (
                Anchor::offset(gx, w, out_w, 0) as f64 * kx,
                Anchor::offset(gy, h, out_h, 0) as f64 * ky,
            )
        }
        looking => smart::place(
            image,
            looking,
            (f64::from(out_w) * kx, f64::from(out_h) * ky),
        ),
    };
    // Rounding must not push the box a hair past the image's edge.
    let crop_w = (f64::from(out_w) * kx).min(f64::from(image.width()) - left);
    let crop_h = (f64::from(out_h) * ky).min(f64::from(image.height()) - top);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(left, top, crop_w, crop_h);
    let mut out = DynamicImage::new(out_w, out_h, image.color());
    Resizer::new()
        .resize(image, &mut out, &options)
        .map_err(|e| PipelineError::Operation {
            op: "resize",
            reason: e.to_string(),
        })?;
    Ok(out)
}

/// The size of the part of `c` that lies inside a `(w, h)` image; an error
/// if none does.
pub(crate) fn cropped_size((w, h): (u32, u32), c: &Crop) -> Result<(u32, u32), PipelineError> {
    if c.x >= w || c.y >= h {
        return Err(PipelineError::CropOutside {
            crop: format!("{}x{}+{}+{}", c.width, c.height, c.x, c.y),
            width: w,
            height: h,
        });
    }
    Ok((c.width.min(w - c.x), c.height.min(h - c.y)))
}

fn crop(image: &DynamicImage, c: &Crop) -> Result<DynamicImage, PipelineError> {
    let (w, h) = cropped_size((image.width(), image.height()), c)?;
    let (x, y) = match c.gravity {
        None => (c.x, c.y),
        Some(gravity) => {
            let (x, y) = smart::place(image, gravity, (f64::from(w), f64::from(h)));
            (x.round() as u32, y.round() as u32)
        }
    };
    Ok(image.crop_imm(x, y, w, h))
}

/// Rec. 709 luma of the sRGB values: `Y = 0.2126 R + 0.7152 G + 0.0722 B`,
/// in 8.8 fixed point (54, 183, 19 / 256). Alpha is kept.
pub(crate) fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((54 * u32::from(r) + 183 * u32::from(g) + 19 * u32::from(b) + 128) >> 8) as u8
}

fn grayscale(image: &DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) => image.clone(),
        DynamicImage::ImageRgba8(rgba) => {
            let mut out = GrayAlphaImage::new(rgba.width(), rgba.height());
            for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
                o.0 = [luma(p[0], p[1], p[2]), p[3]];
            }
            DynamicImage::ImageLumaA8(out)
        }
        other => {
            let rgb = other.to_rgb8();
            let mut out = GrayImage::new(rgb.width(), rgb.height());
            for (o, p) in out.as_mut().iter_mut().zip(rgb.as_raw().chunks_exact(3)) {
                *o = luma(p[0], p[1], p[2]);
            }
            DynamicImage::ImageLuma8(out)
        }
    }
}

/// The classic sepia matrix, rows R', G', B' over columns R, G, B.
pub const SEPIA: [[f32; 3]; 3] = [
    [0.393, 0.769, 0.189],
    [0.349, 0.686, 0.168],
    [0.272, 0.534, 0.131],
];

/// [`SEPIA`] in 10-bit fixed point.
fn sepia_rows() -> [[u32; 3]; 3] {
    SEPIA.map(|row| row.map(|c| (c * 1024.0).round() as u32))
}

/// [`SEPIA`] applied to one pixel, clamped to 255.
fn sepia_pixel(rows: &[[u32; 3]; 3], p: [u8; 3]) -> [u8; 3] {
    rows.map(|row| {
        let v = row[0] * u32::from(p[0]) + row[1] * u32::from(p[1]) + row[2] * u32::from(p[2]);
        ((v + 512) >> 10).min(255) as u8
    })
}

fn sepia(image: &DynamicImage) -> DynamicImage {
    let rows = sepia_rows();
    if image.color().has_alpha() {
        let mut rgba = image.to_rgba8();
        for p in rgba.pixels_mut() {
            let [r, g, b] = sepia_pixel(&rows, [p[0], p[1], p[2]]);
            p.0 = [r, g, b, p[3]];
        }
        DynamicImage::ImageRgba8(rgba)
    } else {
        let mut rgb = image.to_rgb8();
        for p in rgb.as_mut().chunks_exact_mut(3) {
            let out = sepia_pixel(&rows, [p[0], p[1], p[2]]);
            p.copy_from_slice(&out);
        }
        DynamicImage::ImageRgb8(rgb)
    }
}

/// A Gaussian blur of the raw channels (`libblur`, one thread: the worker
/// runs one job per core).
fn blur(image: &DynamicImage, sigma: f32) -> Result<DynamicImage, PipelineError> {
    let (w, h) = (image.width(), image.height());
    let source = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => {
            std::borrow::Cow::Borrowed(image)
        }
        other => std::borrow::Cow::Owned(DynamicImage::ImageRgba8(other.to_rgba8())),
    };
    let channels = match *source {
        DynamicImage::ImageLuma8(_) => FastBlurChannels::Plane,
        DynamicImage::ImageRgb8(_) => FastBlurChannels::Channels3,
        _ => FastBlurChannels::Channels4,
    };
    let mut out = DynamicImage::new(w, h, source.color());
    libblur::gaussian_blur(
        &BlurImage::borrow(source.as_bytes(), w, h, channels),
        &mut BlurImageMut::borrow(raw_mut(&mut out), w, h, channels),
        GaussianBlurParams::new_from_sigma(f64::from(sigma)),
        EdgeMode2D::new(EdgeMode::Clamp),
        ThreadingPolicy::Single,
        ConvolutionMode::FixedPoint,
    )
    .map_err(|e| PipelineError::Operation {
        op: "blur",
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// The pixel bytes of the gray, RGB or RGBA images the operations produce.
fn raw_mut(image: &mut DynamicImage) -> &mut [u8] {
    match image {
        DynamicImage::ImageLuma8(g) => g.as_mut(),
        DynamicImage::ImageLumaA8(g) => g.as_mut(),
        DynamicImage::ImageRgb8(rgb) => rgb.as_mut(),
        DynamicImage::ImageRgba8(rgba) => rgba.as_mut(),
        _ => unreachable!("operations work on 8-bit images only"),
    }
}

/// Unsharp mask: `out = in + amount * (in - blur(in, sigma))`, alpha untouched.
fn sharpen(image: &DynamicImage, sigma: f32, amount: f32) -> Result<DynamicImage, PipelineError> {
    let blurred = blur(image, sigma)?;
    let mut out = blurred;
    let alpha_every = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => None,
        _ => Some(4),
    };
    let source = match alpha_every {
        None => std::borrow::Cow::Borrowed(image.as_bytes()),
        Some(_) => std::borrow::Cow::Owned(image.to_rgba8().into_raw()),
    };
    let k = (amount * 256.0).round() as i32;
    for (i, (o, &s)) in raw_mut(&mut out).iter_mut().zip(source.iter()).enumerate() {
        if alpha_every.is_some_and(|n| i % n == 3) {
            *o = s;
            continue;
        }
        let (s32, b) = (i32::from(s), i32::from(*o));
        *o = (s32 + ((k * (s32 - b) + 128) >> 8)).clamp(0, 255) as u8;
    }
    Ok(out)
}
