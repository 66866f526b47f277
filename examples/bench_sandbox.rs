//! The sandbox's cost: the same recipe on the same file, in-process
//! (`pipeline::run_timed`, as `imgflow process` runs it) and through a
//! sandbox child (as the worker runs it: a pre-started child, the pipe
//! protocol, the plan, the child's exit), alternating, one job at a time.
//!
//! ```sh
//! cargo build --release --bin imgflow --example bench_sandbox
//! target/release/examples/bench_sandbox FILE RECIPE ITERATIONS
//! ```
//!
//! Prints one JSON line: medians in ms and `ratio` = sandbox ÷ in-process
//! (wall clock, same run, so only the ratio means anything).

use std::time::{Duration, Instant};

use imgflow::pipeline::{self, Limits};
use imgflow::recipe::Recipe;
use imgflow::sandbox::{Sandbox, SandboxConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, recipe, iterations] = args.as_slice() else {
        anyhow::bail!("usage: bench_sandbox FILE RECIPE ITERATIONS");
    };
    let bytes = std::fs::read(file)?;
    let recipe = Recipe::parse(recipe)?;
    let iterations: usize = iterations.parse()?;
    let limits = Limits::default();
    // The imgflow binary sits next to the examples folder.
    let exe = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("imgflow"))
        .ok_or_else(|| anyhow::anyhow!("no imgflow binary next to this example"))?;
    let sandbox = Sandbox::new(SandboxConfig {
        exe,
        memory_bytes: 2 << 30,
        deadline: Duration::from_secs(60),
        warm: 1,
    });
    let mut inline = Vec::new();
    let mut boxed = Vec::new();
    for i in 0..=iterations {
        let started = Instant::now();
        pipeline::run_timed(&bytes, &recipe, &limits)?;
        let a = started.elapsed();
        let started = Instant::now();
        let planned = sandbox
            .start(&bytes, &recipe, &limits)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        planned
            .finish()
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let b = started.elapsed();
        // The first round warms caches and starts the pool.
        if i > 0 {
            inline.push(a);
            boxed.push(b);
        }
        // Let the replacement child start, as it would between real jobs.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let (a, b) = (median(&mut inline), median(&mut boxed));
    println!(
        "{}",
        serde_json::json!({
            "file": file, "recipe": recipe.to_string(), "iterations": iterations,
            "in_process_ms": a, "sandbox_ms": b, "ratio": b / a,
        })
    );
    Ok(())
}
