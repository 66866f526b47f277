//! Recipes: what to make of one upload, parsed into typed values before
//! anything runs. Pure: no I/O.
//!
//! The syntax is one short ASCII line, safe in a shell without quotes and in
//! S3 user metadata:
//!
//! ```text
//! recipe = output *("+" output)
//! output = [name ":"] step *("/" step)
//! step   = op *("," key "=" value)
//! ```
//!
//! For example `thumb:resize,w=200,h=200,fit=cover/jpeg,q=80+big:resize,w=1200/png`.
//! Only printable ASCII without spaces is allowed; parameters that carry
//! text will take it percent-encoded, so any Unicode fits.
//! [`Recipe`]'s `Display` gives the canonical form, which parses back to
//! the same value.

mod parse;

use std::collections::BTreeMap;
use std::fmt;

pub use parse::ParseError;

/// Longest recipe accepted, in bytes; S3 allows 2 KB for all user metadata.
pub const MAX_RECIPE_LEN: usize = 1024;
/// Most outputs one recipe may ask for.
pub const MAX_OUTPUTS: usize = 8;
/// Most steps in one output.
pub const MAX_STEPS: usize = 16;
/// Largest width or height a step may ask for.
pub const MAX_DIMENSION: u32 = 16_384;
/// Name given to the output of a recipe with a single unnamed output.
pub const DEFAULT_OUTPUT_NAME: &str = "main";

/// One or more named outputs, each made from the same decoded source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub outputs: Vec<Output>,
}

/// One rendition: a chain of operations, then an encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    pub ops: Vec<Op>,
    /// `None` keeps the source's format where it can be written, else JPEG.
    pub format: Option<Format>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Resize(Resize),
}

/// Resize keeping the aspect ratio, unless `fit` is [`Fit::Fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resize {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    /// Allow the result to be larger than the source.
    pub upscale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Scale to fit inside the box; the result may be smaller on one side.
    #[default]
    Inside,
    /// Scale to cover the box, then crop the centre to exactly the box.
    Cover,
    /// Stretch to exactly the box, ignoring the aspect ratio.
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg { quality: u8 },
    Png,
}

pub const DEFAULT_JPEG_QUALITY: u8 = 82;

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "jpg",
            Format::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "image/jpeg",
            Format::Png => "image/png",
        }
    }

    /// Short name used in manifests and API answers.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "jpeg",
            Format::Png => "png",
        }
    }
}

impl Recipe {
    /// Parse a recipe; the error names the column and what was expected there.
    pub fn parse(input: &str) -> Result<Recipe, ParseError> {
        parse::parse(input)
    }
}

impl std::str::FromStr for Recipe {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Recipe::parse(s)
    }
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, output) in self.outputs.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{output}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.name)?;
        let mut steps: Vec<String> = self.ops.iter().map(Op::to_string).collect();
        if let Some(format) = self.format {
            steps.push(format.to_string());
        }
        f.write_str(&steps.join("/"))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Resize(r) => {
                f.write_str("resize")?;
                if let Some(w) = r.width {
                    write!(f, ",w={w}")?;
                }
                if let Some(h) = r.height {
                    write!(f, ",h={h}")?;
                }
                match r.fit {
                    Fit::Inside => {}
                    Fit::Cover => f.write_str(",fit=cover")?,
                    Fit::Fill => f.write_str(",fit=fill")?,
                }
                if r.upscale {
                    f.write_str(",up=true")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Jpeg { quality } => write!(f, "jpeg,q={quality}"),
            Format::Png => f.write_str("png"),
        }
    }
}

/// Named recipes, and the one used when an upload names none.
#[derive(Debug, Clone)]
pub struct Presets {
    map: BTreeMap<String, Recipe>,
    default: String,
}

/// The recipe a job runs, and the preset it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub recipe: Recipe,
    pub preset: Option<String>,
}

/// Why an upload's recipe or preset was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("there is no preset named {0:?}")]
    UnknownPreset(String),
    #[error("give a recipe or a preset, not both")]
    Both,
}

impl RecipeError {
    /// Stable, client-facing error code (documented in the README).
    pub fn code(&self) -> &'static str {
        match self {
            RecipeError::Parse(_) | RecipeError::Both => "invalid_recipe",
            RecipeError::UnknownPreset(_) => "unknown_preset",
        }
    }
}

impl Presets {
    /// `default` must name one of `map`'s presets.
    pub fn new(map: BTreeMap<String, Recipe>, default: String) -> Result<Presets, RecipeError> {
        if !map.contains_key(&default) {
            return Err(RecipeError::UnknownPreset(default));
        }
        Ok(Presets { map, default })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// What to run for an upload that carries `recipe` and/or `preset`.
    pub fn resolve(
        &self,
        recipe: Option<&str>,
        preset: Option<&str>,
    ) -> Result<Resolved, RecipeError> {
        match (recipe, preset) {
            (Some(_), Some(_)) => Err(RecipeError::Both),
            (Some(text), None) => Ok(Resolved {
                recipe: Recipe::parse(text)?,
                preset: None,
            }),
            (None, name) => {
                let name = name.unwrap_or(&self.default);
                let recipe = self
                    .map
                    .get(name)
                    .ok_or_else(|| RecipeError::UnknownPreset(name.to_owned()))?;
                Ok(Resolved {
                    recipe: recipe.clone(),
                    preset: Some(name.to_owned()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
