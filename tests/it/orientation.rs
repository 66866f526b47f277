//! EXIF orientations 1-8 come out upright (issue 3), on a real photograph.
//!
//! `tests/fixtures/orientation/` holds the standard "EXIF orientation test
//! images", made by `tests/fixtures/make-orientation.sh` from rocket.jpg:
//! `orient-N.jpg` stores the picture transformed and tagged Orientation=N so
//! that honouring the tag shows `orient-upright.png` (160×107) again, up to
//! JPEG loss (q=90: ImageMagick's `-auto-orient` scores 37.3-37.5 dB). These
//! tests need no external tools, AWS or LocalStack.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{ImageDecoder, ImageReader, RgbImage};

use crate::reference::{Scratch, imgflow_process, psnr, render_one, rgb8};

const UPRIGHT: &[u8] = include_bytes!("../fixtures/orientation/orient-upright.png");
const ORIENTED: [&[u8]; 8] = [
    include_bytes!("../fixtures/orientation/orient-1.jpg"),
    include_bytes!("../fixtures/orientation/orient-2.jpg"),
    include_bytes!("../fixtures/orientation/orient-3.jpg"),
    include_bytes!("../fixtures/orientation/orient-4.jpg"),
    include_bytes!("../fixtures/orientation/orient-5.jpg"),
    include_bytes!("../fixtures/orientation/orient-6.jpg"),
    include_bytes!("../fixtures/orientation/orient-7.jpg"),
    include_bytes!("../fixtures/orientation/orient-8.jpg"),
];

/// An upright output matches the upright reference at least this well (JPEG
/// q=90 loss; observed about 37 dB). The picture mirrored or upside down
/// scores under 19 dB, so a wrong orientation cannot pass.
const UPRIGHT_DB: f64 = 30.0;

/// `(N, orient-N.jpg)` for N in 1..=8.
fn oriented() -> impl Iterator<Item = (u8, &'static [u8])> {
    (1..=8).zip(ORIENTED)
}

fn exif_orientation(bytes: &[u8]) -> Orientation {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap()
        .orientation()
        .unwrap()
}

/// Run `recipe` on every orient-N.jpg and compare each output with
/// `expected` (made from the upright picture) within `UPRIGHT_DB`; report
/// every orientation that fails, not only the first.
fn assert_every_orientation(recipe: &str, expected: &RgbImage) {
    let mut failures = vec![];
    for (n, bytes) in oriented() {
        let out = rgb8(&render_one(bytes, recipe).bytes);
        if out.dimensions() != expected.dimensions() {
            failures.push(format!(
                "orient-{n}.jpg: {:?}, upright is {:?}",
                out.dimensions(),
                expected.dimensions()
            ));
            continue;
        }
        let db = psnr(&out, expected);
        eprintln!("orient-{n}.jpg {recipe}: {db:.2} dB against upright");
        if db < UPRIGHT_DB {
            failures.push(format!("orient-{n}.jpg: {db:.2} dB < {UPRIGHT_DB} dB"));
        }
    }
    assert!(failures.is_empty(), "{recipe}: {failures:#?}");
}

/// The fixtures are what they claim: orient-N.jpg is tagged N and stored
/// 160×107 (N ≤ 4) or 107×160 (N ≥ 5); and the bound can tell orientations
/// apart, since the upright picture mirrored either way or turned upside
/// down scores far below `UPRIGHT_DB` against itself.
#[test]
fn orientation_fixtures_are_tagged_1_to_8_and_a_mirror_image_fails_the_bound() {
    for (n, bytes) in oriented() {
        assert_eq!(
            exif_orientation(bytes),
            Orientation::from_exif(n).unwrap(),
            "orient-{n}.jpg"
        );
        let stored = image::load_from_memory(bytes).unwrap();
        let expected = if n <= 4 { (160, 107) } else { (107, 160) };
        assert_eq!(
            (stored.width(), stored.height()),
            expected,
            "orient-{n}.jpg"
        );
    }
    let upright = rgb8(UPRIGHT);
    assert_eq!(upright.dimensions(), (160, 107));
    for (how, wrong) in [
        ("mirrored", image::imageops::flip_horizontal(&upright)),
        ("flipped", image::imageops::flip_vertical(&upright)),
        ("upside down", image::imageops::rotate180(&upright)),
    ] {
        let db = psnr(&upright, &wrong);
        eprintln!("upright vs {how}: {db:.2} dB");
        assert!(db < UPRIGHT_DB - 10.0, "{how}: {db:.2} dB");
    }
}

