//! The `imgflow` binary itself.

use std::process::Command;

use crate::harness::{ROCKET, decoded, fresh_resources};

fn imgflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imgflow"))
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("imgflow-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn process_runs_a_recipe_on_local_files_without_aws() {
    let dir = temp_dir();
    let input = dir.join("rocket.jpg");
    std::fs::write(&input, ROCKET).unwrap();
    let out = imgflow()
        .arg("process")
        .arg(&input)
        .arg("-o")
        .arg(dir.join("out"))
        .args(["--recipe", "small:resize,w=100/png+big:resize,w=320"])
        // Nothing listens here: `process` must not need it.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let small = std::fs::read(dir.join("out/small.png")).unwrap();
    assert_eq!(decoded(&small), (100, 67, image::ImageFormat::Png));
    let big = std::fs::read(dir.join("out/big.jpg")).unwrap();
    assert_eq!(decoded(&big), (320, 214, image::ImageFormat::Jpeg));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn process_explains_a_bad_recipe_and_exits_non_zero() {
    let out = imgflow()
        .args([
            "process",
            "whatever.jpg",
            "-o",
            "x.jpg",
            "--recipe",
            "resize,w=10/blurr",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("column 13"), "{stderr}");
}

#[test]
fn setup_explains_when_nothing_answers_at_the_endpoint() {
    let res = fresh_resources();
    let out = imgflow()
        .args(["setup", "--endpoint-url", "http://127.0.0.1:9"])
        .args([
            "--inbox",
            &res.inbox,
            "--outbox",
            &res.outbox,
            "--queue",
            &res.queue,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        stderr.contains("hint: nothing answered at http://127.0.0.1:9"),
        "{stderr}"
    );
}

/// 200 1-megapixel JPEGs in a two-level tree, made with libjpeg-turbo
/// (fast even in a debug build); each differs from the others.
fn photo_tree(root: &std::path::Path, count: u32) -> Vec<std::path::PathBuf> {
    (0..count)
        .map(|i| {
            let relative =
                std::path::PathBuf::from(format!("set-{}/day-{}/photo-{i:03}.jpg", i % 4, i % 10));
            let image = image::RgbImage::from_fn(1250, 800, |x, y| {
                image::Rgb([
                    (x / 5 + i) as u8,
                    (y / 4 + 3 * i) as u8,
                    ((x ^ y) / 8) as u8,
                ])
            });
            let jpeg = turbojpeg::compress_image(&image, 85, turbojpeg::Subsamp::Sub2x2).unwrap();
            let path = root.join(&relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &*jpeg).unwrap();
            relative
        })
        .collect()
}

#[test]
fn process_runs_a_folder_on_two_threads_mirrors_its_tree_and_lists_the_broken_files() {
    let dir = temp_dir();
    let input = dir.join("photos");
    let photos = photo_tree(&input, 200);
    let broken = [
        "set-0/not-a-photo.jpg",
        "set-1/day-1/empty.png",
        "set-2/bad-header.png",
    ];
    std::fs::write(input.join(broken[0]), crate::harness::NOT_AN_IMAGE).unwrap();
    std::fs::write(input.join(broken[1]), b"").unwrap();
    std::fs::write(
        input.join(broken[2]),
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDRgarbage",
    )
    .unwrap();
    std::fs::write(
        input.join("set-0/README.txt"),
        b"not an image, not looked at",
    )
    .unwrap();

    let out = imgflow()
        .arg("process")
        .arg(&input)
        .arg("-o")
        .arg(dir.join("out"))
        .args(["-j", "2", "--recipe", "thumb:resize,w=160/jpeg"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("200 of 203 images processed"), "{stdout}");
    assert!(stdout.contains("skipped 1 files"), "{stdout}");
    for name in broken {
        let line = stderr
            .lines()
            .find(|l| l.contains(&input.join(name).display().to_string()))
            .unwrap_or_else(|| panic!("{name} is not listed: {stderr}"));
        assert!(
            line.contains("unsupported_image") || line.contains("corrupt"),
            "{line}"
        );
    }
    assert!(stderr.contains("3 of 203 images failed"), "{stderr}");

    // Exactly one output per photo, where the input tree puts it.
    let written: Vec<_> = walk_files(&dir.join("out"));
    assert_eq!(written.len(), 200);
    for relative in &photos {
        let bytes = std::fs::read(dir.join("out").join(relative).join("thumb.jpg"))
            .unwrap_or_else(|e| panic!("{}: {e}", relative.display()));
        assert_eq!(decoded(&bytes), (160, 102, image::ImageFormat::Jpeg));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn walk_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![];
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
