//! Inputs and measures the pipeline's tests share.

use image::DynamicImage;

pub(crate) const ROCKET: &[u8] = include_bytes!("../../tests/fixtures/rocket.jpg");

/// rocket.jpg (640x427, 4:4:4) cut to `w` x `h` and written 4:2:0 at
/// `quality`: 640x416 is whole 16-pixel blocks both ways, the file every
/// DCT-domain path applies to; 640x424 has a partial bottom block row.
pub(crate) fn rocket_420(w: usize, h: usize, quality: i32) -> Vec<u8> {
    let rgb = image::load_from_memory(ROCKET).unwrap().to_rgb8();
    let cut = image::imageops::crop_imm(&rgb, 0, 0, w as u32, h as u32).to_image();
    let image = turbojpeg::Image {
        pixels: cut.as_raw().as_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, quality, turbojpeg::Subsamp::Sub2x2)
        .unwrap()
        .to_vec()
}

/// PSNR in dB of `a` against `b` (same size), over R, G and B; infinite
/// when they are equal.
pub(crate) fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = se / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// [`psnr`] of two encoded images.
pub(crate) fn psnr_of(a: &[u8], b: &[u8]) -> f64 {
    psnr(
        &image::load_from_memory(a).unwrap(),
        &image::load_from_memory(b).unwrap(),
    )
}
