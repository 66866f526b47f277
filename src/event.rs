//! S3 event notifications (as delivered in SQS message bodies) → the inbox
//! objects to process. Pure: no I/O.
//!
//! The queue also carries imgflow's own [`ProcessMessage`] (sent by
//! `imgflow backfill`): one object, and optionally the recipe or preset to
//! run instead of what its metadata says.

use aws_lambda_events::s3::S3Event;
use percent_encoding::percent_decode_str;

/// What one SQS message asks of the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// The `s3:TestEvent` S3 sends when a notification is configured.
    Test,
    /// Objects created in a bucket (other event types are dropped).
    Created(Vec<CreatedObject>),
}

/// One `ObjectCreated:*` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    pub bucket: String,
    /// The key as stored, URL-decoded (S3 sends `+` for space).
    pub key: String,
    pub etag: Option<String>,
    pub size: Option<u64>,
    /// Orders events for the same key: a larger sequencer is a later write.
    pub sequencer: Option<String>,
    /// When S3 saw the write (the upload completed), in milliseconds since
    /// the Unix epoch; the start of the queue lag.
    pub event_time_ms: Option<i64>,
    /// What to run instead of the object's metadata (a backfill's
    /// `--recipe` / `--preset`); `None` for S3's own events.
    pub requested: Option<Requested>,
}

/// A recipe or preset the message asks for, overriding the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Requested {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

/// The value of [`ProcessMessage::imgflow`].
pub const PROCESS_MESSAGE: &str = "process/v1";

/// imgflow's own job message: `{"imgflow":"process/v1","bucket":…,"key":…,
/// "etag":…,"size":…,"recipe"?:…,"preset"?:…}`. The key is as stored (not
/// URL-encoded); the ETag, when given, must still be the object's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessMessage {
    pub imgflow: String,
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(flatten)]
    pub requested: Requested,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the message is not an S3 event notification: {0}")]
    NotAnS3Event(#[source] serde_json::Error),
    #[error("record {index} has no {field}")]
    MissingField { index: usize, field: &'static str },
    #[error("record {index} has a key that is not URL-encoded UTF-8: {key:?}")]
    BadKey { index: usize, key: String },
    #[error(
        "an imgflow message of an unknown version {0:?} (this worker reads {PROCESS_MESSAGE:?})"
    )]
    UnknownVersion(String),
}

pub fn parse(body: &str) -> Result<Notification, EventError> {
    #[derive(serde::Deserialize)]
    struct MaybeTest {
        #[serde(rename = "Event")]
        event: Option<String>,
    }
    if let Ok(MaybeTest {
        event: Some(event), ..
    }) = serde_json::from_str(body)
        && event == "s3:TestEvent"
    {
        return Ok(Notification::Test);
    }

    if let Some(created) = parse_process_message(body)? {
        return Ok(Notification::Created(vec![created]));
    }
    let event: S3Event = serde_json::from_str(body).map_err(EventError::NotAnS3Event)?;
    let mut objects = Vec::new();
    for (index, record) in event.records.into_iter().enumerate() {
        let created = record
            .event_name
            .as_deref()
            .is_some_and(|name| name.starts_with("ObjectCreated:"));
        if !created {
            continue;
        }
        let missing = |field| EventError::MissingField { index, field };
        let bucket = record
            .s3
            .bucket
            .name
            .ok_or_else(|| missing("bucket name"))?;
        let raw_key = record.s3.object.key.ok_or_else(|| missing("object key"))?;
        let key = decode_key(&raw_key).ok_or(EventError::BadKey {
            index,
            key: raw_key,
        })?;
        objects.push(CreatedObject {
            bucket,
            key,
            etag: record.s3.object.e_tag.filter(|e| !e.is_empty()),
            size: record.s3.object.size.and_then(|s| u64::try_from(s).ok()),
            sequencer: record.s3.object.sequencer.filter(|s| !s.is_empty()),
            event_time_ms: Some(record.event_time.timestamp_millis()).filter(|&ms| ms > 0),
            requested: None,
        });
    }
    Ok(Notification::Created(objects))
}

