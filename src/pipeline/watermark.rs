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
    let (width, height) = (image.width(), image.height());
    let (scale, left, top, _, _) = layout(w, width, height);
    let color = w.color.0;
    let opacity = w.opacity.clamp(0.0, 1.0);
    let font = font().as_scaled(scale);

    let mut canvas = Canvas::from(image);
    let mut x = left as f32;
    let baseline = top as f32 + font.ascent();
    let mut previous = None;
    for c in w.text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            x += font.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, point(x, baseline));
        x += font.h_advance(id);
        previous = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + i64::from(gx);
            let py = bounds.min.y as i64 + i64::from(gy);
            if px >= 0 && py >= 0 && px < i64::from(width) && py < i64::from(height) {
                canvas.blend(
                    px as u32,
                    py as u32,
                    color,
                    coverage.clamp(0.0, 1.0) * opacity,
                );
            }
        });
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
