//! `gravity=smart` and `gravity=face` on real photographs, and the source
//! analysis. Where a crop went is found in the output itself, by matching
//! it against the canvas it was cut from (no peeking into the pipeline).

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage, imageops};

use super::*;
use crate::recipe::Recipe;

const ASTRONAUT: &[u8] = include_bytes!("../../tests/fixtures/astronaut.png");
const CHELSEA: &[u8] = include_bytes!("../../tests/fixtures/chelsea.png");
/// The cat's eyes and nose in chelsea.png, measured by hand (x0, y0, x1, y1):
/// left eye 137-207 × 87-145, right eye 295-343 × 112-163, nose 238-292 × 225-265.
const CAT_FACE: (u32, u32, u32, u32) = (135, 85, 345, 270);

fn png(image: &DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

fn render(bytes: &[u8], recipe: &str) -> RgbImage {
    let recipe = Recipe::parse(recipe).unwrap();
    let out = run(bytes, &recipe, &Limits::default()).unwrap();
    image::load_from_memory(&out[0].bytes).unwrap().to_rgb8()
}

/// `picture` at (x, 0) on a `width`-wide canvas of its height, the rest a
/// horizontal ramp with a little noise: something to see, nothing to like.
fn off_centre(picture: &DynamicImage, width: u32, x: u32) -> RgbImage {
    let h = picture.height();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut canvas = RgbImage::from_fn(width, h, |cx, _| {
        let v = (60 + cx * 120 / width) as u8;
        Rgb([v, v, v.saturating_add(rng.u8(0..6))])
    });
    imageops::overlay(&mut canvas, &picture.to_rgb8(), i64::from(x), 0);
    canvas
}

/// The offset at which `needle` best matches `haystack` (least squared
/// difference), searching x only when they are the same height.
fn locate(haystack: &RgbImage, needle: &RgbImage) -> (u32, u32) {
    let mut best = ((0, 0), u64::MAX);
    for y in 0..=haystack.height() - needle.height() {
        for x in 0..=haystack.width() - needle.width() {
            let mut diff = 0u64;
            for (nx, ny, p) in needle.enumerate_pixels().step_by(3) {
                let q = haystack.get_pixel(x + nx, y + ny);
                for c in 0..3 {
                    diff += (i64::from(p[c]) - i64::from(q[c])).pow(2) as u64;
                }
            }
            if diff < best.1 {
                best = ((x, y), diff);
            }
        }
    }
    best.0
}

fn contains(window: (u32, u32, u32, u32), b: (f64, f64, f64, f64)) -> bool {
    let (x, y, w, h) = window.map_f64();
    b.0 >= x && b.1 >= y && b.0 + b.2 <= x + w && b.1 + b.3 <= y + h
}

trait MapF64 {
    fn map_f64(self) -> (f64, f64, f64, f64);
}
impl MapF64 for (u32, u32, u32, u32) {
    fn map_f64(self) -> (f64, f64, f64, f64) {
        (self.0.into(), self.1.into(), self.2.into(), self.3.into())
    }
}

#[test]
fn the_face_model_is_built_in_and_finds_the_astronaut() {
    assert!(load_face_model());
    let astronaut = image::load_from_memory(ASTRONAUT).unwrap();
    let faces = detect_faces(&astronaut);
    assert!(!faces.is_empty(), "no face in astronaut.png");
    let f = faces[0];
    // Eileen Collins's face is in the upper middle of the portrait.
    assert!(f.width > 60.0 && f.width < 250.0, "{f:?}");
    assert!(f.x > 100.0 && f.x + f.width < 400.0 && f.y < 250.0, "{f:?}");
}

#[test]
fn a_face_crop_keeps_the_face_found_on_the_original_when_it_is_off_centre() {
    let astronaut = image::load_from_memory(ASTRONAUT).unwrap();
    let face = detect_faces(&astronaut)[0];
    let at = 1000;
    let canvas = off_centre(&astronaut, 1536, at);
    let face = (face.x + f64::from(at), face.y, face.width, face.height);
    let bytes = png(&DynamicImage::ImageRgb8(canvas.clone()));
    // The 256 px square is a 512 px window of the canvas, halved.
    let half = imageops::resize(&canvas, 768, 256, imageops::FilterType::Lanczos3);
    let window = |recipe: &str| {
        let out = render(&bytes, recipe);
        assert_eq!(out.dimensions(), (256, 256));
        let (x, _) = locate(&half, &out);
        (x * 2, 0, 512, 512)
    };
    let faced = window("resize,w=256,h=256,fit=cover,gravity=face/png");
    assert!(contains(faced, face), "window {faced:?}, face {face:?}");
    // What the old gravities do: the centre misses it.
    let centred = window("resize,w=256,h=256,fit=cover/png");
    assert!(
        !contains(centred, face),
        "window {centred:?}, face {face:?}"
    );
}

#[test]
fn a_smart_crop_keeps_the_cats_face() {
    let chelsea = image::load_from_memory(CHELSEA).unwrap();
    let (x0, y0, x1, y1) = CAT_FACE;
    let cat = (x0, y0, x1 - x0, y1 - y0).map_f64();
    // On the photograph itself: a square crop, pixel for pixel.
    let out = render(CHELSEA, "crop,w=300,h=300,gravity=smart/png");
    let (x, y) = locate(&chelsea.to_rgb8(), &out);
    assert!(contains((x, y, 300, 300), cat), "window at {x},{y}");
    // Off-centre on a wide canvas, through a cover resize.
    let canvas = off_centre(&chelsea, 1200, 40);
    let bytes = png(&DynamicImage::ImageRgb8(canvas.clone()));
    let third = imageops::resize(&canvas, 400, 100, imageops::FilterType::Lanczos3);
    let out = render(&bytes, "resize,w=100,h=100,fit=cover,gravity=smart/png");
    let (x, _) = locate(&third, &out);
    let cat = (cat.0 + 40.0, cat.1, cat.2, cat.3);
    assert!(contains((x * 3, 0, 300, 300), cat), "window at {}", x * 3);
    let out = render(&bytes, "resize,w=100,h=100,fit=cover/png");
    let (x, _) = locate(&third, &out);
    assert!(!contains((x * 3, 0, 300, 300), cat), "centre at {}", x * 3);
}

#[test]
fn without_a_face_the_face_gravity_falls_back_to_smart() {
    let smart = render(CHELSEA, "crop,w=200,h=200,gravity=smart/png");
    let face = render(CHELSEA, "crop,w=200,h=200,gravity=face/png");
    assert!(detect_faces(&image::load_from_memory(CHELSEA).unwrap()).is_empty());
    assert_eq!(smart, face);
}

#[test]
fn a_flat_image_crops_like_the_centre() {
    let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 100, Rgb([90, 90, 90])));
    let mut marked = flat.to_rgb8();
    marked.put_pixel(150, 50, Rgb([91, 90, 90]));
    let bytes = png(&DynamicImage::ImageRgb8(marked.clone()));
    let smart = render(&bytes, "crop,w=100,h=100,gravity=smart/png");
    let centre = marked.view(100, 0, 100, 100).to_image();
    assert_eq!(smart, centre);
}

