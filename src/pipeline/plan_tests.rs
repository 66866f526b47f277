//! The cost model, and issue 13's hostile inputs, each built in code: every
//! one ends in an error with its stable code, or in an output within the
//! limits, before anything large is allocated.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageFormat};

use super::*;
use crate::pipeline::{self, guard, run};

const CHELSEA: &[u8] = include_bytes!("../../tests/fixtures/chelsea.png");
const ROCKET: &[u8] = include_bytes!("../../tests/fixtures/rocket.jpg");

fn recipe(text: &str) -> Recipe {
    Recipe::parse(text).expect("the recipe parses")
}

fn gray_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    DynamicImage::ImageLuma8(GrayImage::new(width, height))
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

fn probe_of(format: ImageFormat, width: u32, height: u32) -> Probe {
    Probe {
        format: crate::pipeline::SourceFormat::from_image(format).expect("an image-crate format"),
        width,
        height,
        orientation: Orientation::NoTransforms,
        scalable: false,
        extra_pixels: 0,
        frames: 1,
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, PipelineError>) -> &'static str {
    result.expect_err("the job was accepted").code()
}

#[test]
fn the_plan_predicts_every_outputs_size() {
    let probe = pipeline::probe(CHELSEA, &Limits::default()).unwrap();
    let text = "a:resize,w=200/rotate,deg=90/png+b:crop,x=10,y=20,w=1000,h=50/png+\
                c:resize,w=64,h=64,fit=cover/blur,sigma=2/webp+d:resize,h=900,up=true/png+\
                e:resize,w=120,h=10,fit=fill/jpeg+f:grayscale/sepia/png";
    let recipe = recipe(text);
    let plan = plan(&probe, &recipe, &Limits::default()).unwrap();
    let renditions = run(CHELSEA, &recipe, &Limits::default()).unwrap();
    for (planned, made) in plan.outputs.iter().zip(&renditions) {
        assert_eq!(planned.name, made.name);
        assert_eq!(planned.format, made.format);
        assert_eq!((planned.width, planned.height), (made.width, made.height));
    }
    // The source, held throughout, and the largest output's steps.
    let source = u64::from(probe.width) * u64::from(probe.height);
    let d = &plan.outputs[3];
    assert!(plan.peak_pixels >= source + u64::from(d.width) * u64::from(d.height));
    assert!(plan.peak_pixels <= 2 * source + 3 * u64::from(d.width) * u64::from(d.height));
}

#[test]
fn a_shrinking_jpeg_reserves_only_the_reduced_decode() {
    let probe = pipeline::probe(ROCKET, &Limits::default()).unwrap();
    assert!(probe.scalable);
    let plan = plan(&probe, &recipe("resize,w=32"), &Limits::default()).unwrap();
    assert!(plan.eighths < 8);
    let full = u64::from(probe.width) * u64::from(probe.height);
    assert!(plan.peak_pixels < full, "{} vs {full}", plan.peak_pixels);
}

