//! The inbox contract: where the API puts uploads and which user metadata
//! carries the recipe. Pure: no I/O.
//!
//! Anything that writes to the inbox can start a job; the API is only one
//! writer. `aws s3 cp photo.jpg s3://imgflow-inbox/a/photo.jpg --metadata
//! '{"recipe":"resize,w=800"}'` works just as well (the CLI's shorthand
//! form would split the recipe at its comma: see [`mangled_recipe`]).

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

/// The parameter names of recipe steps (`resize,w=…`): user metadata under
/// one of these names beside a `recipe` is the rest of a recipe that a
/// client split at its commas (the AWS CLI's `--metadata` shorthand does).
const RECIPE_PARAMETERS: &[&str] = &[
    "w", "h", "fit", "gravity", "up", "x", "y", "deg", "dir", "text", "pos", "size", "color",
    "opacity", "margin", "sigma", "amount", "q", "bg", "lossless",
];

/// Stable error code of a recipe that a client split at its commas.
pub const RECIPE_MANGLED: &str = "recipe_mangled";

/// Why the metadata's recipe looks split at its commas, or `None` when it
/// does not. Such a job must fail: the part that is left may still parse
/// (`blur` without its `sigma`), into silently different outputs.
pub fn mangled_recipe(metadata: &std::collections::HashMap<String, String>) -> Option<String> {
    let recipe = metadata.get(META_RECIPE)?;
    let mut stray: Vec<String> = metadata
        .iter()
        .filter(|(key, _)| RECIPE_PARAMETERS.contains(&key.as_str()))
        .map(|(key, value)| format!("{key}={value:?}"))
        .collect();
    if stray.is_empty() {
        return None;
    }
    stray.sort();
    Some(format!(
        "the recipe {recipe:?} came with metadata that looks like the rest of it ({}): the \
         client split the recipe at its commas (the AWS CLI's --metadata shorthand does). Send \
         it whole, e.g. --metadata '{{\"recipe\":\"...\"}}', or with `;` instead of `,`",
        stray.join(", ")
    ))
}

/// Folder of the inbox (and so of the outbox) that holds one API job.
pub fn job_prefix(job_id: Uuid) -> String {
    format!("uploads/{job_id}/")
}

/// Where the old synchronous API (`/api/images/...`) puts its uploads.
pub const LEGACY_PREFIX: &str = "api/";

/// Where old-API uploads go since image keys sort newest first: S3 lists
/// keys in ascending order, so the first listing page is the newest results.
/// (`n` sorts after every hex digit, so these never mix with the UUID
/// folders of earlier uploads.)
pub const LEGACY_NEWEST_FIRST: &str = "api/n/";

/// A new old-API image key: 16 hex digits of `u64::MAX` minus the Unix time
/// in milliseconds (so a later upload sorts first), a dash and 8 random hex
/// digits (uploads in the same millisecond).
pub fn new_legacy_id(now: std::time::SystemTime, random: Uuid) -> String {
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random = random.simple().to_string();
    format!("{:016x}-{}", u64::MAX - millis, &random[..8])
}

fn is_newest_first_id(id: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    matches!(id.split_once('-'), Some((time, random))
        if time.len() == 16 && random.len() == 8 && hex(time) && hex(random))
}

/// Folder of one old-API upload, from its image key: a newest-first key
/// (`api/n/<key>/`) or a UUID handed out before them (`api/<uuid>/`).
/// `None` for anything else, so a client's string never becomes a prefix.
pub fn legacy_prefix(image_id: &str) -> Option<String> {
    if is_newest_first_id(image_id) {
        Some(format!("{LEGACY_NEWEST_FIRST}{image_id}/"))
    } else {
        let uuid = Uuid::parse_str(image_id).ok()?;
        Some(format!("{LEGACY_PREFIX}{uuid}/"))
    }
}

/// The inbox key of an old-API upload: `api/n/<image id>/<clean file name>`.
pub fn legacy_key(image_id: &str, filename: &str) -> String {
    let folder = legacy_prefix(image_id).expect("a key made by new_legacy_id");
    format!("{folder}{}", clean_filename(filename))
}

/// The image id of an old-API key (either scheme) or of anything in its
/// outbox folder.
pub fn legacy_id(key: &str) -> Option<&str> {
    let rest = key
        .strip_prefix(LEGACY_NEWEST_FIRST)
        .or_else(|| key.strip_prefix(LEGACY_PREFIX))?;
    rest.split('/').next()
}

