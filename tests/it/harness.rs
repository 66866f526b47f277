//! One fresh imgflow per test: its own uuid-named buckets and queues on the
//! LocalStack at `AWS_ENDPOINT_URL` (default 127.0.0.1:4566), a worker, and
//! the API on a random loopback port. `TEST_LOG=1` shows the service's logs.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use imgflow::app::{self, App};
use imgflow::aws::Clients;
use imgflow::config::{
    ApiConfig, AwsConfig, LimitsConfig, PresetConfig, QueueConfig, Resources, ServiceConfig,
    WorkerConfig,
};
use imgflow::outbox::{self, Manifest};
use imgflow::pipeline::Limits;
use imgflow::setup::{self, SetupReport};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use tokio_util::sync::CancellationToken;

pub const ROCKET: &[u8] = include_bytes!("../fixtures/rocket.jpg");
pub const CHELSEA: &[u8] = include_bytes!("../fixtures/chelsea.png");
pub const NOT_AN_IMAGE: &[u8] = include_bytes!("../fixtures/not-an-image.txt");

pub struct TestApp {
    pub clients: Clients,
    /// The S3 calls of the app under test (its own clients, not `clients`).
    pub app_calls: imgflow::aws::Calls,
    pub resources: Resources,
    pub queues: SetupReport,
    /// `http://127.0.0.1:<port>`
    pub api: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

/// Every span this test process has finished (all tests share one global
/// subscriber); `TEST_LOG=1` also prints the log lines.
pub fn spans() -> &'static InMemorySpanExporter {
    static SPANS: OnceLock<InMemorySpanExporter> = OnceLock::new();
    SPANS.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let logs = std::env::var_os("TEST_LOG").map(|_| imgflow::telemetry::LogFormat::Text);
        // Never shut down: the provider lives as long as the process.
        std::mem::forget(imgflow::telemetry::init_with_exporter(
            exporter.clone(),
            logs,
        ));
        exporter
    })
}

pub fn aws_config() -> AwsConfig {
    AwsConfig {
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        real_aws: false,
        region: "us-east-1".into(),
    }
}

/// Resources no other test uses.
pub fn fresh_resources() -> Resources {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
    Resources {
        inbox: format!("it-{id}-inbox"),
        outbox: format!("it-{id}-outbox"),
        queue: format!("it-{id}-jobs"),
    }
}

/// Debug builds on a loaded 2-core CI machine run the heavy test jobs for
/// tens of seconds: the deadline tests set their own, shorter one.
pub const TEST_JOB_DEADLINE_SECS: u64 = 600;

/// How [`TestApp::spawn_with`] sets things up.
pub struct Options {
    pub queue: QueueConfig,
    /// `None`: no worker in this process (tests start `imgflow worker` themselves).
    pub worker: Option<WorkerConfig>,
    /// API keys the API accepts (none: an open API).
    pub api_keys: Vec<String>,
    pub upload_expiry_secs: u64,
}

