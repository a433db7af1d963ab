//! What a caller of an entity can get instead of a reply.

use std::time::Duration;

use crate::lease::LeaseError;
use crate::{BoxError, CodecError, ExpectedVersion, RecoveryError, StoreError, StreamId};

/// Why a command sent to an entity did not produce its reply.
///
/// Every accepted command ends in exactly one reply or one of these errors;
/// none is dropped in silence. [`is_unavailable`](Self::is_unavailable) tells
/// the errors that say "try again later" (an HTTP app maps them to 503) from
/// the ones about the command itself.
///
/// ```
/// use nexus_core::{EntityError, StreamId};
/// let full: EntityError<std::io::Error> = EntityError::MailboxFull {
///     stream: StreamId::new("wallet-alice"),
///     capacity: 64,
/// };
/// assert!(full.is_unavailable());
/// assert_eq!(full.to_string(), "wallet-alice: mailbox full (capacity 64)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntityError<E> {
    /// The aggregate rejected the command; nothing was written.
    #[error("rejected: {0}")]
    Rejected(E),
    /// The mailbox was full and the entity type fails fast
    /// ([`WhenFull::Fail`](crate::WhenFull::Fail)); the command was not
    /// accepted.
    #[error("{stream}: mailbox full (capacity {capacity})")]
    MailboxFull {
        /// The entity's stream.
        stream: StreamId,
        /// The mailbox capacity.
        capacity: usize,
    },
    /// No reply came within the ask timeout. The command may still be
    /// carried out (and committed) after this error was returned.
    #[error("{stream}: no reply within {after:?}; the command may still be carried out")]
    Timeout {
        /// The entity's stream.
        stream: StreamId,
        /// The ask timeout.
        after: Duration,
    },
    /// The system is shutting down and did not (or could no longer) process
    /// the command. A command that was being appended when the deadline
    /// passed may have been committed.
    #[error("{stream}: the actor system is shutting down")]
    ShuttingDown {
        /// The entity's stream.
        stream: StreamId,
    },
    /// Another writer kept changing the stream: the command was decided
    /// again on reloaded state until the retry policy ran out. Nothing of it
    /// was written.
    #[error(
        "{stream}: conflict after {attempts} attempts: expected version {expected}, found {actual}"
    )]
    Conflict {
        /// The entity's stream.
        stream: StreamId,
        /// The version the last attempt expected.
        expected: ExpectedVersion,
        /// The version the store had.
        actual: u64,
        /// How many times the command was decided.
        attempts: u32,
    },
    /// The store refused the write (or a read it needed); nothing of the
    /// command was written. The entity restarts and recovers.
    #[error("store: {0}")]
    Store(StoreError),
    /// The write was sent and its answer lost (a broken connection, a
    /// timeout): it may or may not have committed. The entity re-sent the
    /// very same batch (same event ids, same expected version) until its
    /// deadline without learning the outcome. Sending the command again with
    /// the same [`command_id`](crate::CommandOptions::command_id) applies it
    /// at most once.
    #[error(
        "{stream}: the outcome of the write is unknown after {attempts} attempts in {waited:?}; \
         it may have committed: {source}"
    )]
    OutcomeUnknown {
        /// The entity's stream.
        stream: StreamId,
        /// How many times the batch was sent.
        attempts: u32,
        /// How long the entity tried.
        waited: Duration,
        /// The last store error.
        #[source]
        source: StoreError,
    },
    /// The entity's state could not be recovered from the store.
    #[error("{0}")]
    Recovery(RecoveryError),
    /// An event or the state did not encode; nothing was written.
    #[error("{stream}: {source}")]
    Encode {
        /// The entity's stream.
        stream: StreamId,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// A durable-state entity that requires an existing row found none.
    #[error("{stream}: no such entity (the replay policy requires an existing row)")]
    NotFound {
        /// The entity's stream.
        stream: StreamId,
    },
    /// The handler (or `apply`, or a reply or side-effect hook) panicked;
    /// the entity restarted from the store. Hooks run after the commit, so a
    /// panicking hook's events are committed.
    #[error("{stream}: the handler panicked: {message}")]
    Panicked {
        /// The entity's stream.
        stream: StreamId,
        /// The panic's message.
        message: String,
    },
    /// The entity restarted more often than its supervision allows: it
    /// refuses commands for the cooldown
    /// ([`Supervision::cooldown`](crate::Supervision::cooldown)), after
    /// which the next command recovers it again. Nothing was written.
    #[error("{stream}: stopped after {restarts} restarts within {window:?}")]
    RestartLimit {
        /// The entity's stream.
        stream: StreamId,
        /// Restarts counted in the window.
        restarts: u32,
        /// The supervision window.
        window: Duration,
    },
    /// The entity stopped before it answered (an internal failure of the
    /// runtime, reported rather than hidden).
    #[error("{stream}: the entity stopped before answering")]
    Stopped {
        /// The entity's stream.
        stream: StreamId,
    },
    /// This process does not hold the entity's ownership lease, so it did
    /// not write.
    #[error("{stream}: not the owner: {source}")]
    NotOwner {
        /// The entity's stream.
        stream: StreamId,
        /// Why the lease was not granted.
        #[source]
        source: LeaseError,
    },
    /// The entity's owner is another node, and the command could not be
    /// sent to it (the connection was refused, no route to the node, the
    /// node shed the request): it was not applied, and sending it again
    /// later may succeed.
    #[error("{stream}: the owner {node} is unreachable; the command was not sent: {source}")]
    Unreachable {
        /// The entity's stream.
        stream: StreamId,
        /// The owner node (its peer address).
        node: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// The command was sent to the entity's owner on another node and no
    /// answer came back (a timeout, a connection reset): it may or may not
    /// have been applied. Sending it again with the same
    /// [`command_id`](crate::CommandOptions::command_id) applies it at most
    /// once.
    #[error(
        "{stream}: the owner {node} did not answer; the command may have been applied: {source}"
    )]
    Interrupted {
        /// The entity's stream.
        stream: StreamId,
        /// The owner node (its peer address).
        node: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// The owner on another node answered, and its answer did not cross the
    /// wire: the reply (or the rejection) did not encode there, or does not
    /// decode here (the nodes run different versions of the aggregate). A
    /// reply means the command was applied, so treat it as possibly
    /// applied; sending it again answers the same and fails the same way.
    #[error("the answer did not cross the wire; the command may have been applied: {source}")]
    Undeliverable {
        /// The codec's error; its `what` names the reply or rejection.
        #[source]
        source: CodecError,
    },
}

