//! Fast paths for the commonest single-output recipes on a JPEG, chosen
//! after the plan (so every limit is already checked) and before decoding:
//!
//! - **planar**: JPEG in, JPEG out, every step a resize (shrunk on load as
//!   the general path does), flip, rotation, blur or grayscale (or none: a
//!   re-encode): the file's Y, Cb and Cr planes are
//!   worked on and encoded as they are, skipping chroma upsampling and two
//!   colour conversions ([`planar`]);
//! - **region**: the first step is a crop: only the rows and columns it
//!   keeps are decoded, and decoding stops at its last row ([`region`]);
//! - otherwise the general path, whose single output owns the decoded
//!   image so that flips, sepia and watermarks change it in place
//!   ([`inplace`], through [`apply`]).
//!
//! Each path gives the same image as the general one: exactly for
//! geometry, within JPEG's rounding for the planar blur and grayscale
//! (`src/pipeline/fast/tests.rs` checks both).

mod inplace;
mod planar;
mod quant;
mod region;
#[cfg(test)]
mod tests;
mod transcode;
mod turn;

use std::borrow::Cow;
use std::time::Instant;

use image::DynamicImage;
use image::metadata::Orientation;

use super::analysis::SAMPLE_SIDE;
use super::formats::SourceFormat;
use super::{
    Colour, Limits, Made, PipelineError, Plan, Probe, Rendition, Source, StageTimes,
    default_format, guard, ops,
};
use crate::recipe::{Format, Op, Output, Recipe, Rotation};

/// One step of an output on the image so far: in place when the pipeline
/// owns the image and the step allows it, else [`ops::apply`].
pub(super) fn apply(
    image: Cow<'_, DynamicImage>,
    nominal: (u32, u32),
    op: &Op,
) -> Result<DynamicImage, PipelineError> {
    match image {
        Cow::Owned(image) => match inplace::apply(image, op) {
            Ok(done) => Ok(done),
            Err(image) => ops::apply(&image, nominal, op),
        },
        Cow::Borrowed(image) => ops::apply(image, nominal, op),
    }
}

/// What a fast path decoded.
pub(super) enum Decoded {
    /// The planes of the image (shrunk on load if the output starts by
    /// shrinking), for an output that stays planar, and its full size.
    Planar(planar::Yuv, (u32, u32)),
    /// The first step's crop, already applied: the output's other steps
    /// are left.
    Region(DynamicImage),
    /// Nothing decoded: flips, turns and the re-encode done on the file's
    /// DCT coefficients ([`transcode`]); the output's size.
    Transcode(transcode::Transcode, (u32, u32)),
}

/// Decode for a fast path, or `None` when none applies to this recipe and
/// file (the caller then decodes the general way).
///
/// The choice depends on the file and the recipe only, never on threads or
/// on whether the source is analysed: the same job always makes the same
/// bytes.
pub(super) fn decode(
    bytes: &[u8],
    probe: &Probe,
    plan: &Plan,
    recipe: &Recipe,
) -> Option<Result<Decoded, PipelineError>> {
    let [output] = recipe.outputs.as_slice() else {
        return None;
    };
    if probe.format != SourceFormat::Jpeg
        || !probe.scalable
        || probe.orientation != Orientation::NoTransforms
    {
        return None;
    }
    let corrupt = |e: String| PipelineError::Corrupt(e);
    let scans = guard::MAX_JPEG_SCANS as u32;
    let quality = jpeg_quality(output, probe);
    if let Some(quality) = quality
        && plan.eighths == 8
        && let Some(job) = transcode::plan(bytes, &output.ops, quality)
    {
        let (w, h) = probe.upright();
        let turned = output
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Rotate(Rotation::R90 | Rotation::R270)))
            .count();
        let size = if turned % 2 == 1 { (h, w) } else { (w, h) };
        return Some(Ok(Decoded::Transcode(job, size)));
    }
    if quality.is_some() && stays_planar(bytes, plan, output) {
        return Some(
            planar::decode(bytes, scans, plan.eighths)
                .map(|yuv| Decoded::Planar(yuv, probe.upright()))
                .map_err(corrupt),
        );
    }
    if plan.eighths != 8 {
        return None;
    }
    // A truncated file is refused whole, as the general path does, even
    // when the crop lies in the part that is there.
    if let Some(Op::Crop(c)) = output.ops.first()
        && super::decode::has_jpeg_end(bytes)
    {
        let (w, h) = match ops::cropped_size((probe.width, probe.height), c) {
            Ok(size) => size,
            Err(e) => return Some(Err(e)),
        };
        return Some(
            region::decode(bytes, (c.x, c.y, w, h), scans)
                .map_err(corrupt)
                .and_then(|r| crop_region(r, c.x, (w, h)))
                .map(Decoded::Region),
        );
    }
    None
}

