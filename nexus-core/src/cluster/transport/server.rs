//! The peer listener: axum over HTTP/2 with prior knowledge, and HTTP/1.1
//! on the same port (hyper detects the HTTP/2 preface per connection).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use super::{PING_PATH, PeerHandler, PeerRequest, TransportConfig, path};

/// A node's peer listener: serves every request with one [`PeerHandler`].
///
/// At most [`max_in_flight`](TransportConfig::max_in_flight) requests are
/// handled at once; one more is answered HTTP 503 at once, which the client
/// reports as [`Overloaded`](super::TransportError::Overloaded).
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::cluster::transport::{PeerHandler, PeerRequest, PeerResponse, PeerServer, TransportConfig};
/// struct Nothing;
/// #[async_trait::async_trait]
/// impl PeerHandler for Nothing {
///     async fn handle(&self, _: PeerRequest) -> PeerResponse { PeerResponse::new(Vec::new()) }
/// }
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let server = PeerServer::bind("127.0.0.1:0".parse().unwrap(), Arc::new(Nothing), &TransportConfig::default())
///     .await
///     .unwrap();
/// assert_ne!(server.local_addr().port(), 0);
/// server.shutdown().await;
/// # });
/// ```
#[derive(Debug)]
pub struct PeerServer {
    local_addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<io::Result<()>>,
}

/// What every request's handler shares.
struct Shared {
    handler: Arc<dyn PeerHandler>,
    /// One permit per request being handled: the bound on in-flight work.
    /// A request that finds none is shed, never queued.
    in_flight: Arc<Semaphore>,
}

impl PeerServer {
    /// Listens on `addr` (port 0 picks a free port; see
    /// [`local_addr`](Self::local_addr)) and serves every request with
    /// `handler`, until [`shutdown`](Self::shutdown).
    pub async fn bind(
        addr: SocketAddr,
        handler: Arc<dyn PeerHandler>,
        config: &TransportConfig,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            handler,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        });
        let router = Router::new()
            .route(&path("{route}"), post(serve))
            .route(PING_PATH, get(|| async { StatusCode::NO_CONTENT }))
            .layer(DefaultBodyLimit::max(config.max_body_bytes))
            .with_state(shared);
        let listener = Counting {
            inner: listener,
            accepted: Arc::clone(&accepted),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // A dropped sender (the server value dropped) stops too.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            local_addr,
            accepted,
            stop,
            serving,
        })
    }

    /// The address the server listens on, with the port it picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many TCP connections the server accepted so far: with
    /// [`PeerClient`](super::PeerClient)s that reuse their connection, one
    /// per client (and per reconnection).
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Stops accepting connections and requests, lets the requests in
    /// flight finish and be answered, then closes every connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.serving.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "peer server stopped with an error"),
            Err(error) => tracing::warn!(%error, "peer server task failed"),
        }
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    Path(route): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(permit) = Arc::clone(&shared.in_flight).try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response();
    };
    let handler = Arc::clone(&shared.handler);
    let request = PeerRequest::new(route, body.to_vec());
    // Its own task: a panic fails this request only (not the connection
    // that multiplexes others), and a caller that stops waiting does not
    // cut the handler off halfway through a command.
    let task = tokio::spawn(async move {
        let response = handler.handle(request).await;
        drop(permit);
        response
    });
    match task.await {
        Ok(response) => (StatusCode::OK, response.body).into_response(),
        Err(error) => {
            tracing::error!(%error, "peer handler failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the handler failed").into_response()
        }
    }
}

/// The TCP listener, counting accepted connections and turning Nagle's
/// algorithm off: requests are small and latency-bound.
struct Counting {
    inner: TcpListener,
    accepted: Arc<AtomicU64>,
}

impl axum::serve::Listener for Counting {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %addr, "TCP_NODELAY not set");
        }
        self.accepted.fetch_add(1, Ordering::Relaxed);
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
