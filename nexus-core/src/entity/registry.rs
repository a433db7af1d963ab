//! The registry of live entities: one actor per id, and at most
//! `max_active` of them.
//!
//! An entity exists only once a message was sent to it. When the limit is
//! reached, the least recently active idle entities are asked to passivate
//! (approximately: a batch of the oldest idle ones, found in one scan), and
//! a new entity waits for their room; nothing queued is lost, since a
//! passivating entity hands its mailbox to the next incarnation.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use tokio::sync::Notify;

use super::builder::Settings;
use super::message::Envelope;
use super::runner;
use crate::actor::deadlines::Deadlines;
use crate::actor::mailbox::Mailbox;
use crate::actor::system::{Closeable, SystemShared};
use crate::telemetry::EntityMetrics;
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
    /// Whether the actor waits for its mailbox (set by the actor).
    idle: AtomicBool,
    /// Milliseconds after the registry's origin of the last batch taken.
    last_active: AtomicU64,
    /// Wakes an idle actor that should passivate to make room.
    pub(crate) evict: Notify,
}

impl<A: Aggregate> Cell<A> {
    /// The actor starts a batch (`false`) or waits for one (`true`).
    pub(crate) fn set_idle(&self, idle: bool, registry: &Registry<A>) {
        if !idle {
            self.last_active.store(registry.ticks(), Ordering::Relaxed);
        }
        self.idle.store(idle, Ordering::SeqCst);
    }
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
    // Invariant (bounded memory): `count` is the number of cells in the
    // shards; a cell is inserted only after `admit` counted it, and the
    // count drops, with `freed` notified, when a cell is removed.
    count: AtomicUsize,
    freed: Notify,
    /// Senders waiting for room: an entity that goes idle meanwhile
    /// passivates at once, so that a waiter never depends on a scan that
    /// happened while every entity was busy.
    waiting: AtomicUsize,
    origin: Instant,
    /// Bound to the recorder in effect when the registry was made.
    pub(crate) metrics: Arc<EntityMetrics>,
    /// The timers that bound this aggregate's asks.
    pub(crate) deadlines: Deadlines,
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
            count: AtomicUsize::new(0),
            freed: Notify::new(),
            waiting: AtomicUsize::new(0),
            origin: Instant::now(),
            metrics: Arc::new(EntityMetrics::register(A::NAME)),
            deadlines: Deadlines::default(),
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

