//! New input formats (issue 16): real files made by independent encoders
//! (Pillow, ImageMagick with libheif's x265 and aom encoders, libjxl's
//! `cjxl`), decoded by our pipeline and by libvips or ImageMagick, must
//! agree at ≥ 40 dB PSNR (8-bit RGB; a transparent SVG is composited on
//! white by both sides first). SVG never reaches outside the upload, and
//! hostile SVGs fail with a stable code. At the end, HEIC and TIFF jobs and
//! a hostile SVG go through the whole service (worker, sandbox children,
//! LocalStack).

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::{DynamicImage, RgbImage};
use imgflow::outbox::Status;
use imgflow::pipeline::{self, Limits};
use imgflow::recipe::Recipe;

use crate::harness::{ROCKET, TestApp};
use crate::reference::{Scratch, imagemagick, psnr, render_one, tool, vips};
use crate::tools;

/// Agreement with the reference decoders (observed in the comments of
/// `every_new_format_decodes_as_libvips_or_imagemagick_does`).
const FORMAT_DB: f64 = 40.0;

/// The photo every raster file is made from, as a PNG, 640 wide, without
/// the Adobe RGB profile rocket.jpg carries.
fn photo(scratch: &Scratch) -> PathBuf {
    let png = scratch.path("photo.png");
    let jpg = scratch.write("rocket.jpg", ROCKET);
    tool(
        Command::new(imagemagick("convert"))
            .arg(&jpg)
            // Untagged: these tests are about decoding each format; colour
            // management has its own (tests/it/colour.rs).
            .args(["-strip", "-resize", "640x"])
            .arg(&png),
    );
    png
}

const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" viewBox="0 0 400 300">
  <rect width="400" height="300" fill="#f4f0e8"/>
  <rect x="40" y="40" width="200" height="120" fill="#e02828"/>
  <circle cx="280" cy="180" r="80" fill="#2050d0" fill-opacity="0.8"/>
  <path d="M20 280 L380 200 L380 280 Z" fill="#30a050"/>
</svg>"##;

/// Every kind of input, made by a tool that shares no code with our decoders.
fn make_inputs(scratch: &Scratch) -> Vec<(&'static str, PathBuf)> {
    let photo = photo(scratch);
    let convert = |args: &[&str], out: &str| {
        let path = scratch.path(out);
        tool(
            Command::new(imagemagick("convert"))
                .arg(&photo)
                .args(args)
                .arg(&path),
        );
        path
    };
    let mut inputs = vec![
        (
            "tiff 8-bit (ImageMagick, deflate)",
            convert(&["-compress", "zip"], "p8.tif"),
        ),
        (
            "tiff 16-bit (ImageMagick)",
            convert(&["-depth", "16"], "p16.tif"),
        ),
        ("bmp (ImageMagick)", convert(&[], "p.bmp")),
        (
            "heic (ImageMagick + libheif/x265)",
            convert(&["-quality", "80"], "p.heic"),
        ),
        (
            "avif (ImageMagick + libheif/aom)",
            convert(&["-quality", "80"], "p.avif"),
        ),
    ];
    // A multi-page TIFF: the first page is the photo, the second is not.
    let pages = scratch.path("pages.tif");
    tools::run_python(
        "import sys; from PIL import Image\n\
         a = Image.open(sys.argv[1]).convert('RGB'); b = Image.new('RGB', (50, 50), (0, 255, 0))\n\
         a.save(sys.argv[2], save_all=True, append_images=[b], compression='tiff_lzw')",
        &[photo.to_str().unwrap(), pages.to_str().unwrap()],
    );
    inputs.push(("tiff multi-page (Pillow, LZW)", pages));
    let jxl = scratch.path("p.jxl");
    tool(
        Command::new("cjxl")
            .arg(&photo)
            .arg(&jxl)
            .args(["-q", "90"]),
    );
    inputs.push(("jxl (libjxl cjxl)", jxl));
    inputs.push(("svg", scratch.write("drawing.svg", SVG.as_bytes())));
    inputs
}

