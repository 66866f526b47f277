//! Each fast path against the general one on the same input.

use image::DynamicImage;

use super::super::test_images::{ROCKET, psnr, rocket_420};
use super::super::{Limits, Rendition, decode as full_decode, plan, probe, run};
use super::{Decoded, inplace, planar, turn};
use crate::recipe::{Op, Recipe};

const CHELSEA: &[u8] = include_bytes!("../../../tests/fixtures/chelsea.png");

/// rocket.jpg (640x427) cut to sides even at full and half scale and written 4:2:0, so that every
/// planar step applies to it.
fn even_jpeg() -> Vec<u8> {
    rocket_420(640, 424, 90)
}

fn renditions(recipe: &str, input: &[u8]) -> Vec<Rendition> {
    run(input, &Recipe::parse(recipe).unwrap(), &Limits::default()).unwrap()
}

fn image_of(rendition: &Rendition) -> DynamicImage {
    image::load_from_memory(&rendition.bytes).unwrap()
}

/// `steps` as the recipe's only output (a fast path where one applies).
fn fast(steps: &str, input: &[u8]) -> Rendition {
    renditions(steps, input).remove(0)
}

/// `steps` beside a second output, which keeps the general path.
fn general(steps: &str, input: &[u8]) -> Rendition {
    let (ops, format) = steps.rsplit_once('/').unwrap_or(("", steps));
    let recipe = if ops.is_empty() {
        format!("a:{format}+b:png")
    } else {
        format!("a:{ops}/{format}+b:png")
    };
    renditions(&recipe, input).remove(0)
}

fn decoded_by(recipe: &str, input: &[u8]) -> Option<Decoded> {
    let limits = Limits::default();
    let recipe = Recipe::parse(recipe).unwrap();
    let probe = probe(input, &limits).unwrap();
    let plan = plan(&probe, &recipe, &limits).unwrap();
    super::decode(input, &probe, &plan, &recipe).map(Result::unwrap)
}

#[test]
fn jpeg_to_jpeg_geometry_blur_and_grayscale_take_the_planar_path() {
    let jpeg = even_jpeg();
    // A re-encode of whole blocks needs no samples at all (`transcode`).
    assert!(matches!(
        decoded_by("jpeg,q=80", &jpeg),
        Some(Decoded::Transcode(..))
    ));
    for steps in [
        "flip,dir=h/flip,dir=v/jpeg",
        "rotate,deg=90/rotate,deg=180/rotate,deg=270/jpeg",
        "blur,sigma=2/grayscale/jpeg",
        "watermark,text=imgflow/jpeg",
        "resize,w=480/jpeg",
    ] {
        assert!(
            matches!(decoded_by(steps, &jpeg), Some(Decoded::Planar(..))),
            "{steps}"
        );
    }
    // Odd sides, another format, an operation that needs RGB: no.
    assert!(decoded_by("flip,dir=v/jpeg", ROCKET).is_none());
    assert!(decoded_by("flip,dir=h/png", &jpeg).is_none());
    assert!(decoded_by("sepia/jpeg", &jpeg).is_none());
    assert!(decoded_by("a:jpeg+b:png", &jpeg).is_none());
    // A resize to odd sides (then a quarter turn of half a chroma
    // sample), a cover crop, an odd result.
    assert!(decoded_by("resize,h=107/rotate,deg=90/jpeg", &jpeg).is_none());
    assert!(decoded_by("resize,w=100,h=100,fit=cover/jpeg", &jpeg).is_none());
    assert!(decoded_by("resize,w=201/jpeg", &jpeg).is_none());
    assert!(decoded_by("resize,w=200/jpeg", ROCKET).is_none());
    assert!(matches!(
        decoded_by("crop,x=3,y=5,w=10,h=10/sepia/png", ROCKET),
        Some(Decoded::Region(_))
    ));
}

