//! The cell a held [`EntityRef`](super::EntityRef) and its clones remember, so that a
//! send to a live entity skips the registry (a shard lock and a hash of
//! the id).
//!
//! Guarantee: a remembered cell is used only while its mailbox accepts.
//! The registry closes a cell's mailbox in the same critical section that
//! removes the cell (passivation, stop), or when the system shuts down; so
//! a send that the remembered mailbox accepts reached the live cell, as a
//! send right after a registry lookup would, and a send it refuses as
//! closed forgets the cell and resolves the id again, which starts the next
//! incarnation or reports the shutdown.

use std::sync::{Arc, Mutex, PoisonError};

use super::registry::Cell;
use crate::Aggregate;

/// The last cell a ref delivered to, if any.
pub(crate) struct HeldCell<A: Aggregate>(Mutex<Option<Arc<Cell<A>>>>);

impl<A: Aggregate> HeldCell<A> {
    /// Nothing remembered yet: the first send resolves the id.
    pub(crate) fn empty() -> Self {
        Self(Mutex::new(None))
    }

    /// The remembered cell.
    pub(crate) fn get(&self) -> Option<Arc<Cell<A>>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Remembers `cell`, which the registry just resolved.
    pub(crate) fn set(&self, cell: &Arc<Cell<A>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(cell));
    }

    /// Forgets `cell`, whose mailbox closed, unless another send already
    /// remembered a newer one.
    pub(crate) fn forget(&self, cell: &Arc<Cell<A>>) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|held| Arc::ptr_eq(held, cell)) {
            *held = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::codec::{EventCodec, Json};
    use crate::store::memory::InMemoryEventStore;
    use crate::testkit::doc::{Add, Counter, Get};
    use crate::{ActorSystem, Entities};

    #[tokio::test]
    async fn a_held_ref_keeps_its_cell_until_the_entity_stops_then_reaches_the_next() {
        let system = ActorSystem::new();
        let counters = Entities::<Counter>::builder(&system)
            .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
            .build()
            .unwrap();
        let counter = counters.of("c1");
        counter.ask(Add(1)).await.unwrap();
        let first = counter
            .held
            .get()
            .expect("the first send remembers the cell");
        counter.ask(Add(1)).await.unwrap();
        let same = counter.held.get().unwrap();
        assert!(
            Arc::ptr_eq(&first, &same),
            "a live entity is reached directly"
        );
        // Clones share what any of them reached.
        let clone = counter.clone();
        assert!(Arc::ptr_eq(&clone.held.get().unwrap(), &first));

        counter.stop().await.unwrap();
        while counters.is_live("c1") {
            tokio::task::yield_now().await;
        }
        assert!(first.mailbox.is_closed());
        // The stopped cell is forgotten; the next incarnation recovers.
        assert_eq!(counter.ask(Get).await.unwrap(), 2);
        let next = counter.held.get().unwrap();
        assert!(!Arc::ptr_eq(&first, &next), "the next incarnation's cell");
        assert!(!next.mailbox.is_closed());
        assert!(
            Arc::ptr_eq(&clone.held.get().unwrap(), &next),
            "a clone reaches the cell the original's send found"
        );
        system.shutdown(std::time::Duration::from_secs(1)).await;
    }
}
