//! API keys: `Authorization: Bearer <key>`, checked against the SHA-256s in
//! the configuration with a constant-time comparison. Health checks and the
//! console page stay open.
//!
//! A job-scoped token (`jt1.…`, in the header or as `?token=`, since
//! `EventSource` cannot send headers) opens that one job's status and events.
//! A token that is presented is always checked, keys or not: the wrong job's
//! token is a 403 even on an open loopback API.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::token::{self, TokenError};
use super::{ApiError, AppState};

/// Routes anyone may call: probes and scrapers must work without a key
/// (metrics hold counts by route template, no keys, URLs or object names).
const OPEN: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/images/health",
    "/openapi.json",
    "/",
];

pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let keys = &state.config.api_key_hashes;
    if OPEN.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let job_token = bearer
        .filter(|t| t.starts_with(token::PREFIX))
        .or_else(|| query_token(request.uri().query()));
    if let Some(presented) = job_token {
        let verdict = match job_route(request.uri().path()) {
            Some(job) => state.tokens.verify(presented, job),
            None => Err(TokenError::OtherJob),
        };
        return match verdict {
            Ok(()) => next.run(request).await,
            Err(why) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{why}: a job token reads only its own job's status and events"),
            )
            .into_response(),
        };
    }
    if keys.is_empty() {
        return next.run(request).await;
    }
    let presented = bearer.map(|key| Sha256::digest(key.as_bytes()));
    let accepted = presented.is_some_and(|hash| {
        // Compare with every key, so the time taken does not say which matched.
        keys.iter()
            .fold(subtle::Choice::from(0), |any, k| {
                any | k.0.ct_eq(hash.as_slice())
            })
            .into()
    });
    if accepted {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send a valid API key as `Authorization: Bearer <key>`",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The job of `/v1/jobs/{id}` and `/v1/jobs/{id}/events`, the routes a
/// job token opens.
fn job_route(path: &str) -> Option<uuid::Uuid> {
    let rest = path.strip_prefix("/v1/jobs/")?;
    let id = rest.strip_suffix("/events").unwrap_or(rest);
    uuid::Uuid::parse_str(id).ok()
}

/// `token=jt1.…` in a query string (tokens need no percent-decoding: they
/// are ASCII letters, digits, `-` and `.`).
fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| t.starts_with(token::PREFIX))
}

/// The token of `Bearer <token>`. The scheme is case-insensitive (RFC 9110
/// section 11.1), so `bearer` and `BEARER` are accepted too.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, job_route, query_token};

    #[test]
    fn job_tokens_open_a_job_and_its_events_only() {
        let id = "0b6f1c1e-8a52-4a39-9a0e-3f1c3c2d0a11";
        assert!(job_route(&format!("/v1/jobs/{id}")).is_some());
        assert!(job_route(&format!("/v1/jobs/{id}/events")).is_some());
        assert!(job_route("/v1/uploads").is_none());
        assert!(job_route(&format!("/v1/jobs/{id}/other")).is_none());
        assert_eq!(query_token(Some("wait=5&token=jt1.x")), Some("jt1.x"));
        assert_eq!(query_token(Some("token=key")), None);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