#[test]
fn the_analysis_describes_the_source() {
    let recipe = Recipe::parse("resize,w=64").unwrap();
    let (_, _, a) = run_analysed(CHELSEA, &recipe, &Limits::default()).unwrap();
    assert_eq!((a.width, a.height, a.format.as_str()), (451, 300, "png"));
    assert!(!a.alpha && !a.animated && a.frames == 1);
    // Pillow's ImageCms.getProfileDescription reads the same.
    assert_eq!(a.color_profile.as_deref(), Some("sRGB IEC61966-2.1"));
    assert_eq!(a.blurhash.len(), 28, "{}", a.blurhash);
    // A tabby: brownish grey, red above blue.
    let hex = u32::from_str_radix(&a.dominant_color[1..], 16).unwrap();
    let (r, b) = (hex >> 16, hex & 0xff);
    assert!(
        a.dominant_color.starts_with('#') && r > b,
        "{}",
        a.dominant_color
    );
}

#[test]
fn frames_are_counted_in_animated_gifs() {
    use image::codecs::gif::GifEncoder;
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        for i in 0..5u8 {
            let frame = image::RgbaImage::from_pixel(8, 8, image::Rgba([i * 40, 0, 0, 255]));
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let recipe = Recipe::parse("resize,w=4").unwrap();
    let (_, _, a) = run_analysed(&bytes, &recipe, &Limits::default()).unwrap();
    assert_eq!((a.format.as_str(), a.frames, a.animated), ("gif", 5, true));
}
