//! One job: decode once, then make every output of the recipe, and (for
//! the worker's manifest) describe the source.
//!
//! A job may use up to [`Limits::threads`] threads: the outputs of a
//! recipe with several are made side by side, and a fast path's analysis
//! decode runs beside its render. With one thread (the default, and what a
//! busy worker gives each job) everything runs on the caller's thread.

use std::borrow::Cow;
use std::time::Instant;

use super::{
    Analysis, Limits, Made, PipelineError, Probe, Rendition, Source, StageTimes, analysis,
    animation, decode, decode_at, default_format, fast, lossless, plan, render_image, render_timed,
};
use crate::recipe::{Icc, Recipe, Rung};

/// Decode once, then make every output of the recipe.
pub fn run(
    bytes: &[u8],
    recipe: &Recipe,
    limits: &Limits,
) -> Result<Vec<Rendition>, PipelineError> {
    run_timed(bytes, recipe, limits).map(|(renditions, _)| renditions)
}

/// [`run`], and how long decoding, the operations and encoding took. Each
/// stage is also a `tracing` span (`decode`, `render` → `operation`s →
/// `encode`), for whoever records them. The source is not analysed.
pub fn run_timed(
    bytes: &[u8],
    recipe: &Recipe,
    limits: &Limits,
) -> Result<(Vec<Rendition>, StageTimes), PipelineError> {
    run_with(bytes, recipe, limits, false).map(|(renditions, times, _)| (renditions, times))
}

/// [`run_timed`], and the source's [`Analysis`] (computed once per job;
/// its time counts as processing). What the worker runs: the manifest
/// describes the source.
pub fn run_analysed(
    bytes: &[u8],
    recipe: &Recipe,
    limits: &Limits,
) -> Result<(Vec<Rendition>, StageTimes, Analysis), PipelineError> {
    let (renditions, times, analysis) = run_with(bytes, recipe, limits, true)?;
    let analysis = analysis.expect("run_with analyses the source when asked to");
    Ok((renditions, times, analysis))
}

/// What decoding gave: the whole source (and an animation's frames), or a
/// fast path's decode for the single output.
enum Start {
    Whole(Source, Option<(animation::Animation, Probe)>),
    Fast(fast::Decoded, Probe),
}

/// Every rendition, the stage times, the analysis if asked for.
type Ran = (Vec<Rendition>, StageTimes, Option<Analysis>);

fn run_with(
    bytes: &[u8],
    recipe: &Recipe,
    limits: &Limits,
    analyse: bool,
) -> Result<Ran, PipelineError> {
    if recipe.outputs.iter().any(lossless::wanted) {
        return run_lossless(bytes, recipe, limits, analyse);
    }
    let mut times = StageTimes::default();
    let span = tracing::info_span!(
        "decode",
        bytes = bytes.len(),
        format = tracing::field::Empty,
        width = tracing::field::Empty,
        height = tracing::field::Empty
    );
    let started = Instant::now();
    let start = span.in_scope(|| start(bytes, recipe, limits))?;
    times.decode = started.elapsed();
    let (format, full_size) = match &start {
        Start::Whole(source, _) => (source.format, source.full_size),
        Start::Fast(_, probe) => (probe.format, probe.upright()),
    };
    span.record("format", format.name());
    span.record("width", full_size.0);
    span.record("height", full_size.1);
    drop(span);
    match start {
        Start::Fast(decoded, probe) => {
            let output = &recipe.outputs[0];
            // The planes hold a small copy for the analysis already, and
            // the DCT-domain path makes one as it goes; a region needs a
            // 1/8-scale decode of its own.
            let sample = if analyse {
                decoded.sample(&probe)
            } else {
                None
            };
            let describe =
                |sample: Option<Source>| -> Result<(Analysis, StageTimes), PipelineError> {
                    let started = Instant::now();
                    let small = match sample {
                        Some(small) => small,
                        None => fast::analysis_decode(bytes, &probe, limits)?,
                    };
                    let analysis = analysis::analyse(bytes, &small, limits);
                    let times = StageTimes {
                        process: started.elapsed(),
                        ..StageTimes::default()
                    };
                    Ok((analysis, times))
                };
            let (rendition, described) = if !analyse {
                (decoded.render(&probe, output, &mut times)?.0, None)
            } else if sample.is_none() && decoded.samples_while_rendering() {
                // The DCT-domain path: its DC values are the small copy.
                let (rendition, small) = decoded.render(&probe, output, &mut times)?;
                (rendition, Some(describe(small)?))
            } else if sample.is_none() && limits.threads > 1 {
                // Both decodes at once: the region's, and the analysis's.
                std::thread::scope(|scope| {
                    let describing = scope.spawn(|| describe(None));
                    let rendition = decoded.render(&probe, output, &mut times);
                    let described = describing
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    Ok::<_, PipelineError>((rendition?.0, Some(described?)))
                })?
            } else {
                let described = describe(sample)?;
                (
                    decoded.render(&probe, output, &mut times)?.0,
                    Some(described),
                )
            };
            let analysis = described.map(|(analysis, spent)| {
                times.process += spent.process;
                analysis
            });
            Ok((vec![rendition], times, analysis))
        }
        Start::Whole(source, animation) => {
            let analysis = analyse.then(|| {
                let started = Instant::now();
                let analysis = analysis::analyse(bytes, &source, limits);
                times.process += started.elapsed();
                analysis
            });
            let renditions = render_all(source, animation, recipe, limits, &mut times)?;
            Ok((renditions, times, analysis))
        }
    }
}

