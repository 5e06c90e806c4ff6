//! Connection limits: a client that opens connections and then sends its requests slowly, or
//! not at all, must not hold the server's sockets and lock identity providers out.
//!
//! Three rules, applied by [`LimitedAcceptor`] to every accepted connection (plain or TLS):
//!
//! * **Header read timeout.** A request's header block must arrive within
//!   [`ConnectionLimits::header_read_timeout`], counted from the connection's accept for its
//!   first request (a TLS handshake included), and from the request's first byte on a kept-alive
//!   connection. Past it the connection is closed (the classic "slowloris" attack sends one
//!   header every few seconds, forever).
//! * **Idle keep-alive timeout.** A kept-alive connection on which no new request starts within
//!   [`ConnectionLimits::keep_alive_timeout`] of the previous response is closed.
//! * **Stalled readers.** A client that accepts no bytes of its response for
//!   [`ConnectionLimits::keep_alive_timeout`] is closed (it would hold its connection, and the
//!   request's memory, forever). A response that keeps flowing, however slowly, is not cut off:
//!   the idle time of a kept-alive connection counts from its last byte written.
//! * **Open connections cap.** Beyond [`ConnectionLimits::max_connections`] open connections,
//!   new ones are closed at once instead of taking the process's last file descriptors.
//!
//! While a request is being served (from its complete header block until its response body is
//! handed over) neither read timeout runs: the request timeout (which also bounds reading the
//! request body, see [`super::service`]) and the guest deadline bound that time.
//!
//! The phase of a connection is known from two sides: the stream wrapper ([`LimitedStream`])
//! sees bytes arrive, and the service wrapper ([`TrackedService`]) sees requests start and their
//! response bodies end. hyper's own `header_read_timeout` is left off: it starts counting when
//! the connection becomes idle, which makes a kept-alive connection's idle time and a slow
//! header one budget.

use std::future::{Future, Ready};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum_server::accept::Accept;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// The limits of [`LimitedAcceptor`]; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's complete header block.
    pub header_read_timeout: Duration,
    /// Longest a kept-alive connection may stay idle between requests.
    pub keep_alive_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Applies [`ConnectionLimits`] to the connections of an `axum_server` listener. Put it
/// innermost (under the TLS acceptor) so that a slow handshake counts against the header read
/// timeout and a connection holds its slot from its accept.
#[derive(Clone)]
pub struct LimitedAcceptor {
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    metrics: Metrics,
}

impl LimitedAcceptor {
    /// An acceptor enforcing `limits`, reporting open and refused connections in `metrics`.
    pub fn new(limits: ConnectionLimits, metrics: Metrics) -> LimitedAcceptor {
        LimitedAcceptor {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            metrics,
        }
    }
}

impl<I, S> Accept<I, S> for LimitedAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = LimitedStream<I>;
    type Service = TrackedService<S>;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.metrics.connection_refused();
            // Dropping the stream closes the connection; axum_server goes on accepting.
            return std::future::ready(Err(io::Error::other("max-connections reached")));
        };
        let phase = Arc::new(Mutex::new(Shared {
            phase: Phase::Head {
                since: Instant::now(),
            },
            reader: None,
        }));
        let stream = LimitedStream {
            inner: stream,
            limits: self.limits,
            phase: phase.clone(),
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            write_timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            write_stalled: None,
            _slot: slot,
            _open: self.metrics.connection_open(),
        };
        std::future::ready(Ok((
            stream,
            TrackedService {
                inner: service,
                phase,
            },
        )))
    }
}

/// Where a connection is in its request/response cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request's header block since `since`.
    Head { since: Instant },
    /// This many requests are being served (more than one only over HTTP/2).
    Serving(usize),
    /// Kept alive with nothing to do since `since`.
    Idle { since: Instant },
}

impl Phase {
    /// When the connection is to be closed if nothing more arrives, if ever.
    fn deadline(self, limits: &ConnectionLimits) -> Option<Instant> {
        match self {
            Phase::Head { since } => Some(since + limits.header_read_timeout),
            Phase::Serving(_) => None,
            Phase::Idle { since } => Some(since + limits.keep_alive_timeout),
        }
    }

    fn request_started(&mut self) {
        *self = match *self {
            Phase::Serving(n) => Phase::Serving(n + 1),
            Phase::Head { .. } | Phase::Idle { .. } => Phase::Serving(1),
        };
    }

    fn response_ended(&mut self) {
        *self = match *self {
            Phase::Serving(n) if n > 1 => Phase::Serving(n - 1),
            _ => Phase::Idle {
                since: Instant::now(),
            },
        };
    }

    fn bytes_arrived(&mut self) {
        if let Phase::Idle { .. } = self {
            *self = Phase::Head {
                since: Instant::now(),
            };
        }
    }

    fn bytes_written(&mut self) {
        if let Phase::Idle { .. } = self {
            *self = Phase::Idle {
                since: Instant::now(),
            };
        }
    }
}

