//! The backfill's cursor file: where an interrupted backfill resumes.
//!
//! It holds the last key of the last batch SQS accepted, and what the
//! backfill was (bucket, prefix, recipe or preset), so that a cursor is
//! never used for another backfill. It is replaced atomically (write, then
//! rename) after every accepted batch and removed when the backfill ends.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::event::Requested;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub bucket: String,
    pub prefix: String,
    #[serde(default)]
    pub requested: Requested,
    /// Every key up to and including this one has been enqueued or skipped.
    pub last_key: String,
}

/// The file and the backfill it belongs to.
pub struct CursorFile {
    path: PathBuf,
    pub bucket: String,
    pub prefix: String,
    pub requested: Requested,
}

impl CursorFile {
    /// Where to resume: the saved last key, if the file exists. A file of
    /// another backfill is an error, not a silent fresh start.
    pub fn load(&self) -> anyhow::Result<Option<String>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let cursor: Cursor = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a backfill cursor", self.path.display()))?;
        if (&cursor.bucket, &cursor.prefix, &cursor.requested)
            != (&self.bucket, &self.prefix, &self.requested)
        {
            anyhow::bail!(
                "{} belongs to another backfill (s3://{}/{}); remove it or pass another --cursor",
                self.path.display(),
                cursor.bucket,
                cursor.prefix
            );
        }
        Ok(Some(cursor.last_key))
    }

    pub fn save(&self, last_key: &str) -> anyhow::Result<()> {
        let cursor = Cursor {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            requested: self.requested.clone(),
            last_key: last_key.to_owned(),
        };
        let tmp = with_suffix(&self.path, ".tmp");
        std::fs::write(&tmp, serde_json::to_vec(&cursor)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))
    }

    pub fn remove(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", self.path.display()))
            }
            _ => Ok(()),
        }
    }

    pub fn new(path: &Path, bucket: &str, prefix: &str, requested: &Requested) -> CursorFile {
        CursorFile {
            path: path.to_owned(),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            requested: requested.clone(),
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_resumes_its_own_backfill_only() {
        let dir = std::env::temp_dir().join(format!("imgflow-cursor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        let file = CursorFile::new(&path, "in", "photos/", &Requested::default());
        assert_eq!(file.load().unwrap(), None);
        file.save("photos/b.jpg").unwrap();
        assert_eq!(file.load().unwrap().as_deref(), Some("photos/b.jpg"));
        let other = Requested {
            preset: Some("avatar".into()),
            recipe: None,
        };
        let wrong = CursorFile::new(&path, "in", "photos/", &other);
        assert!(
            wrong
                .load()
                .unwrap_err()
                .to_string()
                .contains("another backfill")
        );
        file.remove().unwrap();
        assert_eq!(file.load().unwrap(), None);
        file.remove().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
