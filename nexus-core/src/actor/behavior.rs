//! Plain actors: a value that handles one message at a time from a
//! bounded mailbox. Entities are built the same way with persistence on
//! top; use a plain actor for anything else that needs a single owner (a
//! cache, a connection, a coordinator).
//!
//! Guarantees: messages are handled one at a time in mailbox order; `stop`
//! takes effect after the messages queued before it; when the actor ends
//! (stop, shutdown, or a panic in `handle`), every message still queued is
//! dropped unanswered, which its `ask` reports as an error, never as
//! silence. Plain actors are not restarted: supervision is the entities'.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::actor_ref::{ActorCell, ActorRef};
use super::mailbox::{Mailbox, WhenFull};
use super::system::{ActorSystem, Closeable};

/// A single-owner value driven by its messages.
///
/// ```
/// use nexus_core::{Actor, ActorSystem, ReplyTo};
///
/// #[derive(Debug)]
/// enum Msg { Add(u64), Get(ReplyTo<u64>) }
/// struct Sum(u64);
///
/// #[async_trait::async_trait]
/// impl Actor for Sum {
///     type Message = Msg;
///     async fn handle(&mut self, message: Msg) {
///         match message {
///             Msg::Add(n) => self.0 += n,
///             Msg::Get(reply) => reply.send(self.0),
///         }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let system = ActorSystem::new();
/// let sum = system.spawn(Sum(0));
/// sum.tell(Msg::Add(2)).await.unwrap();
/// sum.tell(Msg::Add(3)).await.unwrap();
/// assert_eq!(sum.ask(Msg::Get).await.unwrap(), 5);
/// # });
/// ```
#[async_trait]
pub trait Actor: Send + 'static {
    /// What the actor receives.
    type Message: Send + 'static;

    /// Handles one message; the next waits until this returns.
    async fn handle(&mut self, message: Self::Message);

    /// Called once after a `stop` or a drained shutdown, before the actor
    /// is dropped. Not called after a panic in `handle` or when a shutdown
    /// deadline passed.
    async fn stopped(&mut self) {}
}

/// Mailbox and ask options of one plain actor; unset values come from the
/// system's defaults.
///
/// ```
/// use std::time::Duration;
/// use nexus_core::{ActorOptions, WhenFull};
/// let options = ActorOptions::default()
///     .mailbox_capacity(16)
///     .when_full(WhenFull::Fail)
///     .ask_timeout(Duration::from_millis(500));
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ActorOptions {
    capacity: Option<usize>,
    when_full: WhenFull,
    ask_timeout: Option<Duration>,
}

impl ActorOptions {
    /// At most `capacity` messages wait (at least 1 is used).
    #[must_use]
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// What a send does when the mailbox is full.
    #[must_use]
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// How long `ask` waits for the reply.
    #[must_use]
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = Some(timeout);
        self
    }
}

impl ActorSystem {
    /// Starts `actor` with the system's default options.
    pub fn spawn<A: Actor>(&self, actor: A) -> ActorRef<A::Message> {
        self.spawn_with(actor, ActorOptions::default())
    }

    /// Starts `actor` with `options`.
    pub fn spawn_with<A: Actor>(&self, actor: A, options: ActorOptions) -> ActorRef<A::Message> {
        let defaults = self.shared.defaults;
        let cell = Arc::new(ActorCell {
            mailbox: Mailbox::new(options.capacity.unwrap_or(defaults.mailbox_capacity)),
            when_full: options.when_full,
            ask_timeout: options.ask_timeout.unwrap_or(defaults.ask_timeout),
        });
        let closeable: Arc<dyn Closeable> = cell.clone();
        if self.shared.register(Arc::downgrade(&closeable)) {
            self.shared
                .spawn(run(actor, Arc::clone(&cell), self.shared.aborted()));
        } else {
            // Too late: the system shuts down; every send is refused.
            cell.mailbox.close();
        }
        ActorRef {
            cell,
            system: Arc::clone(&self.shared),
        }
    }
}

async fn run<A: Actor>(
    mut actor: A,
    cell: Arc<ActorCell<A::Message>>,
    aborted: impl Future<Output = ()> + Send,
) {
    // However the task ends, nothing stays queued for an actor that is gone.
    let _drain = DrainOnExit(Arc::clone(&cell));
    let handled = async {
        // `stop` closed the mailbox: what was queued before is still
        // received, then `recv` ends.
        while let Some(message) = cell.mailbox.recv().await {
            actor.handle(message).await;
        }
        actor.stopped().await;
    };
    tokio::select! {
        biased;
        () = aborted => {}
        () = handled => {}
    }
}

struct DrainOnExit<M>(Arc<ActorCell<M>>);

impl<M> Drop for DrainOnExit<M> {
    fn drop(&mut self) {
        // Dropping the messages drops their reply handles: each waiting
        // `ask` gets an error at once. A told message has no one to tell,
        // so the count is logged as dead letters rather than lost in silence.
        let left = self.0.mailbox.close_and_drain().len();
        if left > 0 {
            tracing::warn!(
                dead_letters = left,
                "an actor ended with messages it never handled"
            );
        }
    }
}
