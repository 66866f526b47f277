//! The `imgflow` binary: parse the command line, load the configuration,
//! dispatch. Everything it runs lives in the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use imgflow::api::{self, AppState};
use imgflow::aws::Clients;
use imgflow::client::{self, SubmitArgs};
use imgflow::config::{
    ApiConfig, AwsConfig, LimitsConfig, PresetConfig, QueueConfig, Resources, WorkerConfig,
};
use imgflow::recipe::{Format, Recipe};
use imgflow::telemetry::{self, LogFormat};
use imgflow::worker::Worker;
use imgflow::{dlq, pipeline, setup};

#[derive(Parser)]
#[command(
    version,
    about = "Event-driven image pipeline: S3 inbox → SQS → workers → S3 outbox"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines look (RUST_LOG picks which are written)
    #[arg(
        long,
        global = true,
        value_enum,
        env = "IMGFLOW_LOG_FORMAT",
        default_value_t
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// API and worker in one process: the whole service on one machine
    Up(UpArgs),
    /// The HTTP API alone
    Api(ApiArgs),
    /// The worker alone
    Worker(WorkerArgs),
    /// Create (idempotently) the buckets, queue, DLQ and inbox notification
    Setup(SetupArgs),
    /// Run a recipe on a local file, with no AWS at all
    Process(ProcessArgs),
    /// Send a file through the API's presigned flow and wait for the result
    Submit(SubmitArgs),
    /// List the dead-letter queue, or send its messages back to the job queue
    Dlq(DlqArgs),
    /// Exit 0 when a health URL answers 2xx (a container's HEALTHCHECK)
    Healthcheck(HealthcheckArgs),
}

#[derive(Args)]
struct HealthcheckArgs {
    /// The URL to GET (the worker's is on port 8081)
    #[arg(
        long,
        env = "IMGFLOW_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:8080/healthz"
    )]
    url: String,
}

#[derive(Args)]
struct DlqArgs {
    #[command(subcommand)]
    action: DlqAction,
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten)]
    resources: Resources,
    /// At most this many messages
    #[arg(long, default_value_t = 100, global = true)]
    max: usize,
}

#[derive(Subcommand, Clone, Copy)]
enum DlqAction {
    /// Show each message, the objects it names and why it is there
    List,
    /// Move the messages back to the job queue, to be processed again
    Redrive,
}

#[derive(Args)]
struct SetupArgs {
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten)]
    resources: Resources,
    #[command(flatten)]
    queue: QueueConfig,
}

#[derive(Args)]
struct ApiArgs {
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten)]
    resources: Resources,
    #[command(flatten)]
    api: ApiConfig,
    #[command(flatten)]
    limits: LimitsConfig,
    #[command(flatten)]
    presets: PresetConfig,
}

#[derive(Args)]
struct WorkerArgs {
    /// Address of the worker's probes and metrics (`/healthz`, `/readyz`, `/metrics`)
    #[arg(long, env = "IMGFLOW_WORKER_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten)]
    resources: Resources,
    #[command(flatten)]
    worker: WorkerConfig,
    #[command(flatten)]
    limits: LimitsConfig,
    #[command(flatten)]
    presets: PresetConfig,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten)]
    resources: Resources,
    #[command(flatten)]
    api: ApiConfig,
    #[command(flatten)]
    worker: WorkerConfig,
    #[command(flatten)]
    limits: LimitsConfig,
    #[command(flatten)]
    presets: PresetConfig,
}

