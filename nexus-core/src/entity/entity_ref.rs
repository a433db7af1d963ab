//! `EntityRef<A>`: how callers reach one entity.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, oneshot};

use super::command_options::{CommandOptions, Outcome};
use super::held_cell::HeldCell;
use super::message::{Envelope, Request};
use super::registry::{EntityKey, Registry};
use crate::actor::mailbox::Refused;
use crate::actor::system::Phase;
use crate::telemetry::CommandOutcome;
use crate::{Aggregate, EntityError, Handles, SendError, StoreError, StreamId};

/// The address of one entity. Cheap to clone; stays valid across
/// passivation and restarts (a send after the actor stopped reaches the
/// next incarnation).
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::{ActorSystem, Entities, codec::{EventCodec, Json}};
/// use nexus_core::store::memory::InMemoryEventStore;
/// # use nexus_core::testkit::doc::{Counter, Add, Get};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// # let system = ActorSystem::new();
/// # let counters = Entities::<Counter>::builder(&system)
/// #     .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
/// #     .build().unwrap();
/// let counter = counters.of("c1");
/// counter.tell(Add(1)).await.unwrap();
/// let total: u64 = counter.ask(Add(2)).await.unwrap();
/// assert_eq!(total, 3);
/// assert_eq!(counter.stream().as_str(), "counter-c1");
/// # });
/// ```
pub struct EntityRef<A: Aggregate> {
    pub(crate) registry: Arc<Registry<A>>,
    pub(crate) key: Arc<EntityKey>,
    /// The live cell the last send of this ref or of any of its clones
    /// reached: the next one goes there without a registry lookup while its
    /// mailbox accepts.
    pub(crate) held: Arc<HeldCell<A>>,
}

impl<A: Aggregate> Clone for EntityRef<A> {
    fn clone(&self) -> Self {
        Self {
            registry: Arc::clone(&self.registry),
            key: Arc::clone(&self.key),
            held: Arc::clone(&self.held),
        }
    }
}

impl<A: Aggregate> PartialEq for EntityRef<A> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.registry, &other.registry) && self.key.id == other.key.id
    }
}

impl<A: Aggregate> Eq for EntityRef<A> {}

impl<A: Aggregate> fmt::Debug for EntityRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EntityRef").field(&self.key.stream).finish()
    }
}

/// How many times in a row a shedding peer is asked again before the
/// caller is told (not applied).
#[cfg(feature = "cluster")]
const MAX_SHED: u32 = 5;

/// Why a send was not accepted.
enum NotAccepted<M> {
    Full(M),
    ShuttingDown(M),
}

impl<A: Aggregate> EntityRef<A> {
    /// The entity's id.
    pub fn id(&self) -> &str {
        &self.key.id
    }

    /// The entity's stream (its persistence id).
    pub fn stream(&self) -> &StreamId {
        &self.key.stream
    }

    // `ask`, `ask_with` and `tell` return a boxed future, whose type names
    // the reply but not the command. The future of an `async fn` generic over
    // the command would capture it, and rustc then reports a wrong-aggregate
    // command three times (at the argument, the call and the `.await`); here
    // the `Handles` bound is the function's only, so it is reported once, at
    // the argument. The cost is one allocation per send, beside the boxed
    // request. The type is spelled out (clippy finds it complex) rather than
    // a private alias, whose name a user could not look up when rustdoc or
    // an error message shows it.