/// What the stream and the service of one connection share.
struct Shared {
    phase: Phase,
    /// The task waiting for the connection's next bytes: the end of a response changes the
    /// read deadline (to the keep-alive one), and that task must arm it.
    reader: Option<Waker>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's stream: fails its reads with `TimedOut` once the current phase's deadline
/// passes with no bytes, which makes hyper close the connection. Holds the connection's slot.
pub struct LimitedStream<I> {
    inner: I,
    limits: ConnectionLimits,
    phase: Arc<Mutex<Shared>>,
    timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    /// Since when a write has been waiting for the client to read.
    write_stalled: Option<Instant>,
    _slot: OwnedSemaphorePermit,
    _open: crate::metrics::GaugeGuard,
}

impl<I: AsyncRead + Unpin> AsyncRead for LimitedStream<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    lock(&this.phase).phase.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let phase = {
                    let mut shared = lock(&this.phase);
                    match &shared.reader {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => shared.reader = Some(cx.waker().clone()),
                    }
                    shared.phase
                };
                let Some(deadline) = phase.deadline(&this.limits) else {
                    return Poll::Pending;
                };
                if this.timer.deadline() != deadline {
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        match phase {
                            Phase::Idle { .. } => "idle keep-alive timeout",
                            _ => "header read timeout",
                        },
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<I> LimitedStream<I> {
    /// Passes a write's outcome on, failing it once the client has accepted nothing for the
    /// keep-alive timeout; progress restarts both that clock and an idle connection's.
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => {
                let since = *self.write_stalled.get_or_insert_with(Instant::now);
                let deadline = since + self.limits.keep_alive_timeout;
                if self.write_timer.deadline() != deadline {
                    self.write_timer.as_mut().reset(deadline);
                }
                match self.write_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading its response",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Ready(result) => {
                self.write_stalled = None;
                if result.is_ok() {
                    lock(&self.phase).phase.bytes_written();
                }
                Poll::Ready(result)
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for LimitedStream<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch_write(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch_write(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection's service: marks the connection busy from each request's start until its
/// response body has been written (or dropped).
#[derive(Clone)]
pub struct TrackedService<S> {
    inner: S,
    phase: Arc<Mutex<Shared>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, R, B> tower::Service<R> for TrackedService<S>
where
    S: tower::Service<R, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        lock(&self.phase).phase.request_started();
        // The guard ends the request however it ends: with its body, or with an error.
        let guard = Serving(self.phase.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _serving: guard,
            }))
        })
    }
}

/// Marks the end of a request's response when dropped, and wakes the connection's reader so
/// that it arms the keep-alive deadline (hyper may not read again by itself).
struct Serving(Arc<Mutex<Shared>>);

impl Drop for Serving {
    fn drop(&mut self) {
        let reader = {
            let mut shared = lock(&self.0);
            shared.phase.response_ended();
            shared.reader.take()
        };
        if let Some(waker) = reader {
            waker.wake();
        }
    }
}

/// A response body that keeps its connection marked busy until it is written or dropped.
pub struct TrackedBody<B> {
    inner: B,
    _serving: Serving,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 2,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn phases_choose_the_deadline() {
        let start = Instant::now();
        let mut phase = Phase::Head { since: start };
        assert_eq!(
            phase.deadline(&limits()),
            Some(start + Duration::from_secs(10))
        );
        phase.request_started();
        phase.request_started();
        assert_eq!(phase.deadline(&limits()), None, "serving: no deadline");
        phase.response_ended();
        assert_eq!(phase.deadline(&limits()), None, "one request still served");
        tokio::time::advance(Duration::from_secs(5)).await;
        phase.response_ended();
        let idle = Instant::now();
        assert_eq!(
            phase.deadline(&limits()),
            Some(idle + Duration::from_secs(60))
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        phase.bytes_arrived();
        assert_eq!(
            phase.deadline(&limits()),
            Some(Instant::now() + Duration::from_secs(10)),
            "a new request's head has its own budget"
        );
        let head = phase;
        phase.bytes_arrived();
        assert_eq!(phase, head, "more bytes of the same head do not extend it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_times_out_and_gives_its_slot_back() {
        let metrics = Metrics::new();
        let acceptor = LimitedAcceptor::new(limits(), metrics.clone());
        let (client, server) = tokio::io::duplex(64);
        let (mut stream, _service) = acceptor.accept(server, ()).await.unwrap();
        let (other, other_server) = tokio::io::duplex(64);
        let (_second, _) = acceptor.accept(other_server, ()).await.unwrap();
        let (_third_client, third) = tokio::io::duplex(64);
        assert!(
            acceptor.accept(third, ()).await.is_err(),
            "over max-connections"
        );
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let read = tokio::io::AsyncReadExt::read(&mut stream, &mut buf);
        let err = read.await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(10),
            "at the header timeout"
        );
        drop(stream);
        drop(client);
        drop(other);
        let (_c, fourth) = tokio::io::duplex(64);
        assert!(
            acceptor.accept(fourth, ()).await.is_ok(),
            "a slot was freed"
        );
        let text = metrics.encode();
        assert!(
            text.contains("scimlet_connections_refused_total 1"),
            "{text}"
        );
    }
}
