//! The `imgflow` binary: parse the command line, load the configuration,
//! dispatch. Everything it runs lives in the library.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use imgflow::app::{self, App};
use imgflow::aws::Clients;
use imgflow::backfill::{self, BackfillArgs};
use imgflow::client::{self, SubmitArgs};
use imgflow::config::{
    ApiConfig, AwsConfig, CorsOrigins, PresetConfig, QueueConfig, Resources, ServiceConfig,
    WorkerConfig,
};
use imgflow::dlq::{self, DlqArgs};
use imgflow::process::{self, ProcessArgs};
use imgflow::setup;
use imgflow::telemetry::{self, LogFormat};

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
    /// Enqueue jobs for objects already in the inbox (resumable, rate-limited)
    Backfill(BackfillArgs),
    /// Exit 0 when a health URL answers 2xx (a container's HEALTHCHECK)
    Healthcheck(HealthcheckArgs),
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    api: ApiConfig,
    #[command(flatten)]
    worker: WorkerConfig,
}

#[derive(Args)]
struct ApiArgs {
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    api: ApiConfig,
}

#[derive(Args)]
struct WorkerArgs {
    /// Address of the worker's probes and metrics (`/healthz`, `/readyz`, `/metrics`)
    #[arg(long, env = "IMGFLOW_WORKER_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    worker: WorkerConfig,
}

#[derive(Args)]
struct SetupArgs {
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten)]
    resources: Resources,
    #[command(flatten)]
    queue: QueueConfig,
    #[command(flatten)]
    cors: CorsOrigins,
    /// Checked (each route must name a preset) and printed for the workers
    #[command(flatten)]
    presets: PresetConfig,
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

fn main() {
    // A sandbox child confines itself before anything else runs: no runtime,
    // no telemetry, no CLI parsing of its own.
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(imgflow::sandbox::CHILD_COMMAND) {
        let mut number = || args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
        let (memory, cpu) = (number(), number());
        imgflow::sandbox::child::main(memory, cpu);
    }
    serve();
}

#[tokio::main]
async fn serve() {
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
            Command::Up(a) => Some(&a.service.aws),
            Command::Api(a) => Some(&a.service.aws),
            Command::Worker(a) => Some(&a.service.aws),
            Command::Setup(a) => Some(&a.aws),
            Command::Dlq(a) => Some(&a.aws),
            Command::Backfill(a) => Some(&a.aws),
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
    let serve = |config: app::Config| async move {
        let app = App::build(config).await?;
        app.run(app::shutdown_on_signal()).await
    };
    match command {
        Command::Up(args) => {
            serve(app::Config {
                service: args.service,
                api: Some(args.api),
                worker: Some(args.worker),
                probes: None,
            })
            .await
        }
        Command::Api(args) => {
            serve(app::Config {
                service: args.service,
                api: Some(args.api),
                worker: None,
                probes: None,
            })
            .await
        }
        Command::Worker(args) => {
            serve(app::Config {
                service: args.service,
                api: None,
                worker: Some(args.worker),
                probes: Some(args.listen),
            })
            .await
        }
        Command::Setup(args) => {
            let presets = args.presets.presets()?;
            let clients = Clients::new(&args.aws).await;
            let report = setup::setup(&clients, &args.resources, &args.queue).await?;
            setup::cors(&clients, &args.resources, &args.cors.list()).await?;
            println!(
                "ready: inbox s3://{} → queue {} (DLQ {}) → outbox s3://{}",
                args.resources.inbox, report.queue_url, report.dlq_url, args.resources.outbox
            );
            print!("{}", imgflow::recipe::routes_note(presets.routes()));
            Ok(())
        }
        Command::Process(args) => process::process(&args),
        Command::Submit(args) => client::submit(&args).await,
        Command::Healthcheck(args) => client::healthcheck(&args.url).await,
        Command::Dlq(args) => dlq::run(&args).await,
        Command::Backfill(args) => backfill::run(&args).await,
    }
}
