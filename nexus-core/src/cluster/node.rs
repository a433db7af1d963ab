//! One node of a cluster: its heartbeat, the shards it claims, and the
//! handoff of those it gives up.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{OwnedRwLockReadGuard, watch};
use tokio::time::Instant;

use super::coordination::{Coordination, Member};
use super::routes::{Route, Routes};
use super::transport::{PeerClient, PeerServer};
use super::view::Known;
use crate::StreamId;
use crate::remote::{WireAnswer, WireAsk};

/// The entities of one aggregate type hosted by a node: what a handoff
/// stops, shard by shard.
pub(crate) trait ShardHost: Send + Sync + 'static {
    /// Stops every live entity of `shard` after its queued messages, and
    /// resolves once they are gone. Returns how many were stopped.
    fn stop_shard(
        &self,
        shard: u32,
        shards: u32,
    ) -> Pin<Box<dyn Future<Output = usize> + Send + '_>>;
}

/// Serves the asks peers forward for one aggregate type.
pub(crate) trait Service: Send + Sync + 'static {
    /// Runs `ask` on the local entities (which route it on if the shard
    /// moved) and answers.
    fn serve(&self, ask: WireAsk) -> Pin<Box<dyn Future<Output = WireAnswer> + Send>>;
}

/// Where one message goes, decided by [`Node::destination`].
pub(crate) enum Destination {
    /// Into the local mailbox, with the shard's gate held until it is in.
    Local(OwnedRwLockReadGuard<()>),
    /// To the peer holding (or about to take) the shard.
    Remote { node: Arc<str>, address: Arc<str> },
}

/// The timing of a node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) heartbeat: Duration,
    pub(crate) handoff_timeout: Duration,
}

/// What every handle of one node shares.
pub(crate) struct Node {
    pub(crate) coordination: Arc<dyn Coordination>,
    pub(crate) address: String,
    pub(crate) timing: Timing,
    pub(crate) routes: Routes,
    known: Mutex<Known>,
    hosts: Mutex<Vec<Weak<dyn ShardHost>>>,
    services: RwLock<HashMap<String, Arc<dyn Service>>>,
    pub(crate) client: PeerClient,
    /// One per shard: a claim takes one round trip, once.
    claiming: Box<[tokio::sync::Mutex<()>]>,
    handing_off: Mutex<HashSet<u32>>,
    leaving: AtomicBool,
    pub(crate) stopped: watch::Sender<bool>,
    pub(crate) server: Mutex<Option<PeerServer>>,
    /// The shards held at the last log line, to log changes only.
    logged: Mutex<Vec<u32>>,
    /// Held by the running heartbeat.
    beating: tokio::sync::Mutex<()>,
    /// When the last nudge started a heartbeat.
    nudged: Mutex<Instant>,
    /// Whether a nudged heartbeat is queued or running.
    nudge_pending: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    pub(crate) fn new(
        coordination: Arc<dyn Coordination>,
        address: String,
        timing: Timing,
        client: PeerClient,
    ) -> Self {
        let shards = coordination.shards();
        Self {
            routes: Routes::new(shards),
            claiming: (0..shards).map(|_| tokio::sync::Mutex::new(())).collect(),
            coordination,
            address,
            timing,
            known: Mutex::default(),
            hosts: Mutex::default(),
            services: RwLock::default(),
            client,
            handing_off: Mutex::default(),
            leaving: AtomicBool::new(false),
            stopped: watch::Sender::new(false),
            server: Mutex::default(),
            logged: Mutex::default(),
            beating: tokio::sync::Mutex::new(()),
            nudged: Mutex::new(Instant::now()),
            nudge_pending: AtomicBool::new(false),
        }
    }

    pub(crate) fn me(&self) -> &str {
        self.coordination.node()
    }

    pub(crate) fn shards(&self) -> u32 {
        self.coordination.shards()
    }