/// The reference decode: libvips for everything it loads natively, ImageMagick for BMP.
fn reference(input: &Path, scratch: &Scratch) -> RgbImage {
    let name = input.file_name().unwrap().to_string_lossy();
    let png = scratch.path(&format!("{name}.ref.png"));
    if name.ends_with(".bmp") {
        tool(Command::new(imagemagick("convert")).arg(input).arg(&png));
    } else {
        tool(Command::new(vips()).arg("copy").arg(input).arg(&png));
    }
    on_white(&image::open(&png).expect("the reference PNG"))
}

fn on_white(image: &DynamicImage) -> RgbImage {
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        let c = |v: u8| ((u32::from(v) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([c(p[0]), c(p[1]), c(p[2])])
    })
}

#[test]
fn every_new_format_decodes_as_libvips_or_imagemagick_does() {
    let scratch = Scratch::new("formats");
    for (what, input) in make_inputs(&scratch) {
        let bytes = std::fs::read(&input).unwrap();
        let ours = render_one(&bytes, "png");
        let ours = on_white(&image::load_from_memory(&ours.bytes).unwrap());
        let theirs = reference(&input, &scratch);
        let db = psnr(&ours, &theirs);
        eprintln!("{what}: {db:.1} dB");
        assert!(
            db >= FORMAT_DB,
            "{what}: {db:.1} dB against the reference decode"
        );
    }
}

#[test]
fn svg_is_rasterised_at_the_size_the_recipe_asks_for() {
    // 400x300 drawn at 1600 wide: the same as libvips rendering it at 4x,
    // not 400 pixels scaled up.
    let scratch = Scratch::new("svg-scale");
    let svg = scratch.write("d.svg", SVG.as_bytes());
    let ours = render_one(SVG.as_bytes(), "resize,w=1600,up=true/png");
    assert_eq!((ours.width, ours.height), (1600, 1200));
    let png = scratch.path("d4.png");
    tool(
        Command::new(vips())
            .arg("copy")
            .arg(format!("{}[scale=4]", svg.display()))
            .arg(&png),
    );
    let theirs = on_white(&image::open(&png).unwrap());
    let ours = on_white(&image::load_from_memory(&ours.bytes).unwrap());
    let db = psnr(&ours, &theirs);
    assert!(
        db >= FORMAT_DB,
        "SVG at 4x: {db:.1} dB against libvips's 4x render"
    );
}

#[test]
fn svg_references_to_files_and_urls_are_never_fetched() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">
  <rect width="64" height="64" fill="#336699"/>
  <image href="http://127.0.0.1:{port}/x.png" width="64" height="64"/>
  <image xlink:href="http://127.0.0.1:{port}/y.svg" width="64" height="64"/>
  <image href="file:///etc/passwd" width="64" height="64"/>
  <image href="/etc/hostname" width="64" height="64"/>
  <image href="data:image/svg+xml;utf8,&lt;svg xmlns='http://www.w3.org/2000/svg'&gt;&lt;image href='http://127.0.0.1:{port}/z.png'/&gt;&lt;/svg&gt;" width="64" height="64"/>
</svg>"##
    );
    let out = render_one(svg.as_bytes(), "png");
    let image = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
    assert!(
        image.pixels().all(|p| p.0 == [0x33, 0x66, 0x99]),
        "only the rectangle is drawn"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the SVG made a connection from {peer}"),
        Err(e) => panic!("accept: {e}"),
    }
}

