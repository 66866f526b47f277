//! The recipe parser. The grammar is small enough that splitting on its four
//! separators, while tracking byte offsets, gives exact error positions.

use super::ladder::{Ladder, check_names};
use super::value::{
    ParseError, Span, anchor, boolean, decode_text, dimension, fraction, gravity, length, offset,
    quality, rgb, sigma,
};
use super::{
    Anchor, Crop, DEFAULT_AVIF_QUALITY, DEFAULT_AVIF_SPEED, DEFAULT_JPEG_QUALITY,
    DEFAULT_OUTPUT_NAME, DEFAULT_WEBP_QUALITY, Fit, FlipAxis, Format, Frames, Icc, Length,
    MAX_OUTPUTS, MAX_RECIPE_LEN, MAX_STEPS, Op, Output, Recipe, Resize, Rotation, WHITE, Watermark,
    WebPQuality,
};

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
    if let Some(name) = check_names(&outputs) {
        let span = whole
            .split('+')
            .find(|s| s.text.starts_with(&format!("{name}:")));
        return Err(span.unwrap_or(whole).error(format!(
            "an output name unlike a ladder's rungs (`{name}` would collide with one)"
        )));
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
    let mut frames = Frames::All;
    let mut icc = Icc::Srgb;
    let mut ladder = None;
    for (i, step) in chain.split('/').enumerate() {
        if i == MAX_STEPS {
            return Err(step.error(format!("at most {MAX_STEPS} steps in one output")));
        }
        if let Some(f) = format {
            return Err(step.error(format!("nothing after the output format `{f}`")));
        }
        match parse_step(step)? {
            Step::Op(op) => ops.push(op),
            Step::Format(f, keep, i) => (format, frames, icc) = (Some(f), keep, i),
            Step::Ladder(l) if i == 0 => ladder = Some(l),
            Step::Ladder(_) => return Err(step.error("`ladder` only as the first step")),
        }
    }
    Ok(Output {
        name,
        ops,
        format,
        frames,
        icc,
        ladder,
    })
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
    /// The format, its `frames=` and its `icc=`.
    Format(Format, Frames, Icc),
    Ladder(Ladder),
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
    // `;` may stand for `,`: clients such as the AWS CLI's `--metadata`
    // shorthand split values at commas.
    let mut parts = span.split_any(&[',', ';']);
    let op = parts.next().unwrap_or(span);
    let mut p = Params::parse(op.text, parts)?;
    // Any format step may keep only the first frame of an animation.
    let frames = match p.take("frames") {
        None => None,
        Some(v) if v.text == "first" => Some(Frames::First),
        Some(v) if v.text == "all" => Some(Frames::All),
        Some(v) => return Err(v.error("`frames=first` or `frames=all`")),
    };
    // JPEG, PNG and WebP can carry the source's profile.
    let carries_icc = matches!(op.text, "jpeg" | "jpg" | "png" | "webp");
    let icc = match carries_icc.then(|| p.take("icc")).flatten() {
        None => Icc::Srgb,
        Some(v) if v.text == "keep" => Icc::Keep,
        Some(v) if v.text == "srgb" => Icc::Srgb,
        Some(v) => return Err(v.error("`keep` or `srgb`")),
    };
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
                .map(gravity)
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
            let gravity = p.take("gravity").map(gravity).transpose()?;
            fn need<'a>(
                p: &mut Params<'a>,
                key: &str,
                span: Span<'_>,
            ) -> Result<Span<'a>, ParseError> {
                p.take(key).ok_or_else(|| {
                    span.error("`crop` with `x`, `y`, `w` and `h`, or `w`, `h` and `gravity`")
                })
            }
            let (x, y) = match gravity {
                None => (
                    offset(need(&mut p, "x", span)?)?,
                    offset(need(&mut p, "y", span)?)?,
                ),
                Some(_) => (0, 0),
            };
            let (w, h) = (need(&mut p, "w", span)?, need(&mut p, "h", span)?);
            let crop = Crop {
                x,
                y,
                width: dimension(w)?,
                height: dimension(h)?,
                gravity,
            };
            p.finish(if gravity.is_some() {
                "w, h, gravity (which places the window: no x or y)"
            } else {
                "x, y, w, h, gravity"
            })?;
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
            let q = p.take("q").map(quality).transpose()?;
            let bg = p.take("bg").map(rgb).transpose()?;
            let lossless = p
                .take("lossless")
                .map(boolean)
                .transpose()?
                .unwrap_or(false);
            p.finish("q, bg, lossless, icc, frames")?;
            if lossless && (q.is_some() || bg.is_some()) {
                // The source's own quantisation and pixels are kept.
                return Err(span.error("`lossless=true` alone: no `q` or `bg`"));
            }
            Step::Format(
                Format::Jpeg {
                    quality: q.unwrap_or(DEFAULT_JPEG_QUALITY),
                    background: bg.unwrap_or(WHITE),
                    lossless,
                },
                Frames::All,
                icc,
            )
        }
        "png" => {
            p.finish("icc, frames")?;
            Step::Format(Format::Png, Frames::All, icc)
        }
        "webp" => {
            let q = p.take("q").map(quality).transpose()?;
            let lossless = p
                .take("lossless")
                .map(boolean)
                .transpose()?
                .unwrap_or(false);
            p.finish("q, lossless, icc, frames")?;
            let quality = match (lossless, q) {
                (true, Some(_)) => return Err(span.error("`q` or `lossless=true`, not both")),
                (true, None) => WebPQuality::Lossless,
                (false, q) => WebPQuality::Lossy(q.unwrap_or(DEFAULT_WEBP_QUALITY)),
            };
            Step::Format(Format::WebP { quality }, Frames::All, icc)
        }
        "gif" => {
            p.finish("frames")?;
            Step::Format(Format::Gif, Frames::All, icc)
        }
        "avif" => {
            let quality = p.take("q").map(quality).transpose()?;
            let speed = match p.take("speed") {
                None => DEFAULT_AVIF_SPEED,
                Some(v) => match v.text.parse::<u8>() {
                    Ok(s) if (1..=10).contains(&s) => s,
                    _ => return Err(v.error("a speed from 1 (slowest, smallest) to 10")),
                },
            };
            p.finish("q, speed, frames")?;
            let quality = quality.unwrap_or(DEFAULT_AVIF_QUALITY);
            Step::Format(Format::Avif { quality, speed }, Frames::All, icc)
        }
        "ladder" => {
            let widths = p.take("w");
            p.finish("w")?;
            Step::Ladder(Ladder::parse(span, widths)?)
        }
        _ => {
            return Err(op.error(
                "an operation (resize, crop, rotate, flip, watermark, grayscale, sepia, blur, \
                 sharpen, ladder) or a format (jpeg, png, webp, gif, avif)",
            ));
        }
    };
    match (step, frames) {
        (Step::Format(f, _, icc), Some(keep)) => Ok(Step::Format(f, keep, icc)),
        (step, None) => Ok(step),
        (_, Some(_)) => Err(span.error("`frames=` only on a format step (`webp,frames=first`)")),
    }
}
