//! The bounded FIFO mailbox of one actor.
//!
//! Guarantees: messages are received in the order they were accepted; at
//! most `capacity` messages wait at a time; a message is either accepted (and
//! then received exactly once, or still in the queue when the owner drains
//! it) or handed back to its sender with the reason. Closing is atomic with
//! sending: no send is accepted after a close returned.
//!
//! An entity's mailbox ([`Mailbox::giving_room_in_runs`]) gives room back
//! to waiting senders in runs: while a sender waits for room and no room is
//! free, the receiver keeps the room its pops free until half the mailbox
//! is (rounded down: a mailbox of 3 or fewer never keeps any), then gives
//! it all at once; it also gives it when the queue empties, and when the
//! last waiter stops waiting. Giving it back one message at a time woke the
//! waiting sender (another thread, a system call) once per batch the entity
//! took; a mailbox kept full by a fast sender now wakes it once per half
//! mailbox. Waiting senders are still given room in the order they began
//! waiting (tokio's semaphore is fair). Room is kept only while none is
//! free, so a sender that may not wait could be refused with up to half
//! the mailbox free; but every send to one entity follows its registry's
//! one `WhenFull`, and under [`WhenFull::Fail`] no sender waits, so no room
//! is ever kept. Only a receiver that never waits on its own senders
//! between two pops may keep room (an entity: its handlers are
//! synchronous); a plain actor's handler may, so its mailbox
//! ([`Mailbox::new`]) gives room back at every pop.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, Semaphore, TryAcquireError};

/// What a send does when the mailbox is full.
///
/// ```
/// use nexus_core::WhenFull;
/// assert_eq!(WhenFull::default(), WhenFull::Wait);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (bounded by the ask timeout for `ask`). Waiting
    /// senders are given room in the order they began waiting. An entity's
    /// mailbox gives it in runs, once half of it is free (or it empties),
    /// so a sender kept waiting by a busy entity is woken once per run, not
    /// once per batch the entity takes.
    #[default]
    Wait,
    /// Give the message back at once with a mailbox-full error.
    Fail,
}

/// Why a mailbox refused a message; the message comes back.
#[derive(Debug)]
pub(crate) enum Refused<M> {
    /// The mailbox holds `capacity` messages and the policy is to fail.
    Full(M),
    /// The mailbox is closed; the owner stopped or the system shuts down.
    Closed(M),
}

/// A bounded FIFO queue with one receiver.
#[derive(Debug)]
pub(crate) struct Mailbox<M> {
    // Invariant: `queue.len() + queue.held + space.available_permits()`
    // is at most the capacity (the rest are permits given to senders that
    // are about to push or give up, or lost with drained messages of a
    // closed mailbox). A sender takes a permit before pushing, the receiver
    // returns one per pop (or keeps it while a sender waits, see the module
    // docs), so the queue never exceeds the capacity. `held` is only kept
    // while `waiting > 0` and the queue is not empty, or once the mailbox
    // is closed: the last waiter to stop waiting, or the pop that empties
    // the queue, gives it back. `closed` is only set under this lock, and
    // senders check it under the same lock they push with: that is what
    // makes close atomic with send.
    queue: Mutex<Queue<M>>,
    space: Semaphore,
    ready: Notify,
    /// The room kept back before it is given to waiting senders at once;
    /// 0 gives room back at every pop.
    release_at: usize,
}

#[derive(Debug)]
struct Queue<M> {
    messages: VecDeque<M>,
    closed: bool,
    /// Senders waiting for room.
    waiting: usize,
    /// Room freed by pops and not given back yet.
    held: usize,
}

impl<M> Mailbox<M> {
    /// An open mailbox for at most `capacity` (at least 1) messages that
    /// gives room back at every pop.
    pub(crate) fn new(capacity: usize) -> Self {
        Self::keeping(capacity, 0)
    }

    /// [`new`](Self::new) giving room back to waiting senders in runs of
    /// half the mailbox (see the module docs): for a receiver that never
    /// waits on its own senders between two pops.
    pub(crate) fn giving_room_in_runs(capacity: usize) -> Self {
        Self::keeping(capacity, capacity / 2)
    }

