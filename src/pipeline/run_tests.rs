//! A job's threads change how fast it runs, never what it makes.

use super::super::test_images::{ROCKET, rocket_420};
use super::super::{Limits, Rendition};
use super::{run_analysed, run_timed};
use crate::recipe::Recipe;

const CHELSEA: &[u8] = include_bytes!("../../tests/fixtures/chelsea.png");

#[test]
fn more_threads_make_the_same_renditions_and_analysis() {
    // A flip done in the DCT domain, the analysis decoded beside it.
    let whole = rocket_420(640, 416, 90);
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
        let names = |r: &[Rendition]| r.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
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
