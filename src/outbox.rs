//! The outbox contract: where renditions go and what `manifest.json` says.
//!
//! `photos/cat.jpg` in the inbox yields `photos/cat.jpg/<output>.<ext>` and,
//! written last, `photos/cat.jpg/manifest.json`. The manifest's presence
//! means the job is finished; clients and the API read job state from it.

use serde::{Deserialize, Serialize};

pub const MANIFEST_NAME: &str = "manifest.json";
/// How every manifest key ends.
pub const MANIFEST_SUFFIX: &str = "/manifest.json";

/// User metadata (`x-amz-meta-imgflow-output`) on everything the worker
/// writes, so that a rendition copied back into the inbox is recognised.
pub const META_OWN_OUTPUT: &str = "imgflow-output";

/// S3's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Where the manifest of `inbox_key` lives: `<inbox key>/manifest.json`, or,
/// when that would be longer than S3 allows, `_failed/<sha256 of the inbox
/// key>/manifest.json` (such a job can only fail: its outputs cannot be
/// named either; the manifest holds the original key).
pub fn manifest_key(inbox_key: &str) -> String {
    let key = format!("{inbox_key}/{MANIFEST_NAME}");
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(inbox_key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("_failed/{hex}/{MANIFEST_NAME}")
}

pub fn output_key(inbox_key: &str, output_name: &str, extension: &str) -> String {
    format!("{inbox_key}/{output_name}.{extension}")
}

/// Is `key` the manifest of an upload directly inside folder `prefix`
/// (`<prefix><file>/manifest.json`, `<file>` without a `/`)?
pub fn is_manifest_in_folder_of(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(MANIFEST_NAME))
        .and_then(|file| file.strip_suffix('/'))
        .is_some_and(|file| !file.is_empty() && !file.contains('/'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Done,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub status: Status,
    /// Set when the upload came through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub source: SourceRef,
    /// The recipe that ran, in canonical form (absent if it did not parse).
    pub recipe: Option<String>,
    /// The preset the recipe came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The route (`--route PREFIX=PRESET`) that chose the preset, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::recipe::Route>,
    pub outputs: Vec<OutputRef>,
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// What the sandbox child that decoded the source used (absent when
    /// no child ran, or it died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxUse>,
    /// RFC 3339.
    pub finished_at: String,
    /// `imgflow <version>` that wrote this manifest.
    pub worker: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub bucket: String,
    pub key: String,
    pub etag: Option<String>,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    pub name: String,
    pub key: String,
    pub format: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxUse {
    /// Children started for the job: 2 when the first died and was retried.
    pub attempts: u32,
    /// The peak resident memory of the child that finished the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

/// Milliseconds spent in each stage of the job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub download_ms: u64,
    /// The whole image pipeline: decoding, the operations and encoding.
    pub process_ms: u64,
    /// Of `process_ms`, decoding the source.
    #[serde(default)]
    pub decode_ms: u64,
    /// Of `process_ms`, encoding the renditions.
    #[serde(default)]
    pub encode_ms: u64,
    pub upload_ms: u64,
}

/// A permanent failure, with a stable code clients can branch on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_manifest_live_in_a_folder_named_after_the_inbox_key() {
        assert_eq!(
            manifest_key("photos/cat.jpg"),
            "photos/cat.jpg/manifest.json"
        );
        assert_eq!(
            output_key("photos/cat.jpg", "thumb", "webp"),
            "photos/cat.jpg/thumb.webp"
        );
    }

    #[test]
    fn a_key_too_long_for_its_manifest_gets_one_at_a_fallback_key() {
        let long = "k".repeat(1011);
        let key = manifest_key(&long);
        assert!(key.starts_with("_failed/") && key.ends_with("/manifest.json"));
        assert_eq!(key.len(), "_failed//manifest.json".len() + 64);
        assert_eq!(manifest_key(&long), key, "the same key every time");
        assert_eq!(manifest_key("a.jpg"), "a.jpg/manifest.json");
    }

    #[test]
    fn a_folders_manifest_is_one_level_down() {
        let p = "uploads/j/";
        assert!(is_manifest_in_folder_of(
            p,
            "uploads/j/cat.jpg/manifest.json"
        ));
        assert!(!is_manifest_in_folder_of(p, "uploads/j/cat.jpg/thumb.jpg"));
        assert!(!is_manifest_in_folder_of(
            p,
            "uploads/j/a/b.jpg/manifest.json"
        ));
        assert!(!is_manifest_in_folder_of(p, "uploads/j/manifest.json"));
        assert!(!is_manifest_in_folder_of(
            p,
            "uploads/k/cat.jpg/manifest.json"
        ));
    }

    #[test]
    fn a_failed_manifest_serialises_with_its_error_and_status() {
        let manifest = Manifest {
            status: Status::Failed,
            job_id: None,
            source: SourceRef {
                bucket: "in".into(),
                key: "a.txt".into(),
                etag: None,
                size: 3,
                sequencer: None,
            },
            recipe: None,
            preset: None,
            route: None,
            outputs: vec![],
            timings: Timings::default(),
            error: Some(JobError {
                code: "unsupported_image".into(),
                message: "nope".into(),
            }),
            sandbox: None,
            finished_at: "2026-01-01T00:00:00Z".into(),
            worker: "imgflow test".into(),
        };
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(json["status"], "failed");
        assert_eq!(json["error"]["code"], "unsupported_image");
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, manifest);
    }
}
