//! The floor under `resize,w=WIDTH/jpeg,q=80` on a JPEG: libjpeg-turbo alone
//! decoding the file at the DCT scale imgflow picks (libvips's
//! shrink-on-load rule) and encoding an image of the output's size, with no
//! resize in between. Prints one JSON line like `bench_recipe`'s.
//!
//! ```sh
//! cargo run --release --example jpeg_floor -- FILE WIDTH ITERATIONS
//! ```
//!
//! Used by `bench/compare.py --floor` for the thumb800 cases.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, width, iterations] = args.as_slice() else {
        eprintln!("usage: jpeg_floor FILE WIDTH ITERATIONS");
        std::process::exit(1);
    };
    let bytes = std::fs::read(file).expect("read the file");
    let width: usize = width.parse().expect("WIDTH is a number");
    let iterations: usize = iterations.parse().expect("ITERATIONS is a number");
    let header = turbojpeg::read_header(&bytes).expect("a JPEG");
    let height = (header.height * width).div_ceil(header.width);
    // libvips's rule, as imgflow's plan applies it: 1/2, 1/4, 1/8 when the
    // resize shrinks at least 4, 8, 16 times.
    let shrink = header.width as f64 / width as f64;
    let eighths = match shrink {
        s if s >= 16.0 => 1,
        s if s >= 8.0 => 2,
        s if s >= 4.0 => 4,
        _ => 8,
    };
    let once = || {
        let mut decompressor = turbojpeg::Decompressor::new().unwrap();
        decompressor
            .set_scaling_factor(turbojpeg::ScalingFactor::new(eighths, 8))
            .unwrap();
        let scaled = header.scaled(decompressor.scaling_factor());
        let pitch = scaled.width * 3;
        let mut image = turbojpeg::Image {
            pixels: vec![0u8; pitch * scaled.height],
            width: scaled.width,
            pitch,
            height: scaled.height,
            format: turbojpeg::PixelFormat::RGB,
        };
        decompressor
            .decompress(&bytes, image.as_deref_mut())
            .unwrap();
        // The output's size, taken from the decoded pixels without a copy.
        let output = turbojpeg::Image {
            pixels: image.pixels.as_slice(),
            width: width.min(scaled.width),
            pitch,
            height: height.min(scaled.height),
            format: turbojpeg::PixelFormat::RGB,
        };
        turbojpeg::compress(output, 80, turbojpeg::Subsamp::Sub2x2)
            .unwrap()
            .len()
    };
    let out_bytes = once();
    let mut times: Vec<f64> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(once());
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "median_ms": times[times.len() / 2],
            "min_ms": times[0],
            "eighths": eighths,
            "bytes": out_bytes,
            "iterations": iterations,
        })
    );
}
