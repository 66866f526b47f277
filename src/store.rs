//! Every S3 object call imgflow makes on the inbox and the outbox.
//!
//! The key schemes, metadata names and the manifest's shape are pure and
//! live in [`crate::inbox`] and [`crate::outbox`]; this module only moves
//! objects. "Not found" is decided in one place (`not_found`) and surfaces
//! as `None` or [`Fetched::Gone`], never as an error.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::config::Resources;
use crate::outbox::{self, META_OWN_OUTPUT, Manifest};

mod finished;
mod remove;
pub use finished::Announced;

/// The inbox and the outbox, through one S3 client.
#[derive(Clone, Debug)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    inbox: String,
    outbox: String,
    /// Under `imgflow up`: the manifests this process writes, so the API
    /// hears of finished jobs (and reads them) without asking S3.
    finished: Option<tokio::sync::broadcast::Sender<Announced>>,
}

/// What reading a source object at the event's ETag found.
pub enum Fetched {
    Found(Source),
    /// Overwritten since the event: the newer upload has its own event.
    Superseded,
    /// Deleted since the event.
    Gone,
}

/// An inbox object whose headers have arrived; the body is read on demand.
pub struct Source {
    pub metadata: HashMap<String, String>,
    /// Without quotes.
    pub etag: Option<String>,
    pub size: u64,
    body: ByteStream,
}

impl Source {
    pub async fn bytes(self) -> anyhow::Result<Bytes> {
        Ok(self.body.collect().await?.into_bytes())
    }
}

/// A presigned PUT into the inbox: everything in it is signed.
pub struct UploadSpec<'a> {
    pub key: &'a str,
    pub content_type: &'a str,
    pub length: u64,
    pub metadata: HashMap<String, String>,
}

/// A finished job's manifest key and when it was written (seconds since the epoch).
pub struct Finished {
    pub manifest_key: String,
    pub last_modified: i64,
}

/// One page of [`Store::finished_page`].
pub struct FinishedPage {
    pub finished: Vec<Finished>,
    /// The page's last key, finished or not.
    pub last_key: Option<String>,
    /// The next page's continuation token; `None` after the last page.
    pub next: Option<String>,
}

/// An S3 "no such key / bucket / object": the one test of "not found".
fn not_found<E>(err: &SdkError<E, HttpResponse>) -> bool {
    status(err) == Some(404)
}

/// `Ok(None)` for "not found"; any other error with what was being done.
fn found<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    doing: impl FnOnce() -> String,
) -> anyhow::Result<Option<T>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if not_found(&err) => Ok(None),
        Err(err) => Err(err).with_context(doing),
    }
}

fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

impl Store {
    pub fn new(s3: aws_sdk_s3::Client, resources: &Resources) -> Store {
        Store {
            s3,
            inbox: resources.inbox.clone(),
            outbox: resources.outbox.clone(),
            finished: None,
        }
    }

    /// Announce every manifest this store writes on `finished`.
    pub fn announcing(mut self, finished: tokio::sync::broadcast::Sender<Announced>) -> Store {
        self.finished = Some(finished);
        self
    }

    /// The manifest keys written in this process, when the worker runs here too.
    pub fn finished_here(&self) -> Option<tokio::sync::broadcast::Receiver<Announced>> {
        self.finished.as_ref().map(|sender| sender.subscribe())
    }

    /// Does this store announce the manifests it writes (`imgflow up`)?
    pub fn announces(&self) -> bool {
        self.finished.is_some()
    }

    pub fn inbox(&self) -> &str {
        &self.inbox
    }

    pub fn outbox(&self) -> &str {
        &self.outbox
    }

    /// A PUT URL for exactly this upload; a second PUT to the key fails (412).
    pub async fn presign_upload(
        &self,
        upload: UploadSpec<'_>,
        expiry: Duration,
    ) -> anyhow::Result<PresignedRequest> {
        self.s3
            .put_object()
            .bucket(&self.inbox)
            .key(upload.key)
            .content_type(upload.content_type)
            .content_length(i64::try_from(upload.length).context("size out of range")?)
            .if_none_match("*")
            .set_metadata(Some(upload.metadata))
            .presigned(PresigningConfig::expires_in(expiry).context("presigning config")?)
            .await
            .context("presigning the upload")
    }