/// Hostile SVGs, each with the error code it must fail with.
pub fn hostile_svgs() -> Vec<(&'static str, String)> {
    let laughs = {
        let mut dtd = String::from("<!DOCTYPE svg [<!ENTITY a0 \"lol\">");
        for i in 1..10 {
            let prev = format!("&a{};", i - 1).repeat(10);
            dtd.push_str(&format!("<!ENTITY a{i} \"{prev}\">"));
        }
        format!(
            "<?xml version=\"1.0\"?>{dtd}]><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><text>&a9;</text></svg>"
        )
    };
    let uses = {
        // Ten <use>s of a group of ten <use>s of ... nine levels deep: 10^9 nodes.
        let mut defs = String::from("<g id=\"l0\"><rect width=\"1\" height=\"1\"/></g>");
        for i in 1..10 {
            defs.push_str(&format!("<g id=\"l{i}\">"));
            for _ in 0..10 {
                defs.push_str(&format!("<use href=\"#l{}\"/>", i - 1));
            }
            defs.push_str("</g>");
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><defs>{defs}</defs><use href=\"#l9\"/></svg>"
        )
    };
    let many = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\">{}</svg>",
        "<rect width=\"1\" height=\"1\"/>".repeat(200_000)
    );
    let giant = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000000\" height=\"1000000\"><rect width=\"10\" height=\"10\"/></svg>".to_owned();
    vec![
        ("billion laughs", laughs),
        ("use bomb", uses),
        ("200k nodes", many),
        ("giant canvas", giant),
    ]
}

#[test]
fn hostile_svgs_fail_with_image_too_large() {
    let recipe = Recipe::parse("resize,w=100/png").unwrap();
    for (what, svg) in hostile_svgs() {
        let started = std::time::Instant::now();
        let error = pipeline::run(svg.as_bytes(), &recipe, &Limits::default())
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(error.code(), "image_too_large", "{what}: {error}");
        assert!(
            started.elapsed().as_secs() < 5,
            "{what}: refused, but slowly"
        );
    }
}

#[tokio::test]
async fn heic_and_tiff_jobs_finish_and_a_hostile_svg_fails_through_the_service() {
    let scratch = Scratch::new("formats-service");
    let inputs = make_inputs(&scratch);
    let file = |suffix: &str| {
        let path = &inputs
            .iter()
            .find(|(_, p)| p.to_string_lossy().ends_with(suffix))
            .unwrap()
            .1;
        std::fs::read(path).unwrap()
    };
    let app = TestApp::spawn().await;
    let recipe = [("recipe", "small:resize,w=320/jpeg+big:png")];
    app.put_inbox("formats/photo.heic", &file("p.heic"), &recipe)
        .await;
    app.put_inbox("formats/photo.tif", &file("p16.tif"), &recipe)
        .await;
    let (_, bomb) = hostile_svgs().remove(1);
    app.put_inbox("formats/bomb.svg", bomb.as_bytes(), &recipe)
        .await;

    for key in ["formats/photo.heic", "formats/photo.tif"] {
        let manifest = app.wait_for_manifest(key).await;
        assert_eq!(manifest.status, Status::Done, "{key}: {manifest:?}");
        let small = &manifest.outputs[0];
        assert_eq!((small.width, small.height), (320, 214), "{key}");
        let big = app.get_outbox(&manifest.outputs[1].key).await.unwrap();
        let big = image::load_from_memory(&big).unwrap().to_rgb8();
        assert_eq!(big.dimensions(), (640, 427), "{key}");
        let local = render_one(
            &file(if key.ends_with("heic") {
                "p.heic"
            } else {
                "p16.tif"
            }),
            "png",
        );
        let local = image::load_from_memory(&local.bytes).unwrap().to_rgb8();
        assert_eq!(
            big, local,
            "{key}: the sandboxed worker decodes as the library does"
        );
    }
    let manifest = app.wait_for_manifest("formats/bomb.svg").await;
    assert_eq!(manifest.status, Status::Failed, "{manifest:?}");
    assert_eq!(
        manifest.error.as_ref().unwrap().code,
        "image_too_large",
        "{manifest:?}"
    );
    app.wait_until_queue_is_empty().await;
}

#[tokio::test]
async fn the_presign_api_accepts_every_new_input_type() {
    let app = TestApp::spawn().await;
    for content_type in [
        "image/tiff",
        "image/bmp",
        "image/heic",
        "image/heif",
        "image/avif",
        "image/jxl",
        "image/svg+xml",
    ] {
        let body = serde_json::json!({"filename": "x", "content_type": content_type, "size": 1000});
        let (status, answer) = app.post_upload(body).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{content_type}: {answer}");
        assert_eq!(answer["headers"]["content-type"], content_type);
    }
}
