//! Where this node sends the messages of each shard, and the gate that
//! lets a handoff wait for the local sends already under way.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedRwLockReadGuard, RwLock, watch};

use crate::lease::{LeaseGuard, Tenure};

/// Where the messages of one shard go.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// This node holds the shard under `tenure`.
    Local(Arc<Tenure>),
    /// This node is handing the shard off, still under `tenure` until it
    /// releases it: senders wait (the buffer) and go where the shard went
    /// once the handoff ends, while the entities that hold messages queued
    /// before it (fresh ones too) carry them out under the tenure.
    HandingOff(Arc<Tenure>),
    /// Another node holds the shard, or should take it.
    Remote { node: Arc<str>, address: Arc<str> },
    /// Nobody known holds it and it is not this node's to take: wait for
    /// the next view of the cluster.
    Unassigned,
}

/// One shard's route, and the lease guard while this node holds it.
#[derive(Default)]
struct Slot {
    route: Option<Route>,
    guard: Option<LeaseGuard>,
}

/// Every shard's route, and a counter that moves on every change so that
/// waiting senders wake.
pub(crate) struct Routes {
    slots: Mutex<Vec<Slot>>,
    /// Held shared by a local send from its route check until its message
    /// is in the mailbox; a handoff takes it exclusively once the route
    /// says `HandingOff`, so that no message slips in behind the stop.
    gates: Box<[Arc<RwLock<()>>]>,
    changed: watch::Sender<u64>,
}

impl Routes {
    pub(crate) fn new(shards: u32) -> Self {
        let shards = shards as usize;
        Self {
            slots: Mutex::new((0..shards).map(|_| Slot::default()).collect()),
            gates: (0..shards).map(|_| Arc::new(RwLock::new(()))).collect(),
            changed: watch::Sender::new(0),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The route of `shard`; `Unassigned` when none is known. A held
    /// shard whose tenure ended reads as `Unassigned`.
    pub(crate) fn get(&self, shard: u32) -> Route {
        let slots = self.slots();
        match &slots[shard as usize].route {
            Some(Route::Local(tenure)) if !tenure.is_current() => Route::Unassigned,
            Some(route) => route.clone(),
            None => Route::Unassigned,
        }
    }

    /// A receiver that sees every later change.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|version| *version += 1);
    }

    /// Records that this node now holds `shard` with `guard`, unless the
    /// shard is being handed off (a claim that waited behind the handoff's
    /// start must not reopen it). Returns whether it did.
    pub(crate) fn hold(&self, shard: u32, guard: LeaseGuard) -> bool {
        {
            let mut slots = self.slots();
            let slot = &mut slots[shard as usize];
            if matches!(slot.route, Some(Route::HandingOff(_))) {
                return false;
            }
            slot.route = Some(Route::Local(Arc::clone(guard.fence().tenure())));
            slot.guard = Some(guard);
        }
        self.bump();
        true
    }

    /// Starts a handoff of `shard`: returns its guard if this node held it
    /// under a current tenure, and routes its senders to wait.
    pub(crate) fn begin_handoff(&self, shard: u32) -> Option<LeaseGuard> {
        let guard = {
            let mut slots = self.slots();
            let slot = &mut slots[shard as usize];
            if !matches!(slot.route, Some(Route::Local(_))) {
                return None;
            }
            let guard = slot.guard.take();
            slot.route = guard
                .as_ref()
                .map(|guard| Route::HandingOff(Arc::clone(guard.fence().tenure())));
            guard
        };
        self.bump();
        guard
    }

    /// Points `shard` elsewhere (or nowhere). A held or handing-off shard
    /// is left alone unless its tenure ended: its own handoff moves it.
    pub(crate) fn point(&self, shard: u32, route: Route) {
        let changed = {
            let mut slots = self.slots();
            let slot = &mut slots[shard as usize];
            let settled_elsewhere = match &slot.route {
                Some(Route::Local(tenure)) => !tenure.is_current(),
                Some(Route::HandingOff(_)) => false,
                _ => true,
            };
            if settled_elsewhere && !same(slot.route.as_ref(), &route) {
                slot.guard = None;
                slot.route = Some(route);
                true
            } else {
                false
            }
        };
        if changed {
            self.bump();
        }
    }

    /// Ends a handoff: the shard's senders go to `route`.
    pub(crate) fn end_handoff(&self, shard: u32, route: Route) {
        {
            let mut slots = self.slots();
            let slot = &mut slots[shard as usize];
            slot.guard = None;
            slot.route = Some(route);
        }
        self.bump();
    }

    /// The shards held under a current tenure.
    pub(crate) fn held(&self) -> Vec<u32> {
        self.slots()
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(&slot.route, Some(Route::Local(t)) if t.is_current()))
            .map(|(shard, _)| u32::try_from(shard).expect("shard counts are u32"))
            .collect()
    }

    /// Forgets the shards whose tenure ended (lost, or expired by this
    /// node's clock), dropping their guards. Returns them.
    pub(crate) fn drop_lost(&self) -> Vec<u32> {
        let lost: Vec<u32> = {
            let mut slots = self.slots();
            slots
                .iter_mut()
                .enumerate()
                .filter(|(_, slot)| matches!(&slot.route, Some(Route::Local(t)) if !t.is_current()))
                .map(|(shard, slot)| {
                    slot.route = Some(Route::Unassigned);
                    slot.guard = None;
                    u32::try_from(shard).expect("shard counts are u32")
                })
                .collect()
        };
        if !lost.is_empty() {
            self.bump();
        }
        lost
    }

    /// The gate of `shard`, shared: hold it across a local enqueue.
    pub(crate) async fn enter(&self, shard: u32) -> OwnedRwLockReadGuard<()> {
        Arc::clone(&self.gates[shard as usize]).read_owned().await
    }

    /// Waits until every local send that entered `shard`'s gate left it.
    pub(crate) async fn drain(&self, shard: u32) {
        drop(self.gates[shard as usize].write().await);
    }
}

/// Whether two routes send to the same place (a `Local` never equals a
/// new route: its tenure is what changed).
fn same(current: Option<&Route>, next: &Route) -> bool {
    match (current, next) {
        (Some(Route::Unassigned), Route::Unassigned) => true,
        (Some(Route::Remote { node: a, .. }), Route::Remote { node: b, .. }) => a == b,
        _ => false,
    }
}
