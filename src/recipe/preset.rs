//! Presets: named recipes, and how an upload's metadata picks what to run.

use std::collections::BTreeMap;

use super::{CostError, ParseError, Recipe};

/// Named recipes, and the one used when an upload names none.
#[derive(Debug, Clone)]
pub struct Presets {
    map: BTreeMap<String, Recipe>,
    default: String,
}

/// The recipe a job runs, and the preset it came from.
#[derive(Debug, Clone, PartialEq)]
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
    #[error(transparent)]
    TooExpensive(#[from] CostError),
}

impl RecipeError {
    /// Stable, client-facing error code (documented in the README).
    pub fn code(&self) -> &'static str {
        match self {
            RecipeError::Parse(_) | RecipeError::Both => "invalid_recipe",
            RecipeError::UnknownPreset(_) => "unknown_preset",
            RecipeError::TooExpensive(_) => "recipe_too_expensive",
        }
    }
}

impl Presets {
    /// `default` must name one of `map`'s presets, and every preset must
    /// pass [`Recipe::check_cost`] (a preset too expensive to run is a
    /// configuration error, found at start-up).
    pub fn new(map: BTreeMap<String, Recipe>, default: String) -> Result<Presets, RecipeError> {
        if !map.contains_key(&default) {
            return Err(RecipeError::UnknownPreset(default));
        }
        for recipe in map.values() {
            recipe.check_cost()?;
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
            (Some(text), None) => {
                let recipe = Recipe::parse(text)?;
                recipe.check_cost()?;
                Ok(Resolved {
                    recipe,
                    preset: None,
                })
            }
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