impl<E> EntityError<E> {
    /// Whether the failure is about availability, not the command: full
    /// mailbox, timeout, shutdown, exhausted conflict retries, a retryable
    /// store error (also during recovery), a stopped entity, a missing
    /// lease, or an owner on another node that could not be reached or did
    /// not answer. Sending the command again later may succeed.
    ///
    /// ```
    /// use nexus_core::{EntityError, RecoveryError, StoreError};
    /// let rejected: EntityError<std::fmt::Error> = EntityError::Rejected(std::fmt::Error);
    /// assert!(!rejected.is_unavailable());
    /// let unreachable: EntityError<std::fmt::Error> = EntityError::Recovery(RecoveryError::Store {
    ///     stream: "wallet-alice".into(),
    ///     source: StoreError::Unavailable { source: "connection refused".into() },
    /// });
    /// assert!(unreachable.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_retryable(),
            Self::MailboxFull { .. }
            | Self::Timeout { .. }
            | Self::ShuttingDown { .. }
            | Self::Conflict { .. }
            | Self::RestartLimit { .. }
            | Self::Stopped { .. }
            | Self::OutcomeUnknown { .. }
            | Self::NotOwner { .. }
            | Self::Unreachable { .. }
            | Self::Interrupted { .. } => true,
            // Recovery that could not reach the store is as retryable as a
            // write that could not; a stored event that does not decode is not.
            Self::Recovery(RecoveryError::Store { source, .. }) => source.is_retryable(),
            Self::Rejected(_)
            | Self::Recovery(_)
            | Self::Encode { .. }
            | Self::NotFound { .. }
            | Self::Panicked { .. }
            | Self::Undeliverable { .. } => false,
        }
    }

    /// Whether the command may have been applied although this error came
    /// back: its write was sent and the answer lost
    /// ([`OutcomeUnknown`](Self::OutcomeUnknown)), the caller stopped
    /// waiting ([`Timeout`](Self::Timeout)), the system shut down or the
    /// entity stopped mid-command, a hook panicked after the commit, the
    /// owner on another node did not answer
    /// ([`Interrupted`](Self::Interrupted)) or its answer did not cross the
    /// wire ([`Undeliverable`](Self::Undeliverable)). Every other error means
    /// nothing of the command was written. Retry these with the same
    /// [`command_id`](crate::CommandOptions::command_id).
    ///
    /// ```
    /// use nexus_core::{EntityError, StreamId};
    /// let full: EntityError<std::fmt::Error> = EntityError::MailboxFull {
    ///     stream: StreamId::new("wallet-alice"),
    ///     capacity: 8,
    /// };
    /// assert!(!full.outcome_unknown());
    /// ```
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::OutcomeUnknown { .. }
                | Self::Timeout { .. }
                | Self::ShuttingDown { .. }
                | Self::Stopped { .. }
                | Self::Panicked { .. }
                | Self::Interrupted { .. }
                | Self::Undeliverable { .. }
        )
    }

    /// Alias of [`is_unavailable`](Self::is_unavailable): the same command
    /// may succeed when sent again.
    pub fn is_retryable(&self) -> bool {
        self.is_unavailable()
    }

    /// The aggregate's rejection, if this is one.
    ///
    /// ```
    /// use nexus_core::EntityError;
    /// let rejected: EntityError<std::fmt::Error> = EntityError::Rejected(std::fmt::Error);
    /// assert!(rejected.rejection().is_some());
    /// ```
    pub fn rejection(&self) -> Option<&E> {
        match self {
            Self::Rejected(error) => Some(error),
            _ => None,
        }
    }
}

/// A `tell` that was not accepted; the command comes back.
///
/// ```
/// use nexus_core::{SendError, StreamId};
/// let refused = SendError::MailboxFull(42);
/// assert_eq!(refused.into_inner(), 42);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<M> {
    /// The mailbox is full and the entity type fails fast.
    #[error("mailbox full")]
    MailboxFull(M),
    /// The system is shutting down.
    #[error("the actor system is shutting down")]
    ShuttingDown(M),
    /// The (plain) actor has stopped. Entities never return this: a send
    /// to a stopped entity starts its next incarnation.
    #[error("the actor has stopped")]
    Stopped(M),
}

impl<M> SendError<M> {
    /// The message that was not accepted.
    pub fn into_inner(self) -> M {
        match self {
            Self::MailboxFull(message) | Self::ShuttingDown(message) | Self::Stopped(message) => {
                message
            }
        }
    }

    /// The same error around another message.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> SendError<N> {
        match self {
            Self::MailboxFull(message) => SendError::MailboxFull(f(message)),
            Self::ShuttingDown(message) => SendError::ShuttingDown(f(message)),
            Self::Stopped(message) => SendError::Stopped(f(message)),
        }
    }
}
