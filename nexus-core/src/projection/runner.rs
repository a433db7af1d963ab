//! The runner: one task per projection instance whose loop reads
//! fetch → handle → checkpoint → wait, top to bottom, in [`Runner::active`].

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::{Empty, display};

use super::handle::{Command, Shared};
use super::{Batch, Projected, ProjectionError, ProjectionHandle, RunState, Sink};
use crate::codec::EventCodec;
use crate::lease::{LeaseError, LeaseGuard, OwnershipLease};
use crate::telemetry::ProjectionMetrics;
use crate::{
    DomainEvent, EventStore, LogPosition, RecordedEvent, RetryPolicy, StoreError, StreamId,
};

/// Where a projection that has no recorded position starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// From the first event of the log.
    #[default]
    Origin,
    /// After the last event committed when it first starts: only new events.
    Now,
}

/// Wake-ups sent when events may have been committed, so an idle projection
/// does not busy-poll (nexus-store-pg feeds one from LISTEN/NOTIFY). Clones
/// share the signal. Wake-ups may be lost or spurious: the runner also polls
/// every [`Projection::poll_every`]. A wake-up sent while a projection is
/// reading is not lost: it ends the next wait at once.
///
/// ```
/// let wakeup = nexus_core::projection::Wakeup::new();
/// wakeup.wake();
/// ```
#[derive(Clone, Debug)]
pub struct Wakeup {
    signal: Arc<watch::Sender<u64>>,
}

impl Default for Wakeup {
    fn default() -> Self {
        Self::new()
    }
}

impl Wakeup {
    /// A signal nobody has sent yet.
    pub fn new() -> Self {
        Self {
            signal: Arc::new(watch::channel(0).0),
        }
    }

    /// Wakes every projection waiting on this signal.
    pub fn wake(&self) {
        self.signal.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }
}

/// What a store can tell about a reader's lag.
#[async_trait]
pub trait LogProbe: Send + Sync + 'static {
    /// How many committed events follow `position`, and how many seconds ago
    /// the oldest of them was recorded (0 when none).
    async fn lag(&self, position: LogPosition) -> Result<(u64, f64), StoreError>;

    /// Who holds the log's horizon back, if committed events after
    /// `position` are waiting behind it (an older transaction still runs).
    async fn held_by(&self, position: LogPosition) -> Result<Option<String>, StoreError>;
}

/// A projection: a name, the log it reads, how it decodes events and the
/// [`Sink`] it delivers them to. [`spawn`](Self::spawn) starts it.
///
/// Options: [`start`](Self::start) (origin or now), [`batch_size`](Self::batch_size),
/// [`poll_every`](Self::poll_every), [`wakeup`](Self::wakeup),
/// [`lease`](Self::lease) (one instance across processes),
/// [`probe`](Self::probe) (lag and horizon diagnostics),
/// [`categories`](Self::categories) (which streams to decode) and
/// [`retry`](Self::retry). See the [module example](super).
pub struct Projection<E: DomainEvent, S> {
    name: String,
    store: Arc<dyn EventStore>,
    codec: EventCodec<E>,
    sink: S,
    start: Start,
    batch_size: usize,
    poll_every: Duration,
    horizon_warn_after: Duration,
    retry: RetryPolicy,
    wakeup: Option<Wakeup>,
    lease: Option<Arc<dyn OwnershipLease>>,
    probe: Option<Arc<dyn LogProbe>>,
    categories: Option<Vec<String>>,
}

impl<E: DomainEvent, S: Sink<E>> Projection<E, S> {
    /// A projection named `name` (its checkpoint's and lease's key) reading
    /// `store`'s log, decoding with `codec`, delivering to `sink`.
    ///
    /// Defaults: start at the origin, batches of 500 events, a poll every
    /// 500 ms, a held horizon reported after 1 s, retries backing off from
    /// 50 ms to 5 s, no lease, no wake-up, and the events selected by type
    /// (`E::EVENT_TYPES`).
    pub fn new(
        name: impl Into<String>,
        store: Arc<dyn EventStore>,
        codec: EventCodec<E>,
        sink: S,
    ) -> Self {
        Self {
            name: name.into(),
            store,
            codec,
            sink,
            start: Start::Origin,
            batch_size: 500,
            poll_every: Duration::from_millis(500),
            horizon_warn_after: Duration::from_secs(1),
            retry: RetryPolicy::none().delayed(
                u32::MAX,
                Duration::from_millis(50),
                Duration::from_secs(5),
            ),
            wakeup: None,
            lease: None,
            probe: None,
            categories: None,
        }
    }

