//! What the API's job watchers learn from the store: the manifests the
//! worker in this process announces, and which of many keys are finished.

use std::collections::{HashMap, HashSet};

use anyhow::Context;

use super::Store;
use crate::outbox::{self, Manifest};

/// A manifest the worker in this process has just written.
#[derive(Clone, Debug)]
pub struct Announced {
    pub key: String,
    pub manifest: std::sync::Arc<Manifest>,
}

impl Store {
    /// Which of these inbox keys have a manifest, from one listing (more
    /// pages only when over 1,000 outbox keys lie between them): the keys
    /// of recent old-API uploads sort together, so this is one call for
    /// every upload waited on.
    pub async fn finished_keys(&self, keys: &[String]) -> anyhow::Result<HashSet<String>> {
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return Ok(Default::default());
        };
        let common: usize = first
            .chars()
            .zip(last.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a.len_utf8())
            .sum();
        let prefix = &first[..common];
        let end = outbox::manifest_key(last);
        let wanted: HashMap<String, &String> = sorted
            .iter()
            .map(|key| (outbox::manifest_key(key), *key))
            .collect();
        let mut finished = HashSet::new();
        let mut token = None;
        loop {
            let listing = self
                .s3
                .list_objects_v2()
                .bucket(&self.outbox)
                .prefix(prefix)
                // Everything of `first` sorts after it: `first/...`.
                .start_after(first.as_str())
                .set_continuation_token(token)
                .send()
                .await
                .with_context(|| format!("listing s3://{}/{prefix}", self.outbox))?;
            let mut past = false;
            for key in listing.contents().iter().filter_map(|o| o.key()) {
                if let Some(inbox_key) = wanted.get(key) {
                    finished.insert((*inbox_key).clone());
                }
                past |= key >= end.as_str();
            }
            token = listing.next_continuation_token().map(str::to_owned);
            if past || !listing.is_truncated().unwrap_or(false) || token.is_none() {
                return Ok(finished);
            }
        }
    }
}
