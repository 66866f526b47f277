//! The recipe syntax of issue 16's outputs: AVIF, `frames=`, `ladder`.

use super::super::{Format, Frames, Recipe};

fn column(input: &str) -> usize {
    Recipe::parse(input).unwrap_err().column
}

#[test]
fn avif_takes_a_quality_and_a_speed_and_writes_both_back() {
    let recipe = Recipe::parse("avif,q=50,speed=8").unwrap();
    assert_eq!(
        recipe.outputs[0].format,
        Some(Format::Avif {
            quality: 50,
            speed: 8
        })
    );
    assert_eq!(recipe.to_string(), "main:avif,q=50,speed=8");
    assert_eq!(
        Recipe::parse("avif").unwrap().to_string(),
        "main:avif,q=60,speed=6"
    );
    assert_eq!(column("avif,speed=11"), 12);
    assert_eq!(column("avif,q=0"), 8);
    assert_eq!(
        Format::from_extension("AVIF").unwrap().content_type(),
        "image/avif"
    );
}

#[test]
fn frames_first_belongs_to_the_format_step() {
    let recipe = Recipe::parse("resize,w=64/webp,q=70,frames=first").unwrap();
    assert_eq!(recipe.outputs[0].frames, Frames::First);
    assert_eq!(
        recipe.to_string(),
        "main:resize,w=64/webp,q=70,frames=first"
    );
    assert_eq!(
        Recipe::parse("gif,frames=all").unwrap().outputs[0].frames,
        Frames::All
    );
    assert_eq!(column("resize,w=64,frames=first"), 1);
    assert_eq!(column("gif,frames=2"), 12);
}

#[test]
fn a_ladder_expands_to_one_rendition_per_width_the_source_can_fill() {
    let recipe =
        Recipe::parse("hero:ladder,w=320.640.1280/sharpen/webp+thumb:resize,w=64").unwrap();
    assert_eq!(
        recipe.to_string(),
        "hero:ladder,w=320.640.1280/sharpen,sigma=1,amount=1/webp,q=80+thumb:resize,w=64"
    );
    let names = |width| -> Vec<(String, Option<String>)> {
        recipe
            .rungs(width)
            .into_iter()
            .map(|r| (r.output.name, r.ladder))
            .collect()
    };
    let hero = Some("hero".to_owned());
    assert_eq!(
        names(4000),
        [
            ("hero-320".into(), hero.clone()),
            ("hero-640".into(), hero.clone()),
            ("hero-1280".into(), hero.clone()),
            ("thumb".into(), None)
        ]
    );
    // A 900-pixel source: 320, 640, then its own 900 (never upscaled).
    let widths: Vec<_> = names(900).into_iter().map(|n| n.0).collect();
    assert_eq!(widths, ["hero-320", "hero-640", "hero-900", "thumb"]);
    let rung = &recipe.rungs(900)[2].output;
    assert_eq!(rung.ops[0].to_string(), "resize,w=900");
    assert_eq!(rung.ops.len(), 2, "the ladder's resize, then its steps");
}

#[test]
fn a_ladder_is_a_first_step_of_ascending_bounded_widths_and_names_do_not_collide() {
    assert_eq!(column("resize,w=9/ladder,w=1.2"), 12);
    assert_eq!(column("ladder,w=640.320"), 14);
    assert_eq!(column("ladder,w=1.2.3.4.5.6.7.8.9"), 26);
    assert_eq!(column("ladder"), 1);
    assert_eq!(column("a:ladder,w=10.20+a-20:resize,w=5"), 18);
    assert!(Recipe::parse("a:ladder,w=10.20+a-b:resize,w=5").is_ok());
}

#[test]
fn avif_is_costed_as_the_slow_encoder_it_is() {
    let forced = |side: u32, format: &str| {
        Recipe::parse(&format!(
            "resize,w={side},h={side},fit=fill,up=true/{format}"
        ))
        .unwrap()
        .check_cost()
    };
    assert!(forced(16384, "jpeg").is_ok());
    assert!(forced(4096, "avif").is_ok());
    assert!(
        forced(16384, "avif").is_err(),
        "268 MP of AV1 is minutes of work"
    );
    assert!(forced(4096, "avif,speed=1").is_err());
}
