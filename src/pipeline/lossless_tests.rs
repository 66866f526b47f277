//! Lossless JPEG transforms against the pixel path, and their promise:
//! the samples are never quantised again.

use image::{DynamicImage, GenericImageView, RgbImage};

use super::super::test_images::rocket_420;
use super::super::{Limits, Rendition, run};
use crate::recipe::Recipe;

const CHELSEA: &[u8] = include_bytes!("../../tests/fixtures/chelsea.png");
/// `orient-N.jpg`: the same picture stored turned and tagged EXIF Orientation = N.
const ORIENTED: [&[u8]; 8] = [
    include_bytes!("../../tests/fixtures/orientation/orient-1.jpg"),
    include_bytes!("../../tests/fixtures/orientation/orient-2.jpg"),
    include_bytes!("../../tests/fixtures/orientation/orient-3.jpg"),
    include_bytes!("../../tests/fixtures/orientation/orient-4.jpg"),
    include_bytes!("../../tests/fixtures/orientation/orient-5.jpg"),
    include_bytes!("../../tests/fixtures/orientation/orient-6.jpg"),
    include_bytes!("../../tests/fixtures/orientation/orient-7.jpg"),
    include_bytes!("../../tests/fixtures/orientation/orient-8.jpg"),
];

/// Whole 16-pixel blocks both ways, 4:2:0.
fn whole_blocks_jpeg() -> Vec<u8> {
    rocket_420(640, 416, 85)
}

fn made(recipe: &str, input: &[u8]) -> Result<Rendition, String> {
    let recipe = Recipe::parse(recipe).map_err(|e| e.to_string())?;
    run(input, &recipe, &Limits::default())
        .map(|mut r| r.remove(0))
        .map_err(|e| e.code().to_owned())
}

