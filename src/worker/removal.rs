//! `setup --on-delete remove`: an `ObjectRemoved:*` event removes the
//! deleted source's renditions and manifest, but only while the manifest
//! still names the deleted version. Knows S3 (through [`Store`]), nothing
//! of SQS.
//!
//! Events are unordered, so a delete can arrive before or after the events
//! of uploads around it. Two checks keep a stale delete from removing a
//! newer upload's outputs:
//! - the source must be gone now: if the key exists, a newer upload (or,
//!   with versioning, the current version) is there and its own event
//!   writes, or has written, the outputs;
//! - the manifest must not come from a later write: a delete whose
//!   sequencer is lower than the manifest's upload sequencer is older than
//!   that upload (equal or missing sequencers prove nothing either way, so
//!   the first check decides).
//!
//! Outputs go first and the manifest last, the reverse of a job, so a
//! crash half-way leaves a manifest that the redelivered event finishes.

use std::cmp::Ordering;

use crate::event::CreatedObject;
use crate::outbox::manifest_key;
use crate::store::Store;

/// What to do about one removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Remove,
    /// The key exists again: a newer upload owns the outputs.
    KeepSourceExists,
    /// The manifest comes from an upload later than the delete.
    KeepNewerManifest,
}

/// The rule, apart from S3: `source_exists` is the key's state now.
pub fn decide(
    removal_sequencer: Option<&str>,
    manifest_sequencer: Option<&str>,
    source_exists: bool,
) -> Decision {
    if source_exists {
        return Decision::KeepSourceExists;
    }
    match (removal_sequencer, manifest_sequencer) {
        (Some(removal), Some(upload))
            if compare_sequencers(removal, upload) == Some(Ordering::Less) =>
        {
            Decision::KeepNewerManifest
        }
        _ => Decision::Remove,
    }
}

/// S3 sequencers are hexadecimal numbers: a greater one is a later event
/// on the same key. `None` when either is not hexadecimal.
pub fn compare_sequencers(a: &str, b: &str) -> Option<Ordering> {
    let digits = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| s.trim_start_matches('0').to_ascii_uppercase())
    };
    let (a, b) = (digits(a)?, digits(b)?);
    Some(a.len().cmp(&b.len()).then_with(|| a.cmp(&b)))
}

/// Handle one `ObjectRemoved:*` record: `Some(outputs removed)`, or `None`
/// when a newer upload owns them. `Err`: try again later.
pub async fn remove(store: &Store, object: &CreatedObject) -> anyhow::Result<Option<usize>> {
    let Some(manifest) = store.read_manifest(&object.key).await? else {
        // No finished job: nothing to remove. (A job still running sees its
        // source gone before it writes, and writes nothing.)
        return Ok(Some(0));
    };
    let exists = store.source_etag(&object.key).await?.is_some();
    match decide(
        object.sequencer.as_deref(),
        manifest.source.sequencer.as_deref(),
        exists,
    ) {
        Decision::Remove => {}
        Decision::KeepSourceExists | Decision::KeepNewerManifest => {
            return Ok(None);
        }
    }
    let outputs: Vec<String> = manifest.outputs.iter().map(|o| o.key.clone()).collect();
    store.delete_outputs(&outputs).await?;
    store.delete_outputs(&[manifest_key(&object.key)]).await?;
    Ok(Some(outputs.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_compare_as_hexadecimal_numbers() {
        let cmp = compare_sequencers;
        assert_eq!(
            cmp("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp("0055aed6dcd90281e6", "0055AED6DCD90281E5"),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp("00FF", "FF"), Some(Ordering::Equal));
        assert_eq!(cmp("100", "FF"), Some(Ordering::Greater));
        assert_eq!(cmp("xyz", "FF"), None);
    }

    #[test]
    fn a_delete_removes_only_when_the_source_is_gone_and_not_newer() {
        let (old, new) = (Some("0055AED6DCD90281E5"), Some("0055AED6DCD90281F0"));
        // The ordinary case: the delete came after the upload.
        assert_eq!(decide(new, old, false), Decision::Remove);
        // A re-upload exists now: its outputs stay, whatever the sequencers say.
        assert_eq!(decide(new, old, true), Decision::KeepSourceExists);
        // The delete is older than the upload the manifest is from.
        assert_eq!(decide(old, new, false), Decision::KeepNewerManifest);
        // Nothing to compare (LocalStack repeats one sequencer; backfilled jobs have none).
        assert_eq!(decide(old, old, false), Decision::Remove);
        assert_eq!(decide(None, new, false), Decision::Remove);
        assert_eq!(decide(new, None, true), Decision::KeepSourceExists);
    }
}
