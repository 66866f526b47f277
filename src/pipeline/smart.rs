//! Crops that look: where `gravity=smart` and `gravity=face` put the window
//! a cover resize or a sized crop keeps.
//!
//! `smart` follows libvips's `smartcrop` attention strategy (itself after
//! smartcrop.js): on a copy shrunk to at most [`SMART_SIDE`] pixels a side,
//! each pixel scores its edges (Laplacian of luma), how close it is to a
//! skin tone and how saturated it is; the map is blurred (a Gaussian whose
//! sigma is a quarter of the window's shorter side) and the window is
//! centred on its maximum, ties going to the point nearest the centre, so
//! a flat image crops like `center`. Summing the map over each window
//! instead (tried first) follows the bulk of a textured subject, not its
//! peak: on chelsea.png it slid left to the cat's fur and cut an eye off.
//! The work is one pass over the input (the shrink) plus a bounded amount.

use image::{DynamicImage, Pixel, RgbaImage};

use super::face;
use super::sample::shrink;
use crate::recipe::{Anchor, Gravity, SMART_SIDE};

/// The blur's sigma, as a fraction of the window's shorter side (0.15
/// cut the cat's eye off in the tests, 0.2 to 0.3 kept it).
const BLUR_FRACTION: f64 = 0.25;

/// Where the top-left corner of a `(w, h)` window goes in `image` (in its
/// pixels), for any gravity. `w` and `h` are at most the image's size.
pub(super) fn place(image: &DynamicImage, gravity: Gravity, (w, h): (f64, f64)) -> (f64, f64) {
    let (iw, ih) = (f64::from(image.width()), f64::from(image.height()));
    let clamp = |x: f64, room: f64| x.clamp(0.0, room.max(0.0));
    match gravity {
        Gravity::Anchor(anchor) => anchored(anchor, (iw, ih), (w, h)),
        Gravity::Smart => {
            let (x, y) = smart(image, (w, h));
            (clamp(x, iw - w), clamp(y, ih - h))
        }
        Gravity::Face => {
            let _span = tracing::info_span!("face", faces = tracing::field::Empty).entered();
            let faces = face::detect(image);
            tracing::Span::current().record("faces", faces.len());
            let (x, y) = match face::centre(&faces, (w, h)) {
                Some((cx, cy)) => (cx - w / 2.0, cy - h / 2.0),
                None => smart(image, (w, h)),
            };
            (clamp(x, iw - w), clamp(y, ih - h))
        }
    }
}

fn anchored(anchor: Anchor, (iw, ih): (f64, f64), (w, h): (f64, f64)) -> (f64, f64) {
    let (gx, gy) = anchor.grid();
    let at = |place: u32, outer: f64, inner: f64| match place {
        0 => 0.0,
        1 => ((outer - inner) / 2.0).floor(),
        _ => outer - inner,
    };
    (at(gx, iw, w), at(gy, ih, h))
}

/// The best `(w, h)` window's top-left corner, in `image`'s pixels.
fn smart(image: &DynamicImage, (w, h): (f64, f64)) -> (f64, f64) {
    let small = shrink(image, SMART_SIDE);
    let k = f64::from(small.width()) / f64::from(image.width().max(1));
    let ky = f64::from(small.height()) / f64::from(image.height().max(1));
    let scores = attention(&small);
    let win = (
        ((w * k).round() as usize).clamp(1, small.width() as usize),
        ((h * ky).round() as usize).clamp(1, small.height() as usize),
    );
    let (sw, sh) = (small.width() as usize, small.height() as usize);
    let radius = ((win.0.min(win.1) as f64 * BLUR_FRACTION) as usize).max(1);
    let (px, py) = best_window(&blur(&scores, sw, radius), sw, (1, 1));
    let x = px.saturating_sub(win.0 / 2).min(sw - win.0);
    let y = py.saturating_sub(win.1 / 2).min(sh - win.1);
    (x as f64 / k, y as f64 / ky)
}

/// Each pixel's interest: edges + skin + saturation, each 0..=255.
pub(crate) fn attention(image: &RgbaImage) -> Vec<u32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let luma: Vec<i32> = image.pixels().map(|p| i32::from(p.to_luma()[0])).collect();
    let mut scores = vec![0u32; w * h];
    for (i, p) in image.pixels().enumerate() {
        let (x, y) = (i % w, i / w);
        let at = |dx: isize, dy: isize| {
            let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
            let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
            luma[yy * w + xx]
        };
        let edge = (4 * luma[i] - at(-1, 0) - at(1, 0) - at(0, -1) - at(0, 1))
            .unsigned_abs()
            .min(255);
        let alpha = u32::from(p[3]);
        let [r, g, b] = [p[0], p[1], p[2]].map(|c| f32::from(c) / 255.0);
        let score = edge + skin(r, g, b) + saturation(r, g, b);
        // Transparent pixels are nothing to look at.
        scores[i] = score * alpha / 255;
    }
    scores
}

