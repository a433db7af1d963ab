//! The registry of live entities: one actor per id.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use super::builder::Settings;
use super::message::Envelope;
use super::runner;
use crate::actor::mailbox::Mailbox;
use crate::actor::system::{Closeable, SystemShared};
use crate::{Aggregate, ConfigError, StreamId};

/// Independent locks, so that `of()` on different ids rarely contends.
const SHARDS: usize = 16;

/// An entity's id and the stream it persists to.
#[derive(Debug)]
pub(crate) struct EntityKey {
    pub(crate) id: String,
    pub(crate) stream: StreamId,
}

/// One live entity: its mailbox, shared by every incarnation of the actor.
pub(crate) struct Cell<A: Aggregate> {
    pub(crate) key: Arc<EntityKey>,
    pub(crate) mailbox: Mailbox<Envelope<A>>,
}

type Shard<A> = Mutex<HashMap<String, Arc<Cell<A>>>>;

/// Every live entity of one aggregate type.
pub(crate) struct Registry<A: Aggregate> {
    // Invariant (single writer): a cell is in its shard from before its
    // actor task starts until the task has stopped processing for good, and
    // there is one task per cell. A cell's mailbox is closed only under its
    // shard lock, in the same critical section that removes the cell from
    // the shard, or after `closed` was set by a shutdown. So `resolve` never
    // creates a second cell while one is live, and never hands out a closed
    // mailbox while the registry is open.
    shards: Box<[Shard<A>]>,
    closed: AtomicBool,
    pub(crate) settings: Settings<A>,
    pub(crate) system: Arc<SystemShared>,
    spawned: AtomicU64,
}

impl<A: Aggregate> Registry<A> {
    /// The registry of aggregate `A` in `system`, unless the system already
    /// serves one of that name.
    pub(crate) fn new(
        settings: Settings<A>,
        system: &Arc<SystemShared>,
    ) -> Result<Arc<Self>, ConfigError> {
        let registry = Arc::new(Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            closed: AtomicBool::new(false),
            settings,
            system: Arc::clone(system),
            spawned: AtomicU64::new(0),
        });
        let weak: Weak<dyn Closeable> = Arc::downgrade(&registry) as Weak<Self>;
        if !system.claim(A::NAME, weak.clone()) {
            return Err(ConfigError::AlreadyServed { aggregate: A::NAME });
        }
        if !system.register(weak) {
            registry.closed.store(true, Ordering::Release);
        }
        Ok(registry)
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, HashMap<String, Arc<Cell<A>>>> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        let index = usize::try_from(hash % SHARDS as u64).unwrap_or_default();
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The live cell of `key`, spawning its actor if there is none. `None`
    /// when the system is shutting down.
    pub(crate) fn resolve(self: &Arc<Self>, key: &Arc<EntityKey>) -> Option<Arc<Cell<A>>> {
        let cell = {
            let mut shard = self.shard(&key.id);
            // Read under the shard lock that `close` takes after setting it.
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            if let Some(cell) = shard.get(&key.id) {
                return Some(Arc::clone(cell));
            }
            let cell = Arc::new(Cell {
                key: Arc::clone(key),
                mailbox: Mailbox::new(self.settings.mailbox_capacity),
            });
            // Registered before the actor exists, let alone recovers.
            shard.insert(key.id.clone(), Arc::clone(&cell));
            cell
        };
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.system
            .spawn(runner::run(Arc::clone(self), Arc::clone(&cell)));
        Some(cell)
    }

    /// Closes and removes `cell` if its mailbox is empty. Returns whether it
    /// did; otherwise messages arrived and the actor must go on.
    pub(crate) fn retire_if_empty(&self, cell: &Arc<Cell<A>>) -> bool {
        let mut shard = self.shard(&cell.key.id);
        if !cell.mailbox.close_if_empty() {
            return false;
        }
        remove(&mut shard, cell);
        true
    }

    /// Closes and removes `cell`, returning what was still queued.
    pub(crate) fn retire(&self, cell: &Arc<Cell<A>>) -> Vec<Envelope<A>> {
        let mut shard = self.shard(&cell.key.id);
        let left = cell.mailbox.close_and_drain();
        remove(&mut shard, cell);
        left
    }

    /// How many entities are live.
    pub(crate) fn live(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether `id` has a live entity.
    pub(crate) fn is_live(&self, id: &str) -> bool {
        self.shard(id).contains_key(id)
    }

    /// How many actors were spawned so far (incarnations in new cells).
    pub(crate) fn spawned(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed)
    }

    /// Whether the registry stopped accepting (the system shuts down).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

fn remove<A: Aggregate>(shard: &mut HashMap<String, Arc<Cell<A>>>, cell: &Arc<Cell<A>>) {
    if shard
        .get(&cell.key.id)
        .is_some_and(|live| Arc::ptr_eq(live, cell))
    {
        shard.remove(&cell.key.id);
    }
}

impl<A: Aggregate> Closeable for Registry<A> {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for shard in &*self.shards {
            for cell in shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
            {
                cell.mailbox.close();
            }
        }
    }
}
