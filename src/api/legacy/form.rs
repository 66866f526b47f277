//! The old API's multipart forms: reading them within the limits, and
//! their shapes for the OpenAPI document.

use std::collections::HashMap;

use axum::extract::Multipart;
use axum::http::StatusCode;

use crate::api::error::ApiError;
use crate::recipe::MAX_DIMENSION;

/// The form: the file and the few text fields the old service took.
pub struct Form {
    pub file: Vec<u8>,
    pub filename: String,
    pub fields: HashMap<String, String>,
}

/// Read the form; the file into one buffer of `capacity` bytes (the
/// request's reserved length), so it never reallocates and copies.
pub async fn read_form(
    mut multipart: Multipart,
    max_bytes: u64,
    capacity: usize,
) -> Result<Form, ApiError> {
    let bad = |detail: String| ApiError::bad_request("invalid_request", detail);
    let failed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                e.body_text(),
            )
        } else {
            ApiError::bad_request("invalid_request", e.body_text())
        }
    };
    let mut file = None;
    let mut fields = HashMap::new();
    while let Some(mut field) = multipart.next_field().await.map_err(failed)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().unwrap_or("upload").to_owned();
            let mut bytes = Vec::with_capacity(capacity);
            while let Some(chunk) = field.chunk().await.map_err(failed)? {
                if (bytes.len() + chunk.len()) as u64 > max_bytes || file.is_some() {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "image_too_large",
                        format!("the file is over {max_bytes} bytes, or sent twice"),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            file = Some((bytes, filename));
        } else {
            let text = field.text().await.map_err(failed)?;
            if text.len() > 1024 || fields.len() >= 16 {
                return Err(bad("form fields are limited to 16 of 1 KiB each".into()));
            }
            fields.insert(name, text);
        }
    }
    let (file, filename) = file.ok_or_else(|| bad("the form has no `file` part".into()))?;
    if file.is_empty() {
        return Err(bad("the `file` part is empty".into()));
    }
    Ok(Form {
        file,
        filename,
        fields,
    })
}

/// An optional width or height field: 1 to the recipe's largest dimension.
pub fn dimension(fields: &HashMap<String, String>, name: &str) -> Result<Option<u32>, ApiError> {
    match fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_DIMENSION).contains(n))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("`{name}` must be 1 to {MAX_DIMENSION} pixels, not {v:?}"),
                )
            }),
    }
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ResizeForm {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct WatermarkForm {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Default "© imgflow".
    text: Option<String>,
    /// top-left, top-right, bottom-left, bottom-right or center.
    position: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FilterForm {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// grayscale, sepia, blur or sharpen.
    filter: Option<String>,
}
