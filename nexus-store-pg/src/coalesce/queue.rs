//! The appends waiting to be coalesced, and which streams have a coalesced
//! statement in flight.
//!
//! Invariant (kept under the one lock): a stream is in at most one group
//! that a worker has taken and not finished. Appends of a stream that is in
//! flight wait in the queue, in their order, so one store never has a
//! stream in two statements at once: its statements never wait on each
//! other's head locks, and a group never holds two appends of one stream
//! (which one statement could not write).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use std::time::{Duration, Instant};

use nexus_core::lease::Fence;
use nexus_core::{AppendOutcome, ExpectedVersion, NewEvent, StoreError, StreamId};
use tokio::sync::{Notify, oneshot};

use crate::convert::FenceKey;

/// What an append's caller is told.
pub(crate) type Outcome = Result<AppendOutcome, StoreError>;

/// One caller's append, waiting for its outcome.
pub(crate) struct Pending {
    pub(crate) stream: StreamId,
    pub(crate) expected: ExpectedVersion,
    /// `expected` as the statement binds it (NULL for any), converted
    /// when the append was queued.
    pub(crate) expected_column: Option<i64>,
    pub(crate) events: Vec<NewEvent>,
    /// The lease the append relies on, with its columns, for a fenced
    /// append: a fenced append always sends them, so the database always
    /// checks them.
    pub(crate) fence: Option<(Fence, FenceKey)>,
    /// When the append was queued: its patience counts from then.
    pub(crate) queued: Instant,
    /// When the append gives up waiting for a statement: as an append
    /// alone waits at most the pool's acquire timeout for a connection.
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Outcome>,
}

impl Pending {
    /// The fence of a fenced append.
    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref().map(|(fence, _)| fence)
    }
}

/// How large a group may grow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupLimits {
    /// Streams (appends) in one statement.
    pub(crate) streams: usize,
    /// Events in one statement; a larger single append still goes alone.
    pub(crate) events: usize,
    /// How long an append may wait for a statement: the pool's acquire
    /// timeout, as an append alone waits for a connection.
    pub(crate) wait: Duration,
    /// Groups taken as soon as appends wait for one.
    pub(crate) eager: usize,
    /// How long waiting appends hold back one more group beyond `eager`.
    pub(crate) patience: Duration,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Pending>,
    in_flight: HashSet<StreamId>,
    /// Groups taken and not finished.
    groups: usize,
    /// Workers holding appends back, each timing their patience: while
    /// one does, further appends need not wake another.
    watchers: usize,
    closed: bool,
}

impl State {
    /// Whether an append waits whose stream is not in flight.
    fn takeable(&self) -> bool {
        self.waiting
            .iter()
            .any(|p| !self.in_flight.contains(&p.stream))
    }

    /// Frees the streams of a finished group, and its place in flight.
    fn free<'a>(&mut self, streams: impl IntoIterator<Item = &'a StreamId>) {
        for stream in streams {
            self.in_flight.remove(stream);
        }
        debug_assert!(self.groups > 0, "a group finished twice");
        self.groups = self.groups.saturating_sub(1);
    }

    /// When the oldest append a group could take now was queued.
    fn oldest_takeable(&self) -> Option<Instant> {
        self.waiting
            .iter()
            .filter(|p| !self.in_flight.contains(&p.stream))
            .map(|p| p.queued)
            .min()
    }
}

/// The queue the store's callers push to and its workers take groups from.
#[derive(Default)]
pub(crate) struct Queue {
    state: Mutex<State>,
    /// Woken when an append arrives, a group finishes (its streams may have
    /// waiting appends) or the store is dropped.
    ready: Notify,
}

