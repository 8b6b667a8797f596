//! The accept loop: hyper's connection builder with the timeouts and the connection cap that `axum::serve` lacks.
//!
//! A hostile or broken client must not hold the server's resources forever, so every connection is bounded:
//!
//! * **Header-read timeout** (`BANKSYNC_HEADER_READ_TIMEOUT`, hyper's `header_read_timeout` with `TokioTimer`): a
//!   request's headers must arrive within it. Hyper starts this clock whenever it waits for a request, so it is also
//!   the keep-alive idle timeout between requests.
//! * **Idle timeout** (`BANKSYNC_IDLE_TIMEOUT`): a connection on which no byte moves in either direction for this
//!   long is dropped — a request body that stalls, a response the client stopped reading. Every read and write on
//!   the socket counts ([`Tracked`]), so the event stream's heartbeats ([`ServerLimits::heartbeat`]) and long-polls
//!   that answer within half of it ([`ServerLimits::long_poll`]) are never cut.
//! * **Body-read timeout** (`BANKSYNC_BODY_READ_TIMEOUT`): in `middleware::read_body`, for every route
//!   (`/webhooks/plaid` included): 408 and the connection closes.
//! * **Connection cap** (`BANKSYNC_MAX_CONNECTIONS`): a permit is taken *before* `accept`, so beyond the cap new
//!   connections wait in the kernel's listen backlog (not accepted, no file descriptor used) until a connection
//!   closes; connections already established keep being served. The timeouts above guarantee slots come free.
//!
//! Each request carries `ConnectInfo<SocketAddr>` (the peer address), as `axum::serve` would give. Shutdown is
//! graceful: the listener closes, open connections finish their requests (hyper-util's `GracefulShutdown`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::config::ServerSettings;

/// What the long-lived routes derive from the idle timeout, so it never cuts them. Handlers find it as a request
/// extension (always present: [`super::router`] adds the defaults, the server its own).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// The longest a long-poll (`?wait=`, "sync now") waits before answering: half the idle timeout, at most 30 s.
    pub long_poll: Duration,
    /// How often the event stream sends a comment while idle: a third of the idle timeout, at most 15 s.
    pub heartbeat: Duration,
    /// The whole request body must arrive within this.
    pub body_read: Duration,
}

impl ServerLimits {
    pub fn from_settings(settings: &ServerSettings) -> Self {
        ServerLimits {
            long_poll: (settings.idle_timeout / 2).min(Duration::from_secs(30)),
            heartbeat: (settings.idle_timeout / 3).min(Duration::from_secs(15)),
            body_read: settings.body_read_timeout,
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::from_settings(&ServerSettings::default())
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(settings.idle_timeout / 2));
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // The permit first: beyond the cap, connections stay in the kernel's backlog instead of being accepted.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning, the connection stays in the backlog.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked { inner: stream, activity: activity.clone() });
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(router.clone(), request)
        });
        let connection = builder.serve_connection_with_upgrades(io, service).into_owned();
        let connection = graceful.watch(connection);
        let idle_timeout = settings.idle_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            loop {
                let idle_for = activity.idle_for();
                if idle_for >= idle_timeout {
                    tracing::debug!(%peer, "closing a connection idle for {idle_for:?}");
                    break;
                }
                tokio::select! {
                    result = &mut connection => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep(idle_timeout - idle_for) => {}
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// When a connection last moved a byte, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity { opened: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.opened.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A socket that records when it last read or wrote a byte.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
