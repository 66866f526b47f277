//! `imgflow submit` with many files: jobs at once, one folder per file,
//! failures listed at the end.

use crate::harness::{CHELSEA, NOT_AN_IMAGE, ROCKET, TestApp, decoded};

// Multi-threaded: the API serves on this runtime while the test blocks on the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_sends_many_files_at_once_and_lists_the_one_that_failed() {
    let app = TestApp::spawn().await;
    let dir = std::env::temp_dir().join(format!("imgflow-submit-many-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = vec![];
    for i in 0..5 {
        let file = dir.join(format!("photo-{i}.jpg"));
        std::fs::write(&file, if i % 2 == 0 { ROCKET } else { CHELSEA }).unwrap();
        files.push(file);
    }
    let notes = dir.join("notes.jpg");
    std::fs::write(&notes, NOT_AN_IMAGE).unwrap();
    files.push(notes.clone());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("submit")
        .args(&files)
        .args([
            "-j",
            "3",
            "--recipe",
            "small:resize,w=64/png",
            "--api",
            &app.api,
        ])
        .arg("-o")
        .arg(dir.join("out"))
        .env_remove("IMGFLOW_API_KEY")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("5 of 6 jobs done"), "{stdout}");
    assert!(
        stderr.contains(&format!("{}: ", notes.display())),
        "{stderr}"
    );
    assert!(stderr.contains("not an image"), "{stderr}");
    assert!(stderr.contains("1 of 6 jobs failed"), "{stderr}");
    for i in 0..5 {
        let bytes = std::fs::read(dir.join(format!("out/photo-{i}.jpg/small.png"))).unwrap();
        assert_eq!(decoded(&bytes).0, 64);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