impl Queue {
    /// Queues `pending` for a worker; gives it back when the store is gone.
    ///
    /// Wakes a worker unless none could take it now: `eager` groups are in
    /// flight and a held-back worker already times their patience.
    pub(crate) fn push(&self, pending: Pending, limits: GroupLimits) -> Result<(), Box<Pending>> {
        let wake = {
            let mut state = self.lock();
            if state.closed {
                return Err(Box::new(pending));
            }
            state.waiting.push_back(pending);
            state.groups < limits.eager || state.watchers == 0
        };
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Whether no append waits.
    pub(crate) fn is_idle(&self) -> bool {
        self.lock().waiting.is_empty()
    }

    /// The next group to write, waiting for one; `None` once the store is
    /// dropped and nothing waits.
    ///
    /// With `eager` groups in flight, appends that could form another wait
    /// for one of those to finish (its worker then takes them, in a larger
    /// group) or until the oldest of them has waited `patience`, whichever
    /// comes first: quick statements make large groups, and slow ones hold
    /// an append back no longer than that.
    pub(crate) async fn next_group(&self, limits: GroupLimits) -> Option<Vec<Pending>> {
        let mut watch = Watch {
            queue: self,
            on: false,
        };
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Registered before looking, so a push between the look and the
            // wait still wakes this worker.
            notified.as_mut().enable();
            let held_until = {
                let mut state = self.lock();
                let gated = state.groups >= limits.eager;
                let until = gated
                    .then(|| state.oldest_takeable())
                    .flatten()
                    .map(|queued| queued + limits.patience);
                let hold = gated && until.is_none_or(|until| until > Instant::now());
                // One watcher times the held appends; the others wait for a
                // finish, or for the watcher to hand the watch on.
                let watcher = hold && until.is_some() && (watch.on || state.watchers == 0);
                watch.set(&mut state, watcher);
                if !hold {
                    let group = take_group(&mut state, limits);
                    if !group.is_empty() {
                        let more = state.takeable();
                        drop(state);
                        if more {
                            // Another idle worker can take what is left.
                            self.ready.notify_one();
                        }
                        return Some(group);
                    }
                }
                if state.closed && state.waiting.is_empty() {
                    drop(state);
                    // The other workers may wait for a wake-up that the last
                    // group's `finish` gave to one of them only.
                    self.ready.notify_waiters();
                    return None;
                }
                until.filter(|_| watcher)
            };
            match held_until {
                Some(until) => {
                    let _ = tokio::time::timeout_at(until.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Marks the streams of a finished group free again.
    pub(crate) fn finish<'a>(&self, streams: impl IntoIterator<Item = &'a StreamId>) {
        let waiting = {
            let mut state = self.lock();
            state.free(streams);
            !state.waiting.is_empty()
        };
        if waiting {
            self.ready.notify_one();
        }
    }

    /// Marks the streams of a finished group free again, as [`finish`]
    /// does, and takes the next group for the worker that finished it, if
    /// fewer than `eager` are in flight: the appends held back for this
    /// statement go in its worker's next one, so no other worker is woken
    /// for them (only for what that group leaves).
    ///
    /// [`finish`]: Self::finish
    pub(crate) fn finish_and_take<'a>(
        &self,
        streams: impl IntoIterator<Item = &'a StreamId>,
        limits: GroupLimits,
    ) -> Option<Vec<Pending>> {
        let (group, wake) = {
            let mut state = self.lock();
            state.free(streams);
            let group = if state.groups < limits.eager {
                take_group(&mut state, limits)
            } else {
                Vec::new()
            };
            let wake = state.takeable() && (state.groups < limits.eager || state.watchers == 0);
            (group, wake)
        };
        if wake {
            self.ready.notify_one();
        }
        (!group.is_empty()).then_some(group)
    }

    /// Refuses new appends and lets the workers stop once the queue is
    /// empty.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds
        // a consistent queue.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether this worker is one of the queue's watchers (holding appends
/// back, timing their patience): counted off when it stops, and when its
/// task ends mid-wait, which also wakes another worker to time them.
struct Watch<'a> {
    queue: &'a Queue,
    on: bool,
}

impl Watch<'_> {
    fn set(&mut self, state: &mut State, on: bool) {
        match (self.on, on) {
            (false, true) => state.watchers += 1,
            (true, false) => state.watchers -= 1,
            _ => {}
        }
        self.on = on;
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if self.on {
            self.queue.lock().watchers -= 1;
            self.queue.ready.notify_one();
        }
    }
}

/// Takes the oldest appends of streams not in flight, one per stream, up to
/// `limits`, and marks their streams in flight. An append whose caller has
/// gone (its future was dropped) is discarded unsent: nothing of it was
/// written, and nobody waits for its outcome. One that waited past its
/// deadline is answered [`StoreError::PoolExhausted`] unsent, as an append
/// alone that found no free connection.
fn take_group(state: &mut State, limits: GroupLimits) -> Vec<Pending> {
    let mut group = Vec::new();
    let mut events = 0;
    let mut kept = VecDeque::with_capacity(state.waiting.len());
    let now = Instant::now();
    while let Some(pending) = state.waiting.pop_front() {
        if pending.reply.is_closed() {
            continue;
        }
        if pending.deadline <= now {
            let _ = pending.reply.send(Err(StoreError::PoolExhausted {
                waited_ms: u64::try_from(limits.wait.as_millis()).unwrap_or(u64::MAX),
            }));
            continue;
        }
        let fits = group.is_empty()
            || (group.len() < limits.streams && events + pending.events.len() <= limits.events);
        if fits && !state.in_flight.contains(&pending.stream) {
            events += pending.events.len();
            state.in_flight.insert(pending.stream.clone());
            group.push(pending);
        } else {
            kept.push_back(pending);
        }
    }
    state.waiting = kept;
    if !group.is_empty() {
        state.groups += 1;
    }
    group
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{GroupLimits, Pending, Queue, State, take_group};
    use nexus_core::{ExpectedVersion, NewEvent, StreamId};
    use tokio::sync::oneshot;

    const LIMITS: GroupLimits = GroupLimits {
        streams: 3,
        events: 10,
        wait: Duration::from_secs(1),
        eager: 8,
        patience: Duration::from_millis(2),
    };

    fn pending(stream: &str, events: usize) -> (Pending, oneshot::Receiver<super::Outcome>) {
        let (reply, receiver) = oneshot::channel();
        let events = (0..events)
            .map(|_| NewEvent::new("test.happened", 1, b"{}".to_vec()))
            .collect();
        let pending = Pending {
            stream: StreamId::new(stream),
            expected: ExpectedVersion::Any,
            expected_column: None,
            events,
            fence: None,
            queued: Instant::now(),
            deadline: Instant::now() + Duration::from_secs(60),
            reply,
        };
        (pending, receiver)
    }

    fn streams(group: &[Pending]) -> Vec<&str> {
        group.iter().map(|p| p.stream.as_str()).collect()
    }

    #[test]
    fn a_group_holds_one_append_per_stream_and_leaves_the_rest_in_order() {
        let mut state = State::default();
        let mut receivers = Vec::new();
        for stream in ["a-1", "b-1", "a-1", "c-1", "d-1"] {
            let (p, r) = pending(stream, 1);
            state.waiting.push_back(p);
            receivers.push(r);
        }
        let group = take_group(&mut state, LIMITS);
        assert_eq!(streams(&group), ["a-1", "b-1", "c-1"]);
        let left: Vec<&str> = state.waiting.iter().map(|p| p.stream.as_str()).collect();
        assert_eq!(left, ["a-1", "d-1"]);
        // a-1 is in flight: the next group skips its second append.
        let next = take_group(&mut state, LIMITS);
        assert_eq!(streams(&next), ["d-1"]);
        assert_eq!(state.waiting.len(), 1);
    }

    #[test]
    fn the_event_limit_bounds_a_group_but_never_starves_a_large_append() {
        let mut state = State::default();
        let mut receivers = Vec::new();
        for (stream, events) in [("a-1", 25), ("b-1", 6), ("c-1", 5), ("d-1", 4)] {
            let (p, r) = pending(stream, events);
            state.waiting.push_back(p);
            receivers.push(r);
        }
        assert_eq!(streams(&take_group(&mut state, LIMITS)), ["a-1"]);
        assert_eq!(streams(&take_group(&mut state, LIMITS)), ["b-1", "d-1"]);
        assert_eq!(streams(&take_group(&mut state, LIMITS)), ["c-1"]);
    }

    #[test]
    fn an_append_whose_caller_is_gone_is_dropped_unsent() {
        let mut state = State::default();
        let (gone, receiver) = pending("a-1", 1);
        drop(receiver);
        let (kept, _receiver) = pending("b-1", 1);
        state.waiting.extend([gone, kept]);
        assert_eq!(streams(&take_group(&mut state, LIMITS)), ["b-1"]);
        assert!(state.waiting.is_empty());
    }

    #[test]
    fn an_append_past_its_deadline_is_answered_pool_exhausted_unsent() {
        let mut state = State::default();
        let (mut late, mut receiver) = pending("a-1", 1);
        late.deadline = Instant::now();
        let (kept, _receiver) = pending("b-1", 1);
        state.waiting.extend([late, kept]);
        assert_eq!(streams(&take_group(&mut state, LIMITS)), ["b-1"]);
        match receiver.try_recv() {
            Ok(Err(nexus_core::StoreError::PoolExhausted { waited_ms: 1_000 })) => {}
            other => panic!("a late append is told the pool was exhausted, got {other:?}"),
        }
    }

    /// One eager group; a patience long enough that only a finish could
    /// have woken a held-back worker well before it.
    const ONE_EAGER: GroupLimits = GroupLimits {
        eager: 1,
        patience: Duration::from_secs(2),
        ..LIMITS
    };

    type Worker = tokio::task::JoinHandle<Option<Vec<Pending>>>;
    type Receivers = Vec<oneshot::Receiver<super::Outcome>>;

    /// One group in flight (a-1) under [`ONE_EAGER`], `idle` workers waiting
    /// for groups, then b-1 and c-1 pushed 20 ms apart: both held back.
    async fn two_held_back(
        queue: &std::sync::Arc<Queue>,
        idle: usize,
    ) -> (Vec<Pending>, Vec<Worker>, Receivers) {
        let (first, r1) = pending("a-1", 1);
        assert!(queue.push(first, ONE_EAGER).is_ok());
        let first = queue
            .next_group(ONE_EAGER)
            .await
            .expect("the first at once");
        let workers: Vec<Worker> = (0..idle)
            .map(|_| {
                let queue = std::sync::Arc::clone(queue);
                tokio::spawn(async move { queue.next_group(ONE_EAGER).await })
            })
            .collect();
        let mut receivers = vec![r1];
        for stream in ["b-1", "c-1"] {
            let (p, r) = pending(stream, 1);
            assert!(queue.push(p, ONE_EAGER).is_ok());
            receivers.push(r);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (first, workers, receivers)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_eager_groups_appends_wait_for_one_to_finish_and_join_one_group() {
        let queue = std::sync::Arc::new(Queue::default());
        let (first, workers, _receivers) = two_held_back(&queue, 2).await;
        assert!(workers.iter().all(|w| !w.is_finished()), "held back");
        assert_eq!(queue.lock().watchers, 1, "one worker times the patience");

        let finished = Instant::now();
        queue.finish(first.iter().map(|p| &p.stream));
        let mut workers = workers.into_iter();
        let (mut a, mut b) = (workers.next().unwrap(), workers.next().unwrap());
        let (taken, idle) = tokio::select! {
            taken = &mut a => (taken, b),
            taken = &mut b => (taken, a),
        };
        let group = taken.unwrap().expect("a group");
        assert!(
            finished.elapsed() < Duration::from_secs(1),
            "woken by the finish"
        );
        assert_eq!(
            streams(&group),
            ["b-1", "c-1"],
            "the waiting appends in one group"
        );
        // The other worker still waits, and ends with the queue.
        queue.finish(group.iter().map(|p| &p.stream));
        queue.close();
        let ended = tokio::time::timeout(Duration::from_secs(5), idle).await;
        assert!(ended.expect("the idle worker ends").unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_worker_that_finishes_takes_the_held_appends_and_wakes_nobody() {
        let queue = std::sync::Arc::new(Queue::default());
        let (first, workers, _receivers) = two_held_back(&queue, 1).await;
        let idle = workers.into_iter().next().unwrap();
        let next = queue
            .finish_and_take(first.iter().map(|p| &p.stream), ONE_EAGER)
            .expect("the finisher's next group");
        assert_eq!(streams(&next), ["b-1", "c-1"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!idle.is_finished(), "nothing left for the idle worker");
        queue.finish(next.iter().map(|p| &p.stream));
        queue.close();
        let ended = tokio::time::timeout(Duration::from_secs(5), idle).await;
        let ended = ended.expect("the idle worker ends with the queue");
        assert!(ended.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_statement_that_does_not_finish_holds_an_append_back_only_its_patience() {
        let limits = GroupLimits {
            patience: Duration::from_millis(200),
            ..ONE_EAGER
        };
        let queue = Queue::default();
        let (first, _r1) = pending("a-1", 1);
        assert!(queue.push(first, limits).is_ok());
        let _stuck = queue.next_group(limits).await.expect("the first at once");
        let (second, _r2) = pending("b-1", 1);
        let queued = second.queued;
        assert!(queue.push(second, limits).is_ok());
        // A worker that comes late waits out what is left of the patience,
        // counted from the append's arrival, not from its own.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let called = Instant::now();
        let next = tokio::time::timeout(Duration::from_secs(5), queue.next_group(limits))
            .await
            .expect("taken after the patience")
            .expect("a group");
        assert_eq!(streams(&next), ["b-1"]);
        assert!(queued.elapsed() >= Duration::from_millis(200));
        assert!(
            called.elapsed() < Duration::from_millis(150),
            "{:?}",
            called.elapsed()
        );
        assert_eq!(queue.lock().watchers, 0, "nobody holds appends back now");
    }

    #[tokio::test]
    async fn a_finished_group_frees_its_streams_and_a_closed_queue_ends_the_workers() {
        let queue = Queue::default();
        let (first, _r1) = pending("a-1", 1);
        let (second, _r2) = pending("a-1", 1);
        assert!(queue.push(first, LIMITS).is_ok());
        assert!(queue.push(second, LIMITS).is_ok());
        let group = queue.next_group(LIMITS).await.expect("a group");
        assert_eq!(streams(&group), ["a-1"]);
        queue.finish(group.iter().map(|p| &p.stream));
        let group = queue.next_group(LIMITS).await.expect("the second append");
        assert_eq!(streams(&group), ["a-1"]);
        queue.close();
        assert!(queue.next_group(LIMITS).await.is_none());
        let (late, _r3) = pending("b-1", 1);
        assert!(queue.push(late, LIMITS).is_err());
    }
}
