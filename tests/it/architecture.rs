//! The invariants of ARCHITECTURE.md that a text scan can check.

use std::path::Path;

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// Lines of code, without comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
}

#[test]
fn the_pipeline_and_recipes_do_no_io() {
    let forbidden = [
        "tokio",
        "aws_",
        "axum",
        "reqwest",
        "std::fs",
        "std::net",
        "File::",
        // Spans via the `tracing` facade only: exporting and metrics are the caller's.
        "opentelemetry",
        "metrics::",
    ];
    for dir in ["src/pipeline", "src/recipe"] {
        for (path, text) in sources(dir) {
            for line in code_lines(&text) {
                for word in forbidden {
                    assert!(!line.contains(word), "{path} uses {word}: {line}");
                }
            }
        }
    }
}

#[test]
fn only_the_aws_module_builds_sdk_clients() {
    for (path, text) in sources("src") {
        if path.ends_with("src/aws.rs") {
            continue;
        }
        for line in code_lines(&text) {
            for word in [
                "aws_sdk_s3::Client::",
                "aws_sdk_sqs::Client::",
                "aws_config::defaults",
                "aws_config::load",
            ] {
                assert!(!line.contains(word), "{path} builds a client: {line}");
            }
        }
    }
}

/// The module a source file is, as a path: `src/api/legacy/mod.rs` is
/// `["api", "legacy"]`, `src/lib.rs` is `[]`.
fn module_of(path: &str) -> Vec<String> {
    let rel = path.split("/src/").last().unwrap().trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Code without comments (line comments, doc comments and block comments)
/// and without string literals' contents, so paths in prose are not edges.
fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_str, mut in_block) = (false, 0);
    while let Some(c) = chars.next() {
        if in_block > 0 {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                in_block -= 1;
            }
            continue;
        }
        if in_str {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_str = false;
                out.push('"');
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                in_block += 1;
            }
            '"' => {
                in_str = true;
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every path a file names: each `use` tree expanded (`use a::{b, c::d}`
/// is `a::b` and `a::c::d`), plus inline `crate::…` and `super::…` paths.
fn named_paths(code: &str) -> Vec<String> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        let Some(open) = tree.find('{') else {
            let path = tree.split(" as ").next().unwrap().trim();
            out.push(format!("{prefix}{path}"));
            return;
        };
        let head = &tree[..open];
        let body = &tree[open + 1..tree.rfind('}').unwrap()];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&format!("{prefix}{head}"), &body[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&format!("{prefix}{head}"), &body[start..], out);
    }
    let mut paths = Vec::new();
    // The code outside `use` statements, for the inline paths.
    let mut inline = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        if boundary {
            let tree = rest[at + 4..end].split_whitespace().collect::<Vec<_>>();
            expand("", &tree.join(" ").replace(":: ", "::"), &mut paths);
            inline.push_str(&rest[..at]);
            rest = &rest[end..];
        } else {
            inline.push_str(&rest[..at + 4]);
            rest = &rest[at + 4..];
        }
    }
    inline.push_str(rest);
    for word in inline.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        let word = word.trim_end_matches(':');
        if (word.starts_with("crate::") || word.starts_with("super::")) && word.len() > 7 {
            paths.push(word.to_owned());
        }
    }
    paths
}

/// Which module of `modules` a path in module `from` names: its longest
/// known prefix, after resolving `crate`, `super` and `self`.
fn resolve(from: &[String], path: &str, modules: &[Vec<String>]) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty());
    let mut base: Vec<String> = match segments.next()? {
        "crate" => vec![],
        "self" => from.to_vec(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None, // an external crate, or a path relative to this module
    };
    let mut rest: Vec<&str> = segments.collect();
    while rest.first() == Some(&"super") {
        base.pop();
        rest.remove(0);
    }
    let mut best = base.clone();
    for segment in rest {
        base.push(segment.to_owned());
        if modules.contains(&base) {
            best = base.clone();
        }
    }
    Some(best)
}

/// The import graph of `src/`, file by file: (module, modules it names).
fn import_graph() -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let files: Vec<_> = sources("src")
        .into_iter()
        .filter(|(path, _)| !path.ends_with("src/main.rs"))
        .collect();
    let modules: Vec<Vec<String>> = files.iter().map(|(p, _)| module_of(p)).collect();
    files
        .iter()
        .map(|(path, text)| {
            let from = module_of(path);
            let mut to: Vec<Vec<String>> = named_paths(&strip(text))
                .iter()
                .filter_map(|p| resolve(&from, p, &modules))
                .filter(|m| *m != from && !m.is_empty())
                .collect();
            to.sort();
            to.dedup();
            (from, to)
        })
        .collect()
}

