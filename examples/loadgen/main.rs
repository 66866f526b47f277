//! The evaluation harness of issue 8; `bench/evaluate.sh` runs it, then
//! `bench/report.py` turns its CSVs into charts and `bench/RESULTS.md`.
//!
//! ```sh
//! cargo build --release --locked --bin imgflow --example loadgen
//! target/release/examples/loadgen --bin target/release/imgflow --image bench/fixtures/photo-1mp.jpg \
//!     --venv .localstack/venv --run-dir bench/.evaluate/run --out bench/results/evaluation
//! ```
//!
//! Phases, each on a fresh private LocalStack with new buckets and queue,
//! a warm-up first, and nothing recorded from it:
//! - `paper`: the old paper's profiles against the old API (see `paper.rs`),
//!   `imgflow api` plus `--paper-workers` workers;
//! - `native`: for each of `--workers`, the presigned flow at a fixed rate,
//!   then `--sat-n` uploads as fast as `--sat-uploaders` clients send them;
//! - `process`: `imgflow process` on the same image with the same recipe,
//!   `--process-concurrency` invocations at a time, no LocalStack running.
//!
//! Writes into `--out`: `paper_requests.csv`, `native_jobs.csv`,
//! `process_runs.csv`, `phases.csv` (wall time and CPU seconds by process
//! per phase), `localstack_ops.csv` (S3 and SQS calls per phase) and
//! `meta.json`. Refuses to run as a debug build.

mod cpu;
mod native;
mod paper;
mod stack;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

use stack::{Stack, StackConfig};

#[derive(Parser)]
struct Args {
    /// The imgflow binary to run (a release build)
    #[arg(long)]
    bin: PathBuf,
    /// The image every request sends (a 1 MP JPEG)
    #[arg(long)]
    image: PathBuf,
    /// LocalStack's virtualenv (scripts/localstack.sh install)
    #[arg(long)]
    venv: PathBuf,
    /// Logs and LocalStack state
    #[arg(long)]
    run_dir: PathBuf,
    /// Where the CSVs go
    #[arg(long)]
    out: PathBuf,
    /// The private LocalStack's port (never 4566, the shared one)
    #[arg(long, default_value_t = 4596)]
    port: u16,
    #[arg(long, default_value_t = 18096)]
    api_port: u16,
    /// Which phases to run
    #[arg(long, value_delimiter = ',', default_value = "paper,native,process")]
    phases: Vec<String>,
    /// The paper's profiles: virtual users of each
    #[arg(long, value_delimiter = ',', default_value = "10,20,30")]
    profiles: Vec<usize>,
    /// Rounds per user (each round calls every endpoint once)
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Worker processes behind the old API
    #[arg(long, default_value_t = 2)]
    paper_workers: usize,
    /// Worker processes for the native flow, one pass each
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// Fixed arrival rate (uploads per second) and how many
    #[arg(long, default_value_t = 4.0)]
    light_rate: f64,
    #[arg(long, default_value_t = 600)]
    light_n: usize,
    /// Saturation: this many uploads, by this many clients at once
    #[arg(long, default_value_t = 1500)]
    sat_n: usize,
    #[arg(long, default_value_t = 8)]
    sat_uploaders: usize,
    /// `imgflow process` runs at each concurrency
    #[arg(long, default_value_t = 400)]
    process_n: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    process_concurrency: Vec<usize>,
}

/// A one-line error for a CSV cell: no commas, no newlines.
pub fn short_error(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let _ = write!(text, ": {inner}");
        source = inner.source();
    }
    text.replace([',', '\n', '"'], " ")
        .chars()
        .take(200)
        .collect()
}

/// A CSV file written row by row.
struct Csv(std::io::BufWriter<std::fs::File>);

impl Csv {
    fn create(args: &Args, name: &str, header: &str) -> anyhow::Result<Csv> {
        use std::io::Write;
        let path = args.out.join(name);
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        writeln!(file, "{header}")?;
        Ok(Csv(file))
    }

    fn row(&mut self, cells: &[&dyn std::fmt::Display]) -> anyhow::Result<()> {
        use std::io::Write;
        let line: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        writeln!(self.0, "{}", line.join(","))?;
        Ok(())
    }
}

/// What every phase records: phases.csv, and localstack_ops.csv (the S3
/// and SQS calls LocalStack logged during the phase, by operation and status).
struct Recorder {
    phases: Csv,
    ops: Csv,
}

