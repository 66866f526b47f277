//! The inbox contract: where the API puts uploads and which user metadata
//! carries the recipe. Pure: no I/O.
//!
//! Anything that writes to the inbox can start a job; the API is only one
//! writer. `aws s3 cp photo.jpg s3://imgflow-inbox/a/photo.jpg --metadata
//! recipe=resize,w=800` works just as well.

use uuid::Uuid;

/// User metadata (`x-amz-meta-recipe`) holding a recipe.
pub const META_RECIPE: &str = "recipe";
/// User metadata (`x-amz-meta-preset`) naming a configured preset.
pub const META_PRESET: &str = "preset";
/// User metadata (`x-amz-meta-job-id`) set by the API on its uploads.
pub const META_JOB_ID: &str = "job-id";
/// User metadata (`x-amz-meta-traceparent`): the W3C trace context of the
/// request that made the upload, so the job's trace links back to it.
pub const META_TRACEPARENT: &str = "traceparent";

/// Folder of the inbox (and so of the outbox) that holds one API job.
pub fn job_prefix(job_id: Uuid) -> String {
    format!("uploads/{job_id}/")
}

/// Where the old synchronous API (`/api/images/...`) puts its uploads.
pub const LEGACY_PREFIX: &str = "api/";

/// Folder of one old-API upload, named by its image key.
pub fn legacy_prefix(image_id: Uuid) -> String {
    format!("{LEGACY_PREFIX}{image_id}/")
}

/// The inbox key of an old-API upload: `api/<image id>/<clean file name>`.
pub fn legacy_key(image_id: Uuid, filename: &str) -> String {
    format!("{}{}", legacy_prefix(image_id), clean_filename(filename))
}

/// The image id of an old-API key or of anything in its outbox folder.
pub fn legacy_id(key: &str) -> Option<&str> {
    key.strip_prefix(LEGACY_PREFIX)?.split('/').next()
}

/// The inbox key the API chooses for an upload: the job's folder and a
/// cleaned-up file name, so keys stay readable but never hold `/`, `..` or
/// characters that need escaping.
pub fn upload_key(job_id: Uuid, filename: &str) -> String {
    format!("{}{}", job_prefix(job_id), clean_filename(filename))
}

/// Keep `[A-Za-z0-9._-]`, turn runs of anything else into one `-`, and cap
/// the length (keeping the extension).
pub fn clean_filename(filename: &str) -> String {
    // Browsers on Windows send the full path.
    let base = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::with_capacity(base.len());
    for c in base.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches(|c| c == '.' || c == '-');
    if out.is_empty() {
        return "upload".to_owned();
    }
    const MAX: usize = 100;
    if out.len() <= MAX {
        return out.to_owned();
    }
    match out.rsplit_once('.') {
        Some((stem, ext)) if ext.len() < 10 => {
            format!("{}.{ext}", &stem[..MAX - ext.len() - 1])
        }
        _ => out[..MAX].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_made_safe_for_keys() {
        assert_eq!(clean_filename("cat.jpg"), "cat.jpg");
        assert_eq!(clean_filename("My Holiday (1).JPG"), "My-Holiday-1-.JPG");
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\me\\été.png"), "t-.png");
        assert_eq!(clean_filename("..."), "upload");
        assert_eq!(clean_filename(""), "upload");
        let long = format!("{}.jpeg", "a".repeat(300));
        let cleaned = clean_filename(&long);
        assert_eq!(cleaned.len(), 100);
        assert!(cleaned.ends_with(".jpeg"));
    }

    #[test]
    fn old_api_keys_live_in_their_own_folder() {
        let id = Uuid::nil();
        let key = legacy_key(id, "a b.png");
        assert_eq!(key, "api/00000000-0000-0000-0000-000000000000/a-b.png");
        assert_eq!(legacy_id(&key), Some(&*id.to_string()));
        assert_eq!(legacy_id("uploads/x/y"), None);
    }

    #[test]
    fn upload_keys_live_in_the_jobs_folder() {
        let id = Uuid::nil();
        assert_eq!(
            upload_key(id, "a b.png"),
            "uploads/00000000-0000-0000-0000-000000000000/a-b.png"
        );
    }
}
