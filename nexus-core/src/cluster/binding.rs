//! One aggregate type bound to a cluster: how its sends are routed, and how
//! its commands and replies are encoded for the wire.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use tokio::time::Instant;
use tracing::Instrument;

use super::node::{Destination, Node, Service};
use super::transport::TransportError;
use crate::codec::Codec;
use crate::entity::{Entities, EntityRef};
use crate::lease::LeaseError;
use crate::remote::{RemoteCommands, WireAnswer, WireAsk, WireCommand};
use crate::{Aggregate, CodecError, EntityError, Outcome};

/// How many forwards an ask may take: from its sender to the holder it
/// knows, and on twice more when the shard moved while the ask was on its
/// way (a leaving node forwards to the node its last view named, which may
/// have lost the race for the shard to a third). Beyond it, nodes whose
/// views disagree answer "not the owner" and the sender routes again after
/// a newer view, instead of bouncing the ask between them.
const MAX_HOPS: u8 = 3;

/// The transport route of forwarded asks.
pub(crate) const ASK_ROUTE: &str = "ask";

/// The longest pause before an ask a peer did not apply is routed again.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

tokio::task_local! {
    /// The hops of the ask a node serves for a peer, seen by the routing of
    /// the local ask that serves it.
    static HOPS: u8;
    /// When the peer that sent the ask stops waiting for it.
    static DEADLINE: Instant;
}

/// How long an ask may take here: the entity type's ask timeout, or less
/// when it serves a peer's ask whose sender stops waiting sooner.
pub(crate) fn budget(ask_timeout: std::time::Duration) -> std::time::Duration {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .map_or(ask_timeout, |left| left.min(ask_timeout))
}

/// Milliseconds since the Unix epoch by this node's wall clock: the one
/// clock two nodes share, to within their drift.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The codec of one aggregate type, with its types erased.
trait WireCodec<A: Aggregate>: Send + Sync + 'static {
    fn encode_command(&self, command: &(dyn Any + Send)) -> Result<WireCommand, CodecError>;
    #[allow(clippy::type_complexity)]
    fn decode_answer(
        &self,
        tag: &str,
        answer: WireAnswer,
    ) -> Result<Result<Outcome<Box<dyn Any + Send>>, EntityError<A::Error>>, CodecError>;
    fn serve(
        &self,
        entity: EntityRef<A>,
        ask: WireAsk,
    ) -> Pin<Box<dyn Future<Output = WireAnswer> + Send>>;
}

struct Typed<W>(W);

impl<A, W> WireCodec<A> for Typed<W>
where
    A: RemoteCommands<W>,
    W: Codec + Clone,
{
    fn encode_command(&self, command: &(dyn Any + Send)) -> Result<WireCommand, CodecError> {
        A::encode_command(&self.0, command)
    }

    fn decode_answer(
        &self,
        tag: &str,
        answer: WireAnswer,
    ) -> Result<Result<Outcome<Box<dyn Any + Send>>, EntityError<A::Error>>, CodecError> {
        match answer.into_served::<A, W>(&self.0) {
            Ok(outcome) => {
                let reply = A::decode_reply(&self.0, tag, &outcome.reply)?;
                Ok(Ok(Outcome::new(reply, outcome.version, outcome.position)))
            }
            Err(error) => Ok(Err(error)),
        }
    }

    fn serve(
        &self,
        entity: EntityRef<A>,
        ask: WireAsk,
    ) -> Pin<Box<dyn Future<Output = WireAnswer> + Send>> {
        let codec = self.0.clone();
        let left = ask
            .deadline_unix_ms
            .map(|deadline| deadline.saturating_sub(unix_ms()));
        if left == Some(0) {
            // The sender gave up before the ask got here: refused, nothing
            // applied, rather than carried out behind its back.
            let error = EntityError::Unreachable {
                stream: entity.stream().clone(),
                node: "this node".to_owned(),
                source: "the ask expired before it reached the owner; not applied".into(),
            };
            return Box::pin(async move { WireAnswer::served::<A, W>(Err(error), &codec) });
        }
        let deadline = left.map(|ms| Instant::now() + std::time::Duration::from_millis(ms));
        Box::pin(HOPS.scope(ask.hops, async move {
            let options = ask.options();
            let serve = A::serve(&codec, &ask.command, &entity, options);
            let result = match deadline {
                Some(deadline) => DEADLINE.scope(deadline, serve).await,
                None => serve.await,
            };
            WireAnswer::served::<A, W>(result, &codec)
        }))
    }
}