/// One line of phases.csv: a phase's wall time and where the CPU went.
struct Phase<'a> {
    rec: &'a mut Recorder,
    name: String,
    concurrency: usize,
    pids: stack::Pids,
    /// LocalStack's log, and how long it was when the phase began.
    log: Option<(PathBuf, u64)>,
    /// Set by `stop_clock`: wall time, CPU, and the log's length then.
    stopped: Option<(f64, cpu::Sample, u64)>,
    before: cpu::Sample,
    started: Instant,
    started_unix: f64,
    load_start: f64,
}

impl<'a> Phase<'a> {
    fn begin(
        rec: &'a mut Recorder,
        name: String,
        concurrency: usize,
        stack: Option<&Stack>,
    ) -> Phase<'a> {
        let load_start = cpu::load1();
        let pids = stack.map(Stack::pids).unwrap_or_default();
        let log = stack.map(|s| {
            let log = s.localstack_log();
            let len = std::fs::metadata(&log).map_or(0, |m| m.len());
            (log, len)
        });
        Phase {
            rec,
            name,
            concurrency,
            log,
            stopped: None,
            before: cpu::Sample::take(&pids),
            pids,
            started: Instant::now(),
            started_unix: native_unix(),
            load_start,
        }
    }

    /// The measurement ends here; what follows (reading results) is not counted.
    fn stop_clock(&mut self) {
        let log_len = self
            .log
            .as_ref()
            .and_then(|(log, _)| std::fs::metadata(log).ok())
            .map_or(0, |m| m.len());
        self.stopped = Some((
            self.started.elapsed().as_secs_f64(),
            cpu::Sample::take(&self.pids),
            log_len,
        ));
    }

    fn end(mut self, items: usize, errors: usize) -> anyhow::Result<()> {
        if self.stopped.is_none() {
            self.stop_clock();
        }
        let (secs, after, log_end) = self.stopped.take().expect("the clock was stopped");
        let d = self.before.until(&after);
        eprintln!(
            "loadgen: {} done: {items} in {secs:.1} s ({:.1}/s), {errors} errors; CPU s: localstack {:.1}, api {:.1}, workers {:.1}, harness {:.1}, machine {:.1} of {:.1}",
            self.name,
            items as f64 / secs,
            d.localstack,
            d.api,
            d.workers,
            d.harness,
            d.machine_busy,
            d.machine_total
        );
        if let Some((log, from)) = &self.log {
            for ((operation, status), count) in localstack_ops(log, *from, log_end)? {
                self.rec
                    .ops
                    .row(&[&self.name, &operation, &status, &count])?;
            }
        }
        let f = |v: f64| format!("{v:.2}");
        self.rec.phases.row(&[
            &self.name,
            &self.concurrency,
            &f(self.started_unix),
            &f(secs),
            &items,
            &errors,
            &f(d.localstack),
            &f(d.api),
            &f(d.workers),
            &f(d.harness),
            &f(d.machine_busy),
            &f(d.machine_total),
            &self.load_start,
            &d.load1,
        ])
    }
}

/// Count LocalStack's request lines (`AWS s3.GetObject => 404`) between two offsets.
fn localstack_ops(
    log: &std::path::Path,
    from: u64,
    to: u64,
) -> anyhow::Result<std::collections::BTreeMap<(String, String), usize>> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(log)?;
    file.seek(std::io::SeekFrom::Start(from))?;
    let mut bytes = vec![];
    file.take(to.saturating_sub(from)).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some((_, rest)) = line.split_once(" AWS ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        if let (Some(operation), Some("=>"), Some(status)) =
            (words.next(), words.next(), words.next())
        {
            *counts
                .entry((operation.to_owned(), status.to_owned()))
                .or_insert(0) += 1;
        }
    }
    Ok(counts)
}

