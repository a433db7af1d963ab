//! The actor loop of one entity.
//!
//! Guarantees, per entity:
//! - one batch at a time, in mailbox order, each command decided against
//!   the state the previous one left;
//! - the state is loaded into a fresh `A::default()` before the first
//!   command and again after every failure (never replayed onto a mutated
//!   state);
//! - a reply is sent only after the batch's write committed; rejections in
//!   a batch are answered after the commit too;
//! - every command taken from the mailbox is answered exactly once: with
//!   its reply, or with an explicit error;
//! - no stale answers: a batch that wrote nothing is answered only from a
//!   state known to include every write committed before its commands were
//!   sent: recovered after they were sent, confirmed at the stream's head,
//!   held under a current lease, or declared the sole writer's;
//! - under a lease, every write carries the lease's fence, and an entity
//!   whose lease is no longer current drops its state and answers nothing
//!   from it.

use std::collections::VecDeque;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::builder::{Ownership, Settings};
use super::catch_panic::catch_panic;
use super::decision::{Decision, Panicked, decide_batch};
use super::fanout;
use super::message::{Envelope, Message, Written};
use super::persistence::{Committed, Encoded, Loaded, WriteError};
use super::registry::{Cell, Registry};
use super::supervision::RestartWindow;
use crate::actor::system::Phase;
use crate::lease::{Fence, LeaseError, LeaseGuard};
use crate::telemetry::EntityMetrics;
use crate::{Aggregate, EntityError, ReplayPolicy, StoreError, StreamId};

type Boxed<A> = Box<dyn Message<A>>;

/// Runs the entity of `cell` until it passivates, stops or the system
/// aborts.
pub(crate) async fn run<A: Aggregate>(registry: Arc<Registry<A>>, cell: Arc<Cell<A>>) {
    let _exit = ExitGuard {
        registry: Arc::clone(&registry),
        cell: Arc::clone(&cell),
    };
    let aborted = registry.system.aborted();
    let runner = Runner {
        registry,
        cell,
        live: None,
        lease: None,
        carry: VecDeque::new(),
        restarts: RestartWindow::default(),
        cooling_until: None,
        receive_timer: None,
        recycled: Decision::default(),
        spare_batch: Vec::new(),
    };
    tokio::select! {
        biased;
        () = aborted => {}
        () = runner.run() => {}
    }
}

/// Retires the cell however the task ends (return, abort, panic): what is
/// still queued is answered, never left behind.
struct ExitGuard<A: Aggregate> {
    registry: Arc<Registry<A>>,
    cell: Arc<Cell<A>>,
}

impl<A: Aggregate> Drop for ExitGuard<A> {
    fn drop(&mut self) {
        let left = self.registry.retire(&self.cell);
        let shutting_down =
            self.registry.is_closed() || self.registry.system.phase() != Phase::Running;
        let stream = &self.cell.key.stream;
        for envelope in left {
            if let Envelope::Command(mut message) = envelope {
                message.observe(&self.registry.metrics, stream, 0);
                message.fail(if shutting_down {
                    EntityError::ShuttingDown {
                        stream: stream.clone(),
                    }
                } else {
                    EntityError::Stopped {
                        stream: stream.clone(),
                    }
                });
            }
        }
    }
}

struct Runner<A: Aggregate> {
    registry: Arc<Registry<A>>,
    cell: Arc<Cell<A>>,
    /// The current incarnation's state; `None` until recovered, and again
    /// after a failure made it unknown.
    live: Option<Loaded<A>>,
    /// Held from the first recovery until the entity stops; kept across
    /// restarts, which do not change the owner.
    lease: Option<HeldLease>,
    /// Commands taken from the mailbox and not answered yet (after a panic
    /// in their batch). They are older than anything in the mailbox, so
    /// they go first: send order is kept.
    carry: VecDeque<Boxed<A>>,
    restarts: RestartWindow,
    /// Past the restart limit: commands are refused until then.
    cooling_until: Option<tokio::time::Instant>,
    /// The receive timeout's timer, made at the first wait.
    receive_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The last batch's decision, whose buffers the next batch reuses.
    recycled: Decision,
    /// The last answered batch's buffer, empty, for the next batch.
    spare_batch: Vec<Boxed<A>>,
}

