//! Colour management (issue 16) against LittleCMS: sources tagged Display
//! P3, Adobe RGB (1998) and a CMYK profile, made and converted to sRGB by
//! Pillow's `ImageCms` (tests/it/py/colour_sources.py), must come out of
//! our pipeline within mean ΔE2000 ≤ 1.0 and max ≤ 3.0 of that reference
//! (colour-science's CIE 2000, tests/it/py/delta_e.py). `icc=keep` outputs
//! carry the source's profile, byte for byte, and its unconverted pixels.
//! No AWS, no LocalStack.

use std::path::Path;

use crate::reference::{Scratch, render_one};
use crate::tools;

const SOURCES: &str = include_str!("py/colour_sources.py");
const DELTA_E: &str = include_str!("py/delta_e.py");

/// Make the tagged sources and LittleCMS's references in `scratch`.
fn sources(scratch: &Scratch) {
    let rocket = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rocket.jpg");
    let dir = scratch.path("");
    tools::run_python(SOURCES, &[rocket.to_str().unwrap(), dir.to_str().unwrap()]);
}

/// (mean, max) ΔE2000 between two sRGB images on disk.
fn delta_e(a: &Path, b: &Path) -> (f64, f64) {
    let out = tools::run_python(DELTA_E, &[a.to_str().unwrap(), b.to_str().unwrap()]);
    let mut numbers = out.split_whitespace().map(|n| n.parse::<f64>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

#[test]
fn tagged_sources_convert_to_srgb_as_littlecms_does() {
    let scratch = Scratch::new("colour");
    sources(&scratch);
    for (name, file) in [
        ("p3", "p3.png"),
        ("adobe", "adobe.png"),
        ("cmyk", "cmyk.jpg"),
    ] {
        let source = std::fs::read(scratch.path(file)).unwrap();
        let ours = render_one(&source, "png");
        let out = scratch.write(&format!("{name}.ours.png"), &ours.bytes);
        let (mean, max) = delta_e(&out, &scratch.path(&format!("{name}.ref.png")));
        eprintln!("{name}: ΔE2000 mean {mean:.3}, max {max:.3}");
        assert!(mean <= 1.0, "{name}: mean ΔE2000 {mean} > 1.0");
        assert!(max <= 3.0, "{name}: max ΔE2000 {max} > 3.0");
    }
}

#[test]
fn untagged_and_srgb_outputs_carry_no_profile() {
    let scratch = Scratch::new("colour-untagged");
    sources(&scratch);
    let source = std::fs::read(scratch.path("p3.png")).unwrap();
    for recipe in ["png", "jpeg", "webp"] {
        let out = render_one(&source, recipe);
        assert_eq!(
            icc_of(&scratch, &out.bytes),
            "",
            "{recipe} output is untagged sRGB"
        );
    }
}

#[test]
fn icc_keep_outputs_carry_the_source_profile_bytes_and_its_colours() {
    let scratch = Scratch::new("colour-keep");
    sources(&scratch);
    for name in ["p3", "adobe"] {
        let source = std::fs::read(scratch.path(&format!("{name}.png"))).unwrap();
        let profile = std::fs::read(scratch.path(&format!("{name}.icc"))).unwrap();
        let profile_hex: String = profile.iter().map(|b| format!("{b:02x}")).collect();
        for recipe in ["png,icc=keep", "jpeg,q=95,icc=keep", "webp,q=95,icc=keep"] {
            let out = render_one(&source, recipe);
            assert_eq!(
                icc_of(&scratch, &out.bytes),
                profile_hex,
                "{name} {recipe}: the output's profile is the source's"
            );
        }
        // Lossless: the pixels are the source's own, not converted.
        let kept = render_one(&source, "png,icc=keep");
        let stored = image::load_from_memory(&source).unwrap().to_rgb8();
        let kept = image::load_from_memory(&kept.bytes).unwrap().to_rgb8();
        assert_eq!(
            kept, stored,
            "{name}: icc=keep leaves the pixels unconverted"
        );
    }
}

/// The embedded ICC profile as Pillow reads it, hex ("" for none).
fn icc_of(scratch: &Scratch, bytes: &[u8]) -> String {
    let path = scratch.write(&format!("{}.bin", uuid::Uuid::new_v4()), bytes);
    tools::run_python(
        "import sys; from PIL import Image; \
         print((Image.open(sys.argv[1]).info.get('icc_profile') or b'').hex())",
        &[path.to_str().unwrap()],
    )
    .trim()
    .to_owned()
}