fn native_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        bail!("loadgen: refusing to measure a debug build; build with --release");
    }
    let args = Args::parse();
    if args.port == 4566 {
        bail!("loadgen: port 4566 is the shared LocalStack's; pick another --port");
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::create_dir_all(&args.run_dir)?;
    let image: &'static [u8] = Box::leak(
        std::fs::read(&args.image)
            .with_context(|| format!("reading {}", args.image.display()))?
            .into_boxed_slice(),
    );
    // Absolute: LocalStack runs from its own folder.
    let absolute =
        |p: &PathBuf| std::fs::canonicalize(p).with_context(|| format!("finding {}", p.display()));
    let config = StackConfig {
        bin: absolute(&args.bin)?,
        venv: absolute(&args.venv)?,
        run_dir: absolute(&args.run_dir)?,
        port: args.port,
        api_port: args.api_port,
    };
    let phases = Csv::create(
        &args,
        "phases.csv",
        "phase,concurrency,started_unix,secs,items,errors,cpu_localstack,cpu_api,cpu_workers,cpu_harness,cpu_machine_busy,cpu_machine_total,load1_start,load1_end",
    )?;
    let ops = Csv::create(&args, "localstack_ops.csv", "phase,operation,status,count")?;
    let mut rec = Recorder { phases, ops };
    let started_unix = native_unix();
    let load_start = cpu::load1();
    let phase_on = |p: &str| args.phases.iter().any(|x| x == p);
    if phase_on("paper") {
        paper_phases(&args, &config, image, &mut rec).await?;
    }
    if phase_on("native") {
        native_phases(&args, &config, image, &mut rec).await?;
    }
    if phase_on("process") {
        process_phases(&args, &mut rec)?;
    }
    drop(rec);
    let meta = serde_json::json!({
        "started_unix": started_unix,
        "finished_unix": native_unix(),
        "load1_start": load_start,
        "load1_end": cpu::load1(),
        "image": args.image.display().to_string(),
        "image_bytes": image.len(),
        "profiles": args.profiles,
        "rounds": args.rounds,
        "paper_workers": args.paper_workers,
        "workers": args.workers,
        "light_rate": args.light_rate,
        "light_n": args.light_n,
        "sat_n": args.sat_n,
        "sat_uploaders": args.sat_uploaders,
        "process_n": args.process_n,
        "process_concurrency": args.process_concurrency,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
    });
    std::fs::write(
        args.out.join("meta.json"),
        serde_json::to_string_pretty(&meta)?,
    )?;
    Ok(())
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    // Longer than the old API's own 30 s wait and the API's 60 s request limit.
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(75))
        .pool_max_idle_per_host(256)
        .build()?)
}

async fn paper_phases(
    args: &Args,
    config: &StackConfig,
    image: &'static [u8],
    rec: &mut Recorder,
) -> anyhow::Result<()> {
    let mut csv = Csv::create(
        args,
        "paper_requests.csv",
        "profile,users,user,round,endpoint,start_s,latency_ms,status,ok,error",
    )?;
    let http = http_client()?;
    for &users in &args.profiles {
        let name = format!("base{users}");
        let mut stack = Stack::start(config, &name).await?;
        stack.start_api(config).await?;
        stack.start_workers(config, args.paper_workers).await?;
        // Warm-up: a few rounds from a few users, not recorded.
        let warm = paper::Load {
            api_url: stack.api_url.clone(),
            image,
            users: users.min(5),
            rounds: 3,
        };
        let (warmed, _) = paper::run(&warm, &http).await;
        let failed = warmed.iter().filter(|r| !r.ok).count();
        if failed > 0 {
            bail!("{name}: {failed} warm-up requests failed; see the logs");
        }
        let load = paper::Load {
            rounds: args.rounds,
            users,
            ..warm
        };
        eprintln!(
            "loadgen: {name}: {users} users x {} rounds x 4 endpoints",
            args.rounds
        );
        let phase = Phase::begin(rec, name.clone(), users, Some(&stack));
        let (requests, _) = paper::run(&load, &http).await;
        let errors = requests.iter().filter(|r| !r.ok).count();
        phase.end(requests.len(), errors)?;
        for r in &requests {
            csv.row(&[
                &name,
                &users,
                &r.user,
                &r.round,
                &r.endpoint,
                &format!("{:.4}", r.start_s),
                &format!("{:.2}", r.latency_ms),
                &r.status,
                &u8::from(r.ok),
                &r.error,
            ])?;
        }
        stack.stop();
    }
    Ok(())
}

