//! The recipe parser. The grammar is small enough that splitting on its four
//! separators, while tracking byte offsets, gives exact error positions.

use super::{
    DEFAULT_JPEG_QUALITY, DEFAULT_OUTPUT_NAME, Fit, Format, MAX_DIMENSION, MAX_OUTPUTS,
    MAX_RECIPE_LEN, MAX_STEPS, Op, Output, Recipe, Resize,
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
    Ok(Recipe { outputs })
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
    let mut params = Params::parse(op.text, parts)?;
    let step = match op.text {
        "resize" => {
            let width = params.take("w").map(dimension).transpose()?;
            let height = params.take("h").map(dimension).transpose()?;
            let fit = match params.take("fit") {
                None => Fit::Inside,
                Some(v) => match v.text {
                    "inside" => Fit::Inside,
                    "cover" => Fit::Cover,
                    "fill" => Fit::Fill,
                    _ => return Err(v.error("`inside`, `cover` or `fill`")),
                },
            };
            let upscale = params.take("up").map(boolean).transpose()?.unwrap_or(false);
            params.finish("w, h, fit, up")?;
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
                upscale,
            }))
        }
        "jpeg" | "jpg" => {
            let quality = match params.take("q") {
                None => DEFAULT_JPEG_QUALITY,
                Some(v) => match v.text.parse::<u8>() {
                    Ok(q) if (1..=100).contains(&q) => q,
                    _ => return Err(v.error("a JPEG quality from 1 to 100")),
                },
            };
            params.finish("q")?;
            Step::Format(Format::Jpeg { quality })
        }
        "png" => {
            params.finish("none")?;
            Step::Format(Format::Png)
        }
        _ => return Err(op.error("an operation (`resize`) or a format (`jpeg`, `png`)")),
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

fn boolean(span: Span<'_>) -> Result<bool, ParseError> {
    match span.text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(span.error("`true` or `false`")),
    }
}
