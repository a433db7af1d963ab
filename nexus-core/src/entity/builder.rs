//! The options of an entity type, and their builder.

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use super::Entities;
use super::persistence::Persistence;
use super::registry::Registry;
use crate::codec::{Codec, EventCodec};
use crate::lease::OwnershipLease;
use crate::store::StateStore;
use crate::{
    ActorSystem, Aggregate, EventStore, ReplayPolicy, RetryPolicy, Snapshots, Supervision, WhenFull,
};

/// How long an entity waits for a message before it passivates, unless
/// configured otherwise.
const DEFAULT_RECEIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything an entity of one type runs with.
pub(crate) struct Settings<A: Aggregate> {
    pub(crate) persistence: Persistence<A>,
    pub(crate) replay: ReplayPolicy,
    pub(crate) mailbox_capacity: usize,
    pub(crate) when_full: WhenFull,
    pub(crate) receive_timeout: Option<Duration>,
    pub(crate) max_active: Option<usize>,
    pub(crate) ask_timeout: Duration,
    pub(crate) outcome_deadline: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) group_commit: usize,
    pub(crate) supervision: Supervision,
    pub(crate) ownership: Ownership,
    #[cfg(feature = "cluster")]
    pub(crate) cluster: Option<Arc<crate::cluster::Binding<A>>>,
}

/// Who may write an entity type's streams, and so what a reply that did not
/// write must check first (invariant 8: no stale answers).
#[derive(Clone)]
pub(crate) enum Ownership {
    /// Nobody is known to own the streams: other processes may write them.
    /// A reply that did not write (a query, a rejection) is sent only after
    /// the entity confirmed it is at the stream's head.
    Arbitrated,
    /// The lease makes this process the owner; every write carries its
    /// fence and nothing is answered once it is no longer current.
    Leased(Arc<dyn OwnershipLease>),
    /// The user declared this process the store's only writer.
    SoleWriter,
}

/// Why [`EntitiesBuilder::build`] refused the options.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither `event_sourced` nor `durable_state` was called.
    #[error("{aggregate}: choose a persistence with `event_sourced(..)` or `durable_state(..)`")]
    NoPersistence {
        /// The aggregate's name.
        aggregate: &'static str,
    },
    /// Both `event_sourced` and `durable_state` were called.
    #[error("{aggregate}: `event_sourced(..)` and `durable_state(..)` were both called; pick one")]
    TwoPersistences {
        /// The aggregate's name.
        aggregate: &'static str,
    },
    /// Snapshots only apply to event-sourced entities.
    #[error(
        "{aggregate}: snapshots need `event_sourced(..)`; a durable-state row is its own snapshot"
    )]
    SnapshotsWithoutEvents {
        /// The aggregate's name.
        aggregate: &'static str,
    },
    /// The aggregate's name cannot be the category of its streams.
    #[error("aggregate name {aggregate:?}: {reason}")]
    InvalidName {
        /// The aggregate's name.
        aggregate: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The actor system already serves an aggregate of this name: a second
    /// registry would run a second actor for the same id.
    #[error(
        "{aggregate}: this actor system already serves entities of this aggregate name; \
         clone that `Entities` instead of building another (two registries would run two actors for one id)"
    )]
    AlreadyServed {
        /// The aggregate's name.
        aggregate: &'static str,
    },
    /// `cluster(..)` was combined with another ownership option: a cluster
    /// owns its entities through its nodes' shard leases.
    #[error(
        "{aggregate}: `{option}(..)` cannot be combined with `cluster(..)`, which owns the entities \
         through the cluster's shard leases; drop `lease(..)`/`sole_writer()`"
    )]
    ClusterOwnership {
        /// The aggregate's name.
        aggregate: &'static str,
        /// The option combined with it.
        option: &'static str,
    },
    /// A count that must be at least 1 was 0.
    #[error("{aggregate}: `{option}` must be at least 1, got 0")]
    Zero {
        /// The aggregate's name.
        aggregate: &'static str,
        /// The option's name.
        option: &'static str,
    },
}

