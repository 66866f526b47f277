//! Time one recipe on one file through `imgflow::pipeline::run`, the code the
//! worker and the CLI run, and print one JSON line.
//!
//! ```sh
//! cargo run --release --example bench_recipe -- FILE RECIPE ITERATIONS [--out PATH] [--threads N] [--analysed]
//! ```
//!
//! `--threads N` lets the job use N threads (`Limits::threads`; 1 by
//! default, as `imgflow process -j` and a saturated worker run it);
//! `--analysed` also describes the source for the manifest, as the worker
//! does (`pipeline::run_analysed`).
//!
//! One untimed warm-up run, then ITERATIONS timed runs on this thread.
//! `peak_rss_kib` is the process's `VmHWM` at the end (it includes the input
//! bytes and the idle process, `idle_rss_kib`, measured before the first
//! run), `first_peak_rss_kib` the same after the warm-up run alone;
//! `cpu_ms` is user + system CPU time per timed run (about `median_ms` when
//! the pipeline is single-threaded). `--out` writes the first output's
//! bytes. Exit status 2: the recipe does not parse (an operation this build
//! does not have); 1: any other error. Used by `bench/compare.py`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use imgflow::pipeline::{self, Limits};
use imgflow::recipe::Recipe;

fn main() -> ExitCode {
    match bench(std::env::args().skip(1).collect()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            println!("{}", serde_json::json!({ "error": message }));
            eprintln!("bench_recipe: {message}");
            ExitCode::from(code)
        }
    }
}

fn bench(args: Vec<String>) -> Result<serde_json::Value, (u8, String)> {
    let usage = || {
        (
            1,
            "usage: bench_recipe FILE RECIPE ITERATIONS [--out PATH] [--threads N] [--analysed]"
                .to_owned(),
        )
    };
    let [file, recipe_text, iterations, flags @ ..] = args.as_slice() else {
        return Err(usage());
    };
    let (mut out, mut threads, mut analysed) = (None, 1u32, false);
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match flag.as_str() {
            "--out" => out = Some(flags.next().ok_or_else(usage)?),
            "--threads" => {
                threads = flags
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(usage)?
            }
            "--analysed" => analysed = true,
            _ => return Err(usage()),
        }
    }
    let iterations: usize = iterations
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(usage)?;
    let bytes = std::fs::read(file).map_err(|e| (1, format!("cannot read {file}: {e}")))?;
    let recipe = Recipe::parse(recipe_text).map_err(|e| (2, e.to_string()))?;
    let limits = Limits {
        threads,
        ..Limits::default()
    };
    let idle_rss_kib = proc_status_kib("VmRSS");

    let run = || {
        if analysed {
            pipeline::run_analysed(&bytes, &recipe, &limits).map(|(renditions, ..)| renditions)
        } else {
            pipeline::run(&bytes, &recipe, &limits)
        }
        .map_err(|e| (1, e.to_string()))
    };
    // The warm-up run gives the outputs' sizes; its pixels are dropped before timing.
    let warm_up = run()?;
    if let (Some(path), Some(first)) = (out, warm_up.first()) {
        std::fs::write(path, &first.bytes).map_err(|e| (1, format!("cannot write {path}: {e}")))?;
    }
    let outputs: Vec<_> = warm_up
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name, "format": r.format.name(), "width": r.width,
                "height": r.height, "bytes": r.bytes.len(),
            })
        })
        .collect();
    let total_bytes: usize = warm_up.iter().map(|r| r.bytes.len()).sum();
    let first = warm_up
        .first()
        .map(|r| (r.width, r.height, r.format.name()));
    drop(warm_up);
    let first_peak_rss_kib = proc_status_kib("VmHWM");

    let cpu_before = cpu_time();
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let renditions = std::hint::black_box(run()?);
        times.push(start.elapsed());
        drop(renditions);
    }
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));

    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = if iterations % 2 == 1 {
        ms(times[iterations / 2])
    } else {
        (ms(times[iterations / 2 - 1]) + ms(times[iterations / 2])) / 2.0
    };
    Ok(serde_json::json!({
        "file": file,
        "recipe": recipe_text,
        "iterations": iterations,
        "median_ms": median,
        "min_ms": ms(times[0]),
        "max_ms": ms(times[iterations - 1]),
        "cpu_ms": cpu.map(|c| ms(c) / iterations as f64),
        "input_bytes": bytes.len(),
        "bytes": total_bytes,
        "width": first.map(|f| f.0),
        "height": first.map(|f| f.1),
        "format": first.map(|f| f.2),
        "outputs": outputs,
        "idle_rss_kib": idle_rss_kib,
        "first_peak_rss_kib": first_peak_rss_kib,
        "peak_rss_kib": proc_status_kib("VmHWM"),
    }))
}

/// A `kB` field of `/proc/self/status` (Linux only; `None` elsewhere).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// User + system CPU time of this process, from `/proc/self/stat` (Linux only).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, so 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture imgflow builds for.
    Some(Duration::from_millis(ticks * 10))
}
