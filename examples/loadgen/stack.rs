//! One phase's private environment: a LocalStack on its own port with its
//! own state, fresh buckets and queue, `imgflow api` and N `imgflow worker`s.
//! Everything runs in its own process group, recorded in `pids/`, so that
//! `bench/evaluate.sh` can end what a crashed harness left behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use std::os::unix::process::CommandExt;

/// Where the binaries are and which ports to use.
pub struct StackConfig {
    pub bin: PathBuf,
    pub venv: PathBuf,
    pub run_dir: PathBuf,
    pub port: u16,
    pub api_port: u16,
}

/// A child in its own process group; stopped (TERM, then KILL) on drop.
pub struct Group {
    name: String,
    child: Child,
    pidfile: PathBuf,
}

impl Group {
    fn spawn(mut cmd: Command, name: &str, dir: &Path) -> anyhow::Result<Group> {
        let log = File::create(dir.join("logs").join(format!("{name}.log")))?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let pidfile = dir.join("..").join("pids").join(format!("{name}.pid"));
        std::fs::write(&pidfile, child.id().to_string())?;
        Ok(Group {
            name: name.to_owned(),
            child,
            pidfile,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }

    fn stop(&mut self, grace: Duration) {
        if self.alive() {
            self.signal("-TERM");
            let deadline = Instant::now() + grace;
            while self.alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The group may hold children even after its leader is gone.
        self.signal("-KILL");
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pidfile);
        eprintln!("loadgen: stopped {}", self.name);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

pub struct Stack {
    pub endpoint: String,
    pub api_url: String,
    pub inbox: String,
    pub outbox: String,
    pub queue: String,
    pub s3: aws_sdk_s3::Client,
    dir: PathBuf,
    phase: String,
    // Fields drop in this order: workers and api before their LocalStack.
    pub workers: Vec<Group>,
    pub api: Option<Group>,
    pub localstack: Group,
    /// Last: this phase's S3 storage and temporary files, once LocalStack is gone.
    _files: Files,
}

/// Folders deleted on drop, whatever ended the phase.
struct Files(Vec<PathBuf>);

impl Drop for Files {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Stack {
    /// A fresh LocalStack with `imgflow setup` done; no api, no workers yet.
    pub async fn start(config: &StackConfig, phase: &str) -> anyhow::Result<Stack> {
        let dir = config.run_dir.join(phase);
        std::fs::create_dir_all(dir.join("logs"))?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::create_dir_all(config.run_dir.join("pids"))?;
        let listen = format!("127.0.0.1:{}", config.port);
        let endpoint = format!("http://{listen}");
        let http = reqwest::Client::new();
        if http
            .get(format!("{endpoint}/_localstack/health"))
            .send()
            .await
            .is_ok()
        {
            bail!("something already answers on {listen}; pick another --port");
        }
        let mut cmd = Command::new(config.venv.join("bin/python"));
        cmd.args(["-m", "localstack.runtime.main"])
            .current_dir(&dir)
            .envs([
                ("SERVICES", "s3,sqs"),
                ("GATEWAY_LISTEN", &listen),
                ("DISABLE_EVENTS", "1"),
                ("SKIP_SSL_CERT_DOWNLOAD", "1"),
                ("DNS_ADDRESS", "0"),
                ("S3_SKIP_SIGNATURE_VALIDATION", "0"),
                ("LOCALSTACK_HOST", &listen),
                ("SQS_ENDPOINT_STRATEGY", "path"),
            ])
            .env("TMPDIR", dir.join("tmp"))
            .env("LOCALSTACK_VOLUME_DIR", dir.join("tmp/volume"));
        let mut localstack = Group::spawn(cmd, &format!("{phase}-localstack"), &dir)?;
        let started = Instant::now();
        loop {
            if let Ok(answer) = http
                .get(format!("{endpoint}/_localstack/health"))
                .send()
                .await
                && let Ok(body) = answer.json::<serde_json::Value>().await
                && ["s3", "sqs"]
                    .iter()
                    .all(|s| matches!(body["services"][s].as_str(), Some("running" | "available")))
            {
                break;
            }
            if !localstack.alive() || started.elapsed() > Duration::from_secs(90) {
                bail!("LocalStack did not become healthy; see {}", dir.display());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!(
            "loadgen: [{phase}] LocalStack ready on {listen} in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let name = format!("eval-{}-{:08x}", phase, fastrand::u32(..));
        let aws = imgflow::config::AwsConfig {
            endpoint_url: Some(endpoint.clone()),
            real_aws: false,
            region: "us-east-1".into(),
        };
        let s3 = imgflow::aws::Clients::new(&aws).await.s3;
        let storage = Path::new("/tmp/localstack-s3-storage");
        let files = Files(vec![
            storage.join(format!("{name}-inbox")),
            storage.join(format!("{name}-outbox")),
            dir.join("tmp"),
        ]);
        let stack = Stack {
            api_url: format!("http://127.0.0.1:{}", config.api_port),
            inbox: format!("{name}-inbox"),
            outbox: format!("{name}-outbox"),
            queue: format!("{name}-jobs"),
            endpoint,
            s3,
            dir,
            phase: phase.to_owned(),
            workers: vec![],
            api: None,
            localstack,
            _files: files,
        };
        let status = stack
            .imgflow(config, &["setup"])
            .stdout(File::create(stack.dir.join("logs/setup.log"))?)
            .stderr(File::create(stack.dir.join("logs/setup.err"))?)
            .status()?;
        if !status.success() {
            bail!("imgflow setup failed; see {}", stack.dir.display());
        }
        Ok(stack)
    }

    fn imgflow(&self, config: &StackConfig, args: &[&str]) -> Command {
        let mut cmd = Command::new(&config.bin);
        cmd.args(args)
            .env_remove("RUST_LOG")
            .env_remove("IMGFLOW_LOG_FORMAT")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("IMGFLOW_INBOX", &self.inbox)
            .env("IMGFLOW_OUTBOX", &self.outbox)
            .env("IMGFLOW_QUEUE", &self.queue);
        cmd
    }

    /// `imgflow api` on the configured port; returns when `/readyz` answers 200.
    pub async fn start_api(&mut self, config: &StackConfig) -> anyhow::Result<()> {
        let listen = format!("127.0.0.1:{}", config.api_port);
        let cmd = self.imgflow(config, &["api", "--listen", &listen]);
        let mut api = Group::spawn(cmd, "api", &self.dir)?;
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(answer) = http.get(format!("{}/readyz", self.api_url)).send().await
                && answer.status().is_success()
            {
                break;
            }
            if !api.alive() || started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "imgflow api did not become ready; see {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.api = Some(api);
        Ok(())
    }

    /// `n` more `imgflow worker`s (default concurrency: the number of CPUs);
    /// returns when each has logged that it started.
    pub async fn start_workers(&mut self, config: &StackConfig, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let name = format!("worker-{}", self.workers.len() + 1);
            let mut cmd = self.imgflow(config, &["worker"]);
            // Each worker's probe and metrics listener on a port of its own.
            cmd.env("IMGFLOW_WORKER_LISTEN", "127.0.0.1:0");
            let mut worker = Group::spawn(cmd, &name, &self.dir)?;
            let log = self.dir.join("logs").join(format!("{name}.log"));
            let started = Instant::now();
            while !std::fs::read_to_string(&log)?.contains("worker started") {
                if !worker.alive() || started.elapsed() > Duration::from_secs(30) {
                    bail!("{name} did not start; see {}", log.display());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.workers.push(worker);
        }
        Ok(())
    }

    /// LocalStack's log: one line per S3 or SQS call.
    pub fn localstack_log(&self) -> PathBuf {
        self.dir
            .join("logs")
            .join(format!("{}-localstack.log", self.phase))
    }

    /// The imgflow processes' and LocalStack's pids, for CPU accounting.
    pub fn pids(&self) -> Pids {
        Pids {
            localstack: self.localstack.pid(),
            api: self.api.as_ref().map(Group::pid),
            workers: self.workers.iter().map(Group::pid).collect(),
        }
    }

    /// Stop everything, then delete this phase's S3 storage and temporary
    /// files (dropping the stack does the same).
    pub fn stop(self) {
        drop(self);
    }
}

#[derive(Clone, Debug, Default)]
pub struct Pids {
    pub localstack: u32,
    pub api: Option<u32>,
    pub workers: Vec<u32>,
}