/// The planar path's JPEG is as close as the RGB path's (within 1 dB) to
/// the image both encode (the RGB path's steps written losslessly): it
/// skips a chroma upsampling and downsampling round trip, so it is usually
/// closer; a small blur of the half-size chroma planes (sigma 0.35 for 0.7)
/// is the furthest, 0.5 dB under.
#[test]
fn the_planar_path_is_as_faithful_as_the_rgb_path() {
    let jpeg = even_jpeg();
    for steps in [
        "",
        "flip,dir=h/",
        "flip,dir=v/",
        "rotate,deg=90/",
        "rotate,deg=180/",
        "rotate,deg=270/flip,dir=h/",
        "blur,sigma=2/",
        "blur,sigma=0.7/",
        "grayscale/",
        "watermark,text=imgflow,size=48,opacity=0.5/",
        "watermark,text=Hello,pos=center,size=30,color=ff2000,opacity=1/",
        "resize,w=480/",
        "resize,w=100/rotate,deg=90/",
    ] {
        let jpeg_steps = format!("{steps}jpeg,q=80");
        let reference = image_of(&general(&format!("{steps}png"), &jpeg));
        let (fast, general) = (fast(&jpeg_steps, &jpeg), general(&jpeg_steps, &jpeg));
        assert_eq!(
            (fast.width, fast.height),
            (general.width, general.height),
            "{steps}"
        );
        let (a, b) = (image_of(&fast), image_of(&general));
        assert_eq!(a.color(), b.color(), "{steps}");
        let (ours, theirs) = (psnr(&a, &reference), psnr(&b, &reference));
        assert!(
            ours >= theirs - 1.0 && ours > 32.0,
            "{steps}: planar {ours:.1} dB, RGB {theirs:.1} dB"
        );
    }
}

#[test]
fn planar_grayscale_is_rec709_luma_within_jpeg_rounding() {
    let jpeg = even_jpeg();
    let source = full_decode(&jpeg, &Limits::default())
        .unwrap()
        .image
        .to_rgb8();
    let yuv = planar::decode(&jpeg, 100, 8).unwrap();
    let gray = planar::apply(yuv, &Op::Grayscale, (640, 424)).unwrap();
    assert_eq!(gray.subsamp, turbojpeg::Subsamp::Gray);
    let mut total = 0.0;
    for (s, &g) in source.pixels().zip(&gray.buf) {
        let expected =
            0.2126 * f64::from(s[0]) + 0.7152 * f64::from(s[1]) + 0.0722 * f64::from(s[2]);
        total += (f64::from(g) - expected).abs();
    }
    // Chroma is taken per 2x2 block, not upsampled: close, not equal.
    let mean = total / f64::from(source.width() * source.height());
    assert!(mean < 1.5, "mean difference {mean}");
}

#[test]
fn a_crop_decodes_only_its_region_to_the_same_pixels() {
    let whole = full_decode(ROCKET, &Limits::default()).unwrap().image;
    // Unaligned, aligned, the whole image, and crops the edges clip.
    for (x, y, w, h) in [
        (101, 37, 200, 150),
        (16, 16, 64, 48),
        (0, 0, 640, 427),
        (600, 400, 100, 100),
        (17, 0, 5, 427),
        (639, 426, 1, 1),
    ] {
        let crop = fast(&format!("crop,x={x},y={y},w={w},h={h}/png"), ROCKET);
        let (cw, ch) = (w.min(640 - x), h.min(427 - y));
        let expected = whole.crop_imm(x, y, cw, ch).to_rgb8();
        assert_eq!(image_of(&crop).to_rgb8(), expected, "crop {w}x{h}+{x}+{y}");
    }
}

#[test]
fn a_truncated_jpeg_is_refused_whatever_the_crop() {
    let cut = &ROCKET[..ROCKET.len() / 2];
    let recipe = Recipe::parse("crop,x=0,y=0,w=50,h=20/png").unwrap();
    let err = run(cut, &recipe, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "corrupt_image");
}

