//! The transport between the nodes of a cluster: HTTP/2 over cleartext TCP
//! (h2c, prior knowledge), one pooled connection per peer multiplexing every
//! call, with connect and request timeouts and bounded in-flight work.
//!
//! A node runs one [`PeerServer`] whose [`PeerHandler`] answers every
//! [`PeerRequest`] (a route, such as `"ask"`, and opaque bytes), and calls
//! other nodes with one shared [`PeerClient`]. What the bytes mean is the
//! caller's protocol (for a forwarded command, a
//! [`WireAsk`](crate::remote::WireAsk) answered by a
//! [`WireAnswer`](crate::remote::WireAnswer)); the transport guarantees
//! only what its [`TransportError`]s say: whether a request that got no
//! answer may have been handled.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use nexus_core::cluster::transport::{
//!     PeerClient, PeerHandler, PeerRequest, PeerResponse, PeerServer, TransportConfig,
//! };
//!
//! struct Echo;
//! #[async_trait::async_trait]
//! impl PeerHandler for Echo {
//!     async fn handle(&self, request: PeerRequest) -> PeerResponse {
//!         PeerResponse::new(request.body)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let config = TransportConfig::default();
//! let server = PeerServer::bind("127.0.0.1:0".parse().unwrap(), Arc::new(Echo), &config).await?;
//! let client = PeerClient::new(&config);
//! let peer = server.local_addr().to_string();
//! let answer = client
//!     .call(&peer, PeerRequest::new("echo", b"hello".to_vec()), Duration::from_secs(1))
//!     .await?;
//! assert_eq!(answer.body, b"hello");
//! server.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod client;
mod config;
mod error;
mod server;

pub use client::PeerClient;
pub use config::TransportConfig;
pub use error::TransportError;
pub use server::PeerServer;

use async_trait::async_trait;

/// What a node's peer listener serves: one handler for every request.
///
/// Each request runs in its own task: a handler that panics fails that
/// request alone (answered HTTP 500), and one whose caller went away (a
/// timeout) still runs to its end, so a command is never cut off halfway.
#[async_trait]
pub trait PeerHandler: Send + Sync + 'static {
    /// Answers `request`.
    async fn handle(&self, request: PeerRequest) -> PeerResponse;
}

/// One request from a node to a peer.
///
/// ```
/// use nexus_core::cluster::transport::PeerRequest;
/// let request = PeerRequest::new("ask", vec![1, 2, 3]);
/// assert_eq!(request.route, "ask");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRequest {
    /// What kind of request this is, for the handler to dispatch on: one URL
    /// path segment (letters, digits, `-`, `_`, `.`).
    pub route: String,
    /// The request's bytes.
    pub body: Vec<u8>,
}

impl PeerRequest {
    /// A request of kind `route` carrying `body`.
    pub fn new(route: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            route: route.into(),
            body,
        }
    }
}

/// A peer's answer to a [`PeerRequest`].
///
/// ```
/// use nexus_core::cluster::transport::PeerResponse;
/// assert_eq!(PeerResponse::new(vec![7]).body, [7]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerResponse {
    /// The answer's bytes.
    pub body: Vec<u8>,
}

impl PeerResponse {
    /// An answer carrying `body`.
    pub fn new(body: Vec<u8>) -> Self {
        Self { body }
    }
}

/// The version of the peer protocol, in every request's path: a node that
/// speaks another one answers the connecting ping HTTP 404, which the
/// caller sees as [`TransportError::NotSent`] (not handled), never as a
/// request misread. Raise it when a message of `remote` changes shape.
const PROTOCOL: &str = "v1";

/// The path a client pings to open its connection to a peer; the server
/// answers it at once, outside the handler and the in-flight bound.
const PING_PATH: &str = "/nexus/v1/ping";

/// The URL path of requests of kind `route`.
fn path(route: &str) -> String {
    format!("/nexus/{PROTOCOL}/peer/{route}")
}