#[derive(Args)]
struct ProcessArgs {
    /// The image to process
    input: PathBuf,
    /// Output file (one output with an extension) or folder (`<name>.<ext>` per output)
    #[arg(short, long)]
    output: PathBuf,
    /// Recipe to run; without one, the default preset
    #[arg(long)]
    recipe: Option<String>,
    /// Preset to run instead of a recipe
    #[arg(long = "use-preset", conflicts_with = "recipe")]
    use_preset: Option<String>,
    #[command(flatten)]
    limits: LimitsConfig,
    #[command(flatten)]
    presets: PresetConfig,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let telemetry = telemetry::init(cli.log_format, cli.command.service_name());
    let endpoint = cli
        .command
        .aws()
        .and_then(|aws| aws.endpoint().map(str::to_owned));
    let code = match run(cli.command).await {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("imgflow: {err:#}");
            // The SDK words "nothing listens there" as a dispatch failure.
            if format!("{err:#}").contains("dispatch failure") {
                let target = endpoint.as_deref().unwrap_or("AWS");
                eprintln!(
                    "hint: nothing answered at {target}; start LocalStack (scripts/localstack.sh start) \
                     or point AWS_ENDPOINT_URL / --real-aws elsewhere"
                );
            }
            1
        }
    };
    telemetry.shutdown();
    // Exit now: returning would wait for image work still running on blocking
    // threads after a shutdown, whose messages were already handed back.
    std::process::exit(code);
}

impl Command {
    fn aws(&self) -> Option<&AwsConfig> {
        match self {
            Command::Up(a) => Some(&a.aws),
            Command::Api(a) => Some(&a.aws),
            Command::Worker(a) => Some(&a.aws),
            Command::Setup(a) => Some(&a.aws),
            Command::Dlq(a) => Some(&a.aws),
            Command::Process(_) | Command::Submit(_) | Command::Healthcheck(_) => None,
        }
    }

    /// The OpenTelemetry service name of long-running commands; `None`: no tracing.
    fn service_name(&self) -> Option<&'static str> {
        match self {
            Command::Api(_) => Some("imgflow-api"),
            Command::Worker(_) => Some("imgflow-worker"),
            // Both halves in one process, so one resource for both.
            Command::Up(_) => Some("imgflow"),
            _ => None,
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Setup(args) => {
            let clients = Clients::new(&args.aws).await;
            let report = setup::setup(&clients, &args.resources, &args.queue).await?;
            println!(
                "ready: inbox s3://{} → queue {} (DLQ {}) → outbox s3://{}",
                args.resources.inbox, report.queue_url, report.dlq_url, args.resources.outbox
            );
            Ok(())
        }
        Command::Api(args) => {
            let clients = Clients::new(&args.aws).await;
            let state = api_state(
                clients,
                args.resources,
                args.api,
                &args.limits,
                &args.presets,
            )?;
            let shutdown = shutdown_on_signal();
            serve_api(state, shutdown).await
        }
        Command::Worker(args) => {
            let clients = Clients::new(&args.aws).await;
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| {
                    format!(
                        "listening on {} for probes and metrics (another worker on this machine? \
                         give each its own IMGFLOW_WORKER_LISTEN, e.g. 127.0.0.1:0)",
                        args.listen
                    )
                })?;
            let worker = worker(
                clients.clone(),
                args.resources.clone(),
                &args.worker,
                &args.limits,
                &args.presets,
            )?;
            let shutdown = shutdown_on_signal();
            let probes = tokio::spawn(imgflow::worker::listen::serve(
                listener,
                clients,
                args.resources,
                shutdown.clone(),
            ));
            worker.run(shutdown).await;
            probes.abort();
            Ok(())
        }
        Command::Up(args) => {
            let clients = Clients::new(&args.aws).await;
            let worker = worker(
                clients.clone(),
                args.resources.clone(),
                &args.worker,
                &args.limits,
                &args.presets,
            )?;
            let state = api_state(
                clients,
                args.resources,
                args.api,
                &args.limits,
                &args.presets,
            )?;
            let shutdown = shutdown_on_signal();
            let worker = tokio::spawn(worker.run(shutdown.clone()));
            let served = serve_api(state, shutdown.clone()).await;
            // If the API stops on its own (say, the port is taken), stop the worker too.
            shutdown.cancel();
            worker.await.context("the worker task panicked")?;
            served
        }
        Command::Process(args) => process(&args),
        Command::Healthcheck(args) => healthcheck(&args.url).await,
        Command::Submit(args) => client::submit(&args).await,
        Command::Dlq(args) => {
            let clients = Clients::new(&args.aws).await;
            match args.action {
                DlqAction::List => {
                    let entries = dlq::list(&clients, &args.resources, args.max).await?;
                    for e in &entries {
                        println!(
                            "{}  receives={}  objects=[{}]\n    {}",
                            e.message_id,
                            e.receives,
                            e.objects.join(", "),
                            e.reason
                        );
                    }
                    println!("{} message(s) in {}", entries.len(), args.resources.dlq());
                }
                DlqAction::Redrive => {
                    let moved = dlq::redrive(&clients, &args.resources, args.max).await?;
                    println!(
                        "moved {moved} message(s) from {} to {}",
                        args.resources.dlq(),
                        args.resources.queue
                    );
                }
            }
            Ok(())
        }
    }
}

