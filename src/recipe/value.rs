//! The recipe's values (numbers, colours, anchors, text) and the spans
//! that let every error name its column.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::{Anchor, Length, MAX_DIMENSION, MAX_SIGMA, MAX_TEXT_CHARS, Rgb};

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
pub(super) struct Span<'a> {
    pub text: &'a str,
    pub at: usize,
}

impl<'a> Span<'a> {
    pub fn split(self, sep: char) -> impl Iterator<Item = Span<'a>> {
        let mut at = self.at;
        self.text.split(sep).map(move |text| {
            let span = Span { text, at };
            at += text.len() + 1;
            span
        })
    }

    /// As [`Span::split`], at any of `seps`.
    pub fn split_any(self, seps: &'a [char]) -> impl Iterator<Item = Span<'a>> {
        let mut at = self.at;
        self.text.split(seps).map(move |text| {
            let span = Span { text, at };
            at += text.len() + 1;
            span
        })
    }

    pub fn split_once(self, sep: char) -> Option<(Span<'a>, Span<'a>)> {
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

    pub fn error(self, expected: impl Into<String>) -> ParseError {
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

pub(super) fn dimension(span: Span<'_>) -> Result<u32, ParseError> {
    match span.text.parse::<u32>() {
        Ok(n) if (1..=MAX_DIMENSION).contains(&n) => Ok(n),
        _ => Err(span.error(format!(
            "a whole number of pixels from 1 to {MAX_DIMENSION}"
        ))),
    }
}

pub(super) fn offset(span: Span<'_>) -> Result<u32, ParseError> {
    match span.text.parse::<u32>() {
        Ok(n) if n < MAX_DIMENSION => Ok(n),
        _ => Err(span.error(format!(
            "a whole number of pixels from 0 to {}",
            MAX_DIMENSION - 1
        ))),
    }
}

pub(super) fn quality(span: Span<'_>) -> Result<u8, ParseError> {
    match span.text.parse::<u8>() {
        Ok(q) if (1..=100).contains(&q) => Ok(q),
        _ => Err(span.error("a quality from 1 to 100")),
    }
}

pub(super) fn sigma(span: Span<'_>) -> Result<f32, ParseError> {
    match span.text.parse::<f32>() {
        Ok(s) if (0.1..=MAX_SIGMA).contains(&s) => Ok(s),
        _ => Err(span.error(format!("a sigma from 0.1 to {MAX_SIGMA}"))),
    }
}

pub(super) fn fraction(span: Span<'_>, what: &str) -> Result<f32, ParseError> {
    match span.text.parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(span.error(what)),
    }
}

/// `24` or `24px` (pixels), or `5pct` (percent of the image's shorter side).
pub(super) fn length(span: Span<'_>) -> Result<Length, ParseError> {
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

pub(super) fn rgb(span: Span<'_>) -> Result<Rgb, ParseError> {
    let hex = span.text.strip_prefix('#').unwrap_or(span.text);
    let bytes = (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| {
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
            [byte(0), byte(2), byte(4)]
        })
        .ok_or_else(|| span.error("a colour as six hex digits, such as `ff8800`"))?;
    Ok(Rgb(bytes))
}

pub(super) fn anchor(span: Span<'_>) -> Result<Anchor, ParseError> {
    Anchor::ALL
        .into_iter()
        .find(|a| a.name() == span.text)
        .ok_or_else(|| {
            span.error("a position: top-left, top, top-right, left, center, right, bottom-left, bottom, bottom-right")
        })
}

pub(super) fn boolean(span: Span<'_>) -> Result<bool, ParseError> {
    match span.text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(span.error("`true` or `false`")),
    }
}

/// Text travels percent-encoded (`%20` for a space, `%C3%A9` for `é`).
pub(super) fn decode_text(span: Span<'_>) -> Result<String, ParseError> {
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