/// smartcrop.js's skin test: the direction of (r, g, b) against a skin
/// tone's, for pixels neither too dark nor too bright.
fn skin(r: f32, g: f32, b: f32) -> u32 {
    const TONE: [f32; 3] = [0.78, 0.57, 0.44];
    let norm = TONE.iter().map(|c| c * c).sum::<f32>().sqrt();
    let mag = (r * r + g * g + b * b).sqrt();
    let lightness = (r + g + b) / 3.0;
    if mag == 0.0 || !(0.2..=0.95).contains(&lightness) {
        return 0;
    }
    let d = [r, g, b]
        .iter()
        .zip(TONE)
        .map(|(c, t)| (c / mag - t / norm).powi(2))
        .sum::<f32>()
        .sqrt();
    let closeness = 1.0 - d;
    if closeness > 0.8 {
        ((closeness - 0.8) / 0.2 * 255.0) as u32
    } else {
        0
    }
}

/// HSL saturation above 0.4, for pixels that are not near black or white.
fn saturation(r: f32, g: f32, b: f32) -> u32 {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let l = (max + min) / 2.0;
    if max == min || !(0.05..=0.9).contains(&l) {
        return 0;
    }
    let d = max - min;
    let s = if l > 0.5 {
        d / (2.0 - max - min)
    } else {
        d / (max + min)
    };
    if s > 0.4 {
        ((s - 0.4) / 0.6 * 255.0) as u32
    } else {
        0
    }
}

/// The top-left corner of the `(ww, wh)` window of `scores` (`width` wide)
/// with the highest sum (summed-area table, every position); of equals, the
/// one nearest the centre. With a 1x1 window: the highest point.
pub(crate) fn best_window(
    scores: &[u32],
    width: usize,
    (ww, wh): (usize, usize),
) -> (usize, usize) {
    let height = scores.len() / width.max(1);
    let (ww, wh) = (ww.min(width), wh.min(height));
    // Summed-area table with a zero row and column.
    let stride = width + 1;
    let mut sat = vec![0u64; stride * (height + 1)];
    for y in 0..height {
        let mut row = 0u64;
        for x in 0..width {
            row += u64::from(scores[y * width + x]);
            sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1] + row;
        }
    }
    let sum = |x: usize, y: usize| {
        sat[(y + wh) * stride + x + ww] + sat[y * stride + x]
            - sat[y * stride + x + ww]
            - sat[(y + wh) * stride + x]
    };
    let (cx, cy) = ((width - ww) as f64 / 2.0, (height - wh) as f64 / 2.0);
    let mut best = (0, 0);
    let mut best_key = (0u64, f64::NEG_INFINITY);
    for y in 0..=height - wh {
        for x in 0..=width - ww {
            let key = (
                sum(x, y),
                -((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)),
            );
            if key.0 > best_key.0 || (key.0 == best_key.0 && key.1 > best_key.1) {
                best_key = key;
                best = (x, y);
            }
        }
    }
    best
}

/// Three passes of a box blur of radius `r` each way (close to a Gaussian
/// of sigma `r`), edges clamped.
pub(crate) fn blur(scores: &[u32], width: usize, r: usize) -> Vec<u32> {
    let height = scores.len() / width.max(1);
    let mut cur: Vec<u32> = scores.to_vec();
    let mut tmp = vec![0u32; cur.len()];
    for _ in 0..3 {
        for (len, stride, count, step) in [(width, 1, height, width), (height, width, width, 1)] {
            for line in 0..count {
                let base = line * step;
                let at =
                    |i: isize| cur[base + (i.clamp(0, len as isize - 1) as usize) * stride] as u64;
                let mut sum: u64 = (-(r as isize)..=r as isize).map(at).sum();
                for i in 0..len {
                    tmp[base + i * stride] = (sum / (2 * r as u64 + 1)) as u32;
                    sum += at(i as isize + r as isize + 1);
                    sum -= at(i as isize - r as isize);
                }
            }
            std::mem::swap(&mut cur, &mut tmp);
        }
    }
    cur
}
