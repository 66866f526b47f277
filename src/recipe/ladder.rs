//! The responsive ladder: `ladder,w=320.640.1280` as an output's first
//! step makes that output once per width, for an `<img srcset>`.
//!
//! Each rung is the rest of the output's chain after `resize,w=W` (fit
//! inside, never upscaled). Rungs are named `<output>-<width>` after the
//! width they really have: widths above the source's collapse into one rung
//! at the source's width, so a small source never yields duplicates.

use std::fmt;

use super::value::{ParseError, Span, dimension};
use super::{Fit, Gravity, Op, Output, Recipe, Resize};

/// Most widths one ladder may list.
pub const MAX_RUNGS: usize = 8;

/// The widths of a `ladder` step, ascending and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    pub widths: Vec<u32>,
}

/// One rendition a recipe makes: an output as written, or one width of a
/// ladder output (then `ladder` names that output).
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    pub output: Output,
    pub ladder: Option<String>,
}

impl Ladder {
    /// `w=320.640.1280`: widths separated by `.` (shell-safe, unlike `|`).
    pub(super) fn parse(span: Span<'_>, widths: Option<Span<'_>>) -> Result<Ladder, ParseError> {
        let widths = widths.ok_or_else(|| span.error("`ladder,w=320.640.1280`"))?;
        let mut list = Vec::new();
        for width in widths.split('.') {
            if list.len() == MAX_RUNGS {
                return Err(width.error(format!("at most {MAX_RUNGS} widths")));
            }
            let w = dimension(width)?;
            if list.last().is_some_and(|&last| last >= w) {
                return Err(width.error("widths in ascending order, each once"));
            }
            list.push(w);
        }
        Ok(Ladder { widths: list })
    }

    /// The widths a source `source_width` wide gets: those it can fill,
    /// then its own width if any listed width is larger.
    pub fn widths_for(&self, source_width: u32) -> Vec<u32> {
        let mut widths: Vec<u32> = self
            .widths
            .iter()
            .map(|&w| w.min(source_width.max(1)))
            .collect();
        widths.dedup();
        widths
    }
}

impl fmt::Display for Ladder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<String> = self.widths.iter().map(u32::to_string).collect();
        write!(f, "ladder,w={}", widths.join("."))
    }
}

impl Recipe {
    /// The most renditions [`Recipe::rungs`] can yield, whatever the source.
    pub fn max_renditions(&self) -> usize {
        self.outputs
            .iter()
            .map(|o| o.ladder.as_ref().map_or(1, |l| l.widths.len()))
            .sum()
    }

    /// Every rendition this recipe makes of a source `source_width` pixels
    /// wide (upright), ladders expanded, in recipe order.
    pub fn rungs(&self, source_width: u32) -> Vec<Rung> {
        let mut rungs = Vec::new();
        for output in &self.outputs {
            let Some(ladder) = &output.ladder else {
                rungs.push(Rung {
                    output: output.clone(),
                    ladder: None,
                });
                continue;
            };
            for width in ladder.widths_for(source_width) {
                let resize = Op::Resize(Resize {
                    width: Some(width),
                    height: None,
                    fit: Fit::Inside,
                    gravity: Gravity::default(),
                    upscale: false,
                });
                let ops = std::iter::once(resize).chain(output.ops.iter().cloned());
                rungs.push(Rung {
                    output: Output {
                        name: format!("{}-{width}", output.name),
                        ops: ops.collect(),
                        ladder: None,
                        ..output.clone()
                    },
                    ladder: Some(output.name.clone()),
                });
            }
        }
        rungs
    }
}

/// No output may be named like a rung of a ladder output (`hero-640`
/// beside a ladder `hero`): their keys would collide.
pub(super) fn check_names(outputs: &[Output]) -> Option<String> {
    outputs
        .iter()
        .filter(|o| o.ladder.is_some())
        .find_map(|ladder| {
            outputs.iter().map(|o| &o.name).find(|name| {
                name.strip_prefix(ladder.name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .cloned()
}

#[cfg(test)]
#[path = "ladder_tests.rs"]
mod tests;
