//! What a recipe costs to run, in "work units": roughly one multiply-add on
//! one pixel. The same arithmetic serves twice: here, at parse time, on the
//! smallest images a recipe can possibly produce (so a recipe that no source
//! could make cheap is refused before anything is uploaded), and in
//! `pipeline::plan`, on the real sizes once the header is known.

use super::{Fit, Format, Gravity, MAX_OUTPUTS, Op, Output, Recipe, Resize, Rotation};

/// Most operations in all of a recipe's outputs together (each output may
/// have up to [`super::MAX_STEPS`]; together they may not reach
/// `MAX_OUTPUTS * MAX_STEPS`).
pub const MAX_TOTAL_OPS: usize = 32;
/// Most work one job may take, in work units (multiply-adds per pixel,
/// summed over every step of every output). From `bench/README.md` (one
/// core): `blur,sigma=2` on 12 MP is 3.1e8 units in ~31 ms, re-encoding a
/// 12 MP JPEG 1.9e8 in ~79 ms; so this is seconds of work, well inside a
/// job's deadline, while the default preset on 12 MP costs under 1% of it.
pub const MAX_WORK: u64 = 40_000_000_000;

/// Lanczos3 taps per pixel, horizontal and vertical passes together.
const RESIZE_WORK: u64 = 12;
/// Encoding one pixel (colour conversion, prediction, entropy coding).
const ENCODE_WORK: u64 = 16;

/// Longest side of the copy `gravity=smart` scores (`pipeline::smart`).
pub const SMART_SIDE: u32 = 256;
/// Longest side of the gray copy `gravity=face` searches (`pipeline::face`).
pub const FACE_SIDE: u32 = 640;
/// Shrinking the input for either: a box filter, a few operations a pixel.
const SHRINK_WORK: u64 = 4;
/// Scoring one pixel of the smart copy, and the window search.
const SMART_PIXEL_WORK: u64 = 60;
/// One face detection on a [`FACE_SIDE`] copy, whatever the source: 1e9
/// units is about 100 ms at bench/README.md's ~1e7 units a millisecond, a
/// deliberate overestimate until `bench/crops.sh` pins it down.
const FACE_WORK: u64 = 1_000_000_000;

/// Why a recipe was refused as too expensive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    #[error("the recipe has {ops} operations in all; the limit is {max}")]
    TooManyOps { ops: usize, max: usize },
    #[error(
        "the recipe needs at least {work} units of work (pixel operations); the limit is {max}"
    )]
    TooMuchWork { work: u64, max: u64 },
}

impl Recipe {
    /// Refuse a recipe that no source image could make cheap enough to run:
    /// too many operations, or too much work even on the smallest images its
    /// steps can produce (a forced upscale to 16384x16384 costs the same
    /// whatever the source). `pipeline::plan` checks the real cost later.
    pub fn check_cost(&self) -> Result<(), CostError> {
        debug_assert!(self.outputs.len() <= MAX_OUTPUTS);
        let ops: usize = self.outputs.iter().map(|o| o.ops.len()).sum();
        if ops > MAX_TOTAL_OPS {
            return Err(CostError::TooManyOps {
                ops,
                max: MAX_TOTAL_OPS,
            });
        }
        let work = self
            .outputs
            .iter()
            .map(least_work)
            .fold(0u64, u64::saturating_add);
        if work > MAX_WORK {
            return Err(CostError::TooMuchWork {
                work,
                max: MAX_WORK,
            });
        }
        Ok(())
    }
}

/// The work of `output` on the smallest image each step can yield, once
/// per width of its ladder.
fn least_work(output: &Output) -> u64 {
    let rungs = output.ladder.as_ref().map_or(1, |l| l.widths.len() as u64);
    least_work_once(output).saturating_mul(rungs)
}

fn least_work_once(output: &Output) -> u64 {
    let mut size = (1u32, 1u32);
    let mut work = 0u64;
    for op in &output.ops {
        let next = least_size(size, op);
        work = work.saturating_add(op_work(op, pixels(size), pixels(next)));
        size = next;
    }
    work.saturating_add(format_work(output.format, pixels(size)))
}

/// A lower bound on the size `op` makes of an image at least `size`: only
/// an upscale pins it, since without `up=true` a resize never grows.
fn least_size(size: (u32, u32), op: &Op) -> (u32, u32) {
    match op {
        Op::Resize(Resize {
            width,
            height,
            fit,
            upscale: true,
            ..
        }) => match (fit, width, height) {
            (Fit::Fill | Fit::Cover, Some(w), Some(h)) => (*w, *h),
            // One side is scaled to its box exactly, the other may be 1 px.
            (Fit::Inside, Some(_), Some(_)) => (1, 1),
            (_, Some(w), None) => (*w, 1),
            (_, None, Some(h)) => (1, *h),
            (_, None, None) => size,
        },
        Op::Rotate(Rotation::R90 | Rotation::R270) => (size.1, size.0),
        Op::Resize(_) | Op::Crop(_) => (1, 1),
        _ => size,
    }
}

