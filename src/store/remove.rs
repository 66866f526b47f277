//! Deleting outbox objects: a removed source's outputs and manifest
//! (`setup --on-delete remove`, see `worker::removal`).

use super::{Store, found};

impl Store {
    /// Delete outbox objects (a removed source's outputs and manifest);
    /// one already gone is not an error.
    pub async fn delete_outputs(&self, keys: &[String]) -> anyhow::Result<()> {
        for key in keys {
            let deleted = self
                .s3
                .delete_object()
                .bucket(&self.outbox)
                .key(key)
                .send()
                .await;
            found(deleted, || format!("deleting s3://{}/{key}", self.outbox))?;
        }
        Ok(())
    }
}