/// Is `key` one the API wrote for the job named in its `job-id` metadata?
/// Those keys are written once (presigned PUTs and the old API's writes
/// carry `If-None-Match: *`, and each job has a fresh id), so no newer
/// upload of them can appear while a job runs: the worker skips its check
/// for one. Every other key (files dropped in the bucket) is checked.
pub fn written_once(key: &str, job_id: Option<&str>) -> bool {
    let Some(job_id) = job_id else {
        return false;
    };
    let under = |prefix: String| {
        key.strip_prefix(&prefix)
            .is_some_and(|file| !file.is_empty() && !file.contains('/'))
    };
    match Uuid::parse_str(job_id) {
        Ok(uuid) if job_id == uuid.to_string() && under(job_prefix(uuid)) => true,
        _ => legacy_prefix(job_id).is_some_and(under),
    }
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
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1);
        let id = new_legacy_id(at, Uuid::nil());
        assert_eq!(id, "fffffffffffffffe-00000000");
        let key = legacy_key(&id, "a b.png");
        assert_eq!(key, "api/n/fffffffffffffffe-00000000/a-b.png");
        assert_eq!(legacy_id(&key), Some(&*id));
        assert_eq!(legacy_id("uploads/x/y"), None);
        // Keys handed out before: UUID folders right under api/.
        let old = Uuid::new_v4().to_string();
        assert_eq!(legacy_prefix(&old), Some(format!("api/{old}/")));
        assert_eq!(
            legacy_id(&format!("api/{old}/x.png/manifest.json")),
            Some(&*old)
        );
        assert_eq!(legacy_prefix("../x"), None);
        assert_eq!(legacy_prefix("n"), None);
    }

    #[test]
    fn later_old_api_uploads_sort_first_and_after_no_uuid_folder() {
        let t = std::time::SystemTime::now();
        let earlier = legacy_key(&new_legacy_id(t, Uuid::new_v4()), "a.png");
        let later = legacy_key(
            &new_legacy_id(t + std::time::Duration::from_millis(1), Uuid::new_v4()),
            "a.png",
        );
        assert!(later < earlier);
        let uuid_folder = "api/ffffffff-ffff-ffff-ffff-ffffffffffff/a.png".to_owned();
        assert!(uuid_folder < later);
    }

    #[test]
    fn only_keys_the_api_wrote_for_their_job_count_as_written_once() {
        let job = Uuid::new_v4();
        let key = upload_key(job, "cat.jpg");
        assert!(written_once(&key, Some(&job.to_string())));
        assert!(!written_once(&key, None), "no job id: dropped in by hand");
        assert!(!written_once(&key, Some(&Uuid::new_v4().to_string())));
        assert!(!written_once("photos/cat.jpg", Some(&job.to_string())));
        assert!(!written_once(
            &format!("{key}/deeper.jpg"),
            Some(&job.to_string())
        ));
        let id = new_legacy_id(std::time::SystemTime::now(), Uuid::new_v4());
        assert!(written_once(&legacy_key(&id, "a b.png"), Some(&id)));
        assert!(!written_once(&legacy_key(&id, "a.png"), Some("n")));
    }

    #[test]
    fn a_recipe_split_at_its_commas_is_recognised() {
        let meta = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let split = meta(&[("recipe", "thumb:resize"), ("w", "200/jpeg")]);
        let why = mangled_recipe(&split).unwrap();
        assert!(
            why.contains("\"thumb:resize\"") && why.contains("w=\"200/jpeg\""),
            "{why}"
        );
        assert_eq!(mangled_recipe(&meta(&[("recipe", "resize,w=1")])), None);
        assert_eq!(mangled_recipe(&meta(&[("w", "1"), ("job-id", "j")])), None);
        assert_eq!(
            mangled_recipe(&meta(&[("recipe", "blur"), ("owner", "me")])),
            None
        );
    }

    #[test]
    fn a_semicolon_stands_for_a_comma_so_clients_that_split_at_commas_cannot() {
        use crate::recipe::Recipe;
        let with_commas = Recipe::parse("thumb:resize,w=200,h=100,fit=cover/jpeg,q=80").unwrap();
        let without = Recipe::parse("thumb:resize;w=200;h=100;fit=cover/jpeg;q=80").unwrap();
        assert_eq!(with_commas, without);
        let err = Recipe::parse("resize;w=2x").unwrap_err();
        assert_eq!(err.column, 10, "{err}");
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
