use super::*;

fn resize(width: Option<u32>, height: Option<u32>, fit: Fit) -> Op {
    Op::Resize(Resize {
        width,
        height,
        fit,
        gravity: Anchor::Center,
        upscale: false,
    })
}

#[test]
fn a_single_unnamed_output_is_called_main() {
    let recipe = Recipe::parse("resize,w=800").unwrap();
    assert_eq!(
        recipe.outputs,
        vec![Output {
            name: "main".into(),
            ops: vec![resize(Some(800), None, Fit::Inside)],
            format: None,
        }]
    );
}

#[test]
fn several_named_outputs_each_with_a_format() {
    let recipe =
        Recipe::parse("thumb:resize,w=200,h=200,fit=cover/jpeg,q=70+big:resize,h=1200/png")
            .unwrap();
    assert_eq!(recipe.outputs.len(), 2);
    assert_eq!(recipe.outputs[0].name, "thumb");
    assert_eq!(
        recipe.outputs[0].ops,
        vec![resize(Some(200), Some(200), Fit::Cover)]
    );
    assert_eq!(
        recipe.outputs[0].format,
        Some(Format::Jpeg {
            quality: 70,
            background: WHITE
        })
    );
    assert_eq!(recipe.outputs[1].format, Some(Format::Png));
}

#[test]
fn the_canonical_form_parses_back_to_the_same_recipe() {
    for text in [
        "resize,w=800",
        "a:resize,h=10,up=true/jpg+b:resize,w=5,h=6,fit=fill/png",
        "x:jpeg",
    ] {
        let recipe = Recipe::parse(text).unwrap();
        let canonical = recipe.to_string();
        assert_eq!(Recipe::parse(&canonical).unwrap(), recipe, "{canonical}");
    }
}

#[test]
fn errors_name_the_column_and_what_was_expected() {
    let err = Recipe::parse("thumb:resize,w=abc").unwrap_err();
    assert_eq!(err.column, 16);
    assert!(err.expected.contains("whole number"), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid recipe at column 16: expected a whole number of pixels from 1 to 16384, found \"abc\""
    );

    let err = Recipe::parse("resize,w=10/blurr").unwrap_err();
    assert_eq!(err.column, 13);
    assert!(err.expected.contains("an operation"), "{err}");

    let err = Recipe::parse("resize,w=10,z=1").unwrap_err();
    assert_eq!(err.column, 13);
}

#[test]
fn bad_recipes_are_refused() {
    for bad in [
        "",
        "resize",
        "resize,w=0",
        "resize,w=99999",
        "resize,w",
        "resize,w=10,w=20",
        "resize,w=10,fit=cover",
        "jpeg,q=101",
        "png/resize,w=10",
        "a:resize,w=1+a:resize,w=2",
        "a:resize,w=1+resize,w=2",
        "Big:resize,w=1",
        "manifest:resize,w=1",
        "resize, w=1",
        "résize,w=1",
        "a:",
    ] {
        assert!(Recipe::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn size_limits_hold() {
    let long = format!("resize,w=1{}", "0".repeat(MAX_RECIPE_LEN));
    assert!(Recipe::parse(&long).unwrap_err().expected.contains("bytes"));

    let many: Vec<String> = (0..=MAX_OUTPUTS).map(|i| format!("o{i}:png")).collect();
    assert!(
        Recipe::parse(&many.join("+"))
            .unwrap_err()
            .expected
            .contains("outputs")
    );
}

#[test]
fn presets_stand_in_for_recipes_and_the_default_for_neither() {
    let mut map = std::collections::BTreeMap::new();
    map.insert("small".to_owned(), Recipe::parse("resize,w=10").unwrap());
    map.insert("big".to_owned(), Recipe::parse("resize,w=1000").unwrap());
    let presets = Presets::new(map, "small".into()).unwrap();

    let neither = presets.resolve(None, None).unwrap();
    assert_eq!(neither.preset.as_deref(), Some("small"));
    let named = presets.resolve(None, Some("big")).unwrap();
    assert_eq!(named.recipe.to_string(), "main:resize,w=1000");
    let own = presets.resolve(Some("png"), None).unwrap();
    assert_eq!(own.preset, None);

    assert_eq!(
        presets.resolve(None, Some("huge")).unwrap_err().code(),
        "unknown_preset"
    );
    assert_eq!(
        presets
            .resolve(Some("png"), Some("big"))
            .unwrap_err()
            .code(),
        "invalid_recipe"
    );
    assert_eq!(
        presets.resolve(Some("bogus"), None).unwrap_err().code(),
        "invalid_recipe"
    );
}
