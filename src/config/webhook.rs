//! Webhook settings: which endpoints hear about finished jobs, the signing
//! secret, and the retry schedule. Only the operator sets these: a URL
//! never comes from an upload (that would let anyone make the worker send
//! requests into its own network).

use std::time::Duration;

use base64::Engine;
use clap::Args;

/// Delays between delivery attempts (the Standard Webhooks reference
/// schedule); after the last, its delay repeats until [`DEFAULT_WEBHOOK_GIVE_UP_SECS`].
pub const DEFAULT_WEBHOOK_RETRY: &str = "5s,5m,30m,2h,5h,10h,10h";
/// Seconds after the first attempt at which a failing delivery is given up
/// (once its next attempt has also failed): 25 hours.
pub const DEFAULT_WEBHOOK_GIVE_UP_SECS: u64 = 25 * 3600;
/// Seconds one attempt (connect, request, answer headers) may take.
pub const DEFAULT_WEBHOOK_TIMEOUT_SECS: u64 = 10;
/// Deliveries a worker has in flight at once.
pub const DEFAULT_WEBHOOK_CONCURRENCY: usize = 16;

/// The endpoints alone: what `imgflow setup` needs to know to create the
/// delivery queue.
#[derive(Args, Debug, Clone, Default)]
pub struct WebhookEndpoints {
    /// Endpoints (http/https) that get a signed POST per finished job; separate with spaces or commas
    #[arg(long = "webhook-url", env = "IMGFLOW_WEBHOOK_URLS", value_delimiter = ' ',
          value_parser = parse_urls)]
    pub urls: Vec<String>,
}

impl WebhookEndpoints {
    /// Every configured URL, commas split.
    pub fn list(&self) -> Vec<String> {
        self.urls
            .iter()
            .flat_map(|u| u.split(','))
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }
}

/// Everything a worker needs to deliver webhooks.
#[derive(Args, Debug, Clone)]
pub struct WebhookConfig {
    #[command(flatten)]
    pub endpoints: WebhookEndpoints,

    /// Signing secret, `whsec_` + base64 of 24 to 64 random bytes (Standard Webhooks)
    #[arg(long, env = "IMGFLOW_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub webhook_secret: Option<WebhookSecret>,

    /// Delays between attempts, e.g. `5s,5m,30m,2h`; the last repeats until the give-up time
    #[arg(long, env = "IMGFLOW_WEBHOOK_RETRY", default_value = DEFAULT_WEBHOOK_RETRY,
          value_parser = parse_schedule)]
    pub webhook_retry: RetrySchedule,

    /// Seconds after the first attempt after which a failing delivery is dropped (at least 24 h in production)
    #[arg(long, env = "IMGFLOW_WEBHOOK_GIVE_UP", default_value_t = DEFAULT_WEBHOOK_GIVE_UP_SECS)]
    pub webhook_give_up_secs: u64,

    /// Seconds one attempt may take before it counts as failed (at most 30)
    #[arg(long, env = "IMGFLOW_WEBHOOK_TIMEOUT", default_value_t = DEFAULT_WEBHOOK_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=30))]
    pub webhook_timeout_secs: u64,

    /// Deliveries in flight at once
    #[arg(long, env = "IMGFLOW_WEBHOOK_CONCURRENCY", default_value_t = DEFAULT_WEBHOOK_CONCURRENCY,
          value_parser = parse_concurrency)]
    pub webhook_concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            endpoints: WebhookEndpoints::default(),
            webhook_secret: None,
            webhook_retry: parse_schedule(DEFAULT_WEBHOOK_RETRY).expect("the default parses"),
            webhook_give_up_secs: DEFAULT_WEBHOOK_GIVE_UP_SECS,
            webhook_timeout_secs: DEFAULT_WEBHOOK_TIMEOUT_SECS,
            webhook_concurrency: DEFAULT_WEBHOOK_CONCURRENCY,
        }
    }
}

impl WebhookConfig {
    /// Endpoints without a secret are refused: an unsigned event could be forged.
    pub fn check(&self) -> Result<(), String> {
        if !self.endpoints.is_empty() && self.webhook_secret.is_none() {
            return Err(
                "IMGFLOW_WEBHOOK_URLS is set but IMGFLOW_WEBHOOK_SECRET is not: \
                 webhooks are always signed (make one with: echo whsec_$(head -c 32 /dev/urandom | base64))"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The decoded signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Delays between attempts; the last one repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    /// The delay after failed attempt number `attempt` (1 = the first).
    pub fn after(&self, attempt: u32) -> Duration {
        let i = (attempt.max(1) - 1) as usize;
        self.0
            .get(i)
            .or(self.0.last())
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err("expected 1 to 256".into()),
    }
}

fn parse_urls(s: &str) -> Result<String, String> {
    for url in s.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "{url:?}: a webhook URL is http:// or https:// with a host"
            ));
        }
    }
    Ok(s.to_owned())
}

pub fn parse_secret(s: &str) -> Result<WebhookSecret, String> {
    let encoded = s
        .trim()
        .strip_prefix("whsec_")
        .ok_or("a webhook secret starts with whsec_ (Standard Webhooks)")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("the part after whsec_ is not base64: {e}"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "the key is {} bytes; use 24 to 64 random bytes",
            key.len()
        ));
    }
    Ok(WebhookSecret(key))
}

/// `5s,5m,30m,2h`: numbers with a unit (s, m, h; bare numbers are seconds).
pub fn parse_schedule(s: &str) -> Result<RetrySchedule, String> {
    let mut delays = vec![];
    for step in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (number, unit) = match step.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => step.split_at(i),
            None => (step, "s"),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{step:?}: expected a number and s, m or h"))?;
        let seconds = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => return Err(format!("{step:?}: the unit is s, m or h")),
        };
        if !(1..=86_400).contains(&seconds) {
            return Err(format!("{step:?}: each delay is 1 s to 24 h"));
        }
        delays.push(Duration::from_secs(seconds));
    }
    if delays.is_empty() {
        return Err("at least one delay".into());
    }
    Ok(RetrySchedule(delays))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_retries_for_more_than_a_day() {
        let schedule = parse_schedule(DEFAULT_WEBHOOK_RETRY).unwrap();
        let total: Duration = schedule.0.iter().sum();
        assert!(total > Duration::from_secs(24 * 3600), "{total:?}");
        assert_eq!(schedule.after(1), Duration::from_secs(5));
        assert_eq!(schedule.after(99), Duration::from_secs(36_000));
    }

    #[test]
    fn secrets_and_urls_are_checked() {
        assert!(parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(parse_secret("whsec_c2hvcnQ=").is_err());
        assert!(parse_urls("https://a.example/x,http://b.example").is_ok());
        assert!(parse_urls("file:///etc/passwd").is_err());
        assert!(parse_schedule("1s,2m,3h,4").is_ok());
        assert!(parse_schedule("1d").is_err());
        let endpoints = WebhookEndpoints {
            urls: vec!["http://a/x,http://b/y".into(), "http://c".into()],
        };
        assert_eq!(endpoints.list().len(), 3);
    }
}
