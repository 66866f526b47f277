//! The recipe parser. The grammar is small enough that splitting on its four
//! separators, while tracking byte offsets, gives exact error positions.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::{
    Anchor, Crop, DEFAULT_JPEG_QUALITY, DEFAULT_OUTPUT_NAME, DEFAULT_WEBP_QUALITY, Fit, FlipAxis,
    Format, Length, MAX_DIMENSION, MAX_OUTPUTS, MAX_RECIPE_LEN, MAX_SIGMA, MAX_STEPS,
    MAX_TEXT_CHARS, Op, Output, Recipe, Resize, Rgb, Rotation, WHITE, Watermark, WebPQuality,
};

/// Why a recipe was refused: the 1-based column and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid recipe at column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    pub column: usize,
    pub expected: String,
    pub found: String,
}

/// A piece of the input and where it starts.
#[derive(Clone, Copy)]
struct Span<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Span<'a> {
    fn split(self, sep: char) -> impl Iterator<Item = Span<'a>> {
        let mut at = self.at;
        self.text.split(sep).map(move |text| {
            let span = Span { text, at };
            at += text.len() + 1;
            span
        })
    }

    fn split_once(self, sep: char) -> Option<(Span<'a>, Span<'a>)> {
        let (a, b) = self.text.split_once(sep)?;
        Some((
            Span {
                text: a,
                at: self.at,
            },
            Span {
                text: b,
                at: self.at + a.len() + 1,
            },
        ))
    }

    fn error(self, expected: impl Into<String>) -> ParseError {
        let found = if self.text.is_empty() {
            "nothing".to_owned()
        } else {
            format!("{:?}", self.text)
        };
        ParseError {
            column: self.at + 1,
            expected: expected.into(),
            found,
        }
    }
}

pub(super) fn parse(input: &str) -> Result<Recipe, ParseError> {
    let whole = Span { text: input, at: 0 };
    if input.len() > MAX_RECIPE_LEN {
        return Err(ParseError {
            column: MAX_RECIPE_LEN + 1,
            expected: format!("at most {MAX_RECIPE_LEN} bytes"),
            found: format!("{} bytes", input.len()),
        });
    }
    if let Some((at, c)) = input
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_graphic()) || c == ' ')
    {
        return Err(ParseError {
            column: at + 1,
            expected: "printable ASCII without spaces (percent-encode anything else)".into(),
            found: format!("{c:?}"),
        });
    }
    if input.is_empty() {
        return Err(whole.error("at least one output"));
    }

    let mut outputs: Vec<Output> = Vec::new();
    for span in whole.split('+') {
        if outputs.len() == MAX_OUTPUTS {
            return Err(span.error(format!("at most {MAX_OUTPUTS} outputs")));
        }
        let output = parse_output(span)?;
        if outputs.iter().any(|o| o.name == output.name) {
            return Err(span.error(format!("a distinct output name (not {:?})", output.name)));
        }
        outputs.push(output);
    }
    if outputs.len() > 1 && input.split('+').any(|o| !o.contains(':')) {
        let unnamed = whole
            .split('+')
            .find(|s| !s.text.contains(':'))
            .unwrap_or(whole);
        return Err(unnamed.error("a name (`name:`) on every output when there are several"));
    }
    let recipe = Recipe { outputs };
    // The canonical form (defaults written out, text escaped) is what travels
    // in metadata, so it must fit the same bound.
    let canonical = recipe.to_string().len();
    if canonical > MAX_RECIPE_LEN {
        return Err(ParseError {
            column: 1,
            expected: format!(
                "a recipe of at most {MAX_RECIPE_LEN} bytes once defaults are written out and text is escaped"
            ),
            found: format!("{canonical} bytes"),
        });
    }
    Ok(recipe)
}

