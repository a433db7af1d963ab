//! The address of a plain actor: tell, ask with a timeout, stop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::mailbox::{Mailbox, Refused, WhenFull};
use super::system::{Closeable, Phase, SystemShared};
use crate::SendError;

/// The mailbox and options of one plain actor.
pub(crate) struct ActorCell<M> {
    pub(crate) mailbox: Mailbox<M>,
    pub(crate) when_full: WhenFull,
    pub(crate) ask_timeout: Duration,
}

impl<M: Send> Closeable for ActorCell<M> {
    fn close(&self) {
        self.mailbox.close();
    }
}

/// The address of a plain [`Actor`](crate::Actor) taking messages `M`.
/// Cheap to clone.
///
/// ```
/// # use nexus_core::{Actor, ActorSystem, AskError, ReplyTo};
/// # struct Echo;
/// # #[async_trait::async_trait]
/// # impl Actor for Echo {
/// #     type Message = (String, ReplyTo<String>);
/// #     async fn handle(&mut self, (text, reply): Self::Message) { reply.send(text) }
/// # }
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let system = ActorSystem::new();
/// let echo = system.spawn(Echo);
/// assert_eq!(echo.ask(|reply| ("hi".to_owned(), reply)).await.unwrap(), "hi");
/// echo.stop().await.unwrap();
/// let error = echo.ask(|reply| ("again".to_owned(), reply)).await.unwrap_err();
/// assert!(matches!(error, AskError::Stopped));
/// # });
/// ```
pub struct ActorRef<M> {
    pub(crate) cell: Arc<ActorCell<M>>,
    pub(crate) system: Arc<SystemShared>,
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        Self {
            cell: Arc::clone(&self.cell),
            system: Arc::clone(&self.system),
        }
    }
}

impl<M> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef").finish_non_exhaustive()
    }
}

/// The handle an actor answers an `ask` with. Dropping it unanswered makes
/// the `ask` fail with [`AskError::Stopped`] (or `ShuttingDown`).
#[derive(Debug)]
pub struct ReplyTo<R>(oneshot::Sender<R>);

impl<R> ReplyTo<R> {
    /// Answers the ask. An asker that gave up (timed out) is not waiting
    /// any more; the value is dropped.
    pub fn send(self, value: R) {
        drop(self.0.send(value));
    }
}

/// Why an `ask` to a plain actor got no reply.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AskError {
    /// The mailbox was full and the actor fails fast; not accepted.
    #[error("mailbox full")]
    MailboxFull,
    /// No reply within the ask timeout; the message may still be handled.
    #[error("no reply within {0:?}; the message may still be handled")]
    Timeout(Duration),
    /// The system is shutting down.
    #[error("the actor system is shutting down")]
    ShuttingDown,
    /// The actor stopped (or panicked) before it answered.
    #[error("the actor stopped before answering")]
    Stopped,
}

impl<M: Send + 'static> ActorRef<M> {
    /// Sends `message` without waiting for it to be handled.
    pub async fn tell(&self, message: M) -> Result<(), SendError<M>> {
        self.send(message).await
    }

    /// Sends the message `make` builds around a reply handle, and waits
    /// for the reply (at most the ask timeout, room in the mailbox
    /// included).
    pub async fn ask<R>(&self, make: impl FnOnce(ReplyTo<R>) -> M) -> Result<R, AskError> {
        let timeout = self.cell.ask_timeout;
        let exchange = async {
            let (reply_to, reply) = oneshot::channel();
            match self.send(make(ReplyTo(reply_to))).await {
                Ok(()) => {}
                Err(SendError::MailboxFull(_)) => return Err(AskError::MailboxFull),
                Err(SendError::ShuttingDown(_)) => return Err(AskError::ShuttingDown),
                Err(_) => return Err(AskError::Stopped),
            }
            reply.await.map_err(|_| self.gone())
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(AskError::Timeout(timeout)))
    }

    /// Stops the actor after the messages queued before this call: from
    /// now on every send is refused with
    /// [`SendError::Stopped`](crate::SendError::Stopped) (its message given
    /// back), never accepted and dropped. This is the rule entities follow
    /// too, except that a send to a stopped entity starts its next
    /// incarnation, which a plain actor does not have. Stopping twice is
    /// fine; stopping during a shutdown says so.
    // `async` though it no longer waits (stopping closes the mailbox at
    // once): callers already `.await` it, as they do the entity's `stop`.
    #[allow(clippy::unused_async)]
    pub async fn stop(&self) -> Result<(), SendError<()>> {
        if self.shutting_down() {
            return Err(SendError::ShuttingDown(()));
        }
        self.cell.mailbox.close();
        Ok(())
    }

    /// Whether the actor no longer accepts messages.
    pub fn is_stopped(&self) -> bool {
        self.cell.mailbox.is_closed()
    }

    async fn send(&self, letter: M) -> Result<(), SendError<M>> {
        match self.cell.mailbox.send(letter, self.cell.when_full).await {
            Ok(()) => Ok(()),
            Err(Refused::Full(letter)) => Err(SendError::MailboxFull(letter)),
            Err(Refused::Closed(letter)) if self.shutting_down() => {
                Err(SendError::ShuttingDown(letter))
            }
            Err(Refused::Closed(letter)) => Err(SendError::Stopped(letter)),
        }
    }

    fn shutting_down(&self) -> bool {
        self.system.phase() != Phase::Running
    }

    fn gone(&self) -> AskError {
        if self.shutting_down() {
            AskError::ShuttingDown
        } else {
            AskError::Stopped
        }
    }
}
