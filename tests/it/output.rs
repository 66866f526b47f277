//! Issue 16's outputs, checked with an independent decoder (Pillow, with
//! its bundled libavif and libwebp): AVIF through the sandboxed worker,
//! animations kept frame for frame, the responsive ladder and its `srcset`.

use imgflow::outbox::Status;
use imgflow::pipeline::{self, Limits};
use imgflow::recipe::Recipe;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CHELSEA, TestApp};
use crate::tools::run_python;

/// A 12-frame animated GIF made by Pillow: `WxH`, delays 40, 50, ... 150 ms,
/// played 3 times, a yellow bar moving across a changing background.
fn pillow_animation(width: u32, height: u32) -> Vec<u8> {
    let dir = tempdir();
    let path = format!("{dir}/anim.gif");
    run_python(
        r#"
import sys
from PIL import Image, ImageDraw
w, h, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
frames = []
for i in range(12):
    im = Image.new("RGB", (w, h), (20 * i, 90, 200 - 10 * i))
    ImageDraw.Draw(im).rectangle([i * w // 12, 0, i * w // 12 + w // 8, h // 2], fill=(255, 230, 0))
    frames.append(im)
frames[0].save(path, save_all=True, append_images=frames[1:],
               duration=[40 + 10 * i for i in range(12)], loop=3)
"#,
        &[&width.to_string(), &height.to_string(), &path],
    );
    std::fs::read(&path).unwrap()
}

fn tempdir() -> String {
    let dir = std::env::temp_dir().join(format!("imgflow-output-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}

/// Pillow's view of an image file: format, size, frames, each frame's
/// duration, loop count.
fn pillow_frames(bytes: &[u8]) -> Value {
    let dir = tempdir();
    let path = format!("{dir}/image");
    std::fs::write(&path, bytes).unwrap();
    let out = run_python(
        r#"
import json, sys
from PIL import Image
im = Image.open(sys.argv[1])
n = getattr(im, "n_frames", 1)
durations = []
for i in range(n):
    im.seek(i)
    im.load()
    durations.append(im.info.get("duration"))
print(json.dumps({"format": im.format, "size": list(im.size), "frames": n,
                  "durations": durations, "loop": im.info.get("loop")}))
"#,
        &[&path],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_twelve_frame_gif_resized_to_webp_or_gif_keeps_every_frame_its_delay_and_loop() {
    let gif = pillow_animation(160, 120);
    let recipe =
        Recipe::parse("w:resize,w=64/webp+g:resize,w=64/rotate,deg=90/watermark,text=hi/gif+f:resize,w=64/webp,frames=first")
            .unwrap();
    let out = pipeline::run(&gif, &recipe, &Limits::default()).unwrap();
    let delays: Vec<u64> = (0..12).map(|i| 40 + 10 * i).collect();

    let webp = pillow_frames(&out[0].bytes);
    assert_eq!(webp["format"], "WEBP");
    assert_eq!(webp["size"], json!([64, 48]));
    assert_eq!(webp["frames"], 12, "{webp}");
    assert_eq!(webp["durations"], json!(delays), "{webp}");
    assert_eq!(webp["loop"], 3);

    let regif = pillow_frames(&out[1].bytes);
    assert_eq!(regif["format"], "GIF");
    assert_eq!(regif["size"], json!([48, 64]), "rotated");
    assert_eq!(regif["frames"], 12, "{regif}");
    assert_eq!(regif["durations"], json!(delays), "{regif}");
    assert_eq!(regif["loop"], 3);

    let first = pillow_frames(&out[2].bytes);
    assert_eq!(first["frames"], 1, "frames=first: {first}");
}

#[test]
fn a_frame_bomb_fails_with_image_too_large_before_its_frames_are_decoded() {
    // 3000 frames of 1x1 on a 4000x4000 screen: 45 KB that would decode to
    // 3000 full 16 MP canvases (192 GB of RGBA).
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0xa0, 0x0f, 0xa0, 0x0f, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    for _ in 0..3000 {
        gif.extend_from_slice(&[0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
    }
    gif.push(0x3b);
    let started = std::time::Instant::now();
    let recipe = Recipe::parse("resize,w=64/webp").unwrap();
    let err = pipeline::run(&gif, &recipe, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "image_too_large", "{err}");
    // The plan refuses it from the header: decoding even the first 100
    // frames (1.6 G pixels composited) would take far longer than this.
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    let probe = pipeline::probe(&gif, &Limits::default()).unwrap();
    assert_eq!(probe.frames, 3000);
    assert!(pipeline::plan(&probe, &recipe, &Limits::default()).is_err());
}

/// PSNR of two images' RGB pixels, by Pillow and numpy-free Python.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let dir = tempdir();
    let (pa, pb) = (format!("{dir}/a"), format!("{dir}/b"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let out = run_python(
        r#"
import math, sys
from PIL import Image, ImageChops, ImageStat
a = Image.open(sys.argv[1]).convert("RGB")
b = Image.open(sys.argv[2]).convert("RGB")
assert a.size == b.size, (a.size, b.size)
mse = sum(v ** 2 for v in ImageStat.Stat(ImageChops.difference(a, b)).rms) / 3
print(99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse))
"#,
        &[&pa, &pb],
    );
    out.trim().parse().unwrap()
}

#[tokio::test]
async fn avif_outputs_from_the_sandboxed_worker_decode_in_pillow_and_match_the_jpeg() {
    let app = TestApp::spawn().await;
    let recipe =
        "avif:resize,w=320/avif+fast:resize,w=320/avif,q=80,speed=10+jpeg:resize,w=320/jpeg,q=90";
    app.put_inbox("cat.png", CHELSEA, &[("recipe", recipe)])
        .await;
    let manifest = app.wait_for_manifest("cat.png").await;
    assert_eq!(manifest.status, Status::Done, "{manifest:?}");
    let jpeg = app.get_outbox("cat.png/jpeg.jpg").await.unwrap();
    for name in ["avif", "fast"] {
        let output = manifest.outputs.iter().find(|o| o.name == name).unwrap();
        assert_eq!(output.key, format!("cat.png/{name}.avif"));
        assert_eq!(
            (output.format.as_str(), output.content_type.as_str()),
            ("avif", "image/avif")
        );
        let avif = app.get_outbox(&output.key).await.unwrap();
        let seen = pillow_frames(&avif);
        assert_eq!(seen["format"], "AVIF", "{seen}");
        assert_eq!(seen["size"], json!([320, 213]));
        let db = psnr(&avif, &jpeg);
        assert!(db > 30.0, "{name}: {db:.1} dB against the JPEG");
    }
}

#[tokio::test]
async fn a_ladder_of_an_animation_through_the_worker_lists_its_widths_and_srcset() {
    let app = TestApp::spawn().await;
    let gif = pillow_animation(400, 300);
    let recipe = "hero:ladder,w=100.200.1000/webp+still:resize,w=100/avif";
    let (status, upload) = app
        .post_upload(json!({"filename": "spin.gif", "content_type": "image/gif",
                            "size": gif.len(), "recipe": recipe}))
        .await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    assert_eq!(app.put_upload(&upload, &gif).await, StatusCode::OK);
    let key = upload["key"].as_str().unwrap().to_owned();

    let manifest = app.wait_for_manifest(&key).await;
    assert_eq!(manifest.status, Status::Done, "{manifest:?}");
    let rungs: Vec<(&str, u32, Option<&str>)> = manifest
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.width, o.ladder.as_deref()))
        .collect();
    assert_eq!(
        rungs,
        [
            ("hero-100", 100, Some("hero")),
            ("hero-200", 200, Some("hero")),
            // Never upscaled: the source's own 400.
            ("hero-400", 400, Some("hero")),
            ("still", 100, None),
        ]
    );
    assert_eq!(
        manifest.srcset["hero"],
        "hero-100.webp 100w, hero-200.webp 200w, hero-400.webp 400w"
    );
    // The animation passed the sandbox's wire whole.
    let rung = app
        .get_outbox(&format!("{key}/hero-200.webp"))
        .await
        .unwrap();
    let seen = pillow_frames(&rung);
    assert_eq!(
        (seen["frames"].as_u64(), seen["size"].clone()),
        (Some(12), json!([200, 150]))
    );
    let still = app.get_outbox(&format!("{key}/still.avif")).await.unwrap();
    assert_eq!(pillow_frames(&still)["frames"], 1);

    let job = app.job(&upload, "").await;
    let srcset = job["srcset"]["hero"].as_str().unwrap();
    let entries: Vec<&str> = srcset.split(", ").collect();
    assert_eq!(entries.len(), 3, "{srcset}");
    for (entry, width) in entries.iter().zip([100, 200, 400]) {
        let (url, descriptor) = entry.rsplit_once(' ').unwrap();
        assert_eq!(descriptor, format!("{width}w"));
        let bytes = app
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(pillow_frames(&bytes)["size"][0], width, "{url}");
    }
}

/// The `imgflow process` commands of docs/recipes.md's lossless turns, AVIF,
/// Animation and Responsive ladder sections, as written there (run from the crate root).
#[test]
fn the_commands_in_the_docs_output_sections_run_as_written() {
    let dir = tempdir();
    let gif = pillow_animation(160, 120);
    std::fs::write(format!("{dir}/anim.gif"), gif).unwrap();
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/recipes.md")).unwrap();
    let runs = [
        (
            "tests/fixtures/rocket.jpg",
            "out/",
            "small:resize,w=640/avif,q=60,speed=6+small-jpeg:resize,w=640/jpeg",
        ),
        (
            "/tmp/anim.gif",
            "out/",
            "anim:resize,w=64/webp+poster:resize,w=64/jpeg",
        ),
        (
            "/tmp/anim.gif",
            "first.webp",
            "resize,w=64/webp,frames=first",
        ),
        (
            "tests/fixtures/rocket.jpg",
            "out/",
            "hero:ladder,w=320.600.1280/webp",
        ),
        (
            "tests/fixtures/rocket.jpg",
            "turned.jpg",
            "rotate,deg=90/jpeg,lossless=true",
        ),
    ];
    for (input, output, recipe) in runs {
        assert!(
            docs.contains(&format!("imgflow process {input} -o {output}")),
            "{input}"
        );
        assert!(docs.contains(&format!("--recipe {recipe}\n")), "{recipe}");
        let input = input.replace("/tmp", &dir);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "process",
                &input,
                "-o",
                &format!("{dir}/{output}"),
                "--recipe",
                recipe,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "{recipe}");
    }
    let seen = |name: &str| pillow_frames(&std::fs::read(format!("{dir}/{name}")).unwrap());
    assert_eq!(seen("out/small.avif")["format"], "AVIF");
    assert_eq!(seen("out/anim.webp")["frames"], 12);
    assert_eq!(seen("out/poster.jpg")["frames"], 1);
    assert_eq!(seen("first.webp")["frames"], 1);
    assert_eq!(seen("turned.jpg")["size"], serde_json::json!([424, 640]));
    for (name, width) in [("hero-320", 320), ("hero-600", 600), ("hero-640", 640)] {
        assert_eq!(seen(&format!("out/{name}.webp"))["size"][0], width);
    }
}
