//! One error type for every handler, answered as `{"error": {code, message}}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is wrong; the client can fix it.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    BodyTooLarge(String),
    #[error("{0}")]
    NotFound(String),
    /// Something on our side (S3 unreachable, ...); logged with its cause chain.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge(rejection.body_text())
        } else {
            ApiError::bad_request("invalid_request", rejection.body_text())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, *code, message.clone())
            }
            ApiError::BodyTooLarge(message) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                message.clone(),
            ),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, "not_found", message.clone()),
            ApiError::Internal(cause) => {
                error!(message = "Request failed", error = format!("{cause:#}"));
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable; try again".to_owned(),
                )
            }
        };
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        (status, Json(body)).into_response()
    }
}
