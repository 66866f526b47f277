//! Text watermarks, drawn with DejaVu Sans (bundled by the `dejavu` crate,
//! under the Bitstream Vera licence) through `ab_glyph`.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{DynamicImage, RgbImage, RgbaImage};

use crate::recipe::{Anchor, Watermark};

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(dejavu::sans::regular()).expect("the bundled DejaVu Sans parses")
    })
}

/// Where the text's box lands: `(left, top, width, height)` in image pixels.
/// The text shrinks, if needed, to fit inside the margins.
pub(crate) fn layout(w: &Watermark, width: u32, height: u32) -> (PxScale, i64, i64, u32, u32) {
    let margin = w
        .margin
        .resolve(width, height)
        .min(width / 4)
        .min(height / 4);
    let mut size = w.size.resolve(width, height).max(1) as f32;
    let (text_w, text_h) = measure(&w.text, size);
    let room = width.saturating_sub(2 * margin).max(1) as f32;
    if text_w > room {
        size = (size * room / text_w).max(1.0);
    }
    let (text_w, text_h) = if text_w > room {
        measure(&w.text, size)
    } else {
        (text_w, text_h)
    };
    let (bw, bh) = (text_w.ceil() as u32, text_h.ceil() as u32);
    let (gx, gy) = w.anchor.grid();
    let left = Anchor::offset(gx, width, bw, margin);
    let top = Anchor::offset(gy, height, bh, margin);
    (PxScale::from(size), left, top, bw, bh)
}

/// Width and height (ascent to descent) of one line of text at `size` px.
fn measure(text: &str, size: f32) -> (f32, f32) {
    let font = font().as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        previous = Some(id);
    }
    (width, font.ascent() - font.descent())
}

pub(super) fn draw(image: &DynamicImage, w: &Watermark) -> DynamicImage {
    let mut copy = image.clone();
    draw_in_place(&mut copy, w);
    copy
}

/// [`draw`] on an image the caller owns: only the pixels under the text
/// change, nothing is copied (gray images gain colour channels first).
pub(crate) fn draw_in_place(image: &mut DynamicImage, w: &Watermark) {
    let mask = mask(w, image.width(), image.height());
    let mut canvas = Canvas::from(image);
    for (i, &a) in mask.alpha.iter().enumerate() {
        if a > 0.0 {
            let (x, y) = (i as u32 % mask.width, i as u32 / mask.width);
            canvas.blend(mask.left + x, mask.top + y, w.color.0, a);
        }
    }
}

/// The text rasterised once: for each pixel of its box (clipped to the
/// image), the opacity it is drawn with there; glyphs that overlap combine
/// as two "over"s would (`1 - (1 - a) (1 - b)`).
pub(crate) struct Mask {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    /// Row by row, `width` a row.
    pub alpha: Vec<f32>,
}

pub(crate) fn mask(w: &Watermark, width: u32, height: u32) -> Mask {
    let (scale, left, top, _, _) = layout(w, width, height);
    let opacity = w.opacity.clamp(0.0, 1.0);
    let font = font().as_scaled(scale);
    let mut x = left as f32;
    let baseline = top as f32 + font.ascent();
    let mut previous = None;
    let mut outlines = Vec::new();
    for c in w.text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            x += font.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, point(x, baseline));
        x += font.h_advance(id);
        previous = Some(id);
        outlines.extend(font.outline_glyph(glyph));
    }
    // The union of the glyphs' pixel boxes, inside the image.
    let clip = |v: f32, max: u32| (v.max(0.0) as i64).min(i64::from(max)) as u32;
    let (mut x0, mut y0, mut x1, mut y1) = (width, height, 0, 0);
    for outline in &outlines {
        let b = outline.px_bounds();
        x0 = x0.min(clip(b.min.x, width));
        y0 = y0.min(clip(b.min.y, height));
        x1 = x1.max(clip(b.max.x, width));
        y1 = y1.max(clip(b.max.y, height));
    }
    let (mw, mh) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
    let mut alpha = vec![0f32; mw as usize * mh as usize];
    for outline in &outlines {
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + i64::from(gx) - i64::from(x0);
            let py = bounds.min.y as i64 + i64::from(gy) - i64::from(y0);
            if px >= 0 && py >= 0 && px < i64::from(mw) && py < i64::from(mh) {
                let m = &mut alpha[py as usize * mw as usize + px as usize];
                let a = coverage.clamp(0.0, 1.0) * opacity;
                *m = 1.0 - (1.0 - *m) * (1.0 - a);
            }
        });
    }
    Mask {
        left: x0,
        top: y0,
        width: mw,
        height: mh,
        alpha,
    }
}

/// RGB or RGBA pixels to draw on; gray images gain colour channels.
enum Canvas<'a> {
    Rgb(&'a mut RgbImage),
    Rgba(&'a mut RgbaImage),
}

impl Canvas<'_> {
    fn from(image: &mut DynamicImage) -> Canvas<'_> {
        match &*image {
            DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {}
            other if other.color().has_alpha() => *image = other.to_rgba8().into(),
            other => *image = other.to_rgb8().into(),
        }
        match image {
            DynamicImage::ImageRgb8(img) => Canvas::Rgb(img),
            DynamicImage::ImageRgba8(img) => Canvas::Rgba(img),
            _ => unreachable!("converted to RGB or RGBA above"),
        }
    }

    /// Porter-Duff "over": `color` at coverage `a` over the pixel.
    fn blend(&mut self, x: u32, y: u32, color: [u8; 3], a: f32) {
        match self {
            Canvas::Rgb(img) => {
                let p = img.get_pixel_mut(x, y);
                for i in 0..3 {
                    p[i] = (f32::from(color[i]) * a + f32::from(p[i]) * (1.0 - a)).round() as u8;
                }
            }
            Canvas::Rgba(img) => {
                let p = img.get_pixel_mut(x, y);
                let da = f32::from(p[3]) / 255.0;
                let out_a = a + da * (1.0 - a);
                if out_a <= 0.0 {
                    return;
                }
                for i in 0..3 {
                    let c = (f32::from(color[i]) * a + f32::from(p[i]) * da * (1.0 - a)) / out_a;
                    p[i] = c.round().clamp(0.0, 255.0) as u8;
                }
                p[3] = (out_a * 255.0).round() as u8;
            }
        }
    }
}