pub fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue: QueueConfig::default(),
            worker: Some(WorkerConfig {
                concurrency: Some(2),
                poll_wait_secs: 2,
                ..WorkerConfig::default()
            }),
            api_keys: vec![],
            upload_expiry_secs: 300,
        }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        TestApp::spawn_with_api(options, ApiConfig::default()).await
    }

    /// As [`TestApp::spawn_with`], with the API's server settings from
    /// `api` (its listen address, keys and expiries come from `options`).
    pub async fn spawn_with_api(options: Options, api: ApiConfig) -> TestApp {
        let clients = Clients::new(&aws_config()).await;
        let resources = fresh_resources();
        let queues = setup::setup(&clients, &resources, &options.queue)
            .await
            .expect("setup against LocalStack (is it running? scripts/localstack.sh start)");
        TestApp::spawn_configured(clients, resources, queues, options, api).await
    }

    /// A worker and the API on resources made elsewhere (`infra.rs`: a
    /// CloudFormation stack); `options.queue` is not used.
    pub async fn spawn_on(
        clients: Clients,
        resources: Resources,
        queues: SetupReport,
        options: Options,
    ) -> TestApp {
        TestApp::spawn_configured(clients, resources, queues, options, ApiConfig::default()).await
    }

    async fn spawn_configured(
        clients: Clients,
        resources: Resources,
        queues: SetupReport,
        options: Options,
        api: ApiConfig,
    ) -> TestApp {
        spans();
        let limits = Limits::default();
        let config = app::Config {
            service: ServiceConfig {
                aws: aws_config(),
                resources: resources.clone(),
                limits: LimitsConfig {
                    max_bytes: limits.max_bytes,
                    max_dimension: limits.max_width,
                    max_pixels: limits.max_pixels,
                },
                presets: PresetConfig {
                    presets: vec![],
                    default_preset: "default".into(),
                    routes: vec![],
                },
            },
            api: Some(ApiConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                upload_expiry_secs: options.upload_expiry_secs,
                download_expiry_secs: 300,
                api_key_hashes: options
                    .api_keys
                    .iter()
                    .map(|k| imgflow::config::KeyHash(sha256(k)))
                    .collect(),
                ..api
            }),
            // The worker runs in this test binary; its sandbox children run imgflow.
            worker: options.worker.map(|mut worker| {
                worker
                    .sandbox_exe
                    .get_or_insert(env!("CARGO_BIN_EXE_imgflow").into());
                if worker.job_deadline_secs == imgflow::config::DEFAULT_JOB_DEADLINE_SECS {
                    worker.job_deadline_secs = TEST_JOB_DEADLINE_SECS;
                }
                worker
            }),
            probes: None,
        };
        let app = App::build(config).await.expect("building the app");
        let addr = app.api_addr().expect("the API listens");
        let app_calls = app.clients().calls.clone();
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run(shutdown.clone()));

        TestApp {
            clients,
            app_calls,
            resources,
            queues,
            api: format!("http://{addr}"),
            http: reqwest::Client::new(),
            shutdown,
        }
    }

    /// `POST /v1/uploads`: the status and the JSON answer.
    pub async fn post_upload(
        &self,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/v1/uploads", self.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// PUT `bytes` to a `POST /v1/uploads` answer's presigned URL with the
    /// headers it signed, as a client does: the status S3 answered.
    pub async fn put_upload(
        &self,
        upload: &serde_json::Value,
        bytes: &[u8],
    ) -> reqwest::StatusCode {
        let mut put = self.http.put(upload["upload_url"].as_str().unwrap());
        for (name, value) in upload["headers"].as_object().unwrap() {
            put = put.header(name, value.as_str().unwrap());
        }
        put.body(bytes.to_vec()).send().await.unwrap().status()
    }

    /// `GET` an upload's `job_url` with `query` (`""`, `"?wait=20"`): the
    /// job's JSON.
    pub async fn job(&self, upload: &serde_json::Value, query: &str) -> serde_json::Value {
        let url = format!("{}{}{query}", self.api, upload["job_url"].as_str().unwrap());
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `imgflow worker` as a child process on this app's resources; its
    /// log goes to `target/test-logs/<inbox>-<n>.log`.
    pub fn worker_process(&self, env: &[(&str, &str)]) -> std::process::Child {
        let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let log = logs.join(format!(
            "{}-{}.log",
            self.resources.inbox,
            uuid::Uuid::new_v4().simple()
        ));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"));
        command
            .arg("worker")
            .env("IMGFLOW_INBOX", &self.resources.inbox)
            .env("IMGFLOW_OUTBOX", &self.resources.outbox)
            .env("IMGFLOW_QUEUE", &self.resources.queue)
            .env("IMGFLOW_POLL_WAIT", "1")
            .env("IMGFLOW_JOB_DEADLINE", TEST_JOB_DEADLINE_SECS.to_string())
            // Several workers run at once: each probe listener on a free port.
            .env("IMGFLOW_WORKER_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "imgflow=debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        command.spawn().expect("start imgflow worker")
    }

    /// `imgflow api` as a child process on this app's resources, on a free
    /// loopback port: the child and its `http://127.0.0.1:<port>`. Its log
    /// goes to `target/test-logs/<inbox>-api-<n>.log`.
    pub fn api_process(&self, env: &[(&str, &str)]) -> (std::process::Child, String) {
        let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let log = logs.join(format!(
            "{}-api-{}.log",
            self.resources.inbox,
            uuid::Uuid::new_v4().simple()
        ));
        // A port the OS just handed out and took back: free unless another
        // process grabs it in between, which a test run can live with.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"));
        command
            .arg("api")
            .env("IMGFLOW_INBOX", &self.resources.inbox)
            .env("IMGFLOW_OUTBOX", &self.resources.outbox)
            .env("IMGFLOW_QUEUE", &self.resources.queue)
            .env("IMGFLOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "imgflow=info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start imgflow api");
        (child, format!("http://127.0.0.1:{port}"))
    }

    /// `GET` a path of the API and parse the answer as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Put a message on the job queue, as S3 would.
    pub async fn send(&self, body: &str) {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.queues.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Write straight to the inbox, as `aws s3 cp --metadata` would; the ETag.
    pub async fn put_inbox(&self, key: &str, bytes: &[u8], metadata: &[(&str, &str)]) -> String {
        let metadata: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.clients
            .s3
            .put_object()
            .bucket(&self.resources.inbox)
            .key(key)
            .set_metadata(Some(metadata))
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .expect("put into the inbox")
            .e_tag
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned()
    }

    pub async fn get_outbox(&self, key: &str) -> Option<Vec<u8>> {
        let out = self
            .clients
            .s3
            .get_object()
            .bucket(&self.resources.outbox)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.unwrap().into_bytes().to_vec())
    }

    /// The manifest for `inbox_key`, once the worker has written it.
    pub async fn wait_for_manifest(&self, inbox_key: &str) -> Manifest {
        let key = outbox::manifest_key(inbox_key);
        // Generous: the suites share two cores with each other in CI.
        for _ in 0..480 {
            if let Some(bytes) = self.get_outbox(&key).await {
                return serde_json::from_slice(&bytes).expect("manifest is JSON");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("no manifest at {key} after 120 s");
    }

    /// Only the in-flight (received, not yet deleted) messages on a queue.
    pub async fn in_flight(&self, queue_url: &str) -> u64 {
        self.queue_attr(
            queue_url,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .await
    }

    async fn queue_attr(&self, queue_url: &str, name: QueueAttributeName) -> u64 {
        self.queue_attributes(queue_url, std::slice::from_ref(&name))
            .await
            .get(&name)
            .map_or(0, |v| v.parse().unwrap())
    }

    /// A queue's attributes (`QueueAttributeName::All` for every one).
    pub async fn queue_attributes(
        &self,
        queue_url: &str,
        names: &[QueueAttributeName],
    ) -> HashMap<QueueAttributeName, String> {
        self.clients
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default()
    }

    /// Visible plus in-flight messages on a queue.
    pub async fn messages_on(&self, queue_url: &str) -> u64 {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ];
        let attrs = self.queue_attributes(queue_url, &names).await;
        names
            .iter()
            .map(|a| attrs.get(a).map_or(0, |v| v.parse::<u64>().unwrap()))
            .sum()
    }

    /// Wait until the job queue holds nothing, visible or in flight: every
    /// message was deleted (a message left undeleted stays in flight for
    /// the visibility timeout, far longer than this waits).
    pub async fn wait_until_queue_is_empty(&self) {
        self.wait_until_empty(&self.queues.queue_url, 20).await;
    }

    pub async fn wait_until_empty(&self, queue_url: &str, seconds: u64) {
        for _ in 0..seconds * 4 {
            if self.messages_on(queue_url).await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{queue_url} still holds messages after {seconds} s");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Width and height of an encoded image, and its format.
pub fn decoded(bytes: &[u8]) -> (u32, u32, image::ImageFormat) {
    let format = image::guess_format(bytes).expect("an image format");
    let image = image::load_from_memory(bytes).expect("decodes");
    (image.width(), image.height(), format)
}
