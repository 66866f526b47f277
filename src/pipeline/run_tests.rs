//! A job's threads change how fast it runs, never what it makes.

use super::{Limits, run_analysed, run_timed};
use crate::recipe::Recipe;

const ROCKET: &[u8] = include_bytes!("../../tests/fixtures/rocket.jpg");
const CHELSEA: &[u8] = include_bytes!("../../tests/fixtures/chelsea.png");

/// rocket.jpg cut to whole 16-pixel blocks and written 4:2:0: the file a
/// flip re-encodes in the DCT domain, with the analysis decoded beside it.
fn whole_blocks() -> Vec<u8> {
    let rgb = image::load_from_memory(ROCKET).unwrap().to_rgb8();
    let cut = image::imageops::crop_imm(&rgb, 0, 0, 640, 416).to_image();
    let image = turbojpeg::Image {
        pixels: cut.as_raw().as_slice(),
        width: 640,
        pitch: 640 * 3,
        height: 416,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2)
        .unwrap()
        .to_vec()
}

#[test]
fn more_threads_make_the_same_renditions_and_analysis() {
    let whole = whole_blocks();
    let one = Limits::default();
    let three = Limits {
        threads: 3,
        ..Limits::default()
    };
    for (input, recipe) in [
        // Several outputs, dealt to threads and put back in order.
        (
            ROCKET,
            "thumb:resize,w=100,h=100,fit=cover/jpeg+web:resize,w=320/webp+g:grayscale/png+s:sepia/jpeg",
        ),
        (CHELSEA, "a:resize,w=64/png+b:blur,sigma=1/jpeg"),
        // A crop's region decode beside the analysis's own decode.
        (ROCKET, "crop,x=10,y=20,w=100,h=50/jpeg"),
        // One output on the general path.
        (CHELSEA, "sepia/jpeg"),
        // A flip in the DCT domain.
        (&whole, "flip,dir=h/jpeg,q=80"),
    ] {
        let recipe = Recipe::parse(recipe).unwrap();
        let (a, _, analysis_a) = run_analysed(input, &recipe, &one).unwrap();
        let (b, _, analysis_b) = run_analysed(input, &recipe, &three).unwrap();
        assert_eq!(analysis_a, analysis_b, "{recipe}");
        let names = |r: &[super::Rendition]| r.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b), "{recipe}: recipe order");
        for (x, y) in a.iter().zip(&b) {
            assert!(x.bytes == y.bytes, "{recipe}: {} differs", x.name);
        }
        // Without the analysis, the same renditions again.
        let (c, _) = run_timed(input, &recipe, &three).unwrap();
        assert!(
            a.iter().zip(&c).all(|(x, y)| x.bytes == y.bytes),
            "{recipe}"
        );
    }
}
