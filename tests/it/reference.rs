//! The image engine against independent references (issue 3), on real
//! photographs: resizing is compared with ImageMagick's and libvips's
//! Lanczos-3, and every output format is read back by decoders that share no
//! code with ours (ImageMagick's `identify`, libvips's loaders).
//!
//! The tools are required, never optional: ImageMagick 6 at
//! `/usr/bin/convert` and `/usr/bin/identify` (`/usr/local/bin/convert` may be
//! a stand-in, so never the PATH's `convert`) and `vips` on the PATH.
//! `scripts/test.sh` installs them with apt (`imagemagick libvips-tools`);
//! without them these tests fail and say so. No AWS, no LocalStack.
//!
//! PSNR is over the 8-bit RGB samples, `10·log10(255² / MSE)`, infinite for
//! identical images. For scale, on these photos: our Lanczos-3 and the two
//! references agree to 51-59 dB, a JPEG at q=90 scores 37-39 dB against its
//! source, and chelsea shifted by one pixel scores 29 dB.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{DynamicImage, RgbImage};
use imgflow::pipeline::{self, Limits, Rendition};
use imgflow::recipe::Recipe;

use crate::harness::{CHELSEA, ROCKET};

/// The real photographs every test here runs on.
const PHOTOS: [(&str, &[u8]); 2] = [("rocket.jpg", ROCKET), ("chelsea.png", CHELSEA)];

/// Our resize and a reference Lanczos-3 resize of the same photo must agree
/// at least this well (observed: 51 dB against ImageMagick, 50-59 dB against
/// libvips; libvips's own `vips thumbnail`, which decodes JPEGs at a reduced
/// DCT scale first, scores 44-51 dB; a one-pixel shift is 29 dB).
const RESIZE_DB: f64 = 40.0;

// ---------------------------------------------------------------- helpers --

/// Peak signal-to-noise ratio of two RGB8 images of one size, in dB
/// (`f64::INFINITY` when identical).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "PSNR compares images of one size"
    );
    let squares: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    if squares == 0.0 {
        return f64::INFINITY;
    }
    let mse = squares / a.as_raw().len() as f64;
    10.0 * (255.0_f64 * 255.0 / mse).log10()
}

/// Decode with the `image` crate (our own decoder) to RGB8.
pub fn rgb8(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes)
        .expect("our decoder reads it")
        .to_rgb8()
}

/// Run a recipe through the library pipeline.
pub fn render(source: &[u8], recipe: &str) -> Vec<Rendition> {
    let parsed = Recipe::parse(recipe).unwrap_or_else(|e| {
        panic!("recipe {recipe:?} does not parse (an operation not implemented yet?): {e}")
    });
    pipeline::run(source, &parsed, &Limits::default())
        .unwrap_or_else(|e| panic!("recipe {recipe:?} failed: {e}"))
}

/// Run a one-output recipe through the library pipeline.
pub fn render_one(source: &[u8], recipe: &str) -> Rendition {
    let mut renditions = render(source, recipe);
    assert_eq!(renditions.len(), 1, "{recipe:?} has one output");
    renditions.remove(0)
}

/// `imgflow process INPUT -o OUTPUT --recipe RECIPE`, the real binary.
pub fn imgflow_process(input: &Path, output: &Path, recipe: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("process")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["--recipe", recipe])
        // Nothing listens here: `process` must not need AWS.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("run the imgflow binary");
    assert!(
        out.status.success(),
        "imgflow process --recipe {recipe:?} failed (an operation not implemented yet?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A uuid-named folder under the system temp dir, removed on drop (also when
/// the test panics).
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("imgflow-{what}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("write a temp file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// ImageMagick 6's `convert`, `identify` or `compare`, by absolute path.
pub fn imagemagick(tool: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(tool);
    let is_imagemagick = Command::new(&path)
        .arg("-version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("ImageMagick"));
    assert!(
        is_imagemagick,
        "{} is missing or is not ImageMagick: the reference tests need ImageMagick 6 \
         (`apt-get install imagemagick`; scripts/test.sh installs it)",
        path.display()
    );
    path
}

/// libvips's `vips` command, from the PATH.
pub fn vips() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("vips"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`vips` is not on the PATH: the reference tests need libvips's command line \
                 (`apt-get install libvips-tools`; scripts/test.sh installs it)"
            )
        })
}

