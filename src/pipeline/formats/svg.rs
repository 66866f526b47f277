//! SVG through `usvg` (parse) and `resvg` (rasterise), never reaching
//! outside the upload: no file or network access at all (every `<image>`
//! `href`, data URLs included, resolves to nothing), no scripts (resvg
//! runs none), no DTD (so no entities and no billion laughs), a bounded
//! number of XML nodes and of nodes once `<use>` references are expanded,
//! a bounded nesting depth. Text is not rendered: the crate's text
//! feature (and its font loading) is left out, since the sandbox child
//! cannot open font files.
//!
//! The size in the header (`width`/`height`, else the `viewBox`) is the
//! source size the limits apply to; the picture is rasterised at the size
//! the outputs need ([`raster_size`]), so a vector is never scaled as pixels.

use std::collections::HashMap;

use image::{DynamicImage, RgbaImage};
use resvg::{tiny_skia, usvg};
use usvg::roxmltree;

use super::super::{Limits, PipelineError, check_limits, ops};
use crate::recipe::{Op, Recipe};

/// Most XML nodes an SVG may have.
pub const MAX_SVG_NODES: u32 = 50_000;
/// Most nodes once every `<use>` and `url(#...)` reference is expanded.
pub const MAX_SVG_EXPANDED_NODES: u64 = 200_000;
/// Deepest nesting of elements (and of references followed).
pub const MAX_SVG_DEPTH: usize = 256;

/// Text (UTF-8, optional BOM) with an `<svg` element near the start,
/// which begins with it or with an XML declaration, comment or DOCTYPE.
pub(super) fn is_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut at 4096 bytes.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    let text = text.trim_start();
    ["<?xml", "<svg", "<!--", "<!DOCTYPE"]
        .iter()
        .any(|start| text.starts_with(start))
        && text.contains("<svg")
}

fn limit(what: impl Into<String>) -> PipelineError {
    PipelineError::DecodeLimit(what.into())
}

/// Parse with every bound applied.
fn parse(bytes: &[u8]) -> Result<usvg::Tree, PipelineError> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes))
        .map_err(|e| PipelineError::Corrupt(format!("SVG is not UTF-8: {e}")))?;
    let xml = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_SVG_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, xml).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => limit(format!("SVG has over {MAX_SVG_NODES} nodes")),
        roxmltree::Error::DtdDetected => limit("SVG has a DTD (entities are refused)"),
        e => PipelineError::Corrupt(format!("SVG: {e}")),
    })?;
    check_expansion(&doc)?;
    let options = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    usvg::Tree::from_xmltree(&doc, &options)
        .map_err(|e| PipelineError::Corrupt(format!("SVG: {e}")))
}

/// The `#id` an attribute value points at: `#id`, or `url(#id)` within it.
fn reference(value: &str) -> Option<&str> {
    if let Some(id) = value.strip_prefix('#') {
        return Some(id.trim());
    }
    let start = value.find("url(")? + 4;
    let rest = value[start..].trim_start().trim_start_matches(['"', '\'']);
    let id = rest.strip_prefix('#')?;
    Some(id.split([')', '"', '\'']).next().unwrap_or("").trim())
}

/// Refuse documents whose references would multiply into too many nodes
/// (`<use>` of a group of `<use>`s of ..., the SVG billion laughs), or
/// that nest too deeply for the parser's recursion.
fn check_expansion(doc: &roxmltree::Document<'_>) -> Result<(), PipelineError> {
    let mut depth = vec![0usize; doc.descendants().count() + 1];
    let mut ids = HashMap::new();
    for node in doc.descendants() {
        let d = node
            .parent()
            .map_or(0, |p| depth[p.id().get() as usize] + 1);
        if d > MAX_SVG_DEPTH {
            return Err(limit(format!("SVG nests deeper than {MAX_SVG_DEPTH}")));
        }
        depth[node.id().get() as usize] = d;
        if let Some(id) = node.attribute("id") {
            ids.insert(id, node.id());
        }
    }
    let mut memo = HashMap::new();
    let total = weight(doc, doc.root(), &ids, &mut memo, 0)?;
    if total > MAX_SVG_EXPANDED_NODES {
        return Err(limit(format!(
            "SVG expands to over {MAX_SVG_EXPANDED_NODES} nodes through its references"
        )));
    }
    Ok(())
}