/// Options for an entity type; [`build`](Self::build) starts serving it.
///
/// Defaults: the system's mailbox capacity and ask timeout,
/// [`WhenFull::Wait`], passivation after two idle minutes, no limit of
/// active entities, [`RetryPolicy::default`], no group
/// commit (batches of 1), [`Supervision::default`],
/// [`ReplayPolicy::CreateIfMissing`], and no owner: without a
/// [`lease`](Self::lease) or [`sole_writer`](Self::sole_writer), other
/// processes may write the same streams, so a reply that did not write
/// first confirms the entity is at the stream's head
/// ([`guide::ownership`](crate::guide::ownership)).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use nexus_core::{ActorSystem, Entities, WhenFull, codec::{EventCodec, Json}};
/// use nexus_core::store::memory::InMemoryEventStore;
/// # use nexus_core::testkit::doc::{Counter, Add};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let system = ActorSystem::new();
/// let counters = Entities::<Counter>::builder(&system)
///     .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
///     .mailbox_capacity(64)
///     .when_full(WhenFull::Fail)
///     .receive_timeout(Duration::from_secs(120))
///     .group_commit(32)
///     .build()
///     .unwrap();
/// assert_eq!(counters.of("c1").ask(Add(2)).await.unwrap(), 2);
/// # });
/// ```
#[must_use = "call build() to serve the entity type"]
pub struct EntitiesBuilder<A: Aggregate> {
    system: ActorSystem,
    persistence: Vec<Persistence<A>>,
    snapshots: Option<Snapshots<A>>,
    replay: ReplayPolicy,
    mailbox_capacity: usize,
    when_full: WhenFull,
    receive_timeout: Option<Duration>,
    max_active: Option<usize>,
    ask_timeout: Duration,
    outcome_deadline: Option<Duration>,
    retry: RetryPolicy,
    group_commit: usize,
    supervision: Supervision,
    ownership: Ownership,
    #[cfg(feature = "cluster")]
    cluster: Option<Arc<crate::cluster::Binding<A>>>,
    /// The ownership option combined with `cluster(..)`, which owns the
    /// entities itself.
    #[cfg(feature = "cluster")]
    conflict: Option<&'static str>,
}

impl<A: Aggregate> EntitiesBuilder<A> {
    pub(crate) fn new(system: &ActorSystem) -> Self {
        let defaults = system.shared.defaults;
        Self {
            system: system.clone(),
            persistence: Vec::new(),
            snapshots: None,
            replay: ReplayPolicy::default(),
            mailbox_capacity: defaults.mailbox_capacity,
            when_full: WhenFull::default(),
            receive_timeout: Some(DEFAULT_RECEIVE_TIMEOUT),
            max_active: None,
            ask_timeout: defaults.ask_timeout,
            outcome_deadline: None,
            retry: RetryPolicy::default(),
            group_commit: 1,
            supervision: Supervision::default(),
            ownership: Ownership::Arbitrated,
            #[cfg(feature = "cluster")]
            cluster: None,
            #[cfg(feature = "cluster")]
            conflict: None,
        }
    }

    /// Event-sourced: the state is a fold of the entity's stream in `store`,
    /// events encoded with `codec`.
    pub fn event_sourced(
        mut self,
        store: Arc<dyn EventStore>,
        codec: EventCodec<A::Event>,
    ) -> Self {
        self.persistence.push(Persistence::EventSourced {
            store,
            codec,
            snapshots: None,
        });
        self
    }

    /// Durable state: the whole state is one versioned row in `store`,
    /// encoded with `codec`. Handlers still decide events; `apply` evolves
    /// the state in memory and the runtime saves the state, not the events.
    pub fn durable_state(mut self, store: Arc<dyn StateStore>, codec: impl Codec) -> Self
    where
        A: Serialize + DeserializeOwned,
    {
        self.persistence.push(Persistence::DurableState {
            store,
            codec: Arc::new(codec),
        });
        self
    }

