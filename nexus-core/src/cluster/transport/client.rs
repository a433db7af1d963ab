//! The peer client: reqwest with HTTP/2 prior knowledge, one pooled
//! connection per peer that every concurrent call multiplexes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::{PING_PATH, PeerRequest, PeerResponse, TransportConfig, TransportError, path};

/// Calls peers. Keep one per node and share it (clones share its pool), so
/// that every call to a peer reuses the one connection to it.
///
/// ```
/// use std::time::Duration;
/// use nexus_core::cluster::transport::{PeerClient, PeerRequest, TransportConfig, TransportError};
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let client = PeerClient::new(&TransportConfig::default());
/// // Nothing listens on port 1: the request was not sent.
/// let error = client
///     .call("127.0.0.1:1", PeerRequest::new("ask", Vec::new()), Duration::from_secs(1))
///     .await
///     .unwrap_err();
/// assert!(matches!(error, TransportError::NotSent { .. }));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct PeerClient {
    http: reqwest::Client,
    request_timeout: Duration,
    /// Per peer, whether its connection is up. The pool opens a second
    /// HTTP/2 connection when calls race to a peer it has none to yet, so
    /// the first call to a peer opens it alone (with a ping) and the others
    /// wait for it, then all multiplex the one connection. A failed call
    /// forgets its peer's entry, so the next call connects alone again.
    connections: Arc<Mutex<HashMap<String, Arc<OnceCell<()>>>>>,
}

impl PeerClient {
    /// A client with `config`'s timeouts and keep-alive.
    pub fn new(config: &TransportConfig) -> Self {
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(config.keep_alive_interval)
            .http2_keep_alive_timeout(config.keep_alive_interval)
            .http2_keep_alive_while_idle(true)
            // Peers are addresses, not names behind proxies.
            .no_proxy()
            .build()
            // Without TLS nothing in the builder can fail but a broken
            // system resolver configuration, which no node can run without.
            .expect("an HTTP client without TLS builds");
        Self {
            http,
            request_timeout: config.request_timeout,
            connections: Arc::default(),
        }
    }

    /// Sends `request` to `peer` (`"host:port"`) and waits at most
    /// `timeout` (bounded by the config's `request_timeout`) for the answer.
    pub async fn call(
        &self,
        peer: &str,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, TransportError> {
        let deadline = Instant::now() + timeout.min(self.request_timeout);
        let connection = self.connection(peer);
        connection
            .get_or_try_init(|| self.connect(peer, deadline))
            .await?;
        let result = self.send(peer, request, deadline).await;
        if matches!(
            result,
            Err(TransportError::NotSent { .. } | TransportError::NoAnswer { .. })
        ) {
            self.forget(peer, &connection);
        }
        result
    }

    fn connection(&self, peer: &str) -> Arc<OnceCell<()>> {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(connections.entry(peer.to_owned()).or_default())
    }

    /// Forgets `peer`'s entry if it is still `connection` (not one a later
    /// call made meanwhile).
    fn forget(&self, peer: &str, connection: &Arc<OnceCell<()>>) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if connections
            .get(peer)
            .is_some_and(|current| Arc::ptr_eq(current, connection))
        {
            connections.remove(peer);
        }
    }

    /// Opens the connection to `peer` with a ping. Whatever goes wrong
    /// here, the request itself was not sent.
    async fn connect(&self, peer: &str, deadline: Instant) -> Result<(), TransportError> {
        let not_sent = |source: crate::BoxError| TransportError::NotSent {
            peer: peer.to_owned(),
            source,
        };
        let response = self
            .http
            .get(format!("http://{peer}{PING_PATH}"))
            .timeout(deadline.saturating_duration_since(Instant::now()))
            .send()
            .await
            .map_err(|error| not_sent(Box::new(error)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(not_sent(
                format!("the ping was answered HTTP {}", response.status()).into(),
            ))
        }
    }

    async fn send(
        &self,
        peer: &str,
        request: PeerRequest,
        deadline: Instant,
    ) -> Result<PeerResponse, TransportError> {
        let url = format!("http://{peer}{}", path(&request.route));
        let sent = self
            .http
            .post(url)
            .timeout(deadline.saturating_duration_since(Instant::now()))
            .body(request.body)
            .send()
            .await;
        let response = sent.map_err(|error| no_answer(peer, error))?;
        let status = response.status();
        // The body is read under the same timeout; losing it loses the
        // answer of a request the peer handled.
        let body = response
            .bytes()
            .await
            .map_err(|error| no_answer(peer, error))?;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return Err(TransportError::Overloaded {
                peer: peer.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(TransportError::Status {
                peer: peer.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(PeerResponse::new(body.to_vec()))
    }
}

/// A failed call: [`NotSent`](TransportError::NotSent) only when reqwest
/// says the connection itself failed, so no byte of the request left;
/// anything else may have reached the peer.
fn no_answer(peer: &str, error: reqwest::Error) -> TransportError {
    let peer = peer.to_owned();
    if error.is_connect() {
        TransportError::NotSent {
            peer,
            source: Box::new(error),
        }
    } else {
        TransportError::NoAnswer {
            peer,
            source: Box::new(error),
        }
    }
}