/// Run a reference tool; its stdout, or a panic with its stderr.
pub fn tool(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} did not run: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Decode `file` with libvips (`vips copy file x.png`), then read that PNG.
/// Any alpha channel must be fully opaque (our sources are), and is dropped.
fn vips_decode(file: &Path, scratch: &Scratch) -> DynamicImage {
    let png = scratch.path(&format!(
        "{}.vips.png",
        file.file_name().unwrap().to_string_lossy()
    ));
    tool(Command::new(vips()).arg("copy").arg(file).arg(&png));
    let image = image::open(&png).expect("the PNG vips wrote");
    if image.color().has_alpha() {
        assert!(
            image.to_rgba8().pixels().all(|p| p.0[3] == 255),
            "{}: libvips sees transparent pixels in an opaque photo",
            file.display()
        );
    }
    image
}

// ---------------------------------------------------------- (a) resizing --

/// sRGB's profile from Debian's colord-data (scripts/deps.sh installs it).
const SRGB_ICC: &str = "/usr/share/color/icc/colord/sRGB.icc";

/// Lanczos-3 resizes of `source` to exactly `size`, by ImageMagick
/// (`-filter Lanczos -resize WxH!`) and by libvips (`vips resize --kernel
/// lanczos3`), after converting to sRGB as the pipeline does.
fn reference_resizes(
    source: &Path,
    size: (u32, u32),
    scratch: &Scratch,
) -> Vec<(&'static str, RgbImage)> {
    let from = image::image_dimensions(source).expect("source dimensions");
    // Both convert a tagged source (rocket.jpg is Adobe RGB) to sRGB first,
    // as the pipeline does; an untagged one is left as it is.
    let magick = scratch.path("imagemagick.png");
    tool(
        Command::new(imagemagick("convert"))
            .arg(source)
            .args(["-intent", "relative", "-profile", SRGB_ICC])
            .args(["-filter", "Lanczos", "-resize"])
            .arg(format!("{}x{}!", size.0, size.1))
            .args(["-depth", "8"])
            .arg(&magick),
    );
    let libvips = scratch.path("vips.png");
    let srgb = scratch.path("vips-srgb.v");
    tool(
        Command::new(vips())
            .arg("icc_transform")
            .arg(source)
            .arg(&srgb)
            .args(["srgb", "--embedded", "--intent", "relative"]),
    );
    tool(
        Command::new(vips())
            .arg("resize")
            .arg(&srgb)
            .arg(&libvips)
            .arg((f64::from(size.0) / f64::from(from.0)).to_string())
            .arg("--vscale")
            .arg((f64::from(size.1) / f64::from(from.1)).to_string())
            .args(["--kernel", "lanczos3"]),
    );
    let mut out = vec![];
    for (name, path) in [("ImageMagick", magick), ("libvips", libvips)] {
        let image = image::open(&path).expect("a reference PNG").to_rgb8();
        assert_eq!(
            image.dimensions(),
            size,
            "{name} resized {} to another size",
            source.display()
        );
        out.push((name, image));
    }
    out
}

