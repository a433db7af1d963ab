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
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::builder::Ownership;
use super::catch_panic::CatchPanic;
use super::fanout;
use super::message::{Decided, Envelope, Message, panic_message};
use super::persistence::{Loaded, WriteError};
use super::registry::{Cell, Registry};
use super::supervision::RestartWindow;
use crate::actor::system::Phase;
use crate::lease::{LeaseError, LeaseGuard};
use crate::{Aggregate, EntityError, ReplayPolicy};

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
            if let Envelope::Command(message) = envelope {
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
    lease: Option<LeaseGuard>,
    /// Commands taken from the mailbox and not answered yet (after a panic
    /// in their batch). They are older than anything in the mailbox, so
    /// they go first: send order is kept.
    carry: VecDeque<Boxed<A>>,
    restarts: RestartWindow,
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
    /// The entity is done (restart limit): everything was answered.
    Exit,
}

impl<A: Aggregate> Runner<A> {
    async fn run(mut self) {
        loop {
            let (batch, stop_after) = match self.next_batch().await {
                Next::Batch(batch, stop_after) => (batch, stop_after),
                Next::Idle | Next::LeaseLost => {
                    if self.retire() {
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
                Flow::Exit => return,
                Flow::Stop => true,
                Flow::Continue => stop_after,
            };
            if stop && self.retire() {
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
        let mut batch = Vec::new();
        if self.carry.is_empty() {
            let idle = self
                .registry
                .settings
                .receive_timeout
                .filter(|_| self.registry.system.phase() == Phase::Running);
            let wait = async {
                match idle {
                    Some(idle) => tokio::time::timeout(idle, self.cell.mailbox.recv())
                        .await
                        .ok(),
                    None => Some(self.cell.mailbox.recv().await),
                }
            };
            // An entity whose lease ends while it waits frees its state at
            // once rather than keep what another owner may be changing.
            let lost = async {
                match &self.lease {
                    Some(guard) => guard.lost().await,
                    None => std::future::pending().await,
                }
            };
            let received = tokio::select! {
                biased;
                received = wait => match received {
                    Some(received) => received,
                    None => return Next::Idle,
                },
                () = lost => return Next::LeaseLost,
            };
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
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.attempt(batch, attempts).await {
                Attempt::Done(flow) => return flow,
                Attempt::Again(back) => batch = back,
            }
        }
    }

    /// One decision and write of the batch.
    async fn attempt(&mut self, mut batch: Vec<Boxed<A>>, attempts: u32) -> Attempt<A> {
        let registry = Arc::clone(&self.registry);
        let settings = &registry.settings;
        let cell = Arc::clone(&self.cell);
        let stream = &cell.key.stream;
        self.drop_stale_lease();
        // Recovered in this attempt, so after every command of the batch was
        // sent: it includes every write committed before they were.
        let fresh = self.live.is_none();
        let mut live = match self.live.take() {
            Some(live) => live,
            None => match self.start(&mut batch).await {
                Ok(live) => live,
                Err(flow) => return Attempt::Done(flow),
            },
        };
        if settings.replay == ReplayPolicy::RequireExisting && live.version == 0 {
            // Not kept: the next command looks again, in case it was
            // created meanwhile. So this state is always fresh.
            for message in batch {
                message.fail(EntityError::NotFound {
                    stream: stream.clone(),
                });
            }
            return Attempt::Done(Flow::Continue);
        }
        let decided = match decide_batch(&mut batch, &mut live, settings) {
            Ok(decided) => decided,
            Err((index, message)) => {
                batch.remove(index).fail(EntityError::Panicked {
                    stream: stream.clone(),
                    message,
                });
                // The state may be half-applied and nothing of the batch was
                // written: the others are decided again, first, on the
                // recovered state.
                for message in batch.into_iter().rev() {
                    self.carry.push_front(message);
                }
                return Attempt::Done(self.restart().await);
            }
        };
        let flow_after = if decided.stop {
            Flow::Stop
        } else {
            Flow::Continue
        };
        if decided.events.is_empty() {
            return self.answer_unwritten(batch, live, fresh, flow_after).await;
        }
        let fence = self.lease.as_ref().map(LeaseGuard::fence);
        let written = match settings.persistence.encode(&decided.events, &live.state) {
            Ok(encoded) => {
                settings
                    .persistence
                    .write(stream, live.version, encoded, fence)
                    .await
            }
            Err(error) => Err(WriteError::Encode(error)),
        };
        let version = match written {
            Ok(version) => version,
            Err(error) => return self.failed_write(batch, error, attempts).await,
        };
        live.version = version;
        for message in batch {
            message.complete(&live.state, stream);
        }
        let snapshot = decided
            .snapshot_due
            .then(|| {
                settings
                    .persistence
                    .snapshot_of(stream, &live.state, version)
            })
            .flatten();
        self.live = Some(live);
        if let Some(snapshot) = snapshot {
            let fence = self.lease.as_ref().map(LeaseGuard::fence);
            if settings.persistence.save_snapshot(snapshot, fence).await {
                self.lose_lease();
            }
        }
        Attempt::Done(flow_after)
    }

    /// Answers a batch that wrote nothing (queries, rejections), from a
    /// state that includes every write committed before its commands were
    /// sent. Without an owner, that is confirmed at the stream's head; an
    /// entity found behind catches up and decides the batch again.
    async fn answer_unwritten(
        &mut self,
        batch: Vec<Boxed<A>>,
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
        for message in batch {
            message.complete(&live.state, stream);
        }
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

    /// After a write that did not commit, the in-memory state is unknown
    /// (it has the batch applied) and was dropped: retry a conflict on
    /// reloaded state, or answer every command of the batch.
    async fn failed_write(
        &mut self,
        batch: Vec<Boxed<A>>,
        error: WriteError,
        attempts: u32,
    ) -> Attempt<A> {
        let stream = &self.cell.key.stream;
        match error {
            WriteError::Conflict { expected, actual } => {
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
            WriteError::Store(error) => {
                for message in batch {
                    message.fail(EntityError::Store(fanout::store_error(&error)));
                }
                Attempt::Done(self.restart().await)
            }
        }
    }

    /// Takes the lease (once) and loads a fresh state. On failure the batch
    /// is answered and the flow to follow is returned.
    async fn start(&mut self, batch: &mut Vec<Boxed<A>>) -> Result<Loaded<A>, Flow> {
        let registry = Arc::clone(&self.registry);
        let settings = &registry.settings;
        let cell = Arc::clone(&self.cell);
        let stream = &cell.key.stream;
        if let (Ownership::Leased(lease), None) = (&settings.ownership, &self.lease) {
            match lease.acquire(stream).await {
                Ok(guard) => self.lease = Some(guard),
                Err(error) => {
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
        match CatchPanic::new(settings.persistence.load(stream)).await {
            Ok(Ok(loaded)) => Ok(loaded),
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
    async fn restart(&mut self) -> Flow {
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
        tracing::error!(%stream, restarts, ?window, "entity stopped: restart limit reached");
        let queued = self
            .registry
            .retire(&self.cell)
            .into_iter()
            .filter_map(|envelope| match envelope {
                Envelope::Command(message) => Some(message),
                Envelope::Stop => None,
            });
        for message in self.carry.drain(..).chain(queued) {
            message.fail(EntityError::RestartLimit {
                stream: stream.clone(),
                restarts,
                window,
            });
        }
        Flow::Exit
    }
}

/// What a batch decided.
struct Decision<E> {
    events: Vec<E>,
    snapshot_due: bool,
    stop: bool,
}

/// Decides every command of the batch in order against `live`, applying
/// each one's events before the next is decided; or returns the index and
/// panic message of a command whose handler, `apply` or reply panicked.
fn decide_batch<A: Aggregate>(
    batch: &mut [Boxed<A>],
    live: &mut Loaded<A>,
    settings: &super::builder::Settings<A>,
) -> Result<Decision<A::Event>, (usize, String)> {
    let mut decision = Decision {
        events: Vec::new(),
        snapshot_due: false,
        stop: false,
    };
    let mut version = live.version;
    for (index, message) in batch.iter_mut().enumerate() {
        let decided = catch_unwind(AssertUnwindSafe(|| match message.decide(&live.state) {
            Decided::Rejected => None,
            Decided::Accepted { events, stop } => {
                for event in &events {
                    live.state.apply(event);
                    version += 1;
                    decision.snapshot_due |=
                        settings
                            .persistence
                            .snapshot_due(&live.state, event, version);
                }
                message.prepare_reply(&live.state);
                Some((events, stop))
            }
        }));
        match decided {
            Ok(Some((events, stop))) => {
                decision.events.extend(events);
                decision.stop |= stop;
            }
            Ok(None) => {}
            Err(panic) => return Err((index, panic_message(&*panic))),
        }
    }
    Ok(decision)
}
