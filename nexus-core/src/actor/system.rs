//! The actor system: where actors run, and how they all stop.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};

/// Where the system is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Accepting and processing messages.
    Running,
    /// Not accepting; actors process what is queued, then stop.
    Draining,
    /// The deadline passed: actors stop now and answer what is left with
    /// a shutting-down error.
    Aborting,
}

/// Something that holds mailboxes and must stop accepting at shutdown.
pub(crate) trait Closeable: Send + Sync {
    /// Refuses new messages from now on; queued ones stay to be drained.
    fn close(&self);
}

/// Runs actors on a tokio runtime and shuts them down together.
///
/// Cloning is cheap and gives a handle to the same system.
///
/// ```
/// use std::time::Duration;
/// use nexus_core::ActorSystem;
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let system = ActorSystem::builder().ask_timeout(Duration::from_secs(2)).build();
/// // ... Entities::<A>::builder(&system) ...
/// let report = system.shutdown(Duration::from_secs(5)).await;
/// assert!(report.drained);
/// # });
/// ```
#[derive(Clone)]
pub struct ActorSystem {
    pub(crate) shared: Arc<SystemShared>,
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("phase", &*self.shared.phase.borrow())
            .field("live_actors", &self.shared.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

pub(crate) struct SystemShared {
    // Invariant: the phase only moves forward (Running -> Draining ->
    // Aborting); every actor task watches it.
    phase: watch::Sender<Phase>,
    // Invariant: every registry that can accept messages is in this list
    // from its creation, so a shutdown closes all of them.
    closeables: Mutex<Vec<Weak<dyn Closeable>>>,
    // Invariant (single writer): at most one live entity registry per
    // aggregate name, so one id never has two actors in one system.
    served: Mutex<std::collections::HashMap<&'static str, Weak<dyn Closeable>>>,
    // Invariant: `live` counts spawned actor tasks that have not finished;
    // `idle` is notified whenever it drops to zero.
    live: AtomicUsize,
    idle: Notify,
    runtime: Option<Handle>,
    pub(crate) defaults: Defaults,
}

/// Options every entity type starts from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Defaults {
    pub(crate) ask_timeout: Duration,
    pub(crate) mailbox_capacity: usize,
}

/// Options of an [`ActorSystem`].
///
/// ```
/// let system = nexus_core::ActorSystem::builder().mailbox_capacity(256).build();
/// # let _ = system;
/// ```
#[derive(Debug)]
#[must_use = "call build() to get the system"]
pub struct ActorSystemBuilder {
    defaults: Defaults,
    runtime: Option<Handle>,
}

impl ActorSystemBuilder {
    /// The ask timeout entity types get unless they set their own
    /// (default 5 s).
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.defaults.ask_timeout = timeout;
        self
    }

    /// The mailbox capacity entity types get unless they set their own
    /// (default 1024).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.defaults.mailbox_capacity = capacity;
        self
    }

    /// Spawn actors on this runtime instead of the one current at spawn.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// The system.
    pub fn build(self) -> ActorSystem {
        let (phase, _) = watch::channel(Phase::Running);
        ActorSystem {
            shared: Arc::new(SystemShared {
                phase,
                closeables: Mutex::new(Vec::new()),
                served: Mutex::default(),
                live: AtomicUsize::new(0),
                idle: Notify::new(),
                runtime: self.runtime,
                defaults: self.defaults,
            }),
        }
    }
}

/// What [`ActorSystem::shutdown`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every actor drained its mailbox before the deadline.
    pub drained: bool,
    /// Actors still running at the deadline, stopped with their queued
    /// messages answered by a shutting-down error.
    pub aborted: usize,
}

impl Default for ActorSystem {
    fn default() -> Self {
        Self::new()
    }
}

impl ActorSystem {
    /// A system with the default options.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Options for a new system.
    pub fn builder() -> ActorSystemBuilder {
        ActorSystemBuilder {
            defaults: Defaults {
                ask_timeout: Duration::from_secs(5),
                mailbox_capacity: 1024,
            },
            runtime: None,
        }
    }

    /// Whether the system still accepts messages.
    pub fn is_running(&self) -> bool {
        self.shared.phase() == Phase::Running
    }

    /// How many actors are running.
    pub fn live_actors(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }

    /// Stops accepting messages, lets every actor process what is queued,
    /// and after `deadline` answers whatever is left with a shutting-down
    /// error. Returns once every actor has stopped; never panics.
    ///
    /// A command whose append was in flight at the deadline is answered
    /// with a shutting-down error too, and may have been committed.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.shared.advance(Phase::Draining);
        let closeables: Vec<_> = self
            .shared
            .closeables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .filter_map(|weak| weak.upgrade())
            .collect();
        for closeable in closeables {
            closeable.close();
        }
        if tokio::time::timeout(deadline, self.shared.wait_idle())
            .await
            .is_ok()
        {
            return ShutdownReport {
                drained: true,
                aborted: 0,
            };
        }
        let aborted = self.live_actors();
        self.shared.advance(Phase::Aborting);
        // Aborting actors stop at their next await point, so this returns
        // promptly unless a handler blocks its thread.
        self.shared.wait_idle().await;
        ShutdownReport {
            drained: false,
            aborted,
        }
    }
}

impl SystemShared {
    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    fn advance(&self, to: Phase) {
        self.phase.send_if_modified(|phase| {
            let forward = (*phase == Phase::Running && to != Phase::Running)
                || (*phase == Phase::Draining && to == Phase::Aborting);
            if forward {
                *phase = to;
            }
            forward
        });
    }

    /// Resolves once the phase is `Aborting`.
    pub(crate) fn aborted(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut phase = self.phase.subscribe();
        async move {
            // An error means the system is gone, which also ends every actor.
            let _ = phase.wait_for(|p| *p == Phase::Aborting).await;
        }
    }

    /// Registers a holder of mailboxes to close at shutdown. Returns false
    /// (and registers nothing) when the system is no longer running.
    pub(crate) fn register(&self, closeable: Weak<dyn Closeable>) -> bool {
        let mut closeables = self
            .closeables
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock the shutdown drains, so a registry is
        // either closed by the shutdown or told it came too late.
        if self.phase() != Phase::Running {
            return false;
        }
        closeables.retain(|weak| weak.strong_count() > 0);
        closeables.push(closeable);
        true
    }

    /// Records `registry` as the one serving aggregate `name`. Returns false
    /// (and records nothing) when a registry of that name is still alive.
    pub(crate) fn claim(&self, name: &'static str, registry: Weak<dyn Closeable>) -> bool {
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        if served
            .get(name)
            .is_some_and(|earlier| earlier.strong_count() > 0)
        {
            return false;
        }
        served.insert(name, registry);
        true
    }

    /// Spawns an actor task, counted until it finishes.
    pub(crate) fn spawn(self: &Arc<Self>, task: impl Future<Output = ()> + Send + 'static) {
        self.live.fetch_add(1, Ordering::AcqRel);
        let token = LiveToken(Arc::clone(self));
        let task = async move {
            let _token = token;
            task.await;
        };
        match &self.runtime {
            Some(handle) => drop(handle.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }

    async fn wait_idle(&self) {
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one live actor task; dropped when the task ends, even by panic.
struct LiveToken(Arc<SystemShared>);

impl Drop for LiveToken {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