/// A lease guard the entity holds, counted in `nexus_leases_held` until
/// it is dropped, however the entity ends.
struct HeldLease {
    guard: LeaseGuard,
    metrics: Arc<EntityMetrics>,
}

impl HeldLease {
    fn new(guard: LeaseGuard, metrics: &Arc<EntityMetrics>) -> Self {
        metrics.lease_acquired();
        Self {
            guard,
            metrics: Arc::clone(metrics),
        }
    }
}

impl Deref for HeldLease {
    type Target = LeaseGuard;
    fn deref(&self) -> &LeaseGuard {
        &self.guard
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.metrics.lease_released();
    }
}

enum Next<A: Aggregate> {
    /// Commands to process, and whether a stop marker followed them.
    Batch(Vec<Boxed<A>>, bool),
    /// Nothing arrived within the receive timeout.
    Idle,
    /// The lease stopped being current while the entity waited.
    LeaseLost,
    /// The mailbox is closed and empty (shutdown).
    Closed,
}

enum Attempt<A: Aggregate> {
    Done(Flow),
    /// The write conflicted: decide the batch again on reloaded state.
    Again(Vec<Boxed<A>>),
}

enum Flow {
    Continue,
    /// The incarnation ends (`then_stop`); the entity retires if idle.
    Stop,
}

impl<A: Aggregate> Runner<A> {
    async fn run(mut self) {
        loop {
            let (batch, stop_after) = match self.next_batch().await {
                Next::Batch(batch, stop_after) => (batch, stop_after),
                Next::Idle | Next::LeaseLost => {
                    if self.retire() {
                        self.registry.metrics.passivated();
                        return;
                    }
                    continue;
                }
                Next::Closed => return,
            };
            let flow = if batch.is_empty() {
                Flow::Continue
            } else {
                self.process(batch).await
            };
            let stop = match flow {
                Flow::Stop => true,
                Flow::Continue => stop_after,
            };
            if stop && self.retire() {
                self.registry.metrics.stopped();
                return;
            }
        }
    }

    /// Ends the incarnation, and the entity too when nothing waits.
    /// Returns whether the entity is gone.
    fn retire(&mut self) -> bool {
        // Freed first, so that a next entity for this id finds the lease
        // free; if messages arrived meanwhile, they start a new incarnation
        // here, which recovers from the store.
        self.live = None;
        self.lease = None;
        self.carry.is_empty() && self.registry.retire_if_empty(&self.cell)
    }