fn pixels((w, h): (u32, u32)) -> u64 {
    u64::from(w) * u64::from(h)
}

/// The work of one step that turns `input` pixels into `output` pixels.
pub fn op_work(op: &Op, input: u64, output: u64) -> u64 {
    let gravity = match op {
        Op::Resize(r) => Some(r.gravity),
        Op::Crop(c) => c.gravity,
        _ => None,
    };
    let looking = gravity.map_or(0, |g| look_work(g, input));
    looking.saturating_add(pixel_work(op, input, output))
}

/// Finding where a `smart` or `face` window goes in an image of `input`
/// pixels: a shrink that reads every pixel, then bounded work on the copy
/// (a face search that finds nobody falls back to `smart`: both count).
pub fn look_work(gravity: Gravity, input: u64) -> u64 {
    let smart = SHRINK_WORK
        .saturating_mul(input)
        .saturating_add(SMART_PIXEL_WORK * u64::from(SMART_SIDE).pow(2));
    match gravity {
        Gravity::Anchor(_) => 0,
        Gravity::Smart => smart,
        Gravity::Face => smart
            .saturating_add(SHRINK_WORK.saturating_mul(input))
            .saturating_add(FACE_WORK),
    }
}

fn pixel_work(op: &Op, input: u64, output: u64) -> u64 {
    let per_pixel = match op {
        // A downscale's kernel spans more source pixels: count both sides.
        Op::Resize(_) => return RESIZE_WORK.saturating_mul(input.saturating_add(output)),
        Op::Blur { sigma } => blur_taps(*sigma),
        // The blur, then the mask.
        Op::Sharpen { sigma, .. } => blur_taps(*sigma) + 2,
        Op::Crop(_)
        | Op::Rotate(_)
        | Op::Flip(_)
        | Op::Watermark(_)
        | Op::Grayscale
        | Op::Sepia => 1,
    };
    per_pixel.saturating_mul(output)
}

/// The work of encoding an output of `pixels` pixels.
pub fn encode_work(pixels: u64) -> u64 {
    ENCODE_WORK.saturating_mul(pixels)
}

/// The work of encoding `pixels` pixels in `format` (`None`: the source's
/// format, never AVIF).
pub fn format_work(format: Option<Format>, pixels: u64) -> u64 {
    match format {
        Some(Format::Avif { speed, .. }) => avif_work(speed).saturating_mul(pixels),
        _ => encode_work(pixels),
    }
}

/// Work units per pixel of rav1e (one thread) at `speed` 1..=10. An
/// estimate, not yet calibrated (`bench/avif.sh` measures it): about 1 µs
/// a pixel at speed 6 is ~2500 units at `MAX_WORK`'s 0.4 ns per unit, and
/// the debug build's tests encode 0.1 MP in seconds; 1000 keeps a 12 MP
/// AVIF inside the budget. Slower speeds cost up to 12x (rav1e's presets).
fn avif_work(speed: u8) -> u64 {
    const PER_PIXEL: [u64; 10] = [
        AVIF_WORK_SPEED_6 * 12, // 1
        AVIF_WORK_SPEED_6 * 8,
        AVIF_WORK_SPEED_6 * 5,
        AVIF_WORK_SPEED_6 * 3,
        AVIF_WORK_SPEED_6 * 2, // 5
        AVIF_WORK_SPEED_6,
        AVIF_WORK_SPEED_6 * 3 / 4,
        AVIF_WORK_SPEED_6 / 2,
        AVIF_WORK_SPEED_6 / 2,
        AVIF_WORK_SPEED_6 / 3, // 10
    ];
    PER_PIXEL[usize::from(speed.clamp(1, 10)) - 1]
}

/// Work units per pixel of AVIF at the default speed, 6.
const AVIF_WORK_SPEED_6: u64 = 1_000;

/// Taps per pixel of a separable Gaussian: two passes of libblur's kernel
/// for `sigma` (about 6.7 sigma wide, at least 3).
fn blur_taps(sigma: f32) -> u64 {
    let kernel = (((f64::from(sigma) - 0.8) / 0.3 + 1.0) * 2.0 + 1.0).max(3.0);
    2 * (kernel.ceil() as u64 | 1)
}

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;
