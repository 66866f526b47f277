//! Decode-with-limits on arbitrary bytes, through the whole pipeline
//! (`pipeline::run`): header probe, limits, libjpeg-turbo / `image` decode,
//! EXIF orientation, a resize and a PNG encode. Errors are fine; a panic, a
//! hang (libFuzzer's -timeout) or an allocation over -rss_limit_mb are not.
#![no_main]

use std::sync::LazyLock;

use imgflow::pipeline::{self, Limits};
use imgflow::recipe::Recipe;
use libfuzzer_sys::fuzz_target;

static RECIPE: LazyLock<Recipe> = LazyLock::new(|| Recipe::parse("resize,w=64/png").unwrap());

const LIMITS: Limits = Limits {
    max_bytes: 1 << 20,
    max_width: 2048,
    max_height: 2048,
    max_pixels: 4_000_000,
    threads: 1,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(renditions) = pipeline::run(data, &RECIPE, &LIMITS) {
        for r in &renditions {
            assert!(
                r.width >= 1 && r.height >= 1 && r.width <= 64,
                "rendition {}x{}",
                r.width,
                r.height
            );
            assert!(!r.bytes.is_empty());
        }
    }
});