    async fn next_batch(&mut self) -> Next<A> {
        let max = self.registry.settings.group_commit;
        // The last batch's buffer, emptied: no allocation per batch.
        let mut batch = std::mem::take(&mut self.spare_batch);
        if self.carry.is_empty() {
            let idle = self
                .registry
                .settings
                .receive_timeout
                .filter(|_| self.registry.system.phase() == Phase::Running);
            let (cell, lease) = (&self.cell, &self.lease);
            // One timer per incarnation, moved later at every wait: a fresh
            // timer per wait would wake a parked worker each time (see
            // `Deadlines`), moving one later does not.
            let receive_timer = idle.map(|idle| {
                let at = tokio::time::Instant::now() + idle;
                let timer = self
                    .receive_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                timer.as_mut().reset(at);
                timer.as_mut()
            });
            let wait = async {
                match receive_timer {
                    Some(timer) => tokio::select! {
                        biased;
                        received = cell.mailbox.recv() => Some(received),
                        () = timer => None,
                    },
                    None => Some(cell.mailbox.recv().await),
                }
            };
            // An entity whose lease ends while it waits frees its state at
            // once rather than keep what another owner may be changing.
            let lost = async {
                match lease {
                    Some(guard) => guard.lost().await,
                    None => std::future::pending().await,
                }
            };
            cell.set_idle(true, &self.registry);
            if self.registry.wants_room() {
                // Another entity waits for room: make it now if nothing is
                // queued (a message that is queued wins, see `biased`).
                cell.evict.notify_one();
            }
            let received = tokio::select! {
                biased;
                received = wait => match received {
                    Some(received) => received,
                    None => return Next::Idle,
                },
                () = lost => return Next::LeaseLost,
                // The registry needs room for another entity.
                () = cell.evict.notified() => return Next::Idle,
            };
            self.cell.set_idle(false, &self.registry);
            match received {
                None => return Next::Closed,
                Some(Envelope::Stop) => return Next::Batch(batch, true),
                Some(Envelope::Command(message)) => batch.push(message),
            }
        }
        while batch.len() < max {
            if let Some(message) = self.carry.pop_front() {
                batch.push(message);
                continue;
            }
            match self.cell.mailbox.try_pop() {
                Some(Envelope::Command(message)) => batch.push(message),
                Some(Envelope::Stop) => return Next::Batch(batch, true),
                None => break,
            }
        }
        Next::Batch(batch, false)
    }