    /// A GET URL for one outbox object.
    pub async fn presign_download(&self, key: &str, expiry: Duration) -> anyhow::Result<String> {
        let url = self
            .s3
            .get_object()
            .bucket(&self.outbox)
            .key(key)
            .presigned(PresigningConfig::expires_in(expiry).context("presigning config")?)
            .await
            .context("presigning a download")?;
        Ok(url.uri().to_owned())
    }

    /// Write an upload into the inbox (the old API does; everything else
    /// uploads itself). Only if the key is new (`If-None-Match: *`), as the
    /// presigned PUTs: keys the API hands out are written once, so the
    /// worker need not check for a newer upload of them.
    pub async fn put_inbox(
        &self,
        key: &str,
        metadata: HashMap<String, String>,
        bytes: Vec<u8>,
    ) -> anyhow::Result<()> {
        self.s3
            .put_object()
            .bucket(&self.inbox)
            .key(key)
            .if_none_match("*")
            .set_metadata(Some(metadata))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .with_context(|| format!("writing s3://{}/{key}", self.inbox))?;
        Ok(())
    }

    /// The inbox object an event announced, only if it still has the
    /// announced ETag (a newer version has its own event).
    pub async fn get_source(&self, key: &str, etag: Option<&str>) -> anyhow::Result<Fetched> {
        let mut request = self.s3.get_object().bucket(&self.inbox).key(key);
        if let Some(etag) = etag {
            request = request.if_match(quoted(etag));
        }
        match request.send().await {
            Ok(object) => Ok(Fetched::Found(Source {
                metadata: object.metadata.unwrap_or_default(),
                etag: object.e_tag.map(|e| e.trim_matches('"').to_owned()),
                size: object
                    .content_length
                    .and_then(|l| u64::try_from(l).ok())
                    .unwrap_or_default(),
                body: object.body,
            })),
            Err(err) if status(&err) == Some(412) => Ok(Fetched::Superseded),
            Err(err) if not_found(&err) => Ok(Fetched::Gone),
            Err(err) => Err(err).with_context(|| format!("reading s3://{}/{key}", self.inbox)),
        }
    }

    /// The inbox object's current ETag (without quotes); `None` once deleted.
    pub async fn source_etag(&self, key: &str) -> anyhow::Result<Option<String>> {
        let head = self.head_source(key).await?;
        Ok(head.map(|head| {
            head.e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned()
        }))
    }