    /// Snapshot event-sourced entities per `snapshots`' strategy; recovery
    /// starts from the newest snapshot.
    pub fn snapshots(mut self, snapshots: Snapshots<A>) -> Self {
        self.snapshots = Some(snapshots);
        self
    }

    /// What to do when the entity's stream or row does not exist.
    pub fn replay_policy(mut self, policy: ReplayPolicy) -> Self {
        self.replay = policy;
        self
    }

    /// At most `capacity` commands wait per entity (at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity;
        self
    }

    /// What a send does when the mailbox is full.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Passivate an entity that received nothing for `idle`: it stops and
    /// frees its state; the next command recovers it from the store.
    /// Default: two minutes, as in Nexus PHP's wallet tutorial.
    pub fn receive_timeout(mut self, idle: Duration) -> Self {
        self.receive_timeout = Some(idle);
        self
    }

    /// At most `limit` entities are live at once (at least 1). When a
    /// message arrives for an entity that is not live and the limit is
    /// reached, the least recently active idle entities passivate to make
    /// room, and the send waits for it (or, with [`WhenFull::Fail`], fails
    /// with a full mailbox when none is idle). Nothing accepted is lost:
    /// a passivating entity hands what is queued to its next incarnation.
    /// Default: no limit beyond idle passivation.
    pub fn max_active_entities(mut self, limit: usize) -> Self {
        self.max_active = Some(limit);
        self
    }

    /// How long `ask` waits for a reply, including waiting for mailbox room.
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = timeout;
        self
    }

    /// How long an entity keeps re-sending a write whose answer was lost
    /// ([`StoreError::Ambiguous`](crate::StoreError::Ambiguous)) before it
    /// answers [`OutcomeUnknown`](crate::EntityError::OutcomeUnknown).
    /// Default: half the ask timeout, so that the caller learns it before
    /// its own timeout.
    pub fn outcome_deadline(mut self, deadline: Duration) -> Self {
        self.outcome_deadline = Some(deadline);
        self
    }

    /// How conflicts with other writers are retried.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Decide up to `max_batch` queued commands in order and write their
    /// events in one atomic append (at least 1; 1 means no batching).
    ///
    /// Each reply is computed from the state right after its own command's
    /// events and sent after the batch committed; side effects run after
    /// the commit with the state after the whole batch.
    pub fn group_commit(mut self, max_batch: usize) -> Self {
        self.group_commit = max_batch;
        self
    }

    /// How the entity restarts after a panic or a failed write.
    pub fn supervision(mut self, policy: Supervision) -> Self {
        self.supervision = policy;
        self
    }

    /// Own the entities through `lease`: each entity takes the lease of its
    /// stream's shard before recovering, every write carries the lease's
    /// fence (the store refuses it once another process took over), and
    /// nothing is answered once the lease is no longer current. Commands are
    /// answered [`NotOwner`](crate::EntityError::NotOwner) while the lease
    /// cannot be taken. Replaces [`sole_writer`](Self::sole_writer).
    ///
    /// The stores must check fences (the in-memory and Postgres ones do);
    /// others refuse fenced writes with
    /// [`StoreError::FencingUnsupported`](crate::StoreError::FencingUnsupported).
    pub fn lease(mut self, lease: Arc<dyn OwnershipLease>) -> Self {
        #[cfg(feature = "cluster")]
        if self.cluster.is_some() {
            self.conflict = Some("lease");
        }
        self.ownership = Ownership::Leased(lease);
        self
    }

    /// Declare this process the only writer of the entity type's streams
    /// (one process, nothing else writing the store): replies that did not
    /// write skip the check that the entity is at the stream's head. If
    /// another process does write, those replies may be stale; writes stay
    /// safe, as the store's version check turns them into conflicts.
    /// Replaces [`lease`](Self::lease).
    pub fn sole_writer(mut self) -> Self {
        #[cfg(feature = "cluster")]
        if self.cluster.is_some() {
            self.conflict = Some("sole_writer");
        }
        self.ownership = Ownership::SoleWriter;
        self
    }

    /// Serve the entity type as part of `cluster`: every send reaches the
    /// node holding the entity's shard (this one: its mailbox; another: over
    /// the cluster's transport, with the same reply and errors), and the
    /// entities this node hosts are owned through its shard leases, fenced
    /// like [`lease`](Self::lease)'s. Commands and replies cross the wire
    /// through `codec`, which is why every command, reply and the error must
    /// be serde types: otherwise this call does not compile. Replaces
    /// [`lease`](Self::lease) and [`sole_writer`](Self::sole_writer).
    ///
    /// Needs the cargo feature `cluster`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use nexus_core::{ActorSystem, Entities, cluster::Cluster, codec::{EventCodec, Json}};
    /// use nexus_core::store::memory::InMemoryEventStore;
    /// # use nexus_core::testkit::doc::{Counter, Add};
    /// # async fn run(system: ActorSystem, cluster: Cluster) -> Result<(), Box<dyn std::error::Error>> {
    /// let counters = Entities::<Counter>::builder(&system)
    ///     .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
    ///     .cluster(&cluster, Json)
    ///     .build()?;
    /// counters.of("c1").ask(Add(1)).await?; // on whichever node holds c1's shard
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "cluster")]
    pub fn cluster<W>(mut self, cluster: &crate::cluster::Cluster, codec: W) -> Self
    where
        A: crate::remote::RemoteCommands<W>,
        W: Codec + Clone,
    {
        let node = Arc::clone(&cluster.node);
        if !matches!(self.ownership, Ownership::Arbitrated) {
            self.conflict = Some("cluster");
        }
        self.ownership = Ownership::Leased(Arc::new(crate::cluster::NodeLease(Arc::clone(&node))));
        self.cluster = Some(Arc::new(crate::cluster::Binding::new(node, codec)));
        self
    }

    /// Checks the options and starts serving the entity type.
    pub fn build(self) -> Result<Entities<A>, ConfigError> {
        let aggregate = A::NAME;
        if let Some(reason) = crate::stream::category_problem(aggregate) {
            return Err(ConfigError::InvalidName { aggregate, reason });
        }
        let zero = |option| ConfigError::Zero { aggregate, option };
        if self.mailbox_capacity == 0 {
            return Err(zero("mailbox_capacity"));
        }
        if self.group_commit == 0 {
            return Err(zero("group_commit"));
        }
        if self.max_active == Some(0) {
            return Err(zero("max_active_entities"));
        }
        #[cfg(feature = "cluster")]
        if let Some(option) = self.conflict {
            return Err(ConfigError::ClusterOwnership { aggregate, option });
        }
        let mut choices = self.persistence.into_iter();
        let mut persistence = match (choices.next(), choices.next()) {
            (None, _) => return Err(ConfigError::NoPersistence { aggregate }),
            (Some(_), Some(_)) => return Err(ConfigError::TwoPersistences { aggregate }),
            (Some(only), None) => only,
        };
        match (&mut persistence, self.snapshots) {
            (Persistence::EventSourced { snapshots, .. }, chosen) => *snapshots = chosen,
            (Persistence::DurableState { .. }, Some(_)) => {
                return Err(ConfigError::SnapshotsWithoutEvents { aggregate });
            }
            (Persistence::DurableState { .. }, None) => {}
        }
        let settings = Settings {
            persistence,
            replay: self.replay,
            mailbox_capacity: self.mailbox_capacity,
            when_full: self.when_full,
            receive_timeout: self.receive_timeout,
            max_active: self.max_active,
            ask_timeout: self.ask_timeout,
            outcome_deadline: self.outcome_deadline.unwrap_or(self.ask_timeout / 2),
            retry: self.retry,
            group_commit: self.group_commit,
            supervision: self.supervision,
            ownership: self.ownership,
            #[cfg(feature = "cluster")]
            cluster: self.cluster,
        };
        let entities = Entities {
            registry: Registry::new(settings, &self.system.shared)?,
        };
        #[cfg(feature = "cluster")]
        if let Some(binding) = &entities.registry.settings.cluster {
            binding.attach(&entities)?;
        }
        Ok(entities)
    }
}
