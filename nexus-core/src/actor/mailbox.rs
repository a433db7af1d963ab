//! The bounded FIFO mailbox of one actor.
//!
//! Guarantees: messages are received in the order they were accepted; at
//! most `capacity` messages wait at a time; a message is either accepted (and
//! then received exactly once, or still in the queue when the owner drains
//! it) or handed back to its sender with the reason. Closing is atomic with
//! sending: no send is accepted after a close returned.

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
    /// Wait for room (bounded by the ask timeout for `ask`).
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
    // Invariant: `queue.len() + space.available_permits()` equals the
    // capacity, minus permits taken by senders that are about to push or
    // give up. A sender takes a permit before pushing, the receiver returns
    // one per pop, so the queue never exceeds the capacity. `closed` is
    // only set under this lock, and senders check it under the same lock
    // they push with: that is what makes close atomic with send.
    queue: Mutex<Queue<M>>,
    space: Semaphore,
    ready: Notify,
}

#[derive(Debug)]
struct Queue<M> {
    messages: VecDeque<M>,
    closed: bool,
}

impl<M> Mailbox<M> {
    /// An open mailbox for at most `capacity` (at least 1) messages.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            queue: Mutex::new(Queue {
                messages: VecDeque::new(),
                closed: false,
            }),
            space: Semaphore::new(capacity),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<M>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enqueues `message`, waiting for room or failing at once per `when_full`.
    pub(crate) async fn send(&self, message: M, when_full: WhenFull) -> Result<(), Refused<M>> {
        let permit = match when_full {
            WhenFull::Wait => match self.space.acquire().await {
                Ok(permit) => permit,
                Err(_) => return Err(Refused::Closed(message)),
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
        let message = self.lock().messages.pop_front();
        if message.is_some() {
            self.space.add_permits(1);
        }
        message
    }

    /// Waits for the next message; `None` once the mailbox is closed and
    /// empty.
    pub(crate) async fn recv(&self) -> Option<M> {
        loop {
            let notified = self.ready.notified();
            {
                let mut queue = self.lock();
                if let Some(message) = queue.messages.pop_front() {
                    drop(queue);
                    self.space.add_permits(1);
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