/// Resize every photo with `recipe` (a resize to PNG) and compare it with
/// the references resized to `size(source size, our size)`, then cropped to
/// our size around the centre (the half pixel may round either way).
fn assert_resize_matches_references(
    recipe: &str,
    expected: impl Fn((u32, u32)) -> (u32, u32),
    resize_to: impl Fn((u32, u32), (u32, u32)) -> (u32, u32),
) {
    let mut failures = vec![];
    for (name, bytes) in PHOTOS {
        let scratch = Scratch::new("reference");
        let source = scratch.write(name, bytes);
        let from = image::image_dimensions(&source).unwrap();
        let ours = render_one(bytes, recipe);
        let ours_rgb = rgb8(&ours.bytes);
        assert_eq!(
            (ours.width, ours.height),
            ours_rgb.dimensions(),
            "{name}: the rendition's stated size is its real size"
        );
        assert_eq!(
            ours_rgb.dimensions(),
            expected(from),
            "{name} {recipe}: size"
        );
        let (w, h) = ours_rgb.dimensions();
        for (tool_name, reference) in reference_resizes(&source, resize_to(from, (w, h)), &scratch)
        {
            let (rw, rh) = reference.dimensions();
            let offsets = |full: u32, part: u32| [(full - part) / 2, (full - part).div_ceil(2)];
            let db = offsets(rw, w)
                .into_iter()
                .flat_map(|x| offsets(rh, h).map(|y| (x, y)))
                .map(|(x, y)| {
                    let cropped = image::imageops::crop_imm(&reference, x, y, w, h).to_image();
                    psnr(&ours_rgb, &cropped)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            eprintln!("{name} {recipe} vs {tool_name} Lanczos-3: {db:.2} dB");
            if db < RESIZE_DB {
                failures.push(format!(
                    "{name} vs {tool_name}: {db:.2} dB < {RESIZE_DB} dB"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{recipe}: {failures:#?}");
}

fn round(x: f64) -> u32 {
    x.round() as u32
}

/// Resizing a real photo to 320 px wide matches ImageMagick's and libvips's
/// Lanczos-3 resize to the same size within 40 dB PSNR (observed 51-59 dB),
/// and keeps the aspect ratio (height rounded).
#[test]
fn resizing_a_photo_matches_imagemagick_and_libvips_lanczos3_within_40_db() {
    assert_resize_matches_references(
        "resize,w=320/png",
        |(w, h)| (320, round(f64::from(h) * 320.0 / f64::from(w))),
        |_, ours| ours,
    );
}

/// A large reduction (rocket.jpg 640 → 100 px wide, chelsea.png 451 → 100)
/// also matches the Lanczos-3 references within 40 dB: this is where a JPEG
/// may be decoded at a reduced DCT scale first, and that shortcut must not
/// show.
#[test]
fn shrinking_a_photo_sixfold_matches_imagemagick_and_libvips_lanczos3_within_40_db() {
    assert_resize_matches_references(
        "resize,w=100/png",
        |(w, h)| (100, round(f64::from(h) * 100.0 / f64::from(w))),
        |_, ours| ours,
    );
}

/// `fit=cover` to 200×200 matches ImageMagick's and libvips's Lanczos-3
/// resize to the covering size (the short side becomes 200, the other
/// rounded) followed by a centre crop, within 40 dB PSNR (observed 51-59 dB).
#[test]
fn covering_a_square_matches_a_lanczos3_reference_and_a_centre_crop_within_40_db() {
    assert_resize_matches_references(
        "resize,w=200,h=200,fit=cover/png",
        |_| (200, 200),
        |(w, h), _| {
            let scale = (200.0 / f64::from(w)).max(200.0 / f64::from(h));
            (round(f64::from(w) * scale), round(f64::from(h) * scale))
        },
    );
}

/// `fit=fill` stretches to exactly 200×200, as ImageMagick's `200x200!` and
/// libvips's independent horizontal and vertical scales do, within 40 dB
/// (observed 51-59 dB).
#[test]
fn filling_a_box_matches_a_stretched_lanczos3_reference_within_40_db() {
    assert_resize_matches_references(
        "resize,w=200,h=200,fit=fill/png",
        |_| (200, 200),
        |_, ours| ours,
    );
}

// --------------------------------------------------- (b) output formats --

/// What each output format must look like to the independent decoders.
struct Expect {
    /// The format step of the recipe.
    step: &'static str,
    /// The file extension the CLI is given.
    ext: &'static str,
    /// What `identify -format %m` calls it.
    magick: &'static str,
    /// libvips's decoding against ours (`image` crate) of the same file.
    decoders_agree_db: f64,
    /// libvips's decoding against the lossless (PNG) rendition of the same recipe.
    fidelity_db: f64,
}

/// Each photo resized to 240 wide and written by `imgflow process` as
/// `expect.step`: `identify` must name the format and our size, libvips must
/// decode it to the pixels our decoder sees and close to the lossless
/// rendition. `extra` checks the file further.
fn assert_round_trips(expect: Expect, extra: impl Fn(&str, &Path, &[u8])) {
    let recipe = format!("resize,w=240/{}", expect.step);
    let mut failures = vec![];
    for (name, bytes) in PHOTOS {
        let scratch = Scratch::new("reference");
        let source = scratch.write(name, bytes);
        let output = scratch.path(&format!("out.{}", expect.ext));
        imgflow_process(&source, &output, &recipe);
        let written = std::fs::read(&output).expect("imgflow wrote the output file");

        let ours = rgb8(&written);
        let (w, h) = ours.dimensions();
        let identified = tool(
            Command::new(imagemagick("identify"))
                .args(["-format", "%m %w %h\n"])
                .arg(&output),
        );
        assert_eq!(
            identified.trim_end(),
            format!("{} {w} {h}", expect.magick),
            "{name} {recipe}: what ImageMagick sees (one frame, our size)"
        );

        let theirs = vips_decode(&output, &scratch).to_rgb8();
        let agree = psnr(&theirs, &ours);
        let lossless = rgb8(&render_one(bytes, "resize,w=240/png").bytes);
        let fidelity = psnr(&theirs, &lossless);
        eprintln!(
            "{name} {recipe}: {} bytes; libvips vs our decoder {agree:.2} dB, \
             vs the lossless rendition {fidelity:.2} dB",
            written.len()
        );
        if agree < expect.decoders_agree_db {
            failures.push(format!(
                "{name}: libvips and our decoder disagree: {agree:.2} dB < {} dB",
                expect.decoders_agree_db
            ));
        }
        if fidelity < expect.fidelity_db {
            failures.push(format!(
                "{name}: libvips's decoding is far from the lossless rendition: {fidelity:.2} dB < {} dB",
                expect.fidelity_db
            ));
        }
        extra(name, &output, &written);
    }
    assert!(failures.is_empty(), "{recipe}: {failures:#?}");
}

/// JPEG: ImageMagick reads a JPEG of our size and estimates the quality we
/// asked for (90 ± 1); libvips (libjpeg-turbo) decodes to within 40 dB of
/// our decoder (observed 52-68 dB) and 32 dB of the lossless rendition
/// (observed 34.5-39 dB).
#[test]
fn jpeg_output_round_trips_through_imagemagick_and_libvips() {
    assert_round_trips(
        Expect {
            step: "jpeg,q=90",
            ext: "jpg",
            magick: "JPEG",
            decoders_agree_db: 40.0,
            fidelity_db: 32.0,
        },
        |name, output, _| {
            let quality = tool(
                Command::new(imagemagick("identify"))
                    .args(["-format", "%Q"])
                    .arg(output),
            );
            let quality: i32 = quality.trim().parse().expect("a quality estimate");
            assert!(
                (quality - 90).abs() <= 1,
                "{name}: ImageMagick estimates quality {quality}, asked for 90"
            );
        },
    );
}

/// PNG: lossless, so libvips decodes exactly the pixels we rendered.
#[test]
fn png_output_round_trips_through_imagemagick_and_libvips_exactly() {
    assert_round_trips(
        Expect {
            step: "png",
            ext: "png",
            magick: "PNG",
            decoders_agree_db: f64::INFINITY,
            fidelity_db: f64::INFINITY,
        },
        |_, _, _| {},
    );
}

/// Lossy WebP (q=80): a `VP8 ` bitstream; libvips (libwebp) decodes to
/// within 38 dB of our decoder and 30 dB of the lossless rendition (libwebp's
/// own q=80 scores 34-36 dB, and the two decoders agree exactly).
#[test]
fn lossy_webp_output_round_trips_through_imagemagick_and_libvips() {
    assert_round_trips(
        Expect {
            step: "webp,q=80",
            ext: "webp",
            magick: "WEBP",
            decoders_agree_db: 38.0,
            fidelity_db: 30.0,
        },
        |name, _, bytes| {
            assert!(
                contains(bytes, b"VP8 "),
                "{name}: a lossy WebP holds a VP8 (lossy) bitstream"
            );
        },
    );
}

/// Lossless WebP: a `VP8L` bitstream that libvips decodes to exactly the
/// pixels of the PNG rendition.
#[test]
fn lossless_webp_output_round_trips_through_imagemagick_and_libvips_exactly() {
    assert_round_trips(
        Expect {
            step: "webp,lossless=true",
            ext: "webp",
            magick: "WEBP",
            decoders_agree_db: f64::INFINITY,
            fidelity_db: f64::INFINITY,
        },
        |name, _, bytes| {
            assert!(
                contains(bytes, b"VP8L") && !contains(bytes, b"VP8 "),
                "{name}: a lossless WebP holds only a VP8L bitstream"
            );
        },
    );
}

/// GIF: one frame; the palette lookup is exact, so libvips (libnsgif) and our
/// decoder agree exactly; 256 colours keep a photo within 30 dB of the
/// lossless rendition (observed 36.5-40 dB).
#[test]
fn gif_output_round_trips_through_imagemagick_and_libvips() {
    assert_round_trips(
        Expect {
            step: "gif",
            ext: "gif",
            magick: "GIF",
            decoders_agree_db: f64::INFINITY,
            fidelity_db: 30.0,
        },
        |_, _, _| {},
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ------------------------------------------------------ (c) colour ops --

/// Greatest difference between the channels of any pixel (0: all gray).
fn channel_spread(image: &RgbImage) -> u8 {
    image
        .pixels()
        .map(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap())
        .max()
        .unwrap_or(0)
}

/// `grayscale` output is gray to independent decoders: in PNG every pixel
/// libvips decodes has R = G = B and ImageMagick classifies the image as
/// `Grayscale`; in JPEG (q=90) the channels differ by at most 2. The gray
/// levels are a luma: within 30 dB of ImageMagick's `-grayscale Rec709Luma`
/// (Rec.601 luma scores 41 dB against it on chelsea, so either passes).
#[test]
fn grayscale_output_is_gray_to_imagemagick_and_libvips() {
    let mut failures = vec![];
    for (name, bytes) in PHOTOS {
        let scratch = Scratch::new("reference");
        let source = scratch.write(name, bytes);
        for (step, ext, max_spread) in [("png", "png", 0), ("jpeg,q=90", "jpg", 2)] {
            let output = scratch.path(&format!("gray.{ext}"));
            imgflow_process(&source, &output, &format!("grayscale/{step}"));
            let decoded = vips_decode(&output, &scratch);
            let spread = channel_spread(&decoded.to_rgb8());
            let colorspace = tool(
                Command::new(imagemagick("identify"))
                    .args(["-format", "%[colorspace] %[type]"])
                    .arg(&output),
            );
            eprintln!(
                "{name} grayscale/{step}: libvips decodes {:?}, channel spread {spread}; \
                 ImageMagick: {colorspace}",
                decoded.color()
            );
            if spread > max_spread {
                failures.push(format!(
                    "{name} grayscale/{step}: channels differ by up to {spread}"
                ));
            }
            if ext == "png" {
                if !colorspace.ends_with(" Grayscale") {
                    failures.push(format!(
                        "{name} grayscale/png: ImageMagick says {colorspace:?}"
                    ));
                }
                let luma = scratch.path("luma.png");
                tool(
                    Command::new(imagemagick("convert"))
                        .arg(&source)
                        .args(["-grayscale", "Rec709Luma", "-depth", "8"])
                        .arg(&luma),
                );
                let db = psnr(&decoded.to_rgb8(), &image::open(&luma).unwrap().to_rgb8());
                eprintln!("{name} grayscale vs ImageMagick Rec709Luma: {db:.2} dB");
                if db < 30.0 {
                    failures.push(format!(
                        "{name} grayscale: {db:.2} dB from Rec.709 luma < 30 dB"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `sepia` is a warm brown tone, seen by libvips: in every pixel R ≥ G ≥ B
/// (±1 for rounding), and red outweighs blue by at least 10 levels on
/// average (it is not merely gray).
#[test]
fn sepia_output_is_warm_toned_to_libvips() {
    for (name, bytes) in PHOTOS {
        let scratch = Scratch::new("reference");
        let source = scratch.write(name, bytes);
        let output = scratch.path("sepia.png");
        imgflow_process(&source, &output, "sepia/png");
        let pixels = vips_decode(&output, &scratch).to_rgb8();
        let out_of_order = pixels
            .pixels()
            .filter(|p| {
                let [r, g, b] = p.0.map(i16::from);
                r + 1 < g || g + 1 < b
            })
            .count();
        let count = pixels.pixels().count() as f64;
        let mean = |c: usize| pixels.pixels().map(|p| f64::from(p.0[c])).sum::<f64>() / count;
        eprintln!(
            "{name} sepia: mean R {:.1}, G {:.1}, B {:.1}; {out_of_order} pixels not R ≥ G ≥ B",
            mean(0),
            mean(1),
            mean(2)
        );
        assert_eq!(out_of_order, 0, "{name}: sepia pixels with R < G or G < B");
        assert!(mean(0) - mean(2) >= 10.0, "{name}: sepia is not warm");
    }
}

// ---------------------------------------------------- geometry, exactly --

/// `rotate` (clockwise, as ImageMagick, EXIF and CSS turn), `flip` (`h`
/// mirrors left-right like `-flop`, `v` top-bottom like `-flip`) and `crop`
/// move pixels without resampling: on a PNG photo each output is identical,
/// pixel for pixel, to ImageMagick's.
#[test]
fn rotate_flip_and_crop_match_imagemagick_pixel_for_pixel() {
    let scratch = Scratch::new("reference");
    let source = scratch.write("chelsea.png", CHELSEA);
    let cases: [(&str, &[&str]); 6] = [
        ("rotate,deg=90", &["-rotate", "90"]),
        ("rotate,deg=180", &["-rotate", "180"]),
        ("rotate,deg=270", &["-rotate", "270"]),
        ("flip,dir=h", &["-flop"]),
        ("flip,dir=v", &["-flip"]),
        (
            "crop,x=100,y=50,w=200,h=150",
            &["-crop", "200x150+100+50", "+repage"],
        ),
    ];
    let mut failures = vec![];
    for (step, magick) in cases {
        let reference = scratch.path("reference.png");
        tool(
            Command::new(imagemagick("convert"))
                .arg(&source)
                .args(magick)
                .args(["-depth", "8"])
                .arg(&reference),
        );
        let reference = image::open(&reference).unwrap().to_rgb8();
        let recipe = format!("{step}/png");
        let ours = match Recipe::parse(&recipe) {
            Err(e) => {
                failures.push(format!("{recipe}: does not parse: {e}"));
                continue;
            }
            Ok(_) => rgb8(&render_one(CHELSEA, &recipe).bytes),
        };
        if ours.dimensions() != reference.dimensions() {
            failures.push(format!(
                "{recipe}: {:?}, ImageMagick {:?}",
                ours.dimensions(),
                reference.dimensions()
            ));
            continue;
        }
        let db = psnr(&ours, &reference);
        eprintln!("{recipe} vs ImageMagick {magick:?}: {db} dB");
        if db.is_finite() {
            failures.push(format!("{recipe}: differs from ImageMagick ({db:.2} dB)"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The yardstick itself: PSNR is infinite for identical images, and a photo
/// shifted by one pixel (29 dB for chelsea) is far under `RESIZE_DB`, so a
/// misplaced resize or crop cannot pass.
#[test]
fn the_psnr_yardstick_tells_a_one_pixel_shift_from_a_match() {
    let photo = rgb8(CHELSEA);
    assert_eq!(psnr(&photo, &photo), f64::INFINITY);
    let (w, h) = photo.dimensions();
    let left = image::imageops::crop_imm(&photo, 0, 0, w - 1, h).to_image();
    let right = image::imageops::crop_imm(&photo, 1, 0, w - 1, h).to_image();
    let db = psnr(&left, &right);
    eprintln!("chelsea shifted by one pixel: {db:.2} dB");
    assert!(db < RESIZE_DB - 5.0, "{db}");
}