/// With no resize (`png`), orient-N.jpg for every N comes out 160×107 and
/// within 30 dB PSNR of orient-upright.png (observed about 37 dB).
#[test]
fn every_exif_orientation_comes_out_upright() {
    assert_every_orientation("png", &rgb8(UPRIGHT));
}

/// Orientation is applied before the resize: `resize,w=80/png` of every
/// orient-N.jpg matches the same recipe on orient-upright.png within 30 dB
/// (a resize before rotating would make orientations 5-8 80×120 → 120×80).
#[test]
fn every_exif_orientation_comes_out_upright_when_resized() {
    let expected = rgb8(&render_one(UPRIGHT, "resize,w=80/png").bytes);
    assert_eq!(expected.width(), 80);
    assert_every_orientation("resize,w=80/png", &expected);
}

/// Operations see the upright picture: `rotate,deg=90` turns the upright
/// picture clockwise, and crop coordinates count from its top-left corner,
/// whatever the stored orientation.
#[test]
fn rotations_and_crops_apply_to_the_upright_picture() {
    let upright = rgb8(UPRIGHT);
    assert_every_orientation("rotate,deg=90/png", &image::imageops::rotate90(&upright));
    assert_every_orientation(
        "crop,x=30,y=10,w=100,h=60/png",
        &image::imageops::crop_imm(&upright, 30, 10, 100, 60).to_image(),
    );
}

/// Outputs do not carry the source's Orientation tag: their pixels are
/// already upright, and a viewer honouring a copied tag would turn them again.
#[test]
fn upright_outputs_carry_no_orientation_tag_to_turn_them_again() {
    for (n, bytes) in oriented() {
        for recipe in ["jpeg", "png"] {
            let out = render_one(bytes, recipe);
            assert_eq!(
                exif_orientation(&out.bytes),
                Orientation::NoTransforms,
                "orient-{n}.jpg {recipe}"
            );
        }
    }
}

/// The `imgflow process` binary writes EXIF-rotated photos upright: a folder
/// with a full-size PNG and an 80 px wide JPEG, both upright.
#[test]
fn process_writes_exif_rotated_photos_upright() {
    let upright = rgb8(UPRIGHT);
    let small_upright = rgb8(&render_one(UPRIGHT, "resize,w=80/png").bytes);
    for (n, bytes) in oriented() {
        let scratch = Scratch::new("orientation");
        let input = scratch.write(&format!("orient-{n}.jpg"), bytes);
        let out = scratch.path("out");
        imgflow_process(&input, &out, "full:png+small:resize,w=80/jpeg,q=95");

        let full = rgb8(&std::fs::read(out.join("full.png")).unwrap());
        assert_eq!(
            full.dimensions(),
            upright.dimensions(),
            "orient-{n}.jpg full"
        );
        let db = psnr(&full, &upright);
        assert!(db >= UPRIGHT_DB, "orient-{n}.jpg full: {db:.2} dB");

        let small = rgb8(&std::fs::read(out.join("small.jpg")).unwrap());
        assert_eq!(
            small.dimensions(),
            small_upright.dimensions(),
            "orient-{n}.jpg small"
        );
        let db = psnr(&small, &small_upright);
        assert!(db >= UPRIGHT_DB, "orient-{n}.jpg small: {db:.2} dB");
    }
}
