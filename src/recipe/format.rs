//! Output formats: names, extensions, content types and the recipe syntax
//! of the format step; and which frames of an animated source an output keeps.

use std::fmt;

use super::{DEFAULT_JPEG_QUALITY, DEFAULT_WEBP_QUALITY, Format, WHITE, WebPQuality};

/// AVIF's default quality (ravif's 1-100 scale). Chosen from ravif's scale
/// (its own default is 80, near-lossless), not yet matched by measurement:
/// `bench/avif.sh` compares PSNR and bytes with libvips and JPEG.
pub const DEFAULT_AVIF_QUALITY: u8 = 60;
/// AVIF's default speed: rav1e's 1 (slowest) to 10; 6 costs a fraction of
/// the slowest settings' time for a few percent more bytes.
pub const DEFAULT_AVIF_SPEED: u8 = 6;

/// Which frames of an animated GIF or WebP an output keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frames {
    /// Every frame, with its delay, and the loop count, when the output
    /// format can animate (GIF, WebP); the first frame otherwise.
    #[default]
    All,
    /// `frames=first` on the format step: a still image of the first frame.
    First,
}

impl Frames {
    /// The format step's parameter in canonical form (empty for the default).
    pub fn param(self) -> &'static str {
        match self {
            Frames::All => "",
            Frames::First => ",frames=first",
        }
    }
}

impl Format {
    /// JPEG at the default quality on white.
    pub const JPEG: Format = Format::Jpeg {
        quality: DEFAULT_JPEG_QUALITY,
        background: WHITE,
        lossless: false,
    };

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "jpg",
            Format::Png => "png",
            Format::WebP { .. } => "webp",
            Format::Gif => "gif",
            Format::Avif { .. } => "avif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP { .. } => "image/webp",
            Format::Gif => "image/gif",
            Format::Avif { .. } => "image/avif",
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
            "avif" => Some(Format::Avif {
                quality: DEFAULT_AVIF_QUALITY,
                speed: DEFAULT_AVIF_SPEED,
            }),
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
            Format::Avif { .. } => "avif",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Jpeg { lossless: true, .. } => f.write_str("jpeg,lossless=true"),
            Format::Jpeg {
                quality,
                background,
                ..
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
            Format::Avif { quality, speed } => write!(f, "avif,q={quality},speed={speed}"),
        }
    }
}
