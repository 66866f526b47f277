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
