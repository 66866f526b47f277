use std::io::Cursor;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{AnimationDecoder, Delay, Frame, ImageFormat, Rgba, RgbaImage};

use super::super::{Limits, plan, probe, run};
use crate::recipe::Recipe;

/// A 12-frame, 96x64 animated GIF, delays 40, 50, ... ms, played 3 times.
fn twelve_frames() -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        encoder.set_repeat(Repeat::Finite(3)).unwrap();
        for i in 0..12u32 {
            let image = RgbaImage::from_fn(96, 64, |x, _| {
                if x / 8 == i {
                    Rgba([255, 255, 0, 255])
                } else {
                    Rgba([(i * 20) as u8, 80, 160, 255])
                }
            });
            let delay = Delay::from_numer_denom_ms(40 + 10 * i, 1);
            encoder
                .encode_frame(Frame::from_parts(image, 0, 0, delay))
                .unwrap();
        }
    }
    bytes
}

/// A GIF of `frames` 1x1 frames on a `side` x `side` screen: a few bytes a
/// frame, but every frame decodes to a full screen.
pub(crate) fn frame_bomb(frames: u32, side: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&side.to_le_bytes());
    gif.extend_from_slice(&side.to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    for _ in 0..frames {
        // Descriptor: 1x1 at 0,0, no local table; LZW: clear, 0, end.
        gif.extend_from_slice(&[0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        gif.extend_from_slice(&[2, 2, 0x44, 0x01, 0]);
    }
    gif.push(0x3b);
    gif
}

fn frames_of(bytes: &[u8], format: ImageFormat) -> Vec<(u32, u32, u32)> {
    let frames = match format {
        ImageFormat::Gif => image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
            .unwrap()
            .into_frames(),
        _ => image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
            .unwrap()
            .into_frames(),
    };
    frames
        .map(|f| {
            let f = f.unwrap();
            let (n, d) = f.delay().numer_denom_ms();
            (f.buffer().width(), f.buffer().height(), n / d)
        })
        .collect()
}

#[test]
fn the_header_counts_the_frames_of_a_gif() {
    let gif = twelve_frames();
    assert_eq!(probe(&gif, &Limits::default()).unwrap().frames, 12);
    assert_eq!(
        probe(&frame_bomb(3000, 4000), &Limits::default())
            .unwrap()
            .frames,
        3000
    );
}

#[test]
fn every_frame_and_delay_survives_a_resize_to_webp_and_to_gif() {
    let gif = twelve_frames();
    let recipe = Recipe::parse("w:resize,w=48/webp+g:resize,w=48/flip/gif").unwrap();
    let out = run(&gif, &recipe, &Limits::default()).unwrap();
    let delays: Vec<u32> = (0..12).map(|i| 40 + 10 * i).collect();
    for (rendition, format) in out.iter().zip([ImageFormat::WebP, ImageFormat::Gif]) {
        let frames = frames_of(&rendition.bytes, format);
        assert_eq!(frames.len(), 12, "{}", rendition.name);
        assert!(frames.iter().all(|&(w, h, _)| (w, h) == (48, 32)));
        let got: Vec<u32> = frames.iter().map(|f| f.2).collect();
        assert_eq!(got, delays, "{}", rendition.name);
    }
    assert_eq!(
        animation_loops(&out[0].bytes),
        3,
        "the WebP's ANIM loop count"
    );
}

fn animation_loops(webp: &[u8]) -> u16 {
    super::webp_loops(webp)
}

#[test]
fn frames_first_and_still_formats_take_the_first_frame() {
    let gif = twelve_frames();
    let recipe =
        Recipe::parse("f:resize,w=48/webp,frames=first+j:resize,w=48/jpeg+g:gif,frames=first")
            .unwrap();
    let out = run(&gif, &recipe, &Limits::default()).unwrap();
    // A still WebP: no ANMF chunk, and it decodes as one image.
    assert_eq!(
        super::frame_count(&out[0].bytes, super::super::formats::SourceFormat::WebP),
        1
    );
    assert!(!out[0].bytes.windows(4).any(|w| w == b"ANMF"));
    assert_eq!(image::load_from_memory(&out[0].bytes).unwrap().width(), 48);
    assert_eq!(frames_of(&out[2].bytes, ImageFormat::Gif).len(), 1);
    let p = probe(&gif, &Limits::default()).unwrap();
    assert_eq!(plan(&p, &recipe, &Limits::default()).unwrap().frames, 1);
}

#[test]
fn a_frame_bomb_is_refused_by_the_plan_from_its_header() {
    // 3000 frames x 16 MP: 48 G pixels to decode from a 45 KB file.
    let bomb = frame_bomb(3000, 4000);
    assert!(bomb.len() < 50_000);
    let limits = Limits::default();
    let p = probe(&bomb, &limits).unwrap();
    let recipe = Recipe::parse("resize,w=64/webp").unwrap();
    // The plan reads the header only: this is the check `run` makes first.
    let err = plan(&p, &recipe, &limits).unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    assert!(err.to_string().contains("3000 frames"), "{err}");
    assert_eq!(
        run(&bomb, &recipe, &limits).unwrap_err().code(),
        "image_too_large"
    );
    // Its first frame alone is a fair request.
    let first = Recipe::parse("resize,w=64/webp,frames=first").unwrap();
    let out = run(&bomb, &first, &limits).unwrap();
    assert_eq!((out[0].width, out[0].height), (64, 64));
}

#[test]
fn frames_times_canvas_counts_against_the_pixel_limit() {
    let gif = twelve_frames(); // 12 x 96 x 64 = 73,728 pixels
    let recipe = Recipe::parse("resize,w=48/webp").unwrap();
    let tight = Limits {
        max_pixels: 70_000,
        ..Limits::default()
    };
    let p = probe(&gif, &tight).unwrap();
    assert_eq!(
        plan(&p, &recipe, &tight).unwrap_err().code(),
        "image_too_large"
    );
    let roomy = Limits {
        max_pixels: 80_000,
        ..Limits::default()
    };
    let planned = plan(&p, &recipe, &roomy).unwrap();
    assert_eq!(planned.frames, 12);
    assert!(planned.peak_pixels >= 12 * 96 * 64);
}
