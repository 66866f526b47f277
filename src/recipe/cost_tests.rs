use super::*;
use crate::recipe::{Presets, RecipeError};

fn cost(text: &str) -> Result<(), CostError> {
    Recipe::parse(text).expect("the recipe parses").check_cost()
}

/// Issue 13's slot hog: 4 outputs, each a forced 16384x16384 upscale and 13
/// blurs of sigma 100 (967 bytes, accepted by the parser alone).
fn slot_hog() -> String {
    let chain = format!(
        "resize,w=16384,h=16384,fit=fill,up=true{}",
        "/blur,sigma=100".repeat(13)
    );
    (0..4)
        .map(|i| format!("o{i}:{chain}/jpeg"))
        .collect::<Vec<_>>()
        .join("+")
}

#[test]
fn the_blur_chain_on_a_forced_upscale_is_refused_as_too_expensive() {
    let text = slot_hog();
    // Past the total operation count first.
    assert!(matches!(
        cost(&text),
        Err(CostError::TooManyOps { ops: 56, .. })
    ));
    // One output of it is still far past the work limit.
    let one = text.split('+').next().unwrap();
    let Err(CostError::TooMuchWork { work, max }) = cost(one) else {
        panic!("one output of the slot hog was accepted");
    };
    assert!(work > 100 * max, "{work} vs {max}");
}

#[test]
fn presets_refuse_too_expensive_recipes_with_a_stable_code() {
    let mut map = std::collections::BTreeMap::new();
    map.insert("small".to_owned(), Recipe::parse("resize,w=10").unwrap());
    let presets = Presets::new(map.clone(), "small".into()).unwrap();
    let err = presets.resolve(Some(&slot_hog()), None).unwrap_err();
    assert_eq!(err.code(), "recipe_too_expensive");
    assert!(matches!(err, RecipeError::TooExpensive(_)));

    // A configured preset that could never run is refused at start-up.
    let hog = slot_hog();
    map.insert("hog".to_owned(), Recipe::parse(&hog).unwrap());
    assert_eq!(
        Presets::new(map, "small".into()).unwrap_err().code(),
        "recipe_too_expensive"
    );
}

#[test]
fn eight_forced_full_size_upscales_are_too_much_work() {
    let many: Vec<String> = (0..8)
        .map(|i| format!("o{i}:resize,w=16384,h=16384,fit=cover,up=true/png"))
        .collect();
    assert!(matches!(
        cost(&many.join("+")),
        Err(CostError::TooMuchWork { .. })
    ));
}

#[test]
fn ordinary_recipes_cost_little() {
    for text in [
        // config.rs's BUILTIN_PRESETS.
        "thumb:resize,w=256,h=256,fit=cover/jpeg+web:resize,w=1280,h=1280/jpeg",
        "thumb:resize,w=256,h=256,fit=cover/jpeg",
        // What the tests and the README use.
        "resize,w=9000,up=true",
        "small:resize,w=100/png+big:resize,w=320",
        "resize,w=800/blur,sigma=100/sharpen,sigma=100,amount=2/webp",
        "resize,w=4000,h=3000,fit=fill,up=true/blur,sigma=12/sharpen,sigma=3/jpeg",
        // Without an upscale, a blur's size is unknown until the header is read.
        &format!("o:blur,sigma=100{}", "/blur,sigma=100".repeat(15)),
        // The limit is inclusive of a full recipe of modest steps.
        &(0..8)
            .map(|i| format!("o{i}:resize,w=2048,h=2048,fit=fill,up=true/grayscale/sepia/jpeg"))
            .collect::<Vec<_>>()
            .join("+"),
    ] {
        assert_eq!(cost(text), Ok(()), "{text}");
    }
}

#[test]
fn a_forced_upscale_costs_the_same_whatever_the_source() {
    let resize = Recipe::parse("resize,w=16384,h=16384,fit=fill,up=true").unwrap();
    let Op::Resize(r) = resize.outputs[0].ops[0] else {
        unreachable!()
    };
    assert_eq!(least_size((1, 1), &Op::Resize(r)), (16384, 16384));
    let shrink = Op::Resize(Resize {
        upscale: false,
        ..r
    });
    assert_eq!(least_size((5000, 5000), &shrink), (1, 1));
    assert_eq!(least_size((3, 7), &Op::Rotate(Rotation::R90)), (7, 3));
}

#[test]
fn blur_taps_follow_libblurs_kernel_size() {
    assert_eq!(blur_taps(0.1), 6);
    // libblur: ((1 - 0.8) / 0.3 + 1) * 2 + 1 = 4.33, odd 5, two passes.
    assert_eq!(blur_taps(1.0), 10);
    assert!((1300..1400).contains(&blur_taps(100.0)));
}

#[test]
fn looking_for_the_window_is_charged_face_more_than_smart() {
    let work = |r: &str| {
        let recipe = Recipe::parse(r).unwrap();
        op_work(&recipe.outputs[0].ops[0], 12_000_000, 65_536)
    };
    let centre = work("resize,w=256,h=256,fit=cover");
    let smart = work("resize,w=256,h=256,fit=cover,gravity=smart");
    let face = work("resize,w=256,h=256,fit=cover,gravity=face");
    assert_eq!(smart - centre, look_work(Gravity::Smart, 12_000_000));
    assert!(centre < smart && smart < face, "{centre} {smart} {face}");
    assert_eq!(
        work("crop,w=256,h=256,gravity=face") - work("crop,x=0,y=0,w=256,h=256"),
        look_work(Gravity::Face, 12_000_000)
    );
}
