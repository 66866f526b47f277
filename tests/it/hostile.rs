//! Issue 13's hostile corpus, end to end: every object ends in exactly one
//! final manifest, one worker process survives all of it, memory stays
//! bounded, and nothing reaches the DLQ. A sandbox child killed mid-job is
//! retried once; one that outgrows its address space fails for good.

use std::io::Cursor;
use std::time::{Duration, Instant};

use imgflow::outbox::{self, Manifest, Status};

use crate::harness::{CHELSEA, NOT_AN_IMAGE, Options, ROCKET, TestApp};

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn grey(width: u32, height: u32) -> Vec<u8> {
    png(image::DynamicImage::ImageLuma8(image::GrayImage::new(
        width, height,
    )))
}

/// A GIF whose 1x1 logical screen holds a 10000x10000 frame (empty LZW data).
fn giant_frame_gif() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend([1, 0, 1, 0, 0x00, 0, 0]); // screen 1x1, no global palette
    gif.push(0x2C); // image descriptor
    gif.extend([0, 0, 0, 0]);
    gif.extend(10_000u16.to_le_bytes());
    gif.extend(10_000u16.to_le_bytes());
    gif.push(0x80); // a 2-colour local palette
    gif.extend([0, 0, 0, 255, 255, 255]);
    gif.extend([2, 1, 0x2C, 0]); // min code size 2; clear, end of information
    gif.push(0x3B);
    gif
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(kind);
    out.extend(data);
    out.extend(crc.sum().to_be_bytes());
}

