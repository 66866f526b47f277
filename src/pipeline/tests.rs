use std::io::Cursor;

use super::ops::target_size;
use super::*;
use crate::recipe::{Fit, Resize};

const ROCKET: &[u8] = include_bytes!("../../tests/fixtures/rocket.jpg");
const CHELSEA: &[u8] = include_bytes!("../../tests/fixtures/chelsea.png");

fn fit(width: Option<u32>, height: Option<u32>, fit: Fit, upscale: bool) -> Resize {
    Resize {
        width,
        height,
        fit,
        gravity: crate::recipe::Anchor::Center,
        upscale,
    }
}

#[test]
fn resizing_by_width_keeps_the_aspect_ratio() {
    assert_eq!(
        target_size((640, 427), &fit(Some(320), None, Fit::Inside, false)),
        (320, 214)
    );
    assert_eq!(
        target_size((640, 427), &fit(None, Some(100), Fit::Inside, false)),
        (150, 100)
    );
}

#[test]
fn inside_fits_the_box_and_cover_fills_it() {
    let src = (640, 427);
    assert_eq!(
        target_size(src, &fit(Some(200), Some(200), Fit::Inside, false)),
        (200, 133)
    );
    assert_eq!(
        target_size(src, &fit(Some(200), Some(200), Fit::Cover, false)),
        (300, 200)
    );
    assert_eq!(
        target_size(src, &fit(Some(200), Some(50), Fit::Fill, false)),
        (200, 50)
    );
}

#[test]
fn nothing_is_upscaled_unless_asked() {
    let src = (640, 427);
    assert_eq!(
        target_size(src, &fit(Some(2000), None, Fit::Inside, false)),
        src
    );
    assert_eq!(
        target_size(src, &fit(Some(1280), None, Fit::Inside, true)),
        (1280, 854)
    );
}

#[test]
fn a_real_photo_becomes_a_jpeg_of_the_asked_width() {
    let recipe = Recipe::parse("resize,w=320").unwrap();
    let out = run(ROCKET, &recipe, &Limits::default()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].width, out[0].height), (320, 214));
    let decoded = image::load_from_memory(&out[0].bytes).unwrap();
    assert_eq!(
        image::guess_format(&out[0].bytes).unwrap(),
        ImageFormat::Jpeg
    );
    assert_eq!((decoded.width(), decoded.height()), (320, 214));
}

#[test]
fn one_decode_yields_every_output() {
    let recipe =
        Recipe::parse("thumb:resize,w=100,h=100,fit=cover/jpeg,q=60+half:resize,w=225/png")
            .unwrap();
    let out = run(CHELSEA, &recipe, &Limits::default()).unwrap();
    let sizes: Vec<_> = out
        .iter()
        .map(|r| (r.name.as_str(), r.width, r.height))
        .collect();
    assert_eq!(sizes, vec![("thumb", 100, 100), ("half", 225, 150)]);
    assert_eq!(
        image::guess_format(&out[1].bytes).unwrap(),
        ImageFormat::Png
    );
}

#[test]
fn the_source_format_is_kept_when_no_format_is_asked() {
    let recipe = Recipe::parse("resize,w=50").unwrap();
    let out = run(CHELSEA, &recipe, &Limits::default()).unwrap();
    assert_eq!(out[0].format, Format::Png);
}

#[test]
fn text_is_not_an_image() {
    let recipe = Recipe::parse("resize,w=50").unwrap();
    let err = run(b"hello, world", &recipe, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "unsupported_image");
}

#[test]
fn a_truncated_image_is_reported_as_corrupt() {
    let recipe = Recipe::parse("resize,w=50").unwrap();
    // (A truncated JPEG decodes, grey at the bottom, as in browsers; a PNG does not.)
    let err = run(&CHELSEA[..CHELSEA.len() / 3], &recipe, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "corrupt_image", "{err}");
}

#[test]
fn limits_are_checked_before_decoding() {
    let recipe = Recipe::parse("resize,w=50").unwrap();
    let small = Limits {
        max_width: 600,
        ..Limits::default()
    };
    let err = run(ROCKET, &recipe, &small).unwrap_err();
    assert!(matches!(
        err,
        PipelineError::TooManyPixels { width: 640, .. }
    ));
    assert_eq!(err.code(), "image_too_large");

    let tiny = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    assert_eq!(
        run(ROCKET, &recipe, &tiny).unwrap_err().code(),
        "image_too_large"
    );
}

#[test]
fn transparent_pixels_become_white_in_a_jpeg() {
    let clear = image::RgbaImage::from_pixel(8, 8, image::Rgba([0, 0, 0, 0]));
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(clear)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let recipe = Recipe::parse("jpeg,q=95").unwrap();
    let out = run(&png, &recipe, &Limits::default()).unwrap();
    let back = image::load_from_memory(&out[0].bytes).unwrap().to_rgb8();
    assert!(back.pixels().all(|p| p.0.iter().all(|&c| c > 245)));
}