    /// The shard of `stream`: the same function every node and the lease use.
    pub(crate) fn shard_of(&self, stream: &StreamId) -> u32 {
        crate::lease::shard_of(stream, self.shards())
    }

    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire)
    }

    pub(crate) fn host(&self, host: Weak<dyn ShardHost>) {
        lock(&self.hosts).push(host);
    }

    /// Serves `aggregate`'s asks from peers with `service`, unless this
    /// node serves the aggregate already (from another actor system):
    /// returns whether it took it.
    pub(crate) fn serve_aggregate(&self, aggregate: &str, service: Arc<dyn Service>) -> bool {
        let mut services = self
            .services
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if services.contains_key(aggregate) {
            return false;
        }
        services.insert(aggregate.to_owned(), service);
        true
    }

    pub(crate) fn service(&self, aggregate: &str) -> Option<Arc<dyn Service>> {
        self.services
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(aggregate)
            .cloned()
    }

    /// The members of the last view, with the shards each held then.
    pub(crate) fn members(&self) -> Vec<(Member, usize)> {
        let known = lock(&self.known);
        known
            .members
            .iter()
            .map(|member| (member.clone(), known.held_by(&member.node)))
            .collect()
    }

    /// Where a message for `shard` goes, waiting (until `deadline`) while
    /// the shard is handed off or nobody holds it yet. `None` at the
    /// deadline.
    pub(crate) async fn destination(&self, shard: u32, deadline: Instant) -> Option<Destination> {
        let mut changed = self.routes.watch();
        loop {
            changed.borrow_and_update();
            match self.routes.get(shard) {
                Route::Local(_) => {
                    let gate = self.routes.enter(shard).await;
                    if matches!(self.routes.get(shard), Route::Local(_)) {
                        return Some(Destination::Local(gate));
                    }
                    continue;
                }
                Route::Remote { node, address } if &*node != self.me() => {
                    return Some(Destination::Remote { node, address });
                }
                Route::Remote { .. } | Route::Unassigned => {
                    if self.claim(shard).await {
                        continue;
                    }
                }
                Route::HandingOff(_) => {}
            }
            // Woken by a route change, or polled once a heartbeat, since a
            // claim may become possible without any route changing.
            let poll = (Instant::now() + self.timing.heartbeat).min(deadline);
            if tokio::time::timeout_at(poll, changed.changed())
                .await
                .is_err()
                && Instant::now() >= deadline
            {
                return None;
            }
        }
    }

    /// Takes `shard` if the allocation gives it to this node and it is
    /// free. Returns whether this node holds it now.
    pub(crate) async fn claim(&self, shard: u32) -> bool {
        if self.is_leaving() {
            return false;
        }
        {
            let known = lock(&self.known);
            let mine = known
                .desired(shard)
                .is_some_and(|node| &**node == self.me());
            // Held by another node as of the last view: taking it would
            // only be refused; the next view (or a nudge) tells when it is
            // free.
            let held_elsewhere = known
                .holders
                .get(&shard)
                .is_some_and(|(node, _)| &**node != self.me());
            if !mine || held_elsewhere {
                return false;
            }
        }
        let _claiming = self.claiming[shard as usize].lock().await;
        match self.routes.get(shard) {
            Route::Local(_) => return true,
            // A handoff began while this claim waited: the shard is going.
            Route::HandingOff(_) => return false,
            Route::Remote { .. } | Route::Unassigned => {}
        }
        match self.coordination.take(shard).await {
            Ok(guard) => {
                tracing::debug!(
                    node = self.me(),
                    shard,
                    epoch = guard.fence().epoch(),
                    "shard taken"
                );
                self.routes.hold(shard, guard);
                true
            }
            Err(error) => {
                tracing::debug!(node = self.me(), shard, %error, "shard not taken yet");
                false
            }
        }
    }

    /// Runs a heartbeat now, in the background, unless one ran less than
    /// a tenth of the heartbeat interval ago or runs now: a peer said it no
    /// longer owns a shard, or could not be reached, so this node's view is
    /// older than the cluster.
    pub(crate) fn nudge(self: &Arc<Self>) {
        // One waiting behind a running heartbeat is enough; never a pile.
        if self.nudge_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let now = Instant::now();
        {
            let mut last = lock(&self.nudged);
            if now.saturating_duration_since(*last) < self.timing.heartbeat / 10 {
                self.nudge_pending.store(false, Ordering::Release);
                return;
            }
            *last = now;
        }
        let node = Arc::clone(self);
        tokio::spawn(async move {
            node.heartbeat().await;
            node.nudge_pending.store(false, Ordering::Release);
        });
    }

    /// One heartbeat: renew the membership, read the cluster, point every
    /// shard, claim what is this node's, hand off what is not. Heartbeats
    /// never overlap: a nudge during one waits for it.
    pub(crate) async fn heartbeat(self: &Arc<Self>) {
        let _beating = self.beating.lock().await;
        // A leaving node no longer renews its membership (a renewal would
        // bring it back) nor claims, but it still follows where its shards
        // went, to forward what peers send it meanwhile.
        if self.is_leaving() {
            match self.coordination.view().await {
                Ok(view) => self.adopt(view),
                Err(error) => tracing::debug!(node = self.me(), %error, "no view while leaving"),
            }
            return;
        }
        match self.coordination.observe().await {
            Ok(view) => self.adopt(view),
            Err(error) => tracing::warn!(node = self.me(), %error, "cluster heartbeat failed"),
        }
        for shard in self.routes.drop_lost() {
            tracing::warn!(
                node = self.me(),
                shard,
                "shard lease lost; its entities stop"
            );
            self.spawn_stop(shard);
        }
        self.reconcile().await;
        self.log_held();
    }

    /// Adopts a new view: routes every shard not held here to its holder,
    /// or to the node that should take it.
    fn adopt(&self, view: super::coordination::View) {
        let leaving = self.is_leaving().then(|| self.me().to_owned());
        let known = Known::of(view, self.shards(), leaving.as_deref());
        for shard in 0..self.shards() {
            if let Some(route) = known.route(shard, self.me()) {
                self.routes.point(shard, route);
            }
        }
        *lock(&self.known) = known;
    }

    /// Claims the unheld shards the allocation gives this node and hands
    /// off the held ones it gives to another live node.
    async fn reconcile(self: &Arc<Self>) {
        for shard in 0..self.shards() {
            if matches!(
                self.routes.get(shard),
                Route::Unassigned | Route::Remote { .. }
            ) {
                self.claim(shard).await;
            }
        }
        let moves: Vec<(u32, Route)> = {
            let known = lock(&self.known);
            self.routes
                .held()
                .into_iter()
                .filter_map(|shard| match known.desired(shard) {
                    Some(node) if &**node == self.me() => None,
                    Some(node) => Some((shard, known.remote(node))),
                    // Nobody left to take it (the last node leaves).
                    None => self.is_leaving().then_some((shard, Route::Unassigned)),
                })
                .collect()
        };
        for (shard, to) in moves {
            if lock(&self.handing_off).insert(shard) {
                let node = Arc::clone(self);
                tokio::spawn(async move {
                    node.hand_off(shard, to).await;
                    lock(&node.handing_off).remove(&shard);
                });
            }
        }
    }

    /// Hands `shard` to `to`: buffer its senders, let its entities finish
    /// what is queued and stop, release the lease, and send the buffered
    /// messages on, in their order, to the new owner.
    pub(crate) async fn hand_off(&self, shard: u32, to: Route) {
        let Some(guard) = self.routes.begin_handoff(shard) else {
            return;
        };
        let started = Instant::now();
        self.routes.drain(shard).await;
        let stopped =
            tokio::time::timeout(self.timing.handoff_timeout, self.stop_entities(shard)).await;
        let stopped = stopped.unwrap_or_else(|_| {
            tracing::warn!(
                node = self.me(),
                shard,
                after = ?self.timing.handoff_timeout,
                "shard handoff: entities did not stop in time; the new epoch fences them"
            );
            0
        });
        if let Err(error) = self.coordination.release(guard).await {
            tracing::warn!(node = self.me(), shard, %error, "shard release failed; it frees when its lease expires");
        }
        let target = match &to {
            Route::Remote { node, .. } => node.to_string(),
            _ => "nobody".to_owned(),
        };
        self.routes.end_handoff(shard, to);
        tracing::info!(
            node = self.me(),
            shard,
            to = %target,
            entities = stopped,
            took_ms = started.elapsed().as_millis(),
            "shard handed off"
        );
    }

    async fn stop_entities(&self, shard: u32) -> usize {
        let hosts: Vec<Arc<dyn ShardHost>> =
            lock(&self.hosts).iter().filter_map(Weak::upgrade).collect();
        let mut stopped = 0;
        for host in hosts {
            stopped += host.stop_shard(shard, self.shards()).await;
        }
        stopped
    }

    fn spawn_stop(self: &Arc<Self>, shard: u32) {
        let node = Arc::clone(self);
        tokio::spawn(async move {
            node.stop_entities(shard).await;
        });
    }

    /// Hands off every held shard and leaves the membership.
    pub(crate) async fn leave(self: &Arc<Self>) {
        {
            // After the running heartbeat, if any: none starts after this.
            let _beating = self.beating.lock().await;
            self.leaving.store(true, Ordering::Release);
        }
        // A last view, without this node among the candidates, decides
        // where each shard goes; then the membership row goes, so that no
        // peer's allocation gives this node a shard again.
        match self.coordination.observe().await {
            Ok(view) => self.adopt(view),
            Err(error) => tracing::warn!(node = self.me(), %error, "no last view before leaving"),
        }
        if let Err(error) = self.coordination.leave().await {
            tracing::warn!(node = self.me(), %error, "leaving the cluster's membership failed");
        }
        let moves: Vec<(u32, Route)> = {
            let known = lock(&self.known);
            self.routes
                .held()
                .into_iter()
                .map(|shard| {
                    let to = known
                        .desired(shard)
                        .map_or(Route::Unassigned, |node| known.remote(node));
                    (shard, to)
                })
                .collect()
        };
        let mut handoffs = tokio::task::JoinSet::new();
        for (shard, to) in moves {
            let node = Arc::clone(self);
            handoffs.spawn(async move { node.hand_off(shard, to).await });
        }
        while handoffs.join_next().await.is_some() {}
        // Handoffs a last heartbeat started end too.
        let give_up = Instant::now() + self.timing.handoff_timeout;
        while !lock(&self.handing_off).is_empty() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.stopped.send_replace(true);
        self.log_held();
    }

    fn log_held(&self) {
        let held = self.routes.held();
        let mut logged = lock(&self.logged);
        if *logged != held {
            tracing::info!(node = self.me(), count = held.len(), shards = ?held, "shards held");
            *logged = held;
        }
    }
}