/// A [`ProcessMessage`], `None` when the body is something else.
fn parse_process_message(body: &str) -> Result<Option<CreatedObject>, EventError> {
    #[derive(serde::Deserialize)]
    struct Tag {
        imgflow: Option<String>,
    }
    match serde_json::from_str::<Tag>(body) {
        Ok(Tag { imgflow: Some(_) }) => {}
        _ => return Ok(None),
    }
    let m: ProcessMessage = serde_json::from_str(body).map_err(EventError::NotAnS3Event)?;
    if m.imgflow != PROCESS_MESSAGE {
        return Err(EventError::UnknownVersion(m.imgflow));
    }
    let missing = |field| EventError::MissingField { index: 0, field };
    if m.bucket.is_empty() {
        return Err(missing("bucket name"));
    }
    if m.key.is_empty() || m.key.len() > 1024 {
        return Err(missing("object key of 1 to 1024 bytes"));
    }
    Ok(Some(CreatedObject {
        bucket: m.bucket,
        key: m.key,
        etag: m.etag.filter(|e| !e.is_empty()),
        size: m.size,
        sequencer: None,
        event_time_ms: None,
        requested: Some(m.requested).filter(|r| r.recipe.is_some() || r.preset.is_some()),
    }))
}

/// Keys in S3 events are form-encoded: `+` is a space, `%2B` a plus.
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_event_is_recognised() {
        let body = include_str!("../tests/fixtures/events/s3-test-event.json");
        assert_eq!(parse(body).unwrap(), Notification::Test);
    }

    #[test]
    fn a_captured_localstack_event_yields_its_object() {
        let body = include_str!("../tests/fixtures/events/localstack-object-created.json");
        let Notification::Created(objects) = parse(body).unwrap() else {
            panic!("expected records");
        };
        assert_eq!(objects.len(), 1);
        let o = &objects[0];
        assert_eq!(o.bucket, "imgflow-inbox");
        assert_eq!(o.key, "photos/my cat+dog é.jpg");
        assert_eq!(o.size, Some(112525));
        assert!(o.etag.is_some());
        assert!(o.sequencer.is_some());
        // "eventTime": "2026-11-28T11:40:57.946Z"
        assert_eq!(o.event_time_ms, Some(1_795_866_057_946));
    }

    #[test]
    fn removal_records_are_dropped() {
        let body = include_str!("../tests/fixtures/events/localstack-object-created.json")
            .replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(parse(&body).unwrap(), Notification::Created(vec![]));
    }

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("a+b%2Bc%2F%C3%A9").as_deref(), Some("a b+c/é"));
        assert_eq!(decode_key("%FF"), None);
    }

    #[test]
    fn imgflow_process_messages_name_one_object_and_what_to_run() {
        let body = r#"{"imgflow":"process/v1","bucket":"in","key":"a b+c.jpg","etag":"e1","size":5,"preset":"avatar"}"#;
        let Notification::Created(objects) = parse(body).unwrap() else {
            panic!("expected an object");
        };
        assert_eq!(objects[0].key, "a b+c.jpg", "not URL-decoded");
        assert_eq!(objects[0].etag.as_deref(), Some("e1"));
        let requested = objects[0].requested.clone().unwrap();
        assert_eq!(requested.preset.as_deref(), Some("avatar"));
        let plain = r#"{"imgflow":"process/v1","bucket":"in","key":"k"}"#;
        let Notification::Created(objects) = parse(plain).unwrap() else {
            panic!("expected an object");
        };
        assert_eq!(objects[0].requested, None);
        assert!(parse(r#"{"imgflow":"process/v9","bucket":"in","key":"k"}"#).is_err());
        assert!(parse(r#"{"imgflow":"process/v1","bucket":"in","key":""}"#).is_err());
        assert!(parse(r#"{"imgflow":"process/v1","key":"k"}"#).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse("not json").is_err());
        assert!(parse("{\"Records\": 5}").is_err());
    }
}