fn parse_output(span: Span<'_>) -> Result<Output, ParseError> {
    let (name, chain) = match span.split_once(':') {
        Some((name, chain)) => (parse_name(name)?, chain),
        None => (DEFAULT_OUTPUT_NAME.to_owned(), span),
    };
    if chain.text.is_empty() {
        return Err(chain.error("at least one step, such as `resize,w=800`"));
    }
    let mut ops = Vec::new();
    let mut format = None;
    for (i, step) in chain.split('/').enumerate() {
        if i == MAX_STEPS {
            return Err(step.error(format!("at most {MAX_STEPS} steps in one output")));
        }
        if let Some(f) = format {
            return Err(step.error(format!("nothing after the output format `{f}`")));
        }
        match parse_step(step)? {
            Step::Op(op) => ops.push(op),
            Step::Format(f) => format = Some(f),
        }
    }
    Ok(Output { name, ops, format })
}

fn parse_name(span: Span<'_>) -> Result<String, ParseError> {
    let ok = !span.text.is_empty()
        && span.text.len() <= 32
        && span
            .text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && span.text != "manifest";
    if ok {
        Ok(span.text.to_owned())
    } else {
        Err(span
            .error("an output name of 1 to 32 characters from a-z, 0-9, `-`, `_` (not `manifest`)"))
    }
}

enum Step {
    Op(Op),
    Format(Format),
}

/// `key=value` pairs of one step, each checked off as it is used so that
/// unknown keys can be reported.
struct Params<'a> {
    op: &'a str,
    pairs: Vec<(Span<'a>, Span<'a>, bool)>,
}

impl<'a> Params<'a> {
    fn parse(op: &'a str, spans: impl Iterator<Item = Span<'a>>) -> Result<Self, ParseError> {
        let mut pairs: Vec<(Span<'a>, Span<'a>, bool)> = Vec::new();
        for span in spans {
            let Some((key, value)) = span.split_once('=') else {
                return Err(span.error(format!("a `key=value` parameter of `{op}`")));
            };
            if pairs.iter().any(|(k, _, _)| k.text == key.text) {
                return Err(key.error(format!("each parameter of `{op}` at most once")));
            }
            pairs.push((key, value, false));
        }
        Ok(Params { op, pairs })
    }

    fn take(&mut self, key: &str) -> Option<Span<'a>> {
        let pair = self.pairs.iter_mut().find(|(k, _, _)| k.text == key)?;
        pair.2 = true;
        Some(pair.1)
    }

    fn finish(self, known: &str) -> Result<(), ParseError> {
        match self.pairs.iter().find(|(_, _, used)| !used) {
            Some((key, _, _)) => Err(key.error(format!("a parameter of `{}` ({known})", self.op))),
            None => Ok(()),
        }
    }
}

