//! The child side: `imgflow sandbox-child`, started by the worker, one job
//! per process. Before it reads a byte of the image it limits itself
//! (address space, CPU time, no core dumps) and installs a seccomp filter
//! that allows only what decoding needs: reading its stdin, writing its
//! stdout and stderr, memory, threads, time, exiting. It cannot open a file
//! or a socket, start a program or signal another process; a system call
//! outside the list kills it (SIGSYS), which the worker reports.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::process::{Resource, Rlimit, setrlimit};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use super::wire::{self, OutputHead, RemoteSpan, Reply, Request};
use crate::pipeline;
use crate::recipe::Recipe;

/// Every system call the child may make (x86_64 and aarch64 names).
const ALLOWED: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_prctl,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_tgkill,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getrandom,
];

/// Run one job from stdin to stdout, then exit. Never returns.
pub fn main(memory_bytes: u64, cpu_secs: u64) -> ! {
    let code = match serve(memory_bytes, cpu_secs) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("imgflow sandbox-child: {error}");
            1
        }
    };
    std::process::exit(code)
}

fn serve(memory_bytes: u64, cpu_secs: u64) -> std::io::Result<()> {
    // Decoders that read files when they start (libheif's plugin directory)
    // do it now: once confined, there is no `open`.
    crate::pipeline::prepare();
    confine(memory_bytes, cpu_secs)?;
    let spans = Spans::install();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let result = run_one(&mut stdin, &mut stdout, &spans);
    // Stay until the worker closes our stdin: it reads our peak memory from
    // /proc first.
    let _ = stdin.read(&mut [0]);
    result
}

/// One job's protocol from `input` to `output`, without the confinement:
/// what a child runs once confined, and what the fuzz target drives.
pub fn run_one(
    input: &mut impl Read,
    output: &mut impl Write,
    spans: &Spans,
) -> std::io::Result<()> {
    let request: Request = match wire::read_head(input) {
        Ok(request) => request,
        // The worker closed the pipe without a job: the pool is shutting down.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
        Err(e) => return Err(e),
    };
    let bytes = wire::read_blob(input, request.limits.max_bytes)?;
    work(output, input, &request, &bytes, spans)
}

/// Plan, wait for the go, run: every reply but the last is `Planned`.
fn work(
    stdout: &mut impl Write,
    stdin: &mut impl Read,
    request: &Request,
    bytes: &[u8],
    spans: &Spans,
) -> std::io::Result<()> {
    let failed = |code: &str, message: String| Reply::Failed {
        code: code.to_owned(),
        message,
        spans: spans.take(),
    };
    let recipe = match Recipe::parse(&request.recipe) {
        Ok(recipe) => recipe,
        Err(e) => return reply(stdout, &failed("invalid_recipe", e.to_string()), &[]),
    };
    let planned = pipeline::probe(bytes, &request.limits)
        .and_then(|probe| pipeline::plan(&probe, &recipe, &request.limits));
    let peak_pixels = match planned {
        Ok(plan) => plan.peak_pixels,
        Err(e) => return reply(stdout, &failed(e.code(), e.to_string()), &[]),
    };
    reply(stdout, &Reply::Planned { peak_pixels }, &[])?;
    let mut go = [0];
    stdin.read_exact(&mut go)?;
    if go[0] != wire::GO {
        return Ok(());
    }
    match pipeline::run_analysed(bytes, &recipe, &request.limits) {
        Ok((renditions, times, analysis)) => {
            let outputs = renditions
                .iter()
                .map(|r| OutputHead {
                    name: r.name.clone(),
                    format: r.format.to_string(),
                    width: r.width,
                    height: r.height,
                    len: r.bytes.len() as u64,
                    ladder: r.ladder.clone(),
                })
                .collect();
            let micros = |d: std::time::Duration| d.as_micros() as u64;
            let done = Reply::Done {
                outputs,
                times_us: [
                    micros(times.decode),
                    micros(times.process),
                    micros(times.encode),
                ],
                spans: spans.take(),
                analysis: Some(analysis),
            };
            let blobs: Vec<&[u8]> = renditions.iter().map(|r| r.bytes.as_slice()).collect();
            reply(stdout, &done, &blobs)
        }
        Err(e) => reply(stdout, &failed(e.code(), e.to_string()), &[]),
    }
}

fn reply(out: &mut impl Write, reply: &Reply, blobs: &[&[u8]]) -> std::io::Result<()> {
    wire::write_head(out, reply)?;
    for blob in blobs {
        wire::write_blob(out, blob)?;
    }
    out.flush()
}

/// rlimits first (they need system calls the filter then forbids), then the filter.
fn confine(memory_bytes: u64, cpu_secs: u64) -> std::io::Result<()> {
    let limit = |n| Rlimit {
        current: Some(n),
        maximum: Some(n),
    };
    setrlimit(Resource::As, limit(memory_bytes))?;
    setrlimit(Resource::Cpu, limit(cpu_secs))?;
    setrlimit(Resource::Core, limit(0))?;
    let rules = ALLOWED
        .iter()
        .map(|&nr| (nr, vec![]))
        .collect::<BTreeMap<_, _>>();
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| std::io::Error::other(format!("seccomp: {e:?}")))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| std::io::Error::other(format!("seccomp filter: {e}")))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e| std::io::Error::other(format!("seccomp program: {e:?}")))?;
    seccompiler::apply_filter(&program).map_err(|e| std::io::Error::other(format!("seccomp: {e}")))
}

/// A `tracing` layer that keeps the spans the pipeline closes, to send them
/// back with the reply: the job's trace then shows decode, render,
/// operations and encode as if they had run in the worker.
#[derive(Clone, Default)]
pub struct Spans(std::sync::Arc<Mutex<Vec<RemoteSpan>>>);

struct Open(RemoteSpan);

impl Spans {
    fn install() -> Spans {
        let spans = Spans::default();
        let subscriber = tracing_subscriber::registry().with(spans.clone());
        let _ = tracing::subscriber::set_global_default(subscriber);
        spans
    }

    fn take(&self) -> Vec<RemoteSpan> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Default)]
struct Fields(Vec<(String, serde_json::Value)>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_owned(), format!("{value:?}").into()));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.into()));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.push((field.name().to_owned(), value.into()));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.push((field.name().to_owned(), value.into()));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.push((field.name().to_owned(), value.into()));
    }
}

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(Open(RemoteSpan {
            id: id.into_u64(),
            parent: span.parent().map(|p| p.id().into_u64()),
            name: span.name().to_owned(),
            start_ns: now_ns(),
            end_ns: 0,
            fields: fields.0,
        }));
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(open) = span.extensions_mut().get_mut::<Open>() {
            let mut fields = Fields::default();
            values.record(&mut fields);
            open.0.fields.extend(fields.0);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(Open(mut closed)) = span.extensions_mut().remove::<Open>() {
            closed.end_ns = now_ns();
            self.0.lock().unwrap().push(closed);
        }
    }
}
