//! Whole jobs through the sandbox boundary: the first line of the input is
//! a recipe, the rest the image. The worker's request goes through the
//! child's side of the protocol (`sandbox::child::run_one`: read, plan,
//! wait for the go, pipeline, reply) and the reply is read back as the
//! worker reads it, with its bounds. Only the confinement (rlimits,
//! seccomp) is left out: libFuzzer's -rss_limit_mb and -timeout stand in.
//! Errors are fine; a panic, a hang or a malformed reply are not.
#![no_main]

use std::io::Cursor;

use imgflow::pipeline::Limits;
use imgflow::recipe::Recipe;
use imgflow::sandbox::child::{Spans, run_one};
use imgflow::sandbox::wire::{self, GO, Reply, Request};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_bytes: 1 << 20,
    max_width: 2048,
    max_height: 2048,
    max_pixels: 4_000_000,
};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (recipe, image) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    // Only what the worker would send: a recipe that parsed.
    let Ok(recipe) = Recipe::parse(&String::from_utf8_lossy(recipe)) else {
        return;
    };
    let mut request = Vec::new();
    let head = Request {
        recipe: recipe.to_string(),
        limits: LIMITS,
    };
    wire::write_head(&mut request, &head).unwrap();
    wire::write_blob(&mut request, image).unwrap();
    request.push(GO);
    let mut reply = Vec::new();
    run_one(&mut Cursor::new(request), &mut reply, &Spans::default()).unwrap();

    let mut reply = Cursor::new(reply);
    match wire::read_head::<Reply>(&mut reply).unwrap() {
        Reply::Failed { .. } => return,
        Reply::Planned { .. } => {}
        Reply::Done { .. } => panic!("done before the go"),
    }
    match wire::read_head::<Reply>(&mut reply).unwrap() {
        Reply::Done { outputs, .. } => {
            assert_eq!(outputs.len(), recipe.outputs.len());
            for head in outputs {
                let blob = wire::read_blob(&mut reply, 64 << 20).unwrap();
                assert_eq!(blob.len() as u64, head.len);
                assert!(head.width >= 1 && head.height >= 1 && !blob.is_empty());
                assert!(head.width <= LIMITS.max_width && head.height <= LIMITS.max_height);
            }
        }
        Reply::Failed { .. } => {}
        Reply::Planned { .. } => panic!("planned twice"),
    }
});
