//! `imgflow process` on many files and folders: collect the images, run
//! them on `-j` threads, mirror the input tree under `-o`, list what
//! failed at the end. A failure never stops the batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::pipeline::{self, Limits, PipelineError};
use crate::recipe::Recipe;

/// Extensions a folder's files must have to be processed (any case);
/// files named on the command line are processed whatever their name.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif"];

/// One image to process and where its outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    source: PathBuf,
    /// Its path under `-o`: the path inside the folder it was found in, or
    /// its file name when named on the command line.
    relative: PathBuf,
}

pub fn run(
    inputs: &[PathBuf],
    out: &Path,
    recipe: &Recipe,
    limits: &Limits,
    jobs: Option<usize>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (items, mut failures, skipped) = collect(inputs, out);
    let total = items.len() + failures.len();
    if total == 0 {
        bail!("no images (.jpg .jpeg .png .webp .gif) in {inputs:?}");
    }
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, items.len().max(1));
    let bar = crate::progress::bar(items.len() as u64, "images");
    let next = AtomicUsize::new(0);
    let outputs = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match process_item(item, out, recipe, limits) {
                        Ok(n) => {
                            outputs.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(why) => failed
                            .lock()
                            .expect("no panics while holding it")
                            .push((item.source.clone(), why)),
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    failures.extend(failed.into_inner().expect("the threads are done"));
    failures.sort();

    let took = started.elapsed().as_secs_f64();
    let done = total - failures.len();
    println!(
        "{done} of {total} images processed into {} ({} files) in {took:.1} s: {:.1} images/s with -j {jobs}",
        out.display(),
        outputs.load(Ordering::Relaxed),
        done as f64 / took.max(1e-9),
    );
    if skipped > 0 {
        println!("skipped {skipped} files without an image extension");
    }
    if failures.is_empty() {
        return Ok(());
    }
    eprintln!("failed:");
    for (path, why) in &failures {
        eprintln!("  {}: {why}", path.display());
    }
    bail!("{} of {total} images failed", failures.len())
}

/// The images to process, the inputs that could not be read (as
/// failures), and how many files were skipped for their extension.
#[allow(clippy::type_complexity)]
fn collect(inputs: &[PathBuf], out: &Path) -> (Vec<Item>, Vec<(PathBuf, String)>, usize) {
    let mut items = vec![];
    let mut failures = vec![];
    let mut skipped = 0;
    // Never walk into the output folder: a rerun would process its outputs.
    let out = out.canonicalize().ok();
    for input in inputs {
        if !input.is_dir() {
            match input.file_name() {
                Some(name) if input.is_file() => items.push(Item {
                    source: input.clone(),
                    relative: PathBuf::from(name),
                }),
                _ => failures.push((input.clone(), "not a file or folder".to_owned())),
            }
            continue;
        }
        let walk = walkdir::WalkDir::new(input)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| out.is_none() || e.path().canonicalize().ok() != out);
        for entry in walk {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    let path = err.path().unwrap_or(input).to_owned();
                    failures.push((path, format!("cannot read: {err}")));
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            if !has_image_extension(entry.path()) {
                skipped += 1;
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(input)
                .unwrap_or(entry.path())
                .to_owned();
            items.push(Item {
                source: entry.path().to_owned(),
                relative,
            });
        }
    }
    // Two inputs with the same place under -o: the second would overwrite the first.
    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    items.retain(|item| match seen.get(&item.relative) {
        Some(first) => {
            failures.push((
                item.source.clone(),
                format!(
                    "its outputs would overwrite those of {} (both are {} under -o)",
                    first.display(),
                    item.relative.display()
                ),
            ));
            false
        }
        None => {
            seen.insert(item.relative.clone(), item.source.clone());
            true
        }
    });
    (items, failures, skipped)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// One image: its outputs in `<out>/<relative>/<name>.<ext>`, as the
/// outbox lays them out. The number of files written, or why not.
fn process_item(
    item: &Item,
    out: &Path,
    recipe: &Recipe,
    limits: &Limits,
) -> Result<usize, String> {
    let run = || -> anyhow::Result<usize> {
        // The byte limit before reading a byte, as the worker does.
        let size = std::fs::metadata(&item.source)?.len();
        if size > limits.max_bytes {
            let err = PipelineError::TooManyBytes {
                bytes: size,
                max_bytes: limits.max_bytes,
            };
            bail!("{}: {err}", err.code());
        }
        let bytes = std::fs::read(&item.source).context("reading")?;
        let renditions = match pipeline::run(&bytes, recipe, limits) {
            Ok(renditions) => renditions,
            Err(err) => bail!("{}: {err}", err.code()),
        };
        let folder = out.join(&item.relative);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        for rendition in &renditions {
            let path = folder.join(format!(
                "{}.{}",
                rendition.name,
                rendition.format.extension()
            ));
            std::fs::write(&path, &rendition.bytes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(renditions.len())
    };
    run().map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_for_images_and_the_output_folder_is_left_out() {
        let dir = std::env::temp_dir().join(format!("imgflow-batch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for path in ["in/a/b/x.JPG", "in/a/y.png", "in/notes.txt", "in/out/z.jpg"] {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        let inputs = [
            dir.join("in"),
            dir.join("in/a/y.png"),
            dir.join("missing.jpg"),
        ];
        let (items, failures, skipped) = collect(&inputs, &dir.join("in/out"));
        let relative: Vec<_> = items.iter().map(|i| i.relative.clone()).collect();
        assert_eq!(
            relative,
            [PathBuf::from("a/b/x.JPG"), "a/y.png".into(), "y.png".into()]
        );
        assert_eq!(skipped, 1);
        assert_eq!(failures.len(), 1, "{failures:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