    /// Decides, writes and answers one batch, re-deciding it on conflicts.
    async fn process(&mut self, mut batch: Vec<Boxed<A>>) -> Flow {
        let metrics = &self.registry.metrics;
        let size = batch.len();
        metrics.batch(size, size + self.cell.mailbox.len());
        for message in &mut batch {
            message.observe(metrics, &self.cell.key.stream, size);
        }
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.attempt(batch, attempts).await {
                Attempt::Done(flow) => return flow,
                Attempt::Again(back) => {
                    self.registry.metrics.retry();
                    batch = back;
                }
            }
        }
    }

    /// One pass over the batch: recover, decide, write, answer, snapshot.
    /// Each step reads in its own method; any of them may end the pass.
    async fn attempt(&mut self, batch: Vec<Boxed<A>>, attempts: u32) -> Attempt<A> {
        let Some(mut batch) = self.refuse_while_cooling(batch) else {
            return Attempt::Done(Flow::Continue);
        };
        self.split_at_repeated_command_id(&mut batch);
        self.drop_stale_lease();
        // Recovered in this pass, so after every command of the batch was
        // sent: it includes every write committed before they were.
        let fresh = self.live.is_none();
        let mut live = match self.live.take() {
            Some(live) => live,
            None => match self.start(&mut batch).await {
                Ok(live) => live,
                Err(flow) => return Attempt::Done(flow),
            },
        };
        if self.registry.settings.replay == ReplayPolicy::RequireExisting && !live.exists {
            // Not kept: the next command looks again, in case it was
            // created meanwhile. So this state is always fresh.
            let stream = &self.cell.key.stream;
            for message in batch {
                message.fail(EntityError::NotFound {
                    stream: stream.clone(),
                });
            }
            return Attempt::Done(Flow::Continue);
        }
        let decision = match self.decide(&mut batch, &mut live).await {
            Ok(decision) => decision,
            Err(flow) => return Attempt::Done(flow),
        };
        let flow_after = if decision.stop {
            Flow::Stop
        } else {
            Flow::Continue
        };
        if decision.events() == 0 {
            self.recycled = decision;
            return self.answer_unwritten(batch, live, fresh, flow_after).await;
        }
        let registry = Arc::clone(&self.registry);
        let settings = &registry.settings;
        let written = match settings.persistence.encode_state(&live.state) {
            Ok(state) => {
                let fence = self.lease.as_deref().map(LeaseGuard::fence);
                let stream = &self.cell.key.stream;
                let span = append_span::<A>(&batch, stream, decision.events(), live.version);
                let started = Instant::now();
                let written = write_batch(settings, stream, live.version, &decision, state, fence)
                    .instrument(span.clone())
                    .await;
                let took = started.elapsed();
                span.record("duration_ms", took.as_secs_f64() * 1_000.0);
                if written.is_ok() {
                    registry.metrics.appended(decision.events(), took);
                }
                written
            }
            Err(error) => Err(WriteError::Encode(error)),
        };
        let committed = match written {
            Ok(committed) => committed,
            Err(error) => return self.failed_write(batch, error, attempts).await,
        };
        let loaded_version = live.version;
        live.version = committed.version;
        live.exists = true;
        self.spare_batch =
            self.answer_written(batch, &live, loaded_version, &decision.counts, &committed);
        let snapshot_due = decision.snapshot_due;
        self.recycled = decision;
        self.snapshot(live, snapshot_due).await;
        Attempt::Done(flow_after)
    }

    /// Leaves a command whose command id already occurs earlier in the batch
    /// (a concurrent duplicate), and everything after it, for the next
    /// batch: once the first copy committed, the next one is answered from
    /// its record, and the order of the batch is kept.
    fn split_at_repeated_command_id(&mut self, batch: &mut Vec<Boxed<A>>) {
        let mut seen = Vec::new();
        let repeated = batch.iter().position(|message| {
            message.options().id().is_some_and(|id| {
                let again = seen.contains(&id);
                seen.push(id);
                again
            })
        });
        if let Some(at) = repeated {
            for message in batch.split_off(at).into_iter().rev() {
                self.carry.push_front(message);
            }
        }
    }

    /// Decides the batch against `live` (see [`decide_batch`]). Commands
    /// whose events do not encode are answered now and leave the batch; a
    /// panic restarts the entity, and the others go first to the next
    /// incarnation.
    async fn decide(
        &mut self,
        batch: &mut Vec<Boxed<A>>,
        live: &mut Loaded<A>,
    ) -> Result<Decision, Flow> {
        let registry = Arc::clone(&self.registry);
        let stream = &self.cell.key.stream;
        let recycled = std::mem::take(&mut self.recycled);
        match decide_batch(batch, live, &registry.settings, recycled) {
            Ok(mut decision) => {
                for (index, error) in decision.unencodable.drain(..).rev() {
                    decision.counts.remove(index);
                    batch.remove(index).fail(EntityError::Encode {
                        stream: stream.clone(),
                        source: error,
                    });
                }
                Ok(decision)
            }
            Err(Panicked { index, message }) => {
                batch.remove(index).fail(EntityError::Panicked {
                    stream: stream.clone(),
                    message,
                });
                // The state may be half-applied and nothing of the batch was
                // written: the others are decided again, first, on the
                // recovered state.
                for message in batch.drain(..).rev() {
                    self.carry.push_front(message);
                }
                Err(self.restart().await)
            }
        }
    }

    /// Answers every command of a batch that committed, each with the
    /// version and position right after its own events.
    /// Returns the batch's buffer, emptied.
    fn answer_written(
        &self,
        mut batch: Vec<Boxed<A>>,
        live: &Loaded<A>,
        loaded_version: u64,
        counts: &[usize],
        committed: &Committed,
    ) -> Vec<Boxed<A>> {
        let stream = &self.cell.key.stream;
        let answered = tokio::time::Instant::now();
        let mut offset = 0usize;
        for (message, count) in batch.drain(..).zip(counts) {
            offset += count;
            let position = (*count > 0)
                .then(|| committed.positions.get(offset - 1).copied())
                .flatten();
            let version = loaded_version + offset as u64;
            message.complete(&live.state, stream, Written { version, position }, answered);
        }
        batch
    }

    /// Takes a snapshot after a commit when the strategy asks for one, then
    /// keeps the state. A snapshot that panics while encoding restarts the
    /// entity (its state is suspect); one the store fences off ends the
    /// lease.
    async fn snapshot(&mut self, live: Loaded<A>, due: bool) {
        let registry = Arc::clone(&self.registry);
        let persistence = &registry.settings.persistence;
        let stream = &self.cell.key.stream;
        let snapshot = if due {
            match catch_unwind(AssertUnwindSafe(|| {
                persistence.snapshot_of(stream, &live.state, live.version)
            })) {
                Ok(snapshot) => snapshot,
                Err(panic) => {
                    tracing::error!(%stream, panic = super::message::panic_message(&*panic), "encoding a snapshot panicked; the entity restarts");
                    self.restart().await;
                    return;
                }
            }
        } else {
            None
        };
        self.live = Some(live);
        if let Some(snapshot) = snapshot {
            let fence = self.lease.as_deref().map(LeaseGuard::fence);
            if persistence.save_snapshot(snapshot, fence).await {
                self.lose_lease();
            }
        }
    }

    /// Answers a batch that wrote nothing (queries, rejections), from a
    /// state that includes every write committed before its commands were
    /// sent. Without an owner, that is confirmed at the stream's head; an
    /// entity found behind catches up and decides the batch again.
    async fn answer_unwritten(
        &mut self,
        mut batch: Vec<Boxed<A>>,
        live: Loaded<A>,
        fresh: bool,
        flow: Flow,
    ) -> Attempt<A> {
        let cell = Arc::clone(&self.cell);
        let stream = &cell.key.stream;
        let settings = &self.registry.settings;
        if !fresh && matches!(settings.ownership, Ownership::Arbitrated) {
            match settings.persistence.head(stream).await {
                Ok(head) if head == live.version => {}
                // Another process wrote since this state was loaded.
                Ok(_) => return Attempt::Again(batch),
                Err(error) => {
                    // Nothing was written: the state stays as good as it was.
                    for message in batch {
                        message.fail(EntityError::Store(fanout::store_error(&error)));
                    }
                    self.live = Some(live);
                    return Attempt::Done(Flow::Continue);
                }
            }
        }
        let at = Written {
            version: live.version,
            position: None,
        };
        let answered = tokio::time::Instant::now();
        for message in batch.drain(..) {
            message.complete(&live.state, stream, at, answered);
        }
        self.spare_batch = batch;
        self.live = Some(live);
        Attempt::Done(flow)
    }

    /// A lease that is no longer current ends the incarnation: another
    /// process may own the entity now, so its state may be stale.
    fn drop_stale_lease(&mut self) {
        if self.lease.as_ref().is_some_and(|guard| !guard.is_current()) {
            self.lose_lease();
        }
    }

    fn lose_lease(&mut self) {
        if let Some(guard) = self.lease.take() {
            self.registry.metrics.lease_lost();
            let fence = guard.fence();
            tracing::warn!(
                stream = %self.cell.key.stream,
                shard = fence.shard(),
                epoch = fence.epoch(),
                "lease lost: the entity dropped its state"
            );
        }
        self.live = None;
    }

    /// After a write that did not commit (or may have), the in-memory state
    /// is unknown (it has the batch applied) and was dropped: retry a
    /// conflict on reloaded state, answer commands found committed earlier
    /// under their command ids, or answer every command of the batch.
    async fn failed_write(
        &mut self,
        batch: Vec<Boxed<A>>,
        error: WriteError,
        attempts: u32,
    ) -> Attempt<A> {
        let cell = Arc::clone(&self.cell);
        let stream = &cell.key.stream;
        match error {
            WriteError::Conflict { expected, actual } => {
                self.registry.metrics.conflict();
                let Some(delay) = self.registry.settings.retry.delay(attempts) else {
                    for message in batch {
                        message.fail(EntityError::Conflict {
                            stream: stream.clone(),
                            expected,
                            actual,
                            attempts,
                        });
                    }
                    return Attempt::Done(Flow::Continue);
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Attempt::Again(batch)
            }
            WriteError::Fenced { shard, epoch } => {
                // Another process owns the entity now: nothing was written,
                // and this incarnation must not answer from its state again.
                for message in batch {
                    message.fail(EntityError::NotOwner {
                        stream: stream.clone(),
                        source: LeaseError::Lost {
                            stream: stream.clone(),
                            shard,
                            epoch,
                        },
                    });
                }
                self.lose_lease();
                Attempt::Done(Flow::Stop)
            }
            WriteError::Encode(error) => {
                for message in batch {
                    message.fail(EntityError::Encode {
                        stream: stream.clone(),
                        source: fanout::codec_error(&error),
                    });
                }
                Attempt::Done(Flow::Continue)
            }
            WriteError::Store(StoreError::DuplicateEventId { event_id, .. }) => {
                self.replay_committed(batch, event_id).await
            }
            WriteError::Store(error) => {
                for message in batch {
                    message.fail(EntityError::Store(fanout::store_error(&error)));
                }
                Attempt::Done(self.restart().await)
            }
            WriteError::Unknown {
                sends,
                waited,
                source,
            } => {
                tracing::error!(%stream, sends, ?waited, error = %source, "the outcome of a write is unknown");
                for message in batch {
                    message.fail(EntityError::OutcomeUnknown {
                        stream: stream.clone(),
                        attempts: sends,
                        waited,
                        source: fanout::store_error(&source),
                    });
                }
                Attempt::Done(self.restart().await)
            }
            WriteError::Panicked(message) => {
                tracing::error!(%stream, panic = message, "the store panicked while writing");
                for waiting in batch {
                    waiting.fail(EntityError::Panicked {
                        stream: stream.clone(),
                        message: message.clone(),
                    });
                }
                Attempt::Done(self.restart().await)
            }
        }
    }

    /// The store holds an event id of the batch already: commands retried
    /// under a command id that committed before. Each of them is answered
    /// from its recorded events (its original reply, no side effects run
    /// again); the rest of the batch is decided again on reloaded state. An
    /// id that no command of the batch owns in this stream is a reused id,
    /// refused for the command that carries it.
    async fn replay_committed(&mut self, batch: Vec<Boxed<A>>, event_id: uuid::Uuid) -> Attempt<A> {
        let cell = Arc::clone(&self.cell);
        let stream = &cell.key.stream;
        let registry = Arc::clone(&self.registry);
        let persistence = &registry.settings.persistence;
        let mut rest = Vec::with_capacity(batch.len());
        let mut answered = 0usize;
        for mut message in batch {
            let recorded = match persistence
                .recorded_command(stream, message.options())
                .await
            {
                Ok(recorded) => recorded,
                Err(error) => {
                    message.fail(EntityError::Recovery(error));
                    answered += 1;
                    continue;
                }
            };
            let Some(recorded) = recorded else {
                rest.push(message);
                continue;
            };
            let mut state = recorded.before;
            let mut at = Written {
                version: recorded.version_before,
                position: None,
            };
            let replayed = catch_unwind(AssertUnwindSafe(|| {
                let _ = message.decide(&state, recorded.version_before);
                for (event, version, position) in &recorded.events {
                    state.apply(event);
                    at = Written {
                        version: *version,
                        position: Some(*position),
                    };
                }
                message.prepare_reply(&state);
            }));
            match replayed {
                Ok(()) => {
                    message.complete_replayed(&state, stream, at, tokio::time::Instant::now());
                }
                Err(panic) => message.fail(EntityError::Panicked {
                    stream: stream.clone(),
                    message: super::message::panic_message(&*panic),
                }),
            }
            answered += 1;
        }
        if answered == 0 {
            // No command of the batch committed before: the id is reused.
            let (owners, others): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|message| message.options().owns_event(event_id, 64));
            if owners.is_empty() && !others.is_empty() {
                for message in others {
                    message.fail(EntityError::Store(StoreError::DuplicateEventId {
                        stream: stream.clone(),
                        event_id,
                    }));
                }
                return Attempt::Done(Flow::Continue);
            }
            for message in owners {
                message.fail(EntityError::Store(StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id,
                }));
            }
            rest = others;
        }
        if rest.is_empty() {
            Attempt::Done(Flow::Continue)
        } else {
            Attempt::Again(rest)
        }
    }

    /// Takes the lease (once) and loads a fresh state. On failure the batch
    /// is answered and the flow to follow is returned.
    async fn start(&mut self, batch: &mut Vec<Boxed<A>>) -> Result<Loaded<A>, Flow> {
        let registry = Arc::clone(&self.registry);
        let settings = &registry.settings;
        let cell = Arc::clone(&self.cell);
        let stream = &cell.key.stream;
        let parent = batch.first().map_or_else(Span::none, |m| m.span().clone());
        if let (Ownership::Leased(lease), None) = (&settings.ownership, &self.lease) {
            let span = tracing::info_span!(parent: &parent, "nexus.lease.acquire",
                aggregate = A::NAME, stream = %stream, shard = Empty, epoch = Empty);
            match lease.acquire(stream).instrument(span.clone()).await {
                Ok(guard) => {
                    span.record("shard", guard.fence().shard());
                    span.record("epoch", guard.fence().epoch());
                    self.lease = Some(HeldLease::new(guard, &registry.metrics));
                }
                Err(error) => {
                    registry.metrics.lease_refused();
                    for message in batch.drain(..) {
                        message.fail(EntityError::NotOwner {
                            stream: stream.clone(),
                            source: fanout::lease_error(&error),
                        });
                    }
                    return Err(Flow::Continue);
                }
            }
        }
        let span = tracing::info_span!(parent: &parent, "nexus.recovery",
            aggregate = A::NAME, stream = %stream, events = Empty, from_snapshot = Empty, version = Empty);
        let started = Instant::now();
        let loaded = catch_panic(settings.persistence.load(stream))
            .instrument(span.clone())
            .await;
        match loaded {
            Ok(Ok(loaded)) => {
                registry.metrics.recovered(
                    loaded.from_snapshot,
                    loaded.replayed,
                    started.elapsed(),
                );
                span.record("events", loaded.replayed);
                span.record("from_snapshot", loaded.from_snapshot);
                span.record("version", loaded.version);
                Ok(loaded)
            }
            Ok(Err(error)) => {
                for message in batch.drain(..) {
                    message.fail(EntityError::Recovery(fanout::recovery_error(&error)));
                }
                Err(self.restart().await)
            }
            // `apply` panicked on a stored event: a restart, like any panic.
            Err(message) => {
                for waiting in batch.drain(..) {
                    waiting.fail(EntityError::Panicked {
                        stream: stream.clone(),
                        message: message.clone(),
                    });
                }
                Err(self.restart().await)
            }
        }
    }

    /// Drops the state and waits the backoff; the next batch recovers. Past
    /// the restart limit, answers everything queued and ends the entity.
    /// Drops the state and waits the backoff; the next batch recovers. Past
    /// the restart limit, answers everything queued and refuses commands
    /// for the cooldown; the entity stays registered meanwhile, so the
    /// limit holds however many commands keep arriving.
    async fn restart(&mut self) -> Flow {
        self.registry.metrics.restarted();
        self.live = None;
        let policy = self.registry.settings.supervision;
        if let Some(backoff) = self.restarts.record(&policy) {
            tokio::time::sleep(backoff).await;
            return Flow::Continue;
        }
        self.lease = None;
        let cell = Arc::clone(&self.cell);
        let stream = &cell.key.stream;
        let (_, window) = policy.limit();
        let restarts = self.restarts.count();
        tracing::error!(%stream, restarts, ?window, cooldown = ?policy.cooldown(), "restart limit reached: the entity refuses commands for the cooldown");
        self.cooling_until = Some(tokio::time::Instant::now() + policy.cooldown());
        let queued: Vec<_> = std::iter::from_fn(|| self.cell.mailbox.try_pop()).collect();
        let metrics = &self.registry.metrics;
        let queued = queued.into_iter().filter_map(|envelope| match envelope {
            Envelope::Command(mut message) => {
                message.observe(metrics, stream, 0);
                Some(message)
            }
            Envelope::Stop => None,
        });
        let carried: Vec<_> = self.carry.drain(..).collect();
        for message in carried.into_iter().chain(queued) {
            message.fail(self.restart_limit());
        }
        Flow::Continue
    }

    fn restart_limit(&self) -> EntityError<A::Error> {
        let (_, window) = self.registry.settings.supervision.limit();
        EntityError::RestartLimit {
            stream: self.cell.key.stream.clone(),
            restarts: self.restarts.count(),
            window,
        }
    }

    /// Past the restart limit: answers the batch with the limit's error
    /// until the cooldown is over. Returns the batch when it is over.
    fn refuse_while_cooling(&mut self, batch: Vec<Boxed<A>>) -> Option<Vec<Boxed<A>>> {
        match self.cooling_until {
            Some(until) if tokio::time::Instant::now() < until => {
                for message in batch {
                    message.fail(self.restart_limit());
                }
                None
            }
            Some(_) => {
                self.cooling_until = None;
                Some(batch)
            }
            None => Some(batch),
        }
    }
}

