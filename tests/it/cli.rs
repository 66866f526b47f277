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
