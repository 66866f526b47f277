//! `imgflow process`: the pipeline on local files, no AWS at all; the way
//! to try a recipe, and the base of the benchmarks. One file keeps its
//! simple form (`-o out.jpg` or `-o folder/`); several files or folders
//! run as a batch (`batch.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::config::{LimitsConfig, PresetConfig};
use crate::pipeline;
use crate::recipe::{Format, Recipe};

mod batch;

#[derive(Args, Debug, Clone)]
pub struct ProcessArgs {
    /// Images and folders to process (folders recursively: .jpg .jpeg .png .webp .gif)
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// One image: the output file (one output with an extension) or folder
    /// (`<name>.<ext>` per output). Several, or a folder: the folder that
    /// mirrors the input tree, `<relative path>/<name>.<ext>` per output
    #[arg(short, long)]
    pub output: PathBuf,
    /// Recipe to run; without one, the default preset
    #[arg(long)]
    pub recipe: Option<String>,
    /// Preset to run instead of a recipe
    #[arg(long = "use-preset", conflicts_with = "recipe")]
    pub use_preset: Option<String>,
    /// Images processed at once [default: the number of CPUs]
    #[arg(short = 'j', long = "jobs")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub presets: PresetConfig,
}

pub fn process(args: &ProcessArgs) -> anyhow::Result<()> {
    let presets = args.presets.presets()?;
    let recipe = presets
        .resolve(args.recipe.as_deref(), args.use_preset.as_deref())?
        .recipe;
    match args.inputs.as_slice() {
        [one] if !one.is_dir() => process_one(args, one, recipe),
        inputs => batch::run(
            inputs,
            &args.output,
            &recipe,
            &args.limits.limits(),
            args.jobs,
        ),
    }
}

fn process_one(args: &ProcessArgs, input: &Path, mut recipe: Recipe) -> anyhow::Result<()> {
    let single_file = recipe.outputs.len() == 1 && args.output.extension().is_some();
    if single_file && recipe.outputs[0].format.is_none() {
        // `-o out.png` means PNG, as it does for sharp and ImageMagick.
        recipe.outputs[0].format = Some(format_for(&args.output)?);
    }
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    // One file: its outputs may use every core.
    let limits = pipeline::Limits {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()) as u32,
        ..args.limits.limits()
    };
    let renditions = pipeline::run(&bytes, &recipe, &limits)
        .with_context(|| format!("processing {}", input.display()))?;
    for rendition in renditions {
        let path = if single_file {
            args.output.clone()
        } else {
            std::fs::create_dir_all(&args.output)
                .with_context(|| format!("creating {}", args.output.display()))?;
            args.output.join(format!(
                "{}.{}",
                rendition.name,
                rendition.format.extension()
            ))
        };
        std::fs::write(&path, &rendition.bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "{}: {} {}x{}, {} bytes",
            path.display(),
            rendition.format.name(),
            rendition.width,
            rendition.height,
            rendition.bytes.len()
        );
    }
    Ok(())
}

/// The format an output file's extension names, with default settings.
fn format_for(path: &Path) -> anyhow::Result<Format> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    Format::from_extension(extension).with_context(|| {
        format!(
            "no format for the extension {extension:?} of {}: end the recipe with jpeg, png, webp or gif",
            path.display()
        )
    })
}