/// An aggregate type served by a cluster node.
pub(crate) struct Binding<A: Aggregate> {
    pub(crate) node: Arc<Node>,
    codec: Box<dyn WireCodec<A>>,
}

impl<A: Aggregate> Binding<A> {
    pub(crate) fn new<W>(node: Arc<Node>, codec: W) -> Self
    where
        A: RemoteCommands<W>,
        W: Codec + Clone,
    {
        Self {
            node,
            codec: Box::new(Typed(codec)),
        }
    }

    /// Registers `entities` with the node: its peers' asks for them, and
    /// the handoffs that stop them. Refused when the node serves entities
    /// of this aggregate already: two registries on one node would run two
    /// actors for one id under one tenure.
    pub(crate) fn attach(
        self: &Arc<Self>,
        entities: &Entities<A>,
    ) -> Result<(), crate::ConfigError> {
        let served = Arc::new(Served {
            binding: Arc::downgrade(self),
            registry: Arc::downgrade(&entities.registry),
        });
        if !self.node.serve_aggregate(A::NAME, served) {
            return Err(crate::ConfigError::AlreadyServed { aggregate: A::NAME });
        }
        let host: Weak<dyn super::ShardHost> = Arc::downgrade(&entities.registry) as _;
        self.node.host(host);
        Ok(())
    }

    /// Where a message of `entity` goes now, waiting until `deadline`.
    pub(crate) async fn destination(
        &self,
        entity: &EntityRef<A>,
        deadline: Instant,
    ) -> Option<Destination> {
        let shard = self.node.shard_of(entity.stream());
        self.node.destination(shard, deadline).await
    }

    /// Whether this node holds `entity`'s shard now.
    pub(crate) fn hosts_here(&self, entity: &EntityRef<A>) -> bool {
        let shard = self.node.shard_of(entity.stream());
        matches!(self.node.routes.get(shard), super::routes::Route::Local(_))
    }

    /// A pause before routing again an ask a peer did not apply: until the
    /// routes change or a short while passes (a newer view may come from
    /// the next heartbeat, or from the peer's handoff ending).
    pub(crate) async fn backoff(&self, deadline: Instant) {
        let mut changed = self.node.routes.watch();
        changed.borrow_and_update();
        let until = (Instant::now() + RETRY_PAUSE).min(deadline);
        let _ = tokio::time::timeout_at(until, changed.changed()).await;
    }

