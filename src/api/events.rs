//! `GET /v1/jobs/{job_id}/events`: Server-Sent Events until the job ends.
//!
//! ```text
//! event: pending            (at once, unless the job is already finished)
//! : keep-alive              (every 15 s)
//! event: done | failed      (the job, as GET /v1/jobs/{id} shows it; then the stream ends)
//! ```
//!
//! A stream lasts at most [`MAX_STREAM`]; `EventSource` then reconnects by
//! itself (after the `retry` we send), so a connection never lives forever.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiQuery, Problem};
use super::jobs::{self, TokenQuery};
use super::watch::{Seen, Target};

/// Longest life of one event stream.
pub const MAX_STREAM: Duration = Duration::from_secs(55);
/// What `EventSource` waits before reconnecting, in milliseconds.
const RETRY: Duration = Duration::from_millis(1000);

/// A job's status as Server-Sent Events: `pending`, then `done` or `failed`
/// with the same JSON as `GET /v1/jobs/{job_id}`.
#[utoipa::path(get, path = "/v1/jobs/{job_id}/events",
    params(("job_id" = String, Path, description = "The job id from POST /v1/uploads"), TokenQuery),
    responses(
        (status = 200, description = "`text/event-stream`: `pending`, then `done` or `failed` (data: the job as JSON)", body = String, content_type = "text/event-stream"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    Path(job_id): Path<String>,
    ApiQuery(_token): ApiQuery<TokenQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job_id = jobs::parse_id(&job_id)?;
    let seen = state.watcher.subscribe(Target::Job(job_id), false);
    let deadline = Instant::now() + MAX_STREAM;
    let start = Follow {
        state,
        job_id,
        seen,
        deadline,
        sent_pending: false,
        over: false,
    };
    let events = stream::unfold(start, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One client's place in a job's events.
struct Follow {
    state: Arc<AppState>,
    job_id: Uuid,
    seen: watch::Receiver<Seen>,
    deadline: Instant,
    sent_pending: bool,
    over: bool,
}

impl Follow {
    /// The next event to send, or `None` to end the stream.
    async fn next(&mut self) -> Option<Event> {
        if self.over {
            return None;
        }
        loop {
            let now = self.seen.borrow_and_update().clone();
            match now {
                Seen::Finished(manifest) => {
                    self.over = true;
                    let view = jobs::view(&self.state, self.job_id, &manifest).await;
                    return Some(match view {
                        Ok(view) => Event::default()
                            .event(view.status)
                            .json_data(&view)
                            .unwrap_or_default(),
                        Err(error) => {
                            tracing::warn!(
                                error = format!("{error:#}"),
                                "presigning a job's outputs"
                            );
                            Event::default()
                                .event("unavailable")
                                .data("storage is unavailable; reconnect")
                        }
                    });
                }
                Seen::Pending if !self.sent_pending => {
                    self.sent_pending = true;
                    let pending = jobs::JobView::pending(self.job_id);
                    return Some(
                        Event::default()
                            .event("pending")
                            .retry(RETRY)
                            .json_data(&pending)
                            .unwrap_or_default(),
                    );
                }
                Seen::Unknown | Seen::Unavailable(_) | Seen::Pending => {}
            }
            match tokio::time::timeout_at(self.deadline, self.seen.changed()).await {
                Ok(Ok(())) => continue,
                // The deadline, or the watcher is gone: end; the client reconnects.
                _ => return None,
            }
        }
    }
}
