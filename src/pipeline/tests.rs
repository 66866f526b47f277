use std::io::Cursor;

use image::ImageFormat;

use super::ops::target_size;
use super::test_images::psnr;
use super::*;
use crate::recipe::{Fit, Recipe, Resize};

const ROCKET: &[u8] = include_bytes!("../../tests/fixtures/rocket.jpg");
const CHELSEA: &[u8] = include_bytes!("../../tests/fixtures/chelsea.png");

fn fit(width: Option<u32>, height: Option<u32>, fit: Fit, upscale: bool) -> Resize {
    Resize {
        width,
        height,
        fit,
        gravity: crate::recipe::Gravity::default(),
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
    for truncated in [&ROCKET[..ROCKET.len() / 2], &CHELSEA[..CHELSEA.len() / 3]] {
        let err = run(truncated, &recipe, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "corrupt_image", "{err}");
    }
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

fn png_of(recipe: &str, input: &[u8]) -> image::DynamicImage {
    let recipe = Recipe::parse(recipe).unwrap();
    let out = run(input, &recipe, &Limits::default()).unwrap();
    image::load_from_memory(&out[0].bytes).unwrap()
}

#[test]
fn grayscale_is_the_rec709_luma_of_every_pixel() {
    let source = image::load_from_memory(CHELSEA).unwrap().to_rgb8();
    let gray = png_of("grayscale/png", CHELSEA);
    assert_eq!(gray.color(), image::ColorType::L8);
    let gray = gray.to_luma8();
    for (s, g) in source.pixels().zip(gray.pixels()) {
        let expected =
            0.2126 * f64::from(s[0]) + 0.7152 * f64::from(s[1]) + 0.0722 * f64::from(s[2]);
        assert!(
            (f64::from(g[0]) - expected).abs() <= 1.0,
            "{s:?} -> {g:?}, expected {expected}"
        );
    }
}

#[test]
fn sepia_is_the_documented_matrix_on_every_pixel() {
    let source = image::load_from_memory(CHELSEA).unwrap().to_rgb8();
    let sepia = png_of("sepia/png", CHELSEA).to_rgb8();
    for (s, o) in source.pixels().zip(sepia.pixels()) {
        for (row, out) in ops::SEPIA.iter().zip(o.0) {
            let expected =
                (row[0] * f32::from(s[0]) + row[1] * f32::from(s[1]) + row[2] * f32::from(s[2]))
                    .min(255.0);
            assert!((f32::from(out) - expected).abs() <= 1.0, "{s:?} -> {o:?}");
        }
    }
}

/// Bounding box `(min_x, min_y, max_x, max_y)` of the pixels that differ.
fn changed_box(a: &image::RgbaImage, b: &image::RgbaImage) -> Option<(u32, u32, u32, u32)> {
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in a.enumerate_pixels() {
        if p != b.get_pixel(x, y) {
            bbox = Some(match bbox {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    bbox
}

#[test]
fn the_watermark_lands_at_each_of_the_nine_anchors_and_nowhere_else() {
    let source = image::load_from_memory(CHELSEA).unwrap().to_rgba8();
    let (w, h) = source.dimensions();
    let margin = 10;
    for anchor in crate::recipe::Anchor::ALL {
        let recipe = format!(
            "watermark,text=imgflow,pos={},size=40,color=ff0000,opacity=1,margin={margin}/png",
            anchor.name()
        );
        let marked = png_of(&recipe, CHELSEA).to_rgba8();
        let (x0, y0, x1, y1) = changed_box(&source, &marked).expect("something was drawn");
        let (gx, gy) = anchor.grid();
        let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
        let slack = 4;
        match gx {
            0 => assert!(x0 >= margin && x0 <= margin + slack, "{anchor:?} x0={x0}"),
            1 => assert!(cx.abs_diff(w / 2) <= slack, "{anchor:?} cx={cx}"),
            _ => assert!(
                x1 < w - margin && x1 + slack >= w - margin,
                "{anchor:?} x1={x1}"
            ),
        }
        // Glyphs leave the top and bottom of the text box partly empty.
        let vslack = 14;
        match gy {
            0 => assert!(y0 >= margin && y0 <= margin + vslack, "{anchor:?} y0={y0}"),
            1 => assert!(cy.abs_diff(h / 2) <= vslack, "{anchor:?} cy={cy}"),
            _ => assert!(
                y1 < h - margin && y1 + vslack >= h - margin,
                "{anchor:?} y1={y1}"
            ),
        }
        assert!(
            y1 - y0 <= 40 && x1 - x0 < w - 2 * margin,
            "{anchor:?}: box too large"
        );
    }
}

#[test]
fn a_watermark_on_a_transparent_image_keeps_its_colour_and_the_rest_clear() {
    let clear = image::RgbaImage::from_pixel(300, 100, image::Rgba([0, 0, 0, 0]));
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(clear.clone())
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let marked = png_of(
        "watermark,text=Hi,pos=center,size=60,color=ff0000,opacity=0.5/png",
        &png,
    )
    .to_rgba8();
    let mut inked = 0;
    for p in marked.pixels() {
        if p[3] == 0 {
            continue;
        }
        inked += 1;
        // Not darkened by the transparent black underneath.
        assert_eq!((p[0], p[1], p[2]), (255, 0, 0), "{p:?}");
        assert!(p[3] <= 128, "opacity 0.5 caps alpha: {p:?}");
    }
    assert!(inked > 100, "the text was drawn ({inked} pixels)");
}

#[test]
fn watermark_text_can_be_any_unicode() {
    let text = "été ✓ 東京";
    let recipe = format!(
        "watermark,text={},size=30/png",
        crate::recipe::encode_text(text)
    );
    let parsed = Recipe::parse(&recipe).unwrap();
    let crate::recipe::Op::Watermark(w) = &parsed.outputs[0].ops[0] else {
        panic!("a watermark");
    };
    assert_eq!(w.text, text);
    let source = image::load_from_memory(ROCKET).unwrap().to_rgba8();
    let marked = png_of(&recipe, ROCKET).to_rgba8();
    assert!(changed_box(&source, &marked).is_some());
}

#[test]
fn rotate_flip_and_crop_move_pixels_where_expected() {
    let source = image::load_from_memory(CHELSEA).unwrap().to_rgb8();
    let (w, h) = source.dimensions();
    let rotated = png_of("rotate,deg=90/png", CHELSEA).to_rgb8();
    assert_eq!(rotated.dimensions(), (h, w));
    // Clockwise: the top-left pixel goes to the top-right.
    assert_eq!(rotated.get_pixel(h - 1, 0), source.get_pixel(0, 0));
    let flipped = png_of("flip,dir=h/png", CHELSEA).to_rgb8();
    assert_eq!(flipped.get_pixel(w - 1, 7), source.get_pixel(0, 7));
    let flopped = png_of("flip,dir=v/png", CHELSEA).to_rgb8();
    assert_eq!(flopped.get_pixel(7, h - 1), source.get_pixel(7, 0));
    let cropped = png_of("crop,x=100,y=50,w=30,h=1000/png", CHELSEA).to_rgb8();
    assert_eq!(cropped.dimensions(), (30, h - 50));
    assert_eq!(cropped.get_pixel(0, 0), source.get_pixel(100, 50));

    let recipe = Recipe::parse("crop,x=451,y=0,w=10,h=10").unwrap();
    let err = run(CHELSEA, &recipe, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "crop_outside_image");
}

#[test]
fn cover_keeps_the_part_the_gravity_names() {
    let left = png_of("resize,w=100,h=100,fit=cover,gravity=left/png", ROCKET).to_rgb8();
    let right = png_of("resize,w=100,h=100,fit=cover,gravity=right/png", ROCKET).to_rgb8();
    assert_eq!(left.dimensions(), (100, 100));
    // The left crop's left column is the source's left column, scaled.
    let whole = png_of("resize,h=100/png", ROCKET).to_rgb8();
    let column = |img: &image::RgbImage, x: u32| -> Vec<u8> {
        (0..100).flat_map(|y| img.get_pixel(x, y).0).collect()
    };
    let near = |a: &[u8], b: &[u8]| a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= 12);
    assert!(near(&column(&left, 50), &column(&whole, 50)));
    assert!(near(
        &column(&right, 50),
        &column(&whole, whole.width() - 50)
    ));
    assert!(!near(&column(&left, 50), &column(&right, 50)));
}

/// Mean absolute difference between horizontal neighbours: detail.
fn detail(img: &image::RgbImage) -> f64 {
    let raw = img.as_raw();
    let total: u64 = raw.windows(4).map(|w| u64::from(w[0].abs_diff(w[3]))).sum();
    total as f64 / raw.len() as f64
}

#[test]
fn blur_removes_detail_and_sharpen_adds_it() {
    let plain = detail(&png_of("png", CHELSEA).to_rgb8());
    let blurred = detail(&png_of("blur,sigma=2/png", CHELSEA).to_rgb8());
    let sharpened = detail(&png_of("sharpen,sigma=1,amount=1.5/png", CHELSEA).to_rgb8());
    assert!(blurred < plain * 0.6, "blur: {blurred} vs {plain}");
    assert!(sharpened > plain * 1.2, "sharpen: {sharpened} vs {plain}");
}

#[test]
fn every_format_round_trips() {
    let lossless = png_of("png", CHELSEA).to_rgb8();
    for (recipe, format, min_psnr) in [
        ("jpeg,q=90", ImageFormat::Jpeg, 32.0),
        ("webp,q=90", ImageFormat::WebP, 32.0),
        ("webp,lossless=true", ImageFormat::WebP, f64::INFINITY),
        ("gif", ImageFormat::Gif, 22.0),
    ] {
        let out = run(CHELSEA, &Recipe::parse(recipe).unwrap(), &Limits::default()).unwrap();
        assert_eq!(
            image::guess_format(&out[0].bytes).unwrap(),
            format,
            "{recipe}"
        );
        let back = image::load_from_memory(&out[0].bytes).unwrap().to_rgb8();
        let quality = psnr(&lossless.clone().into(), &back.into());
        assert!(quality >= min_psnr, "{recipe}: {quality:.1} dB");
    }
}

#[test]
fn a_scaled_jpeg_decode_looks_like_a_full_one() {
    // `run` decodes at 1/2 (the output needs 160 of 640 px); `decode` at full size.
    let recipe = Recipe::parse("resize,w=160/png").unwrap();
    let scaled = run(ROCKET, &recipe, &Limits::default()).unwrap();
    let full = render(
        &decode(ROCKET, &Limits::default()).unwrap(),
        &recipe.outputs[0],
    )
    .unwrap();
    assert_eq!(
        (scaled[0].width, scaled[0].height),
        (full.width, full.height)
    );
    let a = image::load_from_memory(&scaled[0].bytes).unwrap().to_rgb8();
    let b = image::load_from_memory(&full.bytes).unwrap().to_rgb8();
    let quality = psnr(&a.into(), &b.into());
    assert!(quality >= 35.0, "{quality:.1} dB");
}

#[test]
fn decoding_shrinks_only_as_far_as_every_output_allows() {
    let outputs = |text: &str| Recipe::parse(text).unwrap().outputs;
    let full = (4000, 3000);
    let need = |text: &str| {
        outputs(text)
            .iter()
            .map(|o| eighths_needed(full, o))
            .max()
            .unwrap()
    };
    assert_eq!(need("resize,w=800"), 4);
    assert_eq!(need("resize,w=500"), 2);
    assert_eq!(need("resize,w=200"), 1);
    assert_eq!(need("resize,w=1001"), 8);
    assert_eq!(need("a:resize,w=200+b:resize,w=1000"), 4);
    assert_eq!(need("a:resize,w=300+b:grayscale"), 8);
    assert_eq!(need("grayscale/resize,w=100"), 8);
}

#[test]
fn a_cmyk_jpeg_is_decoded_too() {
    let cmyk = include_bytes!("../../tests/fixtures/rocket-cmyk.jpg");
    let out = png_of("resize,w=80/png", cmyk).to_rgb8();
    assert_eq!(out.dimensions(), (80, 54));
    // Truncated, it is refused like any other JPEG (found by a helper's soak work).
    let recipe = Recipe::parse("resize,w=80/png").unwrap();
    let err = run(&cmyk[..cmyk.len() / 2], &recipe, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "corrupt_image", "{err}");
    // Mostly a dark blue sky: a colour decode, not garbage or black.
    let top = out.get_pixel(40, 5);
    assert!(top[2] > top[0], "{top:?}");
}

#[test]
fn every_width_and_fit_resizes_whatever_the_decode_scale() {
    for w in [
        1, 2, 3, 7, 13, 21, 32, 33, 47, 64, 99, 159, 160, 161, 213, 319, 320, 321, 639, 640,
    ] {
        for fit in [
            "",
            ",h=17,fit=cover",
            ",h=300,fit=cover,gravity=bottom-right",
            ",h=5,fit=fill",
        ] {
            let recipe = Recipe::parse(&format!("resize,w={w}{fit}/png")).unwrap();
            let out = run(ROCKET, &recipe, &Limits::default())
                .unwrap_or_else(|e| panic!("w={w}{fit}: {e}"));
            let crate::recipe::Op::Resize(r) = &recipe.outputs[0].ops[0] else {
                unreachable!()
            };
            let (tw, th) = target_size((640, 427), r);
            let expected = match (r.fit, r.height) {
                (crate::recipe::Fit::Cover, Some(h)) => (w.min(tw), h.min(th)),
                _ => (tw, th),
            };
            assert_eq!((out[0].width, out[0].height), expected, "w={w}{fit}");
        }
    }
}
