//! How many upload bytes the old multipart API may hold in memory at once.
//!
//! An old-API upload is read whole (the probe and the S3 PUT need its
//! bytes), so ten parallel 50 MB uploads would hold 500 MB. Each upload
//! first reserves its request's `Content-Length` (the body limit when the
//! client does not say) from this budget, and holds it until its bytes are
//! in the inbox; uploads past the budget wait, unread, in TCP's flow
//! control. The file is read into one buffer of the reserved size, so the
//! reservation is what the upload holds (plus the form's small fields).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::error::ApiError;

/// The budget is counted in KiB: `acquire_many` takes a `u32`.
const UNIT: u64 = 1024;

/// How long an upload waits for room before it is refused with 503.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Budget {
    permits: Arc<Semaphore>,
    /// In units; no reservation asks for more, so one upload always fits.
    total: u32,
    body_limit: u64,
}

/// Room for one upload's bytes, given back when dropped.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    /// Bytes the upload may buffer: its declared length, within the limit.
    pub bytes: usize,
}

impl Budget {
    /// `bytes` for all uploads together; at least one upload of the body
    /// limit, or none could ever be taken.
    pub fn new(bytes: u64, body_limit: usize) -> Budget {
        let body_limit = body_limit as u64;
        let total = bytes.max(body_limit).div_ceil(UNIT);
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        Budget {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            body_limit,
        }
    }

    /// Wait (at most [`WAIT`]) for room for the upload these headers announce.
    pub async fn reserve(&self, headers: &HeaderMap) -> Result<Reservation, ApiError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Longer bodies are refused by the body limit before they are read.
        let bytes = declared.unwrap_or(self.body_limit).min(self.body_limit);
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        let acquire = Arc::clone(&self.permits).acquire_many_owned(units);
        match tokio::time::timeout(WAIT, acquire).await {
            Ok(permit) => Ok(Reservation {
                _permit: permit.expect("the semaphore is never closed"),
                bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
            }),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!(
                    "too many uploads in progress; retry in a few seconds (waited {} s)",
                    WAIT.as_secs()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_length(n: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, n.into());
        headers
    }

    #[tokio::test]
    async fn uploads_past_the_budget_wait_for_room() {
        let budget = Budget::new(100 * 1024, 60 * 1024);
        let first = budget.reserve(&with_length(60 * 1024)).await.unwrap();
        assert_eq!(first.bytes, 60 * 1024);
        // 60 + 60 > 100: the second waits until the first is done.
        let second = tokio::time::timeout(
            Duration::from_millis(50),
            budget.reserve(&with_length(60 * 1024)),
        )
        .await;
        assert!(second.is_err());
        drop(first);
        budget.reserve(&with_length(60 * 1024)).await.unwrap();
    }

    #[tokio::test]
    async fn an_undeclared_length_reserves_the_body_limit_and_one_upload_always_fits() {
        let budget = Budget::new(1, 60 * 1024);
        let reservation = budget.reserve(&HeaderMap::new()).await.unwrap();
        assert_eq!(reservation.bytes, 60 * 1024);
        drop(reservation);
        let huge = budget.reserve(&with_length(u64::MAX)).await.unwrap();
        assert_eq!(huge.bytes, 60 * 1024);
    }
}