/// The `nexus.append` span of a batch's write: a child of the batch's first
/// command, and the others follow from it.
fn append_span<A: Aggregate>(
    batch: &[Boxed<A>],
    stream: &StreamId,
    rows: usize,
    expected: u64,
) -> Span {
    let parent = batch.first().map_or_else(Span::none, |m| m.span().clone());
    let span = tracing::info_span!(parent: &parent, "nexus.append",
        aggregate = A::NAME, stream = %stream, rows, commands = batch.len(), expected,
        duration_ms = Empty);
    if !span.is_disabled() {
        for message in batch.iter().skip(1) {
            message.span().follows_from(&span);
        }
    }
    span
}

/// The pause before re-sending a write whose outcome is unknown: short at
/// first (a connection blip), up to half a second.
fn resend_backoff(sends: u32) -> Duration {
    Duration::from_millis(5u64 << sends.min(7)).min(Duration::from_millis(500))
}

/// Writes a decided batch, fenced when leased. When the store's answer is
/// lost (a broken connection, a timeout) the outcome is unknown, so the
/// very same batch (same event ids, same expected version) is sent again
/// until the store says what happened or the deadline passes: an idempotent
/// re-append returns the original outcome when the first send committed,
/// and a durable-state row is saved under the same expected version.
///
/// A free function over `Sync` pieces: the state and the mailbox's messages
/// are not held across the write.
async fn write_batch<A: Aggregate>(
    settings: &Settings<A>,
    stream: &StreamId,
    loaded_version: u64,
    decision: &Decision,
    state: Option<Vec<u8>>,
    fence: Option<&Fence>,
) -> Result<Committed, WriteError> {
    let persistence = &settings.persistence;
    let started = tokio::time::Instant::now();
    let mut sends = 0u32;
    loop {
        sends += 1;
        let batch = match &state {
            Some(state) => Encoded::State(state.clone()),
            None => Encoded::Events(&decision.encoded),
        };
        let written = catch_panic(persistence.write(stream, loaded_version, batch, fence)).await;
        let error = match written {
            Ok(Ok(committed)) => return Ok(committed),
            Ok(Err(WriteError::Store(error))) if error.is_ambiguous() => error,
            Ok(Err(other)) => return Err(other),
            Err(message) => return Err(WriteError::Panicked(message)),
        };
        let waited = started.elapsed();
        if waited >= settings.outcome_deadline {
            return Err(WriteError::Unknown {
                sends,
                waited,
                source: error,
            });
        }
        tokio::time::sleep(resend_backoff(sends)).await;
    }
}
