//! Routes: the preset for objects that name none, by key prefix.

use imgflow::outbox::Status;
use imgflow::recipe::Route;

use crate::harness::{Options, ROCKET, TestApp, decoded};

#[tokio::test]
async fn an_object_under_avatars_with_no_metadata_gets_the_avatar_presets_outputs() {
    let app = TestApp::spawn_with(Options {
        worker: None,
        ..Options::default()
    })
    .await;
    // The real binary, configured the way an operator would.
    let mut worker = app.worker_process(&[(
        "IMGFLOW_ROUTES",
        "photos/=thumbnail avatars/=avatar avatars/wide/=og",
    )]);
    app.put_inbox("avatars/me.jpg", ROCKET, &[]).await;
    app.put_inbox("avatars/wide/team.jpg", ROCKET, &[]).await;
    app.put_inbox("avatars/own.jpg", ROCKET, &[("preset", "thumbnail")])
        .await;
    app.put_inbox("elsewhere.jpg", ROCKET, &[]).await;

    let me = app.wait_for_manifest("avatars/me.jpg").await;
    assert_eq!(me.status, Status::Done, "{me:?}");
    assert_eq!(me.preset.as_deref(), Some("avatar"));
    assert_eq!(
        me.route,
        Some(Route {
            prefix: "avatars/".into(),
            preset: "avatar".into()
        })
    );
    for (output, side) in [("avatar", 128), ("avatar-2x", 256)] {
        let key = format!("avatars/me.jpg/{output}.webp");
        let bytes = app.get_outbox(&key).await.expect("the output is there");
        assert_eq!(decoded(&bytes), (side, side, image::ImageFormat::WebP));
    }
    // The manifest as clients read it.
    let raw: serde_json::Value = serde_json::from_slice(
        &app.get_outbox("avatars/me.jpg/manifest.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        raw["route"],
        serde_json::json!({"prefix": "avatars/", "preset": "avatar"})
    );

    let wide = app.wait_for_manifest("avatars/wide/team.jpg").await;
    assert_eq!(
        wide.preset.as_deref(),
        Some("og"),
        "the longest prefix wins"
    );
    assert_eq!(wide.route.unwrap().prefix, "avatars/wide/");
    let own = app.wait_for_manifest("avatars/own.jpg").await;
    assert_eq!(
        (own.preset.as_deref(), own.route),
        (Some("thumbnail"), None)
    );
    let other = app.wait_for_manifest("elsewhere.jpg").await;
    assert_eq!(
        (other.preset.as_deref(), other.route),
        (Some("default"), None)
    );
    let raw_other = app.get_outbox("elsewhere.jpg/manifest.json").await.unwrap();
    assert!(!String::from_utf8_lossy(&raw_other).contains("\"route\""));

    worker.kill().unwrap();
    worker.wait().unwrap();
}

#[test]
fn a_route_to_an_unknown_preset_stops_the_worker_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("worker")
        .env("IMGFLOW_ROUTES", "avatars/=avatar photos/=nope")
        .env("IMGFLOW_WORKER_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no preset named \"nope\""), "{stderr}");
}

#[test]
fn setup_checks_routes_and_prints_them_for_the_workers() {
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .args(["setup", "--route", "photos/=nope"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no preset named \"nope\""));
}

#[test]
fn setup_prints_the_routes_the_workers_need() {
    let res = crate::harness::fresh_resources();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .args([
            "setup",
            "--route",
            "avatars/=avatar",
            "--route",
            "photos/=thumbnail",
        ])
        .env("IMGFLOW_INBOX", &res.inbox)
        .env("IMGFLOW_OUTBOX", &res.outbox)
        .env("IMGFLOW_QUEUE", &res.queue)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("IMGFLOW_ROUTES=\"avatars/=avatar photos/=thumbnail\""),
        "{stdout}"
    );
}