/// The region as an image, its columns left of the crop (up to one iMCU,
/// decoded for alignment) dropped.
fn crop_region(
    r: region::Region,
    x: u32,
    (w, h): (u32, u32),
) -> Result<DynamicImage, PipelineError> {
    let image = if r.gray {
        image::GrayImage::from_raw(r.width, r.height, r.pixels).map(DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(r.width, r.height, r.pixels).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| PipelineError::Corrupt("decoded region of the wrong size".into()))?;
    Ok(if r.left == x && r.width == w {
        image
    } else {
        image.crop_imm(x - r.left, 0, w, h)
    })
}

/// The JPEG quality of an output written as JPEG.
fn jpeg_quality(output: &Output, probe: &Probe) -> Option<u8> {
    match output
        .format
        .unwrap_or_else(|| default_format(probe.format))
    {
        Format::Jpeg { quality, .. } => Some(quality),
        _ => None,
    }
}

/// Whether every step of `output` can run on the planes of this file: a
/// YCbCr 4:2:0 or gray JPEG (what the RGB path writes too), each step
/// one [`planar::supports`] at the size it sees.
fn stays_planar(bytes: &[u8], plan: &Plan, output: &Output) -> bool {
    let Ok(header) = turbojpeg::read_header(bytes) else {
        return false;
    };
    let subsamp = header.subsamp;
    let planar_colours = matches!(
        (header.colorspace, subsamp),
        (turbojpeg::Colorspace::YCbCr, turbojpeg::Subsamp::Sub2x2)
            | (turbojpeg::Colorspace::Gray, turbojpeg::Subsamp::Gray)
    );
    let full = (header.width as u32, header.height as u32);
    let mut size = (plan.decoded.0 as usize, plan.decoded.1 as usize);
    planar_colours
        && output.ops.iter().enumerate().all(|(step, op)| {
            // The first step sees the full-size geometry even if decoding was scaled.
            let nominal = if step == 0 {
                full
            } else {
                (size.0 as u32, size.1 as u32)
            };
            let ok = planar::supports(op, size, nominal, subsamp);
            size = match op {
                Op::Rotate(Rotation::R90 | Rotation::R270) => (size.1, size.0),
                Op::Resize(r) => {
                    let (w, h) = ops::target_size(nominal, r);
                    (w as usize, h as usize)
                }
                _ => size,
            };
            ok
        })
}

impl Decoded {
    /// A copy of the source at most [`SAMPLE_SIDE`] pixels on its longer
    /// side, for the analysis, when this decode can make one without
    /// decoding again: the planes can, a region cannot.
    pub(super) fn sample(&self, probe: &Probe) -> Option<Source> {
        match self {
            Decoded::Planar(yuv, full_size) => Some(Source {
                image: planar::sample(yuv, SAMPLE_SIDE),
                native: None,
                colour: Colour::Untagged,
                format: probe.format,
                full_size: *full_size,
            }),
            Decoded::Region(_) | Decoded::Transcode(..) => None,
        }
    }

    /// Whether [`render`](Self::render) makes the analysis's small copy
    /// on its way (the DCT-domain path sees every block's DC value).
    pub(super) fn samples_while_rendering(&self) -> bool {
        matches!(self, Decoded::Transcode(..))
    }

    /// Make the recipe's single output from what was decoded, and the
    /// analysis's small copy if it came for free (see
    /// [`samples_while_rendering`](Self::samples_while_rendering)).
    pub(super) fn render(
        self,
        probe: &Probe,
        output: &Output,
        times: &mut StageTimes,
    ) -> Result<(Rendition, Option<Source>), PipelineError> {
        let format = probe.format;
        let rendition = match self {
            Decoded::Region(image) => {
                let rest = Output {
                    ops: output.ops[1..].to_vec(),
                    ..output.clone()
                };
                let made = Made {
                    format,
                    full_size: (image.width(), image.height()),
                    icc: None,
                    ladder: None,
                };
                super::render_image(Cow::Owned(image), made, &rest, times)
            }
            Decoded::Planar(yuv, full_size) => render_planar(yuv, format, full_size, output, times),
            Decoded::Transcode(job, size) => {
                let _output = tracing::info_span!("render", output = %output.name).entered();
                let format = output.format.unwrap_or_else(|| default_format(format));
                let scans = guard::MAX_JPEG_SCANS as u32;
                let rendition =
                    super::encode::encoded(output, format, size, None, times, || job.run(scans))?;
                let small = transcode::dc_image(&job.take_dc(), &job.dc_steps(), job.op());
                let small = small.map(|image| Source {
                    image,
                    native: None,
                    colour: Colour::Untagged,
                    format: probe.format,
                    full_size: probe.upright(),
                });
                return Ok((rendition, small));
            }
        };
        rendition.map(|rendition| (rendition, None))
    }
}

fn render_planar(
    mut yuv: planar::Yuv,
    source: SourceFormat,
    full_size: (u32, u32),
    output: &Output,
    times: &mut StageTimes,
) -> Result<Rendition, PipelineError> {
    let _output = tracing::info_span!("render", output = %output.name).entered();
    let started = Instant::now();
    for (i, op) in output.ops.iter().enumerate() {
        let _op = tracing::info_span!("operation", otel.name = op.name(), step = %op).entered();
        let nominal = if i == 0 {
            full_size
        } else {
            (yuv.width as u32, yuv.height as u32)
        };
        yuv = planar::apply(yuv, op, nominal).map_err(|reason| PipelineError::Operation {
            op: op.name(),
            reason,
        })?;
    }
    times.process += started.elapsed();
    let format = output.format.unwrap_or_else(|| default_format(source));
    let Format::Jpeg { quality, .. } = format else {
        unreachable!("decode chose the planar path for JPEG outputs only");
    };
    let size = (yuv.width as u32, yuv.height as u32);
    super::encode::encoded(output, format, size, None, times, || {
        planar::encode(&yuv, quality)
    })
}

/// The small copy of a source for the analysis when the fast path's
/// decode did not make one: a 1/8-scale decode.
pub(super) fn analysis_decode(
    bytes: &[u8],
    probe: &Probe,
    limits: &Limits,
) -> Result<Source, PipelineError> {
    let (w, h) = (probe.width.div_ceil(8), probe.height.div_ceil(8));
    super::decode_at(bytes, probe, (1, (w, h)), limits, false)
}

/// Whether a JPEG's colours need the general path: an ICC profile (APP2)
/// to convert from, or an Adobe (APP14) marker, as CMYK files carry. Only
/// the markers before the first scan are read.
pub(super) fn needs_colour(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let body = &bytes[(at + 4).min(bytes.len())..(at + 2 + len).min(bytes.len())];
        match marker {
            0xE2 if body.starts_with(b"ICC_PROFILE\0") => return true,
            0xEE if body.starts_with(b"Adobe") => return true,
            _ => {}
        }
        if len < 2 {
            return true;
        }
        at += 2 + len;
    }
    // Not a marker where one should be: let the general path judge it.
    true
}
