//! One place that wires imgflow's long-running halves together, used by
//! `main` and by the tests alike: `App::build(config)` makes the clients and
//! binds the listeners, `App::run(shutdown)` serves until `shutdown` fires.
//! Tests change the configuration (port 0, fresh names), never the wiring.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::aws::Clients;
use crate::config::{ApiConfig, ServiceConfig, WorkerConfig};
use crate::store::Store;
use crate::worker::{self, Worker};

/// Which halves to run, and how.
pub struct Config {
    pub service: ServiceConfig,
    /// Serve the HTTP API.
    pub api: Option<ApiConfig>,
    /// Run a worker.
    pub worker: Option<WorkerConfig>,
    /// The worker's own probes and metrics listener (`imgflow worker`; with
    /// the API in the same process, the API serves them).
    pub probes: Option<SocketAddr>,
}

/// Built and bound, not yet running.
pub struct App {
    clients: Clients,
    config: ServiceConfig,
    api: Option<(TcpListener, Arc<AppState>)>,
    worker: Option<Arc<Worker>>,
    probes: Option<TcpListener>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let service = config.service;
        if let Some(worker) = &config.worker {
            worker.webhooks.check().map_err(anyhow::Error::msg)?;
        }
        let clients = Clients::new(&service.aws).await;
        let presets = service.presets.presets()?;
        let limits = service.limits.limits();
        let mut store = Store::new(clients.s3.clone(), &service.resources);
        if config.api.is_some() && config.worker.is_some() {
            // Both halves in one process: the worker tells the API's job
            // watchers when a manifest is written, instead of them polling.
            store = store.announcing(tokio::sync::broadcast::channel(1024).0);
        }
        let worker = config.worker.map(|worker| {
            Arc::new(Worker::new(
                &clients,
                store.clone(),
                &service.resources,
                limits,
                presets.clone(),
                worker,
            ))
        });
        let api = match config.api {
            Some(api) => {
                let addr = api.effective_listen();
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening on {addr}"))?;
                let state = AppState::new(
                    clients.clone(),
                    store.clone(),
                    service.resources.clone(),
                    presets,
                    limits,
                    api,
                );
                Some((listener, Arc::new(state)))
            }
            None => None,
        };
        let probes = match config.probes {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!(
                    "listening on {addr} for probes and metrics (another worker on this machine? \
                     give each its own IMGFLOW_WORKER_LISTEN, e.g. 127.0.0.1:0)"
                )
            })?),
            None => None,
        };
        Ok(App {
            clients,
            config: service,
            api,
            worker,
            probes,
        })
    }

    /// Where the API listens, if it runs.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref()?.0.local_addr().ok()
    }

    /// The S3 and SQS clients the app was built with.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Serve until `shutdown` fires, then let in-flight work finish. If the
    /// API stops on its own, the worker is stopped too.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        let worker = self
            .worker
            .map(|worker| tokio::spawn(worker.run(stop.clone())));
        let probes = self.probes.map(|listener| {
            tokio::spawn(worker::listen::serve(
                listener,
                self.clients.clone(),
                self.config.resources.clone(),
                stop.clone(),
            ))
        });
        let served = match self.api {
            Some((listener, state)) => api::serve(listener, state, stop.clone())
                .await
                .context("serving the API"),
            None => {
                stop.cancelled().await;
                Ok(())
            }
        };
        stop.cancel();
        if let Some(worker) = worker {
            worker.await.context("the worker task panicked")?;
        }
        if let Some(probes) = probes {
            probes.abort();
        }
        served
    }
}

/// Cancelled on SIGINT or SIGTERM: stop taking work, finish what is in
/// flight. A second signal exits at once (in-flight messages reappear when
/// their visibility runs out).
pub fn shutdown_on_signal() -> CancellationToken {
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