fn parse_step(span: Span<'_>) -> Result<Step, ParseError> {
    let mut parts = span.split(',');
    let op = parts.next().unwrap_or(span);
    let mut p = Params::parse(op.text, parts)?;
    let step = match op.text {
        "resize" => {
            let width = p.take("w").map(dimension).transpose()?;
            let height = p.take("h").map(dimension).transpose()?;
            let fit = match p.take("fit") {
                None => Fit::Inside,
                Some(v) => match v.text {
                    "inside" => Fit::Inside,
                    "cover" => Fit::Cover,
                    "fill" => Fit::Fill,
                    _ => return Err(v.error("`inside`, `cover` or `fill`")),
                },
            };
            let gravity = p
                .take("gravity")
                .map(anchor)
                .transpose()?
                .unwrap_or_default();
            let upscale = p.take("up").map(boolean).transpose()?.unwrap_or(false);
            p.finish("w, h, fit, gravity, up")?;
            if width.is_none() && height.is_none() {
                return Err(span.error("`resize` with `w`, `h` or both"));
            }
            if fit != Fit::Inside && (width.is_none() || height.is_none()) {
                return Err(span.error("both `w` and `h` with `fit=cover` or `fit=fill`"));
            }
            Step::Op(Op::Resize(Resize {
                width,
                height,
                fit,
                gravity,
                upscale,
            }))
        }
        "crop" => {
            let mut need = |key| {
                p.take(key)
                    .ok_or_else(|| span.error("`crop` with `x`, `y`, `w` and `h`"))
            };
            let (x, y, w, h) = (need("x")?, need("y")?, need("w")?, need("h")?);
            let crop = Crop {
                x: offset(x)?,
                y: offset(y)?,
                width: dimension(w)?,
                height: dimension(h)?,
            };
            p.finish("x, y, w, h")?;
            Step::Op(Op::Crop(crop))
        }
        "rotate" => {
            let deg = p
                .take("deg")
                .ok_or_else(|| span.error("`rotate,deg=90` (or 180, 270)"))?;
            let rotation = match deg.text {
                "90" => Rotation::R90,
                "180" => Rotation::R180,
                "270" => Rotation::R270,
                _ => return Err(deg.error("90, 180 or 270")),
            };
            p.finish("deg")?;
            Step::Op(Op::Rotate(rotation))
        }
        "flip" => {
            let axis = match p.take("dir") {
                None => FlipAxis::Horizontal,
                Some(v) => match v.text {
                    "h" => FlipAxis::Horizontal,
                    "v" => FlipAxis::Vertical,
                    _ => return Err(v.error("`h` (mirror left-right) or `v` (top-bottom)")),
                },
            };
            p.finish("dir")?;
            Step::Op(Op::Flip(axis))
        }
        "watermark" => {
            let text = p
                .take("text")
                .ok_or_else(|| span.error("`watermark` with `text=...` (percent-encoded)"))?;
            let text = decode_text(text)?;
            let anchor = p
                .take("pos")
                .map(anchor)
                .transpose()?
                .unwrap_or(Anchor::BottomRight);
            let size = p
                .take("size")
                .map(length)
                .transpose()?
                .unwrap_or(Length::Pct(5.0));
            if size.resolve(100, 100) == 0 && matches!(size, Length::Px(_)) {
                return Err(span.error("a text size of at least 1 px"));
            }
            let color = p.take("color").map(rgb).transpose()?.unwrap_or(WHITE);
            let opacity = p
                .take("opacity")
                .map(|v| fraction(v, "an opacity from 0 to 1"))
                .transpose()?;
            let margin = p
                .take("margin")
                .map(length)
                .transpose()?
                .unwrap_or(Length::Pct(2.0));
            p.finish("text, pos, size, color, opacity, margin")?;
            Step::Op(Op::Watermark(Watermark {
                text,
                anchor,
                size,
                color,
                opacity: opacity.unwrap_or(0.6),
                margin,
            }))
        }
        "grayscale" | "greyscale" => {
            p.finish("none")?;
            Step::Op(Op::Grayscale)
        }
        "sepia" => {
            p.finish("none")?;
            Step::Op(Op::Sepia)
        }
        "blur" => {
            let sigma = p.take("sigma").map(sigma).transpose()?.unwrap_or(2.0);
            p.finish("sigma")?;
            Step::Op(Op::Blur { sigma })
        }
        "sharpen" => {
            let sigma = p.take("sigma").map(sigma).transpose()?.unwrap_or(1.0);
            let amount = match p.take("amount") {
                None => 1.0,
                Some(v) => match v.text.parse::<f32>() {
                    Ok(a) if (0.0..=10.0).contains(&a) => a,
                    _ => return Err(v.error("an amount from 0 to 10")),
                },
            };
            p.finish("sigma, amount")?;
            Step::Op(Op::Sharpen { sigma, amount })
        }
        "jpeg" | "jpg" => {
            let quality = p
                .take("q")
                .map(quality)
                .transpose()?
                .unwrap_or(DEFAULT_JPEG_QUALITY);
            let background = p.take("bg").map(rgb).transpose()?.unwrap_or(WHITE);
            p.finish("q, bg")?;
            Step::Format(Format::Jpeg {
                quality,
                background,
            })
        }
        "png" => {
            p.finish("none")?;
            Step::Format(Format::Png)
        }
        "webp" => {
            let q = p.take("q").map(quality).transpose()?;
            let lossless = p
                .take("lossless")
                .map(boolean)
                .transpose()?
                .unwrap_or(false);
            p.finish("q, lossless")?;
            let quality = match (lossless, q) {
                (true, Some(_)) => return Err(span.error("`q` or `lossless=true`, not both")),
                (true, None) => WebPQuality::Lossless,
                (false, q) => WebPQuality::Lossy(q.unwrap_or(DEFAULT_WEBP_QUALITY)),
            };
            Step::Format(Format::WebP { quality })
        }
        "gif" => {
            p.finish("none")?;
            Step::Format(Format::Gif)
        }
        _ => {
            return Err(op.error(
                "an operation (resize, crop, rotate, flip, watermark, grayscale, sepia, blur, \
                 sharpen) or a format (jpeg, png, webp, gif)",
            ));
        }
    };
    Ok(step)
}