/// A recipe with `jpeg,lossless=true` outputs: those are made from the
/// file's coefficients (no decode), the others as any recipe's, in order.
fn run_lossless(
    bytes: &[u8],
    recipe: &Recipe,
    limits: &Limits,
    analyse: bool,
) -> Result<Ran, PipelineError> {
    let probe = decode::probe(bytes, limits)?;
    plan(&probe, recipe, limits)?;
    let (lossless, rest): (Vec<_>, Vec<_>) = (recipe.outputs.iter().cloned())
        .enumerate()
        .partition(|(_, output)| lossless::wanted(output));
    for (_, output) in &lossless {
        lossless::check(&probe, output)?;
    }
    let (mut made, mut times, analysis) = if rest.is_empty() {
        let started = Instant::now();
        let analysis = match analyse {
            true => {
                let small = fast::analysis_decode(bytes, &probe, limits)?;
                Some(analysis::analyse(bytes, &small, limits))
            }
            false => None,
        };
        let times = StageTimes {
            decode: started.elapsed(),
            ..StageTimes::default()
        };
        (Vec::new(), times, analysis)
    } else {
        let outputs = rest.iter().map(|(_, output)| output.clone()).collect();
        run_with(bytes, &Recipe { outputs }, limits, analyse)?
    };
    // Put every rendition back at its output's place in the recipe.
    let mut placed: Vec<(usize, Rendition)> =
        rest.iter().map(|(i, _)| *i).zip(made.drain(..)).collect();
    for (i, output) in &lossless {
        let started = Instant::now();
        placed.push((*i, lossless::render(bytes, &probe, output)?));
        times.encode += started.elapsed();
    }
    placed.sort_by_key(|(i, _)| *i);
    Ok((
        placed.into_iter().map(|(_, r)| r).collect(),
        times,
        analysis,
    ))
}

/// Probe, plan and decode: the general way, or a fast path's.
fn start(bytes: &[u8], recipe: &Recipe, limits: &Limits) -> Result<Start, PipelineError> {
    let probe = decode::probe(bytes, limits)?;
    // Every size and the work are known before a pixel is decoded.
    let plan = plan(&probe, recipe, limits)?;
    if plan.frames > 1 {
        let animation = animation::decode(bytes, &probe)?;
        let first = animation.first(probe)?;
        return Ok(Start::Whole(first, Some((animation, probe))));
    }
    let keep = recipe.outputs.iter().any(|o| o.icc == Icc::Keep);
    // A fast path works on the file's own samples: only for sources with
    // no colour profile to convert from.
    let plain = !keep && recipe.outputs.iter().all(|o| o.ladder.is_none());
    if plain
        && !fast::needs_colour(bytes)
        && let Some(fast) = fast::decode(bytes, &probe, &plan, recipe)
    {
        return Ok(Start::Fast(fast?, probe));
    }
    let source = decode_at(bytes, &probe, (plan.eighths, plan.decoded), limits, keep)?;
    Ok(Start::Whole(source, None))
}

/// Every rendition of a decoded source, in recipe order.
fn render_all(
    source: Source,
    animation: Option<(animation::Animation, Probe)>,
    recipe: &Recipe,
    limits: &Limits,
    times: &mut StageTimes,
) -> Result<Vec<Rendition>, PipelineError> {
    let mut rungs = recipe.rungs(source.full_size.0);
    if animation.is_none()
        && let [rung] = rungs.as_mut_slice()
        && rung.output.icc == Icc::Srgb
    {
        // One output: it owns the decoded image and may change it in place.
        let made = Made {
            format: source.format,
            full_size: source.full_size,
            icc: None,
            ladder: rung.ladder.take(),
        };
        let rendition = render_image(Cow::Owned(source.image), made, &rung.output, times)?;
        return Ok(vec![rendition]);
    }
    let render = |rung: Rung, times: &mut StageTimes| {
        let format = rung
            .output
            .format
            .unwrap_or_else(|| default_format(source.format));
        match &animation {
            Some((frames, probe)) if animation::animates(probe, &rung.output, format) => {
                animation::render(frames, &rung, format, times)
            }
            _ => render_timed(&source, &rung.output, rung.ladder, times),
        }
    };
    let threads = (limits.threads as usize).clamp(1, rungs.len());
    if threads == 1 {
        return rungs.into_iter().map(|rung| render(rung, times)).collect();
    }
    // Deal the outputs round-robin to `threads` threads, then put them
    // back in recipe order.
    let mut shares: Vec<Vec<(usize, Rung)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, rung) in rungs.into_iter().enumerate() {
        shares[i % threads].push((i, rung));
    }
    let done = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let render = &render;
                scope.spawn(move || {
                    let mut times = StageTimes::default();
                    let made: Vec<_> = share
                        .into_iter()
                        .map(|(i, rung)| (i, render(rung, &mut times)))
                        .collect();
                    (made, times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Vec<_>>()
    });
    let mut made = Vec::new();
    for (share, share_times) in done {
        times.process += share_times.process;
        times.encode += share_times.encode;
        made.extend(share);
    }
    made.sort_by_key(|(i, _)| *i);
    made.into_iter().map(|(_, rendition)| rendition).collect()
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
