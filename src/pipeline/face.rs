//! Face detection for `gravity=face`: `rustface` (a Rust port of the
//! SeetaFace engine) with SeetaFace's frontal model.
//!
//! The model (`assets/seetaface/`, 1.2 MB, BSD-2-Clause) is built into the
//! binary with `include_bytes!`, so no file is opened at run time (a sandbox
//! child may not), and parsed on first use, once per process (a sandbox
//! child runs one job: once per job that asks for faces). Detection runs on
//! a gray copy at most [`FACE_SIDE`] pixels a side, so its work is bounded
//! whatever the source's size; faces under 20 px in that copy are missed.

use std::sync::OnceLock;

use image::DynamicImage;
use rustface::{ImageData, Model};

use crate::recipe::FACE_SIDE;

static MODEL_BYTES: &[u8] = include_bytes!("../../assets/seetaface/seeta_fd_frontal_v1.0.bin");

/// Detections scoring under this are dropped (rustface's example uses 2.0;
/// SeetaFace suggests 0.95, 2.8 or 4.5 as operating points).
pub const MIN_SCORE: f64 = 2.0;

/// A face, in the pixels of the image it was found in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub score: f64,
}

fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| rustface::read_model(MODEL_BYTES).ok())
        .as_ref()
}

/// Parse the built-in model now (a test or a benchmark measures the cost).
pub fn load_model() -> bool {
    model().is_some()
}

/// The faces in `image`, best first.
pub fn detect(image: &DynamicImage) -> Vec<FaceBox> {
    let Some(model) = model() else {
        return vec![];
    };
    let small = super::sample::shrink(image, FACE_SIDE);
    let (w, h) = small.dimensions();
    // The detector's window is 20 px at least; it panics on less.
    if w < 20 || h < 20 {
        return vec![];
    }
    let gray = DynamicImage::ImageRgba8(small).to_luma8();
    let mut detector = rustface::create_detector_with_model(model.clone());
    detector.set_min_face_size(20);
    detector.set_score_thresh(MIN_SCORE);
    detector.set_pyramid_scale_factor(0.8);
    detector.set_slide_window_step(4, 4);
    let (kx, ky) = (
        f64::from(image.width()) / f64::from(w),
        f64::from(image.height()) / f64::from(h),
    );
    let mut faces: Vec<FaceBox> = detector
        .detect(&ImageData::new(gray.as_raw(), w, h))
        .into_iter()
        .map(|f| {
            let b = f.bbox();
            FaceBox {
                x: f64::from(b.x()) * kx,
                y: f64::from(b.y()) * ky,
                width: f64::from(b.width()) * kx,
                height: f64::from(b.height()) * ky,
                score: f.score(),
            }
        })
        .collect();
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    faces
}

/// Where to centre a `(w, h)` window: on all the faces when their bounding
/// box fits in it, else on the best one; `None` without faces.
pub fn centre(faces: &[FaceBox], (w, h): (f64, f64)) -> Option<(f64, f64)> {
    let best = faces.first()?;
    let left = faces.iter().map(|f| f.x).fold(f64::INFINITY, f64::min);
    let top = faces.iter().map(|f| f.y).fold(f64::INFINITY, f64::min);
    let right = faces
        .iter()
        .map(|f| f.x + f.width)
        .fold(f64::NEG_INFINITY, f64::max);
    let bottom = faces
        .iter()
        .map(|f| f.y + f.height)
        .fold(f64::NEG_INFINITY, f64::max);
    Some(if right - left <= w && bottom - top <= h {
        ((left + right) / 2.0, (top + bottom) / 2.0)
    } else {
        (best.x + best.width / 2.0, best.y + best.height / 2.0)
    })
}