async fn native_phases(
    args: &Args,
    config: &StackConfig,
    image: &'static [u8],
    rec: &mut Recorder,
) -> anyhow::Result<()> {
    let mut csv = Csv::create(
        args,
        "native_jobs.csv",
        "run,mode,workers,index,presign_start,put_done,finished,client_done,presign_ms,put_ms,download_ms,process_ms,upload_ms,status,error",
    )?;
    for &workers in &args.workers {
        let name = format!("native-{workers}w");
        let mut stack = Stack::start(config, &name).await?;
        stack.start_api(config).await?;
        stack.start_workers(config, workers).await?;
        let flow = Arc::new(native::Flow {
            api_url: stack.api_url.clone(),
            image,
            http: http_client()?,
        });
        let mut warm = flow.fixed_rate(10, 5.0).await;
        native::wait_for_manifests(&stack.s3, &stack.outbox, &warm, Duration::from_secs(60))
            .await?;
        native::read_manifests(&stack.s3, &stack.outbox, &mut warm).await?;
        if let Some(bad) = warm.iter().find(|j| j.status != "done") {
            bail!("{name}: a warm-up job ended {}: {}", bad.status, bad.error);
        }
        let slots = workers * std::thread::available_parallelism().map_or(2, |n| n.get());
        for (mode, n) in [("light", args.light_n), ("saturation", args.sat_n)] {
            let label = format!("{name}-{mode}");
            eprintln!("loadgen: {label}: {n} uploads");
            let mut phase = Phase::begin(rec, label.clone(), slots, Some(&stack));
            let mut jobs = if mode == "light" {
                flow.fixed_rate(n, args.light_rate).await
            } else {
                flow.saturate(n, args.sat_uploaders).await
            };
            native::wait_for_manifests(&stack.s3, &stack.outbox, &jobs, Duration::from_secs(120))
                .await?;
            phase.stop_clock();
            native::read_manifests(&stack.s3, &stack.outbox, &mut jobs).await?;
            let errors = jobs.iter().filter(|j| j.status != "done").count();
            phase.end(jobs.len(), errors)?;
            for j in &jobs {
                let f = |v: f64| format!("{v:.6}");
                csv.row(&[
                    &label,
                    &mode,
                    &workers,
                    &j.index,
                    &f(j.presign_start),
                    &f(j.put_done),
                    &f(j.finished),
                    &f(j.client_done),
                    &format!("{:.2}", j.presign_ms),
                    &format!("{:.2}", j.put_ms),
                    &j.download_ms,
                    &j.process_ms,
                    &j.upload_ms,
                    &j.status,
                    &j.error,
                ])?;
            }
        }
        stack.stop();
    }
    Ok(())
}

/// `imgflow process` on the same image with the default preset (what the
/// native uploads get), `k` invocations at a time, each a new process as a
/// user would run it.
fn process_phases(args: &Args, rec: &mut Recorder) -> anyhow::Result<()> {
    let mut csv = Csv::create(
        args,
        "process_runs.csv",
        "concurrency,index,start_s,latency_ms,ok",
    )?;
    let dir = args.run_dir.join("process");
    let run_one = |slot: usize, index: usize| -> anyhow::Result<bool> {
        let out = dir.join(format!("slot{slot}-{}", index % 4));
        let status = std::process::Command::new(&args.bin)
            .arg("process")
            .arg(&args.image)
            .arg("-o")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()?;
        Ok(status.success())
    };
    for index in 0..5 {
        if !run_one(0, index)? {
            bail!("imgflow process failed on {}", args.image.display());
        }
    }
    for &k in &args.process_concurrency {
        let per_slot = args.process_n.div_ceil(k);
        let phase = Phase::begin(rec, format!("process-{k}"), k, None);
        let started = Instant::now();
        let runs: Vec<(usize, f64, f64, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..k)
                .map(|slot| {
                    let run_one = &run_one;
                    scope.spawn(move || {
                        (0..per_slot)
                            .map(|i| {
                                let t = Instant::now();
                                let ok = run_one(slot, i).unwrap_or(false);
                                let start_s = t.duration_since(started).as_secs_f64();
                                (slot * per_slot + i, start_s, t.elapsed().as_secs_f64(), ok)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a process slot panicked"))
                .collect()
        });
        let errors = runs.iter().filter(|r| !r.3).count();
        phase.end(runs.len(), errors)?;
        for (index, start_s, secs, ok) in runs {
            csv.row(&[
                &k,
                &index,
                &format!("{start_s:.4}"),
                &format!("{:.2}", secs * 1e3),
                &u8::from(ok),
            ])?;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
