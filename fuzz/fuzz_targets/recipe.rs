//! The recipe parser on arbitrary text: it must never panic, and whatever it
//! accepts must print (`Display`, the canonical form) to a recipe that
//! parses back to the same value and prints the same again.
//!
//! Found by it: the canonical form (defaults written out, text escaped) could
//! exceed `MAX_RECIPE_LEN` and then not parse
//! (regressions/recipe/canonical-longer-than-1024*); the parser now refuses
//! such recipes.
#![no_main]

use imgflow::recipe::{MAX_RECIPE_LEN, Recipe};
use libfuzzer_sys::fuzz_target;

fn check(input: &str) {
    let Ok(recipe) = Recipe::parse(input) else {
        return;
    };
    let canonical = recipe.to_string();
    assert!(
        canonical.len() <= MAX_RECIPE_LEN,
        "canonical form of {input:?} is {} bytes",
        canonical.len()
    );
    match Recipe::parse(&canonical) {
        Ok(again) => {
            assert_eq!(
                again, recipe,
                "canonical form {canonical:?} of {input:?} parses to a different recipe"
            );
            assert_eq!(
                again.to_string(),
                canonical,
                "canonical form of {input:?} is not stable"
            );
        }
        Err(e) => panic!("canonical form {canonical:?} of {input:?} does not parse: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(s) => check(s),
        // Invalid UTF-8 too, the way a lenient caller would pass it on.
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});