fn pixels(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

/// The largest difference of any sample between `a` and the same-size
/// window of `b` whose offset fits best (a trimmed edge moves the window).
fn best_window_difference(a: &RgbImage, b: &RgbImage) -> u8 {
    let mut best = u8::MAX;
    for dy in 0..=b.height() - a.height() {
        for dx in 0..=b.width() - a.width() {
            let window = DynamicImage::ImageRgb8(b.clone())
                .view(dx, dy, a.width(), a.height())
                .to_image();
            let worst = a
                .as_raw()
                .iter()
                .zip(DynamicImage::ImageRgba8(window).to_rgb8().as_raw())
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap_or(0);
            best = best.min(worst);
        }
    }
    best
}

#[test]
fn every_turn_and_flip_shows_what_the_pixel_path_shows() {
    let jpeg = whole_blocks_jpeg();
    for steps in [
        "rotate,deg=90",
        "rotate,deg=180",
        "rotate,deg=270",
        "flip,dir=h",
        "flip,dir=v",
        "rotate,deg=90/flip,dir=h",
        "flip,dir=v/rotate,deg=270/rotate,deg=180",
    ] {
        let lossless = made(&format!("{steps}/jpeg,lossless=true"), &jpeg).unwrap();
        let reference = made(&format!("{steps}/png"), &jpeg).unwrap();
        assert_eq!(
            (lossless.width, lossless.height),
            (reference.width, reference.height),
            "{steps}: whole blocks, nothing trimmed"
        );
        let (a, b) = (pixels(&lossless.bytes), pixels(&reference.bytes));
        // The same coefficients through an IDCT and chroma upsampling in
        // another order: within rounding (libjpeg-turbo's smooth chroma
        // upsampling rounds with alternating biases, which a turn does not
        // carry along: 4 levels on some samples, on every step here).
        let worst = best_window_difference(&a, &b);
        assert!(worst <= 4, "{steps}: {worst}");
    }
}

#[test]
fn four_quarter_turns_give_back_the_very_same_samples() {
    let jpeg = whole_blocks_jpeg();
    let mut bytes = jpeg.clone();
    for _ in 0..4 {
        bytes = made("rotate,deg=90/jpeg,lossless=true", &bytes)
            .unwrap()
            .bytes;
    }
    // A re-encode would have lost something on each of the four passes.
    assert!(pixels(&bytes) == pixels(&jpeg));
    let reencoded = (0..4).fold(jpeg.clone(), |b, _| {
        made("rotate,deg=90/jpeg,q=85", &b).unwrap().bytes
    });
    assert!(pixels(&reencoded) != pixels(&jpeg));
}

#[test]
fn the_exif_orientation_is_applied_and_partial_blocks_are_trimmed() {
    for (n, jpeg) in (1..).zip(ORIENTED) {
        let lossless = made("jpeg,lossless=true", jpeg).unwrap();
        let reference = made("png", jpeg).unwrap();
        // Upright 160x107: what is left is at most one block (16) smaller a side.
        assert_eq!((reference.width, reference.height), (160, 107), "{n}");
        assert!(
            (145..=160).contains(&lossless.width) && (92..=107).contains(&lossless.height),
            "orient-{n}: {}x{}",
            lossless.width,
            lossless.height
        );
        let worst = best_window_difference(&pixels(&lossless.bytes), &pixels(&reference.bytes));
        assert!(worst <= 4, "orient-{n}: {worst}");
        // No EXIF block is left to turn the picture a second time.
        assert!(
            !lossless.bytes.windows(6).any(|w| w == b"Exif\0\0"),
            "orient-{n}"
        );
    }
}

#[test]
fn the_icc_profile_stays_with_the_samples_it_describes() {
    let profile = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let tagged = super::super::embed::jpeg(whole_blocks_jpeg(), &profile).unwrap();
    let turned = made("rotate,deg=90/jpeg,lossless=true", &tagged).unwrap();
    let kept: Vec<u8> = super::icc_segments(&turned.bytes)
        .iter()
        .flat_map(|s| s[18..].to_vec())
        .collect();
    assert_eq!(kept, profile);
    // Untagged in, untagged out.
    let plain = made("rotate,deg=90/jpeg,lossless=true", &whole_blocks_jpeg()).unwrap();
    assert!(super::icc_segments(&plain.bytes).is_empty());
}

#[test]
fn what_cannot_be_lossless_is_refused_with_a_stable_code() {
    let jpeg = whole_blocks_jpeg();
    for (recipe, input) in [
        ("rotate,deg=90/jpeg,lossless=true", CHELSEA),
        ("resize,w=100/jpeg,lossless=true", &jpeg[..]),
        ("rotate,deg=90/grayscale/jpeg,lossless=true", &jpeg[..]),
        ("ladder,w=100.200/jpeg,lossless=true", &jpeg[..]),
    ] {
        assert_eq!(
            made(recipe, input).unwrap_err(),
            "lossless_unavailable",
            "{recipe}"
        );
    }
    let cmyk = include_bytes!("../../tests/fixtures/rocket-cmyk.jpg");
    assert_eq!(
        made("jpeg,lossless=true", cmyk).unwrap_err(),
        "lossless_unavailable"
    );
    // `q` and `bg` mean a re-encode: not with lossless.
    assert!(Recipe::parse("jpeg,q=80,lossless=true").is_err());
    assert!(Recipe::parse("jpeg,bg=000000,lossless=true").is_err());
}

#[test]
fn lossless_and_pixel_outputs_share_one_recipe() {
    let jpeg = whole_blocks_jpeg();
    let recipe = Recipe::parse(
        "a:rotate,deg=90/jpeg,lossless=true+b:resize,w=100/png+c:flip,dir=h/jpeg,lossless=true",
    )
    .unwrap();
    let made = run(&jpeg, &recipe, &Limits::default()).unwrap();
    let names: Vec<_> = made.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!((made[0].width, made[0].height), (416, 640));
    assert_eq!((made[1].width, made[1].height), (100, 65));
    assert_eq!((made[2].width, made[2].height), (640, 416));
}
