//! `imgflow backfill`'s command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::{AwsConfig, Resources, parse_preset};
use crate::recipe::{Recipe, Route};

/// Messages a second, by default.
pub const DEFAULT_RATE: f64 = 50.0;
#[derive(Args, Debug, Clone)]
pub struct BackfillArgs {
    /// What to backfill: s3://BUCKET/PREFIX (BUCKET must be the inbox; no prefix: all of it)
    pub target: String,

    /// Run this recipe instead of what each object's metadata says
    #[arg(long, conflicts_with = "preset")]
    pub recipe: Option<String>,

    /// Run this preset instead of what each object's metadata says
    #[arg(long)]
    pub preset: Option<String>,

    /// Skip objects whose manifest already names their ETag and the recipe that would run
    #[arg(long)]
    pub only_missing: bool,

    /// At most this many messages a second
    #[arg(long, default_value_t = DEFAULT_RATE)]
    pub rate: f64,

    /// List and decide, but send nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Save progress here after every batch, and resume from it
    #[arg(long)]
    pub cursor: Option<PathBuf>,

    /// Start after this key (what an interrupted backfill prints)
    #[arg(long)]
    pub start_after: Option<String>,

    /// Stop after enqueuing this many (a backfill in parts; resume with --cursor)
    #[arg(long)]
    pub limit: Option<u64>,

    #[command(flatten)]
    pub aws: AwsConfig,
    #[command(flatten)]
    pub resources: Resources,
    /// The workers' presets, NAME=RECIPE (to check --preset and, with
    /// --only-missing, what would run); repeat, or separate with spaces
    #[arg(long = "define-preset", env = "IMGFLOW_PRESETS", value_delimiter = ' ',
          value_parser = parse_preset, value_name = "NAME=RECIPE")]
    pub define_presets: Vec<(String, Recipe)>,

    /// The workers' default preset
    #[arg(long, env = "IMGFLOW_DEFAULT_PRESET", default_value = "default")]
    pub default_preset: String,

    /// The workers' routes, PREFIX=PRESET; repeat, or separate with spaces
    #[arg(long = "route", env = "IMGFLOW_ROUTES", value_delimiter = ' ', value_parser = Route::parse)]
    pub routes: Vec<Route>,
}

/// `s3://bucket/prefix` → (bucket, prefix).
pub fn parse_target(target: &str) -> anyhow::Result<(String, String)> {
    let rest = target
        .strip_prefix("s3://")
        .with_context(|| format!("expected s3://BUCKET/PREFIX, found {target:?}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(!bucket.is_empty(), "no bucket in {target:?}");
    Ok((bucket.to_owned(), prefix.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_bucket_and_prefix() {
        let t = |s| parse_target(s).unwrap();
        assert_eq!(t("s3://in/photos/"), ("in".into(), "photos/".into()));
        assert_eq!(t("s3://in"), ("in".into(), String::new()));
        assert_eq!(t("s3://in/"), ("in".into(), String::new()));
        assert!(parse_target("in/photos").is_err());
        assert!(parse_target("s3:///x").is_err());
    }
}