    /// Sends `command` and waits for its typed reply.
    ///
    /// The reply is sent only after the command's events committed. On
    /// [`EntityError::Timeout`] the command may still be carried out; on
    /// [`EntityError::OutcomeUnknown`] it may have been. The command value
    /// comes back with the answer and is dropped by this future when it
    /// completes (or by the entity, if this future was dropped first), so
    /// a guard it holds is released then.
    #[allow(clippy::type_complexity)]
    pub fn ask<C>(
        &self,
        command: C,
    ) -> Pin<Box<dyn Future<Output = Result<A::Reply, EntityError<A::Error>>> + Send + '_>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        Box::pin(async move {
            self.exchange(command, CommandOptions::new())
                .await
                .map(|outcome| outcome.reply)
        })
    }

    /// Sends `command` with a command id and metadata, and waits for its
    /// reply with the version and log position it left the entity at.
    ///
    /// With a [`command_id`](CommandOptions::command_id), sending the same
    /// command again (after a timeout, a lost connection, a crash) applies
    /// it at most once and answers the original reply.
    #[allow(clippy::type_complexity)]
    pub fn ask_with<C>(
        &self,
        command: C,
        options: CommandOptions,
    ) -> Pin<Box<dyn Future<Output = Result<Outcome<A::Reply>, EntityError<A::Error>>> + Send + '_>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        Box::pin(self.exchange(command, options))
    }

    /// Sends `command` and waits for its outcome: `ask_with`'s work.
    async fn exchange<C>(
        &self,
        command: C,
        options: CommandOptions,
    ) -> Result<Outcome<A::Reply>, EntityError<A::Error>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        if options.id().is_some() && !self.registry.settings.persistence.writes_events() {
            return Err(EntityError::Store(StoreError::InvalidRequest(format!(
                "{}: command ids make commands idempotent through the ids of their events; \
                 a durable-state entity writes no events, so it cannot deduplicate them",
                self.key.stream
            ))));
        }
        #[cfg(feature = "cluster")]
        let timeout = crate::cluster::budget(self.registry.settings.ask_timeout);
        #[cfg(not(feature = "cluster"))]
        let timeout = self.registry.settings.ask_timeout;
        // One reading of the clock for the ask: its deadline, and its sent
        // time in the command's metrics.
        let sent = tokio::time::Instant::now();
        let exchange = async {
            #[cfg(feature = "cluster")]
            if let Some(binding) = &self.registry.settings.cluster {
                // Boxed: the routed future (a peer's HTTP exchange) is
                // large, and the local path's future would be as large.
                return Box::pin(self.exchange_routed(binding, command, options, sent, timeout))
                    .await;
            }
            self.exchange_local(command, options, None, sent).await
        };
        // A pooled timer, not `tokio::time::timeout`: see `Deadlines` for
        // the wake-up a fresh timer per ask costs.
        let deadline = self.registry.deadlines.until(sent + timeout);
        tokio::select! {
            biased;
            outcome = exchange => outcome,
            () = deadline => Err(EntityError::Timeout {
                stream: self.key.stream.clone(),
                after: timeout,
            }),
        }
    }

    /// Sends `command`, asked at `sent`, into the local mailbox (holding
    /// `gate`, a cluster shard's, until it is in) and waits for its
    /// outcome.
    async fn exchange_local<C>(
        &self,
        command: C,
        options: CommandOptions,
        gate: Option<OwnedRwLockReadGuard<()>>,
        sent: tokio::time::Instant,
    ) -> Result<Outcome<A::Reply>, EntityError<A::Error>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        let (reply_to, reply) = oneshot::channel();
        let request = Request::<A, C, A::Reply>::new(
            command,
            <A as Handles<C>>::handle_in,
            options,
            Some(reply_to),
            sent,
        );
        let sent = self.send(Envelope::Command(Box::new(request))).await;
        drop(gate);
        match sent {
            Ok(()) => {}
            Err(NotAccepted::Full(_)) => {
                return Err(EntityError::MailboxFull {
                    stream: self.key.stream.clone(),
                    capacity: self.registry.settings.mailbox_capacity,
                });
            }
            Err(NotAccepted::ShuttingDown(_)) => return Err(self.shutting_down()),
        }
        // A dropped reply channel is still an answer: the runtime lost
        // the command to a shutdown or an internal failure.
        reply
            .await
            .map_or_else(|_| Err(self.interrupted()), |reply| reply.answer)
    }

    /// Sends `command`, asked at `sent`, to the node holding the entity's
    /// shard: here, into the mailbox; elsewhere, over the cluster's
    /// transport. Waits (until `timeout` after `sent`) while the shard
    /// moves, and routes again when a peer did not apply it because the
    /// shard moved on.
    #[cfg(feature = "cluster")]
    async fn exchange_routed<C>(
        &self,
        binding: &crate::cluster::Binding<A>,
        command: C,
        options: CommandOptions,
        sent: tokio::time::Instant,
        timeout: std::time::Duration,
    ) -> Result<Outcome<A::Reply>, EntityError<A::Error>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        use crate::cluster::Destination;
        let deadline = sent + timeout;
        let mut wire = None;
        // Set while every attempt so far was refused unapplied.
        let mut refused: Option<crate::cluster::NotApplied> = None;
        let mut shed = 0;
        loop {
            let Some(destination) = binding.destination(self, deadline).await else {
                return Err(match refused {
                    // Nothing was sent anywhere that could apply it.
                    Some(refused) => refused.into_error(&self.key.stream),
                    None => EntityError::Timeout {
                        stream: self.key.stream.clone(),
                        after: self.registry.settings.ask_timeout,
                    },
                });
            };
            let (node, address) = match destination {
                Destination::Local(gate) => {
                    return self
                        .exchange_local(command, options, Some(gate), sent)
                        .await;
                }
                Destination::Remote { node, address } => (node, address),
            };
            let wire = match &wire {
                Some(wire) => wire,
                None => wire.insert(binding.encode(self, &command)?),
            };
            match binding
                .forward(self, &node, &address, wire, &options, deadline)
                .await?
            {
                Ok(outcome) => {
                    return crate::cluster::Binding::<A>::typed_reply::<A::Reply>(
                        self, &node, outcome,
                    );
                }
                Err(not_applied) => {
                    // A peer shedding load is not hammered until the deadline.
                    shed = if not_applied.shed { shed + 1 } else { 0 };
                    if shed >= MAX_SHED {
                        return Err(not_applied.into_error(&self.key.stream));
                    }
                    refused = Some(not_applied);
                }
            }
            binding.backoff(deadline).await;
        }
    }

    /// Sends `command` without waiting for its outcome. `Ok` means the
    /// command was accepted into the mailbox; it is then processed (a
    /// failure is logged as a dead letter) unless the system shuts down
    /// first. Waits for room when the mailbox is full and the policy is
    /// [`WhenFull::Wait`](crate::WhenFull::Wait). A refused command comes
    /// back in the error.
    pub fn tell<C>(
        &self,
        command: C,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError<C>>> + Send + '_>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        Box::pin(self.enqueue(command))
    }

    /// Enqueues `command` without a reply: `tell`'s work.
    async fn enqueue<C>(&self, command: C) -> Result<(), SendError<C>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        #[cfg(feature = "cluster")]
        if let Some(binding) = &self.registry.settings.cluster {
            // Boxed, as in `exchange`: the local tell's future stays small.
            return Box::pin(self.enqueue_routed(binding, command)).await;
        }
        self.enqueue_local(command, None).await
    }

    /// Enqueues `command` into the local mailbox, holding `gate` (a cluster
    /// shard's) until it is in.
    async fn enqueue_local<C>(
        &self,
        command: C,
        gate: Option<OwnedRwLockReadGuard<()>>,
    ) -> Result<(), SendError<C>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        let request = Request::<A, C, A::Reply>::new(
            command,
            <A as Handles<C>>::handle_in,
            CommandOptions::new(),
            None,
            tokio::time::Instant::now(),
        );
        // Only the request built above can come back, so the downcast holds.
        let give_back = |envelope| match envelope {
            Envelope::Command(message) => message
                .into_any()
                .downcast::<Request<A, C, A::Reply>>()
                .map(|request| request.into_command())
                .expect("a refused tell gives back its own request"),
            Envelope::Stop => unreachable!("tell only sends commands"),
        };
        let sent = self.send(Envelope::Command(Box::new(request))).await;
        drop(gate);
        match sent {
            Ok(()) => Ok(()),
            Err(NotAccepted::Full(envelope)) => Err(SendError::MailboxFull(give_back(envelope))),
            Err(NotAccepted::ShuttingDown(envelope)) => {
                Err(SendError::ShuttingDown(give_back(envelope)))
            }
        }
    }

    /// `tell` in a cluster: into the local mailbox when this node holds the
    /// shard; otherwise the owner's answer is awaited (so that one sender's
    /// tells keep their order across the wire), and a failure other than
    /// a full mailbox or a shutdown is logged as a dead letter, as a local
    /// tell's would be. A shard no node takes within the ask timeout gives
    /// the command back as [`SendError::Stopped`].
    #[cfg(feature = "cluster")]
    async fn enqueue_routed<C>(
        &self,
        binding: &crate::cluster::Binding<A>,
        command: C,
    ) -> Result<(), SendError<C>>
    where
        A: Handles<C>,
        C: Send + 'static,
    {
        use crate::cluster::Destination;
        let deadline = tokio::time::Instant::now() + self.registry.settings.ask_timeout;
        let options = CommandOptions::new();
        let mut wire = None;
        loop {
            let Some(destination) = binding.destination(self, deadline).await else {
                return Err(SendError::Stopped(command));
            };
            let (node, address) = match destination {
                Destination::Local(gate) => return self.enqueue_local(command, Some(gate)).await,
                Destination::Remote { node, address } => (node, address),
            };
            let wire = match &wire {
                Some(wire) => wire,
                None => match binding.encode(self, &command) {
                    Ok(encoded) => wire.insert(encoded),
                    Err(error) => {
                        tracing::warn!(stream = %self.key.stream, %error, "dead letter: a told command does not encode");
                        return Err(SendError::Stopped(command));
                    }
                },
            };
            match binding
                .forward(self, &node, &address, wire, &options, deadline)
                .await
            {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(_)) => binding.backoff(deadline).await,
                Err(EntityError::MailboxFull { .. }) => {
                    return Err(SendError::MailboxFull(command));
                }
                Err(EntityError::ShuttingDown { .. }) => {
                    return Err(SendError::ShuttingDown(command));
                }
                Err(error) => {
                    tracing::warn!(stream = %self.key.stream, node = %node, %error, "dead letter: a told command failed on its owner");
                    return Ok(());
                }
            }
        }
    }

    /// Stops the entity once the messages queued before this one are
    /// processed (Nexus PHP's `PoisonPill`). Messages sent afterwards start
    /// a fresh incarnation, which recovers from the store.
    pub async fn stop(&self) -> Result<(), SendError<()>> {
        // In a cluster, only the node holding the shard runs the entity;
        // anywhere else there is nothing to stop (and nothing to spawn).
        #[cfg(feature = "cluster")]
        if let Some(binding) = &self.registry.settings.cluster
            && !binding.hosts_here(self)
        {
            return Ok(());
        }
        match self.send(Envelope::Stop).await {
            Ok(()) => Ok(()),
            Err(NotAccepted::Full(_)) => Err(SendError::MailboxFull(())),
            Err(NotAccepted::ShuttingDown(_)) => Err(SendError::ShuttingDown(())),
        }
    }

    /// [`deliver`](Self::deliver), counting a refused command in
    /// `nexus_commands_total`: no entity takes it to count its answer.
    async fn send(&self, envelope: Envelope<A>) -> Result<(), NotAccepted<Envelope<A>>> {
        let mut sent = self.deliver(envelope).await;
        if let Err(refused) = &mut sent {
            let (back, outcome) = match refused {
                NotAccepted::Full(back) => (back, CommandOutcome::Full),
                NotAccepted::ShuttingDown(back) => (back, CommandOutcome::ShuttingDown),
            };
            back.refused(outcome, &self.registry.metrics);
        }
        sent
    }

    /// Enqueues into the live cell (the one this ref reached last, while its
    /// mailbox accepts), following the id to its next cell when the one
    /// found closes under the send (passivation, stop).
    async fn deliver(&self, mut envelope: Envelope<A>) -> Result<(), NotAccepted<Envelope<A>>> {
        let wait = self.registry.settings.when_full == crate::WhenFull::Wait;
        loop {
            let cell = match self.held.get() {
                Some(cell) => cell,
                None => match self.registry.resolve(&self.key, wait).await {
                    Some(Ok(cell)) => {
                        self.held.set(&cell);
                        cell
                    }
                    // The limit of active entities is reached and none is idle.
                    Some(Err(())) => return Err(NotAccepted::Full(envelope)),
                    None => return Err(NotAccepted::ShuttingDown(envelope)),
                },
            };
            match cell
                .mailbox
                .send(envelope, self.registry.settings.when_full)
                .await
            {
                Ok(()) => return Ok(()),
                Err(Refused::Full(back)) => return Err(NotAccepted::Full(back)),
                // The cell was retired (and removed under the same lock), or
                // the system closed it: resolving again tells which.
                Err(Refused::Closed(back)) => {
                    self.held.forget(&cell);
                    envelope = back;
                }
            }
        }
    }

    fn shutting_down(&self) -> EntityError<A::Error> {
        EntityError::ShuttingDown {
            stream: self.key.stream.clone(),
        }
    }

    fn interrupted(&self) -> EntityError<A::Error> {
        if self.registry.system.phase() == Phase::Running && !self.registry.is_closed() {
            EntityError::Stopped {
                stream: self.key.stream.clone(),
            }
        } else {
            self.shutting_down()
        }
    }
}