fn cycle(edges: &[(String, String)]) -> Option<Vec<String>> {
    use std::collections::BTreeMap;
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    // Depth-first search; 1 = on the stack, 2 = done.
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(1) => {
                let start = stack.iter().position(|n| *n == node).unwrap();
                let mut found: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                found.push(node.to_owned());
                return Some(found);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(node, 1);
        stack.push(node);
        for n in next.get(node).into_iter().flatten() {
            if let Some(found) = visit(n, next, state, stack) {
                return Some(found);
            }
        }
        stack.pop();
        state.insert(node, 2);
        None
    }
    let mut state = BTreeMap::new();
    let nodes: Vec<&str> = next.keys().copied().collect();
    nodes
        .into_iter()
        .find_map(|n| visit(n, &next, &mut state, &mut Vec::new()))
}

#[test]
fn the_import_graph_has_no_cycles_between_files_or_between_top_level_modules() {
    let graph = import_graph();
    assert!(graph.len() > 30, "only {} modules found", graph.len());
    let files: Vec<(String, String)> = graph
        .iter()
        .flat_map(|(from, to)| to.iter().map(move |t| (from.join("::"), t.join("::"))))
        .collect();
    assert!(
        files
            .iter()
            .any(|(a, b)| a == "worker::job" && b == "store")
    );
    assert_eq!(cycle(&files), None, "an import cycle between files");
    let top: Vec<(String, String)> = graph
        .iter()
        .filter(|(from, _)| !from.is_empty())
        .flat_map(|(from, to)| to.iter().map(move |t| (from[0].clone(), t[0].clone())))
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        cycle(&top),
        None,
        "an import cycle between top-level modules"
    );
}

#[test]
fn only_app_imports_the_api_and_the_worker_and_config_imports_only_pure_modules() {
    for (from, to) in import_graph() {
        let top = from.first().map(String::as_str).unwrap_or("lib");
        for target in &to {
            let target = target[0].as_str();
            if matches!(target, "api" | "worker") && top != target {
                assert_eq!(top, "app", "{} imports {target}", from.join("::"));
            }
            // config's own submodules (config::browser) are config too.
            if top == "config" {
                assert!(
                    matches!(target, "pipeline" | "recipe" | "config"),
                    "config imports {target}"
                );
            }
        }
        // The OpenAPI document depends on the handlers; nothing depends on it.
        assert!(
            !to.contains(&vec!["api".to_owned(), "openapi".to_owned()]),
            "{} imports api::openapi",
            from.join("::")
        );
    }
}

#[test]
fn main_is_glue_and_no_source_file_is_a_maze() {
    for (path, text) in sources("src") {
        let lines = text.lines().count();
        let limit = if path.ends_with("src/main.rs") {
            250
        } else {
            450
        };
        if !path.ends_with("tests.rs") {
            assert!(lines <= limit, "{path}: {lines} lines (at most {limit})");
        }
    }
}

#[test]
fn the_import_parser_reads_use_trees_and_inline_paths() {
    let paths = named_paths(&strip(
        "use crate::{a::{b, c as d}, e};\n// use crate::comment;\nlet x = super::f::g(\"crate::nope\");",
    ));
    assert_eq!(
        paths,
        ["crate::a::b", "crate::a::c", "crate::e", "super::f::g"]
    );
    let modules = vec![
        vec!["api".to_owned()],
        vec!["api".to_owned(), "jobs".to_owned()],
    ];
    let from = vec!["api".to_owned(), "legacy".to_owned()];
    assert_eq!(
        resolve(&from, "super::jobs::get", &modules),
        Some(vec!["api".to_owned(), "jobs".to_owned()])
    );
    assert_eq!(
        resolve(&from, "super::AppState", &modules),
        Some(vec!["api".to_owned()])
    );
    assert_eq!(resolve(&from, "std::sync::Arc", &modules), None);
}

#[test]
fn only_the_store_calls_s3_object_operations() {
    for (path, text) in sources("src") {
        if path.ends_with("src/store.rs") || path.contains("src/store/") {
            continue;
        }
        for line in code_lines(&text) {
            for call in [
                ".put_object()",
                ".get_object()",
                ".head_object()",
                ".list_objects_v2()",
                ".delete_object()",
                ".copy_object()",
            ] {
                assert!(!line.contains(call), "{path} calls S3 itself: {line}");
            }
        }
    }
}

#[test]
fn the_worker_never_decodes_an_upload_itself() {
    for (path, text) in sources("src/worker") {
        for line in code_lines(&text) {
            for call in [
                "pipeline::run",
                "pipeline::probe",
                "pipeline::decode",
                "pipeline::plan",
            ] {
                assert!(
                    !line.contains(call),
                    "{path} runs the pipeline outside the sandbox: {line}"
                );
            }
        }
    }
}