#[test]
fn steps_in_place_give_the_same_bytes_as_steps_on_a_copy() {
    let rgba = {
        let mut image = image::load_from_memory(CHELSEA).unwrap().to_rgba8();
        for (i, p) in image.pixels_mut().enumerate() {
            p[3] = (i % 256) as u8;
        }
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(image)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    let gray = {
        let mut png = Vec::new();
        image::load_from_memory(CHELSEA)
            .unwrap()
            .grayscale()
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    for input in [CHELSEA, rgba.as_slice(), gray.as_slice()] {
        for steps in [
            "sepia",
            "watermark,text=imgflow,size=40,opacity=0.6",
            "flip,dir=h",
            "flip,dir=v",
            "rotate,deg=90",
            "rotate,deg=180",
            "rotate,deg=270",
            "grayscale",
            "sepia/watermark,text=x/flip,dir=h/grayscale",
        ] {
            let steps = format!("{steps}/png");
            assert_eq!(
                fast(&steps, input).bytes,
                general(&steps, input).bytes,
                "{steps}"
            );
        }
    }
}

#[test]
fn tiled_quarter_turns_put_every_sample_where_a_plain_loop_does() {
    for (w, h) in [(1, 1), (37, 70), (64, 32), (100, 3)] {
        let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        for clockwise in [true, false] {
            let mut tiled = vec![0; src.len()];
            inplace::rotate_tiled::<3>(&src, w, h, &mut tiled, clockwise);
            let mut plain = vec![0; src.len()];
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = if clockwise {
                        (h - 1 - y, x)
                    } else {
                        (y, w - 1 - x)
                    };
                    let (s, d) = ((y * w + x) * 3, (dy * h + dx) * 3);
                    plain[d..d + 3].copy_from_slice(&src[s..s + 3]);
                }
            }
            assert_eq!(tiled, plain, "{w}x{h} clockwise={clockwise}");
        }
    }
}

#[test]
fn planes_turned_eight_by_eight_match_the_tiled_turn() {
    for (w, h) in [
        (1, 1),
        (8, 8),
        (16, 8),
        (37, 70),
        (64, 32),
        (100, 3),
        (130, 67),
    ] {
        let src: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
        for clockwise in [true, false] {
            let mut blocks = vec![0; src.len()];
            turn::rotate_plane(&src, w, h, &mut blocks, clockwise);
            let mut tiled = vec![0; src.len()];
            inplace::rotate_tiled::<1>(&src, w, h, &mut tiled, clockwise);
            assert_eq!(blocks, tiled, "{w}x{h} clockwise={clockwise}");
        }
    }
}

/// The analysis a fast path gives (from the planes, the DC coefficients
/// the DCT-domain path sees, or a 1/8-scale decode beside a region) describes the same image as the general path's: same
/// size and format, nearly the same dominant colour, and BlurHashes that
/// decode to the same 4x3 picture within one quantisation step.
#[test]
fn fast_paths_describe_the_source_as_the_general_path_does() {
    let jpeg = even_jpeg();
    let limits = Limits::default();
    let analysed = |recipe: &str| {
        let recipe = Recipe::parse(recipe).unwrap();
        super::super::run_analysed(&jpeg, &recipe, &limits)
            .unwrap()
            .2
    };
    let reference = analysed("flip,dir=h/png");
    for recipe in [
        // The DCT-domain path: its DC values, turned back.
        "flip,dir=h/jpeg",
        "rotate,deg=270/jpeg",
        // The planes; a region beside a 1/8-scale decode.
        "resize,w=320/jpeg",
        "crop,x=8,y=8,w=64,h=64/jpeg",
    ] {
        assert!(
            decoded_by(recipe, &jpeg).is_some(),
            "{recipe} takes a fast path"
        );
        let fast = analysed(recipe);
        assert_eq!(
            (fast.width, fast.height, &fast.format, fast.frames),
            (
                reference.width,
                reference.height,
                &reference.format,
                reference.frames
            ),
            "{recipe}"
        );
        let rgb = |hex: &str| {
            (0..3)
                .map(|i| i32::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap())
                .collect::<Vec<_>>()
        };
        for (a, b) in rgb(&fast.dominant_color)
            .iter()
            .zip(rgb(&reference.dominant_color))
        {
            assert!(
                (a - b).abs() <= 24,
                "{recipe}: {} vs {}",
                fast.dominant_color,
                reference.dominant_color
            );
        }
        let picture = |hash: &str| blurhash::decode(hash, 4, 3, 1.0).unwrap();
        let (a, b) = (picture(&fast.blurhash), picture(&reference.blurhash));
        let diffs: Vec<u8> = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).collect();
        let worst = diffs.iter().copied().max().unwrap();
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        // The general path's own shrink-on-load (`resize,w=80/png`, a 1/8
        // decode) differs from its full decode by 27 at worst, 5.1 on
        // average: one step of BlurHash's AC quantisation.
        assert!(
            worst <= 32 && mean <= 6.0,
            "{recipe}: {} vs {} (worst {worst}, mean {mean:.1})",
            fast.blurhash,
            reference.blurhash
        );
    }
}
