//! The delivery loop: receive queued deliveries, POST them with bounded
//! concurrency, and settle each one: delete on 2xx, re-queue with a delay
//! on failure, give up (log + metric) once the give-up time has passed.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::queue::{MAX_DELAY_SECS, send_delayed};
use super::{Pending, Webhooks, now_secs, sign};
use crate::telemetry::metric;

/// Bytes of a failed answer's body kept for the log; the rest is never read.
const BODY_SNIPPET: usize = 256;

impl Webhooks {
    /// Deliver until `shutdown` fires; deliveries in flight then finish
    /// (each within the attempt timeout). Runs in every worker process.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let http = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(self.config.webhook_timeout_secs))
            .connect_timeout(Duration::from_secs(self.config.webhook_timeout_secs))
            .user_agent(concat!("imgflow/", env!("CARGO_PKG_VERSION"), " webhooks"))
            .build()
        {
            Ok(http) => http,
            Err(err) => {
                error!(message = "Cannot build the webhook HTTP client; no webhooks will be sent", %err);
                return;
            }
        };
        let mut backoff = Duration::from_millis(500);
        let url = loop {
            match self.queue.url().await {
                Ok(url) => break url,
                Err(err) => {
                    warn!(message = "Cannot reach the webhook queue yet; retrying", queue = self.queue.name(), error = ?format!("{err:#}"));
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        };
        info!(queue = %url, endpoints = self.urls.len(), "webhook delivery started");
        let permits = Arc::new(Semaphore::new(self.config.webhook_concurrency));
        let mut tasks = JoinSet::new();
        let mut backoff = Duration::from_millis(500);
        loop {
            while tasks.try_join_next().is_some() {}
            // Receive no more than there are free slots for.
            let first = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
                _ = shutdown.cancelled() => break,
            };
            let mut held = vec![first];
            while held.len() < 10 {
                match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => held.push(permit),
                    Err(_) => break,
                }
            }
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(held.len() as i32)
                .wait_time_seconds(self.poll_wait_secs)
                .send();
            tokio::pin!(receive);
            let received = tokio::select! {
                received = &mut receive => received,
                _ = shutdown.cancelled() => {
                    // A dropped long poll would keep what it takes hidden
                    // for the visibility timeout: let it end, hand it back.
                    if let Ok(out) = receive.await {
                        self.hand_back(&url, out.messages.unwrap_or_default()).await;
                    }
                    break;
                }
            };
            match received {
                Ok(out) => {
                    backoff = Duration::from_millis(500);
                    for message in out.messages.unwrap_or_default() {
                        let permit = held.pop().expect("no more messages than permits");
                        let (hooks, http, url) = (Arc::clone(&self), http.clone(), url.clone());
                        tasks.spawn(async move {
                            hooks.settle(&http, &url, message).await;
                            drop(permit);
                        });
                    }
                }
                Err(err) => {
                    metric::queue_error("webhook_receive");
                    warn!(message = "Receiving webhook deliveries failed; retrying", error = ?format!("{err:#}"), ?backoff);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        info!("webhook delivery stopped");
    }

    /// One queued delivery: attempt it if due, then delete or re-queue it.
    async fn settle(&self, http: &reqwest::Client, queue_url: &str, message: Message) {
        let receipt = message.receipt_handle.clone().unwrap_or_default();
        let pending: Pending = match serde_json::from_str(message.body().unwrap_or_default()) {
            Ok(pending) => pending,
            Err(err) => {
                warn!(message = "Dropping a webhook queue message that is not a delivery", %err);
                metric::webhook_delivery("dropped");
                return self.delete(queue_url, &receipt).await;
            }
        };
        if !self.urls.contains(&pending.url) {
            warn!(message = "Dropping a delivery to an endpoint no longer configured", url = %pending.url, id = %pending.id);
            metric::webhook_delivery("dropped");
            return self.delete(queue_url, &receipt).await;
        }
        let now = now_secs();
        if pending.next_at > now {
            // Not due yet: wait another hop of at most 15 minutes.
            let wait = pending.next_at - now;
            return self.requeue(queue_url, &receipt, &pending, wait).await;
        }
        let mut pending = pending;
        let result = self.attempt(http, &pending).await;
        pending.attempts += 1;
        match result {
            Ok(status) => {
                metric::webhook_attempt("ok");
                metric::webhook_delivery("delivered");
                info!(url = %pending.url, id = %pending.id, attempts = pending.attempts, status, "webhook delivered");
                self.delete(queue_url, &receipt).await;
            }
            Err((result, why)) => {
                metric::webhook_attempt(result);
                let now = now_secs();
                if now >= pending.first_at + self.config.webhook_give_up_secs {
                    error!(
                        message = "Giving up on a webhook delivery",
                        url = %pending.url,
                        id = %pending.id,
                        attempts = pending.attempts,
                        first_attempt_secs_ago = now - pending.first_at,
                        last_error = %why,
                        body = %pending.body,
                    );
                    metric::webhook_delivery("gave_up");
                    return self.delete(queue_url, &receipt).await;
                }
                let delay = self.config.webhook_retry.after(pending.attempts);
                // ±20 % jitter: endpoints coming back are not hit by every worker at once.
                let delay = delay.mul_f64(0.8 + 0.4 * fastrand::f64()).as_secs().max(1);
                pending.next_at = now + delay;
                warn!(
                    message = "Webhook attempt failed; will retry",
                    url = %pending.url,
                    id = %pending.id,
                    attempts = pending.attempts,
                    retry_in_secs = delay,
                    error = %why,
                );
                self.requeue(queue_url, &receipt, &pending, delay).await;
            }
        }
    }

    /// POST the delivery once: `Ok(status)` on 2xx, else the metric's
    /// result label and why.
    async fn attempt(
        &self,
        http: &reqwest::Client,
        pending: &Pending,
    ) -> Result<u16, (&'static str, String)> {
        let timestamp = now_secs();
        let signature = sign(&self.secret.0, &pending.id, timestamp, &pending.body);
        let sent = http
            .post(&pending.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &pending.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(pending.body.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) if err.is_timeout() => return Err(("timeout", format!("{err}"))),
            Err(err) => return Err(("error", format!("{err:#}"))),
        };
        let status = response.status();
        if status.is_success() {
            // The answer's body is never read.
            return Ok(status.as_u16());
        }
        let mut snippet = Vec::new();
        while snippet.len() < BODY_SNIPPET {
            match response.chunk().await {
                Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
                _ => break,
            }
        }
        snippet.truncate(BODY_SNIPPET);
        Err((
            "status",
            format!("{status}: {}", String::from_utf8_lossy(&snippet)),
        ))
    }

    /// Send the delivery again, due in `delay` seconds, then delete this
    /// copy. Should the send fail, this copy stays and comes back after
    /// the queue's visibility timeout.
    async fn requeue(&self, queue_url: &str, receipt: &str, pending: &Pending, delay: u64) {
        let body = match serde_json::to_string(pending) {
            Ok(body) => body,
            Err(err) => return warn!(%err, "serialising a delivery"),
        };
        let hop = delay.min(MAX_DELAY_SECS);
        match send_delayed(&self.sqs, queue_url, body, hop).await {
            Ok(()) => {
                debug!(id = %pending.id, hop, "webhook delivery re-queued");
                self.delete(queue_url, receipt).await;
            }
            Err(err) => {
                metric::queue_error("webhook_send");
                warn!(message = "Re-queueing a webhook delivery failed; it comes back after the visibility timeout", error = ?format!("{err:#}"));
            }
        }
    }

    async fn hand_back(&self, queue_url: &str, messages: Vec<Message>) {
        for message in messages {
            let receipt = message.receipt_handle.unwrap_or_default();
            let _ = self
                .sqs
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }

    async fn delete(&self, queue_url: &str, receipt: &str) {
        if let Err(err) = self
            .sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            // The delivery will be seen again: a duplicate with the same id.
            metric::queue_error("webhook_delete");
            warn!(message = "Deleting a webhook delivery failed", error = ?format!("{err:#}"));
        }
    }
}
