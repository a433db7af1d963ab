//! The lease an entity of a cluster takes: a share of its node's hold on
//! the shard, never a lease of its own.

use std::sync::Arc;

use async_trait::async_trait;

use super::node::Node;
use super::routes::Route;
use crate::StreamId;
use crate::lease::{LeaseError, LeaseGuard, OwnershipLease};

/// Grants an entity the tenure of its shard while this node holds it.
///
/// Dropping the entity's guard releases nothing: the node gives the shard
/// up, in a handoff, once every entity of it stopped.
pub(crate) struct NodeLease(pub(crate) Arc<Node>);

#[async_trait]
impl OwnershipLease for NodeLease {
    async fn acquire(&self, stream: &StreamId) -> Result<LeaseGuard, LeaseError> {
        let shard = self.0.shard_of(stream);
        match self.0.routes.get(shard) {
            // While handing off, the entities with messages queued before
            // the handoff began carry them out under the tenure, which the
            // release revokes.
            Route::Local(tenure) | Route::HandingOff(tenure) if tenure.is_current() => {
                Ok(LeaseGuard::new(tenure, ()))
            }
            Route::Remote { node, .. } => Err(LeaseError::Held {
                stream: stream.clone(),
                holder: format!("node {node} (shard {shard})"),
            }),
            Route::Local(_) | Route::HandingOff(_) | Route::Unassigned => Err(LeaseError::Held {
                stream: stream.clone(),
                holder: format!("no node yet: shard {shard} is moving"),
            }),
        }
    }
}