/// A 1x1 PNG whose iCCP profile inflates to 1 GiB (about 1 MB on the wire):
/// one deflate block of 1 MiB of zeros, repeated 1024 times.
fn iccp_bomb() -> Vec<u8> {
    let mut block = Vec::with_capacity(1 << 20);
    let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
    deflate
        .compress_vec(&vec![0; 1 << 20], &mut block, flate2::FlushCompress::Sync)
        .unwrap();
    let mut profile = b"bomb\0\0".to_vec();
    profile.extend([0x78, 0xDA]);
    for _ in 0..1024 {
        profile.extend(&block);
    }
    profile.extend([0x01, 0x00, 0x00, 0xFF, 0xFF]); // the final, empty, stored block
    let (a, b) = (1u32, ((1u64 << 30) % 65_521) as u32); // Adler-32 of 1 GiB of zeros
    profile.extend(((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
    chunk(&mut png, b"iCCP", &profile);
    let mut idat = Vec::with_capacity(64);
    flate2::Compress::new(flate2::Compression::fast(), true)
        .compress_vec(&[0, 0], &mut idat, flate2::FlushCompress::Finish)
        .unwrap();
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Four outputs, each a 16384² upscale and thirteen σ=100 blurs: hours of work.
fn expensive_recipe() -> String {
    let one = format!(
        "resize,w=16384,h=16384,fit=fill,up=true{}",
        "/blur,sigma=100".repeat(13)
    );
    (0..4)
        .map(|i| format!("o{i}:{one}"))
        .collect::<Vec<_>>()
        .join("+")
}

/// Every file the existing tests use, and the fuzz corpus.
fn known_files() -> Vec<(String, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        ("rocket.jpg".to_owned(), ROCKET.to_vec()),
        ("chelsea.png".to_owned(), CHELSEA.to_vec()),
        ("not-an-image.txt".to_owned(), NOT_AN_IMAGE.to_vec()),
        (
            "truncated.jpg".to_owned(),
            ROCKET[..ROCKET.len() / 2].to_vec(),
        ),
        (
            "truncated.png".to_owned(),
            CHELSEA[..CHELSEA.len() / 3].to_vec(),
        ),
    ];
    for dir in ["tests/fixtures/orientation", "fuzz/corpus/decode"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((format!("corpus/{name}"), std::fs::read(&path).unwrap()));
        }
    }
    files.push((
        "rocket-cmyk.jpg".to_owned(),
        std::fs::read(root.join("tests/fixtures/rocket-cmyk.jpg")).unwrap(),
    ));
    files
}

/// The peak resident memory of a live process, from /proc.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

fn no_worker() -> Options {
    Options {
        worker: None,
        ..Options::default()
    }
}

/// (key, bytes, recipe, the outcomes allowed: "done" or failure codes)
type Case = (String, Vec<u8>, Option<String>, Vec<&'static str>);

/// Deadline for the corpus run: long enough for a debug build on a loaded
/// 2-core machine, short enough that the endless recipe ends in the test.
const DEADLINE_SECS: u64 = 30;
const SANDBOX_MEMORY: u64 = 1 << 30;

#[tokio::test]
async fn no_upload_in_the_hostile_corpus_hurts_the_worker_and_each_ends_in_one_final_manifest() {
    let app = TestApp::spawn_with(no_worker()).await;
    let deadline = DEADLINE_SECS.to_string();
    let memory = SANDBOX_MEMORY.to_string();
    let mut worker = app.worker_process(&[
        ("IMGFLOW_JOB_DEADLINE", &deadline),
        ("IMGFLOW_SANDBOX_MEMORY", &memory),
        ("IMGFLOW_WORKER_CONCURRENCY", "2"),
    ]);
    let pid = worker.id();
    let long_key = format!("{}.png", "k".repeat(1015));
    let expensive = expensive_recipe();
    let mut corpus: Vec<Case> = vec![
        (
            "tall.png".into(),
            grey(1, 16_384),
            Some("resize,w=16384,up=true".into()),
            vec!["image_too_large"],
        ),
        (
            "dot.png".into(),
            grey(1, 1),
            Some("resize,w=16384,h=16384,fit=fill,up=true/sharpen,sigma=0.1/jpeg".into()),
            vec!["image_too_large", "recipe_too_expensive"],
        ),
        (
            "giant-frame.gif".into(),
            giant_frame_gif(),
            Some("resize,w=1".into()),
            vec!["image_too_large"],
        ),
        (
            "iccp-bomb.png".into(),
            iccp_bomb(),
            Some("resize,w=1".into()),
            // The png crate drops a profile over the metadata bound.
            vec!["done"],
        ),
        (
            "wide.png".into(),
            grey(16_384, 1),
            Some("webp".into()),
            vec!["encode_failed"],
        ),
        (
            "expensive.png".into(),
            grey(8, 8),
            Some(expensive.clone()),
            vec!["recipe_too_expensive"],
        ),
        (
            long_key.clone(),
            grey(8, 8),
            Some("resize,w=4".into()),
            vec!["key_too_long"],
        ),
    ];
    for (name, bytes) in known_files() {
        let allowed = vec![
            "done",
            "unsupported_image",
            "corrupt_image",
            "image_too_large",
        ];
        corpus.push((name, bytes, Some("resize,w=64/png".into()), allowed));
    }

    let started = Instant::now();
    for (key, bytes, recipe, _) in &corpus {
        let metadata: Vec<(&str, &str)> = recipe.iter().map(|r| ("recipe", r.as_str())).collect();
        app.put_inbox(key, bytes, &metadata).await;
    }
    // Every object's manifest, within the deadlines plus slack.
    let budget = Duration::from_secs(DEADLINE_SECS * 4 + 120);
    let mut manifests: Vec<(String, Manifest)> = Vec::new();
    for (key, _, _, allowed) in &corpus {
        let manifest = loop {
            let found = app.get_outbox(&outbox::manifest_key(key)).await;
            if let Some(bytes) = found {
                break serde_json::from_slice::<Manifest>(&bytes).unwrap();
            }
            assert!(
                started.elapsed() < budget,
                "no manifest for {key} after {budget:?}"
            );
            assert!(
                worker.try_wait().unwrap().is_none(),
                "the worker died while {key} was pending"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let outcome = match (&manifest.status, &manifest.error) {
            (Status::Done, _) => "done".to_owned(),
            (Status::Failed, Some(error)) => error.code.clone(),
            (Status::Failed, None) => panic!("{key}: failed without an error"),
        };
        assert!(
            allowed.contains(&outcome.as_str()),
            "{key}: {outcome} ({:?}), expected one of {allowed:?}",
            manifest.error
        );
        assert_eq!(&manifest.source.key, key, "the manifest names its source");
        manifests.push((key.clone(), manifest));
    }
    app.wait_until_empty(&app.queues.queue_url, 60).await;
    assert_eq!(
        app.messages_on(&app.queues.dlq_url).await,
        0,
        "nothing in the DLQ"
    );

    // One worker throughout, its memory bounded: it never holds pixels.
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
    assert_eq!(worker.id(), pid);
    let worker_peak = vm_hwm(pid);
    assert!(
        worker_peak < 400 << 20,
        "the worker peaked at {} MiB",
        worker_peak >> 20
    );
    // Every child that finished stayed under its address-space limit.
    for (key, manifest) in &manifests {
        if let Some(peak) = manifest.sandbox.and_then(|s| s.peak_rss_bytes) {
            assert!(
                peak < SANDBOX_MEMORY,
                "{key}: a child peaked at {peak} bytes"
            );
        }
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
}

/// Sandbox children of `parent`, by PID.
fn sandbox_children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state, then the parent's PID.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("sandbox-child") {
            found.push(pid);
        }
    }
    found
}

/// CPU time (user + system ticks) a process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

#[tokio::test]
async fn a_sandbox_child_killed_mid_job_costs_one_retry_and_the_job_is_done() {
    let app = TestApp::spawn_with(no_worker()).await;
    let mut worker = app.worker_process(&[("IMGFLOW_WORKER_CONCURRENCY", "1")]);
    // Noise, so that the blur takes a while in a debug build.
    let mut rng = fastrand::Rng::with_seed(3);
    let img = image::RgbImage::from_fn(1200, 1200, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let bytes = png(image::DynamicImage::ImageRgb8(img));
    app.put_inbox("victim.png", &bytes, &[("recipe", "blur,sigma=10/png")])
        .await;
    // The busy child is the one burning CPU.
    let victim = 'found: {
        for _ in 0..600 {
            if let Some(pid) = sandbox_children(worker.id())
                .into_iter()
                .find(|pid| cpu_ticks(*pid) > 20)
            {
                break 'found pid;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no sandbox child got busy");
    };
    std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    let manifest = app.wait_for_manifest("victim.png").await;
    assert_eq!(manifest.status, Status::Done, "{:?}", manifest.error);
    assert_eq!(manifest.sandbox.map(|s| s.attempts), Some(2), "one retry");
    app.wait_until_queue_is_empty().await;
    assert!(worker.try_wait().unwrap().is_none(), "the worker lives on");
    worker.kill().unwrap();
    worker.wait().unwrap();
}

#[tokio::test]
async fn a_child_that_outgrows_its_address_space_fails_the_job_for_good() {
    let app = TestApp::spawn_with(no_worker()).await;
    // 256 MiB of address space; decoding 8000x8000 RGBA needs 256 MB alone.
    let mut worker = app.worker_process(&[("IMGFLOW_SANDBOX_MEMORY", "268435456")]);
    let img = image::RgbaImage::new(8000, 8000);
    let bytes = png(image::DynamicImage::ImageRgba8(img));
    app.put_inbox("big.png", &bytes, &[("recipe", "resize,w=100/png")])
        .await;
    let manifest = app.wait_for_manifest("big.png").await;
    assert_eq!(manifest.status, Status::Failed);
    let error = manifest.error.unwrap();
    assert_eq!(error.code, "resource_limit", "{}", error.message);
    assert_eq!(manifest.sandbox.map(|s| s.attempts), Some(2));
    app.wait_until_queue_is_empty().await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
    assert!(worker.try_wait().unwrap().is_none(), "the worker lives on");
    worker.kill().unwrap();
    worker.wait().unwrap();
}

#[tokio::test]
async fn a_job_past_its_deadline_fails_with_timeout_and_frees_its_slot() {
    let app = TestApp::spawn_with(no_worker()).await;
    let mut worker = app.worker_process(&[
        ("IMGFLOW_JOB_DEADLINE", "1"),
        ("IMGFLOW_WORKER_CONCURRENCY", "1"),
    ]);
    let mut rng = fastrand::Rng::with_seed(5);
    let img = image::RgbImage::from_fn(1600, 1600, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let slow = png(image::DynamicImage::ImageRgb8(img));
    app.put_inbox(
        "slow.png",
        &slow,
        &[("recipe", "blur,sigma=40/sharpen,sigma=9/png")],
    )
    .await;
    let manifest = app.wait_for_manifest("slow.png").await;
    assert_eq!(manifest.status, Status::Failed);
    assert_eq!(manifest.error.unwrap().code, "timeout");
    // The slot is free again: the next job runs.
    app.put_inbox("next.png", &grey(4, 4), &[("recipe", "png")])
        .await;
    assert_eq!(app.wait_for_manifest("next.png").await.status, Status::Done);
    worker.kill().unwrap();
    worker.wait().unwrap();
}