fn dimension(span: Span<'_>) -> Result<u32, ParseError> {
    match span.text.parse::<u32>() {
        Ok(n) if (1..=MAX_DIMENSION).contains(&n) => Ok(n),
        _ => Err(span.error(format!(
            "a whole number of pixels from 1 to {MAX_DIMENSION}"
        ))),
    }
}

fn offset(span: Span<'_>) -> Result<u32, ParseError> {
    match span.text.parse::<u32>() {
        Ok(n) if n < MAX_DIMENSION => Ok(n),
        _ => Err(span.error(format!(
            "a whole number of pixels from 0 to {}",
            MAX_DIMENSION - 1
        ))),
    }
}

fn quality(span: Span<'_>) -> Result<u8, ParseError> {
    match span.text.parse::<u8>() {
        Ok(q) if (1..=100).contains(&q) => Ok(q),
        _ => Err(span.error("a quality from 1 to 100")),
    }
}

fn sigma(span: Span<'_>) -> Result<f32, ParseError> {
    match span.text.parse::<f32>() {
        Ok(s) if (0.1..=MAX_SIGMA).contains(&s) => Ok(s),
        _ => Err(span.error(format!("a sigma from 0.1 to {MAX_SIGMA}"))),
    }
}

fn fraction(span: Span<'_>, what: &str) -> Result<f32, ParseError> {
    match span.text.parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(span.error(what)),
    }
}

/// `24` or `24px` (pixels), or `5pct` (percent of the image's shorter side).
fn length(span: Span<'_>) -> Result<Length, ParseError> {
    let expected = "a length: pixels (`24`, `24px`) or percent of the shorter side (`5pct`)";
    if let Some(pct) = span.text.strip_suffix("pct") {
        return match pct.parse::<f32>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Length::Pct(p)),
            _ => Err(span.error(expected)),
        };
    }
    let px = span.text.strip_suffix("px").unwrap_or(span.text);
    match px.parse::<u32>() {
        Ok(n) if n <= MAX_DIMENSION => Ok(Length::Px(n)),
        _ => Err(span.error(expected)),
    }
}

fn rgb(span: Span<'_>) -> Result<Rgb, ParseError> {
    let hex = span.text.strip_prefix('#').unwrap_or(span.text);
    let bytes = (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| {
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
            [byte(0), byte(2), byte(4)]
        })
        .ok_or_else(|| span.error("a colour as six hex digits, such as `ff8800`"))?;
    Ok(Rgb(bytes))
}

fn anchor(span: Span<'_>) -> Result<Anchor, ParseError> {
    Anchor::ALL
        .into_iter()
        .find(|a| a.name() == span.text)
        .ok_or_else(|| {
            span.error("a position: top-left, top, top-right, left, center, right, bottom-left, bottom, bottom-right")
        })
}

fn boolean(span: Span<'_>) -> Result<bool, ParseError> {
    match span.text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(span.error("`true` or `false`")),
    }
}

/// Text travels percent-encoded (`%20` for a space, `%C3%A9` for `é`).
fn decode_text(span: Span<'_>) -> Result<String, ParseError> {
    let text = percent_decode_str(span.text)
        .decode_utf8()
        .map_err(|_| span.error("percent-encoded UTF-8 text"))?;
    if text.is_empty()
        || text.chars().count() > MAX_TEXT_CHARS
        || text.chars().any(char::is_control)
    {
        return Err(span.error(format!(
            "1 to {MAX_TEXT_CHARS} characters of text without control characters"
        )));
    }
    Ok(text.into_owned())
}

/// Characters a recipe value may hold as they are; everything else is `%XX`.
const TEXT_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'(')
    .remove(b')');

/// The inverse of the text decoding: what to put in a recipe for `text`.
pub fn encode_text(text: &str) -> String {
    utf8_percent_encode(text, TEXT_ESCAPES).to_string()
}