#[test]
fn a_tall_png_upscaled_to_16384_wide_is_refused_before_decoding() {
    // Issue 13: 109 bytes that made the worker allocate 4 TiB and abort.
    let tall = gray_png(1, 16_384);
    let recipe = recipe("resize,w=16384,up=true");
    let probe = pipeline::probe(&tall, &Limits::default()).unwrap();
    let err = plan(&probe, &recipe, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    assert!(
        matches!(
            err,
            PipelineError::StepTooLarge {
                width: 16_384,
                height: 268_435_456,
                step: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        code(run(&tall, &recipe, &Limits::default())),
        "image_too_large"
    );
}

#[test]
fn a_forced_upscale_of_one_pixel_counts_in_the_plan() {
    let dot = gray_png(1, 1);
    let text = "resize,w=16384,h=16384,fit=fill,up=true/sharpen,sigma=0.1/jpeg";
    assert_eq!(
        code(run(&dot, &recipe(text), &Limits::default())),
        "image_too_large"
    );
    // Where the limits allow it, its peak is what the worker must reserve:
    // the resized image, then the sharpened one and its mask.
    let roomy = Limits {
        max_pixels: 300_000_000,
        ..Limits::default()
    };
    let plan = plan(&probe_of(ImageFormat::Png, 1, 1), &recipe(text), &roomy).unwrap();
    let side = 16_384u64 * 16_384;
    assert!(plan.peak_pixels >= 3 * side, "{}", plan.peak_pixels);
    assert!(plan.peak_pixels <= 4 * side, "{}", plan.peak_pixels);
}

#[test]
fn a_blur_chain_on_a_large_source_is_too_expensive() {
    let big = probe_of(ImageFormat::Png, 10_000, 10_000);
    let err = plan(
        &big,
        &recipe("blur,sigma=100/blur,sigma=100"),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "recipe_too_expensive");
    // The same on a photo-sized source is fine.
    let photo = probe_of(ImageFormat::Png, 1_000, 750);
    assert!(
        plan(
            &photo,
            &recipe("blur,sigma=100/blur,sigma=100"),
            &Limits::default()
        )
        .is_ok()
    );
}

#[test]
fn a_16384_wide_webp_is_refused_as_encode_failed_without_panicking() {
    let wide = gray_png(16_384, 1);
    assert_eq!(
        code(run(&wide, &recipe("webp"), &Limits::default())),
        "encode_failed"
    );
    // The encoder itself returns the error rather than panicking.
    let image = DynamicImage::ImageLuma8(GrayImage::new(WEBP_MAX_DIMENSION + 1, 1));
    let format = crate::recipe::Format::from_extension("webp").unwrap();
    assert!(super::super::encode::encode(&image, format, None).is_err());
    // One pixel less is fine.
    assert!(run(&gray_png(16_383, 1), &recipe("webp"), &Limits::default()).is_ok());
}

/// A GIF whose 1x1 logical screen holds a `w`x`h` frame.
fn gif_with_frame(w: u16, h: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend([1, 0, 1, 0, 0x80, 0, 0]); // 1x1 screen, 2-colour global table
    gif.extend([0, 0, 0, 255, 255, 255]);
    gif.push(0x2c);
    gif.extend([0, 0, 0, 0]);
    gif.extend(w.to_le_bytes());
    gif.extend(h.to_le_bytes());
    gif.push(0);
    gif.extend([2, 2, 0x44, 0x01, 0]); // LZW code size 2, one sub-block
    gif.push(0x3b);
    gif
}

#[test]
fn a_gif_frame_larger_than_its_screen_is_refused_before_decoding() {
    let bomb = gif_with_frame(16_000, 16_000);
    let err = pipeline::probe(&bomb, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "image_too_large", "{err}");
    assert_eq!(
        code(run(&bomb, &recipe("png"), &Limits::default())),
        "image_too_large"
    );
    // A frame that fits is decoded.
    let fits = gif_with_frame(1, 1);
    assert_eq!(guard::check_gif_frames(&fits).unwrap().unwrap().width, 1);
}

#[test]
fn a_real_gifs_frames_fit_its_screen() {
    let mut gif = Vec::new();
    DynamicImage::ImageRgba8(image::RgbaImage::new(7, 5))
        .write_to(&mut Cursor::new(&mut gif), ImageFormat::Gif)
        .unwrap();
    let frame = guard::check_gif_frames(&gif).unwrap().unwrap();
    assert_eq!((frame.width, frame.height), (7, 5));
    let made = run(&gif, &recipe("png"), &Limits::default()).unwrap();
    assert_eq!((made[0].width, made[0].height), (7, 5));
}

/// Bits, least significant first, as DEFLATE packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    bit: u32,
}

impl Bits {
    fn push(&mut self, value: u32, count: u32) {
        for i in 0..count {
            if self.bit == 0 {
                self.out.push(0);
            }
            *self.out.last_mut().unwrap() |= (((value >> i) & 1) as u8) << self.bit;
            self.bit = (self.bit + 1) % 8;
        }
    }

    /// A Huffman code, most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.push((code >> i) & 1, 1);
        }
    }
}

/// A zlib stream of `mib` MiB of zeros in one fixed-Huffman block: a literal
/// 0 and length-258 matches at distance 1, 13 bits each (about 1:160).
fn zeros_zlib(mib: usize) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.push(1, 1); // final block
    bits.push(1, 2); // fixed Huffman
    bits.code(0x30, 8); // literal 0
    let matches = ((mib << 20) - 1) / 258;
    for _ in 0..matches {
        bits.code(0xc5, 8); // length code 285: 258
        bits.code(0, 5); // distance code 0: 1
    }
    bits.code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(bits.out);
    // Adler-32 of n zeros: a stays 1, b gains 1 per byte.
    let n = 1 + 258 * matches as u32;
    out.extend(((n % 65_521) << 16 | 1).to_be_bytes());
    out
}

