//! Real `imgflow worker` processes on a real LocalStack: killed mid-job,
//! stopped with SIGTERM, and fed a corpus of hostile files.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::process::Child;
use std::time::{Duration, Instant};

use imgflow::config::QueueConfig;
use imgflow::outbox::Status;

use crate::harness::{CHELSEA, Options, ROCKET, TestApp};

/// A noisy 1600x1600 PNG and a recipe slow enough (in a debug build) that
/// a signal lands mid-job.
fn heavy_job() -> (Vec<u8>, &'static str) {
    let mut rng = fastrand::Rng::with_seed(7);
    let img = image::RgbImage::from_fn(1600, 1600, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    (png, "blur,sigma=12/sharpen,sigma=3/sepia/png")
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

async fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < within,
            "the worker did not exit within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_in_flight(app: &TestApp, n: u64) {
    for _ in 0..400 {
        if app.in_flight(&app.queues.queue_url).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never saw {n} job(s) in flight");
}

fn short_visibility() -> Options {
    Options {
        queue: QueueConfig {
            visibility_timeout_secs: 4,
            max_receive_count: 5,
            ..QueueConfig::default()
        },
        worker: None,
        api_keys: vec![],
        upload_expiry_secs: 300,
    }
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing_the_job_completes_after_a_restart() {
    let app = TestApp::spawn_with(short_visibility()).await;
    let (png, recipe) = heavy_job();
    let mut first = app.worker_process(&[]);
    app.put_inbox("heavy.png", &png, &[("recipe", recipe)])
        .await;
    wait_until_in_flight(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.get_outbox("heavy.png/manifest.json").await.is_none(),
        "the job finished before the kill; make it heavier"
    );
    first.kill().unwrap(); // SIGKILL: no clean-up of any kind
    first.wait().unwrap();
    assert_eq!(
        app.messages_on(&app.queues.queue_url).await,
        1,
        "the message survives the crash"
    );

    let mut second = app.worker_process(&[]);
    let manifest = app.wait_for_manifest("heavy.png").await;
    assert_eq!(manifest.status, Status::Done);
    app.wait_until_empty(&app.queues.queue_url, 30).await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test]
async fn sigterm_finishes_or_hands_back_in_flight_jobs_and_exits_zero() {
    let app = TestApp::spawn_with(short_visibility()).await;
    let (png, recipe) = heavy_job();
    let mut worker = app.worker_process(&[
        ("IMGFLOW_WORKER_CONCURRENCY", "2"),
        ("IMGFLOW_SHUTDOWN_GRACE", "1"),
    ]);
    for i in 0..3 {
        app.put_inbox(&format!("job-{i}.png"), &png, &[("recipe", recipe)])
            .await;
    }
    wait_until_in_flight(&app, 2).await;
    signal(&worker, "TERM");
    let status = wait_for_exit(&mut worker, Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status:?}");

    // Whatever was not finished was handed back; a new worker does the rest.
    let mut next = app.worker_process(&[]);
    for i in 0..3 {
        let manifest = app.wait_for_manifest(&format!("job-{i}.png")).await;
        assert_eq!(manifest.status, Status::Done);
        assert_eq!(
            (manifest.outputs[0].width, manifest.outputs[0].height),
            (1600, 1600)
        );
    }
    app.wait_until_empty(&app.queues.queue_url, 60).await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
    next.kill().unwrap();
    next.wait().unwrap();
}

#[tokio::test]
async fn a_message_taken_by_a_stopping_workers_open_long_poll_is_handed_back_at_once() {
    // The default visibility (120 s): a message lost to an abandoned poll
    // would stay invisible far longer than this test waits.
    let app = TestApp::spawn_with(Options {
        worker: None,
        ..Options::default()
    })
    .await;
    let mut stopping = app.worker_process(&[("IMGFLOW_POLL_WAIT", "10")]);
    // Let it start and open its long poll.
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&stopping, "TERM");
    // The upload's event reaches SQS while that poll is still open.
    app.put_inbox("late.jpg", ROCKET, &[("recipe", "resize,w=32")])
        .await;
    let status = wait_for_exit(&mut stopping, Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status:?}");

    let mut next = app.worker_process(&[]);
    let mut manifest = None;
    for _ in 0..100 {
        manifest = app.get_outbox("late.jpg/manifest.json").await;
        if manifest.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    next.kill().unwrap();
    next.wait().unwrap();
    assert!(
        manifest.is_some(),
        "the job waited for the message's visibility timeout instead of being handed back"
    );
}

/// CRC-32 (IEEE), for hand-made PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    chunk
}

/// A PNG header declaring `w`x`h` RGB, followed by `idat` as its data.
fn png_declaring(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", idat));
    png.extend(png_chunk(b"IEND", b""));
    png
}

/// `ROCKET` with its frame header claiming `w`x`h`.
fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = ROCKET.to_vec();
    let sof = jpeg
        .windows(2)
        .position(|m| m == [0xff, 0xc0] || m == [0xff, 0xc2])
        .unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

fn gif_declaring(w: u16, h: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&w.to_le_bytes());
    gif.extend_from_slice(&h.to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]); // 2-colour table
    gif.extend_from_slice(&[0x2c, 0, 0, 0, 0]);
    gif.extend_from_slice(&w.to_le_bytes());
    gif.extend_from_slice(&h.to_le_bytes());
    gif.extend_from_slice(&[0, 2, 2, 0x4c, 0x01, 0, 0x3b]);
    gif
}