    /// Where to start when nothing is recorded yet.
    #[must_use]
    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }

    /// How many events of the log one batch reads (at least 1).
    #[must_use]
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// How often an idle projection looks for new events without a wake-up;
    /// also how often a standby instance tries to take over.
    #[must_use]
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every;
        self
    }

    /// How long committed events may wait behind a held horizon before the
    /// blocker is logged and counted.
    #[must_use]
    pub fn horizon_warn_after(mut self, after: Duration) -> Self {
        self.horizon_warn_after = after;
        self
    }

    /// How failed steps are retried: each attempt waits `policy.delay(n)`;
    /// past the policy the last delay repeats (a projection never gives up
    /// and never skips).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Wakes the idle projection when events may have been committed.
    #[must_use]
    pub fn wakeup(mut self, wakeup: Wakeup) -> Self {
        self.wakeup = Some(wakeup);
        self
    }

    /// Runs only while holding the lease of stream `projection.<name>`; every
    /// checkpoint write carries its fence.
    #[must_use]
    pub fn lease(mut self, lease: Arc<dyn OwnershipLease>) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Measures lag and names a held horizon's blocker.
    #[must_use]
    pub fn probe(mut self, probe: Arc<dyn LogProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Decodes every event of streams in these categories (so renamed,
    /// upcast event types are decoded too) rather than selecting by type;
    /// one projection may read several aggregates' categories.
    #[must_use]
    pub fn categories<I: IntoIterator<Item = T>, T: Into<String>>(mut self, categories: I) -> Self {
        self.categories = Some(categories.into_iter().map(Into::into).collect());
        self
    }

    /// Starts the projection on the current tokio runtime.
    pub fn spawn(self) -> ProjectionHandle {
        let (position, _) = watch::channel(LogPosition::START);
        let (paused, _) = watch::channel(false);
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            name: self.name.clone(),
            position,
            paused,
            stop,
            state: Mutex::new(RunState::Standby),
            epoch: Mutex::new(None),
            held_by: Mutex::new(None),
            stalls: std::sync::atomic::AtomicU64::new(0),
            probe: self.probe.clone(),
        });
        let (commands, receiver) = mpsc::channel(8);
        let wakeups = self.wakeup.as_ref().map(Wakeup::subscribe);
        let runner = Runner {
            metrics: ProjectionMetrics::register(&self.name),
            wakeups,
            projection: self,
            shared: Arc::clone(&shared),
            commands: receiver,
            attempt: 0,
            lag_measured: None,
        };
        let task = tokio::spawn(runner.run());
        ProjectionHandle {
            shared,
            commands,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }
}

/// Why [`Runner::active`] returned.
enum Exit {
    Stopped,
    /// The lease was lost or a checkpoint write was fenced.
    Lost,
}

struct Runner<E: DomainEvent, S> {
    projection: Projection<E, S>,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    /// Wake-ups seen so far: marked before each fetch, so one sent during
    /// the fetch ends the next wait.
    wakeups: Option<watch::Receiver<u64>>,
    /// Consecutive failed steps, for the retry policy.
    attempt: u32,
    /// Bound to the recorder in effect when the projection was spawned.
    metrics: ProjectionMetrics,
    /// When the lag gauges were last set from the probe while catching up.
    lag_measured: Option<Instant>,
}

/// How often a projection that is catching up (never drained, so never
/// waiting) measures its lag: often enough for a dashboard, rarely enough
/// that the probe's count costs nothing beside the batches.
const LAG_EVERY_WHILE_BUSY: Duration = Duration::from_secs(1);

