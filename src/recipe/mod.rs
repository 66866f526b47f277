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
//! Only printable ASCII without spaces is allowed; watermark text travels
//! percent-encoded (`%20` is a space, `%C3%A9` is `é`), so any Unicode fits.
//! [`Recipe`]'s `Display` gives the canonical form, which parses back to
//! the same value.

mod cost;
mod format;
mod gravity;
mod ladder;
mod parse;
mod preset;
mod route;
mod value;

use std::fmt;

pub use cost::{
    CostError, FACE_SIDE, MAX_TOTAL_OPS, MAX_WORK, SMART_SIDE, encode_work, format_work, look_work,
    op_work,
};
pub use format::{DEFAULT_AVIF_QUALITY, DEFAULT_AVIF_SPEED, Frames};
pub use gravity::{Anchor, Gravity};
pub use ladder::{Ladder, MAX_RUNGS, Rung};
pub use preset::{Presets, RecipeError, Resolved};
pub use route::{Route, is_preset_name, route_for, routes_note, unreachable_routes};
pub use value::{ParseError, encode_text};

/// Longest recipe accepted, in bytes; S3 allows 2 KB for all user metadata.
pub const MAX_RECIPE_LEN: usize = 1024;
/// Most outputs one recipe may ask for.
pub const MAX_OUTPUTS: usize = 8;
/// Most steps in one output.
pub const MAX_STEPS: usize = 16;
/// Largest width or height a step may ask for.
pub const MAX_DIMENSION: u32 = 16_384;
/// Largest blur or sharpen sigma.
pub const MAX_SIGMA: f32 = 100.0;
/// Longest watermark text, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Name given to the output of a recipe with a single unnamed output.
pub const DEFAULT_OUTPUT_NAME: &str = "main";

/// One or more named outputs, each made from the same decoded source.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub outputs: Vec<Output>,
}

/// One rendition: a chain of operations, then an encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub ops: Vec<Op>,
    /// `None` keeps the source's format where it can be written, else JPEG.
    pub format: Option<Format>,
    /// `icc=keep` on the format step: the source's profile (docs/colour.md).
    pub icc: Icc,
    /// Every frame of an animated source, or only the first.
    pub frames: Frames,
    /// A `ladder` first step: the output is made once per width.
    pub ladder: Option<Ladder>,
}

/// What an output does with the source's colour profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Icc {
    /// Converted to sRGB, written untagged (the default).
    #[default]
    Srgb,
    /// The source's own colours, with its profile embedded (JPEG, PNG, WebP).
    Keep,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Resize(Resize),
    Crop(Crop),
    /// Clockwise, in degrees.
    Rotate(Rotation),
    Flip(FlipAxis),
    Watermark(Watermark),
    Grayscale,
    Sepia,
    /// Gaussian blur with this standard deviation, in pixels.
    Blur {
        sigma: f32,
    },
    /// Unsharp mask: `out = in + amount * (in - blur(in, sigma))`.
    Sharpen {
        sigma: f32,
        amount: f32,
    },
}

/// Resize keeping the aspect ratio, unless `fit` is [`Fit::Fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resize {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    /// Which part of the image `fit=cover` keeps.
    pub gravity: Gravity,
    /// Allow the result to be larger than the source.
    pub upscale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Scale to fit inside the box; the result may be smaller on one side.
    #[default]
    Inside,
    /// Scale to cover the box, then crop to exactly the box (see `gravity`).
    Cover,
    /// Stretch to exactly the box, ignoring the aspect ratio.
    Fill,
}

/// A rectangle in pixels of the image as it is at that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// `crop,w=..,h=..,gravity=..`: the gravity places the window, and
    /// `x` and `y` are 0.
    pub gravity: Option<Gravity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    R90,
    R180,
    R270,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlipAxis {
    /// Mirror left to right.
    Horizontal,
    /// Mirror top to bottom.
    Vertical,
}

/// A length in pixels, or relative to the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    Px(u32),
    /// Percent of the image's shorter side.
    Pct(f32),
}