/// A valid JPEG whose EXIF block is 60 KB of garbage.
fn jpeg_with_garbage_exif() -> Vec<u8> {
    let mut garbage = b"Exif\0\0MM\0\x2a\xff\xff\xff\xff".to_vec();
    let mut rng = fastrand::Rng::with_seed(3);
    garbage.extend((0..60_000).map(|_| rng.u8(..)));
    let mut jpeg = ROCKET[..2].to_vec();
    jpeg.extend_from_slice(&[0xff, 0xe1]);
    jpeg.extend_from_slice(&((garbage.len() + 2) as u16).to_be_bytes());
    jpeg.extend(garbage);
    jpeg.extend_from_slice(&ROCKET[2..]);
    jpeg
}

fn flip_bits(bytes: &[u8], from: usize, every: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for i in (from..out.len()).step_by(every) {
        out[i] ^= 0x5a;
    }
    out
}

/// `(name, bytes, user metadata, expected error code)`.
type Hostile = (String, Vec<u8>, Vec<(&'static str, String)>, &'static str);

fn hostile_corpus() -> Vec<Hostile> {
    let mut rng = fastrand::Rng::with_seed(42);
    let random =
        |n: usize, rng: &mut fastrand::Rng| (0..n).map(|_| rng.u8(..)).collect::<Vec<u8>>();
    let r = |s: &str| vec![("recipe", s.to_owned())];
    let ok = r("resize,w=64");
    let mut c: Vec<Hostile> = vec![
        ("empty".into(), vec![], ok.clone(), "unsupported_image"),
        (
            "one-byte".into(),
            vec![0xff],
            ok.clone(),
            "unsupported_image",
        ),
        (
            "random-1k".into(),
            random(1024, &mut rng),
            ok.clone(),
            "unsupported_image",
        ),
        (
            "random-200k".into(),
            random(200_000, &mut rng),
            ok.clone(),
            "unsupported_image",
        ),
        (
            "text.jpg".into(),
            b"just some text, named like a photo".to_vec(),
            ok.clone(),
            "unsupported_image",
        ),
        (
            "page.html".into(),
            b"<!doctype html><html><body><img src=x></body></html>".to_vec(),
            ok.clone(),
            "unsupported_image",
        ),
        (
            "data.json".into(),
            br#"{"not": "an image"}"#.to_vec(),
            ok.clone(),
            "unsupported_image",
        ),
        (
            "doc.pdf".into(),
            b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF".to_vec(),
            ok.clone(),
            "unsupported_image",
        ),
        // SVG, BMP and TIFF are images since issue 16: hostile ones fail
        // as such (an SVG with a DTD could hold entity bombs).
        (
            "drawing.svg".into(),
            br#"<!DOCTYPE svg [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#.to_vec(),
            ok.clone(),
            "image_too_large",
        ),
        (
            "bitmap.bmp".into(),
            [b"BM".as_slice(), &random(100, &mut rng)].concat(),
            ok.clone(),
            // Its random header names no BMP variant the decoder knows.
            "unsupported_image",
        ),
        (
            "scan.tiff".into(),
            [b"II*\0".as_slice(), &random(100, &mut rng)].concat(),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "jpeg-half".into(),
            ROCKET[..ROCKET.len() / 2].to_vec(),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "jpeg-header-only".into(),
            ROCKET[..600].to_vec(),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "jpeg-bad-magic".into(),
            [&[0u8, 0xd8][..], &ROCKET[2..]].concat(),
            ok.clone(),
            "unsupported_image",
        ),
        (
            "jpeg-flipped-bits".into(),
            flip_bits(ROCKET, 2000, 97),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "png-third".into(),
            CHELSEA[..CHELSEA.len() / 3].to_vec(),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "png-bad-magic".into(),
            [&b"\x89PNX"[..], &CHELSEA[4..]].concat(),
            ok.clone(),
            "unsupported_image",
        ),
        (
            "png-flipped-bits".into(),
            flip_bits(CHELSEA, 5000, 13),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "png-junk-idat".into(),
            png_declaring(64, 64, &random(500, &mut rng)),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "png-100000-square".into(),
            png_declaring(100_000, 100_000, &[0; 64]),
            ok.clone(),
            "image_too_large",
        ),
        (
            "png-bomb-20000".into(),
            png_declaring(20_000, 20_000, &[0x78, 0x9c, 0x63, 0, 0]),
            ok.clone(),
            "image_too_large",
        ),
        (
            "png-too-wide".into(),
            png_declaring(40_000, 10, &[0; 16]),
            ok.clone(),
            "image_too_large",
        ),
        (
            "jpeg-65000-square".into(),
            jpeg_declaring(65_000, 65_000),
            ok.clone(),
            "image_too_large",
        ),
        (
            "jpeg-too-tall".into(),
            jpeg_declaring(100, 30_000),
            ok.clone(),
            "image_too_large",
        ),
        (
            "gif-65535-square".into(),
            gif_declaring(65_535, 65_535),
            ok.clone(),
            "image_too_large",
        ),
        (
            "gif-header-only".into(),
            b"GIF89a".to_vec(),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "webp-riff-only".into(),
            b"RIFF\x10\0\0\0WEBPVP8 ".to_vec(),
            ok.clone(),
            "corrupt_image",
        ),
        (
            "bad-recipe".into(),
            ROCKET.to_vec(),
            r("resize,w=banana"),
            "invalid_recipe",
        ),
        (
            "unknown-preset".into(),
            ROCKET.to_vec(),
            vec![("preset", "nope".to_owned())],
            "unknown_preset",
        ),
        (
            "recipe-and-preset".into(),
            ROCKET.to_vec(),
            vec![
                ("recipe", "png".to_owned()),
                ("preset", "default".to_owned()),
            ],
            "invalid_recipe",
        ),
        (
            "long-recipe".into(),
            ROCKET.to_vec(),
            r(&format!("resize,w=1{}", "0".repeat(1500))),
            "invalid_recipe",
        ),
        (
            "crop-outside".into(),
            ROCKET.to_vec(),
            r("crop,x=5000,y=0,w=10,h=10"),
            "crop_outside_image",
        ),
        (
            "lossless-resize".into(),
            ROCKET.to_vec(),
            r("resize,w=100/jpeg,lossless=true"),
            "lossless_unavailable",
        ),
    ];
    // Mislabelled: PNG bytes under a .jpg name work (content decides), text under .png does not.
    c.push((
        "mislabelled.png".into(),
        b"GIF? no. text.".to_vec(),
        ok,
        "unsupported_image",
    ));
    c
}

#[tokio::test]
async fn hostile_files_each_get_a_failed_manifest_while_the_worker_keeps_serving_within_its_memory_budget()
 {
    let app = TestApp::spawn_with(Options {
        queue: QueueConfig::default(),
        worker: None,
        api_keys: vec![],
        upload_expiry_secs: 300,
    })
    .await;
    let mut worker = app.worker_process(&[("IMGFLOW_PIXEL_BUDGET", "50000000")]);
    let corpus = hostile_corpus();
    assert!(corpus.len() >= 30);
    for (name, bytes, metadata, _) in &corpus {
        let metadata: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.put_inbox(&format!("hostile/{name}"), bytes, &metadata)
            .await;
    }
    // Hostile but valid: must still be processed.
    app.put_inbox(
        "hostile/garbage-exif.jpg",
        &jpeg_with_garbage_exif(),
        &[("recipe", "resize,w=64")],
    )
    .await;

    let mut wrong = BTreeMap::new();
    for (name, _, _, code) in &corpus {
        let manifest = app.wait_for_manifest(&format!("hostile/{name}")).await;
        let got = manifest
            .error
            .as_ref()
            .map(|e| e.code.clone())
            .unwrap_or_default();
        if manifest.status != Status::Failed || got != *code {
            wrong.insert(
                name.clone(),
                format!("{:?} {got} (expected failed {code})", manifest.status),
            );
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        app.wait_for_manifest("hostile/garbage-exif.jpg")
            .await
            .status,
        Status::Done
    );

    // Still serving.
    app.put_inbox("after.jpg", ROCKET, &[("recipe", "resize,w=32")])
        .await;
    assert_eq!(
        app.wait_for_manifest("after.jpg").await.status,
        Status::Done
    );
    app.wait_until_queue_is_empty().await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);

    let status = std::fs::read_to_string(format!("/proc/{}/status", worker.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    // The budget is 50 M pixels (200 MiB as RGBA); the process itself needs far less.
    assert!(peak_kib < 300 * 1024, "peak RSS {peak_kib} KiB");
    worker.kill().unwrap();
    worker.wait().unwrap();
}
