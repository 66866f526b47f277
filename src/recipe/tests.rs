use super::*;

fn resize(width: Option<u32>, height: Option<u32>, fit: Fit) -> Op {
    Op::Resize(Resize {
        width,
        height,
        fit,
        gravity: Gravity::default(),
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
            icc: Icc::Srgb,
            frames: Frames::All,
            ladder: None,
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
            background: WHITE,
            lossless: false,
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

#[test]
fn every_operation_and_format_parses() {
    let text = "resize,w=10,h=20,fit=cover,gravity=top-left/crop,x=1,y=2,w=3,h=4/rotate,deg=270/\
                flip,dir=v/watermark,text=Caf%C3%A9%20%E2%9C%93,pos=top,size=5pct,color=ff8800,opacity=0.25,margin=12px/\
                grayscale/sepia/blur,sigma=2.5/sharpen,sigma=1,amount=0.5/webp,q=75";
    let recipe = Recipe::parse(text).unwrap();
    let output = &recipe.outputs[0];
    assert_eq!(output.ops.len(), 9);
    assert_eq!(
        output.ops[4],
        Op::Watermark(Watermark {
            text: "Café ✓".into(),
            anchor: Anchor::Top,
            size: Length::Pct(5.0),
            color: Rgb([0xff, 0x88, 0x00]),
            opacity: 0.25,
            margin: Length::Px(12),
        })
    );
    assert_eq!(output.ops[7], Op::Blur { sigma: 2.5 });
    assert_eq!(
        output.format,
        Some(Format::WebP {
            quality: WebPQuality::Lossy(75)
        })
    );
    for format in ["webp,lossless=true", "gif", "jpeg,q=50,bg=000000", "png"] {
        Recipe::parse(format).unwrap();
    }
}

#[test]
fn bad_parameters_of_the_new_operations_are_refused() {
    for bad in [
        "rotate,deg=45",
        "flip,dir=x",
        "crop,x=1,y=2,w=3",
        "watermark",
        "watermark,text=%FF",
        "watermark,text=a,pos=middle",
        "watermark,text=a,opacity=2",
        "watermark,text=a,color=red",
        "watermark,text=%0A",
        "blur,sigma=0",
        "blur,sigma=1000",
        "sharpen,amount=-1",
        "webp,q=80,lossless=true",
        "resize,w=10,h=10,fit=cover,gravity=up",
    ] {
        assert!(Recipe::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn smart_and_face_gravities_place_cover_resizes_and_sized_crops() {
    let recipe =
        Recipe::parse("resize,w=256,h=256,fit=cover,gravity=face/crop,w=100,h=50,gravity=smart")
            .unwrap();
    let ops = &recipe.outputs[0].ops;
    assert!(matches!(
        ops[0],
        Op::Resize(Resize {
            gravity: Gravity::Face,
            ..
        })
    ));
    assert_eq!(
        ops[1],
        Op::Crop(Crop {
            x: 0,
            y: 0,
            width: 100,
            height: 50,
            gravity: Some(Gravity::Smart),
        })
    );
    assert_eq!(
        recipe.to_string(),
        "main:resize,w=256,h=256,fit=cover,gravity=face/crop,w=100,h=50,gravity=smart"
    );
    let anchored = Recipe::parse("crop,w=10,h=10,gravity=bottom-right").unwrap();
    assert_eq!(Recipe::parse(&anchored.to_string()).unwrap(), anchored);
    for bad in [
        "crop,x=1,y=2,w=3,h=4,gravity=face",
        "crop,w=3,h=4",
        "resize,w=10,h=10,fit=cover,gravity=faces",
        "watermark,text=a,pos=smart",
    ] {
        assert!(Recipe::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    fn anchor() -> impl Strategy<Value = Anchor> {
        proptest::sample::select(Anchor::ALL.to_vec())
    }

    fn gravity() -> impl Strategy<Value = Gravity> {
        prop_oneof![
            anchor().prop_map(Gravity::Anchor),
            Just(Gravity::Smart),
            Just(Gravity::Face)
        ]
    }

    fn length() -> impl Strategy<Value = Length> {
        prop_oneof![
            (0..=MAX_DIMENSION).prop_map(Length::Px),
            (0.0f32..=100.0).prop_map(Length::Pct),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let dim = 1..=MAX_DIMENSION;
        prop_oneof![
            (
                proptest::option::of(dim.clone()),
                proptest::option::of(dim.clone()),
                any::<bool>()
            )
                .prop_filter("w or h", |(w, h, _)| w.is_some() || h.is_some())
                .prop_map(|(width, height, upscale)| Op::Resize(Resize {
                    width,
                    height,
                    fit: Fit::Inside,
                    gravity: Gravity::default(),
                    upscale,
                })),
            (
                dim.clone(),
                dim.clone(),
                gravity(),
                prop_oneof![Just(Fit::Cover), Just(Fit::Fill)]
            )
                .prop_map(|(w, h, gravity, fit)| Op::Resize(Resize {
                    width: Some(w),
                    height: Some(h),
                    fit,
                    gravity,
                    upscale: false,
                })),
            (0..MAX_DIMENSION, 0..MAX_DIMENSION, dim.clone(), dim.clone()).prop_map(
                |(x, y, width, height)| Op::Crop(Crop {
                    x,
                    y,
                    width,
                    height,
                    gravity: None,
                })
            ),
            (dim.clone(), dim, gravity()).prop_map(|(width, height, gravity)| Op::Crop(Crop {
                x: 0,
                y: 0,
                width,
                height,
                gravity: Some(gravity),
            })),
            prop_oneof![
                Just(Rotation::R90),
                Just(Rotation::R180),
                Just(Rotation::R270)
            ]
            .prop_map(Op::Rotate),
            prop_oneof![Just(FlipAxis::Horizontal), Just(FlipAxis::Vertical)].prop_map(Op::Flip),
            (
                "[^\\p{Cc}]{1,20}",
                anchor(),
                (1..=MAX_DIMENSION).prop_map(Length::Px),
                any::<[u8; 3]>(),
                0.0f32..=1.0,
                length()
            )
                .prop_map(
                    |(text, anchor, size, color, opacity, margin)| Op::Watermark(Watermark {
                        text,
                        anchor,
                        size,
                        color: Rgb(color),
                        opacity,
                        margin,
                    })
                ),
            Just(Op::Grayscale),
            Just(Op::Sepia),
            (0.1f32..=MAX_SIGMA).prop_map(|sigma| Op::Blur { sigma }),
            (0.1f32..=MAX_SIGMA, 0.0f32..=10.0)
                .prop_map(|(sigma, amount)| Op::Sharpen { sigma, amount }),
        ]
    }

    fn format() -> impl Strategy<Value = Option<Format>> {
        proptest::option::of(prop_oneof![
            (1u8..=100, any::<[u8; 3]>()).prop_map(|(quality, bg)| Format::Jpeg {
                quality,
                background: Rgb(bg),
                lossless: false,
            }),
            Just(Format::Jpeg {
                quality: DEFAULT_JPEG_QUALITY,
                background: WHITE,
                lossless: true,
            }),
            Just(Format::Png),
            (1u8..=100).prop_map(|q| Format::WebP {
                quality: WebPQuality::Lossy(q)
            }),
            Just(Format::WebP {
                quality: WebPQuality::Lossless
            }),
            Just(Format::Gif),
            (1u8..=100, 1u8..=10).prop_map(|(quality, speed)| Format::Avif { quality, speed }),
        ])
    }

    fn ladder() -> impl Strategy<Value = Option<Ladder>> {
        proptest::option::of(
            proptest::collection::btree_set(1u32..=MAX_DIMENSION, 1..=MAX_RUNGS).prop_map(|w| {
                Ladder {
                    widths: w.into_iter().collect(),
                }
            }),
        )
    }

    fn recipe() -> impl Strategy<Value = Recipe> {
        let output = (
            proptest::collection::vec(op(), 0..5),
            format(),
            any::<bool>(),
            ladder(),
        );
        proptest::collection::vec(output, 1..=4)
            .prop_filter("at least one step per output", |outputs| {
                outputs
                    .iter()
                    .all(|(ops, f, _, l)| !ops.is_empty() || f.is_some() || l.is_some())
            })
            .prop_map(|outputs| Recipe {
                outputs: outputs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ops, format, first, ladder))| Output {
                        name: format!("out-{i}"),
                        ops,
                        format,
                        icc: Icc::Srgb,
                        // `frames=` travels on the format step.
                        frames: if first && format.is_some() {
                            Frames::First
                        } else {
                            Frames::All
                        },
                        ladder,
                    })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn the_canonical_form_of_any_recipe_parses_back_to_it(recipe in recipe()) {
            let text = recipe.to_string();
            prop_assume!(text.len() <= MAX_RECIPE_LEN);
            prop_assert_eq!(Recipe::parse(&text), Ok(recipe), "{}", text);
        }

        #[test]
        fn no_input_makes_the_parser_panic(text in "\\PC{0,80}") {
            let _ = Recipe::parse(&text);
        }

        #[test]
        fn near_miss_recipes_are_refused_or_accepted_but_never_panic(
            text in "[a-z:=,/+%0-9.]{0,60}"
        ) {
            if let Ok(recipe) = Recipe::parse(&text) {
                prop_assert_eq!(Recipe::parse(&recipe.to_string()), Ok(recipe));
            }
        }
    }
}

#[test]
fn a_recipe_whose_canonical_form_is_too_long_is_refused() {
    // Found by `cargo fuzz run recipe`: 900 bytes in, but `&` escapes to `%26`.
    let text = "&".repeat(190);
    let input = format!("resize,w=400/watermark,text={text}/watermark,text={text}");
    assert!(input.len() <= MAX_RECIPE_LEN);
    let err = Recipe::parse(&input).unwrap_err();
    assert!(
        err.expected.contains("once defaults are written out"),
        "{err}"
    );
}

#[test]
fn icc_keep_parses_on_jpeg_png_and_webp_and_round_trips() {
    for text in ["jpeg,icc=keep", "png,icc=keep", "webp,q=90,icc=keep"] {
        let recipe = Recipe::parse(text).unwrap();
        assert_eq!(recipe.outputs[0].icc, Icc::Keep, "{text}");
        assert_eq!(
            Recipe::parse(&recipe.to_string()).unwrap(),
            recipe,
            "{text}"
        );
    }
    assert_eq!(Recipe::parse("png").unwrap().outputs[0].icc, Icc::Srgb);
    assert_eq!(
        Recipe::parse("png,icc=srgb").unwrap().outputs[0].icc,
        Icc::Srgb
    );
    assert!(
        Recipe::parse("gif,icc=keep").is_err(),
        "GIF carries no profile"
    );
    assert!(Recipe::parse("png,icc=drop").is_err());
}