    /// The reply of a forwarded command, as its command's reply type.
    pub(crate) fn typed_reply<R: 'static>(
        entity: &EntityRef<A>,
        peer: &str,
        outcome: Outcome<Box<dyn Any + Send>>,
    ) -> Result<Outcome<R>, EntityError<A::Error>> {
        let Outcome {
            reply,
            version,
            position,
        } = outcome;
        match reply.downcast::<R>() {
            Ok(reply) => Ok(Outcome::new(*reply, version, position)),
            // The peer decoded the tag into another command's reply: two
            // builds that disagree on the aggregate's commands.
            // The command was applied; its answer cannot be used here.
            Err(_) => Err(EntityError::Undeliverable {
                source: CodecError::Decode {
                    what: format!("the reply from node {peer} for {}", entity.stream()),
                    codec: "wire",
                    source: format!(
                        "not of type {}: do the nodes run the same build?",
                        std::any::type_name::<R>()
                    )
                    .into(),
                },
            }),
        }
    }

    /// Encodes `command` once, for as many forwards as it takes.
    pub(crate) fn encode(
        &self,
        entity: &EntityRef<A>,
        command: &(dyn Any + Send),
    ) -> Result<WireCommand, EntityError<A::Error>> {
        self.codec
            .encode_command(command)
            .map_err(|source| EntityError::Encode {
                stream: entity.stream().clone(),
                source,
            })
    }

    /// Forwards `command` to the peer at `address`, and decodes its answer.
    /// `Ok(Err(NotApplied))` when the ask was not applied and should be
    /// routed again (the peer does not own the shard, could not be reached,
    /// or shed it).
    pub(crate) async fn forward(
        &self,
        entity: &EntityRef<A>,
        peer: &str,
        address: &str,
        command: &WireCommand,
        options: &crate::CommandOptions,
        deadline: Instant,
    ) -> Result<Result<Outcome<Box<dyn Any + Send>>, NotApplied>, EntityError<A::Error>> {
        let hops = HOPS.try_with(|hops| *hops).unwrap_or(0);
        let stream = entity.stream().clone();
        if hops >= MAX_HOPS {
            return Err(EntityError::NotOwner {
                source: LeaseError::Held {
                    stream: stream.clone(),
                    holder: format!("node {peer}, as far as a node that does not own it knows"),
                },
                stream,
            });
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        let mut ask = WireAsk::new(A::NAME, entity.id(), command.clone(), options);
        ask.hops = hops + 1;
        ask.deadline_unix_ms =
            Some(unix_ms().saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)));
        let request = ask.to_bytes().map_err(|source| EntityError::Encode {
            stream: stream.clone(),
            source,
        })?;
        let span = tracing::debug_span!("nexus.forward", aggregate = A::NAME, %stream, node = peer, hops = ask.hops);
        let request = super::transport::PeerRequest::new(ASK_ROUTE, request);
        let call = self
            .node
            .client
            .call(address, request, timeout)
            .instrument(span);
        let answer = match call.await {
            Ok(answer) => answer,
            Err(error @ TransportError::NotSent { .. }) => {
                // Gone, or not up yet: a newer view may know better.
                self.node.nudge();
                return Ok(Err(NotApplied::new(peer, &error)));
            }
            Err(error @ TransportError::Overloaded { .. }) => {
                return Ok(Err(NotApplied::shed(peer, &error)));
            }
            // The peer refused the request itself (a 4xx): not handled, and
            // sending it again would be refused again.
            Err(
                error @ TransportError::Status {
                    status: 400..=499, ..
                },
            ) => {
                return Err(EntityError::Unreachable {
                    stream,
                    node: peer.to_owned(),
                    source: with_causes(&error).into(),
                });
            }
            Err(error) => {
                return Err(EntityError::Interrupted {
                    stream,
                    node: peer.to_owned(),
                    source: with_causes(&error).into(),
                });
            }
        };
        // The owner answered: an answer that does not decode here may hide
        // an applied command.
        let answer = WireAnswer::from_bytes(&answer.body)
            .and_then(|answer| self.codec.decode_answer(&command.tag, answer))
            .map_err(|source| EntityError::Undeliverable { source })?;
        match answer {
            Ok(outcome) => Ok(Ok(outcome)),
            // Not applied: the shard moved on since the route was read.
            Err(error @ EntityError::NotOwner { .. }) => {
                self.node.nudge();
                Ok(Err(NotApplied::new(peer, &error)))
            }
            Err(error) => Err(error),
        }
    }
}

/// Why a forwarded ask was not applied, for the error its sender gets if
/// no route works before its deadline.
#[derive(Debug)]
pub(crate) struct NotApplied {
    node: String,
    reason: String,
    /// The peer shed it (overloaded): retried a few times only.
    pub(crate) shed: bool,
}

impl NotApplied {
    fn new(node: &str, error: &dyn std::error::Error) -> Self {
        Self {
            node: node.to_owned(),
            reason: with_causes(error),
            shed: false,
        }
    }

    fn shed(node: &str, error: &dyn std::error::Error) -> Self {
        Self {
            shed: true,
            ..Self::new(node, error)
        }
    }

    /// The error of an ask that was never applied anywhere.
    pub(crate) fn into_error<E>(self, stream: &crate::StreamId) -> EntityError<E> {
        EntityError::Unreachable {
            stream: stream.clone(),
            node: self.node,
            source: format!("not applied: {}", self.reason).into(),
        }
    }
}

/// The peer-facing side of one bound aggregate type.
struct Served<A: Aggregate> {
    binding: Weak<Binding<A>>,
    registry: Weak<crate::entity::registry::Registry<A>>,
}

impl<A: Aggregate> Service for Served<A> {
    fn serve(&self, ask: WireAsk) -> Pin<Box<dyn Future<Output = WireAnswer> + Send>> {
        match (self.binding.upgrade(), self.registry.upgrade()) {
            (Some(binding), Some(registry)) => {
                let entity = Entities { registry }.of(&ask.id);
                binding.codec.serve(entity, ask)
            }
            _ => Box::pin(async move { super::peer::not_served(&ask) }),
        }
    }
}

/// `error` and its sources, one after the other: the transport's errors
/// say what failed at the bottom of their chain ("connection reset").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