    fn ticks(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The live cell of `key`, spawning its actor if there is none and the
    /// limit of active entities allows. `Err(Closed)` when the system is
    /// shutting down, `Err(Full)` when the limit is reached and no idle
    /// entity can make room.
    fn try_resolve(self: &Arc<Self>, key: &Arc<EntityKey>) -> Result<Arc<Cell<A>>, Unresolved> {
        let cell = {
            let mut shard = self.shard(&key.id);
            // Read under the shard lock that `close` takes after setting it.
            if self.closed.load(Ordering::Acquire) {
                return Err(Unresolved::Closed);
            }
            if let Some(cell) = shard.get(&key.id) {
                return Ok(Arc::clone(cell));
            }
            if !self.admit() {
                return Err(Unresolved::Full);
            }
            let cell = Arc::new(Cell {
                key: Arc::clone(key),
                // The runner never waits on its own senders between pops.
                mailbox: Mailbox::giving_room_in_runs(self.settings.mailbox_capacity),
                idle: AtomicBool::new(false),
                last_active: AtomicU64::new(self.ticks()),
                evict: Notify::new(),
            });
            // Registered before the actor exists, let alone recovers.
            shard.insert(key.id.clone(), Arc::clone(&cell));
            cell
        };
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.metrics.entity_added();
        self.system
            .spawn(runner::run(Arc::clone(self), Arc::clone(&cell)));
        Ok(cell)
    }

    /// The live cell of `key`, spawning its actor if there is none. At the
    /// limit of active entities, asks idle ones to passivate and waits for
    /// room, unless `wait` is false. `None` when the system is shutting
    /// down; `Some(Err(()))` when full and not waiting.
    pub(crate) async fn resolve(
        self: &Arc<Self>,
        key: &Arc<EntityKey>,
        wait: bool,
    ) -> Option<Result<Arc<Cell<A>>, ()>> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before trying, so a slot freed in between wakes us.
            freed.as_mut().enable();
            match self.try_resolve(key) {
                Ok(cell) => return Some(Ok(cell)),
                Err(Unresolved::Closed) => return None,
                Err(Unresolved::Full) => {
                    // Counted before the scan: an entity that goes idle after
                    // the scan sees the count and passivates by itself
                    // (sequentially consistent on both sides, so one of the
                    // two always sees the other).
                    self.waiting.fetch_add(1, Ordering::SeqCst);
                    let _waiting = Waiting(&self.waiting);
                    let evicted = self.evict_idle();
                    if !wait && evicted == 0 {
                        return Some(Err(()));
                    }
                    freed.await;
                }
            }
        }
    }

    /// Whether a sender waits for room among the active entities.
    pub(crate) fn wants_room(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// Counts a new cell if the limit allows.
    fn admit(&self) -> bool {
        let Some(limit) = self.settings.max_active else {
            self.count.fetch_add(1, Ordering::AcqRel);
            return true;
        };
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < limit).then_some(count + 1)
            })
            .is_ok()
    }

    /// Asks the least recently active idle entities to passivate: about a
    /// sixteenth of the limit per scan, so that a stream of new ids costs
    /// one scan per many admissions. Returns how many were asked.
    fn evict_idle(&self) -> usize {
        let batch = self
            .settings
            .max_active
            .map_or(1, |limit| (limit / 16).max(1));
        let mut idle: Vec<(u64, Arc<Cell<A>>)> = Vec::new();
        for shard in &*self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            idle.extend(
                shard
                    .values()
                    .filter(|cell| cell.idle.load(Ordering::SeqCst))
                    .map(|cell| (cell.last_active.load(Ordering::Relaxed), Arc::clone(cell))),
            );
        }
        if idle.len() > batch {
            idle.select_nth_unstable_by_key(batch, |(at, _)| *at);
            idle.truncate(batch);
        }
        for (_, cell) in &idle {
            cell.evict.notify_one();
        }
        idle.len()
    }

    /// Closes and removes `cell` if its mailbox is empty. Returns whether it
    /// did; otherwise messages arrived and the actor must go on.
    pub(crate) fn retire_if_empty(&self, cell: &Arc<Cell<A>>) -> bool {
        let mut shard = self.shard(&cell.key.id);
        if !cell.mailbox.close_if_empty() {
            return false;
        }
        self.remove(&mut shard, cell);
        true
    }

    /// Closes and removes `cell`, returning what was still queued.
    pub(crate) fn retire(&self, cell: &Arc<Cell<A>>) -> Vec<Envelope<A>> {
        let mut shard = self.shard(&cell.key.id);
        let left = cell.mailbox.close_and_drain();
        self.remove(&mut shard, cell);
        left
    }

    fn remove(&self, shard: &mut HashMap<String, Arc<Cell<A>>>, cell: &Arc<Cell<A>>) {
        if shard
            .get(&cell.key.id)
            .is_some_and(|live| Arc::ptr_eq(live, cell))
        {
            shard.remove(&cell.key.id);
            self.count.fetch_sub(1, Ordering::AcqRel);
            self.metrics.entity_removed();
            self.freed.notify_waiters();
        }
    }

    /// How many entities are live: the admitted count, so that it never
    /// reads above the limit (a sum over the shards, read one after another,
    /// could count an entity leaving one shard and one entering another).
    pub(crate) fn live(&self) -> usize {
        self.count.load(Ordering::Acquire)
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

/// Counts a sender waiting for room until it stops waiting, however its
/// future ends (also when the caller gives up).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why no cell was resolved.
enum Unresolved {
    Closed,
    Full,
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

#[cfg(feature = "cluster")]
impl<A: Aggregate> crate::cluster::ShardHost for Registry<A> {
    fn stop_shard(
        &self,
        shard: u32,
        shards: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send + '_>> {
        Box::pin(async move {
            let cells: Vec<Arc<Cell<A>>> = self
                .shards
                .iter()
                .flat_map(|lock| {
                    let shard_cells = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    shard_cells.values().cloned().collect::<Vec<_>>()
                })
                .filter(|cell| crate::lease::shard_of(&cell.key.stream, shards) == shard)
                .collect();
            // Behind whatever is queued: those commands are carried out
            // first. A closed mailbox is an entity already on its way out.
            for cell in &cells {
                let _ = cell
                    .mailbox
                    .send(Envelope::Stop, crate::WhenFull::Wait)
                    .await;
            }
            // A handoff is rare and short: polling the registry keeps the
            // cells free of a notification only it would use.
            while cells.iter().any(|cell| self.holds(cell)) {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            cells.len()
        })
    }
}

impl<A: Aggregate> Registry<A> {
    /// Whether `cell` is still the live cell of its id.
    #[cfg(feature = "cluster")]
    fn holds(&self, cell: &Arc<Cell<A>>) -> bool {
        self.shard(&cell.key.id)
            .get(&cell.key.id)
            .is_some_and(|live| Arc::ptr_eq(live, cell))
    }
}
