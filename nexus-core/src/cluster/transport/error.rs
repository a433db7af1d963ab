//! Why a call to a peer got no answer, and what that means for the request.

use crate::{BoxError, EntityError, StreamId};

/// Why [`PeerClient::call`](super::PeerClient::call) has no answer. Each
/// variant says whether the peer may have handled the request.
///
/// ```
/// use nexus_core::cluster::transport::TransportError;
/// let shed = TransportError::Overloaded { peer: "10.0.0.2:7000".into() };
/// assert!(!shed.may_have_been_handled());
/// assert_eq!(shed.to_string(), "peer 10.0.0.2:7000 is overloaded; the request was not handled");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request never reached the peer (no connection: refused, no
    /// route, connect timeout): it was not handled.
    #[error("peer {peer}: the request was not sent: {source}")]
    NotSent {
        /// The peer's address.
        peer: String,
        /// The connection's error.
        #[source]
        source: BoxError,
    },
    /// The request may have reached the peer, and no answer came (a
    /// timeout, a reset connection): it may or may not have been handled.
    /// Whenever the client cannot tell whether the request left, it says
    /// this rather than [`NotSent`](Self::NotSent).
    #[error("peer {peer}: no answer; the request may have been handled: {source}")]
    NoAnswer {
        /// The peer's address.
        peer: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// The peer had `max_in_flight` requests in hand and shed this one
    /// unhandled.
    #[error("peer {peer} is overloaded; the request was not handled")]
    Overloaded {
        /// The peer's address.
        peer: String,
    },
    /// The peer answered with an HTTP error: 4xx when it refused the
    /// request before handling it (unknown route, body too large), 5xx when
    /// its handler failed (a panic), after which the request may have been
    /// handled in part.
    #[error("peer {peer} answered HTTP {status}: {body}")]
    Status {
        /// The peer's address.
        peer: String,
        /// The HTTP status code.
        status: u16,
        /// The answer's body, as text.
        body: String,
    },
}

impl TransportError {
    /// The peer's address.
    pub fn peer(&self) -> &str {
        match self {
            Self::NotSent { peer, .. }
            | Self::NoAnswer { peer, .. }
            | Self::Overloaded { peer }
            | Self::Status { peer, .. } => peer,
        }
    }

    /// Whether the peer may have handled the request although this came
    /// back: no answer, or a server error.
    pub fn may_have_been_handled(&self) -> bool {
        match self {
            Self::NoAnswer { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            Self::NotSent { .. } | Self::Overloaded { .. } => false,
        }
    }

    /// The error a caller of the entity of `stream` sees when this failed
    /// the command's forwarding: [`EntityError::Unreachable`] when the
    /// command was not handled, [`EntityError::Interrupted`] when it may
    /// have been.
    ///
    /// ```
    /// use nexus_core::cluster::transport::TransportError;
    /// use nexus_core::{EntityError, StreamId};
    /// let refused = TransportError::NotSent { peer: "n2:7000".into(), source: "connection refused".into() };
    /// let error: EntityError<String> = refused.into_entity_error(StreamId::new("wallet-a"));
    /// assert!(matches!(error, EntityError::Unreachable { .. }));
    /// assert!(error.is_unavailable() && !error.outcome_unknown());
    /// ```
    pub fn into_entity_error<E>(self, stream: StreamId) -> EntityError<E> {
        let node = self.peer().to_owned();
        if self.may_have_been_handled() {
            EntityError::Interrupted {
                stream,
                node,
                source: Box::new(self),
            }
        } else {
            EntityError::Unreachable {
                stream,
                node,
                source: Box::new(self),
            }
        }
    }
}
