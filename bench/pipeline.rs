//! Criterion benchmarks of `imgflow::pipeline::run`: bytes in, encoded bytes
//! out, on one thread, for every case of `bench/cases.txt` (each operation and
//! whole recipes) on the 12 MP and 1 MP fixtures of `bench/make-fixtures.sh`.
//!
//! ```sh
//! bench/make-fixtures.sh
//! cargo bench --bench pipeline                 # everything
//! cargo bench --bench pipeline -- 'thumb800/'  # criterion's filter: one case
//! ```
//!
//! Each case is one criterion group named by its id, with one benchmark per
//! fixture. Missing fixtures, and recipes this build cannot parse (operations
//! not written yet), are skipped with a message on stderr, never a panic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use imgflow::pipeline::{self, Limits};
use imgflow::recipe::Recipe;

/// The table of cases shared with `bench/compare.py`.
const CASES: &str = include_str!("cases.txt");

/// One line of `cases.txt`: its id, the fixtures it runs on and the recipe.
struct Case<'a> {
    id: &'a str,
    fixtures: Vec<&'a str>,
    recipe: &'a str,
}

fn cases() -> Vec<Case<'static>> {
    CASES
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut columns = line.split_whitespace();
            let case = Case {
                id: columns.next()?,
                fixtures: columns.next()?.split(',').collect(),
                recipe: columns.next()?,
            };
            Some(case)
        })
        .collect()
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench")
        .join("fixtures")
        .join(format!("photo-{name}.jpg"))
}

fn pipeline_benches(c: &mut Criterion) {
    let limits = Limits::default();
    let mut fixtures = Vec::new();
    for name in ["12mp", "1mp"] {
        let path = fixture_path(name);
        match std::fs::read(&path) {
            Ok(bytes) => fixtures.push((name, bytes)),
            Err(e) => eprintln!(
                "skip: fixture {} is missing ({e}); run bench/make-fixtures.sh",
                path.display()
            ),
        }
    }
    if fixtures.is_empty() {
        return;
    }

    for case in cases() {
        let recipe = match Recipe::parse(case.recipe) {
            Ok(recipe) => recipe,
            Err(e) => {
                eprintln!(
                    "skip: {} n/a: {:?} does not parse: {e}",
                    case.id, case.recipe
                );
                continue;
            }
        };
        let mut group = c.benchmark_group(case.id);
        // Whole images take 10 ms to 1 s each: few, flat samples.
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        for (name, bytes) in &fixtures {
            if !case.fixtures.contains(name) {
                continue;
            }
            // Run once outside criterion: an error (say, an operation that
            // parses but is not implemented yet) skips instead of panicking.
            if let Err(e) = pipeline::run(bytes, &recipe, &limits) {
                eprintln!("skip: {}/{name} n/a: {e}", case.id);
                continue;
            }
            group.throughput(Throughput::Elements(pixels(bytes)));
            group.bench_function(*name, |b| {
                b.iter(|| {
                    pipeline::run(std::hint::black_box(bytes), &recipe, &limits)
                        .expect("ran once before")
                });
            });
        }
        group.finish();
    }
}

/// Source pixels, for criterion's throughput (elements/s = source pixels/s).
fn pixels(bytes: &[u8]) -> u64 {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|reader| reader.into_dimensions().ok())
        .map_or(0, |(width, height)| u64::from(width) * u64::from(height))
}

criterion_group!(benches, pipeline_benches);
criterion_main!(benches);