/// Nodes under `node` once references are followed (a reference back
/// into its own chain counts nothing: usvg skips it too).
fn weight<'a>(
    doc: &'a roxmltree::Document<'a>,
    node: roxmltree::Node<'a, 'a>,
    ids: &HashMap<&'a str, roxmltree::NodeId>,
    memo: &mut HashMap<roxmltree::NodeId, Option<u64>>,
    level: usize,
) -> Result<u64, PipelineError> {
    if level > 4 * MAX_SVG_DEPTH {
        return Err(limit("SVG references nest too deeply"));
    }
    match memo.get(&node.id()) {
        Some(Some(w)) => return Ok(*w),
        Some(None) => return Ok(0),
        None => {}
    }
    memo.insert(node.id(), None);
    let mut total = 1u64;
    for child in node.children() {
        total = total.saturating_add(weight(doc, child, ids, memo, level + 1)?);
    }
    for attribute in node.attributes() {
        let target = reference(attribute.value()).and_then(|id| ids.get(id));
        if let Some(target) = target.and_then(|t| doc.get_node(*t)) {
            total = total.saturating_add(weight(doc, target, ids, memo, level + 1)?);
        }
    }
    // Stop adding once past the bound: the answer is already "too many".
    let total = total.min(MAX_SVG_EXPANDED_NODES + 1);
    memo.insert(node.id(), Some(total));
    Ok(total)
}

/// The size the document declares, in whole pixels, checked against the limits.
pub(super) fn probe(bytes: &[u8], limits: &Limits) -> Result<(u32, u32), PipelineError> {
    let size = parse(bytes)?.size();
    let side = |v: f32| v.ceil().clamp(1.0, u32::MAX as f32) as u32;
    let (w, h) = (side(size.width()), side(size.height()));
    check_limits(w, h, limits)?;
    Ok((w, h))
}

/// The size to rasterise a `full`-sized document at for `recipe`: the
/// largest size any output's first resize asks for (up or down), when
/// every output starts with a resize; the declared size otherwise (crops
/// and other steps count in the document's pixels). Kept within `limits`.
pub fn raster_size(full: (u32, u32), recipe: &Recipe, limits: &Limits) -> (u32, u32) {
    let mut scale = 0f64;
    for output in &recipe.outputs {
        let Some(Op::Resize(resize)) = output.ops.first() else {
            return full;
        };
        let (tw, th) = ops::target_size(full, resize);
        let s = (f64::from(tw) / f64::from(full.0)).max(f64::from(th) / f64::from(full.1));
        scale = scale.max(s);
    }
    if scale <= 0.0 {
        return full;
    }
    let size = |side: u32, scale: f64| ((f64::from(side) * scale).round() as u32).max(1);
    let (mut w, mut h) = (size(full.0, scale), size(full.1, scale));
    if check_limits(w, h, limits).is_err() {
        (w, h) = full;
    }
    (w, h)
}

/// Rasterise at `size` (see [`raster_size`]): RGBA, straight alpha, sRGB.
pub(super) fn decode(bytes: &[u8], size: (u32, u32)) -> Result<DynamicImage, PipelineError> {
    let tree = parse(bytes)?;
    let (w, h) = size;
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| PipelineError::Corrupt(format!("cannot rasterise at {w}x{h}")))?;
    let declared = tree.size();
    let transform =
        tiny_skia::Transform::from_scale(w as f32 / declared.width(), h as f32 / declared.height());
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    RgbaImage::from_raw(w, h, pixmap.take_demultiplied())
        .map(DynamicImage::ImageRgba8)
        .ok_or_else(|| PipelineError::Corrupt("short SVG raster".into()))
}
