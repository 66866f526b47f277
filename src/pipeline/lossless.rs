//! `jpeg,lossless=true`: jpegtran's lossless transforms. The output is the
//! source JPEG's own DCT coefficients, rotated or flipped in the frequency
//! domain by libjpeg-turbo's `tj3Transform`: nothing is decoded to pixels
//! or quantised again, so quality never drops, however many times a photo
//! is turned.
//!
//! - Steps: `rotate` and `flip` only, and the source must be a JPEG (any
//!   other case is `lossless_unavailable`, before any work).
//! - The EXIF orientation is applied too: the source's orientation and the
//!   recipe's steps compose into one of the eight symmetries of the
//!   rectangle, done in one transform.
//! - Edges: a JPEG is made of 8 or 16 pixel blocks; a partial block on the
//!   right or bottom edge cannot move to the top or left, so it is dropped,
//!   as `jpegtran -trim` does (at most 15 pixels of one side).
//! - Metadata: none is copied (no EXIF, no GPS, as every output), except
//!   the ICC profile, which the unchanged samples still need.

use image::metadata::Orientation;
use turbojpeg::{Transform, TransformOp};

use super::formats::SourceFormat;
use super::{PipelineError, Probe, Rendition};
use crate::recipe::{FlipAxis, Format, Op, Output, Rotation};

/// Whether `output` is to be made losslessly.
pub(super) fn wanted(output: &Output) -> bool {
    matches!(output.format, Some(Format::Jpeg { lossless: true, .. }))
}

fn unavailable(output: &Output, why: &str) -> PipelineError {
    PipelineError::LosslessUnavailable {
        output: output.name.clone(),
        reason: why.to_owned(),
    }
}

/// Refuse a lossless output this source or these steps cannot give.
pub(super) fn check(probe: &Probe, output: &Output) -> Result<(), PipelineError> {
    if probe.format != SourceFormat::Jpeg {
        return Err(unavailable(output, "the source is not a JPEG"));
    }
    if output.ladder.is_some() {
        return Err(unavailable(output, "a ladder resizes"));
    }
    if let Some(op) = output
        .ops
        .iter()
        .find(|op| !matches!(op, Op::Rotate(_) | Op::Flip(_)))
    {
        return Err(unavailable(
            output,
            &format!(
                "{} changes pixels; only rotate and flip are lossless",
                op.name()
            ),
        ));
    }
    Ok(())
}

/// Make `output` (already [`check`]ed) from `jpeg`'s coefficients.
pub(super) fn render(
    jpeg: &[u8],
    probe: &Probe,
    output: &Output,
) -> Result<Rendition, PipelineError> {
    let _span = tracing::info_span!("render", output = %output.name, lossless = true).entered();
    let header = turbojpeg::read_header(jpeg).map_err(|e| PipelineError::Corrupt(e.to_string()))?;
    if !matches!(
        header.colorspace,
        turbojpeg::Colorspace::YCbCr | turbojpeg::Colorspace::Gray
    ) {
        // CMYK and YCCK files need their Adobe marker, which is not copied.
        return Err(unavailable(output, "the JPEG is not YCbCr or gray"));
    }
    let mut transform = Transform::op(composed(probe.orientation, &output.ops));
    transform.trim = true;
    transform.copy_none = true;
    let turned = turbojpeg::transform(&transform, jpeg).map_err(|e| PipelineError::Encode {
        output: output.name.clone(),
        reason: e.to_string(),
    })?;
    let turned = with_icc(&turned, jpeg);
    let size =
        turbojpeg::read_header(&turned).map_err(|e| PipelineError::Corrupt(e.to_string()))?;
    Ok(Rendition {
        name: output.name.clone(),
        format: output.format.unwrap_or(Format::JPEG),
        width: size.width as u32,
        height: size.height as u32,
        bytes: turned,
        ladder: None,
    })
}

/// The one transform that sets an image with `orientation` upright and
/// then does `ops` (turns and flips; anything else counts as nothing).
pub(super) fn composed(orientation: Orientation, ops: &[Op]) -> TransformOp {
    ops.iter()
        .fold(Symmetry::upright(orientation), |done, op| {
            done.then(Symmetry::of(op))
        })
        .op()
}

/// One of the eight symmetries of a rectangle, as the 2x2 matrix that maps
/// a pixel's offset from the centre (x right, y down) to its new offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Symmetry([[i8; 2]; 2]);