/// PNG chunk CRC: flate2's CRC-32 (a dev-dependency already).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// A 1x1 PNG with an iCCP chunk of `mib` MiB of zeros, after IHDR.
fn png_with_profile(mib: usize) -> Vec<u8> {
    let png = gray_png(1, 1);
    let mut data = b"bomb\0\0".to_vec();
    data.extend(zeros_zlib(mib));
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend(b"iCCP");
    chunk.extend(&data);
    chunk.extend(crc32(&chunk[4..]).to_be_bytes());
    [&png[..33], &chunk, &png[33..]].concat()
}

#[test]
fn a_png_with_a_huge_icc_profile_decodes_within_the_metadata_limit() {
    let icc = |png: &[u8]| {
        let (_, mut decoder) = super::super::decode::open(png, &Limits::default()).unwrap();
        decoder.icc_profile().unwrap().map(|p| p.len())
    };
    // The construction is sound: a 1 MiB profile is read whole.
    assert_eq!(
        icc(&png_with_profile(1)),
        Some(1 + 258 * (((1 << 20) - 1) / 258))
    );
    // 256 MiB of profile (16 times the limit) in a 1.7 MB file.
    let bomb = png_with_profile(256);
    assert!(bomb.len() < 2_000_000);
    assert_eq!(icc(&bomb), None);
    // The PNG decoder stops inflating at MAX_PNG_METADATA_BYTES and drops
    // the profile (as it drops any bad one); the pixels are fine.
    let made = run(&bomb, &recipe("png"), &Limits::default()).unwrap();
    assert_eq!((made[0].width, made[0].height), (1, 1));
}

/// The byte ranges of a JPEG's scans: each SOS segment and its data.
fn scans(jpeg: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at + 1] != 0xd9 {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let mut end = at + 2 + len;
        if jpeg[at + 1] == 0xda {
            end = guard::skip_entropy_data(jpeg, end);
            found.push(at..end);
        }
        at = end;
    }
    found
}

fn progressive_jpeg() -> Vec<u8> {
    let pixels: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width: 64,
        pitch: 64 * 3,
        height: 64,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut compressor = turbojpeg::Compressor::new().unwrap();
    compressor.set_progressive(true).unwrap();
    compressor.compress_to_vec(image).unwrap()
}

#[test]
fn a_progressive_jpeg_decodes_and_a_scan_bomb_is_refused_before_decoding() {
    let jpeg = progressive_jpeg();
    let found = scans(&jpeg);
    assert!(found.len() > 2, "{} scans", found.len());
    assert_eq!(guard::check_jpeg_scans(&jpeg), Ok(found.len()));
    assert!(run(&jpeg, &recipe("png"), &Limits::default()).is_ok());

    // Issue 13: one tiny scan repeated 10,000 times (100 s of CPU before).
    let last = found.last().unwrap().clone();
    let mut bomb = jpeg[..last.end].to_vec();
    for _ in 0..10_000 {
        bomb.extend_from_slice(&jpeg[last.clone()]);
    }
    bomb.extend_from_slice(&jpeg[last.end..]);
    let err = pipeline::probe(&bomb, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "image_too_large", "{err}");
    assert!(err.to_string().contains("scans"), "{err}");
    assert_eq!(
        code(run(&bomb, &recipe("png"), &Limits::default())),
        "image_too_large"
    );
}

#[test]
fn the_scan_walk_counts_only_real_markers() {
    // Stuffed bytes and restart markers inside the data are not scans.
    let jpeg = [
        0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0xff, 0x00, 0xff, 0xd0, 0x12, 0xff, 0xda, 0x00, 0x02,
        0x34, 0xff, 0xd9,
    ];
    assert_eq!(guard::check_jpeg_scans(&jpeg), Ok(2));
    // Truncated streams end the count; the decoder reports them.
    assert_eq!(guard::check_jpeg_scans(&jpeg[..8]), Ok(1));
    assert_eq!(guard::check_jpeg_scans(&[0xff, 0xd8]), Ok(0));
}

proptest::proptest! {
    #[test]
    fn the_byte_walks_never_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let _ = guard::check_jpeg_scans(&[&[0xff, 0xd8][..], &tail].concat());
        let _ = guard::check_gif_frames(&[&b"GIF89a"[..], &tail].concat());
    }
}
