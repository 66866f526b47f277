//! The OpenAPI 3 document, generated from the handlers' annotations and
//! the request and response types, served at `/openapi.json`.

use utoipa::OpenApi;

/// An RFC 9457 problem document, as every error is answered.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    /// `urn:imgflow:problem:<code>`
    r#type: String,
    title: String,
    status: u16,
    detail: String,
    /// Stable error code (see the README's table).
    code: String,
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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "imgflow",
        description = "Event-driven image pipeline: presigned uploads to an S3 inbox, renditions in an S3 outbox."
    ),
    paths(
        super::uploads::create,
        super::jobs::get,
        super::seed::resize,
        super::seed::watermark,
        super::seed::filter,
        super::seed::get_image,
        super::seed::list,
        super::seed::health,
        super::healthz,
        super::ready,
        super::metrics,
    ),
    components(schemas(
        Problem,
        ResizeForm,
        WatermarkForm,
        FilterForm,
        super::seed::SeedAnswer
    ))
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    /// Every `$ref` points at a schema the document defines (a response
    /// type that is only referenced is skipped by schemathesis, untested).
    #[test]
    fn every_reference_resolves() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut stack = vec![&doc];
        let mut refs = 0;
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                        let name = target.strip_prefix("#/components/schemas/").unwrap();
                        assert!(schemas.contains_key(name), "unresolvable {target}");
                        refs += 1;
                    }
                    stack.extend(map.values());
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(
            refs > 10,
            "only {refs} references: is this the real document?"
        );
    }
}
