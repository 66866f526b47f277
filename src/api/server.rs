//! The HTTP server under the router: hyper-util's, because `axum::serve`
//! has no header-read timeout, no idle timeout and no connection limit, and
//! without them a client that opens connections and sends nothing (or one
//! byte at a time) holds sockets and file descriptors for ever.
//!
//! - Header-read timeout (HTTP/1): hyper starts it whenever it waits for a
//!   request head, so it ends trickled headers and idle keep-alive waits.
//! - Idle timeout (HTTP/1 and HTTP/2): a connection that moved no byte for
//!   that long, with no request being answered, is closed.
//! - Connection limit: at most that many connections are served; more wait
//!   in the kernel's listen backlog until one closes. Both timeouts bound
//!   how long an idle or half-sent connection holds its slot, so probes
//!   (`/healthz`) get a slot within a header-read timeout even when an
//!   attacker fills them all; below the limit they are served at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The server's limits (from [`crate::config::ApiConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub header_read_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_connections: usize,
}

/// Serve `router` until `shutdown` fires; then stop accepting, let every
/// in-flight request finish (idle connections close at once) and return.
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());

    loop {
        // Take a slot before accepting: past the limit, connections wait in
        // the backlog instead of costing a descriptor and a task each.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of descriptors (EMFILE) or a connection reset
                    // before accept: wait a little rather than spin.
                    tracing::warn!(message = "Failed to accept a connection", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let router = router.clone();
        let busy = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let answering = Answering::start(&busy);
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                drop(answering);
                response
            }
        });
        let connection = graceful.watch(builder.serve_connection(io, service).into_owned());
        let (idle_timeout, header_timeout) = (settings.idle_timeout, settings.header_read_timeout);
        tokio::spawn(async move {
            tokio::pin!(connection);
            loop {
                let limit = silence_limit(&activity, idle_timeout, header_timeout);
                let wait = limit.map(|limit| limit.saturating_sub(activity.idle_for()));
                tokio::select! {
                    result = &mut connection => {
                        if let Err(error) = result {
                            tracing::debug!(message = "Connection ended with an error", %error);
                        }
                        break;
                    }
                    () = sleep_or_never(wait) => {
                        // Dropping the connection closes the socket; with no
                        // request being answered, no answer is lost.
                        let limit = silence_limit(&activity, idle_timeout, header_timeout);
                        if activity.busy() == 0 && limit.is_some_and(|t| activity.idle_for() >= t) {
                            tracing::debug!("closing an idle connection");
                            break;
                        }
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// How long this connection may stay silent. Before its first request,
/// the header-read timeout too: hyper's timer starts only once the first
/// bytes have told HTTP/1 from HTTP/2, so a client that connects and sends
/// nothing would otherwise keep its slot for the whole idle timeout.
fn silence_limit(
    activity: &Activity,
    idle: Option<Duration>,
    header: Option<Duration>,
) -> Option<Duration> {
    if activity.served.load(Ordering::Relaxed) {
        idle
    } else {
        [idle, header].into_iter().flatten().min()
    }
}

async fn sleep_or_never(wait: Option<Duration>) {
    match wait {
        // At least 50 ms, so a connection just at its limit but busy does
        // not make this loop spin.
        Some(wait) => tokio::time::sleep(wait.max(Duration::from_millis(50))).await,
        None => std::future::pending().await,
    }
}

/// When a connection last moved a byte, and how many of its requests are
/// being answered.
struct Activity {
    opened: Instant,
    last_millis: AtomicU64,
    answering: AtomicUsize,
    /// A request has reached the router.
    served: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_millis: AtomicU64::new(0),
            answering: AtomicUsize::new(0),
            served: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }

    fn busy(&self) -> usize {
        self.answering.load(Ordering::Relaxed)
    }
}

/// A request being answered: a long job wait (`?wait=`, the old API's
/// uploads) moves no bytes for seconds and must not count as idle.
struct Answering(Arc<Activity>);

impl Answering {
    fn start(activity: &Arc<Activity>) -> Answering {
        activity.answering.fetch_add(1, Ordering::Relaxed);
        activity.served.store(true, Ordering::Relaxed);
        Answering(Arc::clone(activity))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.touch();
        self.0.answering.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that records when it last read or wrote a byte.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