impl<E: DomainEvent, S: Sink<E>> Runner<E, S> {
    async fn run(mut self) {
        let stream = StreamId::new(format!("projection.{}", self.projection.name));
        let mut stop = self.shared.stop.subscribe();
        while !*stop.borrow() {
            let Some(guard) = self.acquire(&stream, &mut stop).await else {
                break;
            };
            *self
                .shared
                .epoch
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                guard.as_ref().map(|g| g.fence().epoch());
            let exit = self.active(guard.as_ref(), &mut stop).await;
            *self
                .shared
                .epoch
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            drop(guard);
            match exit {
                Exit::Stopped => break,
                Exit::Lost => {
                    tracing::warn!(projection = %self.projection.name, "projection lease lost; standing by");
                }
            }
        }
        self.shared.set_state(RunState::Stopped);
    }

    /// Takes the projection's lease (`Some(None)` without one); `None` once
    /// stopped. A standby instance follows the recorded position meanwhile,
    /// so its handle's `wait_for` still answers.
    async fn acquire(
        &mut self,
        stream: &StreamId,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Option<LeaseGuard>> {
        let Some(lease) = self.projection.lease.clone() else {
            return Some(None);
        };
        loop {
            if *stop.borrow() {
                return None;
            }
            match lease.acquire(stream).await {
                Ok(guard) => return Some(Some(guard)),
                Err(LeaseError::Held { holder, .. }) => {
                    self.shared.set_state(RunState::Standby);
                    tracing::debug!(projection = %self.projection.name, %holder, "projection runs elsewhere");
                    if let Ok(Some(position)) = self.projection.sink.load().await {
                        self.shared.publish(position);
                    }
                }
                Err(error) => {
                    tracing::warn!(projection = %self.projection.name, %error, "projection lease failed");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.projection.poll_every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// The active instance's loop: fetch a page of the log, decode the
    /// selected events, deliver them with the page's last position, publish
    /// it; when the log is drained, record, check the horizon and wait for a
    /// wake-up or the next poll.
    // The whole loop in one function, so that it reads top to bottom.
    #[allow(clippy::too_many_lines)]
    async fn active(
        &mut self,
        guard: Option<&LeaseGuard>,
        stop: &mut watch::Receiver<bool>,
    ) -> Exit {
        let fence = guard.map(LeaseGuard::fence);
        let mut paused = self.shared.paused.subscribe();
        let Some(mut position) = self.recorded_position(guard, stop).await else {
            return Exit::Stopped;
        };
        self.shared.publish(position);
        self.shared.set_state(RunState::Running);
        // While rebuilding: who asked, and the live position readers rely on.
        let mut rebuild = None;
        let mut stalled_since: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                let _ = self.projection.sink.flush(fence).await;
                return Exit::Stopped;
            }
            if guard.is_some_and(|g| !g.is_current()) {
                return Exit::Lost;
            }
            if rebuild.is_none()
                && let Ok(Command::Rebuild(reply)) = self.commands.try_recv()
            {
                {
                    match self.projection.sink.begin_rebuild(fence).await {
                        Ok(()) => {
                            tracing::info!(projection = %self.projection.name, "rebuilding from the origin");
                            rebuild = Some(reply);
                            position = LogPosition::START;
                            self.shared.set_state(RunState::Rebuilding);
                        }
                        Err(error) => {
                            let lost = error.is_fenced();
                            let _ = reply.send(Err(error));
                            if lost {
                                return Exit::Lost;
                            }
                        }
                    }
                }
            }
            if *paused.borrow() && rebuild.is_none() {
                if let Err(error) = self.projection.sink.flush(fence).await
                    && error.is_fenced()
                {
                    return Exit::Lost;
                }
                self.shared.set_state(RunState::Paused);
                tokio::select! {
                    _ = paused.changed() => {}
                    _ = stop.changed() => {}
                    () = lost(guard) => return Exit::Lost,
                }
                self.shared.set_state(RunState::Running);
                continue;
            }

            // Fetch.
            if let Some(wakeups) = &mut self.wakeups {
                wakeups.borrow_and_update();
            }
            let page = match self
                .projection
                .store
                .read_all(position, self.projection.batch_size)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    self.back_off(ProjectionError::Store(error), stop).await;
                    continue;
                }
            };

            // Drained: finish a rebuild, record, report a held horizon, wait.
            if page.is_empty() {
                if let Some(reply) = rebuild.take() {
                    match self.projection.sink.finish_rebuild(position, fence).await {
                        Ok(()) => {
                            tracing::info!(projection = %self.projection.name, %position, "rebuilt and swapped in");
                            self.shared.publish(position);
                            self.shared.set_state(RunState::Running);
                            let _ = reply.send(Ok(position));
                        }
                        Err(error) => {
                            let lost = error.is_fenced();
                            let _ = reply.send(Err(error));
                            if lost {
                                return Exit::Lost;
                            }
                            // Back to the live model where it was.
                            match self.projection.sink.load().await {
                                Ok(recorded) => position = recorded.unwrap_or(LogPosition::START),
                                Err(_) => return Exit::Lost,
                            }
                            self.shared.set_state(RunState::Running);
                        }
                    }
                    continue;
                }
                if let Err(error) = self.projection.sink.flush(fence).await {
                    if error.is_fenced() {
                        return Exit::Lost;
                    }
                    self.back_off(error, stop).await;
                    continue;
                }
                self.check_horizon(position, &mut stalled_since).await;
                self.measure_lag(position).await;
                let poll = self.projection.poll_every;
                let wakeups = &mut self.wakeups;
                tokio::select! {
                    () = async { match wakeups { Some(w) => { let _ = w.changed().await; } None => std::future::pending().await } } => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                    _ = paused.changed() => {}
                    () = lost(guard) => return Exit::Lost,
                }
                continue;
            }
            if stalled_since.take().is_some() {
                *self
                    .shared
                    .held_by
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
            }

            // Handle and checkpoint.
            let last = page.last().expect("a non-empty page");
            let through = last.position;
            let age = std::time::SystemTime::now()
                .duration_since(last.metadata.timestamp)
                .unwrap_or_default();
            let span = batch_span(&self.projection.name, position, &page);
            let batch = match self.decode(page) {
                Ok(batch) => batch,
                Err(error) => {
                    self.back_off(error, stop).await;
                    continue;
                }
            };
            let events = batch.len();
            let delivered = self
                .projection
                .sink
                .deliver(batch, through, fence)
                .instrument(span)
                .await;
            match delivered {
                Ok(()) => {
                    self.metrics.delivered(events, age);
                    position = through;
                    let due = self
                        .lag_measured
                        .is_none_or(|at| at.elapsed() >= LAG_EVERY_WHILE_BUSY);
                    if due && self.projection.probe.is_some() {
                        self.measure_lag(position).await;
                    }
                    self.attempt = 0;
                    if rebuild.is_none() {
                        self.shared.publish(position);
                        self.shared.set_state(RunState::Running);
                    }
                }
                Err(error) if error.is_fenced() => {
                    tracing::warn!(projection = %self.projection.name, %error, "checkpoint refused");
                    return Exit::Lost;
                }
                Err(error) => self.back_off(error, stop).await,
            }
        }
    }

    /// The recorded position, or the start position if none; retried until
    /// it loads. `None` once stopped.
    async fn recorded_position(
        &mut self,
        guard: Option<&LeaseGuard>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<LogPosition> {
        loop {
            if *stop.borrow() || guard.is_some_and(|g| !g.is_current()) {
                return None;
            }
            let loaded = match self.projection.sink.load().await {
                Ok(Some(position)) => Ok(position),
                Ok(None) => match self.projection.start {
                    Start::Origin => Ok(LogPosition::START),
                    Start::Now => self.head().await,
                },
                Err(error) => Err(error),
            };
            match loaded {
                Ok(position) => return Some(position),
                Err(error) => self.back_off(error, stop).await,
            }
        }
    }

    /// The position of the last event readable now.
    async fn head(&mut self) -> Result<LogPosition, ProjectionError> {
        let mut head = LogPosition::START;
        loop {
            let page = self.projection.store.read_all(head, 1000).await?;
            match page.last() {
                Some(last) => head = last.position,
                None => return Ok(head),
            }
        }
    }

    /// The page's selected events, decoded; the first that does not decode
    /// fails the whole page (the projection stops there, never skips it).
    fn decode(&self, page: Vec<RecordedEvent>) -> Result<Batch<E>, ProjectionError> {
        let mut batch = Vec::with_capacity(page.len());
        for recorded in page {
            let selected = match &self.projection.categories {
                Some(categories) => {
                    let category = recorded
                        .stream_id
                        .as_str()
                        .split_once('-')
                        .map_or("", |(c, _)| c);
                    categories.iter().any(|c| c == category)
                }
                None => E::EVENT_TYPES.contains(&recorded.event_type.as_str()),
            };
            if !selected {
                continue;
            }
            let event = self.projection.codec.decode(&recorded).map_err(|source| {
                ProjectionError::Decode {
                    projection: self.projection.name.clone(),
                    position: recorded.position,
                    source,
                }
            })?;
            batch.push(Projected::new(event, recorded));
        }
        Ok(batch)
    }

    /// Sets the lag gauges from the store's probe, when there is one;
    /// without one the log is drained, so nothing waits.
    async fn measure_lag(&mut self, position: LogPosition) {
        self.lag_measured = Some(Instant::now());
        let Some(probe) = &self.projection.probe else {
            self.metrics.drained();
            return;
        };
        match probe.lag(position).await {
            Ok((events, seconds)) => self.metrics.lag(events, seconds),
            Err(error) => {
                tracing::debug!(projection = %self.projection.name, %error, "lag probe failed");
            }
        }
    }

    /// Reports a horizon held back while committed events wait behind it:
    /// once it has lasted `horizon_warn_after`, a warning naming the blocker,
    /// the status's `horizon_held_by` and one more `horizon_stalls`.
    async fn check_horizon(&mut self, position: LogPosition, stalled_since: &mut Option<Instant>) {
        let Some(probe) = &self.projection.probe else {
            return;
        };
        let held_by = match probe.held_by(position).await {
            Ok(held_by) => held_by,
            Err(error) => {
                tracing::debug!(projection = %self.projection.name, %error, "horizon probe failed");
                return;
            }
        };
        let mut reported = self
            .shared
            .held_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(blocker) = held_by else {
            *stalled_since = None;
            *reported = None;
            self.metrics.horizon_held(Duration::ZERO);
            return;
        };
        let since = *stalled_since.get_or_insert_with(Instant::now);
        self.metrics.horizon_held(since.elapsed());
        if since.elapsed() >= self.projection.horizon_warn_after
            && reported.as_deref() != Some(blocker.as_str())
        {
            tracing::warn!(
                projection = %self.projection.name,
                %position,
                blocker = %blocker,
                waited_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                "committed events wait behind the log horizon held by {blocker}: lag, not a skip"
            );
            self.shared.stalls.fetch_add(1, Ordering::Relaxed);
            self.metrics.horizon_stalled();
            *reported = Some(blocker);
        }
    }

    async fn back_off(&mut self, error: ProjectionError, stop: &mut watch::Receiver<bool>) {
        self.attempt = self.attempt.saturating_add(1);
        let delay = self
            .projection
            .retry
            .delay(self.attempt)
            .or_else(|| {
                self.projection
                    .retry
                    .delay(self.projection.retry.max_retries())
            })
            .unwrap_or(Duration::from_millis(100));
        tracing::warn!(projection = %self.projection.name, %error, attempt = self.attempt, ?delay, "projection step failed; retrying");
        self.shared.set_state(RunState::Retrying(error.to_string()));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The `nexus.projection.batch` span of one page of the log, with a `debug`
/// event per event naming the ids (and the `traceparent` header) that tie
/// it back to the command that wrote it.
fn batch_span(projection: &str, from: LogPosition, page: &[RecordedEvent]) -> tracing::Span {
    let span = tracing::info_span!(
        "nexus.projection.batch",
        projection,
        events = page.len(),
        from = %from,
        through = Empty,
        correlation_id = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(last) = page.last() {
        span.record("through", display(last.position));
        if let Some(id) = last.metadata.correlation_id {
            span.record("correlation_id", display(id));
        }
    }
    span.in_scope(|| {
        for event in page {
            tracing::debug!(
                event_id = %event.metadata.event_id,
                stream = %event.stream_id,
                version = event.version,
                correlation_id = ?event.metadata.correlation_id,
                causation_id = ?event.metadata.causation_id,
                traceparent = event.metadata.headers.get("traceparent").map(String::as_str),
                "projecting"
            );
        }
    });
    span
}

/// Resolves when `guard`'s lease is lost; never without a lease.
async fn lost(guard: Option<&LeaseGuard>) {
    match guard {
        Some(guard) => guard.lost().await,
        None => std::future::pending().await,
    }
}
