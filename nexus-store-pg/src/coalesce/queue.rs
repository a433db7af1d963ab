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
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Pending>,
    in_flight: HashSet<StreamId>,
    closed: bool,
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
    pub(crate) fn push(&self, pending: Pending) -> Result<(), Box<Pending>> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(Box::new(pending));
            }
            state.waiting.push_back(pending);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Whether no append waits.
    pub(crate) fn is_idle(&self) -> bool {
        self.lock().waiting.is_empty()
    }

    /// The next group to write if one waits now.
    pub(crate) fn try_group(&self, limits: GroupLimits) -> Option<Vec<Pending>> {
        let group = take_group(&mut self.lock(), limits);
        (!group.is_empty()).then_some(group)
    }

    /// The next group to write, waiting for one; `None` once the store is
    /// dropped and nothing waits.
    pub(crate) async fn next_group(&self, limits: GroupLimits) -> Option<Vec<Pending>> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Registered before looking, so a push between the look and the
            // wait still wakes this worker.
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                let group = take_group(&mut state, limits);
                if !group.is_empty() {
                    let more = state
                        .waiting
                        .iter()
                        .any(|p| !state.in_flight.contains(&p.stream));
                    drop(state);
                    if more {
                        // Another idle worker can take what is left.
                        self.ready.notify_one();
                    }
                    return Some(group);
                }
                if state.closed && state.waiting.is_empty() {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks the streams of a finished group free again.
    pub(crate) fn finish<'a>(&self, streams: impl IntoIterator<Item = &'a StreamId>) {
        let waiting = {
            let mut state = self.lock();
            for stream in streams {
                state.in_flight.remove(stream);
            }
            !state.waiting.is_empty()
        };
        if waiting {
            self.ready.notify_one();
        }
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

    #[tokio::test]
    async fn a_finished_group_frees_its_streams_and_a_closed_queue_ends_the_workers() {
        let queue = Queue::default();
        let (first, _r1) = pending("a-1", 1);
        let (second, _r2) = pending("a-1", 1);
        assert!(queue.push(first).is_ok());
        assert!(queue.push(second).is_ok());
        let group = queue.next_group(LIMITS).await.expect("a group");
        assert_eq!(streams(&group), ["a-1"]);
        queue.finish(group.iter().map(|p| &p.stream));
        let group = queue.next_group(LIMITS).await.expect("the second append");
        assert_eq!(streams(&group), ["a-1"]);
        queue.close();
        assert!(queue.next_group(LIMITS).await.is_none());
        let (late, _r3) = pending("b-1", 1);
        assert!(queue.push(late).is_err());
    }
}
