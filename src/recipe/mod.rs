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
mod parse;
mod preset;
mod route;
mod value;

use std::fmt;

pub use cost::{CostError, MAX_TOTAL_OPS, MAX_WORK, encode_work, op_work};
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
    pub gravity: Anchor,
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

/// One of nine positions: the corners, the middles of the edges, the centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    TopLeft,
    Top,
    TopRight,
    Left,
    #[default]
    Center,
    Right,
    BottomLeft,
    Bottom,
    BottomRight,
}

impl Anchor {
    pub const ALL: [Anchor; 9] = [
        Anchor::TopLeft,
        Anchor::Top,
        Anchor::TopRight,
        Anchor::Left,
        Anchor::Center,
        Anchor::Right,
        Anchor::BottomLeft,
        Anchor::Bottom,
        Anchor::BottomRight,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Anchor::TopLeft => "top-left",
            Anchor::Top => "top",
            Anchor::TopRight => "top-right",
            Anchor::Left => "left",
            Anchor::Center => "center",
            Anchor::Right => "right",
            Anchor::BottomLeft => "bottom-left",
            Anchor::Bottom => "bottom",
            Anchor::BottomRight => "bottom-right",
        }
    }

    /// Horizontal and vertical placement: 0 = start, 1 = middle, 2 = end.
    pub fn grid(self) -> (u32, u32) {
        let i = Anchor::ALL.iter().position(|a| *a == self).unwrap_or(4) as u32;
        (i % 3, i / 3)
    }

    /// Offset of a `inner`-long span placed in an `outer`-long one, `margin` from the edges.
    pub fn offset(place: u32, outer: u32, inner: u32, margin: u32) -> i64 {
        let (outer, inner, margin) = (i64::from(outer), i64::from(inner), i64::from(margin));
        match place {
            0 => margin,
            1 => (outer - inner) / 2,
            _ => outer - inner - margin,
        }
    }
}

/// A rectangle in pixels of the image as it is at that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
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
    Jpeg {
        quality: u8,
        background: Rgb,
    },
    Png,
    WebP {
        quality: WebPQuality,
    },
    Gif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebPQuality {
    Lossy(u8),
    Lossless,
}

pub const DEFAULT_JPEG_QUALITY: u8 = 82;
pub const DEFAULT_WEBP_QUALITY: u8 = 80;
pub const WHITE: Rgb = Rgb([255, 255, 255]);

impl Format {
    /// JPEG at the default quality on white.
    pub const JPEG: Format = Format::Jpeg {
        quality: DEFAULT_JPEG_QUALITY,
        background: WHITE,
    };

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "jpg",
            Format::Png => "png",
            Format::WebP { .. } => "webp",
            Format::Gif => "gif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP { .. } => "image/webp",
            Format::Gif => "image/gif",
        }
    }

    /// The format a file name's extension names (`jpg`, `PNG`, ...), with
    /// default settings.
    pub fn from_extension(extension: &str) -> Option<Format> {
        match extension.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(Format::JPEG),
            "png" => Some(Format::Png),
            "webp" => Some(Format::WebP {
                quality: WebPQuality::Lossy(DEFAULT_WEBP_QUALITY),
            }),
            "gif" => Some(Format::Gif),
            _ => None,
        }
    }

    /// Short name used in manifests and API answers.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "jpeg",
            Format::Png => "png",
            Format::WebP { .. } => "webp",
            Format::Gif => "gif",
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
                if r.gravity != Anchor::Center {
                    write!(f, ",gravity={}", r.gravity.name())?;
                }
                if r.upscale {
                    f.write_str(",up=true")?;
                }
                Ok(())
            }
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

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Length::Px(px) => write!(f, "{px}"),
            Length::Pct(pct) => write!(f, "{pct}pct"),
        }
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "{r:02x}{g:02x}{b:02x}")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Jpeg {
                quality,
                background,
            } => {
                write!(f, "jpeg,q={quality}")?;
                if *background != WHITE {
                    write!(f, ",bg={background}")?;
                }
                Ok(())
            }
            Format::Png => f.write_str("png"),
            Format::WebP {
                quality: WebPQuality::Lossy(q),
            } => write!(f, "webp,q={q}"),
            Format::WebP {
                quality: WebPQuality::Lossless,
            } => f.write_str("webp,lossless=true"),
            Format::Gif => f.write_str("gif"),
        }
    }
}

#[cfg(test)]
mod tests;
