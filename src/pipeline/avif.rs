//! AVIF output: AV1 still images in HEIF, by `ravif` (rav1e, pure Rust).
//!
//! One thread, as every other step of a job: the worker runs one job per
//! core, and a rayon pool sized from the machine would read cgroup files,
//! which the sandbox child's seccomp filter forbids. AV1's search is costly
//! (`recipe::format_work` counts it), so the plan bounds what is asked.

use image::DynamicImage;

/// Encode at ravif's `quality` (1-100) and rav1e's `speed` (1-10). 8-bit
/// sRGB in, 4:4:4 YCbCr out (ravif's choice: AV1 at 4:2:0 saves little in
/// AVIF and blurs colour edges); alpha, when the image has it, is kept.
pub(super) fn encode(image: &DynamicImage, quality: u8, speed: u8) -> Result<Vec<u8>, String> {
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(speed)
        .with_num_threads(Some(1))
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean);
    let (w, h) = (image.width() as usize, image.height() as usize);
    let encoded = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        let pixels: Vec<ravif::RGBA8> = rgba
            .as_raw()
            .chunks_exact(4)
            .map(|p| ravif::RGBA8::new(p[0], p[1], p[2], p[3]))
            .collect();
        encoder.encode_rgba(ravif::Img::new(pixels.as_slice(), w, h))
    } else {
        let rgb = image.to_rgb8();
        let pixels: Vec<ravif::RGB8> = rgb
            .as_raw()
            .chunks_exact(3)
            .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
            .collect();
        encoder.encode_rgb(ravif::Img::new(pixels.as_slice(), w, h))
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| format!("ravif: {e}"))
}
