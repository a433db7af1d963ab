//! The handle of a running projection: status, pause, resume, rebuild,
//! wait for a position, stop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::ProjectionError;
use super::runner::LogProbe;
use crate::LogPosition;

/// What a projection instance is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunState {
    /// Waiting for the projection's lease: another instance runs it.
    Standby,
    /// Reading the log and applying it.
    Running,
    /// Paused by [`ProjectionHandle::pause`]; its position is recorded.
    Paused,
    /// Building a fresh read model from the origin; readers still see the
    /// old one.
    Rebuilding,
    /// The last step failed (the error's text); it is retried with back-off.
    Retrying(String),
    /// Stopped by [`ProjectionHandle::stop`].
    Stopped,
}

/// A projection's status.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: String,
    /// What this instance is doing.
    pub state: RunState,
    /// The position its read model reflects.
    pub position: LogPosition,
    /// Committed events after `position` (when the store can count them).
    pub lag_events: Option<u64>,
    /// Seconds since the oldest committed event after `position` was
    /// recorded (0 when caught up; `None` when the store cannot tell).
    pub lag_seconds: Option<f64>,
    /// Who holds the log's horizon back while committed events wait behind
    /// it (a backend or a prepared transaction), if anyone does now.
    pub horizon_held_by: Option<String>,
    /// How many times the horizon was found held back with events waiting.
    pub horizon_stalls: u64,
    /// The epoch of this instance's lease while it is the active one.
    pub epoch: Option<u64>,
}

/// Why [`ProjectionHandle::wait_for`] returned without the position.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The projection had not passed the position in time.
    #[error("projection {projection} reached {reached}, not {wanted}, within {waited:?}")]
    Timeout {
        /// The projection.
        projection: String,
        /// The position asked for.
        wanted: LogPosition,
        /// Where the projection was when the wait ended.
        reached: LogPosition,
        /// How long it waited.
        waited: Duration,
    },
    /// The projection stopped.
    #[error("projection {projection} stopped")]
    Stopped {
        /// The projection.
        projection: String,
    },
}

pub(crate) enum Command {
    Rebuild(oneshot::Sender<Result<LogPosition, ProjectionError>>),
}

/// State shared between the runner task and its handles.
pub(crate) struct Shared {
    pub(crate) name: String,
    /// The position readers can rely on: the live read model reflects the
    /// log through it. Only grows (invariant kept by the runner, which
    /// publishes only positions at or after the previous one).
    pub(crate) position: watch::Sender<LogPosition>,
    pub(crate) paused: watch::Sender<bool>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) state: Mutex<RunState>,
    pub(crate) epoch: Mutex<Option<u64>>,
    pub(crate) held_by: Mutex<Option<String>>,
    pub(crate) stalls: AtomicU64,
    pub(crate) probe: Option<Arc<dyn LogProbe>>,
}

impl Shared {
    pub(crate) fn set_state(&self, state: RunState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    pub(crate) fn publish(&self, position: LogPosition) {
        self.position.send_if_modified(|current| {
            if position > *current {
                *current = position;
                true
            } else {
                false
            }
        });
    }
}

/// Controls a projection started by [`Projection::spawn`](super::Projection::spawn).
/// Clones control the same projection. See the [module example](super).
#[derive(Clone)]
pub struct ProjectionHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for ProjectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl ProjectionHandle {
    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The position the read model reflects now.
    pub fn position(&self) -> LogPosition {
        *self.shared.position.borrow()
    }

    /// The projection's status; lag is measured now, by the store's probe.
    pub async fn status(&self) -> ProjectionStatus {
        let position = self.position();
        let (lag_events, lag_seconds) = match &self.shared.probe {
            Some(probe) => match probe.lag(position).await {
                Ok((events, seconds)) => (Some(events), Some(seconds)),
                Err(error) => {
                    tracing::warn!(projection = %self.shared.name, %error, "lag probe failed");
                    (None, None)
                }
            },
            None => (None, None),
        };
        ProjectionStatus {
            name: self.shared.name.clone(),
            state: self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            position,
            lag_events,
            lag_seconds,
            horizon_held_by: self
                .shared
                .held_by
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            horizon_stalls: self.shared.stalls.load(Ordering::Relaxed),
            epoch: *self
                .shared
                .epoch
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Waits until the read model reflects the log through `position` (a
    /// write's [`Outcome::position`](crate::Outcome)), at most `timeout`.
    pub async fn wait_for(
        &self,
        position: LogPosition,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let mut rx = self.shared.position.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|at| *at >= position)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(WaitError::Stopped {
                projection: self.shared.name.clone(),
            }),
            Err(_) => Err(WaitError::Timeout {
                projection: self.shared.name.clone(),
                wanted: position,
                reached: self.position(),
                waited: timeout,
            }),
        }
    }

    /// Pauses after the current batch; the position is recorded first.
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Resumes a paused projection.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Rebuilds the read model from the origin into a fresh one, then swaps
    /// it in atomically: readers see the old model, complete, until the new
    /// one has caught up. Returns the position of the swap. Only the active
    /// instance rebuilds; a standby one answers once it becomes active.
    pub async fn rebuild(&self) -> Result<LogPosition, ProjectionError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || ProjectionError::Unsupported(format!("projection {} stopped", self.shared.name));
        self.commands
            .send(Command::Rebuild(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Stops the projection after the current batch (recording its
    /// position) and waits for it.
    pub async fn stop(&self) {
        self.shared.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
