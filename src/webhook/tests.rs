use super::*;
use crate::outbox::{SourceRef, Timings};

fn manifest(status: Status) -> Manifest {
    Manifest {
        analysis: None,
        srcset: Default::default(),
        status,
        job_id: None,
        source: SourceRef {
            bucket: "in".into(),
            key: "photos/cat.jpg".into(),
            etag: Some("\"abc\"".into()),
            size: 10,
            sequencer: Some("0055".into()),
        },
        recipe: Some("resize,w=10/jpeg".into()),
        preset: None,
        route: None,
        outputs: vec![],
        timings: Timings::default(),
        error: None,
        sandbox: None,
        finished_at: "2026-01-01T00:00:00Z".into(),
        worker: "imgflow test".into(),
    }
}

#[test]
fn the_signature_matches_the_standard_webhooks_example() {
    // The example of the Standard Webhooks reference libraries' tests.
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let signature = sign(
        &key,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        r#"{"test": 2432232314}"#,
    );
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

#[test]
fn a_rewrite_of_the_same_result_keeps_its_id_and_another_result_gets_a_new_one() {
    let done = manifest(Status::Done);
    let mut again = done.clone();
    again.finished_at = "2026-01-01T00:00:09Z".into();
    assert_eq!(event_id(&done), event_id(&again));
    assert!(event_id(&done).starts_with("msg_"));
    assert_ne!(event_id(&done), event_id(&manifest(Status::Failed)));
    let mut newer = done.clone();
    newer.source.etag = Some("\"def\"".into());
    assert_ne!(event_id(&done), event_id(&newer));
}

#[test]
fn the_event_names_the_source_the_manifest_and_the_status() {
    let event = Event::from_manifest(&manifest(Status::Failed), "out");
    assert_eq!(event.kind, "image.failed");
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "image.failed");
    assert_eq!(json["data"]["status"], "failed");
    assert_eq!(json["data"]["source"]["key"], "photos/cat.jpg");
    assert_eq!(
        json["data"]["manifest"]["key"],
        "photos/cat.jpg/manifest.json"
    );
    assert_eq!(json["data"]["manifest"]["bucket"], "out");
}