    fn keeping(capacity: usize, release_at: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            queue: Mutex::new(Queue {
                messages: VecDeque::new(),
                closed: false,
                waiting: 0,
                held: 0,
            }),
            space: Semaphore::new(capacity),
            ready: Notify::new(),
            release_at,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<M>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enqueues `message`, waiting for room or failing at once per `when_full`.
    pub(crate) async fn send(&self, message: M, when_full: WhenFull) -> Result<(), Refused<M>> {
        let permit = match when_full {
            WhenFull::Wait => match self.space.try_acquire() {
                Ok(permit) => permit,
                Err(TryAcquireError::Closed) => return Err(Refused::Closed(message)),
                Err(TryAcquireError::NoPermits) => {
                    let _waiting = Waiting::new(self);
                    match self.space.acquire().await {
                        Ok(permit) => permit,
                        Err(_) => return Err(Refused::Closed(message)),
                    }
                }
            },
            WhenFull::Fail => match self.space.try_acquire() {
                Ok(permit) => permit,
                Err(TryAcquireError::NoPermits) => return Err(Refused::Full(message)),
                Err(TryAcquireError::Closed) => return Err(Refused::Closed(message)),
            },
        };
        {
            let mut queue = self.lock();
            if queue.closed {
                return Err(Refused::Closed(message));
            }
            // The permit now belongs to the queued message; `pop` gives it back.
            permit.forget();
            queue.messages.push_back(message);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Takes the oldest message without waiting.
    pub(crate) fn try_pop(&self) -> Option<M> {
        let mut queue = self.lock();
        let message = queue.messages.pop_front()?;
        let freed = self.room_to_give(&mut queue);
        drop(queue);
        self.space.add_permits(freed);
        Some(message)
    }

    /// After a pop: the room to give back now, the rest held back for
    /// waiting senders (see the module docs).
    fn room_to_give(&self, queue: &mut Queue<M>) -> usize {
        queue.held += 1;
        // Free room means no waiter is owed any (room given back goes to
        // waiters first): a waiter counted here has been given room and not
        // run yet, and keeping more would refuse a sender that may not wait.
        let keep = queue.waiting > 0
            && queue.held < self.release_at
            && !queue.messages.is_empty()
            && self.space.available_permits() == 0;
        if keep {
            return 0;
        }
        std::mem::take(&mut queue.held)
    }

    /// Waits for the next message; `None` once the mailbox is closed and
    /// empty.
    pub(crate) async fn recv(&self) -> Option<M> {
        loop {
            let notified = self.ready.notified();
            {
                let mut queue = self.lock();
                if let Some(message) = queue.messages.pop_front() {
                    let freed = self.room_to_give(&mut queue);
                    drop(queue);
                    self.space.add_permits(freed);
                    return Some(message);
                }
                if queue.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Closes the mailbox if it holds no message. Returns whether it is
    /// now closed and empty (false when messages wait, even if a shutdown
    /// closed it already: they must still be processed).
    pub(crate) fn close_if_empty(&self) -> bool {
        let mut queue = self.lock();
        if !queue.messages.is_empty() {
            return false;
        }
        self.close_locked(&mut queue);
        true
    }

    /// Closes the mailbox; queued messages stay to be received or drained.
    pub(crate) fn close(&self) {
        let mut queue = self.lock();
        self.close_locked(&mut queue);
    }

    fn close_locked(&self, queue: &mut Queue<M>) {
        queue.closed = true;
        // Wakes senders waiting for room, which then get their message back,
        // and the receiver, which then sees the end of the queue.
        self.space.close();
        self.ready.notify_one();
    }

    /// How many messages wait now.
    pub(crate) fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Whether the mailbox was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the mailbox and takes every queued message.
    pub(crate) fn close_and_drain(&self) -> Vec<M> {
        let mut queue = self.lock();
        self.close_locked(&mut queue);
        queue.messages.drain(..).collect()
    }
}

/// A sender waiting for room, counted while it waits; the last one to stop
/// waiting (with room, or given up) gives back the room kept for waiters.
struct Waiting<'m, M> {
    mailbox: &'m Mailbox<M>,
}

impl<'m, M> Waiting<'m, M> {
    fn new(mailbox: &'m Mailbox<M>) -> Self {
        mailbox.lock().waiting += 1;
        Self { mailbox }
    }
}

impl<M> Drop for Waiting<'_, M> {
    fn drop(&mut self) {
        let mut queue = self.mailbox.lock();
        queue.waiting -= 1;
        let freed = if queue.waiting == 0 {
            std::mem::take(&mut queue.held)
        } else {
            0
        };
        drop(queue);
        self.mailbox.space.add_permits(freed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_bounded_and_closing_gives_messages_back() {
        let mailbox = Mailbox::new(2);
        mailbox.send(1, WhenFull::Fail).await.unwrap();
        mailbox.send(2, WhenFull::Fail).await.unwrap();
        assert!(matches!(
            mailbox.send(3, WhenFull::Fail).await,
            Err(Refused::Full(3))
        ));
        assert_eq!(mailbox.recv().await, Some(1));
        mailbox.send(3, WhenFull::Fail).await.unwrap();
        assert!(!mailbox.close_if_empty());
        assert_eq!(mailbox.close_and_drain(), vec![2, 3]);
        assert!(matches!(
            mailbox.send(4, WhenFull::Wait).await,
            Err(Refused::Closed(4))
        ));
        assert_eq!(mailbox.recv().await, None);
    }

    /// Lets spawned tasks of a current-thread runtime run.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    type Shared = std::sync::Arc<Mailbox<i32>>;

    /// A full mailbox of `capacity` holding 0..capacity, and a sender
    /// waiting (once the test settles) to send `capacity` into it.
    async fn full_with_a_waiter(
        capacity: usize,
    ) -> (Shared, tokio::task::JoinHandle<Result<(), Refused<i32>>>) {
        let mailbox = std::sync::Arc::new(Mailbox::giving_room_in_runs(capacity));
        let count = i32::try_from(capacity).unwrap();
        for n in 0..count {
            mailbox.send(n, WhenFull::Fail).await.unwrap();
        }
        let waiting = {
            let mailbox = std::sync::Arc::clone(&mailbox);
            tokio::spawn(async move { mailbox.send(count, WhenFull::Wait).await })
        };
        settle().await;
        (mailbox, waiting)
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_room_at_half_the_mailbox_or_when_it_empties() {
        let (mailbox, waiting) = full_with_a_waiter(8).await;
        for n in 0..3 {
            assert_eq!(mailbox.try_pop(), Some(n));
            settle().await;
            assert!(
                !waiting.is_finished(),
                "room is held while less than half is free"
            );
            assert!(
                matches!(
                    mailbox.send(99, WhenFull::Fail).await,
                    Err(Refused::Full(99))
                ),
                "a sender that may not wait takes no room a waiting one is owed"
            );
        }
        assert_eq!(mailbox.recv().await, Some(3));
        settle().await;
        assert!(
            waiting.is_finished(),
            "half the mailbox is free: room is given"
        );
        waiting.await.unwrap().unwrap();
        // Nobody waits: room comes back with each pop, up to the capacity.
        assert_eq!(mailbox.try_pop(), Some(4));
        for n in 9..13 {
            mailbox.send(n, WhenFull::Fail).await.unwrap();
        }
        assert!(matches!(
            mailbox.send(13, WhenFull::Fail).await,
            Err(Refused::Full(13))
        ));
    }

    #[tokio::test]
    async fn room_kept_for_waiters_is_given_when_the_queue_empties() {
        // Nine waiters on a full mailbox of 9: room comes back at pops 4
        // and 8 (half the mailbox), while the last waiter still waits with
        // no room free; the ninth pop empties the queue and gives it the
        // room it freed, short of half.
        let mailbox = std::sync::Arc::new(Mailbox::giving_room_in_runs(9));
        for n in 0..9 {
            mailbox.send(n, WhenFull::Fail).await.unwrap();
        }
        let waiters: Vec<_> = (0..9)
            .map(|n| {
                let mailbox = std::sync::Arc::clone(&mailbox);
                tokio::spawn(async move { mailbox.send(100 + n, WhenFull::Wait).await })
            })
            .collect();
        settle().await;
        let drained: Vec<_> = std::iter::from_fn(|| mailbox.try_pop()).collect();
        assert_eq!(drained, (0..9).collect::<Vec<_>>());
        settle().await;
        assert!(waiters.iter().all(tokio::task::JoinHandle::is_finished));
        assert_eq!(mailbox.len(), 9);
    }

    #[tokio::test]
    async fn room_given_to_a_waiter_that_has_not_run_keeps_no_more_from_a_sender_that_may_not_wait()
    {
        let (mailbox, waiting) = full_with_a_waiter(4).await;
        assert_eq!(mailbox.try_pop(), Some(0));
        // Half the mailbox: one permit for the waiter (not run yet), one
        // free; the next pop finds room free and keeps none.
        assert_eq!(mailbox.try_pop(), Some(1));
        assert_eq!(mailbox.try_pop(), Some(2));
        mailbox.send(10, WhenFull::Fail).await.unwrap();
        mailbox.send(11, WhenFull::Fail).await.unwrap();
        assert!(matches!(
            mailbox.send(12, WhenFull::Fail).await,
            Err(Refused::Full(12))
        ));
        waiting.await.unwrap().unwrap();
        assert_eq!(mailbox.len(), 4);
    }

    #[tokio::test]
    async fn a_plain_actors_mailbox_gives_room_back_at_every_pop() {
        // Its handler may wait on one of its own senders: room kept for a
        // waiter could never come back.
        let mailbox = std::sync::Arc::new(Mailbox::new(8));
        for n in 0..8 {
            mailbox.send(n, WhenFull::Fail).await.unwrap();
        }
        let waiting = {
            let mailbox = std::sync::Arc::clone(&mailbox);
            tokio::spawn(async move { mailbox.send(8, WhenFull::Wait).await })
        };
        settle().await;
        assert_eq!(mailbox.try_pop(), Some(0));
        settle().await;
        assert!(waiting.is_finished());
    }

    #[tokio::test]
    async fn room_held_for_a_sender_that_gives_up_comes_back() {
        let (mailbox, waiting) = full_with_a_waiter(4).await;
        assert_eq!(mailbox.try_pop(), Some(0));
        settle().await;
        assert!(!waiting.is_finished());
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        mailbox.send(5, WhenFull::Fail).await.unwrap();
        assert!(matches!(
            mailbox.send(6, WhenFull::Fail).await,
            Err(Refused::Full(6))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_waiting_senders_lose_nothing_and_keep_their_order_within_capacity() {
        const SENDERS: usize = 8;
        const EACH: usize = 2_000;
        const CAPACITY: usize = 16;
        let mailbox = std::sync::Arc::new(Mailbox::giving_room_in_runs(CAPACITY));
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let mailbox = std::sync::Arc::clone(&mailbox);
                tokio::spawn(async move {
                    for n in 0..EACH {
                        mailbox.send((sender, n), WhenFull::Wait).await.unwrap();
                        if fastrand::u8(..) < 16 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let receive = async {
            let mut next = [0usize; SENDERS];
            for _ in 0..SENDERS * EACH {
                assert!(mailbox.len() <= CAPACITY);
                let (sender, n) = if fastrand::bool() {
                    mailbox.recv().await.unwrap()
                } else {
                    loop {
                        match mailbox.try_pop() {
                            Some(message) => break message,
                            None => tokio::task::yield_now().await,
                        }
                    }
                };
                assert_eq!(n, next[sender], "sender {sender}'s messages in order");
                next[sender] += 1;
                if fastrand::u8(..) < 8 {
                    tokio::task::yield_now().await;
                }
            }
            next
        };
        let next = tokio::time::timeout(std::time::Duration::from_secs(60), receive)
            .await
            .expect("every message arrives within the bound");
        assert!(next.iter().all(|&count| count == EACH));
        for sender in senders {
            sender.await.unwrap();
        }
        assert_eq!(mailbox.try_pop(), None);
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_its_message_back_on_close() {
        let mailbox = std::sync::Arc::new(Mailbox::new(1));
        mailbox.send(1, WhenFull::Wait).await.unwrap();
        let waiting = {
            let mailbox = std::sync::Arc::clone(&mailbox);
            tokio::spawn(async move { mailbox.send(2, WhenFull::Wait).await })
        };
        tokio::task::yield_now().await;
        mailbox.close();
        assert!(matches!(waiting.await.unwrap(), Err(Refused::Closed(2))));
        assert_eq!(mailbox.recv().await, Some(1));
        assert_eq!(mailbox.recv().await, None);
    }
}
