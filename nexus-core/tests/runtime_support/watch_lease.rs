//! A lease that never refuses but measures how many holders each stream
//! has at once: the single-writer probe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nexus_core::StreamId;
use nexus_core::lease::{LeaseError, LeaseGuard, OwnershipLease, Tenure};

#[derive(Clone, Default)]
pub struct WatchLease {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    holders: HashMap<StreamId, usize>,
    most: usize,
    acquired: usize,
}

impl WatchLease {
    pub fn new() -> Self {
        Self::default()
    }

    /// The most holders any stream had at once.
    pub fn most_holders(&self) -> usize {
        self.state.lock().unwrap().most
    }

    /// How many times a lease was taken.
    pub fn acquired(&self) -> usize {
        self.state.lock().unwrap().acquired
    }

    /// How many streams are held now.
    pub fn held(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .holders
            .values()
            .filter(|n| **n > 0)
            .count()
    }
}

#[async_trait]
impl OwnershipLease for WatchLease {
    async fn acquire(&self, stream: &StreamId) -> Result<LeaseGuard, LeaseError> {
        {
            let mut state = self.state.lock().unwrap();
            let holders = state.holders.entry(stream.clone()).or_default();
            *holders += 1;
            let now = *holders;
            state.most = state.most.max(now);
            state.acquired += 1;
        }
        // Widens the window in which a second actor for the same id, if the
        // registry ever allowed one, would overlap this one.
        for _ in 0..fastrand::usize(0..3) {
            tokio::task::yield_now().await;
        }
        let state = Arc::clone(&self.state);
        let stream = stream.clone();
        Ok(LeaseGuard::on_release(Tenure::unbounded(0, 1), move || {
            *state.lock().unwrap().holders.get_mut(&stream).unwrap() -= 1;
        }))
    }
}