impl Length {
    pub fn resolve(self, width: u32, height: u32) -> u32 {
        match self {
            Length::Px(px) => px,
            Length::Pct(pct) => {
                (f64::from(width.min(height)) * f64::from(pct) / 100.0).round() as u32
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub text: String,
    pub anchor: Anchor,
    /// Height of the text.
    pub size: Length,
    pub color: Rgb,
    /// 0 (invisible) to 1 (opaque).
    pub opacity: f32,
    /// Distance from the edges the anchor touches.
    pub margin: Length,
}

/// An sRGB colour, written `rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `background` replaces transparency, which JPEG cannot hold.
    /// `lossless`: jpegtran's lossless transforms (`jpeg,lossless=true`):
    /// the source JPEG's own DCT coefficients rotated or flipped, never
    /// decoded or quantised again; `quality` is then unused.
    Jpeg {
        quality: u8,
        background: Rgb,
        lossless: bool,
    },
    Png,
    WebP {
        quality: WebPQuality,
    },
    Gif,
    /// AV1 in HEIF (`ravif`): `speed` 1 (smallest, slowest) to 10.
    Avif {
        quality: u8,
        speed: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebPQuality {
    Lossy(u8),
    Lossless,
}

pub const DEFAULT_JPEG_QUALITY: u8 = 82;
pub const DEFAULT_WEBP_QUALITY: u8 = 80;
pub const WHITE: Rgb = Rgb([255, 255, 255]);

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
        let ladder = self.ladder.iter().map(Ladder::to_string);
        let mut steps: Vec<String> = ladder.chain(self.ops.iter().map(Op::to_string)).collect();
        if let Some(format) = self.format {
            let keep = if self.icc == Icc::Keep {
                ",icc=keep"
            } else {
                ""
            };
            steps.push(format!("{format}{keep}{}", self.frames.param()));
        }
        f.write_str(&steps.join("/"))
    }
}

impl Op {
    /// The step's name as written in a recipe (`resize`, `blur`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Resize(_) => "resize",
            Op::Crop(_) => "crop",
            Op::Rotate(_) => "rotate",
            Op::Flip(_) => "flip",
            Op::Watermark(_) => "watermark",
            Op::Grayscale => "grayscale",
            Op::Sepia => "sepia",
            Op::Blur { .. } => "blur",
            Op::Sharpen { .. } => "sharpen",
        }
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
                if r.gravity != Gravity::default() {
                    write!(f, ",gravity={}", r.gravity.name())?;
                }
                if r.upscale {
                    f.write_str(",up=true")?;
                }
                Ok(())
            }
            Op::Crop(Crop {
                width,
                height,
                gravity: Some(gravity),
                ..
            }) => write!(f, "crop,w={width},h={height},gravity={}", gravity.name()),
            Op::Crop(c) => write!(f, "crop,x={},y={},w={},h={}", c.x, c.y, c.width, c.height),
            Op::Rotate(r) => write!(
                f,
                "rotate,deg={}",
                match r {
                    Rotation::R90 => 90,
                    Rotation::R180 => 180,
                    Rotation::R270 => 270,
                }
            ),
            Op::Flip(FlipAxis::Horizontal) => f.write_str("flip,dir=h"),
            Op::Flip(FlipAxis::Vertical) => f.write_str("flip,dir=v"),
            Op::Watermark(w) => write!(
                f,
                "watermark,text={},pos={},size={},color={},opacity={},margin={}",
                value::encode_text(&w.text),
                w.anchor.name(),
                w.size,
                w.color,
                w.opacity,
                w.margin
            ),
            Op::Grayscale => f.write_str("grayscale"),
            Op::Sepia => f.write_str("sepia"),
            Op::Blur { sigma } => write!(f, "blur,sigma={sigma}"),
            Op::Sharpen { sigma, amount } => write!(f, "sharpen,sigma={sigma},amount={amount}"),
        }
    }
}

#[cfg(test)]
mod tests;
