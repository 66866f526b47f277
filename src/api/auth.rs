//! API keys: `Authorization: Bearer <key>`, checked against the SHA-256s in
//! the configuration with a constant-time comparison. Health checks stay open.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// Routes anyone may call: probes and scrapers must work without a key
/// (metrics hold counts by route template, no keys, URLs or object names).
const OPEN: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/images/health",
    "/openapi.json",
];

pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let keys = &state.config.api_key_hashes;
    if keys.is_empty() || OPEN.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(|key| Sha256::digest(key.as_bytes()));
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
    use super::bearer_token;

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
