//! Operations on an image the pipeline owns: flips, sepia and watermarks
//! change its pixels where they are instead of copying 36 MB first, and
//! quarter turns copy in cache-sized tiles instead of pixel by pixel.

use image::{DynamicImage, GrayImage};

use super::super::{ops, watermark};
use crate::recipe::{FlipAxis, Op, Rotation};

/// `op` on `image`, in place where it can be; `None` hands the image back
/// for the general [`ops::apply`].
pub(super) fn apply(image: DynamicImage, op: &Op) -> Result<DynamicImage, DynamicImage> {
    let mut image = image;
    let channels = image.color().channel_count() as usize;
    let eight_bit = matches!(
        image,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
    );
    if !eight_bit {
        return Err(image);
    }
    let (w, h) = (image.width() as usize, image.height() as usize);
    match op {
        Op::Flip(FlipAxis::Horizontal) => flip_h(raw_mut(&mut image), w, channels),
        Op::Flip(FlipAxis::Vertical) => flip_v(raw_mut(&mut image), w * channels, h),
        Op::Rotate(Rotation::R180) => {
            let samples = raw_mut(&mut image);
            samples.reverse();
            // Reversing the bytes reversed each pixel's channels too.
            samples.chunks_exact_mut(channels).for_each(<[u8]>::reverse);
        }
        Op::Rotate(r) => return Ok(rotate(&image, *r == Rotation::R90)),
        Op::Sepia if channels >= 3 => sepia(raw_mut(&mut image), channels),
        Op::Watermark(mark) => watermark::draw_in_place(&mut image, mark),
        Op::Grayscale => return grayscale(image),
        _ => return Err(image),
    }
    Ok(image)
}

fn raw_mut(image: &mut DynamicImage) -> &mut [u8] {
    match image {
        DynamicImage::ImageLuma8(i) => i.as_mut(),
        DynamicImage::ImageLumaA8(i) => i.as_mut(),
        DynamicImage::ImageRgb8(i) => i.as_mut(),
        DynamicImage::ImageRgba8(i) => i.as_mut(),
        _ => unreachable!("apply checked for 8-bit images"),
    }
}

fn flip_h(samples: &mut [u8], w: usize, channels: usize) {
    for row in samples.chunks_exact_mut(w * channels) {
        row.reverse();
        row.chunks_exact_mut(channels).for_each(<[u8]>::reverse);
    }
}

fn flip_v(samples: &mut [u8], stride: usize, h: usize) {
    for y in 0..h / 2 {
        let (top, bottom) = samples.split_at_mut((h - 1 - y) * stride);
        top[y * stride..(y + 1) * stride].swap_with_slice(&mut bottom[..stride]);
    }
}

fn rotate(image: &DynamicImage, clockwise: bool) -> DynamicImage {
    let (w, h) = (image.width(), image.height());
    let src = image.as_bytes();
    let mut out = DynamicImage::new(h, w, image.color());
    let dst = raw_mut(&mut out);
    let (w, h) = (w as usize, h as usize);
    match image.color().channel_count() {
        1 => rotate_tiled::<1>(src, w, h, dst, clockwise),
        2 => rotate_tiled::<2>(src, w, h, dst, clockwise),
        3 => rotate_tiled::<3>(src, w, h, dst, clockwise),
        _ => rotate_tiled::<4>(src, w, h, dst, clockwise),
    }
    out
}

/// A quarter turn of `C`-sample pixels in 32x32 tiles, so the rows read
/// and the rows written both stay in cache. `dst` is `h` wide and `w`
/// high: clockwise, source `(x, y)` lands at `(h - 1 - y, x)`;
/// anticlockwise, at `(y, w - 1 - x)`.
pub(super) fn rotate_tiled<const C: usize>(
    src: &[u8],
    w: usize,
    h: usize,
    dst: &mut [u8],
    clockwise: bool,
) {
    const TILE: usize = 32;
    let (src, _) = src.as_chunks::<C>();
    let (dst, _) = dst.as_chunks_mut::<C>();
    for ty in (0..h).step_by(TILE) {
        for tx in (0..w).step_by(TILE) {
            for y in ty..(ty + TILE).min(h) {
                let row = &src[y * w + tx..y * w + (tx + TILE).min(w)];
                for (x, &pixel) in (tx..).zip(row) {
                    let (dx, dy) = if clockwise {
                        (h - 1 - y, x)
                    } else {
                        (y, w - 1 - x)
                    };
                    dst[dy * h + dx] = pixel;
                }
            }
        }
    }
}

/// [`ops::SEPIA`] in 10-bit fixed point, as `ops::sepia` applies it (the
/// same integers, so the same pixels), alpha kept.
fn sepia(samples: &mut [u8], channels: usize) {
    let m = ops::SEPIA.map(|row| row.map(|c| (c * 1024.0).round() as u32));
    for p in samples.chunks_exact_mut(channels) {
        let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
        for (o, row) in p.iter_mut().zip(&m) {
            *o = ((row[0] * r + row[1] * g + row[2] * b + 512) >> 10).min(255) as u8;
        }
    }
}

/// [`ops::luma`] of each pixel without copying the RGB image first.
fn grayscale(image: DynamicImage) -> Result<DynamicImage, DynamicImage> {
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => {
            let mut out = GrayImage::new(rgb.width(), rgb.height());
            for (o, p) in out.iter_mut().zip(rgb.as_raw().chunks_exact(3)) {
                *o = ops::luma(p[0], p[1], p[2]);
            }
            DynamicImage::ImageLuma8(out)
        }
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) => image,
        other => return Err(other),
    })
}