impl Symmetry {
    const IDENTITY: Symmetry = Symmetry([[1, 0], [0, 1]]);
    const FLIP_H: Symmetry = Symmetry([[-1, 0], [0, 1]]);
    const FLIP_V: Symmetry = Symmetry([[1, 0], [0, -1]]);
    const CLOCKWISE: Symmetry = Symmetry([[0, -1], [1, 0]]);

    /// `self`, then `next`.
    fn then(self, next: Symmetry) -> Symmetry {
        let (a, b) = (next.0, self.0);
        let cell = |r: usize, c: usize| a[r][0] * b[0][c] + a[r][1] * b[1][c];
        Symmetry([[cell(0, 0), cell(0, 1)], [cell(1, 0), cell(1, 1)]])
    }

    fn turns(quarters: u8) -> Symmetry {
        (0..quarters).fold(Symmetry::IDENTITY, |s, _| s.then(Symmetry::CLOCKWISE))
    }

    /// What sets an image with this EXIF orientation upright (as
    /// `image::DynamicImage::apply_orientation` does).
    fn upright(orientation: Orientation) -> Symmetry {
        match orientation {
            Orientation::NoTransforms => Symmetry::IDENTITY,
            Orientation::Rotate90 => Symmetry::turns(1),
            Orientation::Rotate180 => Symmetry::turns(2),
            Orientation::Rotate270 => Symmetry::turns(3),
            Orientation::FlipHorizontal => Symmetry::FLIP_H,
            Orientation::FlipVertical => Symmetry::FLIP_V,
            Orientation::Rotate90FlipH => Symmetry::turns(1).then(Symmetry::FLIP_H),
            Orientation::Rotate270FlipH => Symmetry::turns(3).then(Symmetry::FLIP_H),
        }
    }

    /// A recipe step ([`check`] let only these through).
    fn of(op: &Op) -> Symmetry {
        match op {
            Op::Rotate(Rotation::R90) => Symmetry::turns(1),
            Op::Rotate(Rotation::R180) => Symmetry::turns(2),
            Op::Rotate(Rotation::R270) => Symmetry::turns(3),
            Op::Flip(FlipAxis::Horizontal) => Symmetry::FLIP_H,
            Op::Flip(FlipAxis::Vertical) => Symmetry::FLIP_V,
            _ => Symmetry::IDENTITY,
        }
    }

    fn op(self) -> TransformOp {
        match self.0 {
            [[1, 0], [0, 1]] => TransformOp::None,
            [[-1, 0], [0, 1]] => TransformOp::Hflip,
            [[1, 0], [0, -1]] => TransformOp::Vflip,
            [[-1, 0], [0, -1]] => TransformOp::Rot180,
            [[0, -1], [1, 0]] => TransformOp::Rot90,
            [[0, 1], [-1, 0]] => TransformOp::Rot270,
            [[0, 1], [1, 0]] => TransformOp::Transpose,
            _ => TransformOp::Transverse,
        }
    }
}

/// `turned` with `source`'s ICC profile segments (APP2 `ICC_PROFILE`)
/// after its JFIF header: the samples are the source's, so their profile
/// still describes them.
fn with_icc(turned: &[u8], source: &[u8]) -> Vec<u8> {
    let segments = icc_segments(source);
    if segments.is_empty() || turned.len() < 4 {
        return turned.to_vec();
    }
    // After SOI, and after an APP0 (JFIF must come first).
    let mut at = 2;
    if turned[2..4] == [0xFF, 0xE0] && turned.len() >= 6 {
        at = 4 + usize::from(u16::from_be_bytes([turned[4], turned[5]]));
    }
    let at = at.min(turned.len());
    let mut out =
        Vec::with_capacity(turned.len() + segments.iter().map(|s| s.len()).sum::<usize>());
    out.extend_from_slice(&turned[..at]);
    segments.iter().for_each(|s| out.extend_from_slice(s));
    out.extend_from_slice(&turned[at..]);
    out
}

/// The whole APP2 `ICC_PROFILE` segments (marker included) before the
/// first scan, in order.
fn icc_segments(jpeg: &[u8]) -> Vec<&[u8]> {
    let mut segments = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let marker = jpeg[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let Some(segment) = jpeg.get(at..at + 2 + len).filter(|_| len >= 2) else {
            break;
        };
        if marker == 0xE2 && segment[4..].starts_with(b"ICC_PROFILE\0") {
            segments.push(segment);
        }
        at += 2 + len;
    }
    segments
}

#[cfg(test)]
#[path = "lossless_tests.rs"]
mod tests;
