//! Presets: named recipes, and how an upload's metadata picks what to run.

use std::collections::BTreeMap;

use super::route::{Route, route_for};
use super::{CostError, ParseError, Recipe};

/// Named recipes, the one used when an upload names none, and the routes
/// that pick one by key prefix.
#[derive(Debug, Clone)]
pub struct Presets {
    map: BTreeMap<String, Recipe>,
    default: String,
    routes: Vec<Route>,
}

/// The recipe a job runs, and the preset it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub recipe: Recipe,
    pub preset: Option<String>,
    /// The route that chose the preset, if one did.
    pub route: Option<Route>,
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
        Ok(Presets {
            map,
            default,
            routes: vec![],
        })
    }

    /// Add routes; a route naming no preset is a configuration error.
    pub fn with_routes(mut self, routes: Vec<Route>) -> Result<Presets, RecipeError> {
        if let Some(route) = routes.iter().find(|r| !self.map.contains_key(&r.preset)) {
            return Err(RecipeError::UnknownPreset(route.preset.clone()));
        }
        self.routes = routes;
        Ok(self)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// What to run for inbox object `key`: its recipe or preset, else the
    /// preset of the longest route matching the key, else the default.
    pub fn resolve_for(
        &self,
        key: &str,
        recipe: Option<&str>,
        preset: Option<&str>,
    ) -> Result<Resolved, RecipeError> {
        match route_for(&self.routes, key) {
            Some(route) if recipe.is_none() && preset.is_none() => {
                let mut resolved = self.resolve(None, Some(&route.preset))?;
                resolved.route = Some(route.clone());
                Ok(resolved)
            }
            _ => self.resolve(recipe, preset),
        }
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
                    route: None,
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
                    route: None,
                })
            }
        }
    }
}