    /// Write one rendition, marked as ours (the loop guard).
    pub async fn put_output(
        &self,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        self.s3
            .put_object()
            .bucket(&self.outbox)
            .key(key)
            .content_type(content_type)
            .metadata(META_OWN_OUTPUT, "1")
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("writing s3://{}/{key}", self.outbox))?;
        Ok(())
    }

    /// Write the manifest of `manifest.source.key`; returns its key.
    pub async fn put_manifest(&self, manifest: &Manifest) -> anyhow::Result<String> {
        let key = outbox::manifest_key(&manifest.source.key);
        let body = serde_json::to_vec_pretty(manifest).context("serialising the manifest")?;
        self.put_output(&key, "application/json", body).await?;
        if let Some(finished) = &self.finished {
            // Nobody listening is fine: then nobody waits.
            let _ = finished.send(Announced {
                key: key.clone(),
                manifest: std::sync::Arc::new(manifest.clone()),
            });
        }
        Ok(key)
    }

    /// The manifest of an inbox key, if its job has finished.
    pub async fn read_manifest(&self, inbox_key: &str) -> anyhow::Result<Option<Manifest>> {
        self.read_manifest_at(&outbox::manifest_key(inbox_key))
            .await
    }

    /// An outbox manifest by its own key (as a "job finished" event names it).
    pub async fn read_manifest_at(&self, key: &str) -> anyhow::Result<Option<Manifest>> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.outbox)
            .key(key)
            .send()
            .await;
        let Some(object) = found(object, || format!("reading s3://{}/{key}", self.outbox))? else {
            return Ok(None);
        };
        let body = object
            .body
            .collect()
            .await
            .with_context(|| format!("reading s3://{}/{key}", self.outbox))?
            .into_bytes();
        let manifest = serde_json::from_slice(&body)
            .with_context(|| format!("parsing s3://{}/{key}", self.outbox))?;
        Ok(Some(manifest))
    }

    /// Does the inbox key's job have a manifest? (Cheaper than reading it.)
    pub async fn has_manifest(&self, inbox_key: &str) -> anyhow::Result<bool> {
        let key = outbox::manifest_key(inbox_key);
        let head = self
            .s3
            .head_object()
            .bucket(&self.outbox)
            .key(&key)
            .send()
            .await;
        Ok(found(head, || format!("checking s3://{}/{key}", self.outbox))?.is_some())
    }

    /// The manifest of the one upload in folder `prefix` (an API job's
    /// folder, whose file name the caller does not know).
    pub async fn find_manifest(&self, prefix: &str) -> anyhow::Result<Option<Manifest>> {
        let found = self.finished_under(prefix).await?;
        let mut in_folder = found
            .into_iter()
            .filter(|f| outbox::is_manifest_in_folder_of(prefix, &f.manifest_key));
        match in_folder.next() {
            Some(finished) => self.read_manifest_at(&finished.manifest_key).await,
            None => Ok(None),
        }
    }

    /// Finished jobs under `prefix` (keys ending in `/manifest.json`), from
    /// one listing page.
    pub async fn finished_under(&self, prefix: &str) -> anyhow::Result<Vec<Finished>> {
        Ok(self.finished_page(prefix, None).await?.finished)
    }

    /// One listing page (up to 1,000 keys, in key order) under `prefix`:
    /// the finished jobs on it, its last key, and the token of the next.
    pub async fn finished_page(
        &self,
        prefix: &str,
        token: Option<String>,
    ) -> anyhow::Result<FinishedPage> {
        let listing = self
            .s3
            .list_objects_v2()
            .bucket(&self.outbox)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .with_context(|| format!("listing s3://{}/{prefix}", self.outbox))?;
        let finished = listing
            .contents()
            .iter()
            .filter_map(|object| {
                let key = object.key()?;
                key.ends_with(outbox::MANIFEST_SUFFIX).then(|| Finished {
                    manifest_key: key.to_owned(),
                    last_modified: object.last_modified().map_or(0, |t| t.secs()),
                })
            })
            .collect();
        Ok(FinishedPage {
            finished,
            last_key: listing
                .contents()
                .last()
                .and_then(|o| o.key())
                .map(str::to_owned),
            next: listing
                .is_truncated()
                .unwrap_or(false)
                .then(|| listing.next_continuation_token().map(str::to_owned))
                .flatten(),
        })
    }

    /// An outbox object as a byte stream; `None` when there is none.
    pub async fn get_output(&self, key: &str) -> anyhow::Result<Option<ByteStream>> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.outbox)
            .key(key)
            .send()
            .await;
        Ok(found(object, || format!("reading s3://{}/{key}", self.outbox))?.map(|o| o.body))
    }
}

/// One object of an inbox listing.
pub struct Listed {
    pub key: String,
    /// Without quotes.
    pub etag: Option<String>,
    pub size: u64,
}

impl Store {
    /// One listing page (up to 1,000 objects, in key order) of the inbox
    /// under `prefix` after the key `start_after`; `more`: another page follows.
    pub async fn list_inbox(
        &self,
        prefix: &str,
        start_after: Option<String>,
    ) -> anyhow::Result<(Vec<Listed>, bool)> {
        let listing = self
            .s3
            .list_objects_v2()
            .bucket(&self.inbox)
            .prefix(prefix)
            .set_start_after(start_after)
            .send()
            .await
            .with_context(|| format!("listing s3://{}/{prefix}", self.inbox))?;
        let listed = listing
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_owned(),
                    etag: o.e_tag().map(|e| e.trim_matches('"').to_owned()),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                })
            })
            .collect();
        Ok((listed, listing.is_truncated().unwrap_or(false)))
    }

    /// An inbox object's user metadata; `None` once deleted.
    pub async fn source_metadata(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<HashMap<String, String>>> {
        let head = self.head_source(key).await?;
        Ok(head.map(|h| h.metadata.unwrap_or_default()))
    }

    /// `HeadObject` on an inbox key; `None` once deleted.
    async fn head_source(&self, key: &str) -> anyhow::Result<Option<HeadObjectOutput>> {
        let head = self
            .s3
            .head_object()
            .bucket(&self.inbox)
            .key(key)
            .send()
            .await;
        found(head, || format!("checking s3://{}/{key}", self.inbox))
    }
}

fn quoted(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}