fn api_state(
    clients: Clients,
    resources: Resources,
    config: ApiConfig,
    limits: &LimitsConfig,
    presets: &PresetConfig,
) -> anyhow::Result<Arc<AppState>> {
    Ok(Arc::new(AppState {
        clients,
        resources,
        presets: presets.presets()?,
        limits: limits.limits(),
        config,
    }))
}

async fn serve_api(state: Arc<AppState>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let addr = state.config.effective_listen();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    api::serve(listener, state, shutdown)
        .await
        .context("serving the API")
}

fn worker(
    clients: Clients,
    resources: Resources,
    config: &WorkerConfig,
    limits: &LimitsConfig,
    presets: &PresetConfig,
) -> anyhow::Result<Arc<Worker>> {
    Ok(Arc::new(Worker::new(
        clients,
        resources,
        limits.limits(),
        presets.presets()?,
        config.settings(),
    )))
}

/// Cancelled on SIGINT or SIGTERM: stop taking work, finish what is in
/// flight. A second signal exits at once (in-flight messages reappear when
/// their visibility runs out).
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!(
            "shutting down: finishing in-flight work and the open long poll (at most the poll wait); \
             a second Ctrl-C quits at once"
        );
        cancel.cancel();
        signal().await;
        eprintln!("imgflow: second signal, exiting now");
        std::process::exit(130);
    });
    token
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn healthcheck(url: &str) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    Ok(())
}

fn process(args: &ProcessArgs) -> anyhow::Result<()> {
    let presets = args.presets.presets()?;
    let mut recipe = presets
        .resolve(args.recipe.as_deref(), args.use_preset.as_deref())?
        .recipe;
    let single_file = recipe.outputs.len() == 1 && args.output.extension().is_some();
    if single_file && recipe.outputs[0].format.is_none() {
        // `-o out.png` means PNG, as it does for sharp and ImageMagick.
        recipe.outputs[0].format = Some(format_for(&args.output)?);
    }
    let bytes =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let renditions = pipeline::run(&bytes, &recipe, &args.limits.limits())
        .with_context(|| format!("processing {}", args.input.display()))?;
    for rendition in renditions {
        let path = if single_file {
            args.output.clone()
        } else {
            std::fs::create_dir_all(&args.output)
                .with_context(|| format!("creating {}", args.output.display()))?;
            args.output.join(format!(
                "{}.{}",
                rendition.name,
                rendition.format.extension()
            ))
        };
        write(&path, &rendition.bytes)?;
        println!(
            "{}: {} {}x{}, {} bytes",
            path.display(),
            rendition.format.name(),
            rendition.width,
            rendition.height,
            rendition.bytes.len()
        );
    }
    Ok(())
}

/// The format an output file's extension names, with default settings.
fn format_for(path: &Path) -> anyhow::Result<Format> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let step = match extension.as_str() {
        "jpg" | "jpeg" => "jpeg",
        "png" => "png",
        "webp" => "webp",
        "gif" => "gif",
        other => anyhow::bail!(
            "no format for the extension {other:?} of {}: end the recipe with jpeg, png, webp or gif",
            path.display()
        ),
    };
    Ok(Recipe::parse(step)?.outputs[0]
        .format
        .expect("a format step"))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
