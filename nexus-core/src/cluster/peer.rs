//! The node's peer listener: asks forwarded by other nodes, served by the
//! local entities of their aggregate type.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;

use super::node::Node;
use super::transport::{PeerHandler, PeerRequest, PeerResponse};
use crate::codec::Json;
use crate::lease::LeaseError;
use crate::remote::{WireAnswer, WireAsk};
use crate::{EntityError, StoreError, StreamId};

/// Answers peers' asks once the node exists (the listener binds first, so
/// that the node can advertise the port it got).
#[derive(Default)]
pub(crate) struct PeerService {
    node: OnceLock<Weak<Node>>,
}

impl PeerService {
    pub(crate) fn bind(&self, node: &Arc<Node>) {
        let _ = self.node.set(Arc::downgrade(node));
    }
}

#[async_trait]
impl PeerHandler for PeerService {
    async fn handle(&self, request: PeerRequest) -> PeerResponse {
        // One route only; a request of another kind is refused as an ask
        // that does not decode would be.
        let answer = match WireAsk::from_bytes(&request.body) {
            Ok(ask) => {
                let service = self
                    .node
                    .get()
                    .and_then(Weak::upgrade)
                    .and_then(|node| node.service(&ask.aggregate));
                match service {
                    Some(service) => service.serve(ask).await,
                    None => not_served(&ask),
                }
            }
            Err(error) => invalid(format!("an ask that does not decode: {error}")),
        };
        match answer.to_bytes() {
            Ok(bytes) => PeerResponse::new(bytes),
            Err(error) => PeerResponse::new(
                invalid(format!("an answer that does not encode: {error}"))
                    .to_bytes()
                    .unwrap_or_default(),
            ),
        }
    }
}

/// The answer to an ask for an aggregate type this node does not serve
/// (yet: a node takes shards as soon as it joins, a moment before its
/// application built its entities): not the owner, nothing applied, so
/// the sender routes it again.
pub(crate) fn not_served(ask: &WireAsk) -> WireAnswer {
    tracing::warn!(
        aggregate = %ask.aggregate,
        "a peer asked for an aggregate type this node does not serve (yet): build its `Entities` with `.cluster(..)` on every node"
    );
    let stream = StreamId::for_entity(&ask.aggregate, &ask.id);
    WireAnswer::from_result::<Json, String>(
        Err(EntityError::NotOwner {
            source: LeaseError::Held {
                stream: stream.clone(),
                holder: format!("no entities of aggregate {:?} on this node", ask.aggregate),
            },
            stream,
        }),
        &Json,
    )
}

/// An answer refusing what was asked, nothing applied.
fn invalid(reason: String) -> WireAnswer {
    WireAnswer::from_result::<Json, String>(
        Err(EntityError::Store(StoreError::InvalidRequest(reason))),
        &Json,
    )
}
