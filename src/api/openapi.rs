//! The OpenAPI 3 document, generated from the handlers' annotations and
//! the request and response types, served at `/openapi.json`.
//!
//! This module depends on the handlers and nothing depends on it: the
//! types it lists are the ones the handlers serve.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "imgflow",
        description = "Event-driven image pipeline: presigned uploads to an S3 inbox, renditions in an S3 outbox."
    ),
    paths(
        super::uploads::create,
        super::jobs::get,
        super::events::events,
        super::console::page,
        super::legacy::resize,
        super::legacy::watermark,
        super::legacy::filter,
        super::legacy::images::get_image,
        super::legacy::images::list,
        super::legacy::images::health,
        super::healthz,
        super::ready,
        super::metrics,
    ),
    components(schemas(
        super::error::Problem,
        super::legacy::ResizeForm,
        super::legacy::WatermarkForm,
        super::legacy::FilterForm,
        super::legacy::LegacyAnswer
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
